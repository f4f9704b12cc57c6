"""Element-wise activations: ReLU and a numerically stable sigmoid.

Both are cheap, memory-bound NumPy expressions, so they have no Numba kernel: one
vectorised pass is already as fast as the memory allows.

Shapes: any float[...] array; the output has the input's shape and dtype.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minimrcnn.nn.functional._checks import check_dout as _check_dout
from minimrcnn.nn.functional._checks import check_float as _check_float


# -- ReLU -------------------------------------------------------------------------
class ReluCache(NamedTuple):
    positive: np.ndarray  # bool[...]: where x > 0, the only places gradient flows through


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, ReluCache]:
    """out = max(x, 0).

    Args:
        x (float[...]): any shape.

    Returns:
        out (float[...]): same shape and dtype as ``x``.
        cache (ReluCache): the mask x > 0.
    """
    _check_float("relu", "x", x)
    positive = x > 0
    # where(...) instead of np.maximum: maximum(nan, 0) is nan too, but this makes the
    # "gradient flows where x > 0" rule and the forward read the same.
    out = np.where(positive, x, x.dtype.type(0))
    return out, ReluCache(positive)


def relu_backward(dout: np.ndarray, cache: ReluCache) -> np.ndarray:
    """dx = dout where x > 0, else 0 (torch also uses 0 at exactly x == 0).

    Args:
        dout (float[...]): gradient of the loss w.r.t. the output.

    Returns:
        dx (float[...]): same shape as ``dout``.
    """
    _check_dout("relu_backward", dout, cache.positive.shape)
    return np.where(cache.positive, dout, dout.dtype.type(0))


def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0); see :func:`relu_forward`."""
    return relu_forward(x)[0]


# -- Sigmoid ----------------------------------------------------------------------
class SigmoidCache(NamedTuple):
    out: np.ndarray  # float[...]: sigmoid(x); the derivative is out * (1 - out)


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, SigmoidCache]:
    """out = 1 / (1 + exp(-x)), computed without overflow for any finite x.

    exp(-x) overflows for x < -710 (float64) or x < -89 (float32). With z = exp(-|x|),
    which is always in (0, 1]:  sigmoid(x) = 1 / (1 + z) for x >= 0 and z / (1 + z) for
    x < 0 (multiply top and bottom by exp(x)). Example: x = -1000 gives z = 0, out = 0.

    Args:
        x (float[...]): any shape.

    Returns:
        out (float[...]): same shape and dtype as ``x``, in [0, 1].
        cache (SigmoidCache): the output.
    """
    _check_float("sigmoid", "x", x)
    z = np.exp(-np.abs(x))
    out = np.where(x >= 0, 1 / (1 + z), z / (1 + z)).astype(x.dtype, copy=False)
    return out, SigmoidCache(out)


def sigmoid_backward(dout: np.ndarray, cache: SigmoidCache) -> np.ndarray:
    """dx = dout * s * (1 - s) with s = sigmoid(x).

    Returns:
        dx (float[...]): same shape as ``dout``.
    """
    _check_dout("sigmoid_backward", dout, cache.out.shape)
    s = cache.out
    return dout * s * (1 - s)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Stable logistic sigmoid; see :func:`sigmoid_forward`."""
    return sigmoid_forward(x)[0]
