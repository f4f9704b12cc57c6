"""'Same' stride-1 convolution as kH GEMMs on shifted views of one padded buffer (no im2col).

For a kernel kH x kW with padding (kH-1)/2, (kW-1)/2, stride 1 and dilation 1 (every
3x3 conv of Mask R-CNN: backbone, FPN, RPN head, the mask head's four), im2col copies
each input pixel kH*kW times. Here the input is copied about kW times instead, and the
rows (kH) come for free as offsets into the same buffer. docs/convolution.md walks
through it with a picture; in short:

1. The grid. The N images are laid out one after another, channel-major, on a grid
   of Hg = H + pH rows and Wg = W + pW columns per image: the pW zero columns right
   of a row are also the left padding of the next row, and the pH zero rows below an
   image are also the top padding of the next one. Grid position
   ``e = (n*Hg + y)*Wg + x`` for E = N*Hg*Wg positions.
2. The flat buffer. ``flat[c, margin + e]`` holds pixel (n, c, y, x) if y < H and
   x < W, else 0, with ``margin = pH*Wg + pW`` zeros before and after:
   float[C_in, E + 2*margin]. Kernel tap (i, j) of output e reads
   ``flat[c, e + i*Wg + j]``: one fixed offset per tap, for every output at once.
3. The stacked buffer. ``stacked[j, c, u] = flat[c, u + j]``: float[kW, C_in, U] with
   U = E + 2*pH*Wg. Viewed as [kW*C_in, U], its columns u .. u+E-1 starting at
   ``u = i*Wg`` are exactly the inputs of kernel row i for the E outputs, so
       out_grid[:, e] = sum_i (weight_row[i] @ stacked)[:, e + i*Wg]
   with weight_row[i][o, j*C_in + c] = weight[o, c, i, j]. All kH rows go in ONE GEMM,
   rows_product = weight_rows [kH*C_out, kW*C_in] @ stacked [kW*C_in, U], and the
   shifted sum over i is done while cropping (NumPy's matmul cannot add into its output,
   so kH separate GEMMs would need kH - 1 extra passes over [C_out, E]).
4. Crop: grid positions with y < H and x < W are the output; the rest is discarded.

Outputs on the padding positions are computed and thrown away: E / (N*H*W) is 1.15
on the mask head's 14x14 RoIs, 1.06 at 32x32.

Backward, with the gradient dout packed the same way (its flat buffer is zero off the
image, so the discarded positions contribute nothing):
    dweight_row[i] = dout_grid @ stacked[:, i*Wg : i*Wg + E].T    [C_out, kW*C_in]
    dx             = the same forward, on dout, with the weight flipped in both axes and
                     in/out channels swapped (a 'same' conv's adjoint is a 'same' conv).

Followed by a ReLU (``conv2d_forward(..., relu=True)``, the mask head's and the RPN head's
blocks), the crop also applies max(v, 0) to each channel's grid while it is in cache, and
the backward's stacking of dout keeps dout only where the output is > 0: the ReLU's own
passes over memory (its output, its mask, the masked gradient) are never made.

Shape shorthand: N images, C_in / C_out channels, H, W the input (= output) size,
Hg, Wg grid rows/columns per image, E = N*Hg*Wg grid positions, U stacked row length.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from minimrcnn.nn.functional.activation import relu_backward, relu_cache_of_output, relu_forward
from minimrcnn.runtime import reference_kernels_enabled


def applies(kernel_size, stride, padding, dilation) -> bool:
    """True for an odd kernel with 'same' padding, stride 1, dilation 1, larger than 1x1."""
    (kH, kW), (pH, pW) = kernel_size, padding
    return (stride == (1, 1) and dilation == (1, 1) and kH == 2 * pH + 1 and kW == 2 * pW + 1
            and (kH, kW) != (1, 1))


class GridGeometry(NamedTuple):
    """Sizes of the shared-padding grid for one batch (see the module docstring)."""
    N: int
    H: int
    W: int
    pH: int
    pW: int

    @property
    def Hg(self) -> int:
        return self.H + self.pH

    @property
    def Wg(self) -> int:
        return self.W + self.pW

    @property
    def E(self) -> int:
        return self.N * self.Hg * self.Wg

    @property
    def U(self) -> int:
        return self.E + 2 * self.pH * self.Wg


# ----------------------------------------------------------------------------------
# Reference twins: plain NumPy
# ----------------------------------------------------------------------------------
def stack_shifted_reference(x, kW, pH, pW, gate=None):
    """x float[N, C, H, W] -> stacked float[kW, C, U]: ``stacked[j, c, u] = flat[c, u + j]``.

    With ``gate`` float[N, C, H, W], x is taken as 0 where gate <= 0 (a ReLU's backward,
    gate its output).
    """
    if gate is not None:
        x = relu_backward(x, relu_cache_of_output(gate))
    N, C, H, W = x.shape
    geo = GridGeometry(N, H, W, pH, pW)
    grid = np.zeros((C, N, geo.Hg, geo.Wg), dtype=x.dtype)
    grid[:, :, :H, :W] = x.transpose(1, 0, 2, 3)
    margin = np.zeros((C, pH * geo.Wg + pW), dtype=x.dtype)
    flat = np.concatenate([margin, grid.reshape(C, geo.E), margin], axis=1)   # [C, E + 2*margin]
    return np.stack([flat[:, j:j + geo.U] for j in range(kW)])


def crop_grid_reference(rows_product, geo: GridGeometry, bias=None, relu=False):
    """rows_product float[kH, C, U] -> float[N, C, H, W] (+ bias float[C], then max(., 0) with ``relu``).

    The grid is the shifted sum ``grid[:, e] = sum_i rows_product[i, :, e + i*Wg]``,
    added in order i = 0, 1, ..; the output keeps its positions with y < H and x < W.
    The ReLU is relu_forward's rule: v where v > 0, else 0 (NaN too).
    """
    kH, C, U = rows_product.shape
    grid = rows_product[0, :, :geo.E].copy()                                 # [C, E]
    for i in range(1, kH):
        grid += rows_product[i, :, i * geo.Wg:i * geo.Wg + geo.E]
    out = grid.reshape(C, geo.N, geo.Hg, geo.Wg)[:, :, :geo.H, :geo.W].transpose(1, 0, 2, 3)
    out = np.ascontiguousarray(out)
    if bias is not None:
        out += bias[None, :, None, None]
    if relu:
        out = relu_forward(out)[0]
    return out


# ----------------------------------------------------------------------------------
# Numba kernels
# ----------------------------------------------------------------------------------
@numba.njit(cache=True, parallel=True)
def _stack_shifted_kernel(stacked, x, pH, pW, gate, gated):
    """Fill stacked float[kW, C, U] from x float[N, C, H, W] (every entry written once).

    With ``gated``, x counts as 0 where gate float[N, C, H, W] <= 0 (the twin's ``gate``);
    those image rows are copied value by value.

    Differs from the twin: no intermediate grid or flat buffer; parallel over the C
    channels. Copy j = 0 of a channel is written left to right in one pass: a run of
    zeros (the padding between image rows), then an image row's W pixels, and so on.
    Copy j is copy 0 moved left by j (``stacked[j, c, u] = flat[c, u + j]`` and
    ``stacked[0, c, u] = flat[c, u]``), so it is one long copy plus j zeros at the end
    (the trailing margin), instead of N*H short ones again: the short copies were most
    of the time. The copies are slice assignments, not element loops: Numba turns them
    into tight copies, where an element loop pays an index check per value (measured 2x
    slower).
    """
    kW, C, U = stacked.shape
    N, _, H, W = x.shape
    Hg, Wg = H + pH, W + pW
    margin = pH * Wg + pW
    for c in numba.prange(C):
        row = stacked[0, c]
        filled = 0                             # row[:filled] is written
        for n in range(N):
            for y in range(H):
                # this image row's W pixels start at u = margin + (n*Hg + y)*Wg
                start = margin + (n * Hg + y) * Wg
                hi = min(W, U - start)
                if start > filled:
                    row[filled:start] = 0
                if gated:
                    src, keep = x[n, c, y], gate[n, c, y]    # [W] each: one index per value below
                    for k in range(hi):
                        row[start + k] = src[k] if keep[k] > 0 else 0
                else:
                    row[start:start + hi] = x[n, c, y, :hi]
                filled = max(filled, start + hi)
        if U > filled:
            row[filled:U] = 0
        for j in range(1, kW):
            stacked[j, c, :U - j] = row[j:]
            stacked[j, c, U - j:] = 0
    return stacked


@numba.njit(cache=True, parallel=True)
def _crop_grid_kernel(out, rows_product, bias, has_bias, relu, Hg, Wg):
    """out float[N, C, H, W] = shifted sum of rows_product float[kH, C, U] at y < H, x < W (+ bias, ReLU).

    The twin's steps, one channel at a time and in parallel over channels: the kH terms
    are added in the twin's order over the channel's whole grid row (E values, a few long
    vector passes into a buffer that stays in cache), the bias too, and then each image
    row's W values are copied out. Summing output row by output row instead (kH + 1 short
    operations per row of W values) took twice as long on the mask head's 14 x 14 RoIs.
    With ``relu``, the grid gets max(v, 0) (the twin's rule) before the copy.
    """
    N, C, H, W = out.shape
    kH = rows_product.shape[0]
    E = N * Hg * Wg
    for c in numba.prange(C):
        grid = rows_product[0, c, :E].copy()            # [E]
        for i in range(1, kH):
            grid += rows_product[i, c, i * Wg:i * Wg + E]
        if has_bias:
            grid += bias[c]
        if relu:
            for e in range(E):
                grid[e] = grid[e] if grid[e] > 0 else 0      # NaN -> 0 too, as relu_forward
        for n in range(N):
            for y in range(H):
                base = (n * Hg + y) * Wg
                out[n, c, y, :] = grid[base:base + W]
    return out


def stack_shifted(x, kW, pH, pW, gate=None):
    """Dispatch: x float[N, C, H, W] contiguous -> stacked float[kW, C, U] (x taken as 0 where gate <= 0)."""
    if reference_kernels_enabled():
        return stack_shifted_reference(x, kW, pH, pW, gate)
    N, C, H, W = x.shape
    stacked = np.empty((kW, C, GridGeometry(N, H, W, pH, pW).U), dtype=x.dtype)
    gated = gate is not None
    gate = gate if gated else np.zeros((1, 1, 1, 1), x.dtype)
    return _stack_shifted_kernel(stacked, x, pH, pW, gate, gated)


def crop_grid(rows_product, geo: GridGeometry, bias=None, relu=False):
    """Dispatch: rows_product float[kH, C, U] -> float[N, C, H, W] (+ bias float[C], then ReLU)."""
    if reference_kernels_enabled():
        return crop_grid_reference(rows_product, geo, bias, relu)
    C = rows_product.shape[1]
    out = np.empty((geo.N, C, geo.H, geo.W), dtype=rows_product.dtype)
    has_bias = bias is not None
    bias = bias if has_bias else np.zeros(1, rows_product.dtype)
    return _crop_grid_kernel(out, rows_product, bias, has_bias, relu, geo.Hg, geo.Wg)


# ----------------------------------------------------------------------------------
# The GEMMs
# ----------------------------------------------------------------------------------
def weight_rows(weight):
    """weight float[C_out, C_in, kH, kW] -> float[kH, C_out, kW*C_in], [i][o, j*C_in + c] = weight[o, c, i, j]."""
    C_out, C_in, kH, kW = weight.shape
    return np.ascontiguousarray(weight.transpose(2, 0, 3, 1)).reshape(kH, C_out, kW * C_in)


def rows_gemm(stacked, weight):
    """rows_product float[kH, C_out, U] = weight_rows [kH*C_out, kW*C_in] @ stacked [kW*C_in, U].

    One GEMM for all kernel rows; crop_grid adds row i's block shifted by i*Wg.
    """
    kW, C_in, U = stacked.shape
    rows = weight_rows(weight)                             # [kH, C_out, kW*C_in]
    kH, C_out = rows.shape[:2]
    return (rows.reshape(kH * C_out, kW * C_in) @ stacked.reshape(kW * C_in, U)).reshape(kH, C_out, U)


class ShiftedCache(NamedTuple):
    """What backward needs: the stacked input (kW copies of x, not kH*kW as im2col)."""
    stacked: np.ndarray      # float[kW, C_in, U]
    geo: GridGeometry


def forward(x, weight, bias, padding, relu=False):
    """x float[N, C_in, H, W] contiguous, weight float[C_out, C_in, kH, kW] -> (out float[N, C_out, H, W], cache).

    With ``relu``, out is max(conv, 0).
    """
    N, C_in, H, W = x.shape
    kW = weight.shape[3]
    geo = GridGeometry(N, H, W, *padding)
    stacked = stack_shifted(x, kW, *padding)                 # [kW, C_in, U]
    out = crop_grid(rows_gemm(stacked, weight), geo, bias, relu)
    return out, ShiftedCache(stacked, geo)


def backward(dout, weight, cache: ShiftedCache, need_input_grad: bool, need_bias_grad: bool, relu_out=None):
    """dout float[N, C_out, H, W] -> (dx float[N, C_in, H, W] or None, dweight like weight,
    dbias float[C_out] or None).

    ``relu_out`` float[N, C_out, H, W]: the output of a forward with ``relu``; the gradient
    then flows only where it is > 0 (the ReLU's backward, applied while stacking dout).
    """
    stacked, geo = cache.stacked, cache.geo
    C_out, C_in, kH, kW = weight.shape
    dstacked = stack_shifted(np.ascontiguousarray(dout), kW, geo.pH, geo.pW, relu_out)    # [kW, C_out, U]
    # dout on the grid (zero off the image) is the centre copy j = pW, shifted by pH rows
    dout_grid = dstacked[geo.pW, :, geo.pH * geo.Wg:geo.pH * geo.Wg + geo.E]    # [C_out, E]
    matrix = stacked.reshape(kW * C_in, geo.U)
    # dweight_row[i].T = window_i [kW*C_in, E] @ dout_grid.T [E, C_out]: the sum over every
    # image and position is the GEMM's. This orientation, not [C_out, E] @ [E, kW*C_in]: on a
    # shared machine OpenBLAS with 2 threads was once far slower on that one; on a quiet one
    # they tie (docs/convolution.md, benchmarks/experiments/gemm_orientation.py).
    drows_t = np.empty((kH, kW * C_in, C_out), dtype=stacked.dtype)
    for i in range(kH):
        np.matmul(matrix[:, i * geo.Wg:i * geo.Wg + geo.E], dout_grid.T, out=drows_t[i])
    dweight = np.ascontiguousarray(drows_t.reshape(kH, kW, C_in, C_out).transpose(3, 2, 0, 1))  # [C_out, C_in, kH, kW]
    dbias = dout_grid.sum(axis=1) if need_bias_grad else None        # the zeros off the image add nothing
    if not need_input_grad:
        return None, dweight, dbias
    # the adjoint: flip the kernel, swap C_in and C_out -> weight float[C_in, C_out, kH, kW]
    flipped = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    dx = crop_grid(rows_gemm(dstacked, flipped), geo)
    return dx, dweight, dbias
