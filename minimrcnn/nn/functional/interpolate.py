"""Resize feature maps to a given size, as torch.nn.functional.interpolate(size=...).

This module holds the project's one copy of torch's resize formulas
(``nearest_source``, ``bilinear_source`` and their per-axis tables ``axis_sources``):
the FPN top-down path, the image transform (models/transform.py: images and target
masks) and mask pasting (ops/masks.py) all call them.

Two modes, each mapping an output pixel ``dst`` of an axis to input pixels with the
ratio ``scale = in / out`` (what torch uses when it is given a size, or a scale
factor with recompute_scale_factor=True):

* ``"nearest"`` (torch's legacy nearest, used by the FPN top-down path and for
  mask targets): ``src = min(floor(dst * scale), in - 1)`` with ``scale`` and the
  product in **float32**, whatever the input dtype, exactly as torch.
  Example: in=3, out=5: scale=0.6, dst 0..4 -> src 0, 0, 1, 1, 2.
* ``"bilinear"`` (align_corners=False, no antialiasing; the image transform):
  ``src = max((dst + 0.5) * scale - 0.5, 0)``, ``i0 = min(floor(src), in - 1)``,
  ``i1 = min(i0 + 1, in - 1)``, weights ``l1 = src - i0``, ``l0 = 1 - l1``, in the
  input's dtype (torch's op-math precision), separably per axis, in torch's order
  (along W within each row first, then between the two rows):
  ``out = ly0*(lx0*x[i0y, i0x] + lx1*x[i0y, i1x]) + ly1*(lx0*x[i1y, i0x] + lx1*x[i1y, i1x])``.
  Example: in=2, out=4: scale=0.5, dst 0..3 -> src 0, 0.25, 0.75, 1.25 -> clamps to i0=1=i1.

The backward sends each output gradient back to the input pixels it read, times
the same weights; several outputs read one input pixel, so gradients add up.

Shape shorthand: N images, C channels, H, W input size, Ho, Wo output size.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from minimrcnn.nn.functional._checks import came, check_array, check_dout, pair
from minimrcnn.runtime import reference_kernels_enabled

_MODES = ("nearest", "bilinear")


# ----------------------------------------------------------------------------------
# torch's source-pixel formulas, the one copy: interpolate, the image transform
# (models/transform.py) and mask pasting (ops/masks.py) all call these.
# ----------------------------------------------------------------------------------
@numba.njit(cache=True)
def nearest_source(dst, in_len, out_len):
    """Legacy nearest: input pixel ``min(floor(dst * in/out), in - 1)`` of output pixel ``dst``.

    The scale and the product are float32 whatever the data's dtype, exactly as torch.
    """
    scale = np.float32(in_len) / np.float32(out_len)
    return min(int(math.floor(np.float32(dst) * scale)), in_len - 1)


@numba.njit(cache=True)
def bilinear_source(dst, in_len, out_len, ftype):
    """align_corners=False: (i0, i1, l0, l1) of output pixel ``dst``, arithmetic in dtype ``ftype``.

    ``src = max((dst + 0.5) * in/out - 0.5, 0)``, ``i0 = min(floor(src), in - 1)``,
    ``i1 = min(i0 + 1, in - 1)``, ``l1 = src - i0``, ``l0 = 1 - l1``. ``ftype`` is the
    NumPy scalar type (``np.float32``: torch's op-math for float32 data).
    src < in - 0.5 always, so l1 lies in [0, 1) without a clip.
    """
    scale = ftype(in_len) / ftype(out_len)
    src = max((ftype(dst) + ftype(0.5)) * scale - ftype(0.5), ftype(0.0))
    i0 = min(int(math.floor(src)), in_len - 1)
    i1 = i0 + 1 if i0 < in_len - 1 else i0
    l1 = src - ftype(i0)
    return i0, i1, ftype(1.0) - l1, l1


@numba.njit(cache=True)
def _fill_axis_sources(i0, i1, l0, l1, in_len, bilinear, ftype):
    """Fill the four per-axis tables (length out_len) from the scalar formulas above."""
    out_len = i0.shape[0]
    for dst in range(out_len):
        if bilinear:
            i0[dst], i1[dst], l0[dst], l1[dst] = bilinear_source(dst, in_len, out_len, ftype)
        else:
            i0[dst] = i1[dst] = nearest_source(dst, in_len, out_len)
            l0[dst], l1[dst] = ftype(1.0), ftype(0.0)


def axis_sources(in_len, out_len, mode, dtype=np.float32):
    """Source pixels of one axis: i0, i1 int64[out_len] and weights l0, l1 dtype[out_len].

    Output pixel ``dst`` reads ``l0[dst] * in[i0[dst]] + l1[dst] * in[i1[dst]]``; for
    ``"nearest"`` i1 = i0, l0 = 1, l1 = 0. Example: bilinear in=2, out=4 gives
    i0 = [0, 0, 0, 1], i1 = [1, 1, 1, 1], l1 = [0, 0.25, 0.75, 0.25].
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    dtype = np.dtype(dtype).type
    i0, i1 = np.empty(out_len, np.int64), np.empty(out_len, np.int64)
    l0, l1 = np.empty(out_len, dtype), np.empty(out_len, dtype)
    _fill_axis_sources(i0, i1, l0, l1, int(in_len), mode == "bilinear", dtype)
    return i0, i1, l0, l1


# ----------------------------------------------------------------------------------
# Reference twins: per-pixel loops, vectorised over images and channels
# ----------------------------------------------------------------------------------
def _source_pixels_reference(dst, in_len, out_len, mode, dtype):
    """(i0, i1, l0, l1) of one output coordinate, from the shared scalar formulas."""
    if mode == "nearest":
        i0 = nearest_source(dst, in_len, out_len)
        return i0, i0, dtype(1), dtype(0)
    i0, i1, l0, l1 = bilinear_source(dst, in_len, out_len, dtype)
    return i0, i1, dtype(l0), dtype(l1)


def interpolate_forward_reference(x, size, mode):
    """x float[N, C, H, W] -> float[N, C, Ho, Wo] by the formulas of the module docstring."""
    N, C, H, W = x.shape
    Ho, Wo = size
    dtype = x.dtype.type
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    for y in range(Ho):
        i0y, i1y, l0y, l1y = _source_pixels_reference(y, H, Ho, mode, dtype)
        for x_ in range(Wo):
            i0x, i1x, l0x, l1x = _source_pixels_reference(x_, W, Wo, mode, dtype)
            if mode == "nearest":
                out[:, :, y, x_] = x[:, :, i0y, i0x]
            else:
                top = l0x * x[:, :, i0y, i0x] + l1x * x[:, :, i0y, i1x]
                bottom = l0x * x[:, :, i1y, i0x] + l1x * x[:, :, i1y, i1x]
                out[:, :, y, x_] = l0y * top + l1y * bottom
    return out


def interpolate_backward_reference(dout, in_shape, mode):
    """dout float[N, C, Ho, Wo] -> dx float[N, C, H, W], the adjoint of the forward."""
    N, C, H, W = in_shape
    Ho, Wo = dout.shape[2:]
    dtype = dout.dtype.type
    dx = np.zeros(in_shape, dtype=dout.dtype)
    for y in range(Ho):
        i0y, i1y, l0y, l1y = _source_pixels_reference(y, H, Ho, mode, dtype)
        for x_ in range(Wo):
            i0x, i1x, l0x, l1x = _source_pixels_reference(x_, W, Wo, mode, dtype)
            g = dout[:, :, y, x_]
            if mode == "nearest":
                dx[:, :, i0y, i0x] += g
            else:
                # += one tap at a time: i0 and i1 coincide at the border
                dx[:, :, i0y, i0x] += l0y * l0x * g
                dx[:, :, i0y, i1x] += l0y * l1x * g
                dx[:, :, i1y, i0x] += l1y * l0x * g
                dx[:, :, i1y, i1x] += l1y * l1x * g
    return dx


# ----------------------------------------------------------------------------------
# Numba kernels: the per-axis source pixels come precomputed (see axis_sources)
# ----------------------------------------------------------------------------------
@numba.njit(cache=True, parallel=True)
def _nearest_forward_kernel(out, x, iy, ix):
    """Gather; parallel over (image, channel) planes, which own their outputs."""
    N, C, Ho, Wo = out.shape
    for nc in numba.prange(N * C):
        n = nc // C
        c = nc % C
        for y in range(Ho):
            for x_ in range(Wo):
                out[n, c, y, x_] = x[n, c, iy[y], ix[x_]]
    return out


@numba.njit(cache=True, parallel=True)
def _nearest_backward_kernel(dx, dout, iy, ix):
    """Scatter-add; parallel over planes, so no two threads write one pixel."""
    N, C, Ho, Wo = dout.shape
    for nc in numba.prange(N * C):
        n = nc // C
        c = nc % C
        for y in range(Ho):
            for x_ in range(Wo):
                dx[n, c, iy[y], ix[x_]] += dout[n, c, y, x_]
    return dx


@numba.njit(cache=True, parallel=True)
def _bilinear_forward_kernel(out, x, i0y, i1y, l0y, l1y, i0x, i1x, l0x, l1x):
    """Four-tap gather with per-axis weights; parallel over planes."""
    N, C, Ho, Wo = out.shape
    for nc in numba.prange(N * C):
        n = nc // C
        c = nc % C
        for y in range(Ho):
            for x_ in range(Wo):
                top = l0x[x_] * x[n, c, i0y[y], i0x[x_]] + l1x[x_] * x[n, c, i0y[y], i1x[x_]]
                bottom = l0x[x_] * x[n, c, i1y[y], i0x[x_]] + l1x[x_] * x[n, c, i1y[y], i1x[x_]]
                out[n, c, y, x_] = l0y[y] * top + l1y[y] * bottom
    return out


@numba.njit(cache=True, parallel=True)
def _bilinear_backward_kernel(dx, dout, i0y, i1y, l0y, l1y, i0x, i1x, l0x, l1x):
    """Four-tap scatter-add; parallel over planes, so no two threads write one pixel."""
    N, C, Ho, Wo = dout.shape
    for nc in numba.prange(N * C):
        n = nc // C
        c = nc % C
        for y in range(Ho):
            for x_ in range(Wo):
                g = dout[n, c, y, x_]
                dx[n, c, i0y[y], i0x[x_]] += l0y[y] * l0x[x_] * g
                dx[n, c, i0y[y], i1x[x_]] += l0y[y] * l1x[x_] * g
                dx[n, c, i1y[y], i0x[x_]] += l1y[y] * l0x[x_] * g
                dx[n, c, i1y[y], i1x[x_]] += l1y[y] * l1x[x_] * g
    return dx


# ----------------------------------------------------------------------------------
# Public op
# ----------------------------------------------------------------------------------
class InterpolateCache(NamedTuple):
    in_shape: tuple          # (N, C, H, W)
    out_size: tuple          # (Ho, Wo)
    mode: str
    dtype: np.dtype


def interpolate_forward(x, size, mode="nearest"):
    """Resize x float[N, C, H, W] to float[N, C, Ho, Wo], size = (Ho, Wo) or an int.

    Modes and their exact index arithmetic are in the module docstring.
    """
    check_array(x, "x", 4, "float[N, C, H, W]")
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    Ho, Wo = pair(size, "size", 1)
    N, C, H, W = x.shape
    if H < 1 or W < 1:
        raise ValueError(f"x must have a non-empty spatial size H, W, got {came(x)}")
    x = np.ascontiguousarray(x)
    if reference_kernels_enabled():
        out = interpolate_forward_reference(x, (Ho, Wo), mode)
    else:
        out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
        rows, columns = axis_sources(H, Ho, mode, x.dtype), axis_sources(W, Wo, mode, x.dtype)
        if mode == "nearest":
            _nearest_forward_kernel(out, x, rows[0], columns[0])
        else:
            _bilinear_forward_kernel(out, x, *rows, *columns)
    return out, InterpolateCache(x.shape, (Ho, Wo), mode, x.dtype)


def interpolate_backward(dout, cache: InterpolateCache):
    """Gradient of interpolate: dout float[N, C, Ho, Wo] -> dx float[N, C, H, W]."""
    N, C, H, W = cache.in_shape
    Ho, Wo = cache.out_size
    check_dout("interpolate_backward", dout, (N, C, Ho, Wo))
    dout = np.ascontiguousarray(dout, dtype=cache.dtype)
    if reference_kernels_enabled():
        return interpolate_backward_reference(dout, cache.in_shape, cache.mode)
    dx = np.zeros(cache.in_shape, dtype=dout.dtype)
    rows, columns = axis_sources(H, Ho, cache.mode, dout.dtype), axis_sources(W, Wo, cache.mode, dout.dtype)
    if cache.mode == "nearest":
        return _nearest_backward_kernel(dx, dout, rows[0], columns[0])
    return _bilinear_backward_kernel(dx, dout, *rows, *columns)


def interpolate(x, size, mode="nearest"):
    """interpolate_forward without the cache: float[N, C, Ho, Wo]."""
    return interpolate_forward(x, size, mode)[0]
