"""2-D max pooling with its argmax backward, as torch.nn.functional.max_pool2d.

Each output pixel is the maximum over a kH x kW window of its input plane:

    out[n, c, y, x] = max_{i, j} x_padded[n, c, y*sH + i, x*sW + j]

Padding is implicit -inf: padded cells never win. The window is scanned in
row-major order and the *first* maximum wins (a later equal value does not replace
it), exactly as torch's CPU kernel; a NaN always wins, so NaNs propagate.
Output size (ceil_mode=False): ``Ho = floor((H + 2*pH - kH) / sH) + 1``.
Example: ResNet's stem pool, 3x3 stride 2 pad 1, turns 400x544 into 200x272.

The backward routes each output gradient to the input pixel that won; windows
overlap when stride < kernel, so one input pixel may receive several gradients
(they add up).

Shape shorthand: N images, C channels, H, W input size, Ho, Wo output size.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from minimrcnn.nn.functional._checks import check_array as _check_array
from minimrcnn.nn.functional._checks import check_dout as _check_dout
from minimrcnn.nn.functional._checks import pair as _pair
from minimrcnn.runtime import reference_kernels_enabled


# ----------------------------------------------------------------------------------
# Reference twins
# ----------------------------------------------------------------------------------
def max_pool2d_forward_reference(x, kernel_size, stride, padding, out_size):
    """Loops over output pixels, vectorised over images and channels.

    Returns out float[N, C, Ho, Wo] and indices int64[N, C, Ho, Wo]: the flat index
    ``iy*W + ix`` of the winner within its plane (torch's ``return_indices``).
    """
    N, C, H, W = x.shape
    (kH, kW), (sH, sW), (pH, pW), (Ho, Wo) = kernel_size, stride, padding, out_size
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    indices = np.empty((N, C, Ho, Wo), dtype=np.int64)
    for y in range(Ho):
        # the window clipped to the real pixels: padded cells (-inf) can never win
        y0, y1 = max(y * sH - pH, 0), min(y * sH - pH + kH, H)
        for x_ in range(Wo):
            x0, x1 = max(x_ * sW - pW, 0), min(x_ * sW - pW + kW, W)
            window = x[:, :, y0:y1, x0:x1].reshape(N, C, -1)
            winner = np.argmax(window, axis=2)         # first maximum in row-major order
            out[:, :, y, x_] = np.take_along_axis(window, winner[:, :, None], axis=2)[:, :, 0]
            width = x1 - x0
            indices[:, :, y, x_] = (y0 + winner // width) * W + (x0 + winner % width)
    return out, indices


def max_pool2d_backward_reference(dout, indices, in_shape):
    """Scatter-add dout float[N, C, Ho, Wo] to the winners: dx float[N, C, H, W]."""
    N, C, H, W = in_shape
    dx = np.zeros((N * C, H * W), dtype=dout.dtype)
    planes = np.arange(N * C)[:, None]
    # np.add.at sums repeated winners (overlapping windows), a plain += would not
    np.add.at(dx, (planes, indices.reshape(N * C, -1)), dout.reshape(N * C, -1))
    return dx.reshape(in_shape)


# ----------------------------------------------------------------------------------
# Numba kernels
# ----------------------------------------------------------------------------------
@numba.njit(cache=True, parallel=True)
def _max_pool2d_forward_kernel(out, indices, x, kH, kW, sH, sW, pH, pW):
    """Scalar window scan. Parallel over (image, channel) planes, which own their outputs."""
    N, C, H, W = x.shape
    Ho, Wo = out.shape[2], out.shape[3]
    for nc in numba.prange(N * C):
        n = nc // C
        c = nc % C
        # for each output pixel
        for y in range(Ho):
            y0 = max(y * sH - pH, 0)
            y1 = min(y * sH - pH + kH, H)
            for x_ in range(Wo):
                x0 = max(x_ * sW - pW, 0)
                x1 = min(x_ * sW - pW + kW, W)
                best = -np.inf
                best_index = y0 * W + x0
                # for each real pixel of the window, row-major; strict > keeps the first max
                for iy in range(y0, y1):
                    for ix in range(x0, x1):
                        value = x[n, c, iy, ix]
                        if value > best or np.isnan(value):
                            best = value
                            best_index = iy * W + ix
                out[n, c, y, x_] = best
                indices[n, c, y, x_] = best_index
    return out, indices


@numba.njit(cache=True, parallel=True)
def _max_pool2d_backward_kernel(dx, dout, indices):
    """Scatter through the argmax. Parallel over planes: a winner lies in its own plane."""
    N, C, H, W = dx.shape
    Ho, Wo = dout.shape[2], dout.shape[3]
    for nc in numba.prange(N * C):
        n = nc // C
        c = nc % C
        for y in range(Ho):
            for x_ in range(Wo):
                index = indices[n, c, y, x_]
                dx[n, c, index // W, index % W] += dout[n, c, y, x_]
    return dx


# ----------------------------------------------------------------------------------
# Public op
# ----------------------------------------------------------------------------------
class MaxPool2dCache(NamedTuple):
    indices: np.ndarray      # int64[N, C, Ho, Wo], flat index iy*W + ix of each winner
    in_shape: tuple          # (N, C, H, W)
    dtype: np.dtype


def max_pool2d_forward(x, kernel_size, stride=None, padding=0):
    """Max pooling, as torch.nn.functional.max_pool2d (dilation 1, ceil_mode False).

    Args:
        x (float[N, C, H, W]): input.
        kernel_size, stride, padding (int or (int, int)): stride defaults to
            kernel_size; padding is implicit -inf and at most half the kernel.

    Returns:
        out (float[N, C, Ho, Wo]) and a MaxPool2dCache (the argmax indices).
    """
    _check_array(x, "x", 4, "float[N, C, H, W]")
    kernel_size = _pair(kernel_size, "kernel_size", 1)
    stride = kernel_size if stride is None else _pair(stride, "stride", 1)
    padding = _pair(padding, "padding", 0)
    if padding[0] > kernel_size[0] // 2 or padding[1] > kernel_size[1] // 2:
        raise ValueError(f"padding must be at most half of kernel_size {kernel_size}, got {padding}")
    N, C, H, W = x.shape
    Ho = (H + 2 * padding[0] - kernel_size[0]) // stride[0] + 1
    Wo = (W + 2 * padding[1] - kernel_size[1]) // stride[1] + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(f"x of size {(H, W)} is too small for kernel_size {kernel_size} with padding "
                         f"{padding}: output size would be {(Ho, Wo)}")
    x = np.ascontiguousarray(x)
    if reference_kernels_enabled():
        out, indices = max_pool2d_forward_reference(x, kernel_size, stride, padding, (Ho, Wo))
    else:
        out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
        indices = np.empty((N, C, Ho, Wo), dtype=np.int64)
        _max_pool2d_forward_kernel(out, indices, x, *kernel_size, *stride, *padding)
    return out, MaxPool2dCache(indices, x.shape, x.dtype)


def max_pool2d_backward(dout, cache: MaxPool2dCache):
    """Gradient of max_pool2d: dout float[N, C, Ho, Wo] -> dx float[N, C, H, W]."""
    _check_dout("max_pool2d_backward", dout, cache.indices.shape)
    dout = np.ascontiguousarray(dout, dtype=cache.dtype)
    if reference_kernels_enabled():
        return max_pool2d_backward_reference(dout, cache.indices, cache.in_shape)
    dx = np.zeros(cache.in_shape, dtype=dout.dtype)
    return _max_pool2d_backward_kernel(dx, dout, cache.indices)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """max_pool2d_forward without the cache: float[N, C, Ho, Wo]."""
    return max_pool2d_forward(x, kernel_size, stride, padding)[0]
