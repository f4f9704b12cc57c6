"""Would a channels-last layout make the mask head's shifted convolution faster?

    python benchmarks/experiments/channels_last.py [REPEATS]

A channels-last head keeps every activation as [R, 14, 14, 64] so that no convolution
pays a transpose. The shifted convolution (docs/convolution.md) pays none in either
layout: its only copies are the stacked buffer (kW shifted copies of the input) and the
crop, and a channels-last version needs the same two, just transposed. What the layout
could change is the GEMM, which is most of the time: today
``weight_rows [kH*C_out, kW*C_in] @ stacked [kW*C_in, U]``, channels-last
``stacked [U, kW*C_in] @ weight_rows.T [kW*C_in, kH*C_out]``: the same products,
transposed. This script times both orientations of the forward GEMM and of the weight
gradient's GEMM on the mask head's shape, contiguous operands, median ms.
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import median_ms  # noqa: E402

from minimrcnn.nn.functional import conv_shifted


def main(repeats: int = 10) -> None:
    rng = np.random.default_rng(0)
    for R in (64, 128):
        geo = conv_shifted.GridGeometry(R, 14, 14, 1, 1)
        rows = rng.standard_normal((3 * 64, 3 * 64), dtype=np.float32)        # [kH*C_out, kW*C_in]
        stacked = rng.standard_normal((3 * 64, geo.U), dtype=np.float32)       # [kW*C_in, U]
        stacked_cl = np.ascontiguousarray(stacked.T)                            # [U, kW*C_in]
        dout = rng.standard_normal((64, geo.E), dtype=np.float32)              # [C_out, E]
        dout_cl = np.ascontiguousarray(dout.T)                                  # [E, C_out]
        window, window_cl = stacked[:, :geo.E], stacked_cl[:geo.E]
        pairs = {
            "forward GEMM": (lambda: rows @ stacked, lambda: stacked_cl @ rows.T),
            "weight-gradient GEMM": (lambda: window @ dout.T, lambda: window_cl.T @ dout_cl),
        }
        print(f"mask head [{R}, 64, 14, 14], 3x3: U = {geo.U} stacked columns; median ms of {repeats}")
        for name, (today, last) in pairs.items():
            a, b = median_ms(today, repeats, warmup=2), median_ms(last, repeats, warmup=2)
            print(f"  {name:22s} channel-major {a:6.2f}   channels-last {b:6.2f}   ratio {b / a:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
