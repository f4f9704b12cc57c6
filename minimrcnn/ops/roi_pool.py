"""RoIPool: Fast R-CNN max pooling over quantised bins (Girshick 2015), for contrast with RoIAlign.

Lesson: lessons/01_roi_pool_vs_roi_align.ipynb.

Every coordinate is rounded twice: the box edges to whole feature cells (C ``round``, half
away from zero), then the bin edges to whole cells (floor for the start, ceil for the
end). Example (the lesson's numbers): a 665-pixel box at stride 32 covers 20.78 cells;
RoIPool rounds the end to cell 21 and, with torchvision's inclusive end, pools 22 cells
in 7 bins of 22/7 = 3.14 cells each, floored and ceiled to whole cells. RoIAlign keeps
20.78 / 7 = 2.97 (roi_align.py).

Semantics are torchvision's C++ kernel (docs/torchvision-parity.md sec. 2): empty bins give
0 with argmax -1; the max scans rows then columns starting from -FLT_MAX and keeps the
FIRST strictly greater value, so ties go to the earliest pixel.

Shape shorthand: N images, C channels, H, W feature size, R RoIs, PH x PW pooled size.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from minimrcnn.ops._checks import (
    check_dout_shape, check_feature_map, check_output_size, check_spatial_scale, convert_boxes_to_roi_format,
)
from minimrcnn.runtime import reference_kernels_enabled

_NEG_FLT_MAX = -3.4028234663852886e38   # C's -FLT_MAX: the running max starts here


class RoIPoolCache(NamedTuple):
    """What the backward needs: where each output's max came from."""
    input_shape: tuple       # (N, C, H, W)
    dtype: np.dtype
    rois: np.ndarray         # float[R, 5] (batch_index, x1, y1, x2, y2)
    argmax: np.ndarray       # int64[R, C, PH, PW] flat index h*W + w in the image plane, -1 if empty


# --------------------------------------------------------------------------------------
# Reference twin
# --------------------------------------------------------------------------------------

def c_round(value):
    """C's round(): half away from zero (NumPy's np.round rounds half to even)."""
    whole = np.trunc(value)
    if abs(value - whole) >= 0.5:
        whole += np.sign(value)
    return int(whole)


def roi_pool_bin_edges(roi, output_size, spatial_scale, height=None, width=None):
    """RoIPool's quantised geometry of one RoI (used by the twin, lessons and tests).

    Args:
        roi (float[5]): (batch_index, x1, y1, x2, y2), its dtype sets the arithmetic.
        height, width (int or None): feature size to clip the bins to (None: no clipping).
    Returns:
        dict: start/end cells (x_start, y_start, x_end, y_end), roi_w, roi_h (cells, inclusive),
        bin_h, bin_w, and per-bin hstart, hend int[PH], wstart, wend int[PW] (end exclusive).
    """
    ftype = roi.dtype.type
    PH, PW = output_size
    x_start = c_round(roi[1] * ftype(spatial_scale))
    y_start = c_round(roi[2] * ftype(spatial_scale))
    x_end = c_round(roi[3] * ftype(spatial_scale))
    y_end = c_round(roi[4] * ftype(spatial_scale))
    roi_w = max(x_end - x_start + 1, 1)          # inclusive end: +1
    roi_h = max(y_end - y_start + 1, 1)
    bin_h, bin_w = ftype(roi_h) / ftype(PH), ftype(roi_w) / ftype(PW)
    hstart = np.array([int(np.floor(ftype(p) * bin_h)) + y_start for p in range(PH)])
    hend = np.array([int(np.ceil(ftype(p + 1) * bin_h)) + y_start for p in range(PH)])
    wstart = np.array([int(np.floor(ftype(p) * bin_w)) + x_start for p in range(PW)])
    wend = np.array([int(np.ceil(ftype(p + 1) * bin_w)) + x_start for p in range(PW)])
    if height is not None:                       # bins may leave the map: clip them
        hstart, hend = np.clip(hstart, 0, height), np.clip(hend, 0, height)
    if width is not None:
        wstart, wend = np.clip(wstart, 0, width), np.clip(wend, 0, width)
    return {"x_start": x_start, "y_start": y_start, "x_end": x_end, "y_end": y_end,
            "roi_w": roi_w, "roi_h": roi_h, "bin_h": float(bin_h), "bin_w": float(bin_w),
            "hstart": hstart, "hend": hend, "wstart": wstart, "wend": wend}


def roi_pool_forward_reference(input, rois, output_size, spatial_scale):
    """Readable RoIPool: (out float[R,C,PH,PW], argmax int64[R,C,PH,PW])."""
    _, C, H, W = input.shape
    PH, PW = output_size
    out = np.zeros((rois.shape[0], C, PH, PW), dtype=input.dtype)
    argmax = np.full((rois.shape[0], C, PH, PW), -1, dtype=np.int64)
    for r, roi in enumerate(rois):                                   # for each RoI
        b = int(roi[0])
        e = roi_pool_bin_edges(roi, (PH, PW), spatial_scale, H, W)
        for ph in range(PH):                                         # for each output bin
            for pw in range(PW):
                if e["hend"][ph] <= e["hstart"][ph] or e["wend"][pw] <= e["wstart"][pw]:
                    continue                                         # empty bin: 0, argmax -1
                best = np.full(C, _NEG_FLT_MAX, dtype=input.dtype)
                where = np.full(C, -1, dtype=np.int64)
                for h in range(e["hstart"][ph], e["hend"][ph]):      # scan rows, then columns
                    for w in range(e["wstart"][pw], e["wend"][pw]):
                        value = input[b, :, h, w]
                        better = value > best                        # strict: first max wins
                        best[better] = value[better]
                        where[better] = h * W + w
                out[r, :, ph, pw] = best
                argmax[r, :, ph, pw] = where
    return out, argmax


def roi_pool_backward_reference(dout, input_shape, rois, argmax):
    """Readable RoIPool backward: each output's gradient goes to the pixel that was the max."""
    N, C, H, W = input_shape
    dinput = np.zeros((N, C, H * W), dtype=dout.dtype)
    for r, roi in enumerate(rois):
        b = int(roi[0])
        for c in range(C):
            for index, g in zip(argmax[r, c].ravel(), dout[r, c].ravel()):
                if index >= 0:
                    dinput[b, c, index] += g                         # += : bins and RoIs overlap
    return dinput.reshape(input_shape)


# --------------------------------------------------------------------------------------
# Numba kernels
# --------------------------------------------------------------------------------------

@numba.njit(cache=True)
def _c_round(value):
    whole = float(int(value))                                        # trunc toward zero
    if abs(value - whole) >= 0.5:
        whole += 1.0 if value > 0 else -1.0
    return int(whole)


@numba.njit(cache=True, parallel=True)
def _roi_pool_forward_kernel(out, argmax, input, rois, spatial_scale):
    """out float[R,C,PH,PW], argmax int64[R,C,PH,PW] (both preset to 0 / -1).

    Differs from the twin: bin edges computed inline, loops RoI -> channel -> bin;
    parallel over RoIs, each owning out[r] and argmax[r].
    """
    ftype = input.dtype.type
    R, C, PH, PW = out.shape
    H, W = input.shape[2], input.shape[3]
    scale = ftype(spatial_scale)
    for r in numba.prange(R):                                        # for each RoI
        b = int(rois[r, 0])
        x_start = _c_round(rois[r, 1] * scale)
        y_start = _c_round(rois[r, 2] * scale)
        roi_w = max(_c_round(rois[r, 3] * scale) - x_start + 1, 1)
        roi_h = max(_c_round(rois[r, 4] * scale) - y_start + 1, 1)
        bin_h = ftype(roi_h) / ftype(PH)
        bin_w = ftype(roi_w) / ftype(PW)
        for c in range(C):                                           # for each channel
            for ph in range(PH):                                     # for each output bin
                hstart = min(max(int(math.floor(ftype(ph) * bin_h)) + y_start, 0), H)
                hend = min(max(int(math.ceil(ftype(ph + 1) * bin_h)) + y_start, 0), H)
                for pw in range(PW):
                    wstart = min(max(int(math.floor(ftype(pw) * bin_w)) + x_start, 0), W)
                    wend = min(max(int(math.ceil(ftype(pw + 1) * bin_w)) + x_start, 0), W)
                    if hend <= hstart or wend <= wstart:
                        continue
                    best = ftype(-3.4028234663852886e38)
                    where = -1
                    for h in range(hstart, hend):                    # rows, then columns
                        for w in range(wstart, wend):
                            if input[b, c, h, w] > best:
                                best = input[b, c, h, w]
                                where = h * W + w
                    out[r, c, ph, pw] = best
                    argmax[r, c, ph, pw] = where


@numba.njit(cache=True, parallel=True)
def _roi_pool_backward_kernel(dinput, dout, argmax, batch):
    """dinput float[N,C,H*W] (zeroed) += dout routed through argmax.

    Parallel over channels: channel c writes only dinput[:, c], so no races, and the
    (RoI, bin) order is fixed -- deterministic for any thread count.
    """
    R, C, num_bins = dout.shape
    for c in numba.prange(C):                                        # for each channel
        for r in range(R):                                           # for each RoI
            for k in range(num_bins):                                # for each output bin
                index = argmax[r, c, k]
                if index >= 0:
                    dinput[batch[r], c, index] += dout[r, c, k]


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------

def roi_pool_forward(input, boxes, output_size, spatial_scale=1.0):
    """RoIPool forward, torchvision.ops.roi_pool semantics.

    Args:
        input (float[N,C,H,W]): feature map.
        boxes (float[R,5] or list of float[L_i,4]): as in roi_align_forward.
        output_size (int or (PH, PW)): pooled size.
        spatial_scale (float): feature cells per image pixel.
    Returns:
        out (float[R,C,PH,PW]) and a RoIPoolCache holding argmax int64[R,C,PH,PW].
    """
    check_feature_map(input)
    spatial_scale = check_spatial_scale(spatial_scale)
    PH, PW = check_output_size(output_size)
    N, C, H, W = input.shape
    rois = convert_boxes_to_roi_format(boxes, input.dtype, N)
    if reference_kernels_enabled():
        out, argmax = roi_pool_forward_reference(input, rois, (PH, PW), spatial_scale)
    else:
        out = np.zeros((rois.shape[0], C, PH, PW), dtype=input.dtype)
        argmax = np.full((rois.shape[0], C, PH, PW), -1, dtype=np.int64)
        if rois.shape[0]:
            _roi_pool_forward_kernel(out, argmax, np.ascontiguousarray(input), rois,
                                     float(spatial_scale))
    return out, RoIPoolCache(input.shape, input.dtype, rois, argmax)


def roi_pool_backward(dout, cache):
    """Gradient w.r.ftype. input, float[N,C,H,W]; boxes get none. dout float[R,C,PH,PW]."""
    check_dout_shape(dout, cache.argmax.shape)
    dout = np.ascontiguousarray(dout, dtype=cache.dtype)
    N, C, H, W = cache.input_shape
    if reference_kernels_enabled():
        return roi_pool_backward_reference(dout, cache.input_shape, cache.rois, cache.argmax)
    R = dout.shape[0]
    dinput = np.zeros((N, C, H * W), dtype=cache.dtype)
    if R:
        _roi_pool_backward_kernel(dinput, dout.reshape(R, C, -1), cache.argmax.reshape(R, C, -1),
                                  cache.rois[:, 0].astype(np.int64))
    return dinput.reshape(N, C, H, W)


def roi_pool(input, boxes, output_size, spatial_scale=1.0):
    """RoIPool output only: float[R,C,PH,PW]. See roi_pool_forward."""
    return roi_pool_forward(input, boxes, output_size, spatial_scale)[0]
