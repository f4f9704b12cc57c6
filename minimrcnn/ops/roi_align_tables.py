"""RoIAlign's sample tables: where every bilinear sample of every RoI falls, computed once.

The Numba kernels of roi_align.py do not recompute the sample positions per channel:
``sample_tables`` lists, for every sample of every bin of every RoI, its 4 neighbour
cells (flat index ``y * W + x`` in the feature plane) and their bilinear weights, and
both the forward and the backward kernel read them for all C channels. The math is
the reference twin's in roi_align.py (``_roi_geometry_reference``,
``_sample_coordinate``, ``bilinear_interpolate``), written again for Numba; the tests
that compare kernels and twins check both.

Shape shorthand (docs/shapes.md): R RoIs, PH x PW pooled size, H, W feature size;
B samples per bin (gh * gw). A RoI owns PH * PW * B consecutive rows of the tables.
"""

from __future__ import annotations

import math

import numba
import numpy as np

@numba.njit(cache=True)
def _roi_grid(roi, PH, PW, spatial_scale, sampling_ratio, aligned):
    """(y1, x1, bin_h, bin_w, gh, gw) of one RoI in the RoI's dtype (twin: _roi_geometry_reference)."""
    ftype = roi.dtype.type
    offset = ftype(0.5) if aligned else ftype(0.0)
    scale = ftype(spatial_scale)
    x1 = roi[1] * scale - offset
    y1 = roi[2] * scale - offset
    roi_w = (roi[3] * scale - offset) - x1
    roi_h = (roi[4] * scale - offset) - y1
    if not aligned:
        roi_w = max(roi_w, ftype(1.0))
        roi_h = max(roi_h, ftype(1.0))
    bin_h = roi_h / ftype(PH)
    bin_w = roi_w / ftype(PW)
    gh = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_h / ftype(PH)))
    gw = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_w / ftype(PW)))
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
    ftype = weight_row.dtype.type
    pos_row[:] = 0
    weight_row[:] = ftype(0.0)
    if not (y >= -1 and y <= H and x >= -1 and x <= W):
        return
    y = max(y, ftype(0.0))
    x = max(x, ftype(0.0))
    y_low, x_low = int(y), int(x)
    y_high, x_high = y_low + 1, x_low + 1
    if y_low >= H - 1:                                               # snap to the last row
        y_low = y_high = H - 1
        y = ftype(y_low)
    if x_low >= W - 1:
        x_low = x_high = W - 1
        x = ftype(x_low)
    ly, lx = y - ftype(y_low), x - ftype(x_low)
    hy, hx = ftype(1.0) - ly, ftype(1.0) - lx
    pos_row[0], pos_row[1] = y_low * W + x_low, y_low * W + x_high
    pos_row[2], pos_row[3] = y_high * W + x_low, y_high * W + x_high
    weight_row[0], weight_row[1] = hy * hx, hy * lx
    weight_row[2], weight_row[3] = ly * hx, ly * lx


@numba.njit(cache=True, parallel=True)
def _roi_sample_tables(pos, weights, rois, offsets, H, W, PH, PW, spatial_scale, sampling_ratio, aligned):
    """Fill pos int64[offsets[-1], 4] and weights float[offsets[-1], 4] for every sample of every RoI.

    Parallel over RoIs: each RoI owns its rows offsets[r]:offsets[r+1].
    """
    ftype = rois.dtype.type
    for r in numba.prange(rois.shape[0]):                            # for each RoI
        y1, x1, bin_h, bin_w, gh, gw = _roi_grid(rois[r], PH, PW, spatial_scale, sampling_ratio, aligned)
        k = offsets[r]
        for ph in range(PH):                                         # for each output bin
            for pw in range(PW):
                for iy in range(gh):                                 # for each sample in the bin
                    y = (y1 + ftype(ph) * bin_h) + (ftype(iy + 0.5) * bin_h) / ftype(gh)
                    for ix in range(gw):
                        x = (x1 + ftype(pw) * bin_w) + (ftype(ix + 0.5) * bin_w) / ftype(gw)
                        _bilinear_entry(pos[k], weights[k], y, x, H, W)
                        k += 1


def sample_tables(rois, H, W, PH, PW, spatial_scale, sampling_ratio, aligned):
    """(offsets int64[R+1], pos int64[offsets[-1], 4], weights float[offsets[-1], 4]) of rois float[R, 5].

    RoI r owns rows offsets[r]:offsets[r+1]: PH * PW bins of B samples each, bin by bin.
    """
    offsets = _roi_sample_counts(rois, PH, PW, spatial_scale, sampling_ratio, aligned)
    pos = np.empty((offsets[-1], 4), dtype=np.int64)
    weights = np.empty((offsets[-1], 4), dtype=rois.dtype)
    _roi_sample_tables(pos, weights, rois, offsets, H, W, PH, PW, spatial_scale, sampling_ratio, aligned)
    return offsets, pos, weights
