"""minimrcnn: Mask R-CNN from scratch in NumPy, with Numba kernels.

Every differentiable op is an explicit pair ``op_forward(...) -> (out, cache)`` /
``op_backward(dout, cache) -> grads``; every hot loop has a readable twin.

Shape shorthand used in docstrings across the package:
    N images in a batch, C channels, H, W spatial size, L pyramid levels,
    A anchors per location, R RoIs in the batch, G ground-truth boxes in an image,
    K classes including background 0, P pooled size, M mask size (28),
    S samples per bin side, D detections.
Boxes are always (x1, y1, x2, y2) float pixels.
"""

__version__ = "0.1.0"

from minimrcnn.runtime import (  # noqa: E402
    reference_kernels,
    reference_kernels_enabled,
    use_reference_kernels,
)

from minimrcnn.models.weights import load_weights, save_weights  # noqa: E402

__all__ = [
    "__version__",
    "load_weights",
    "save_weights",
    "reference_kernels",
    "reference_kernels_enabled",
    "use_reference_kernels",
]
