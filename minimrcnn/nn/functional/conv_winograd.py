"""3x3 stride-1 pad-1 convolution by Winograd's minimal filtering F(2x2, 3x3).

The output is cut into 2x2 tiles; each needs the 4x4 input tile around it. For one
tile and one (input, output) channel pair, with g the 3x3 filter and d the 4x4 input
tile (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016):

    Y[2x2] = A^T [ (G g G^T) (.) (B^T d B) ] A          (.) elementwise, on 4x4

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]

Summed over input channels, each of the 16 positions (xi, nu) of the 4x4 product is a
GEMM over channels, for every tile at once:

    U[k] = (G g G^T)[xi, nu]       float[C_out, C_in]     k = 4*xi + nu, 16 of them
    V[k] = (B^T d B)[xi, nu]       float[C_in, T]         T = N * th * tw tiles
    M[k] = U[k] @ V[k]             float[C_out, T]
    out  = A^T M A per tile        float[N, C_out, H, W]

16 multiplies per 2x2 outputs instead of 36: 2.25x fewer FLOPs in the GEMMs than direct
convolution, at the price of three elementwise passes (the input, output and filter
transforms). The backward is the adjoint of each step:

    dM[k] = A dY A^T per tile                          float[16, C_out, T]
    dU[k] = dM[k] @ V[k]^T   -> dweight = G^T dU G     float[C_out, C_in, 3, 3]
    dV[k] = U[k]^T @ dM[k]   -> dx = B dV B^T per tile, tiles added where they overlap

Tiles: th = ceil(H/2) by tw = ceil(W/2) per image; tile (a, b) of image n is column
t = (n*th + a)*tw + b and reads input rows 2a-1 .. 2a+2 and columns 2b-1 .. 2b+2 (zero
outside the image: the padding of 1). An odd H or W gives a last tile half outside the
output, computed and dropped.

Each transform has a plain NumPy twin (``*_reference``, einsum over an explicit tile
array) and a Numba kernel (one loop over tiles per (image, channel) plane, the 4x4
arithmetic written out). ``conv2d(..., algorithm="winograd")`` selects this path;
docs/convolution.md has every array's shape and the measurements.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from minimrcnn.runtime import reference_kernels_enabled

BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)   # [4, 4]
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)      # [4, 3]
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)                                # [2, 4]


def applies(kernel_size, stride, padding, dilation) -> bool:
    """The one case F(2x2, 3x3) is written for: 3x3, stride 1, padding 1, dilation 1."""
    return kernel_size == (3, 3) and stride == (1, 1) and padding == (1, 1) and dilation == (1, 1)


class TileGeometry(NamedTuple):
    N: int
    H: int
    W: int

    @property
    def th(self) -> int:
        return (self.H + 1) // 2

    @property
    def tw(self) -> int:
        return (self.W + 1) // 2

    @property
    def T(self) -> int:
        return self.N * self.th * self.tw


# ----------------------------------------------------------------------------------
# Filter transform (small: C_out*C_in*9 values, NumPy only)
# ----------------------------------------------------------------------------------
def filter_transform(weight):
    """weight float[C_out, C_in, 3, 3] -> U float[16, C_out, C_in] = G g G^T at every (xi, nu)."""
    g = G.astype(weight.dtype)
    return np.ascontiguousarray(np.einsum("xk,ockl,yl->xyoc", g, weight, g)).reshape(16, *weight.shape[:2])


def filter_transform_adjoint(dU):
    """dU float[16, C_out, C_in] -> dweight float[C_out, C_in, 3, 3] = G^T dU G."""
    g = G.astype(dU.dtype)
    return np.ascontiguousarray(np.einsum("xk,xyoc,yl->ockl", g, dU.reshape(4, 4, *dU.shape[1:]), g))


# ----------------------------------------------------------------------------------
# Reference twins: plain NumPy on an explicit tile array
# ----------------------------------------------------------------------------------
def input_tiles_reference(x):
    """x float[N, C, H, W] -> tiles float[N, C, th, tw, 4, 4]: tiles[n, c, a, b, p, q] = x_pad[n, c, 2a+p, 2b+q]."""
    N, C, H, W = x.shape
    geo = TileGeometry(N, H, W)
    padded = np.zeros((N, C, 2 * geo.th + 2, 2 * geo.tw + 2), dtype=x.dtype)
    padded[:, :, 1:H + 1, 1:W + 1] = x
    tiles = np.empty((N, C, geo.th, geo.tw, 4, 4), dtype=x.dtype)
    for p in range(4):
        for q in range(4):
            tiles[..., p, q] = padded[:, :, p:p + 2 * geo.th:2, q:q + 2 * geo.tw:2]
    return tiles


def input_transform_reference(x):
    """x float[N, C, H, W] -> V float[16, C, T]: V[4*xi + nu, c, t] = (B^T d B)[xi, nu] of tile t."""
    N, C = x.shape[:2]
    bt = BT.astype(x.dtype)
    V = np.einsum("xp,ncabpq,yq->xycnab", bt, input_tiles_reference(x), bt)     # [4, 4, C, N, th, tw]
    return np.ascontiguousarray(V).reshape(16, C, -1)


def output_transform_reference(M, geo: TileGeometry, bias=None):
    """M float[16, C, T] -> out float[N, C, H, W] (+ bias float[C]): A^T M A per tile, cropped to H x W."""
    C = M.shape[1]
    at = AT.astype(M.dtype)
    tiles = M.reshape(4, 4, C, geo.N, geo.th, geo.tw)
    out = np.einsum("ix,xycnab,jy->ncaibj", at, tiles, at).reshape(geo.N, C, 2 * geo.th, 2 * geo.tw)
    out = np.ascontiguousarray(out[:, :, :geo.H, :geo.W])
    if bias is not None:
        out += bias[None, :, None, None]
    return out


def output_transform_adjoint_reference(dout, geo: TileGeometry):
    """dout float[N, C, H, W] -> dM float[16, C, T] = A dY A^T per tile (dY zero past H, W)."""
    N, C, H, W = dout.shape
    at = AT.astype(dout.dtype)
    padded = np.zeros((N, C, 2 * geo.th, 2 * geo.tw), dtype=dout.dtype)
    padded[:, :, :H, :W] = dout
    dy = padded.reshape(N, C, geo.th, 2, geo.tw, 2)                                  # [n, c, a, i, b, j]
    dM = np.einsum("ix,ncaibj,jy->xycnab", at, dy, at)                               # [4, 4, C, N, th, tw]
    return np.ascontiguousarray(dM).reshape(16, C, -1)


def input_transform_adjoint_reference(dV, geo: TileGeometry):
    """dV float[16, C, T] -> dx float[N, C, H, W]: B dV B^T per tile, added where tiles overlap."""
    C = dV.shape[1]
    bt = BT.astype(dV.dtype)
    dtiles = np.einsum("xp,xycnab,yq->ncabpq", bt, dV.reshape(4, 4, C, geo.N, geo.th, geo.tw), bt)
    padded = np.zeros((geo.N, C, 2 * geo.th + 2, 2 * geo.tw + 2), dtype=dV.dtype)
    for p in range(4):
        for q in range(4):
            padded[:, :, p:p + 2 * geo.th:2, q:q + 2 * geo.tw:2] += dtiles[..., p, q]
    return np.ascontiguousarray(padded[:, :, 1:geo.H + 1, 1:geo.W + 1])


# ----------------------------------------------------------------------------------
# Numba kernels: one (image, channel) plane per parallel iteration, tiles in order
# ----------------------------------------------------------------------------------
@numba.njit(cache=True, parallel=True)
def _input_transform_kernel(V, x, th, tw):
    """Fill V float[16, C, T] from x float[N, C, H, W].

    Differs from the twin: no tile array. For each row of tiles, the four input rows it
    reads are copied into a zero-padded buffer [4, 2*tw + 2] (the padding written once),
    B^T's row combinations are taken on whole rows, then B's column combinations tile by
    tile with stride-2 reads; no bounds test per value.
    """
    N, C, H, W = x.shape
    Wp = 2 * tw + 2
    for nc in numba.prange(N * C):
        n = nc // C
        c = nc % C
        rows = np.zeros((4, Wp), dtype=x.dtype)      # input rows 2a-1 .. 2a+2, columns -1 .. 2*tw
        r = np.empty((4, Wp), dtype=x.dtype)         # B^T rows
        for a in range(th):
            for p in range(4):
                y = 2 * a - 1 + p
                if 0 <= y < H:
                    rows[p, 1:W + 1] = x[n, c, y]
                else:
                    rows[p, 1:W + 1] = 0
            for u in range(Wp):
                r[0, u] = rows[0, u] - rows[2, u]
                r[1, u] = rows[1, u] + rows[2, u]
                r[2, u] = rows[2, u] - rows[1, u]
                r[3, u] = rows[1, u] - rows[3, u]
            t0 = (n * th + a) * tw
            for xi in range(4):
                v0, v1, v2, v3 = V[4 * xi, c], V[4 * xi + 1, c], V[4 * xi + 2, c], V[4 * xi + 3, c]
                for b in range(tw):
                    u = 2 * b
                    v0[t0 + b] = r[xi, u] - r[xi, u + 2]
                    v1[t0 + b] = r[xi, u + 1] + r[xi, u + 2]
                    v2[t0 + b] = r[xi, u + 2] - r[xi, u + 1]
                    v3[t0 + b] = r[xi, u + 1] - r[xi, u + 3]
    return V


@numba.njit(cache=True, parallel=True)
def _output_transform_kernel(out, M, bias, has_bias, th, tw):
    """out float[N, C, H, W] = A^T M A per tile (float[16, C, T] in), cropped, + bias."""
    N, C, H, W = out.shape
    for nc in numba.prange(N * C):
        n = nc // C
        c = nc % C
        s = np.empty((2, 4), dtype=M.dtype)
        add = bias[c] if has_bias else bias[0]          # bias is zeros(1) without one
        for a in range(th):
            for b in range(tw):
                t = (n * th + a) * tw + b
                for nu in range(4):                      # rows: s = A^T M
                    m0, m1, m2, m3 = M[nu, c, t], M[4 + nu, c, t], M[8 + nu, c, t], M[12 + nu, c, t]
                    s[0, nu] = m0 + m1 + m2
                    s[1, nu] = m1 - m2 - m3
                for i in range(2):                       # columns: Y = s A
                    y = 2 * a + i
                    if y < H:
                        out[n, c, y, 2 * b] = s[i, 0] + s[i, 1] + s[i, 2] + add
                        if 2 * b + 1 < W:
                            out[n, c, y, 2 * b + 1] = s[i, 1] - s[i, 2] - s[i, 3] + add
    return out


@numba.njit(cache=True, parallel=True)
def _output_transform_adjoint_kernel(dM, dout, th, tw):
    """Fill dM float[16, C, T] = A dY A^T per tile from dout float[N, C, H, W] (zero past H, W).

    Differs from the twin: per row of tiles, the two dout rows are copied into a
    zero-padded buffer [2, 2*tw], A's row combinations taken on whole rows, then A^T's
    column combinations tile by tile.
    """
    N, C, H, W = dout.shape
    Wp = 2 * tw
    for nc in numba.prange(N * C):
        n = nc // C
        c = nc % C
        rows = np.zeros((2, Wp), dtype=dout.dtype)
        r = np.empty((4, Wp), dtype=dout.dtype)      # A dY rows
        for a in range(th):
            for i in range(2):
                y = 2 * a + i
                if y < H:
                    rows[i, :W] = dout[n, c, y]
                else:
                    rows[i, :W] = 0
            for u in range(Wp):
                r[0, u] = rows[0, u]
                r[1, u] = rows[0, u] + rows[1, u]
                r[2, u] = rows[0, u] - rows[1, u]
                r[3, u] = -rows[1, u]
            t0 = (n * th + a) * tw
            for xi in range(4):
                m0, m1, m2, m3 = dM[4 * xi, c], dM[4 * xi + 1, c], dM[4 * xi + 2, c], dM[4 * xi + 3, c]
                for b in range(tw):
                    u = 2 * b
                    m0[t0 + b] = r[xi, u]
                    m1[t0 + b] = r[xi, u] + r[xi, u + 1]
                    m2[t0 + b] = r[xi, u] - r[xi, u + 1]
                    m3[t0 + b] = -r[xi, u + 1]
    return dM


@numba.njit(cache=True, parallel=True)
def _input_transform_adjoint_kernel(dx, dV, th, tw):
    """dx float[N, C, H, W] = sum over tiles of B dV B^T (tiles overlap by 2 rows and columns).

    Differs from the twin: per row of tiles, B^T's column combinations are added into a
    padded row buffer [4, 2*tw + 2] tile by tile, B's row combinations turn it into the
    four input rows, which are added into dx (rows overlap the previous tile row's last two).
    """
    N, C, H, W = dx.shape
    Wp = 2 * tw + 2
    for nc in numba.prange(N * C):
        n = nc // C
        c = nc % C
        plane = np.zeros((2 * th + 2, Wp), dtype=dV.dtype)     # padded dx of this plane
        r = np.empty((4, Wp), dtype=dV.dtype)
        for a in range(th):
            r[:] = 0
            t0 = (n * th + a) * tw
            for xi in range(4):
                v0, v1, v2, v3 = dV[4 * xi, c], dV[4 * xi + 1, c], dV[4 * xi + 2, c], dV[4 * xi + 3, c]
                for b in range(tw):                     # columns: r = dV B^T, overlapping tiles added
                    u = 2 * b
                    r[xi, u] += v0[t0 + b]
                    r[xi, u + 1] += v1[t0 + b] - v2[t0 + b] + v3[t0 + b]
                    r[xi, u + 2] += -v0[t0 + b] + v1[t0 + b] + v2[t0 + b]
                    r[xi, u + 3] += -v3[t0 + b]
            y0 = 2 * a                                  # padded row of input row 2a - 1
            for u in range(Wp):                         # rows: dd = B r
                plane[y0, u] += r[0, u]
                plane[y0 + 1, u] += r[1, u] - r[2, u] + r[3, u]
                plane[y0 + 2, u] += -r[0, u] + r[1, u] + r[2, u]
                plane[y0 + 3, u] += -r[3, u]
        for y in range(H):
            dx[n, c, y] = plane[y + 1, 1:W + 1]
    return dx


# ----------------------------------------------------------------------------------
# Dispatch (kernel or twin) and the GEMMs
# ----------------------------------------------------------------------------------
def input_transform(x):
    """x float[N, C, H, W] contiguous -> V float[16, C, T]."""
    if reference_kernels_enabled():
        return input_transform_reference(x)
    N, C, H, W = x.shape
    geo = TileGeometry(N, H, W)
    return _input_transform_kernel(np.empty((16, C, geo.T), dtype=x.dtype), x, geo.th, geo.tw)


def output_transform(M, geo: TileGeometry, bias=None):
    """M float[16, C, T] -> out float[N, C, H, W] (+ bias float[C])."""
    if reference_kernels_enabled():
        return output_transform_reference(M, geo, bias)
    C = M.shape[1]
    out = np.empty((geo.N, C, geo.H, geo.W), dtype=M.dtype)
    has_bias = bias is not None
    bias = bias if has_bias else np.zeros(1, M.dtype)
    return _output_transform_kernel(out, M, bias, has_bias, geo.th, geo.tw)


def output_transform_adjoint(dout, geo: TileGeometry):
    """dout float[N, C, H, W] contiguous -> dM float[16, C, T]."""
    if reference_kernels_enabled():
        return output_transform_adjoint_reference(dout, geo)
    dM = np.empty((16, dout.shape[1], geo.T), dtype=dout.dtype)
    return _output_transform_adjoint_kernel(dM, dout, geo.th, geo.tw)


def input_transform_adjoint(dV, geo: TileGeometry):
    """dV float[16, C, T] -> dx float[N, C, H, W]."""
    if reference_kernels_enabled():
        return input_transform_adjoint_reference(dV, geo)
    dx = np.empty((geo.N, dV.shape[1], geo.H, geo.W), dtype=dV.dtype)
    return _input_transform_adjoint_kernel(dx, dV, geo.th, geo.tw)


def batched_gemm(a, b, transpose_a: bool = False, transpose_b: bool = False):
    """out[k] = op(a[k]) @ op(b[k]) for every k (16), one BLAS GEMM each; op transposes
    when asked (a view: BLAS reads it transposed, nothing is copied).

    a float[16, P, Q] ([16, Q, P] with transpose_a), b float[16, Q, R] ([16, R, Q] with
    transpose_b) -> float[16, P, R]."""
    P = a.shape[2] if transpose_a else a.shape[1]
    R = b.shape[1] if transpose_b else b.shape[2]
    out = np.empty((a.shape[0], P, R), dtype=b.dtype)
    for k in range(a.shape[0]):
        np.matmul(a[k].T if transpose_a else a[k], b[k].T if transpose_b else b[k], out=out[k])
    return out


class WinogradCache(NamedTuple):
    """What backward needs: the transformed input (16 values per tile per channel)."""
    V: np.ndarray            # float[16, C_in, T]
    geo: TileGeometry


def forward(x, weight, bias):
    """x float[N, C_in, H, W] contiguous, weight float[C_out, C_in, 3, 3] -> (out float[N, C_out, H, W], cache)."""
    N, _, H, W = x.shape
    geo = TileGeometry(N, H, W)
    V = input_transform(x)                                  # [16, C_in, T]
    M = batched_gemm(filter_transform(weight), V)           # [16, C_out, C_in] @ [16, C_in, T] -> [16, C_out, T]
    return output_transform(M, geo, bias), WinogradCache(V, geo)


def backward(dout, weight, cache: WinogradCache, need_input_grad: bool, need_bias_grad: bool):
    """dout float[N, C_out, H, W] -> (dx float[N, C_in, H, W] or None, dweight like weight,
    dbias float[C_out] or None)."""
    V, geo = cache.V, cache.geo
    dM = output_transform_adjoint(np.ascontiguousarray(dout), geo)      # [16, C_out, T]
    # dU[k] = dM[k] @ V[k].T, computed as (V[k] @ dM[k].T).T, the orientation of conv2d's
    # other weight gradients (docs/convolution.md); the long T is the inner dimension
    dU_t = batched_gemm(V, dM, transpose_b=True)                        # [16, C_in, C_out]
    dweight = filter_transform_adjoint(np.ascontiguousarray(dU_t.transpose(0, 2, 1)))
    dbias = dout.sum(axis=(0, 2, 3)) if need_bias_grad else None
    if not need_input_grad:
        return None, dweight, dbias
    dV = batched_gemm(filter_transform(weight), dM, transpose_a=True)      # [16, C_in, C_out] @ [16, C_out, T]
    return input_transform_adjoint(dV, geo), dweight, dbias
