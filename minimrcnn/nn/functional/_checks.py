"""Argument validation shared by the functional ops: errors name the op, the argument,
what was expected and what was received."""

from __future__ import annotations

import numpy as np

FLOATS = (np.float32, np.float64)


def check_ndarray(op: str, name: str, x) -> np.ndarray:
    """x must be a numpy array (any dtype)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: {name} must be a numpy array, got {type(x).__name__}")
    return x


def check_float(op: str, name: str, x) -> np.ndarray:
    """x must be a float32/float64 ndarray."""
    check_ndarray(op, name, x)
    if x.dtype not in FLOATS:
        raise TypeError(f"{op}: {name} must be float32 or float64, got dtype {x.dtype}")
    return x


def check_dout(op: str, dout, shape: tuple) -> np.ndarray:
    """dout must be a float array with the forward output's shape."""
    check_float(op, "dout", dout)
    if dout.shape != shape:
        raise ValueError(f"{op}: dout must have the forward output's shape {shape}, got {dout.shape}")
    return dout


def check_array(array, name: str, ndim: int, dims: str, dtype=None) -> None:
    """A float32/float64 ndarray with ``ndim`` dims (and ``dtype`` when given)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a numpy array {dims}, got {type(array).__name__}")
    if array.dtype not in FLOATS:
        raise TypeError(f"{name} must be float32 or float64, got {array.dtype}")
    if dtype is not None and array.dtype != dtype:
        raise TypeError(f"{name} must have the input's dtype {dtype}, got {array.dtype}")
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {dims} ({ndim}-D), got shape {array.shape}")


def pair(value, name: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints -> (vertical, horizontal), each >= minimum."""
    values = (value, value) if np.isscalar(value) else tuple(value)
    if len(values) != 2 or any(int(v) != v or v < minimum for v in values):
        raise ValueError(f"{name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return int(values[0]), int(values[1])


def check_conv_inputs(x, weight, bias, weight_dims: str, in_axis: int, out_axis: int) -> None:
    """x float[N, C_in, H, W], weight with C_in at ``in_axis`` and C_out at ``out_axis``, bias [C_out]."""
    check_array(x, "x", 4, "float[N, C_in, H, W]")
    check_array(weight, "weight", 4, weight_dims, x.dtype)
    C_in, C_out = weight.shape[in_axis], weight.shape[out_axis]
    if x.shape[1] != C_in:
        raise ValueError(f"x must have C_in={C_in} channels to match weight {weight.shape}, got shape {x.shape}")
    if bias is not None:
        check_array(bias, "bias", 1, "float[C_out]", x.dtype)
        if bias.shape != (C_out,):
            raise ValueError(f"bias must have shape ({C_out},), got {bias.shape}")
