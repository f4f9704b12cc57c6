"""2-D convolution (torch's cross-correlation) as im2col + one GEMM for the whole batch.

``out[n, o, y, x] = bias[o] + sum_{c, i, j} weight[o, c, i, j]
                   * x_padded[n, c, y*sH + i*dH, x*sW + j*dW]``

im2col unfolds every receptive field into a column, so the whole convolution becomes
one matrix product over the batch:

    cols     : [C_in*kH*kW, N*Ho*Wo]    (one column per output pixel of every image)
    out      = weight.reshape(C_out, C_in*kH*kW) @ cols      -> [C_out, N*Ho*Wo]

then a transpose to [N, C_out, Ho, Wo]. One large GEMM instead of N small ones matters
in the mask head, which convolves hundreds of 14x14 RoIs: BLAS reaches its throughput
only on large products, and NumPy's stacked ``matmul`` does not call BLAS per image.
The kernel writes cols as [Q, N, Ho*Wo] memory seen through an [N, Q, Ho*Wo] view, so
the per-image picture (``cols[n]``) and the batched GEMM share one buffer. The backward
is two more products of the same matrices:

    dweight = dout_matrix @ cols.T       dcols = weight.T @ dout_matrix
    dx      = col2im(dcols)   (the adjoint of im2col: scatter-add back to pixels)

with dout_matrix = dout as [C_out, N*Ho*Wo].

Output size, as torch: ``Ho = floor((H + 2*pH - dH*(kH-1) - 1) / sH) + 1``.
Example: H=32, k=3, pad=1, stride=1 -> 32; H=128, k=7, pad=3, stride=2 -> 64.

A 1x1 convolution with stride 1 and no padding needs no im2col: ``x[n]`` viewed as
[C_in, H*W] already is ``cols[n]``.

Stride-1 'same' convolutions (every 3x3 pad 1 conv in Mask R-CNN) take another road by
default: conv_shifted.py, kH GEMMs on shifted views of one padded buffer, with no
kH*kW-fold copy (docs/convolution.md). The im2col path here stays their reference.

Shape shorthand: N images, C_in / C_out channels, H, W input size, Ho, Wo output
size, kH, kW kernel size, Q = C_in*kH*kW rows of the unfolded matrix, Ho*Wo
output pixels per image.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from minimrcnn.nn.functional import conv_shifted
from minimrcnn.nn.functional.activation import relu_backward, relu_cache_of_output, relu_forward
from minimrcnn.runtime import reference_kernels_enabled
from minimrcnn.nn.functional._checks import check_array as _check_array
from minimrcnn.nn.functional._checks import check_conv_inputs
from minimrcnn.nn.functional._checks import pair as _pair



# ----------------------------------------------------------------------------------
# Argument handling
# ----------------------------------------------------------------------------------




def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """torch's output length: floor((size + 2p - d*(k-1) - 1) / s) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


# ----------------------------------------------------------------------------------
# Reference twins: plain NumPy, an independent witness for the kernels
# ----------------------------------------------------------------------------------
def im2col_reference(x, kernel_size, stride, padding, dilation, out_size):
    """Unfold x float[N, C, H, W] into cols float[N, C*kH*kW, Ho*Wo].

    Row ``(c*kH + i)*kW + j`` of cols holds, for every output pixel, the input
    pixel that kernel tap (i, j) of channel c sees. Zero padding is explicit.
    """
    N, C, H, W = x.shape
    (kH, kW), (sH, sW), (pH, pW), (dH, dW), (Ho, Wo) = kernel_size, stride, padding, dilation, out_size
    x_padded = np.pad(x, ((0, 0), (0, 0), (pH, pH), (pW, pW)))
    cols = np.zeros((N, C, kH, kW, Ho, Wo), dtype=x.dtype)
    # for each kernel tap: the input pixels it sees form a strided window of x_padded
    for i in range(kH):
        for j in range(kW):
            rows = slice(i * dH, i * dH + sH * (Ho - 1) + 1, sH)
            columns = slice(j * dW, j * dW + sW * (Wo - 1) + 1, sW)
            cols[:, :, i, j] = x_padded[:, :, rows, columns]
    return cols.reshape(N, C * kH * kW, Ho * Wo)


def col2im_reference(cols, in_shape, kernel_size, stride, padding, dilation, out_size):
    """Adjoint of im2col: scatter-add cols float[N, C*kH*kW, Ho*Wo] into float[N, C, H, W].

    A pixel seen by several kernel taps (overlapping windows) receives the sum.
    """
    N, C, H, W = in_shape
    (kH, kW), (sH, sW), (pH, pW), (dH, dW), (Ho, Wo) = kernel_size, stride, padding, dilation, out_size
    cols = cols.reshape(N, C, kH, kW, Ho, Wo)
    dx_padded = np.zeros((N, C, H + 2 * pH, W + 2 * pW), dtype=cols.dtype)
    for i in range(kH):
        for j in range(kW):
            rows = slice(i * dH, i * dH + sH * (Ho - 1) + 1, sH)
            columns = slice(j * dW, j * dW + sW * (Wo - 1) + 1, sW)
            # one tap never hits the same pixel twice, so a sliced += is exact
            dx_padded[:, :, rows, columns] += cols[:, :, i, j]
    return dx_padded[:, :, pH:pH + H, pW:pW + W].copy()


def conv2d_reference(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """Direct loops over output pixels: the definition, no im2col. For tests only (slow)."""
    (sH, sW), (pH, pW), (dH, dW) = _pair(stride, "stride", 1), _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)
    N, C_in, H, W = x.shape
    C_out, _, kH, kW = weight.shape
    Ho, Wo = conv_output_size(H, kH, sH, pH, dH), conv_output_size(W, kW, sW, pW, dW)
    x_padded = np.pad(x, ((0, 0), (0, 0), (pH, pH), (pW, pW)))
    out = np.zeros((N, C_out, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for y in range(Ho):
            for x_ in range(Wo):
                # the receptive field of output pixel (y, x_): C_in x kH x kW dilated taps
                field = x_padded[n, :, y * sH:y * sH + dH * (kH - 1) + 1:dH, x_ * sW:x_ * sW + dW * (kW - 1) + 1:dW]
                out[n, :, y, x_] = np.tensordot(weight, field, axes=3)
    if bias is not None:
        out += bias[None, :, None, None]
    return out


# ----------------------------------------------------------------------------------
# Numba kernels
# ----------------------------------------------------------------------------------
@numba.njit(cache=True)
def _valid_range(out_len, in_len, kernel_offset, stride, padding):
    """Output positions [lo, hi) whose input position o*stride - padding + kernel_offset
    lies inside [0, in_len): the rest read padding."""
    first = padding - kernel_offset                  # lo is the smallest o with o*stride >= first
    lo = 0 if first <= 0 else (first + stride - 1) // stride
    last = in_len + padding - kernel_offset          # hi is the smallest o with o*stride >= last
    hi = 0 if last <= 0 else (last + stride - 1) // stride
    hi = min(hi, out_len)
    return lo, max(hi, lo)


@numba.njit(cache=True, parallel=True)
def _im2col_kernel(cols, x, kH, kW, sH, sW, pH, pW, dH, dW, Ho, Wo):
    """im2col into cols float[Q, N, Ho*Wo] (the GEMM layout), padding as explicit zeros.

    Differs from the twin: writes the transposed layout [Q, N, Ho*Wo] (the twin returns
    [N, Q, Ho*Wo]); no padded copy of x; each output row is split into padding / inside /
    padding spans up front, so the copy loop has no branch; parallel over (image,
    channel), which owns rows c*kH*kW .. of column block n. Every write run is a
    contiguous stretch of Ho*Wo values.
    """
    N, C, H, W = x.shape
    for nc in numba.prange(N * C):
        n = nc // C
        c = nc % C
        # for each kernel tap (i, j): one row of cols
        for i in range(kH):
            y_lo, y_hi = _valid_range(Ho, H, i * dH, sH, pH)
            for j in range(kW):
                row = (c * kH + i) * kW + j
                x_lo, x_hi = _valid_range(Wo, W, j * dW, sW, pW)
                # for each output row: zeros where the tap reads padding, else a strided copy
                for y in range(Ho):
                    base = y * Wo
                    if y < y_lo or y >= y_hi:
                        for x_ in range(Wo):
                            cols[row, n, base + x_] = 0.0
                        continue
                    iy = y * sH - pH + i * dH
                    for x_ in range(x_lo):
                        cols[row, n, base + x_] = 0.0
                    for x_ in range(x_lo, x_hi):
                        cols[row, n, base + x_] = x[n, c, iy, x_ * sW - pW + j * dW]
                    for x_ in range(x_hi, Wo):
                        cols[row, n, base + x_] = 0.0
    return cols


@numba.njit(cache=True, parallel=True)
def _col2im_kernel(dx, cols, kH, kW, sH, sW, pH, pW, dH, dW, Ho, Wo):
    """col2im from cols float[Q, N, Ho*Wo]: add every entry into the zero-initialised dx it came from.

    Entries that came from padding are skipped (same spans as _im2col_kernel).
    Parallel over (image, channel) planes: all rows of cols that scatter into one
    plane belong to the same iteration, so no two threads touch one pixel.
    """
    N, C, H, W = dx.shape
    for nc in numba.prange(N * C):
        n = nc // C
        c = nc % C
        # for each kernel tap (i, j): one row of cols
        for i in range(kH):
            y_lo, y_hi = _valid_range(Ho, H, i * dH, sH, pH)
            for j in range(kW):
                row = (c * kH + i) * kW + j
                x_lo, x_hi = _valid_range(Wo, W, j * dW, sW, pW)
                # for each output pixel that read a real pixel: add its entry back there
                for y in range(y_lo, y_hi):
                    iy = y * sH - pH + i * dH
                    for x_ in range(x_lo, x_hi):
                        dx[n, c, iy, x_ * sW - pW + j * dW] += cols[row, n, y * Wo + x_]
    return dx


def im2col(x, kernel_size, stride, padding, dilation, out_size):
    """Dispatch im2col to the twin or the kernel. x float[N, C, H, W] contiguous.

    Returns cols float[N, Q, Ho*Wo]. From the kernel it is a view of a contiguous
    [Q, N, Ho*Wo] buffer, so ``gemm_columns(cols)`` is free.
    """
    if reference_kernels_enabled():
        return im2col_reference(x, kernel_size, stride, padding, dilation, out_size)
    N, C = x.shape[:2]
    buffer = np.empty((C * kernel_size[0] * kernel_size[1], N, out_size[0] * out_size[1]), dtype=x.dtype)
    _im2col_kernel(buffer, x, *kernel_size, *stride, *padding, *dilation, *out_size)
    return buffer.transpose(1, 0, 2)


def gemm_columns(cols):
    """cols float[N, Q, Ho*Wo] -> the GEMM operand float[Q, N*Ho*Wo] (no copy for im2col's output)."""
    N, Q, HoWo = cols.shape
    return np.ascontiguousarray(cols.transpose(1, 0, 2)).reshape(Q, N * HoWo)


def batch_major(matrix, N, spatial):
    """float[C, N*Ho*Wo] (a GEMM result) -> contiguous float[N, C, *spatial]."""
    C = matrix.shape[0]
    return np.ascontiguousarray(matrix.reshape(C, N, *spatial).swapaxes(0, 1))


def channel_major(x):
    """float[N, C, *spatial] -> float[C, N*Ho*Wo]: the batch as GEMM columns (free when N == 1)."""
    N, C = x.shape[:2]
    return np.ascontiguousarray(x.reshape(N, C, -1).swapaxes(0, 1)).reshape(C, -1)


def col2im(cols, in_shape, kernel_size, stride, padding, dilation, out_size):
    """Dispatch col2im to the twin or the kernel. cols float[N, C*kH*kW, Ho*Wo], any strides."""
    if reference_kernels_enabled():
        return col2im_reference(cols, in_shape, kernel_size, stride, padding, dilation, out_size)
    dx = np.zeros(in_shape, dtype=cols.dtype)
    cols_knp = np.ascontiguousarray(cols.transpose(1, 0, 2))   # free for views of a [Q, N, Ho*Wo] buffer
    return _col2im_kernel(dx, cols_knp, *kernel_size, *stride, *padding, *dilation, *out_size)


# ----------------------------------------------------------------------------------
# Public op
# ----------------------------------------------------------------------------------
class Conv2dCache(NamedTuple):
    """What conv2d_backward needs.

    The im2col path keeps the unfolded columns for the backward's dweight GEMM rather
    than recomputing them (im2col is memory-bound); the price is kH*kW copies of the
    input held until its backward. The shifted path keeps its stacked buffer instead
    (kW copies).
    """
    x: np.ndarray            # float[N, C_in, H, W], contiguous
    weight: np.ndarray       # float[C_out, C_in, kH, kW], contiguous
    has_bias: bool
    stride: tuple
    padding: tuple
    dilation: tuple
    out_size: tuple          # (Ho, Wo)
    cols: np.ndarray         # float[Q, N*Ho*Wo], the im2col GEMM operand (None: empty batch or shifted path)
    shifted: conv_shifted.ShiftedCache | None = None   # the shifted path's buffers
    relu_out: np.ndarray | None = None  # float[N, C_out, Ho, Wo]: the output, when a ReLU was applied (relu=True)


ALGORITHMS = ("auto", "im2col", "shifted")


def _choose_algorithm(algorithm, kernel_size, stride, padding, dilation) -> str:
    """'auto' -> 'shifted' where it applies (odd kernel, 'same' padding, stride 1), else 'im2col'."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"conv2d: algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    fits = conv_shifted.applies(kernel_size, stride, padding, dilation)
    if algorithm == "shifted" and not fits:
        raise ValueError(f"conv2d: algorithm 'shifted' needs stride 1, dilation 1 and padding (kH-1)/2, (kW-1)/2 "
                         f"with odd kH, kW; got kernel {kernel_size}, stride {stride}, padding {padding}, "
                         f"dilation {dilation}")
    return "shifted" if algorithm == "shifted" or (algorithm == "auto" and fits) else "im2col"


def _is_pointwise(kernel_size, stride, padding, dilation) -> bool:
    """1x1, stride 1, no padding: x[n] viewed as [C_in, H*W] is already cols[n]."""
    return kernel_size == (1, 1) and stride == (1, 1) and padding == (0, 0)


def _unfold(x, kernel_size, stride, padding, dilation, out_size):
    """cols float[N, C_in*kH*kW, Ho*Wo] for x float[N, C_in, H, W]."""
    if _is_pointwise(kernel_size, stride, padding, dilation):
        return x.reshape(x.shape[0], x.shape[1], -1)      # a view, no copy
    return im2col(x, kernel_size, stride, padding, dilation, out_size)


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, *, algorithm="auto", relu=False):
    """2-D convolution, as torch.nn.functional.conv2d with groups=1; optionally followed by a ReLU.

    Args:
        x (float[N, C_in, H, W]): input feature maps.
        weight (float[C_out, C_in, kH, kW]): filters, same dtype as x.
        bias (float[C_out] or None): added to every output pixel.
        stride, padding, dilation (int or (int, int)): as torch; padding is zeros.
        algorithm ("auto", "im2col" or "shifted"): "auto" takes the shifted GEMMs
            (conv_shifted.py) wherever they apply and im2col elsewhere; the others force one.
        relu: return relu(conv2d(...)) (relu_forward's values, bit for bit), and make
            conv2d_backward the backward of both. On the shifted path the ReLU is applied
            in the pass that writes the output, and the output doubles as the ReLU's mask.

    Returns:
        out (float[N, C_out, Ho, Wo]) and a Conv2dCache.

    Limitations:
        groups=1 and zero padding only (all Mask R-CNN needs); x and weight must
        share one dtype, as in torch.
    """
    check_conv_inputs(x, weight, bias, "float[C_out, C_in, kH, kW]", in_axis=1, out_axis=0)
    C_out, C_in, kH, kW = weight.shape
    stride, padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    dilation = _pair(dilation, "dilation", 1)
    N, _, H, W = x.shape
    Ho = conv_output_size(H, kH, stride[0], padding[0], dilation[0])
    Wo = conv_output_size(W, kW, stride[1], padding[1], dilation[1])
    if Ho < 1 or Wo < 1:
        raise ValueError(f"x of size {(H, W)} with padding {padding} is smaller than the dilated "
                         f"kernel {(kH, kW)} (dilation {dilation}): output size would be {(Ho, Wo)}")
    x, weight = np.ascontiguousarray(x), np.ascontiguousarray(weight)
    algorithm = _choose_algorithm(algorithm, (kH, kW), stride, padding, dilation)
    if N == 0:
        out = np.zeros((0, C_out, Ho, Wo), dtype=x.dtype)
        return out, Conv2dCache(x, weight, bias is not None, stride, padding, dilation, (Ho, Wo), None, None,
                                out if relu else None)
    if algorithm == "shifted":
        out, shifted = conv_shifted.forward(x, weight, bias, padding, relu)           # [N, C_out, Ho, Wo]
        return out, Conv2dCache(x, weight, bias is not None, stride, padding, dilation, (Ho, Wo), None, shifted,
                                out if relu else None)
    cols = gemm_columns(_unfold(x, (kH, kW), stride, padding, dilation, (Ho, Wo)))   # [Q, N*Ho*Wo]
    # [C_out, Q] @ [Q, N*Ho*Wo] -> [C_out, N*Ho*Wo]: one BLAS GEMM for the whole batch
    out = batch_major(weight.reshape(C_out, -1) @ cols, N, (Ho, Wo))                # [N, C_out, Ho, Wo]
    if bias is not None:
        out += bias[None, :, None, None]
    if relu:
        out = relu_forward(out)[0]
    cache = Conv2dCache(x, weight, bias is not None, stride, padding, dilation, (Ho, Wo), cols, None,
                        out if relu else None)
    return out, cache


def conv2d_backward(dout, cache: Conv2dCache, need_input_grad: bool = True):
    """Gradients of conv2d (of relu(conv2d) when the forward had ``relu``).

    Args:
        dout (float[N, C_out, Ho, Wo]): gradient of the loss w.r.t. out.
        need_input_grad: False skips dx (e.g. the first layer, fed the raw image).

    Returns:
        dx (float[N, C_in, H, W] or None), dweight (float[C_out, C_in, kH, kW]),
        dbias (float[C_out] or None when there was no bias).
    """
    x, weight = cache.x, cache.weight
    C_out, C_in, kH, kW = weight.shape
    N = x.shape[0]
    Ho, Wo = cache.out_size
    _check_array(dout, "dout", 4, "float[N, C_out, Ho, Wo]", x.dtype)
    if dout.shape != (N, C_out, Ho, Wo):
        raise ValueError(f"dout must have shape {(N, C_out, Ho, Wo)}, got {dout.shape}")
    if N == 0:
        dbias = np.zeros(C_out, x.dtype) if cache.has_bias else None
        return (np.zeros_like(x) if need_input_grad else None), np.zeros_like(weight), dbias
    if cache.shifted is not None:
        return conv_shifted.backward(dout, weight, cache.shifted, need_input_grad, cache.has_bias, cache.relu_out)
    if cache.relu_out is not None:
        dout = relu_backward(dout, relu_cache_of_output(cache.relu_out))
    kernel_size = (kH, kW)
    dout_matrix = channel_major(dout)                                   # [C_out, N*Ho*Wo]
    cols = cache.cols                                                   # [Q, N*Ho*Wo]
    # dweight = (cols @ dout_matrix.T).T : [Q, N*Ho*Wo] @ [N*Ho*Wo, C_out], summed over the batch by the
    # GEMM. Not dout_matrix @ cols.T: that orientation was once far slower with 2 OpenBLAS
    # threads on a shared machine (see conv_shifted.backward; benchmarks/experiments/gemm_orientation.py).
    dweight = np.ascontiguousarray((cols @ dout_matrix.T).T).reshape(weight.shape)
    dbias = dout_matrix.sum(axis=1) if cache.has_bias else None
    if not need_input_grad:
        return None, dweight, dbias
    # dcols = weight.T @ dout_matrix : [Q, C_out] @ [C_out, N*Ho*Wo]
    dcols = (weight.reshape(C_out, -1).T @ dout_matrix).reshape(-1, N, Ho * Wo).transpose(1, 0, 2)  # [N, Q, Ho*Wo]
    if _is_pointwise(kernel_size, cache.stride, cache.padding, cache.dilation):
        dx = np.ascontiguousarray(dcols).reshape(x.shape)
    else:
        dx = col2im(dcols, x.shape, kernel_size, cache.stride, cache.padding, cache.dilation, cache.out_size)
    return dx, dweight, dbias


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, *, algorithm="auto", relu=False):
    """conv2d_forward without the cache: float[N, C_out, Ho, Wo]."""
    return conv2d_forward(x, weight, bias, stride, padding, dilation, algorithm=algorithm, relu=relu)[0]
