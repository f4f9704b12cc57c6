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
       out_grid = sum_i weight_row[i] @ stacked[:, i*Wg : i*Wg + E]
   with weight_row[i][o, j*C_in + c] = weight[o, c, i, j]: kH GEMMs
   [C_out, kW*C_in] @ [kW*C_in, E] -> [C_out, E].
4. Crop: grid positions with y < H and x < W are the output; the rest is discarded.

Outputs on the padding positions are computed and thrown away: E / (N*H*W) is 1.15
on the mask head's 14x14 RoIs, 1.06 at 32x32.

Backward, with the gradient dout packed the same way (its flat buffer is zero off the
image, so the discarded positions contribute nothing):
    dweight_row[i] = dout_grid @ stacked[:, i*Wg : i*Wg + E].T    [C_out, kW*C_in]
    dx             = the same forward, on dout, with the weight flipped in both axes and
                     in/out channels swapped (a 'same' conv's adjoint is a 'same' conv).

Shape shorthand: N images, C_in / C_out channels, H, W the input (= output) size,
Hg, Wg grid rows/columns per image, E = N*Hg*Wg grid positions, U stacked row length.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from minimrcnn.config import reference_kernels_enabled


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
def stack_shifted_reference(x, kW, pH, pW):
    """x float[N, C, H, W] -> stacked float[kW, C, U]: ``stacked[j, c, u] = flat[c, u + j]``."""
    N, C, H, W = x.shape
    geo = GridGeometry(N, H, W, pH, pW)
    grid = np.zeros((C, N, geo.Hg, geo.Wg), dtype=x.dtype)
    grid[:, :, :H, :W] = x.transpose(1, 0, 2, 3)
    margin = np.zeros((C, pH * geo.Wg + pW), dtype=x.dtype)
    flat = np.concatenate([margin, grid.reshape(C, geo.E), margin], axis=1)   # [C, E + 2*margin]
    return np.stack([flat[:, j:j + geo.U] for j in range(kW)])


def crop_grid_reference(grid, geo: GridGeometry, bias=None):
    """grid float[C, E] -> float[N, C, H, W]: keep the positions with y < H and x < W (+ bias)."""
    C = grid.shape[0]
    out = grid.reshape(C, geo.N, geo.Hg, geo.Wg)[:, :, :geo.H, :geo.W].transpose(1, 0, 2, 3)
    out = np.ascontiguousarray(out)
    if bias is not None:
        out += bias[None, :, None, None]
    return out


# ----------------------------------------------------------------------------------
# Numba kernels
# ----------------------------------------------------------------------------------
@numba.njit(cache=True, parallel=True)
def _stack_shifted_kernel(stacked, x, pH, pW):
    """Fill stacked float[kW, C, U] from x float[N, C, H, W] (every entry written).

    Differs from the twin: no intermediate grid or flat buffer; parallel over the
    kW*C rows. Each row (U values, ~115 kB on the mask head) is zeroed and then the
    image rows are copied into it while it is still in cache.
    """
    kW, C, U = stacked.shape
    N, _, H, W = x.shape
    Hg, Wg = H + pH, W + pW
    margin = pH * Wg + pW
    for jc in numba.prange(kW * C):
        j = jc // C
        c = jc % C
        row = stacked[j, c]
        row[:] = 0
        # for each image row: its W pixels start at u = margin - j + (n*Hg + y)*Wg
        for n in range(N):
            for y in range(H):
                start = margin - j + (n * Hg + y) * Wg
                lo = max(0, -start)            # only with pH == 0: pixels no tap j reads
                hi = min(W, U - start)
                for x_ in range(lo, hi):
                    row[start + x_] = x[n, c, y, x_]
    return stacked


@numba.njit(cache=True, parallel=True)
def _crop_grid_kernel(out, grid, bias, has_bias, Hg, Wg):
    """out float[N, C, H, W] = grid float[C, E] at positions y < H, x < W (+ bias).

    Parallel over (image, channel) planes; each output row is one contiguous run of
    the grid.
    """
    N, C, H, W = out.shape
    for nc in numba.prange(N * C):
        n = nc // C
        c = nc % C
        b = bias[c] if has_bias else 0.0
        for y in range(H):
            base = (n * Hg + y) * Wg
            for x_ in range(W):
                out[n, c, y, x_] = grid[c, base + x_] + b
    return out


def stack_shifted(x, kW, pH, pW):
    """Dispatch: x float[N, C, H, W] contiguous -> stacked float[kW, C, U]."""
    if reference_kernels_enabled():
        return stack_shifted_reference(x, kW, pH, pW)
    N, C, H, W = x.shape
    stacked = np.empty((kW, C, GridGeometry(N, H, W, pH, pW).U), dtype=x.dtype)
    return _stack_shifted_kernel(stacked, x, pH, pW)


def crop_grid(grid, geo: GridGeometry, bias=None):
    """Dispatch: grid float[C, E] -> float[N, C, H, W] (+ bias float[C])."""
    if reference_kernels_enabled():
        return crop_grid_reference(grid, geo, bias)
    C = grid.shape[0]
    out = np.empty((geo.N, C, geo.H, geo.W), dtype=grid.dtype)
    has_bias = bias is not None
    return _crop_grid_kernel(out, grid, bias if has_bias else np.zeros(1, grid.dtype), has_bias, geo.Hg, geo.Wg)


# ----------------------------------------------------------------------------------
# The GEMMs
# ----------------------------------------------------------------------------------
def weight_rows(weight):
    """weight float[C_out, C_in, kH, kW] -> float[kH, C_out, kW*C_in], [i][o, j*C_in + c] = weight[o, c, i, j]."""
    C_out, C_in, kH, kW = weight.shape
    return np.ascontiguousarray(weight.transpose(2, 0, 3, 1)).reshape(kH, C_out, kW * C_in)


def shifted_gemms(stacked, weight, geo: GridGeometry):
    """out_grid float[C_out, E] = sum_i weight_rows[i] @ stacked[:, i*Wg : i*Wg + E].

    stacked float[kW, C_in, U] (from stack_shifted). The kH products are added in
    order i = 0, 1, ..; each operand is a column window of one buffer (no copy).
    """
    kW, C_in, U = stacked.shape
    rows = weight_rows(weight)                             # [kH, C_out, kW*C_in]
    matrix = stacked.reshape(kW * C_in, U)
    E, Wg = geo.E, geo.Wg
    out = rows[0] @ matrix[:, :E]                          # [C_out, E]
    product = np.empty_like(out)
    for i in range(1, rows.shape[0]):
        np.matmul(rows[i], matrix[:, i * Wg:i * Wg + E], out=product)
        out += product
    return out


class ShiftedCache(NamedTuple):
    """What backward needs: the stacked input (kW copies of x, not kH*kW as im2col)."""
    stacked: np.ndarray      # float[kW, C_in, U]
    geo: GridGeometry


def forward(x, weight, bias, padding):
    """x float[N, C_in, H, W] contiguous, weight float[C_out, C_in, kH, kW] -> (out float[N, C_out, H, W], cache)."""
    N, C_in, H, W = x.shape
    kW = weight.shape[3]
    geo = GridGeometry(N, H, W, *padding)
    stacked = stack_shifted(x, kW, *padding)                 # [kW, C_in, U]
    out = crop_grid(shifted_gemms(stacked, weight, geo), geo, bias)
    return out, ShiftedCache(stacked, geo)


def backward(dout, weight, cache: ShiftedCache, need_input_grad: bool, need_bias_grad: bool):
    """dout float[N, C_out, H, W] -> (dx float[N, C_in, H, W] or None, dweight like weight,
    dbias float[C_out] or None)."""
    stacked, geo = cache.stacked, cache.geo
    C_out, C_in, kH, kW = weight.shape
    dstacked = stack_shifted(np.ascontiguousarray(dout), kW, geo.pH, geo.pW)    # [kW, C_out, U]
    # dout on the grid (zero off the image) is the centre copy j = pW, shifted by pH rows
    dout_grid = dstacked[geo.pW, :, geo.pH * geo.Wg:geo.pH * geo.Wg + geo.E]    # [C_out, E]
    matrix = stacked.reshape(kW * C_in, geo.U)
    drows = np.empty((kH, C_out, kW * C_in), dtype=stacked.dtype)
    for i in range(kH):
        # [C_out, E] @ [E, kW*C_in]: the sum over every image and position is the GEMM's
        np.matmul(dout_grid, matrix[:, i * geo.Wg:i * geo.Wg + geo.E].T, out=drows[i])
    dweight = np.ascontiguousarray(drows.reshape(kH, C_out, kW, C_in).transpose(1, 3, 0, 2))  # [C_out, C_in, kH, kW]
    dbias = dout_grid.sum(axis=1) if need_bias_grad else None        # the zeros off the image add nothing
    if not need_input_grad:
        return None, dweight, dbias
    # the adjoint: flip the kernel, swap C_in and C_out -> weight float[C_in, C_out, kH, kW]
    flipped = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    dx = crop_grid(shifted_gemms(dstacked, flipped, geo), geo)
    return dx, dweight, dbias
