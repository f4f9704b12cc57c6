"""minimrcnn: Mask R-CNN from scratch in NumPy, with Numba kernels.

Every differentiable op is an explicit pair ``op_forward(...) -> (out, cache)`` /
``op_backward(dout, cache) -> grads``; every hot loop has a readable twin.
Shape letters in docstrings follow docs/shapes.md. Boxes are always (x1, y1, x2, y2)
float pixels.

Importing the package loads only ``minimrcnn.runtime`` (the kernel switch).
``load_weights`` and ``save_weights`` are looked up on first use, so that
``import minimrcnn.nn.functional`` does not load the detection models.
"""

__version__ = "0.1.0"

from minimrcnn.runtime import (  # noqa: E402
    reference_kernels,
    reference_kernels_enabled,
    use_reference_kernels,
)

_LAZY = {"load_weights": "minimrcnn.models.weights", "save_weights": "minimrcnn.models.weights"}


def __getattr__(name):
    """``minimrcnn.load_weights`` / ``save_weights``: import models.weights on first use."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value          # later look-ups skip __getattr__
        return value
    raise AttributeError(f"module 'minimrcnn' has no attribute {name!r}")


__all__ = [
    "__version__",
    "load_weights",
    "save_weights",
    "reference_kernels",
    "reference_kernels_enabled",
    "use_reference_kernels",
]
