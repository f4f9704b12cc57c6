"""add, flatten, concat: values, routing of gradients, errors."""

import numpy as np
import pytest

from minimrcnn.gradcheck import numerical_gradient, rel_error
from minimrcnn.nn.functional.tensor import (
    add, add_backward, add_forward, concat, concat_backward, concat_forward, flatten,
    flatten_backward, flatten_forward,
)


def test_add_known_answer_and_gradient():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    out, cache = add_forward(a, b)
    np.testing.assert_array_equal(out, a + b)
    dout = rng.standard_normal(out.shape)
    da, db = add_backward(dout, cache)
    assert rel_error(da, numerical_gradient(lambda z: add(z, b), a, dout)) < 1e-8
    assert rel_error(db, numerical_gradient(lambda z: add(a, z), b, dout)) < 1e-8
    da[...] = 0                                             # separate copies, dout untouched
    assert np.any(db != 0) and np.any(dout != 0)


def test_add_refuses_broadcasting():
    with pytest.raises(ValueError, match="b must have a's shape"):
        add(np.zeros((2, 3)), np.zeros((1, 3)))


def test_flatten_known_answer_and_gradient():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 2, 2))
    out, cache = flatten_forward(x)
    assert out.shape == (2, 12)
    np.testing.assert_array_equal(out[1], x[1].ravel())       # (C, H, W) order, as torch
    assert flatten(x, start_dim=2).shape == (2, 3, 4)
    assert flatten(x, start_dim=-1).shape == x.shape
    assert flatten(np.zeros((0, 3, 2, 2))).shape == (0, 12)
    dout = rng.standard_normal(out.shape)
    dx = flatten_backward(dout, cache)
    assert rel_error(dx, numerical_gradient(flatten, x, dout)) < 1e-8
    with pytest.raises(ValueError, match="start_dim"):
        flatten(x, start_dim=4)
    with pytest.raises(ValueError, match="dout"):
        flatten_backward(np.zeros(5), cache)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat_known_answer_and_gradient(axis):
    rng = np.random.default_rng(2)
    shapes = {0: [(1, 3, 2), (2, 3, 2)], 1: [(2, 1, 2), (2, 4, 2)], -1: [(2, 3, 1), (2, 3, 3)]}[axis]
    a, b = (rng.standard_normal(s) for s in shapes)
    out, cache = concat_forward([a, b], axis=axis)
    np.testing.assert_array_equal(out, np.concatenate([a, b], axis=axis))
    dout = rng.standard_normal(out.shape)
    da, db = concat_backward(dout, cache)
    assert rel_error(da, numerical_gradient(lambda z: concat([z, b], axis), a, dout)) < 1e-8
    assert rel_error(db, numerical_gradient(lambda z: concat([a, z], axis), b, dout)) < 1e-8


def test_concat_bad_inputs():
    with pytest.raises(ValueError, match="non-empty list"):
        concat([])
    with pytest.raises(ValueError, match=r"xs\[1\] must match"):
        concat([np.zeros((2, 3)), np.zeros((2, 4))], axis=0)
    with pytest.raises(ValueError, match="axis"):
        concat([np.zeros((2, 3))], axis=2)
    with pytest.raises(TypeError, match=r"xs\[0\] must be a numpy array"):
        concat([[1.0]])
