"""Tensor plumbing with gradients: add (residual connections), flatten, concat.

These move or sum values without arithmetic of their own, so their backwards are
the routing of the chain rule: add copies the gradient to both inputs, flatten
reshapes it back, concat slices it into the inputs' pieces.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minimrcnn.nn.functional._checks import check_dout as _check_dout
from minimrcnn.nn.functional._checks import check_ndarray as _check_array


# -- add --------------------------------------------------------------------------
class AddCache(NamedTuple):
    shape: tuple   # the common shape of a, b and out


def add_forward(a, b):
    """out = a + b for two arrays of the SAME shape (no broadcasting: a broadcast add
    would need its backward to sum over the broadcast axes, and no caller needs it).

    Args:
        a, b (float[...]): same shape.

    Returns:
        out (float[...]), cache (AddCache)
    """
    _check_array("add", "a", a)
    _check_array("add", "b", b)
    if a.shape != b.shape:
        raise ValueError(f"add: b must have a's shape {a.shape} (no broadcasting), got {b.shape}")
    return a + b, AddCache(a.shape)


def add_backward(dout, cache: AddCache):
    """d(a + b)/da = d(a + b)/db = 1: both inputs receive dout (as separate copies).

    Returns:
        (da, db), each float[...] shaped like dout.
    """
    _check_dout("add_backward", dout, cache.shape)
    return dout.copy(), dout.copy()


def add(a, b):
    """a + b (same shapes); see :func:`add_forward`."""
    return add_forward(a, b)[0]


# -- flatten ----------------------------------------------------------------------
class FlattenCache(NamedTuple):
    x_shape: tuple   # the input's shape, to reshape the gradient back


def flatten_forward(x, start_dim=1):
    """torch.flatten(x, start_dim): merge dims start_dim..last into one, in C order.

    Example: x of shape [R, C, H, W] with start_dim 1 -> [R, C*H*W] (fc6's input).

    Returns:
        out (float[...]), cache (FlattenCache)
    """
    _check_array("flatten", "x", x)
    if x.ndim == 0 or not -x.ndim <= start_dim < x.ndim:
        raise ValueError(f"flatten: start_dim must be in [{-x.ndim}, {x.ndim}) for x of shape {x.shape}, "
                         f"got {start_dim}")
    start = start_dim % x.ndim
    out_shape = x.shape[:start] + (int(np.prod(x.shape[start:])),)   # explicit size: works for empty x too
    return x.reshape(out_shape), FlattenCache(x.shape)


def flatten_backward(dout, cache: FlattenCache):
    """dx = dout reshaped to the input's shape.

    Returns:
        dx (float[...])
    """
    _check_array("flatten_backward", "dout", dout)
    if dout.size != int(np.prod(cache.x_shape)):
        raise ValueError(f"flatten_backward: dout must have {int(np.prod(cache.x_shape))} elements "
                         f"(input shape {cache.x_shape}), got shape {dout.shape}")
    return dout.reshape(cache.x_shape)


def flatten(x, start_dim=1):
    """torch.flatten(x, start_dim); see :func:`flatten_forward`."""
    return flatten_forward(x, start_dim)[0]


# -- concat -----------------------------------------------------------------------
class ConcatCache(NamedTuple):
    sizes: tuple     # each input's length along axis
    axis: int        # non-negative axis
    out_shape: tuple


def concat_forward(xs, axis=0):
    """torch.cat(xs, dim=axis).

    Args:
        xs (list of float[...]): at least one array; equal shapes except along ``axis``.
        axis (int): the axis to join along.

    Returns:
        out (float[...]), cache (ConcatCache)
    """
    if not isinstance(xs, (list, tuple)) or len(xs) == 0:
        raise ValueError(f"concat: xs must be a non-empty list of arrays, got {type(xs).__name__} of length "
                         f"{len(xs) if hasattr(xs, '__len__') else '?'}")
    for i, x in enumerate(xs):
        _check_array("concat", f"xs[{i}]", x)
    ndim = xs[0].ndim
    if not -ndim <= axis < ndim:
        raise ValueError(f"concat: axis must be in [{-ndim}, {ndim}) for arrays of {ndim} dims, got {axis}")
    axis = axis % ndim
    for i, x in enumerate(xs):
        rest, rest0 = x.shape[:axis] + x.shape[axis + 1:], xs[0].shape[:axis] + xs[0].shape[axis + 1:]
        if x.ndim != ndim or rest != rest0:
            raise ValueError(f"concat: xs[{i}] must match xs[0]'s shape {xs[0].shape} except along axis {axis}, "
                             f"got {x.shape}")
    out = np.concatenate(xs, axis=axis)
    return out, ConcatCache(tuple(x.shape[axis] for x in xs), axis, out.shape)


def concat_backward(dout, cache: ConcatCache):
    """Each input gets its own slice of dout along the axis (as a contiguous copy).

    Returns:
        list of float[...]: one gradient per input, in input order.
    """
    _check_dout("concat_backward", dout, cache.out_shape)
    bounds = np.cumsum(cache.sizes)[:-1]
    return [np.ascontiguousarray(piece) for piece in np.split(dout, bounds, axis=cache.axis)]


def concat(xs, axis=0):
    """torch.cat(xs, dim=axis); see :func:`concat_forward`."""
    return concat_forward(xs, axis)[0]
