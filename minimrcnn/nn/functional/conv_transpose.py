"""2-D transposed convolution: the adjoint (the backward-of-input) of conv2d.

Every input pixel paints a weighted copy of the kernel into the output, at stride
spacing; overlapping paint adds. With conv2d's im2col language:

    cols[n] = weight.reshape(C_in, C_out*kH*kW).T @ x[n].reshape(C_in, H*W)
    out     = col2im(cols)        (scatter-add, output plays conv2d's input role)

so the forward is conv2d's dx computation and the backward is conv2d's forward:

    dcols[n] = im2col(dout)[n]                       [C_out*kH*kW, H*W]
    dx[n]    = weight.reshape(C_in, -1) @ dcols[n]   [C_in, H*W]
    dweight  = sum_n x[n] @ dcols[n].T               [C_in, C_out*kH*kW]

Output size, as torch (no output_padding, dilation 1):
``Ho = (H - 1)*sH - 2*pH + kH``. Example: the mask head's 2x2 stride-2 layer turns
14x14 into 28x28, and each output pixel comes from exactly one input pixel.

The im2col/col2im twins and kernels live in conv.py; this module arranges the GEMMs
around them. One case has its own path: kernel == stride and no padding (the mask head's
2x2 stride-2 layer). There the tiles do not overlap, so col2im's scatter-add is a plain
rearrangement, ``out[n, o, y*kH + i, x*kW + j] = cols[o*kH*kW + i*kW + j, (n, y, x)]``
(a "pixel shuffle"), and im2col in the backward is its inverse. ``tiles_to_image`` and
``image_to_tiles`` do just that, with twins, in a fraction of col2im's and im2col's time
(docs/convolution.md). Followed by a ReLU (``relu=True``, the mask predictor's
``conv5_mask``), the rearrangement also applies it, and the backward's gathering keeps dout
only where the output is > 0, as conv2d's shifted path does.

Shape shorthand: N images, C_in / C_out channels, H, W input size, Ho, Wo output size.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from minimrcnn.nn.functional._checks import check_conv_inputs
from minimrcnn.nn.functional.activation import relu_backward, relu_cache_of_output, relu_forward
from minimrcnn.runtime import reference_kernels_enabled
from minimrcnn.nn.functional.conv import (
    _check_array, _pair, batch_major, channel_major, col2im, gemm_columns, im2col,
)


def conv_transpose2d_reference(x, weight, bias=None, stride=1, padding=0):
    """The definition as loops: every input pixel paints ``x * weight`` at stride spacing.

    An independent witness for tests (no im2col, no GEMM); slow.
    """
    (sH, sW), (pH, pW) = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    N, C_in, H, W = x.shape
    _, C_out, kH, kW = weight.shape
    # paint on an uncropped canvas, then crop `padding` from every side
    canvas = np.zeros((N, C_out, (H - 1) * sH + kH, (W - 1) * sW + kW), dtype=x.dtype)
    for iy in range(H):
        for ix in range(W):
            # [N, C_in] x [C_in, C_out, kH, kW] -> [N, C_out, kH, kW]
            canvas[:, :, iy * sH:iy * sH + kH, ix * sW:ix * sW + kW] += np.tensordot(x[:, :, iy, ix], weight, axes=1)
    out = canvas[:, :, pH:canvas.shape[2] - pH, pW:canvas.shape[3] - pW].copy()
    if bias is not None:
        out += bias[None, :, None, None]
    return out


# ----------------------------------------------------------------------------------
# Kernel == stride, no padding: tiles that do not overlap
# ----------------------------------------------------------------------------------
def tiles_apart(kernel_size, stride, padding) -> bool:
    """True when each output pixel comes from exactly one input pixel: kernel == stride, padding 0."""
    return tuple(kernel_size) == tuple(stride) and tuple(padding) == (0, 0)


def tiles_to_image_reference(tiles, bias=None, relu=False):
    """tiles float[C_out, kH, kW, N, H, W] -> out float[N, C_out, H*kH, W*kW] (+ bias float[C_out], then ReLU).

    ``out[n, o, y*kH + i, x*kW + j] = tiles[o, i, j, n, y, x]``: input pixel (y, x)'s tile of
    kH x kW values goes to its own place in the output. The ReLU is relu_forward's rule:
    v where v > 0, else 0 (NaN too).
    """
    C_out, kH, kW, N, H, W = tiles.shape
    out = np.ascontiguousarray(tiles.transpose(3, 0, 4, 1, 5, 2)).reshape(N, C_out, H * kH, W * kW)
    # new arrays, not +=: when the transpose moves nothing (N = H = 1, say), out is a view of tiles
    if bias is not None:
        out = out + bias[None, :, None, None]
    return relu_forward(out)[0] if relu else out


def image_to_tiles_reference(image, kH, kW, gate=None):
    """image float[N, C, H*kH, W*kW] -> tiles float[C, kH, kW, N, H, W]; the inverse of tiles_to_image.

    With ``gate`` (like image), image is taken as 0 where gate <= 0 (a ReLU's backward).
    """
    if gate is not None:
        image = relu_backward(image, relu_cache_of_output(gate))
    N, C, Ho, Wo = image.shape
    return np.ascontiguousarray(image.reshape(N, C, Ho // kH, kH, Wo // kW, kW).transpose(1, 3, 5, 0, 2, 4))


@numba.njit(cache=True, parallel=True)
def _tiles_to_image_kernel(out, tiles, bias, has_bias, relu):
    """The twin's rearrangement (and bias, and ReLU), in parallel over channels; each output
    row is written in order.

    Element loops here, not strided slice copies (``row[j::kW] = ...``): those measured
    four times slower on the mask head's [64, 64, 14, 14] (docs/convolution.md).
    """
    C_out, kH, kW, N, H, W = tiles.shape
    for o in numba.prange(C_out):
        b = bias[o] if has_bias else bias.dtype.type(0)
        for n in range(N):
            for y in range(H):
                for i in range(kH):
                    row = out[n, o, y * kH + i]             # [W*kW]
                    for j in range(kW):
                        src = tiles[o, i, j, n, y]           # [W]
                        for x in range(W):
                            v = src[x] + b
                            row[x * kW + j] = v if not relu or v > 0 else 0    # NaN -> 0 too
    return out


@numba.njit(cache=True, parallel=True)
def _image_to_tiles_kernel(tiles, image, gate, gated):
    """The inverse: fill tiles float[C, kH, kW, N, H, W] from image float[N, C, H*kH, W*kW]
    (0 where gate <= 0, with ``gated``), in parallel over channels.

    Each image row is first copied, gated, into a small contiguous buffer (one select per
    value over contiguous memory), then split into its kW tiles. Selecting value by value
    while splitting (strided reads of image and gate) did not vectorise and was one of the
    largest non-GEMM costs of a trained training step (docs/convolution.md).
    """
    C, kH, kW, N, H, W = tiles.shape
    for c in numba.prange(C):
        line = np.empty(W * kW, dtype=image.dtype)          # one image row, gated
        for n in range(N):
            for y in range(H):
                for i in range(kH):
                    row = image[n, c, y * kH + i]            # [W*kW]
                    if gated:
                        keep = gate[n, c, y * kH + i]        # [W*kW]
                        for k in range(W * kW):
                            line[k] = row[k] if keep[k] > 0 else 0
                    else:
                        line[:] = row
                    for j in range(kW):
                        dst = tiles[c, i, j, n, y]           # [W]
                        for x in range(W):
                            dst[x] = line[x * kW + j]
    return tiles


def tiles_to_image(tiles, bias=None, relu=False):
    """Dispatch: tiles float[C_out, kH, kW, N, H, W] contiguous -> float[N, C_out, H*kH, W*kW] (+ bias, ReLU)."""
    if reference_kernels_enabled():
        return tiles_to_image_reference(tiles, bias, relu)
    C_out, kH, kW, N, H, W = tiles.shape
    out = np.empty((N, C_out, H * kH, W * kW), dtype=tiles.dtype)
    has_bias = bias is not None
    bias = bias if has_bias else np.zeros(1, tiles.dtype)
    return _tiles_to_image_kernel(out, tiles, bias, has_bias, relu)


def image_to_tiles(image, kH, kW, gate=None):
    """Dispatch: image float[N, C, H*kH, W*kW] contiguous -> tiles float[C, kH, kW, N, H, W] (0 where gate <= 0)."""
    if reference_kernels_enabled():
        return image_to_tiles_reference(image, kH, kW, gate)
    N, C, Ho, Wo = image.shape
    tiles = np.empty((C, kH, kW, N, Ho // kH, Wo // kW), dtype=image.dtype)
    gated = gate is not None
    gate = gate if gated else np.zeros((1, 1, 1, 1), image.dtype)
    return _image_to_tiles_kernel(tiles, image, gate, gated)


# ----------------------------------------------------------------------------------
# Public op
# ----------------------------------------------------------------------------------
class ConvTranspose2dCache(NamedTuple):
    """What conv_transpose2d_backward needs."""
    x: np.ndarray            # float[N, C_in, H, W], contiguous
    weight: np.ndarray       # float[C_in, C_out, kH, kW], contiguous
    has_bias: bool
    stride: tuple
    padding: tuple
    out_size: tuple          # (Ho, Wo)
    relu_out: np.ndarray | None = None  # float[N, C_out, Ho, Wo]: the output, when a ReLU was applied (relu=True)


def conv_transpose2d_forward(x, weight, bias=None, stride=1, padding=0, *, relu=False):
    """Transposed convolution, as torch.nn.functional.conv_transpose2d; optionally followed by a ReLU.

    Args:
        x (float[N, C_in, H, W]): input feature maps.
        weight (float[C_in, C_out, kH, kW]): torch's layout (input channels first).
        bias (float[C_out] or None)
        stride, padding (int or (int, int)): padding crops the painted output.
        relu: return relu(conv_transpose2d(...)) (relu_forward's values, bit for bit) and make
            conv_transpose2d_backward the backward of both, as conv2d_forward's ``relu``.

    Returns:
        out (float[N, C_out, Ho, Wo]) with Ho = (H-1)*sH - 2*pH + kH, and the cache.

    Limitations:
        groups=1, output_padding=0 and dilation=1 only (the mask head's 2x2 stride-2
        layer needs nothing more).
    """
    check_conv_inputs(x, weight, bias, "float[C_in, C_out, kH, kW]", in_axis=0, out_axis=1)
    C_in, C_out, kH, kW = weight.shape
    stride, padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    N, _, H, W = x.shape
    Ho, Wo = (H - 1) * stride[0] - 2 * padding[0] + kH, (W - 1) * stride[1] - 2 * padding[1] + kW
    if Ho < 1 or Wo < 1:
        raise ValueError(f"padding {padding} is too large for x of size {(H, W)}: output size would be {(Ho, Wo)}")
    x, weight = np.ascontiguousarray(x), np.ascontiguousarray(weight)
    if N == 0:
        out = np.zeros((0, C_out, Ho, Wo), dtype=x.dtype)
        return out, ConvTranspose2dCache(x, weight, bias is not None, stride, padding, (Ho, Wo), out if relu else None)
    # [C_out*kH*kW, C_in] @ [C_in, N*H*W] -> one GEMM for the batch
    cols = weight.reshape(C_in, -1).T @ channel_major(x)                      # [C_out*kH*kW, N*H*W]
    if tiles_apart((kH, kW), stride, padding):
        out = tiles_to_image(cols.reshape(C_out, kH, kW, N, H, W), bias, relu)
    else:
        # the output plays conv2d's input: conv2d(out, k, stride, padding) has size (H, W)
        out = col2im(cols.reshape(-1, N, H * W).transpose(1, 0, 2), (N, C_out, Ho, Wo), (kH, kW), stride, padding,
                     (1, 1), (H, W))
        if bias is not None:
            out += bias[None, :, None, None]
        if relu:
            out = relu_forward(out)[0]
    return out, ConvTranspose2dCache(x, weight, bias is not None, stride, padding, (Ho, Wo), out if relu else None)


def conv_transpose2d_backward(dout, cache: ConvTranspose2dCache):
    """Gradients of conv_transpose2d (of relu(conv_transpose2d) when the forward had ``relu``).

    Args:
        dout (float[N, C_out, Ho, Wo]): gradient of the loss w.r.t. out.

    Returns:
        dx (float[N, C_in, H, W]), dweight (float[C_in, C_out, kH, kW]),
        dbias (float[C_out] or None when there was no bias).
    """
    x, weight = cache.x, cache.weight
    C_in, C_out, kH, kW = weight.shape
    N, _, H, W = x.shape
    _check_array(dout, "dout", 4, "float[N, C_out, Ho, Wo]", x.dtype)
    if dout.shape != (N, C_out, *cache.out_size):
        raise ValueError(f"dout must have shape {(N, C_out, *cache.out_size)}, got {dout.shape}")
    dout = np.ascontiguousarray(dout)
    if N == 0:
        return np.zeros_like(x), np.zeros_like(weight), (np.zeros(C_out, x.dtype) if cache.has_bias else None)
    # gather back what each input pixel painted, as one GEMM operand [C_out*kH*kW, N*H*W]
    if tiles_apart((kH, kW), cache.stride, cache.padding):
        dcols = image_to_tiles(dout, kH, kW, cache.relu_out).reshape(C_out * kH * kW, N * H * W)
        # every entry of (the gated) dout is in exactly one row of its channel's block
        dbias = dcols.reshape(C_out, -1).sum(axis=1) if cache.has_bias else None
    else:
        if cache.relu_out is not None:
            dout = relu_backward(dout, relu_cache_of_output(cache.relu_out))
        dbias = dout.sum(axis=(0, 2, 3)) if cache.has_bias else None
        dcols = gemm_columns(im2col(dout, (kH, kW), cache.stride, cache.padding, (1, 1), (H, W)))
    weight_matrix = weight.reshape(C_in, -1)
    dx = batch_major(weight_matrix @ dcols, N, (H, W))                  # [N, C_in, H, W]
    # dweight = (dcols @ x_matrix.T).T : [C_out*kH*kW, N*H*W] @ [N*H*W, C_in], summed over the
    # batch (the orientation conv.py uses for its weight gradient, see there)
    dweight = np.ascontiguousarray((dcols @ channel_major(x).T).T).reshape(weight.shape)
    return dx, dweight, dbias


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, *, relu=False):
    """conv_transpose2d_forward without the cache: float[N, C_out, Ho, Wo]."""
    return conv_transpose2d_forward(x, weight, bias, stride, padding, relu=relu)[0]
