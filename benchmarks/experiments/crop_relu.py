"""Would fusing the ReLU into the shifted convolution's crop pay on the mask head?

    python benchmarks/experiments/crop_relu.py            # R = 64 and 128 RoIs, 15 repeats

Each of the mask head's four 3x3 convolutions is followed by a ReLU. Today the crop of
the shifted convolution (``conv_shifted.crop_grid``) writes the conv's output, and
``relu_forward`` then reads it again and writes the ReLU's output and its mask. A fused
crop would write both in the pass that sums the kernel rows. This script times, on the
mask head's shape [R, 64, 14, 14], median ms of:

- the whole conv forward (``conv2d_forward``), for scale;
- ``crop_grid`` alone;
- ``relu_forward`` on its output (what fusing would remove, at most);
- ``crop_grid`` followed by ``relu_forward``, and a fused crop + bias + ReLU kernel
  written here (``_crop_grid_kernel``'s sums, in the same order, then ``max(v, 0)`` and
  the mask as each image row is copied out).

It prints what the fusion would save per conv and per trained step (4 convs forward; the
ReLU backward, a ``where`` over the same array, stays). With ``keep_freed_memory()``, as
the minimrcnn command runs.
"""

from __future__ import annotations

import os
import sys

import numba
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import median_ms  # noqa: E402

from minimrcnn import runtime
from minimrcnn.nn.functional import conv_shifted
from minimrcnn.nn.functional.activation import relu_forward
from minimrcnn.nn.functional.conv import conv2d_forward


@numba.njit(cache=True, parallel=True)
def crop_bias_relu(out, positive, rows_product, bias, Hg, Wg):
    """out, positive [N, C, H, W] = ReLU and mask of (the shifted sum of rows_product [kH, C, U] + bias).

    ``_crop_grid_kernel``'s steps (the sum and the bias over a channel's whole grid), with
    the ReLU and its mask taken while each image row is copied out.
    """
    N, C, H, W = out.shape
    kH = rows_product.shape[0]
    E = N * Hg * Wg
    for c in numba.prange(C):
        grid = rows_product[0, c, :E].copy()
        for i in range(1, kH):
            grid += rows_product[i, c, i * Wg:i * Wg + E]
        grid += bias[c]
        for n in range(N):
            for y in range(H):
                base = (n * Hg + y) * Wg
                for x in range(W):
                    v = grid[base + x]
                    positive[n, c, y, x] = v > 0
                    out[n, c, y, x] = v if v > 0 else 0
    return out


def main(repeats: int = 15) -> None:
    runtime.keep_freed_memory()
    rng = np.random.default_rng(0)
    for R in (64, 128):
        shape = (R, 64, 14, 14)
        x = rng.standard_normal(shape, dtype=np.float32)
        w = rng.standard_normal((64, 64, 3, 3), dtype=np.float32) * 0.05
        b = rng.standard_normal(64, dtype=np.float32)
        geo = conv_shifted.GridGeometry(R, 14, 14, 1, 1)
        rows = conv_shifted.rows_gemm(conv_shifted.stack_shifted(x, 3, 1, 1), w)      # [3, 64, U]
        conv_out = conv_shifted.crop_grid(rows, geo, b)
        fused_out, fused_mask = np.empty(shape, np.float32), np.empty(shape, np.bool_)
        crop_bias_relu(fused_out, fused_mask, rows, b, geo.Hg, geo.Wg)
        separate_out, separate_cache = relu_forward(conv_out)
        assert np.array_equal(fused_out, separate_out) and np.array_equal(fused_mask, separate_cache.positive)
        times = {
            "conv2d forward (for scale)": lambda: conv2d_forward(x, w, b, 1, 1),
            "crop_grid": lambda: conv_shifted.crop_grid(rows, geo, b),
            "relu_forward": lambda: relu_forward(conv_out),
            "crop_grid, then relu_forward": lambda: relu_forward(conv_shifted.crop_grid(rows, geo, b)),
            "fused crop + bias + ReLU": lambda: crop_bias_relu(np.empty(shape, np.float32), np.empty(shape, np.bool_),
                                                               rows, b, geo.Hg, geo.Wg),
        }
        ms = {name: median_ms(fn, repeats, warmup=2) for name, fn in times.items()}
        print(f"[{R}, 64, 14, 14]: median ms of {repeats}")
        for name, value in ms.items():
            print(f"  {name:32s} {value:7.2f}")
        saved = ms["crop_grid, then relu_forward"] - ms["fused crop + bias + ReLU"]
        print(f"  fusion saves {saved:.2f} ms per conv ({100 * saved / ms['conv2d forward (for scale)']:.0f} % of its "
              f"forward), {4 * saved:.1f} ms per trained step's mask head forward")


if __name__ == "__main__":
    main(repeats=int(sys.argv[1]) if len(sys.argv) > 1 else 15)
