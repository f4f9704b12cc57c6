"""ReLU, sigmoid and softmax: known answers, float64 gradient checks, stability, errors."""

import warnings

import numpy as np
import pytest

from minimrcnn.gradcheck import numerical_gradient, rel_error
from minimrcnn.nn.functional.activation import (
    relu, relu_backward, relu_forward, sigmoid, sigmoid_backward, sigmoid_forward, softmax,
    softmax_backward, softmax_forward,
)


def test_relu_known_answer():
    x = np.array([[-2.0, 0.0, 3.5]], np.float32)
    out, cache = relu_forward(x)
    np.testing.assert_array_equal(out, [[0.0, 0.0, 3.5]])
    assert out.dtype == np.float32
    # torch uses a zero gradient at exactly x == 0.
    np.testing.assert_array_equal(relu_backward(np.array([[1.0, 1.0, 1.0]], np.float32), cache), [[0.0, 0.0, 1.0]])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_relu_gradient(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 4, 5))
    x[np.abs(x) < 0.01] = 0.5                                 # stay away from the kink at 0
    dout = rng.standard_normal(x.shape)
    dx = relu_backward(dout, relu_forward(x)[1])
    assert rel_error(dx, numerical_gradient(relu, x, dout)) < 1e-8


def test_relu_does_not_mutate_and_accepts_non_contiguous():
    x = np.arange(-6.0, 6.0).reshape(3, 4)[:, ::2]
    before = x.copy()
    np.testing.assert_array_equal(relu(x), np.maximum(before, 0))
    np.testing.assert_array_equal(x, before)


def test_sigmoid_known_answer_and_stability():
    x = np.array([0.0, np.log(3.0), -np.log(3.0), 1000.0, -1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")                      # no overflow warning may appear
        out = sigmoid(x)
        out32 = sigmoid(x.astype(np.float32))
    np.testing.assert_allclose(out, [0.5, 0.75, 0.25, 1.0, 0.0], rtol=1e-12)
    assert out32.dtype == np.float32 and np.all(np.isfinite(out32))


@pytest.mark.parametrize("seed", [0, 1])
def test_sigmoid_gradient(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 6)) * 3
    dout = rng.standard_normal(x.shape)
    dx = sigmoid_backward(dout, sigmoid_forward(x)[1])
    assert rel_error(dx, numerical_gradient(sigmoid, x, dout)) < 1e-6


def test_softmax_known_answer_and_stability():
    # [0, log 3] -> [1/4, 3/4]; a constant shift changes nothing, even one that would overflow exp.
    x = np.array([[0.0, np.log(3.0)], [1000.0, 1000.0 + np.log(3.0)], [-1000.0, 1000.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = softmax(x)
        out32 = softmax(x.astype(np.float32))
    np.testing.assert_allclose(out, [[0.25, 0.75], [0.25, 0.75], [0.0, 1.0]], rtol=1e-12)
    assert out32.dtype == np.float32 and np.all(np.isfinite(out32))
    # dim picks the axis that sums to 1.
    y = np.random.default_rng(0).standard_normal((2, 3, 4))
    np.testing.assert_allclose(softmax(y, 1).sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(softmax(y, 1), np.moveaxis(softmax(np.moveaxis(y, 1, -1)), -1, 1), rtol=1e-12)


@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_softmax_gradient(dim):
    rng = np.random.default_rng(dim + 5)
    x = rng.standard_normal((3, 4, 5)) * 2
    dout = rng.standard_normal(x.shape)
    dx = softmax_backward(dout, softmax_forward(x, dim)[1])
    assert rel_error(dx, numerical_gradient(lambda z: softmax(z, dim), x, dout)) < 1e-6


def test_activation_bad_inputs():
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        relu(np.array([1, 2, 3]))
    with pytest.raises(TypeError, match="x must be a numpy array"):
        sigmoid([1.0, 2.0])
    _, cache = relu_forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="dout must have the forward output's shape"):
        relu_backward(np.zeros((3, 2)), cache)
    _, cache = sigmoid_forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="dout"):
        sigmoid_backward(np.zeros(6), cache)
    with pytest.raises(ValueError, match=r"softmax: dim must be in \[-2, 1\] for x of shape \(2, 3\), got 2"):
        softmax(np.zeros((2, 3)), 2)
    _, cache = softmax_forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="dout"):
        softmax_backward(np.zeros((3, 2)), cache)
