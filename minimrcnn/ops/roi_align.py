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

The semantics are exactly torchvision's C++ kernel (torchvision-semantics.md sec. 1):
the sample coordinate is ``y = (y1 + ph * bin_h) + ((iy + 0.5) * bin_h) / gh``, samples
outside the inclusive range [-1, H] x [-1, W] give 0 (and still count in the mean),
samples in (-1, 0] snap to 0 and samples >= H-1 snap to H-1.

Shape shorthand: N images, C channels, H, W feature size, R RoIs, PH x PW pooled size,
gh x gw samples per bin (S per side). Derivation: docs/roi_align.md.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

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
    t = roi.dtype.type
    ph_count, pw_count = output_size
    offset = t(0.5) if aligned else t(0.0)
    x1 = roi[1] * t(spatial_scale) - offset
    y1 = roi[2] * t(spatial_scale) - offset
    x2 = roi[3] * t(spatial_scale) - offset
    y2 = roi[4] * t(spatial_scale) - offset
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:                  # legacy behaviour: malformed RoIs become 1 x 1
        roi_w, roi_h = max(roi_w, t(1)), max(roi_h, t(1))
    bin_h, bin_w = roi_h / t(ph_count), roi_w / t(pw_count)
    # Adaptive grid: about one sample per feature cell, ceil computed in the input dtype.
    gh = sampling_ratio if sampling_ratio > 0 else int(np.ceil(roi_h / t(ph_count)))
    gw = sampling_ratio if sampling_ratio > 0 else int(np.ceil(roi_w / t(pw_count)))
    return int(roi[0]), y1, x1, bin_h, bin_w, gh, gw


def _sample_coordinate(start, bin_index, bin_size, sample_index, grid):
    """Sample position, in torchvision's evaluation order (it matters in float32)."""
    t = type(start)
    return (start + t(bin_index) * bin_size) + (t(sample_index + 0.5) * bin_size) / t(grid)


def roi_align_forward_reference(input, rois, output_size, spatial_scale, sampling_ratio, aligned):
    """Readable RoIAlign forward. input float[N,C,H,W], rois float[R,5] -> float[R,C,PH,PW]."""
    _, C, H, W = input.shape
    PH, PW = output_size
    t = input.dtype.type
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
                out[r, :, ph, pw] = total / t(max(gh * gw, 1))       # mean over gh*gw samples
    return out


def roi_align_backward_reference(dout, input_shape, rois, output_size, spatial_scale,
                                 sampling_ratio, aligned):
    """Readable RoIAlign backward: each sample sends g * w_i / (gh*gw) to its 4 neighbours."""
    _, _, H, W = input_shape
    PH, PW = output_size
    t = dout.dtype.type
    dinput = np.zeros(input_shape, dtype=dout.dtype)
    for r, roi in enumerate(rois):                                   # for each RoI
        b, y1, x1, bin_h, bin_w, gh, gw = _roi_geometry_reference(
            roi, output_size, spatial_scale, sampling_ratio, aligned)
        if gh <= 0 or gw <= 0:
            continue
        count = t(gh * gw)
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
# once per RoI into tables and reused for all C channels.
# --------------------------------------------------------------------------------------

@numba.njit(cache=True)
def _roi_grid(roi, PH, PW, spatial_scale, sampling_ratio, aligned):
    """(y1, x1, bin_h, bin_w, gh, gw) of one RoI in the RoI's dtype (twin: _roi_geometry_reference)."""
    t = roi.dtype.type
    offset = t(0.5) if aligned else t(0.0)
    scale = t(spatial_scale)
    x1 = roi[1] * scale - offset
    y1 = roi[2] * scale - offset
    roi_w = (roi[3] * scale - offset) - x1
    roi_h = (roi[4] * scale - offset) - y1
    if not aligned:
        roi_w = max(roi_w, t(1.0))
        roi_h = max(roi_h, t(1.0))
    bin_h = roi_h / t(PH)
    bin_w = roi_w / t(PW)
    gh = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_h / t(PH)))
    gw = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_w / t(PW)))
    return y1, x1, bin_h, bin_w, max(gh, 0), max(gw, 0)


@numba.njit(cache=True)
def _roi_sample_counts(rois, PH, PW, spatial_scale, sampling_ratio, aligned):
    """int64[R+1] offsets of each RoI's samples in the flat sample tables."""
    offsets = np.zeros(rois.shape[0] + 1, dtype=np.int64)
    for r in range(rois.shape[0]):
        _, _, _, _, gh, gw = _roi_grid(rois[r], PH, PW, spatial_scale, sampling_ratio, aligned)
        offsets[r + 1] = offsets[r] + PH * PW * gh * gw
    return offsets


@numba.njit(cache=True)
def _bilinear_entry(pos_row, weight_row, y, x, H, W):
    """Write one sample's 4 flat neighbour indices (y*W + x) and weights into its table row.

    Out-of-range samples (also NaN) get weight 0 at index 0: they add nothing, still count.
    """
    t = weight_row.dtype.type
    pos_row[:] = 0
    weight_row[:] = t(0.0)
    if not (y >= -1 and y <= H and x >= -1 and x <= W):
        return
    y = max(y, t(0.0))
    x = max(x, t(0.0))
    y_low, x_low = int(y), int(x)
    y_high, x_high = y_low + 1, x_low + 1
    if y_low >= H - 1:                                               # snap to the last row
        y_low = y_high = H - 1
        y = t(y_low)
    if x_low >= W - 1:
        x_low = x_high = W - 1
        x = t(x_low)
    ly, lx = y - t(y_low), x - t(x_low)
    hy, hx = t(1.0) - ly, t(1.0) - lx
    pos_row[0], pos_row[1] = y_low * W + x_low, y_low * W + x_high
    pos_row[2], pos_row[3] = y_high * W + x_low, y_high * W + x_high
    weight_row[0], weight_row[1] = hy * hx, hy * lx
    weight_row[2], weight_row[3] = ly * hx, ly * lx


@numba.njit(cache=True, parallel=True)
def _roi_sample_tables(pos, weights, rois, offsets, H, W, PH, PW, spatial_scale, sampling_ratio,
                       aligned):
    """Fill pos int64[S,4] and weights T[S,4] for every sample of every RoI.

    Parallel over RoIs: each RoI owns its rows offsets[r]:offsets[r+1].
    """
    t = rois.dtype.type
    for r in numba.prange(rois.shape[0]):                            # for each RoI
        y1, x1, bin_h, bin_w, gh, gw = _roi_grid(rois[r], PH, PW, spatial_scale, sampling_ratio,
                                                 aligned)
        k = offsets[r]
        for ph in range(PH):                                         # for each output bin
            for pw in range(PW):
                for iy in range(gh):                                 # for each sample in the bin
                    y = (y1 + t(ph) * bin_h) + (t(iy + 0.5) * bin_h) / t(gh)
                    for ix in range(gw):
                        x = (x1 + t(pw) * bin_w) + (t(ix + 0.5) * bin_w) / t(gw)
                        _bilinear_entry(pos[k], weights[k], y, x, H, W)
                        k += 1


@numba.njit(cache=True, parallel=True)
def _roi_align_forward_kernel(out, input, batch, offsets, pos, weights):
    """out T[R,C,PH*PW] from channels-last input T[N,H*W,C] and the sample tables.

    Differs from the twin: channels-last input so the innermost loop runs over C
    contiguous values (SIMD); parallel over RoIs, each RoI owns out[r]. The sum over
    samples is in the same order as the twin, so the results are bitwise equal.
    """
    t = input.dtype.type
    R, C, num_bins = out.shape
    for r in numba.prange(R):                                        # for each RoI
        per_bin = (offsets[r + 1] - offsets[r]) // num_bins          # gh * gw
        count = t(max(per_bin, 1))
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
    """dinput T[N,H*W,C] (zeroed) += scatter of dout T[R,C,PH*PW] through the sample tables.

    Parallel over blocks of channel_block channels: a block only ever writes its own
    channels of dinput, so no two threads touch the same value (RoI-parallel += would
    race), and every value receives its adds in the same (RoI, bin, sample) order -- the
    result is bitwise identical for any thread count and block size.
    """
    t = dout.dtype.type
    R, C, num_bins = dout.shape
    num_blocks = (C + channel_block - 1) // channel_block
    for block in numba.prange(num_blocks):                           # for each channel block
        c0 = block * channel_block
        c1 = min(c0 + channel_block, C)
        for r in range(R):                                           # for each RoI
            per_bin = (offsets[r + 1] - offsets[r]) // num_bins
            if per_bin == 0:
                continue
            count = t(per_bin)
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


def _sample_tables(rois, H, W, PH, PW, spatial_scale, sampling_ratio, aligned):
    offsets = _roi_sample_counts(rois, PH, PW, spatial_scale, sampling_ratio, aligned)
    pos = np.empty((offsets[-1], 4), dtype=np.int64)
    weights = np.empty((offsets[-1], 4), dtype=rois.dtype)
    _roi_sample_tables(pos, weights, rois, offsets, H, W, PH, PW, spatial_scale,
                       sampling_ratio, aligned)
    return offsets, pos, weights


# --------------------------------------------------------------------------------------
# Validation and public API
# --------------------------------------------------------------------------------------

def _check_output_size(output_size):
    size = (output_size, output_size) if np.isscalar(output_size) else tuple(output_size)
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                                 for s in size):
        raise ValueError(f"output_size: expected an int or a pair of ints, got {output_size!r}")
    if size[0] <= 0 or size[1] <= 0:
        raise ValueError(f"output_size: expected positive sizes, got {output_size!r}")
    return int(size[0]), int(size[1])


def _check_input(input, name="input"):
    if not isinstance(input, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array float[N,C,H,W], got {type(input).__name__}")
    if input.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: expected float32 or float64, got {input.dtype}")
    if input.ndim != 4:
        raise ValueError(f"{name}: expected float[N,C,H,W], got shape {input.shape}")


def convert_boxes_to_roi_format(boxes, dtype, num_images):
    """float[R,5] (batch_index, x1, y1, x2, y2) from float[R,5] or a list of float[L_i,4].

    Validates shape, finiteness and batch indices (read as int(), i.e. truncated).
    """
    if isinstance(boxes, (list, tuple)):
        parts = []
        for i, b in enumerate(boxes):
            b = np.asarray(b)
            if b.ndim != 2 or b.shape[1] != 4:
                raise ValueError(f"boxes[{i}]: expected float[L,4], got shape {b.shape}")
            parts.append(np.concatenate([np.full((len(b), 1), i, dtype=dtype), b.astype(dtype)], 1))
        rois = np.concatenate(parts) if parts else np.zeros((0, 5), dtype)
    else:
        rois = np.asarray(boxes)
        if rois.ndim != 2 or rois.shape[1] != 5:
            raise ValueError(f"boxes: expected float[R,5] (batch_index, x1, y1, x2, y2) or a list "
                             f"of float[L,4], got shape {rois.shape}")
    rois = np.ascontiguousarray(rois, dtype=dtype)
    if not np.isfinite(rois).all():
        raise ValueError("boxes: expected finite coordinates, got NaN or inf")
    batch = rois[:, 0].astype(np.int64)
    if len(batch) and (batch.min() < 0 or batch.max() >= num_images):
        raise ValueError(f"boxes: batch index must be in [0, {num_images}), got values in "
                         f"[{batch.min()}, {batch.max()}]")
    return rois


def _check_scalars(spatial_scale, sampling_ratio):
    if isinstance(sampling_ratio, bool) or not isinstance(sampling_ratio, (int, np.integer)):
        raise TypeError(f"sampling_ratio: expected an int, got {type(sampling_ratio).__name__}")
    if not (np.isfinite(spatial_scale) and spatial_scale > 0):
        raise ValueError(f"spatial_scale: expected a finite positive number, got {spatial_scale!r}")


def roi_align_forward(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1,
                      aligned=False):
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
    _check_input(input)
    _check_scalars(spatial_scale, sampling_ratio)
    PH, PW = _check_output_size(output_size)
    N, C, H, W = input.shape
    rois = convert_boxes_to_roi_format(boxes, input.dtype, N)
    cache = RoIAlignCache(input.shape, input.dtype, rois, (PH, PW), float(spatial_scale),
                          int(sampling_ratio), bool(aligned))
    if rois.shape[0] == 0:
        return np.zeros((0, C, PH, PW), dtype=input.dtype), cache
    if reference_kernels_enabled():
        out = roi_align_forward_reference(input, rois, (PH, PW), spatial_scale, sampling_ratio,
                                          aligned)
        return out, cache
    offsets, pos, weights = _sample_tables(rois, H, W, PH, PW, float(spatial_scale),
                                           int(sampling_ratio), bool(aligned))
    # (N, C, H, W) -> channels-last (N, H*W, C), so the kernel reads C contiguous values.
    input_hwc = np.ascontiguousarray(input.transpose(0, 2, 3, 1)).reshape(N, H * W, C)
    out = np.empty((rois.shape[0], C, PH * PW), dtype=input.dtype)
    _roi_align_forward_kernel(out, input_hwc, rois[:, 0].astype(np.int64), offsets, pos, weights)
    return out.reshape(rois.shape[0], C, PH, PW), cache


def roi_align_backward(dout, cache, channel_block=None):
    """Gradient w.r.t. input: float[N,C,H,W]. The boxes get no gradient.

    Args:
        dout (float[R,C,PH,PW]): upstream gradient.
        cache (RoIAlignCache): from roi_align_forward.
        channel_block (int or None): channels per parallel work item; None splits C
            evenly over Numba's threads. Speed only: the result is bitwise the same.
    """
    N, C, H, W = cache.input_shape
    PH, PW = cache.output_size
    R = cache.rois.shape[0]
    expected = (R, C, PH, PW)
    if not isinstance(dout, np.ndarray) or dout.shape != expected:
        raise ValueError(f"dout: expected shape {expected}, got "
                         f"{getattr(dout, 'shape', type(dout).__name__)}")
    dout = np.ascontiguousarray(dout, dtype=cache.dtype)
    if R == 0:
        return np.zeros(cache.input_shape, dtype=cache.dtype)
    if reference_kernels_enabled():
        return roi_align_backward_reference(dout, cache.input_shape, cache.rois, (PH, PW),
                                            cache.spatial_scale, cache.sampling_ratio,
                                            cache.aligned)
    offsets, pos, weights = _sample_tables(cache.rois, H, W, PH, PW, cache.spatial_scale,
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
    PH, PW = _check_output_size(output_size)
    roi = np.concatenate([[0.0], np.asarray(box, dtype=np.float64)]).astype(dtype)
    _, y1, x1, bin_h, bin_w, gh, gw = _roi_geometry_reference(roi, (PH, PW), spatial_scale,
                                                              sampling_ratio, aligned)
    ys = np.array([[_sample_coordinate(y1, p, bin_h, i, gh) for i in range(max(gh, 0))]
                   for p in range(PH)], dtype=dtype).reshape(PH, max(gh, 0))
    xs = np.array([[_sample_coordinate(x1, p, bin_w, i, gw) for i in range(max(gw, 0))]
                   for p in range(PW)], dtype=dtype).reshape(PW, max(gw, 0))
    return {"bin_h": float(bin_h), "bin_w": float(bin_w), "gh": gh, "gw": gw, "ys": ys, "xs": xs}
