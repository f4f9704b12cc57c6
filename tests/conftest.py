"""Helpers shared by the tests: random inputs, the run without JIT, one Numba thread.

Test modules import the plain functions (``from tests.conftest import random_boxes``);
pytest picks up the fixtures by name.
"""

import os
import subprocess
import sys
import textwrap

# The suite runs under pytest-xdist (pyproject's addopts: a worker process per core). Each
# worker gets one core's worth of threads: OpenBLAS reads its thread count when NumPy is
# imported, so it is set here, before the import below; Numba's is lowered after it (its
# maximum stays, so a test can still raise it). With every worker at the machine's full
# thread count, the workers' pools oversubscribed 2 cores and the suite ran slower than in
# one process (README.md, "Tests and parity with torchvision").
IN_A_WORKER = bool(os.environ.get("PYTEST_XDIST_WORKER"))
if IN_A_WORKER:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import numba
import numpy as np
import pytest

from minimrcnn.runtime import reference_kernels

if IN_A_WORKER:
    numba.set_num_threads(1)


# -- random inputs ---------------------------------------------------------------------
def randn(rng: np.random.Generator, shape, dtype=np.float64) -> np.ndarray:
    """Standard normal float[shape] (float64 by default, for gradient checks)."""
    return rng.standard_normal(shape).astype(dtype)


def random_boxes(rng: np.random.Generator, n: int, dtype=np.float32, image: float = 1000.0,
                 max_side: float = 200.0) -> np.ndarray:
    """float[n, 4] xyxy boxes: centres uniform in an image x image square, sides in 10..max_side.

    Boxes may stick out of the square; none is degenerate.
    """
    centres = rng.uniform(0, image, (n, 2))
    sides = rng.uniform(10, max_side, (n, 2))
    return np.concatenate([centres - sides / 2, centres + sides / 2], axis=1).astype(dtype)


def random_rois(rng: np.random.Generator, R: int, N: int, H: int, W: int, dtype, spread: float = 6.0,
                inverted: bool = True) -> np.ndarray:
    """float[R, 5] RoIs (batch index, x1, y1, x2, y2) for N maps of H x W: the hard cases.

    Corners up to ``spread`` pixels outside the map, sides up to 0.8 * max(H, W), the first
    R // 10 degenerate (zero size) and, with ``inverted``, some with x2 < x1 or y2 < y1.
    """
    xy = rng.uniform(-spread, max(H, W) + spread, (R, 2))
    wh = rng.uniform(-3 if inverted else 0, max(H, W) * 0.8, (R, 2))
    wh[: R // 10] = 0.0
    return np.concatenate([rng.integers(0, N, (R, 1)), xy, xy + wh], axis=1).astype(dtype)


def random_mask_targets(rng: np.random.Generator, G: int, H: int, W: int, R: int) -> tuple:
    """Inputs of project_masks_on_boxes: GT masks uint8[G, H, W] of random pixels, boxes
    float32[R, 4] (some crossing the top-left border, all non-degenerate) and matched int64[R]."""
    gt = (rng.uniform(size=(G, H, W)) > 0.5).astype(np.uint8)
    side = max(H, W)
    boxes = np.c_[rng.uniform(-0.1 * side, side / 2, (R, 2)), rng.uniform(side / 2 + 1, side, (R, 2))]
    return gt, boxes.astype(np.float32), rng.integers(0, G, R)


# -- kernels and their twins -------------------------------------------------------------
def kernel_and_twin(fn, *args, **kwargs) -> tuple:
    """``(fn(*args, **kwargs) on the Numba kernels, the same on the readable twins)``."""
    with reference_kernels(False):
        kernel = fn(*args, **kwargs)
    with reference_kernels(True):
        twin = fn(*args, **kwargs)
    return kernel, twin


# -- the run without JIT -----------------------------------------------------------------
def run_without_jit(code: str, timeout: float = 300) -> str:
    """Run ``code`` in a fresh Python with NUMBA_DISABLE_JIT=1 and return its stdout.

    Every kernel then runs as plain Python (what a debugger steps through), and must still
    give the answers; MINIMRCNN_KERNELS=numba makes the kernels, not their twins, the
    default whatever the caller's environment says. Numba reads the flag at import, hence
    the subprocess. A nonzero exit fails the test with the child's stderr.
    """
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", MINIMRCNN_KERNELS="numba")
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result.stdout


# -- fixtures ----------------------------------------------------------------------------
@pytest.fixture
def one_numba_thread():
    """Numba at one thread for the test, restored after.

    Numba's and OpenBLAS's thread pools both at 2 threads on 2 shared cores thrash (a
    training step measured 3x slower than with either at 1), and tests that make hundreds
    of tiny kernel calls pay more for the pool than they gain.
    """
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(previous)
