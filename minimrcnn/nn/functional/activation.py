"""Activations: ReLU, a numerically stable sigmoid and softmax.

All are cheap, memory-bound NumPy expressions, so they have no Numba kernel: one
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


def relu_cache_of_output(out: np.ndarray) -> ReluCache:
    """The ReluCache of a ReLU known only by its output: out > 0 exactly where x > 0
    (a NaN x gave 0, as any x <= 0). Ops that apply a ReLU in their own passes
    (conv2d_forward's ``relu``) keep their output and backpropagate with this.
    """
    return ReluCache(out > 0)


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


# -- Softmax ----------------------------------------------------------------------
class SoftmaxCache(NamedTuple):
    out: np.ndarray  # float[...]: softmax(x); the Jacobian-vector product needs only it
    dim: int


def softmax_forward(x: np.ndarray, dim: int = -1) -> tuple[np.ndarray, SoftmaxCache]:
    """out = exp(x) / sum(exp(x)) along ``dim``, the max subtracted first so exp never overflows.

    Subtracting a constant from every entry along ``dim`` leaves the ratio unchanged and makes
    the largest exponent exp(0) = 1. Example: x = [1000, 1000] gives [0.5, 0.5].

    Args:
        x (float[...]): e.g. class logits float[R, K] with ``dim=-1``.
        dim (int): the axis that sums to 1 (torch's ``F.softmax(x, dim)``).

    Returns:
        out (float[...]): same shape and dtype as ``x``.
        cache (SoftmaxCache): the output and the axis.
    """
    _check_float("softmax", "x", x)
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(f"softmax: dim must be in [{-x.ndim}, {x.ndim - 1}] for x of shape {x.shape}, got {dim}")
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    out = (e / e.sum(axis=dim, keepdims=True)).astype(x.dtype, copy=False)
    return out, SoftmaxCache(out, dim)


def softmax_backward(dout: np.ndarray, cache: SoftmaxCache) -> np.ndarray:
    """dx = s * (dout - sum(dout * s, dim)) with s = softmax(x): the Jacobian diag(s) - s s^T
    applied to dout without building it.

    Returns:
        dx (float[...]): same shape as ``dout``.
    """
    _check_dout("softmax_backward", dout, cache.out.shape)
    s = cache.out
    return s * (dout - (dout * s).sum(axis=cache.dim, keepdims=True))


def softmax(x: np.ndarray, dim: int = -1) -> np.ndarray:
    """Stable softmax along ``dim``; see :func:`softmax_forward`."""
    return softmax_forward(x, dim)[0]
