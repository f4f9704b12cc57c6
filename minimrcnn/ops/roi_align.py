"""RoIAlign: bilinear RoI pooling without quantisation (Mask R-CNN, He et al. 2017, sec. 3).

Lessons: lessons/01_roi_pool_vs_roi_align.ipynb, lessons/02_bilinear_sampling.ipynb;
derivation: docs/roi_align.md.

Each RoI is cut into a PH x PW grid of bins; each bin averages a gh x gw grid of
bilinear samples of the feature map. Nothing is rounded: a box edge at 20.78 feature
cells stays at 20.78 (RoIPool would round it to 21, see roi_pool.py).

Pixel model: feature cell (i, j) holds the value at continuous point (x=j, y=i).
``aligned=True`` shifts box coordinates by -0.5 so that a box covering pixels [0, 4)
has its samples centred in those pixels (x = 0 maps to -0.5 + ...); ``aligned=False``
(torchvision's default and what Mask R-CNN uses) does not shift, and forces every RoI
to be at least 1 x 1 cell.

The semantics are exactly torchvision's C++ kernel (docs/torchvision-parity.md sec. 1):
the sample coordinate is ``y = (y1 + ph * bin_h) + ((iy + 0.5) * bin_h) / gh``, samples
outside the inclusive range [-1, H] x [-1, W] give 0 (and still count in the mean),
samples in (-1, 0] snap to 0 and samples >= H-1 snap to H-1.

Shape shorthand (docs/shapes.md): N images, C channels, H, W feature size, R RoIs,
PH x PW pooled size, gh x gw samples per bin (S per side when sampling_ratio = S).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from minimrcnn.ops._checks import (
    check_dout_shape, check_feature_map, check_output_size, check_sampling_ratio, check_spatial_scale,
    convert_boxes_to_roi_format,
)
from minimrcnn.ops.roi_align_tables import sample_tables
from minimrcnn.runtime import reference_kernels_enabled


class RoIAlignCache(NamedTuple):
    """What the backward needs. The input values are not needed: the op is linear in them."""
    input_shape: tuple       # (N, C, H, W)
    dtype: np.dtype          # dtype of input and rois
    rois: np.ndarray         # float[R, 5] (batch_index, x1, y1, x2, y2), in input dtype
    output_size: tuple       # (PH, PW)
    spatial_scale: float
    sampling_ratio: int
    aligned: bool
    # the forward kernel's sample tables (offsets, pos, weights; roi_align_tables.py), so the
    # backward does not compute them again; None after the twin or an empty forward
    tables: tuple | None = None


# --------------------------------------------------------------------------------------
# Reference twin: plain loops, vectorised over channels. Shares no helper with the kernel.
# --------------------------------------------------------------------------------------

def bilinear_interpolate(height, width, y, x):
    """The 4 neighbours and bilinear weights of point (y, x), or None if out of range.

    Returns (y_low, y_high, x_low, x_high, w1, w2, w3, w4) with weights for
    (y_low, x_low), (y_low, x_high), (y_high, x_low), (y_high, x_high).
    ``y`` and ``x`` are scalars of the input dtype; weights keep that dtype.
    """
    # Written as "not (inside)" so a NaN coordinate counts as outside.
    if not (y >= -1 and y <= height and x >= -1 and x <= width):
        return None
    one = type(y)(1)
    y = max(y, type(y)(0))          # (-1, 0] snaps to the first row
    x = max(x, type(x)(0))
    y_low, x_low = int(y), int(x)   # y, x >= 0 here, so int() == floor
    if y_low >= height - 1:         # [H-1, H] snaps to the last row
        y_low = y_high = height - 1
        y = type(y)(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = x_high = width - 1
        x = type(x)(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - type(y)(y_low), x - type(x)(x_low)
    hy, hx = one - ly, one - lx
    return y_low, y_high, x_low, x_high, hy * hx, hy * lx, ly * hx, ly * lx


def _roi_geometry_reference(roi, output_size, spatial_scale, sampling_ratio, aligned):
    """(batch, y1, x1, bin_h, bin_w, gh, gw) of one RoI, computed in the RoI's dtype."""
    ftype = roi.dtype.type
    ph_count, pw_count = output_size
    offset = ftype(0.5) if aligned else ftype(0.0)
    x1 = roi[1] * ftype(spatial_scale) - offset
    y1 = roi[2] * ftype(spatial_scale) - offset
    x2 = roi[3] * ftype(spatial_scale) - offset
    y2 = roi[4] * ftype(spatial_scale) - offset
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:                  # legacy behaviour: malformed RoIs become 1 x 1
        roi_w, roi_h = max(roi_w, ftype(1)), max(roi_h, ftype(1))
    bin_h, bin_w = roi_h / ftype(ph_count), roi_w / ftype(pw_count)
    # Adaptive grid: about one sample per feature cell, ceil computed in the input dtype.
    gh = sampling_ratio if sampling_ratio > 0 else int(np.ceil(roi_h / ftype(ph_count)))
    gw = sampling_ratio if sampling_ratio > 0 else int(np.ceil(roi_w / ftype(pw_count)))
    return int(roi[0]), y1, x1, bin_h, bin_w, gh, gw


def _sample_coordinate(start, bin_index, bin_size, sample_index, grid):
    """Sample position, in torchvision's evaluation order (it matters in float32)."""
    ftype = type(start)
    return (start + ftype(bin_index) * bin_size) + (ftype(sample_index + 0.5) * bin_size) / ftype(grid)


def roi_align_forward_reference(input, rois, output_size, spatial_scale, sampling_ratio, aligned):
    """Readable RoIAlign forward. input float[N,C,H,W], rois float[R,5] -> float[R,C,PH,PW]."""
    _, C, H, W = input.shape
    PH, PW = output_size
    ftype = input.dtype.type
    out = np.zeros((rois.shape[0], C, PH, PW), dtype=input.dtype)
    for r, roi in enumerate(rois):                                   # for each RoI
        b, y1, x1, bin_h, bin_w, gh, gw = _roi_geometry_reference(
            roi, output_size, spatial_scale, sampling_ratio, aligned)
        if gh <= 0 or gw <= 0:                                       # no samples: output 0
            continue
        for ph in range(PH):                                         # for each output bin
            for pw in range(PW):
                total = np.zeros(C, dtype=input.dtype)
                for iy in range(gh):                                 # for each sample in the bin
                    y = _sample_coordinate(y1, ph, bin_h, iy, gh)
                    for ix in range(gw):
                        x = _sample_coordinate(x1, pw, bin_w, ix, gw)
                        nb = bilinear_interpolate(H, W, y, x)
                        if nb is None:                               # outside: 0, still counted
                            continue
                        y_low, y_high, x_low, x_high, w1, w2, w3, w4 = nb
                        total += (w1 * input[b, :, y_low, x_low] + w2 * input[b, :, y_low, x_high]
                                  + w3 * input[b, :, y_high, x_low] + w4 * input[b, :, y_high, x_high])
                out[r, :, ph, pw] = total / ftype(max(gh * gw, 1))       # mean over gh*gw samples
    return out


def roi_align_backward_reference(dout, input_shape, rois, output_size, spatial_scale,
                                 sampling_ratio, aligned):
    """Readable RoIAlign backward: each sample sends g * w_i / (gh*gw) to its 4 neighbours."""
    _, _, H, W = input_shape
    PH, PW = output_size
    ftype = dout.dtype.type
    dinput = np.zeros(input_shape, dtype=dout.dtype)
    for r, roi in enumerate(rois):                                   # for each RoI
        b, y1, x1, bin_h, bin_w, gh, gw = _roi_geometry_reference(
            roi, output_size, spatial_scale, sampling_ratio, aligned)
        if gh <= 0 or gw <= 0:
            continue
        count = ftype(gh * gw)
        for ph in range(PH):                                         # for each output bin
            for pw in range(PW):
                g = dout[r, :, ph, pw]                               # float[C]
                for iy in range(gh):                                 # for each sample in the bin
                    y = _sample_coordinate(y1, ph, bin_h, iy, gh)
                    for ix in range(gw):
                        x = _sample_coordinate(x1, pw, bin_w, ix, gw)
                        nb = bilinear_interpolate(H, W, y, x)
                        if nb is None:
                            continue
                        y_low, y_high, x_low, x_high, w1, w2, w3, w4 = nb
                        # += : a pixel gets gradient from many samples, bins and RoIs.
                        dinput[b, :, y_low, x_low] += g * w1 / count
                        dinput[b, :, y_low, x_high] += g * w2 / count
                        dinput[b, :, y_high, x_low] += g * w3 / count
                        dinput[b, :, y_high, x_high] += g * w4 / count
    return dinput


# --------------------------------------------------------------------------------------
# Numba kernels. Same math; the 4 neighbours and weights of every sample are computed
# once into tables (roi_align_tables.py) and reused for all C channels.
# --------------------------------------------------------------------------------------

@numba.njit(cache=True, parallel=True)
def _roi_align_forward_kernel(out, input, batch, offsets, pos, weights):
    """out float[R,C,PH*PW] from channels-last input float[N,H*W,C] and the sample tables.

    Differs from the twin: channels-last input so the innermost loop runs over C
    contiguous values (SIMD); parallel over RoIs, each RoI owns out[r]. The sum over
    samples is in the same order as the twin, so the results are bitwise equal.
    """
    ftype = input.dtype.type
    R, C, num_bins = out.shape
    for r in numba.prange(R):                                        # for each RoI
        per_bin = (offsets[r + 1] - offsets[r]) // num_bins          # gh * gw
        count = ftype(max(per_bin, 1))
        image = input[batch[r]]
        total = np.empty(C, dtype=input.dtype)
        for bin_index in range(num_bins):                            # for each output bin
            total[:] = 0
            start = offsets[r] + bin_index * per_bin
            for k in range(start, start + per_bin):                  # for each sample in the bin
                w1, w2, w3, w4 = weights[k, 0], weights[k, 1], weights[k, 2], weights[k, 3]
                f1, f2, f3, f4 = image[pos[k, 0]], image[pos[k, 1]], image[pos[k, 2]], image[pos[k, 3]]
                for c in range(C):                                   # for each channel
                    total[c] += w1 * f1[c] + w2 * f2[c] + w3 * f3[c] + w4 * f4[c]
            for c in range(C):
                out[r, c, bin_index] = total[c] / count


@numba.njit(cache=True, parallel=True)
def _roi_align_backward_kernel(dinput, dout, batch, offsets, pos, weights, channel_block):
    """dinput float[N,H*W,C] (zeroed) += scatter of dout float[R,C,PH*PW] through the sample tables.

    Parallel over blocks of channel_block channels: a block only ever writes its own
    channels of dinput, so no two threads touch the same value (RoI-parallel += would
    race), and every value receives its adds in the same (RoI, bin, sample) order -- the
    result is bitwise identical for any thread count and block size.
    """
    ftype = dout.dtype.type
    R, C, num_bins = dout.shape
    num_blocks = (C + channel_block - 1) // channel_block
    for block in numba.prange(num_blocks):                           # for each channel block
        c0 = block * channel_block
        c1 = min(c0 + channel_block, C)
        for r in range(R):                                           # for each RoI
            per_bin = (offsets[r + 1] - offsets[r]) // num_bins
            if per_bin == 0:
                continue
            count = ftype(per_bin)
            image = dinput[batch[r]]
            g = np.empty(C, dtype=dout.dtype)                        # this bin's dout, contiguous
            for bin_index in range(num_bins):                        # for each output bin
                for c in range(c0, c1):
                    g[c] = dout[r, c, bin_index]
                start = offsets[r] + bin_index * per_bin
                for k in range(start, start + per_bin):              # for each sample in the bin
                    # w / count once per sample instead of once per channel: the twin's
                    # g * w / count rounds differently in the last bit only.
                    w1, w2 = weights[k, 0] / count, weights[k, 1] / count
                    w3, w4 = weights[k, 2] / count, weights[k, 3] / count
                    p1, p2, p3, p4 = pos[k, 0], pos[k, 1], pos[k, 2], pos[k, 3]
                    for c in range(c0, c1):                          # its 4 neighbours
                        image[p1, c] += g[c] * w1
                        image[p2, c] += g[c] * w2
                        image[p3, c] += g[c] * w3
                        image[p4, c] += g[c] * w4


# --------------------------------------------------------------------------------------
# Public API (argument checks: ops/_checks.py)
# --------------------------------------------------------------------------------------

def roi_align_forward(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """RoIAlign forward, torchvision.ops.roi_align semantics.

    Args:
        input (float[N,C,H,W]): feature map (float32 or float64).
        boxes (float[R,5] or list of float[L_i,4]): (batch_index, x1, y1, x2, y2) in image
            pixels, or per-image (x1, y1, x2, y2); cast to the input dtype.
        output_size (int or (PH, PW)): pooled size.
        spatial_scale (float): feature cells per image pixel (1/stride).
        sampling_ratio (int): samples per bin side; <= 0 means adaptive ceil(roi/out).
        aligned (bool): shift boxes by -0.5 cell (pixel-centre model).
    Returns:
        out (float[R,C,PH,PW]) and a RoIAlignCache.
    """
    check_feature_map(input)
    spatial_scale, sampling_ratio = check_spatial_scale(spatial_scale), check_sampling_ratio(sampling_ratio)
    PH, PW = check_output_size(output_size)
    N, C, H, W = input.shape
    rois = convert_boxes_to_roi_format(boxes, input.dtype, N)
    cache = RoIAlignCache(input.shape, input.dtype, rois, (PH, PW), spatial_scale, sampling_ratio, bool(aligned))
    if rois.shape[0] == 0:
        return np.zeros((0, C, PH, PW), dtype=input.dtype), cache
    if reference_kernels_enabled():
        out = roi_align_forward_reference(input, rois, (PH, PW), spatial_scale, sampling_ratio, aligned)
        return out, cache
    tables = sample_tables(rois, H, W, PH, PW, float(spatial_scale), int(sampling_ratio), bool(aligned))
    # (N, C, H, W) -> channels-last (N, H*W, C), so the kernel reads C contiguous values.
    input_hwc = np.ascontiguousarray(input.transpose(0, 2, 3, 1)).reshape(N, H * W, C)
    out = np.empty((rois.shape[0], C, PH * PW), dtype=input.dtype)
    _roi_align_forward_kernel(out, input_hwc, rois[:, 0].astype(np.int64), *tables)
    return out.reshape(rois.shape[0], C, PH, PW), cache._replace(tables=tables)


def roi_align_backward(dout, cache, channel_block=None):
    """Gradient w.r.ftype. input: float[N,C,H,W]. The boxes get no gradient.

    Args:
        dout (float[R,C,PH,PW]): upstream gradient.
        cache (RoIAlignCache): from roi_align_forward.
        channel_block (int or None): channels per parallel work item; None splits C
            evenly over Numba's threads. Speed only: the result is bitwise the same.
    """
    N, C, H, W = cache.input_shape
    PH, PW = cache.output_size
    R = cache.rois.shape[0]
    check_dout_shape(dout, (R, C, PH, PW))
    dout = np.ascontiguousarray(dout, dtype=cache.dtype)
    if R == 0:
        return np.zeros(cache.input_shape, dtype=cache.dtype)
    if reference_kernels_enabled():
        return roi_align_backward_reference(dout, cache.input_shape, cache.rois, (PH, PW),
                                            cache.spatial_scale, cache.sampling_ratio,
                                            cache.aligned)
    offsets, pos, weights = cache.tables or sample_tables(cache.rois, H, W, PH, PW, cache.spatial_scale,
                                                          cache.sampling_ratio, cache.aligned)
    # dinput is accumulated channels-last (N, H*W, C), then moved back to (N, C, H, W).
    dinput = np.zeros((N, H * W, C), dtype=cache.dtype)
    if channel_block is None:
        channel_block = max(8, -(-C // numba.get_num_threads()))
    _roi_align_backward_kernel(dinput, dout.reshape(R, C, PH * PW), cache.rois[:, 0].astype(np.int64), offsets,
                               pos, weights, int(channel_block))
    return np.ascontiguousarray(dinput.reshape(N, H, W, C).transpose(0, 3, 1, 2))


def roi_align(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """RoIAlign output only: float[R,C,PH,PW]. See roi_align_forward."""
    return roi_align_forward(input, boxes, output_size, spatial_scale, sampling_ratio, aligned)[0]


def roi_align_sample_points(box, output_size, spatial_scale=1.0, sampling_ratio=-1,
                            aligned=False, dtype=np.float64):
    """Bin geometry of one box, for lessons and tests: where RoIAlign samples.

    Args:
        box (float[4]): (x1, y1, x2, y2) in image pixels.
    Returns:
        dict with bin_h, bin_w (feature cells), gh, gw, and ys float[PH,gh], xs float[PW,gw]
        the sample coordinates on the feature map.
    """
    PH, PW = check_output_size(output_size)
    roi = np.concatenate([[0.0], np.asarray(box, dtype=np.float64)]).astype(dtype)
    _, y1, x1, bin_h, bin_w, gh, gw = _roi_geometry_reference(roi, (PH, PW), spatial_scale,
                                                              sampling_ratio, aligned)
    ys = np.array([[_sample_coordinate(y1, p, bin_h, i, gh) for i in range(max(gh, 0))]
                   for p in range(PH)], dtype=dtype).reshape(PH, max(gh, 0))
    xs = np.array([[_sample_coordinate(x1, p, bin_w, i, gw) for i in range(max(gw, 0))]
                   for p in range(PW)], dtype=dtype).reshape(PW, max(gw, 0))
    return {"bin_h": float(bin_h), "bin_w": float(bin_w), "gh": gh, "gw": gw, "ys": ys, "xs": xs}
