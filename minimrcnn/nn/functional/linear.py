"""Fully connected layer ``y = x @ weight.T + bias``, as torch.nn.functional.linear.

Three GEMMs, all through NumPy's BLAS (no kernel is needed):

    forward:   y  = x @ W.T + b        [R, in] @ [in, out]  -> [R, out]
    backward:  dx = dy @ W             [R, out] @ [out, in] -> [R, in]
               dW = dy.T @ x           [out, R] @ [R, in]   -> [out, in]
               db = dy.sum(0)          every row received the same bias

Used by the box head (fc6, fc7, cls_score, bbox_pred) on R RoIs.

Shape shorthand: R rows (RoIs), in / out features.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minimrcnn.nn.functional._checks import check_array as _check




class LinearCache(NamedTuple):
    x: np.ndarray            # float[R, in]
    weight: np.ndarray       # float[out, in]
    has_bias: bool


def linear_forward(x, weight, bias=None):
    """y = x @ weight.T + bias.

    Args:
        x (float[R, in]): one row per sample (RoI).
        weight (float[out, in]): torch's layout.
        bias (float[out] or None)

    Returns:
        y (float[R, out]) and a LinearCache.
    """
    _check(x, "x", 2, "float[R, in]")
    _check(weight, "weight", 2, "float[out, in]", x.dtype)
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"x must have in={weight.shape[1]} features to match weight {weight.shape}, "
                         f"got shape {x.shape}")
    if bias is not None:
        _check(bias, "bias", 1, "float[out]", x.dtype)
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"bias must have shape ({weight.shape[0]},), got {bias.shape}")
    y = x @ weight.T             # BLAS reads the transposed view directly, no copy
    if bias is not None:
        y += bias
    return y, LinearCache(x, weight, bias is not None)


def linear_backward(dout, cache: LinearCache):
    """Gradients of linear.

    Args:
        dout (float[R, out]): gradient of the loss w.r.t. y.

    Returns:
        dx (float[R, in]), dweight (float[out, in]), dbias (float[out] or None).
    """
    x, weight = cache.x, cache.weight
    _check(dout, "dout", 2, "float[R, out]", x.dtype)
    if dout.shape != (x.shape[0], weight.shape[0]):
        raise ValueError(f"dout must have shape {(x.shape[0], weight.shape[0])}, got {dout.shape}")
    dx = dout @ weight
    dweight = dout.T @ x
    dbias = dout.sum(axis=0) if cache.has_bias else None
    return dx, dweight, dbias


def linear(x, weight, bias=None):
    """linear_forward without the cache: float[R, out]."""
    return linear_forward(x, weight, bias)[0]
