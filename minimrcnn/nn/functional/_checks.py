"""Argument validation of the nn layer, in the project's one message style:

    "[<op>: ]<argument> must be <what was expected>, got <what came>"

for example ``group_norm: weight must have shape (8,) (one value per channel), got
shape (4,)``. What came is shown by ``came()``: the type name for a non-array,
``dtype float16`` for a wrong dtype, ``shape (3, 4)`` for a wrong shape. The ops
layer's checks (minimrcnn/ops/_checks.py) use the same helpers.
"""

from __future__ import annotations

import numpy as np

FLOATS = (np.float32, np.float64)   # the dtypes the Numba kernels are compiled for


def came(value, what: str = "shape") -> str:
    """What came, for an error message: ``shape ...`` / ``dtype ...`` of an array, else its type."""
    if not isinstance(value, np.ndarray):
        return type(value).__name__
    return f"dtype {value.dtype}" if what == "dtype" else f"shape {value.shape}"


def _at(op) -> str:
    return f"{op}: " if op else ""


def check_ndarray(op: str, name: str, x) -> np.ndarray:
    """x must be a numpy array (any dtype)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{_at(op)}{name} must be a numpy array, got {came(x)}")
    return x


def check_float(op: str, name: str, x) -> np.ndarray:
    """x must be a float32/float64 ndarray (float16 would reach the kernels, which lack it)."""
    check_ndarray(op, name, x)
    if x.dtype not in FLOATS:
        raise TypeError(f"{_at(op)}{name} must be float32 or float64, got {came(x, 'dtype')}")
    return x


def check_dout(op: str, dout, shape: tuple) -> np.ndarray:
    """dout must be a float array with the forward output's shape."""
    check_float(op, "dout", dout)
    if dout.shape != shape:
        raise ValueError(f"{_at(op)}dout must have the forward output's shape {shape}, got {came(dout)}")
    return dout


def check_array(array, name: str, ndim: int, dims: str, dtype=None, op: str | None = None) -> None:
    """A float32/float64 ndarray with ``ndim`` dims (and ``dtype`` when given); ``dims`` names them."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{_at(op)}{name} must be a numpy array {dims}, got {came(array)}")
    if array.dtype not in FLOATS:
        raise TypeError(f"{_at(op)}{name} must be float32 or float64, got {came(array, 'dtype')}")
    if dtype is not None and array.dtype != dtype:
        raise TypeError(f"{_at(op)}{name} must have the input's dtype {dtype}, got {came(array, 'dtype')}")
    if array.ndim != ndim:
        raise ValueError(f"{_at(op)}{name} must be {dims} ({ndim}-D), got {came(array)}")


def check_per_channel(op: str, name: str, array, C: int, allow_none: bool = False):
    """A float32/float64 array of shape (C,), or None when ``allow_none``."""
    if array is None and allow_none:
        return None
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{_at(op)}{name} must be a numpy array of shape ({C},), got {came(array)}")
    if array.dtype not in FLOATS:
        raise TypeError(f"{_at(op)}{name} must be float32 or float64, got {came(array, 'dtype')}")
    if array.shape != (C,):
        raise ValueError(f"{_at(op)}{name} must have shape ({C},) (one value per channel), got {came(array)}")
    return array


def pair(value, name: str, minimum: int, op: str | None = None) -> tuple[int, int]:
    """An int or a pair of ints -> (vertical, horizontal), each >= minimum."""
    try:
        values = (value, value) if np.isscalar(value) else tuple(value)
        ok = len(values) == 2 and all(int(v) == v and v >= minimum for v in values)
    except (TypeError, ValueError):      # not numbers, or not a sequence
        ok = False
    if not ok:
        raise ValueError(f"{_at(op)}{name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return int(values[0]), int(values[1])


def check_conv_inputs(x, weight, bias, weight_dims: str, in_axis: int, out_axis: int) -> None:
    """x float[N, C_in, H, W], weight with C_in at ``in_axis`` and C_out at ``out_axis``, bias [C_out]."""
    check_array(x, "x", 4, "float[N, C_in, H, W]")
    check_array(weight, "weight", 4, weight_dims, x.dtype)
    C_in, C_out = weight.shape[in_axis], weight.shape[out_axis]
    if x.shape[1] != C_in:
        raise ValueError(f"x must have C_in={C_in} channels to match weight {weight.shape}, got {came(x)}")
    if bias is not None:
        check_array(bias, "bias", 1, "float[C_out]", x.dtype)
        if bias.shape != (C_out,):
            raise ValueError(f"bias must have shape ({C_out},), got {came(bias)}")
