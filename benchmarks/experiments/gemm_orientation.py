"""The weight gradient's GEMM in its two orientations, on the mask head's 3x3 conv.

    python benchmarks/experiments/gemm_orientation.py [REPEATS]

dweight needs dout [C_out, N*Ho*Wo] times cols.T [N*Ho*Wo, Q]: a product with a long
inner dimension and short outer ones. It can be computed as that product, or as
(cols @ dout.T).T. conv2d and the shifted path use the second form: while the machine
was shared with other jobs, OpenBLAS's threaded kernels were once far slower on the first.
This script measures both in one process (median ms), on contiguous operands and on the
strided windows the shifted path multiplies, so that claim can be re-checked (on a quiet
machine the two take about the same time; docs/convolution.md).
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import median_ms  # noqa: E402

C_OUT, Q, COLUMNS = 64, 64 * 9, 128 * 14 * 14   # mask head: 128 RoIs of [64, 14, 14], 3x3 kernel


def main(repeats: int = 5) -> None:
    rng = np.random.default_rng(0)
    dout = rng.standard_normal((C_OUT, COLUMNS), dtype=np.float32)
    cols = rng.standard_normal((Q, COLUMNS), dtype=np.float32)
    for label, (a, b) in {"contiguous": (dout, cols),
                          "strided windows": (np.pad(dout, ((0, 0), (0, 31)))[:, 31:],
                                              np.pad(cols, ((0, 0), (0, 31)))[:, 31:])}.items():
        slow = median_ms(lambda: a @ b.T, repeats, warmup=1)                                  # [C_out, Q]
        fast = median_ms(lambda: np.ascontiguousarray((b @ a.T).T), repeats, warmup=1)
        print(f"{label:16s} dout @ cols.T: {slow:7.1f} ms   (cols @ dout.T).T: {fast:7.1f} ms   "
              f"ratio {slow / fast:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
