"""Numerical gradients by central differences, to check every hand-written backward.

For an op y = f(x) and an arbitrary upstream gradient dout, the analytic backward must
give dL/dx for the scalar L = sum(f(x) * dout). Central differences estimate it:

    dL/dx[i] ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)

with error O(eps^2) for smooth f; in float64 with eps = 1e-6 the relative error
between the two is typically below 1e-8 (CS231n, "Gradient checks").
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def numerical_gradient(f: Callable, x: np.ndarray, dout, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of ``sum(f(x) * dout)`` with respect to ``x``.

    Args:
        f: function of one array returning an array (or a scalar, then dout is a scalar).
        x (float64[...]): the point; it is not modified (a copy is perturbed).
        dout (float64[...] or float): upstream gradient, shaped like f(x).
        eps (float): the step.

    Returns:
        grad (float64[x.shape])
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise TypeError(f"numerical_gradient: x must be a float64 array (float32 is too coarse), "
                        f"got {getattr(x, 'dtype', type(x).__name__)}")
    point = x.copy()
    grad = np.zeros_like(point)
    dout = np.asarray(dout, dtype=np.float64)
    for i in np.ndindex(*point.shape):        # for each element of x
        original = point[i]
        point[i] = original + eps
        loss_plus = float(np.sum(np.asarray(f(point), dtype=np.float64) * dout))
        point[i] = original - eps
        loss_minus = float(np.sum(np.asarray(f(point), dtype=np.float64) * dout))
        point[i] = original                   # restore before the next element
        grad[i] = (loss_plus - loss_minus) / (2 * eps)
    return grad


def rel_error(a, b, floor: float = 1e-8) -> float:
    """max over elements of |a - b| / max(floor, |a| + |b|), as in CS231n.

    ``floor`` keeps entries where both are near zero from dividing by nothing; a whole
    model's loss, summed from float64 pieces, wants a larger one (1e-3) because its
    central differences carry an absolute noise of about 1e-10 / eps.
    Returns 0.0 for empty arrays.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: a and b must have the same shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(floor, np.abs(a) + np.abs(b))))


def check_layer_gradients(layer, x: np.ndarray, seed: int = 0, eps: float = 1e-6) -> dict:
    """Relative errors of a layer's analytic gradients against central differences.

    Runs ``layer.forward(x)`` and ``layer.backward(dout, cache)`` with a random ``dout``
    (drawn from ``seed``), then compares dx and every trainable parameter's ``.grad``
    with :func:`numerical_gradient`. Cast the layer first (``layer.astype(np.float64)``).
    Parameter gradients are zeroed before and left holding the analytic values.

    Returns:
        dict: ``{"x": rel_error of dx, "<parameter name>": rel_error, ...}``
    """
    rng = np.random.default_rng(seed)
    out, cache = layer.forward(x)
    dout = rng.standard_normal(np.shape(out))
    layer.zero_grad()
    dx = layer.backward(dout, cache)
    errors = {"x": rel_error(dx, numerical_gradient(lambda z: layer.forward(z)[0], x, dout, eps))}
    for name, param in layer.named_parameters():
        if not param.requires_grad:
            continue
        original = param.data

        def forward_with(value, param=param):
            param.data = value                 # swap the parameter's array in, run the layer
            return layer.forward(x)[0]
        errors[name] = rel_error(param.grad, numerical_gradient(forward_with, original, dout, eps))
        param.data = original                  # restore the very same array object
    return errors


def check_parameter_gradients(model, loss_fn: Callable[[], float], names=None, entries: int = 2,
                              seed: int = 0, eps: float = 1e-6, floor: float = 1e-8) -> dict:
    """Relative errors of each parameter's ``.grad`` against central differences of ``loss_fn()``.

    For a model too large to perturb every entry: ``entries`` random entries of each
    checked parameter (drawn from ``seed``) are nudged by +-eps in place and restored.
    Call it after the backward pass that filled ``Parameter.grad`` with d(loss)/d(param);
    ``loss_fn()`` must recompute that same scalar loss (freeze any sampling inside it).

    Args:
        model (Module): cast to float64 first (``model.astype(np.float64)``).
        loss_fn: no arguments -> float, the loss whose gradient ``.grad`` holds.
        names (list of str or None): parameters to check (default: every trainable one).
        entries (int): entries checked per parameter (with repetition).
        floor (float): :func:`rel_error`'s denominator floor.

    Returns:
        dict: ``{"<parameter name>": worst rel_error over its checked entries, ...}``
    """
    params = dict(model.named_parameters())
    if names is None:
        names = [name for name, p in params.items() if p.requires_grad]
    unknown = [name for name in names if name not in params]
    if unknown:
        raise KeyError(f"check_parameter_gradients: no parameters named {unknown}")
    not_float64 = [name for name in names if params[name].data.dtype != np.float64]
    if not_float64:
        raise TypeError(f"check_parameter_gradients: parameters must be float64 (float32 is too coarse), "
                        f"got {params[not_float64[0]].data.dtype} for {not_float64}")
    rng = np.random.default_rng(seed)
    errors = {}
    for name in names:                        # for each parameter
        p = params[name]
        numeric, analytic = np.zeros(entries), np.zeros(entries)
        for k in range(entries):              # a few random entries of it
            idx = tuple(int(rng.integers(0, s)) for s in p.data.shape)
            original = p.data[idx]
            p.data[idx] = original + eps
            loss_plus = float(loss_fn())
            p.data[idx] = original - eps
            loss_minus = float(loss_fn())
            p.data[idx] = original            # restore before the next entry
            numeric[k] = (loss_plus - loss_minus) / (2 * eps)
            analytic[k] = p.grad[idx]
        errors[name] = rel_error(analytic, numeric, floor)
    return errors
