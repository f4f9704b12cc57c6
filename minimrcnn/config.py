"""Run-time switch between the Numba kernels and their readable reference twins.

Every hot loop in minimrcnn exists twice: a plain reference written to mirror the
math (``*_reference``) and a Numba kernel (``_*_kernel``). The public op calls the
kernel unless the reference twins are selected, either

* before start-up, with the environment variable ``MINIMRCNN_KERNELS=reference``, or
* at run time, with ``minimrcnn.use_reference_kernels(True)`` or the context manager
  ``with minimrcnn.reference_kernels(): ...``.

This is independent of ``NUMBA_DISABLE_JIT=1``, which keeps the kernels but runs them
as plain Python, so a breakpoint inside a kernel works in pdb.

Threads: minimrcnn alternates Numba parallel kernels with BLAS GEMMs many times per
step. Numba's default OpenMP threads and OpenBLAS's threads both spin-wait for work
after each call, so on a small machine they take the cores from each other (measured
on 2 cores: a tiny-shapes training step took 1.03 s with the defaults, 0.27-0.35 s with
either Numba's ``workqueue`` layer or one BLAS thread; ``benchmarks/bench_model.py``).
So unless ``NUMBA_THREADING_LAYER`` is set, minimrcnn selects ``workqueue`` on import.
It keeps both Numba and BLAS parallel; its one limit is that parallel kernels must not
be launched from several Python threads at once.
"""

from __future__ import annotations

import contextlib
import os

_VALID = ("numba", "reference")


def _from_env() -> bool:
    value = os.environ.get("MINIMRCNN_KERNELS", "numba").strip().lower()
    if value not in _VALID:
        raise ValueError(f"MINIMRCNN_KERNELS must be one of {_VALID}, got {value!r}")
    return value == "reference"


_use_reference = _from_env()


def _select_threading_layer() -> None:
    """Use Numba's workqueue layer unless the user chose one (see the module docstring)."""
    if "NUMBA_THREADING_LAYER" in os.environ:
        return
    import numba

    numba.config.THREADING_LAYER = "workqueue"


_select_threading_layer()


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
