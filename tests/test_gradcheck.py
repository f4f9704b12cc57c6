"""numerical_gradient, rel_error and the layer/parameter checks on functions with known derivatives."""

import numpy as np
import pytest

from minimrcnn.gradcheck import check_layer_gradients, check_parameter_gradients, numerical_gradient, rel_error
from minimrcnn.nn.module import Module, Parameter


def test_numerical_gradient_of_array_function():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    dout = rng.standard_normal((3, 4))
    grad = numerical_gradient(lambda z: z ** 3, x, dout)
    np.testing.assert_allclose(grad, 3 * x ** 2 * dout, rtol=1e-6, atol=1e-9)


def test_numerical_gradient_of_scalar_function_and_no_mutation():
    x = np.array([1.0, -2.0, 0.5])
    before = x.copy()
    grad = numerical_gradient(lambda z: float(np.sum(z ** 2)), x, 2.0)
    np.testing.assert_allclose(grad, 2.0 * 2 * before, rtol=1e-8)
    np.testing.assert_array_equal(x, before)


def test_numerical_gradient_requires_float64():
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda z: z, np.zeros(3, np.float32), np.ones(3))


def test_rel_error_values():
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    # |1 - 3| / (1 + 3) = 0.5 is the largest elementwise ratio.
    assert rel_error(np.array([1.0, 0.0]), np.array([3.0, 0.0])) == pytest.approx(0.5)
    assert rel_error(np.zeros(0), np.zeros(0)) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        rel_error(np.zeros(2), np.zeros(3))
    # the floor: |1e-9 - 3e-9| = 2e-9 over max(floor, 4e-9)
    assert rel_error(np.array([1e-9]), np.array([3e-9])) == pytest.approx(0.2)
    assert rel_error(np.array([1e-9]), np.array([3e-9]), floor=1e-3) == pytest.approx(2e-6)


class _Scale(Module):
    """out = x * w; ``wrong=True`` forgets the factor w in dx (a typical bug)."""

    def __init__(self, wrong=False):
        super().__init__()
        self.w = Parameter(np.array([2.0, -3.0]))
        self.wrong = wrong

    def forward(self, x):
        return x * self.w.data, x

    def backward(self, dout, x):
        self.w.grad += (dout * x).sum(axis=0)
        return dout if self.wrong else dout * self.w.data


def test_check_layer_gradients_passes_correct_and_catches_wrong_backward():
    x = np.random.default_rng(0).standard_normal((3, 2))
    good = check_layer_gradients(_Scale(), x)
    assert set(good) == {"x", "w"} and max(good.values()) < 1e-8
    bad = check_layer_gradients(_Scale(wrong=True), x)
    assert bad["x"] > 0.1 and bad["w"] < 1e-8


def _scale_loss(layer, x, dout):
    """The scalar loss sum(layer(x) * dout), its analytic gradient left in layer.w.grad."""
    out, cache = layer.forward(x)
    layer.zero_grad()
    layer.backward(dout, cache)
    return lambda: float(np.sum(layer.forward(x)[0] * dout))


def test_check_parameter_gradients_passes_correct_and_catches_wrong_grad():
    rng = np.random.default_rng(1)
    x, dout = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    layer = _Scale()
    loss = _scale_loss(layer, x, dout)
    before = layer.w.data.copy()
    errors = check_parameter_gradients(layer, loss, entries=4)
    assert set(errors) == {"w"} and errors["w"] < 1e-8
    np.testing.assert_array_equal(layer.w.data, before)         # every nudge undone
    layer.w.grad *= 2                                            # a backward that doubles dw
    assert check_parameter_gradients(layer, loss)["w"] == pytest.approx(1 / 3, rel=1e-6)


def test_check_parameter_gradients_names_frozen_and_errors():
    layer = _Scale()
    loss = _scale_loss(layer, np.ones((1, 2)), np.ones((1, 2)))
    layer.w.requires_grad = False
    assert check_parameter_gradients(layer, loss) == {}          # frozen: skipped by default
    assert set(check_parameter_gradients(layer, loss, ["w"])) == {"w"}
    with pytest.raises(KeyError, match="no parameters named \\['v'\\]"):
        check_parameter_gradients(layer, loss, ["v"])
    layer.w.data = layer.w.data.astype(np.float32)
    with pytest.raises(TypeError, match="must be float64 .float32 is too coarse., got float32 for \\['w'\\]"):
        check_parameter_gradients(layer, loss, ["w"])
