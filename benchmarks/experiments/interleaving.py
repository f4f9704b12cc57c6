"""Why the harness never interleaves libraries call by call: torch's conv alone and interleaved.

    python benchmarks/experiments/interleaving.py [REPEATS]     # needs torch; default 10

conv2d 3x3 64->64 forward+backward on the mask head's [128,64,14,14], in one process with
``OMP_WAIT_POLICY=PASSIVE`` and ``keep_freed_memory()`` (as ``benchmarks/run.py``). Prints
the median ms (min-max) of

* torch alone: its own block after its own warm-up;
* torch interleaved: each torch call right after one call of minimrcnn's conv;
* torch interleaved with a 0.2 s sleep between the two calls;
* minimrcnn alone and interleaved, the same way;

and torch's interleaved time over its time alone. What it showed: run right after a
NumPy/Numba call, torch's conv is much slower than alone, even after a sleep, while ours
changes little; so an interleaved comparison flatters minimrcnn (docs/benchmarks.md,
"How the harness measures"; this script's figures are in the generated block there).
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import median_ms, try_import_torch  # noqa: E402  (sets OMP_WAIT_POLICY before torch)

import numpy as np  # noqa: E402

from minimrcnn import runtime  # noqa: E402
from minimrcnn.nn.functional.conv import conv2d_backward, conv2d_forward  # noqa: E402

SHAPE = (128, 64, 14, 14)


def interleaved_ms(first, second, repeats: int, warmup: int = 2, sleep: float = 0.0) -> float:
    """Median ms of ``second()`` when each call of it comes right after a call of ``first()``."""
    times = []
    for i in range(warmup + repeats):
        first()
        if sleep:
            time.sleep(sleep)
        t0 = time.perf_counter()
        second()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def measure(repeats: int = 10) -> dict:
    """name -> median ms, for the cases the module docstring lists (empty without torch)."""
    runtime.keep_freed_memory()
    torch, _ = try_import_torch()
    if torch is None:
        return {}
    rng = np.random.default_rng(0)
    x = rng.standard_normal(SHAPE, dtype=np.float32)
    w = rng.standard_normal((64, 64, 3, 3), dtype=np.float32) * 0.1
    dout = rng.standard_normal(SHAPE, dtype=np.float32)
    txg, twg = torch.from_numpy(x.copy()).requires_grad_(), torch.from_numpy(w.copy()).requires_grad_()
    tdout = torch.from_numpy(dout)

    def ours():
        conv2d_backward(dout, conv2d_forward(x, w, None, 1, 1)[1])

    def theirs():
        txg.grad = twg.grad = None
        torch.nn.functional.conv2d(txg, twg, None, 1, 1).backward(tdout)

    return {
        "torch alone": median_ms(theirs, repeats),
        "torch interleaved": interleaved_ms(ours, theirs, repeats),
        "torch interleaved, 0.2 s sleep": interleaved_ms(ours, theirs, repeats, sleep=0.2),
        "minimrcnn alone": median_ms(ours, repeats),
        "minimrcnn interleaved": interleaved_ms(theirs, ours, repeats),
    }


def report(results: dict) -> str:
    if not results:
        return "torch not installed: nothing to compare"
    lines = [f"conv2d 3x3 64->64 fwd+bwd {list(SHAPE)}, median ms:"]
    lines += [f"  {name:32s} {ms:7.1f}" for name, ms in results.items()]
    lines.append(f"  torch interleaved / alone: {results['torch interleaved'] / results['torch alone']:.2f}x; "
                 f"minimrcnn interleaved / alone: {results['minimrcnn interleaved'] / results['minimrcnn alone']:.2f}x")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 10)))
