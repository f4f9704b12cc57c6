"""Run-time settings of the process: which kernels run, Numba's threads, freed memory.

Kernels. Every hot loop in minimrcnn exists twice: a plain reference written to mirror
the math (``*_reference``) and a Numba kernel (``_*_kernel``). The public op calls the
kernel unless the reference twins are selected, either

* before start-up, with the environment variable ``MINIMRCNN_KERNELS=reference``, or
* at run time, with ``minimrcnn.use_reference_kernels(True)`` or the context manager
  ``with minimrcnn.reference_kernels(): ...``.

This is independent of ``NUMBA_DISABLE_JIT=1``, which keeps the kernels but runs them
as plain Python, so a breakpoint inside a kernel works in pdb.

Threads -- the one process-wide thing done on import. minimrcnn alternates Numba
parallel kernels with BLAS GEMMs many times per step. Numba's default OpenMP threads
and OpenBLAS's threads both spin-wait for work after each call, so on a small machine
they take the cores from each other (on 2 cores a tiny-shapes training step took several
times longer with the defaults than with either Numba's ``workqueue`` layer or one BLAS
thread; docs/benchmarks.md, "How the harness measures"). So importing this module -- which
every module with a parallel kernel does -- calls ``select_threading_layer()``: it sets
``numba.config.THREADING_LAYER = "workqueue"`` for the whole process, unless the
environment variable ``NUMBA_THREADING_LAYER`` is set, which then wins. Numba fixes
the layer when it launches its first parallel kernel, so the choice must be made
before that, i.e. on import. It keeps both Numba and BLAS parallel; its one limit is
that parallel kernels must not be launched from several Python threads at once.

Memory -- process-wide, so never done on import. glibc hands every freed block above
its mmap threshold (at most 32 MB by default) back to the kernel, and the next
allocation of that size is mapped afresh: page faults, and the kernel zeroing every
page. A training step allocates and frees hundreds of MB of short-lived arrays (the
mask head's stacked convolution inputs among them), so with the defaults every step
page-faults its working memory back in. ``keep_freed_memory()`` raises glibc's thresholds
so freed memory stays in the process and is reused (the page faults per step with and
without it are the "fresh process" rows of docs/benchmarks.md, made by
``benchmarks/bench_model.py``). The library never calls it; the ``minimrcnn`` command
does, for its own process.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform

_VALID = ("numba", "reference")


def _from_env() -> bool:
    value = os.environ.get("MINIMRCNN_KERNELS", "numba").strip().lower()
    if value not in _VALID:
        raise ValueError(f"MINIMRCNN_KERNELS must be one of {_VALID}, got {value!r}")
    return value == "reference"


_use_reference = _from_env()


def select_threading_layer() -> str:
    """Select Numba's workqueue layer unless ``NUMBA_THREADING_LAYER`` is set; return the choice.

    Process-wide, and run once on import of this module (see the module docstring for
    why). Calling it again is harmless; after the first parallel kernel it has no effect.
    """
    import numba

    if "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = "workqueue"
    return numba.config.THREADING_LAYER


select_threading_layer()


def use_reference_kernels(flag: bool = True) -> None:
    """Select the readable reference twins (``True``) or the Numba kernels (``False``)."""
    global _use_reference
    _use_reference = bool(flag)


def reference_kernels_enabled() -> bool:
    """``True`` when ops dispatch to their reference twins instead of Numba kernels."""
    return _use_reference


@contextlib.contextmanager
def reference_kernels(flag: bool = True):
    """Context manager: run the enclosed code with the reference twins (or the kernels)."""
    previous = _use_reference
    use_reference_kernels(flag)
    try:
        yield
    finally:
        use_reference_kernels(previous)


def jit_disabled() -> bool:
    """``True`` when Numba runs every kernel as plain Python (``NUMBA_DISABLE_JIT=1``)."""
    return os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")


_M_TRIM_THRESHOLD = -1      # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
_freed_memory_kept = False  # set once keep_freed_memory() has been applied in this process


def keep_freed_memory(limit_bytes: int = 1 << 30) -> bool:
    """Ask glibc to keep freed blocks up to ``limit_bytes`` for reuse (see the module docstring).

    Serves allocations below ``limit_bytes`` from the heap instead of fresh mappings and
    returns memory to the OS only when more than ``limit_bytes`` is free at the top of
    the heap. The process's peak memory is unchanged; it is simply not given back between
    steps. Returns ``True`` when applied, ``False`` on a non-glibc platform or when the
    environment sets ``MINIMRCNN_KEEP_FREED_MEMORY=0``.
    """
    if os.environ.get("MINIMRCNN_KEEP_FREED_MEMORY", "1").strip() == "0":
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - glibc always has mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    limit = int(min(limit_bytes, 2**31 - 1))
    # mallopt returns 1 on success, 0 when glibc rejects the value
    global _freed_memory_kept
    _freed_memory_kept = bool(mallopt(_M_MMAP_THRESHOLD, limit)) and bool(mallopt(_M_TRIM_THRESHOLD, limit))
    return _freed_memory_kept


def freed_memory_kept() -> bool:
    """``True`` when ``keep_freed_memory()`` has been applied in this process."""
    return _freed_memory_kept


def kernel_cache_is_cold(roots=None) -> bool:
    """True when no Numba cache index (*.nbi) exists yet for minimrcnn: this process compiles the kernels.

    Numba writes its cache beside each module (``__pycache__``) or under ``NUMBA_CACHE_DIR``;
    ``roots`` replaces those places (for tests). Always False with ``NUMBA_DISABLE_JIT=1``.
    """
    if jit_disabled():
        return False
    if roots is None:
        roots = [os.path.dirname(os.path.abspath(__file__))]
        if os.environ.get("NUMBA_CACHE_DIR"):
            roots.append(os.environ["NUMBA_CACHE_DIR"])
    for root in roots:
        for _, _, files in os.walk(root):
            if any(f.endswith(".nbi") for f in files):
                return False
    return True
