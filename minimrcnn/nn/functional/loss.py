"""Losses of Mask R-CNN: softmax cross-entropy, BCE with logits, smooth L1.

Lesson: lessons/05_losses.ipynb.

Each ``*_forward`` returns ``(loss, cache)``: a 0-d NumPy scalar in the input's dtype
for reduction "mean"/"sum", or an array of per-element losses for "none". Each
``*_backward(dloss, cache)`` takes the upstream gradient (a scalar, or an array shaped
like the loss for "none"; 1.0 when the loss is the final objective) and returns the
gradient of the FIRST input only: targets are labels, never differentiated.

Where they are used (torchvision semantics):
* cross_entropy: box-head classification, mean over the R sampled RoIs.
* binary_cross_entropy_with_logits: RPN objectness (mean over sampled anchors) and the
  mask loss (mean over P * M * M pixels, soft targets).
* smooth_l1_loss: box regression, reduction "sum" then divided by the number sampled.

Shape shorthand: R RoIs (rows), K classes including background 0.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minimrcnn.nn.functional._checks import check_float as _check_float

_REDUCTIONS = ("mean", "sum", "none")




def _check_reduction(op: str, reduction: str, size: int) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if reduction == "mean" and size == 0:
        # torch returns nan here; a silent nan is the worst kind of bug, so we refuse.
        raise ValueError(f"{op}: reduction 'mean' of 0 elements is undefined (torch gives nan)")


def _reduce(losses: np.ndarray, reduction: str):
    if reduction == "none":
        return losses
    total = losses.sum(dtype=np.float64)
    value = total / losses.size if reduction == "mean" else total
    return losses.dtype.type(value)


def _seed(op: str, dloss, reduction: str, shape: tuple, dtype) -> np.ndarray:
    """The upstream gradient broadcast to every element, including the 1/n of "mean"."""
    if reduction == "none":
        dloss = np.asarray(dloss)
        if dloss.shape != shape:
            raise ValueError(f"{op}: dloss must have the loss's shape {shape} for reduction 'none', got {dloss.shape}")
        return dloss.astype(dtype, copy=False)
    if np.ndim(dloss) != 0:
        raise ValueError(f"{op}: dloss must be a scalar for reduction {reduction!r}, got shape {np.shape(dloss)}")
    scale = float(dloss) / (int(np.prod(shape)) if reduction == "mean" else 1)
    return np.full(shape, scale, dtype=dtype)


# -- cross entropy ----------------------------------------------------------------
class CrossEntropyCache(NamedTuple):
    probs: np.ndarray    # float[R, K]: softmax(logits)
    target: np.ndarray   # int64[R]


def cross_entropy_forward(logits, target):
    """Mean softmax cross-entropy, as torch.nn.functional.cross_entropy(logits, target).

    loss = mean_r( logsumexp(logits[r]) - logits[r, target[r]] ), with the row max
    subtracted first so exp never overflows.

    Args:
        logits (float[R, K]): unnormalised class scores, R >= 1.
        target (int[R]): class index of each row, in [0, K).

    Returns:
        loss (0-d float): logits' dtype.
        cache (CrossEntropyCache)

    Limitations: no ignore_index, class weights or label smoothing.
    """
    _check_float("cross_entropy", "logits", logits)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: logits must have shape [R, K], got {logits.shape}")
    R, K = logits.shape
    if R == 0:
        raise ValueError("cross_entropy: logits has 0 rows (the mean is undefined); callers must skip this case")
    if not isinstance(target, np.ndarray) or not np.issubdtype(target.dtype, np.integer):
        raise TypeError(f"cross_entropy: target must be an integer array of shape ({R},), "
                        f"got {getattr(target, 'dtype', type(target).__name__)}")
    if target.shape != (R,):
        raise ValueError(f"cross_entropy: target must have shape ({R},) to match logits {logits.shape}, "
                         f"got {target.shape}")
    if target.min() < 0 or target.max() >= K:
        raise ValueError(f"cross_entropy: target values must be in [0, {K}), got min {target.min()} max {target.max()}")
    shifted = logits - logits.max(axis=1, keepdims=True)        # <= 0, so exp <= 1
    log_sum = np.log(np.exp(shifted).sum(axis=1))                # [R]
    log_probs = shifted - log_sum[:, None]                      # log-softmax
    rows = np.arange(R)
    losses = -log_probs[rows, target]                           # [R]
    probs = np.exp(log_probs)
    return _reduce(losses, "mean"), CrossEntropyCache(probs, target.astype(np.int64))


def cross_entropy_backward(dloss, cache: CrossEntropyCache):
    """dlogits = (softmax(logits) - onehot(target)) * dloss / R.

    Returns:
        dlogits (float[R, K])
    """
    probs, target = cache
    R = probs.shape[0]
    dlogits = probs.copy()
    dlogits[np.arange(R), target] -= 1
    return dlogits * _seed("cross_entropy_backward", dloss, "mean", (R, 1), probs.dtype)


def cross_entropy(logits, target):
    """Mean softmax cross-entropy; see :func:`cross_entropy_forward`."""
    return cross_entropy_forward(logits, target)[0]


# -- binary cross entropy with logits ---------------------------------------------
class BCEWithLogitsCache(NamedTuple):
    logits: np.ndarray   # float[...]
    target: np.ndarray   # float[...], logits' dtype
    reduction: str


def _check_pair(op: str, a_name: str, a, b_name: str, b):
    _check_float(op, a_name, a)
    if not isinstance(b, np.ndarray):
        raise TypeError(f"{op}: {b_name} must be a numpy array, got {type(b).__name__}")
    if b.shape != a.shape:
        raise ValueError(f"{op}: {b_name} must have {a_name}'s shape {a.shape}, got {b.shape}")
    if not (np.issubdtype(b.dtype, np.floating) or b.dtype == np.bool_):
        raise TypeError(f"{op}: {b_name} must be a float (or bool) array, got dtype {b.dtype}")
    return b.astype(a.dtype, copy=False)


def binary_cross_entropy_with_logits_forward(logits, target, reduction="mean"):
    """BCE on logits, as torch.nn.functional.binary_cross_entropy_with_logits.

    Per element, with x the logit and y the target: -[y log s(x) + (1 - y) log(1 - s(x))],
    written stably as max(x, 0) - x * y + log1p(exp(-|x|)): exp never sees a positive
    argument. Example: x = 0, y = 1 gives log(2) = 0.6931.

    Args:
        logits (float[...]): scores before the sigmoid.
        target (float[...]): same shape, in [0, 1] (soft targets allowed).
        reduction (str): "mean", "sum" or "none".

    Returns:
        loss (0-d float, or float[...] for "none"), cache
    """
    op = "binary_cross_entropy_with_logits"
    target = _check_pair(op, "logits", logits, "target", target)
    _check_reduction(op, reduction, logits.size)
    if target.size and (target.min() < 0 or target.max() > 1):
        raise ValueError(f"{op}: target values must be in [0, 1], got min {target.min()} max {target.max()}")
    losses = np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits)))
    return _reduce(losses, reduction), BCEWithLogitsCache(logits, target, reduction)


def binary_cross_entropy_with_logits_backward(dloss, cache: BCEWithLogitsCache):
    """dlogits = (sigmoid(x) - y) * dloss (y the target), divided by the element count for "mean".

    Returns:
        dlogits (float[...])
    """
    logits, target, reduction = cache
    z = np.exp(-np.abs(logits))                                 # stable sigmoid
    probs = np.where(logits >= 0, 1 / (1 + z), z / (1 + z))
    seed = _seed("binary_cross_entropy_with_logits_backward", dloss, reduction, logits.shape, logits.dtype)
    return ((probs - target) * seed).astype(logits.dtype, copy=False)


def binary_cross_entropy_with_logits(logits, target, reduction="mean"):
    """BCE on logits; see :func:`binary_cross_entropy_with_logits_forward`."""
    return binary_cross_entropy_with_logits_forward(logits, target, reduction)[0]


# -- smooth L1 --------------------------------------------------------------------
class SmoothL1Cache(NamedTuple):
    diff: np.ndarray     # float[...]: input - target
    beta: float
    reduction: str


def smooth_l1_loss_forward(input, target, beta=1.0, reduction="mean"):
    """Smooth L1 (Huber / beta), as torch.nn.functional.smooth_l1_loss.

    With d = input - target: 0.5 * d^2 / beta if |d| < beta, else |d| - 0.5 * beta.
    beta = 0 is plain L1 (|d|). Fast R-CNN uses beta = 1, torchvision's heads 1/9.
    Example: beta = 1, d = 0.5 -> 0.125; d = 2 -> 1.5.

    Args:
        input (float[...]): predictions.
        target (float[...]): same shape.
        beta (float): >= 0, where the quadratic part ends.
        reduction (str): "mean", "sum" or "none".

    Returns:
        loss (0-d float, or float[...] for "none"), cache
    """
    op = "smooth_l1_loss"
    target = _check_pair(op, "input", input, "target", target)
    _check_reduction(op, reduction, input.size)
    if not beta >= 0:
        raise ValueError(f"{op}: beta must be >= 0, got {beta}")
    diff = input - target
    abs_diff = np.abs(diff)
    if beta == 0:
        losses = abs_diff
    else:
        losses = np.where(abs_diff < beta, 0.5 * diff * diff / beta, abs_diff - 0.5 * beta)
    return _reduce(losses.astype(input.dtype, copy=False), reduction), SmoothL1Cache(diff, float(beta), reduction)


def smooth_l1_loss_backward(dloss, cache: SmoothL1Cache):
    """dinput = (d / beta if |d| < beta else sign(d)) * dloss (/ count for "mean").

    Returns:
        dinput (float[...])
    """
    diff, beta, reduction = cache
    if beta == 0:
        local = np.sign(diff)
    else:
        local = np.where(np.abs(diff) < beta, diff / beta, np.sign(diff))
    seed = _seed("smooth_l1_loss_backward", dloss, reduction, diff.shape, diff.dtype)
    return (local * seed).astype(diff.dtype, copy=False)


def smooth_l1_loss(input, target, beta=1.0, reduction="mean"):
    """Smooth L1 loss; see :func:`smooth_l1_loss_forward`."""
    return smooth_l1_loss_forward(input, target, beta, reduction)[0]
