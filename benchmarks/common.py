"""Shared benchmark plumbing: timing, the NumPy matmul reference, torch detection, rows.

Every figure is a median over repeats, and each row carries a ratio to a reference
measured in the same process (NumPy float32 matmul throughput always; torch when it
is importable), so numbers from different machines or days can be compared.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np


@dataclasses.dataclass
class Row:
    op: str                 # e.g. "conv2d 3x3 64->64 fwd+bwd"
    shape: str              # input description, e.g. "[4,64,32,32]"
    ms: float               # median milliseconds of ours
    gflops: float | None = None        # achieved GFLOP/s where a FLOP count applies
    ref_name: str = ""                 # what the ratio is against
    ref_ms: float | None = None        # the reference's median ms (same run)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """reference time / our time: > 1 means we are faster."""
        if self.ref_ms is None or self.ms <= 0:
            return None
        return self.ref_ms / self.ms


def median_ms(fn, repeats: int = 10, warmup: int = 2, min_time: float = 0.0) -> float:
    """Median wall time of ``fn()`` in milliseconds after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < repeats or (time.perf_counter() - start) < min_time:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
        if len(times) >= 10 * repeats:
            break
    return float(np.median(times))


def numpy_matmul_gflops(n: int = 1024, repeats: int = 10) -> float:
    """float32 GEMM throughput of NumPy's BLAS on this machine, in GFLOP/s."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    ms = median_ms(lambda: a @ b, repeats=repeats)
    return 2.0 * n ** 3 / (ms * 1e-3) / 1e9


def try_import_torch():
    """(torch, torchvision) or (None, None). Uses the machine's cores, like NumPy, or
    OMP_NUM_THREADS of them when set (e.g. 1 for a single-core comparison)."""
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except Exception:
        return None, None
    import os
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", 0)) or os.cpu_count() or 1)
    return torch, torchvision


@dataclasses.dataclass
class Context:
    matmul_gflops: float
    torch: object = None
    torchvision: object = None
    quick: bool = False     # fewer repeats and smaller cases, for CI smoke runs
    weights: str | None = None   # trained shapes model.npz for bench_trained (None: its default)
