"""linear: known answer, gradients, errors."""

import numpy as np
import pytest

from minimrcnn.gradcheck import numerical_gradient, rel_error
from minimrcnn.nn.functional.linear import linear, linear_backward, linear_forward


def test_linear_known_answer():
    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])                # R=3, in=2
    w = np.array([[1.0, 0.0], [1.0, -1.0]])                           # out=2
    b = np.array([10.0, 20.0])
    np.testing.assert_array_equal(linear(x, w, b), [[11, 19], [13, 19], [15, 19]])
    out, cache = linear_forward(x, w, b)
    dx, dw, db = linear_backward(np.ones_like(out), cache)
    np.testing.assert_array_equal(dx, [[2, -1]] * 3)                  # column sums of w
    np.testing.assert_array_equal(dw, [[9, 12], [9, 12]])             # column sums of x
    np.testing.assert_array_equal(db, [3, 3])                         # one per row


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linear_gradients(seed):
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((5, 7)), rng.standard_normal((3, 7)), rng.standard_normal(3)
    out, cache = linear_forward(x, w, b)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = linear_backward(dout, cache)
    assert rel_error(dx, numerical_gradient(lambda v: linear(v, w, b), x, dout)) < 1e-6
    assert rel_error(dw, numerical_gradient(lambda v: linear(x, v, b), w, dout)) < 1e-6
    assert rel_error(db, numerical_gradient(lambda v: linear(x, w, v), b, dout)) < 1e-6


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_dtype_no_bias_and_non_contiguous(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 4)).astype(dtype).T                   # [4, 6] view
    w = rng.standard_normal((6, 3)).astype(dtype).T                   # [3, 6] view
    out, cache = linear_forward(x, w)
    np.testing.assert_allclose(out, np.ascontiguousarray(x) @ np.ascontiguousarray(w).T, rtol=1e-6)
    dx, dw, db = linear_backward(np.ones_like(out), cache)
    assert out.dtype == dx.dtype == dw.dtype == dtype and db is None


def test_linear_empty_rows():
    out, cache = linear_forward(np.zeros((0, 4), np.float32), np.ones((3, 4), np.float32), np.ones(3, np.float32))
    assert out.shape == (0, 3)
    dx, dw, db = linear_backward(out, cache)
    assert dx.shape == (0, 4) and not dw.any() and not db.any()


@pytest.mark.parametrize("x, w, b, error, match", [
    (np.zeros(4), np.zeros((3, 4)), None, ValueError, r"x must be float\[R, in\]"),
    (np.zeros((2, 5)), np.zeros((3, 4)), None, ValueError, "in=4"),
    (np.zeros((2, 4), np.int64), np.zeros((3, 4)), None, TypeError, "float32 or float64"),
    (np.zeros((2, 4)), np.zeros((3, 4), np.float32), None, TypeError, "weight must have"),
    (np.zeros((2, 4)), np.zeros((3, 4)), np.zeros(4), ValueError, r"bias must have shape \(3,\)"),
])
def test_linear_bad_inputs(x, w, b, error, match):
    with pytest.raises(error, match=match):
        linear(x, w, b)
