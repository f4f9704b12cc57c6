"""conv2d 3x3 64->64 forward+backward: shifted GEMMs, im2col and torch, interleaved call by call.

    python benchmarks/conv_ab.py [THREADS] [ROUNDS]       # default 2 threads, 9 rounds
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/conv_ab.py 1 9   # one core each

Each round calls every contender once, so a busy spell on a shared machine slows them
alike; prints the median (min-max) ms per contender and shape, with a plain GEMM of the
forward's FLOPs ([64, 576] @ [576, N*H*W]) as the ceiling of any GEMM-based method.
Needs torch (skips it when absent). Runs with keep_freed_memory(), as the minimrcnn command.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numba  # noqa: E402
import numpy as np  # noqa: E402
from bench_trained import interleaved_ms  # noqa: E402
from common import try_import_torch  # noqa: E402

from minimrcnn.nn.functional.conv import conv2d_backward, conv2d_forward  # noqa: E402
from minimrcnn.runtime import keep_freed_memory  # noqa: E402


def main(threads: int, rounds: int) -> None:
    keep_freed_memory()                  # as the minimrcnn command and benchmarks/run.py
    torch, _ = try_import_torch()
    numba.set_num_threads(threads)
    if torch is not None:
        torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    for shape in [(128, 64, 14, 14), (4, 64, 32, 32)]:
        x = rng.standard_normal(shape, dtype=np.float32)
        w = rng.standard_normal((64, 64, 3, 3), dtype=np.float32) * 0.1
        dout = rng.standard_normal(shape, dtype=np.float32)
        a = rng.standard_normal((64, 576), dtype=np.float32)
        b = rng.standard_normal((576, shape[0] * shape[2] * shape[3]), dtype=np.float32)
        fns = {"gemm (fwd FLOPs)": lambda: a @ b}
        for algorithm in ("shifted", "im2col"):
            fns[f"{algorithm} fwd+bwd"] = (lambda alg=algorithm: conv2d_backward(
                dout, conv2d_forward(x, w, None, 1, 1, algorithm=alg)[1]))
        if torch is not None:
            txg, twg = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
            tdout = torch.from_numpy(dout)

            def torch_fwdbwd():
                txg.grad = twg.grad = None
                torch.nn.functional.conv2d(txg, twg, None, 1, 1).backward(tdout)
            fns["torch fwd+bwd"] = torch_fwdbwd
        stats = interleaved_ms(fns, rounds)
        print(f"threads {threads} {list(shape)}: " + ", ".join(
            f"{name} {m:.1f} ({lo:.1f}-{hi:.1f}) ms" for name, (m, lo, hi) in stats.items()), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2, int(sys.argv[2]) if len(sys.argv) > 2 else 9)
