"""The parts of one shifted-GEMM 3x3 convolution on the mask head's shape, and what bounds them.

    python benchmarks/experiments/conv_parts.py            # [128, 64, 14, 14], 64 -> 64, 15 repeats

Times, as medians in ms: stacking the input (``stack_shifted``), the one GEMM of all
kernel rows (``rows_gemm``), the shifted crop (``crop_grid``), the whole forward and
forward + backward, and two references: NumPy filling a buffer of the stacked size
(the memory traffic floor of the stacking) and a plain GEMM of the forward's FLOPs. Then
the GEMMs alone: the backward's (the kH weight-gradient GEMMs over windows of the stacked
input, the input gradient's one GEMM on the stacked dout), all of forward and backward,
and three plain GEMMs of the forward's FLOPs: a floor for any convolution made of GEMMs
at NumPy's rate, whatever it copies (docs/convolution.md, "How far from torch").
Then the ReLU that follows the mask head's convs, fused (``relu=True``: the crop applies
it, the stacking of dout gates by the output) against apart (``relu_forward`` after the
crop, ``relu_backward`` before the stacking), part by part and for the whole conv.
With ``keep_freed_memory()``, as the minimrcnn command runs.
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import median_ms  # noqa: E402

from minimrcnn import runtime
from minimrcnn.nn.functional import conv_shifted
from minimrcnn.nn.functional.activation import relu_backward, relu_forward
from minimrcnn.nn.functional.conv import conv2d_backward, conv2d_forward


def main(shape=(128, 64, 14, 14), repeats: int = 15) -> None:
    runtime.keep_freed_memory()
    rng = np.random.default_rng(0)
    N, C, H, W = shape
    x = rng.standard_normal(shape, dtype=np.float32)
    w = rng.standard_normal((C, C, 3, 3), dtype=np.float32) * 0.1
    dout = rng.standard_normal(shape, dtype=np.float32)
    geo = conv_shifted.GridGeometry(N, H, W, 1, 1)
    stacked = conv_shifted.stack_shifted(x, 3, 1, 1)                 # [3, C, U]
    rows = conv_shifted.rows_gemm(stacked, w)                        # [3, C, U]
    fill = np.empty_like(stacked)
    a = rng.standard_normal((C, 9 * C), dtype=np.float32)
    b = rng.standard_normal((9 * C, N * H * W), dtype=np.float32)
    parts = {
        "stack_shifted": lambda: conv_shifted.stack_shifted(x, 3, 1, 1),
        "rows_gemm": lambda: conv_shifted.rows_gemm(stacked, w),
        "crop_grid": lambda: conv_shifted.crop_grid(rows, geo),
        "forward": lambda: conv2d_forward(x, w, None, 1, 1),
        "forward + backward": lambda: conv2d_backward(dout, conv2d_forward(x, w, None, 1, 1)[1]),
        f"NumPy fill of the stacked buffer ({stacked.nbytes / 1e6:.0f} MB)": lambda: fill.fill(1.0),
        "plain GEMM of the forward's FLOPs": lambda: a @ b,
    }
    # the backward's GEMMs on its own operands (conv_shifted.backward, without the copies)
    dstacked = conv_shifted.stack_shifted(dout, 3, 1, 1)             # [3, C, U]
    dout_grid = dstacked[1, :, geo.Wg:geo.Wg + geo.E]                # [C, E]
    matrix = stacked.reshape(3 * C, geo.U)
    flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)

    def weight_gemms():
        return [matrix[:, i * geo.Wg:i * geo.Wg + geo.E] @ dout_grid.T for i in range(3)]

    def all_gemms():
        conv_shifted.rows_gemm(stacked, w)
        weight_gemms()
        conv_shifted.rows_gemm(dstacked, flipped)

    parts.update({
        "backward's GEMMs: weight gradient (3)": weight_gemms,
        "backward's GEMMs: input gradient (1)": lambda: conv_shifted.rows_gemm(dstacked, flipped),
        "all GEMMs of forward + backward": all_gemms,
        "3 plain GEMMs of the forward's FLOPs": lambda: (a @ b, a @ b, a @ b),
    })
    relu_out, relu_cache = relu_forward(conv2d_forward(x, w, None, 1, 1)[0])

    def conv_then_relu():
        out, cache = conv2d_forward(x, w, None, 1, 1)
        h, h_cache = relu_forward(out)
        return conv2d_backward(relu_backward(dout, h_cache), cache)

    parts.update({
        "ReLU fused: crop_grid(relu=True)": lambda: conv_shifted.crop_grid(rows, geo, None, True),
        "ReLU apart: crop_grid, relu_forward": lambda: relu_forward(conv_shifted.crop_grid(rows, geo)),
        "ReLU fused: stack_shifted(dout, gate=out)": lambda: conv_shifted.stack_shifted(dout, 3, 1, 1, relu_out),
        "ReLU apart: relu_backward, stack_shifted": lambda: conv_shifted.stack_shifted(
            relu_backward(dout, relu_cache), 3, 1, 1),
        "ReLU fused: forward + backward (relu=True)": lambda: conv2d_backward(
            dout, conv2d_forward(x, w, None, 1, 1, relu=True)[1]),
        "ReLU apart: forward + backward, ReLU's own": conv_then_relu,
    })
    print(f"shifted 3x3 conv {list(shape)} -> {C} channels; median ms of {repeats}")
    for name, fn in parts.items():
        print(f"  {name:45s} {median_ms(fn, repeats, warmup=1):7.2f}")


if __name__ == "__main__":
    main(repeats=int(sys.argv[1]) if len(sys.argv) > 1 else 15)
