"""Argument validation of the ops layer: boxes, feature maps and the RoI op arguments.

Same message style as the nn layer (minimrcnn/nn/functional/_checks.py):
``<argument> must be <what was expected>, got <what came>``. Floats must be float32
or float64: those are the dtypes the Numba kernels are compiled for (float16 would
pass NumPy and then fail inside Numba).
"""

from __future__ import annotations

import numpy as np

from minimrcnn.nn.functional._checks import FLOATS, came, check_array

_INTS = "iu"   # dtype kinds of signed and unsigned integers


def check_boxes(boxes, name: str = "boxes", columns: int | None = 4, allow_int: bool = False) -> np.ndarray:
    """boxes as an array [R, columns] of float32/float64 (or integers when ``allow_int``), finite.

    ``columns=None`` asks for a multiple of 4 (per-class boxes [R, 4*K]).
    """
    boxes = np.asarray(boxes)
    dims = f"[R, {columns}]" if columns is not None else "[R, 4*K]"
    width = boxes.shape[1] if boxes.ndim == 2 else -1
    if width != columns if columns is not None else (width <= 0 or width % 4):
        raise ValueError(f"{name} must have shape {dims}, got {came(boxes)}")
    if boxes.dtype not in FLOATS and not (allow_int and boxes.dtype.kind in _INTS):
        expected = "float32, float64 or integer" if allow_int else "float32 or float64"
        raise TypeError(f"{name} must be {expected}, got {came(boxes, 'dtype')}")
    if boxes.dtype.kind == "f" and not np.isfinite(boxes).all():
        raise ValueError(f"{name} must have finite coordinates, got NaN or inf")
    return boxes


def check_feature_map(input, name: str = "input") -> None:
    """input float32/float64 [N, C, H, W]."""
    check_array(input, name, 4, "float[N, C, H, W]")


def check_output_size(output_size) -> tuple[int, int]:
    """An int or a pair of positive ints -> (PH, PW)."""
    size = (output_size, output_size) if np.isscalar(output_size) else tuple(output_size)
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in size):
        raise ValueError(f"output_size must be an int or a pair of ints, got {output_size!r}")
    if size[0] <= 0 or size[1] <= 0:
        raise ValueError(f"output_size must be positive, got {output_size!r}")
    return int(size[0]), int(size[1])


def check_spatial_scale(spatial_scale) -> float:
    """A finite number > 0 (feature cells per image pixel)."""
    if isinstance(spatial_scale, bool) or not isinstance(spatial_scale, (int, float, np.integer, np.floating)) \
            or not (np.isfinite(spatial_scale) and spatial_scale > 0):
        raise ValueError(f"spatial_scale must be a finite positive number, got {spatial_scale!r}")
    return float(spatial_scale)


def check_sampling_ratio(sampling_ratio) -> int:
    """An int (<= 0 means adaptive)."""
    if isinstance(sampling_ratio, bool) or not isinstance(sampling_ratio, (int, np.integer)):
        raise TypeError(f"sampling_ratio must be an int, got {type(sampling_ratio).__name__}")
    return int(sampling_ratio)


def convert_boxes_to_roi_format(boxes, dtype, num_images: int) -> np.ndarray:
    """float[R, 5] (batch_index, x1, y1, x2, y2) from float[R, 5] or a list of float[L_i, 4].

    Validates shape, finiteness and batch indices (read as int(), i.e. truncated); the
    result has ``dtype`` (the feature map's).
    """
    if isinstance(boxes, (list, tuple)):
        parts = []
        for i, b in enumerate(boxes):
            b = np.asarray(b)
            if b.ndim != 2 or b.shape[1] != 4:
                raise ValueError(f"boxes[{i}] must be float[L, 4], got {came(b)}")
            parts.append(np.concatenate([np.full((len(b), 1), i, dtype=dtype), b.astype(dtype)], 1))
        rois = np.concatenate(parts) if parts else np.zeros((0, 5), dtype)
    else:
        rois = np.asarray(boxes)
        if rois.ndim != 2 or rois.shape[1] != 5:
            raise ValueError(f"boxes must be float[R, 5] (batch_index, x1, y1, x2, y2) or a list "
                             f"of float[L, 4], got {came(rois)}")
    if rois.dtype.kind not in "fiu":
        raise TypeError(f"boxes must be a float or integer array, got {came(rois, 'dtype')}")
    rois = np.ascontiguousarray(rois, dtype=dtype)
    if not np.isfinite(rois).all():
        raise ValueError("boxes must have finite coordinates, got NaN or inf")
    batch = rois[:, 0].astype(np.int64)
    if len(batch) and (batch.min() < 0 or batch.max() >= num_images):
        raise ValueError(f"boxes must have a batch index in [0, {num_images}), got values in "
                         f"[{batch.min()}, {batch.max()}]")
    return rois


def check_dout_shape(dout, shape: tuple) -> None:
    """dout must be an array of the forward output's shape (it is then cast to the op's dtype)."""
    if not isinstance(dout, np.ndarray) or dout.shape != tuple(shape):
        raise ValueError(f"dout must have the forward output's shape {tuple(shape)}, got {came(dout)}")
