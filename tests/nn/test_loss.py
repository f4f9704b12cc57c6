"""cross_entropy, binary_cross_entropy_with_logits, smooth_l1_loss: answers, gradients, errors."""

import warnings

import numpy as np
import pytest

from minimrcnn.gradcheck import numerical_gradient, rel_error
from minimrcnn.nn.functional.loss import (
    binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_backward,
    binary_cross_entropy_with_logits_forward, cross_entropy, cross_entropy_backward,
    cross_entropy_forward, smooth_l1_loss, smooth_l1_loss_backward, smooth_l1_loss_forward,
)

REDUCTIONS = ["mean", "sum", "none"]


def _dloss(rng, reduction, shape):
    return rng.standard_normal(shape) if reduction == "none" else 1.7


# -- cross entropy ----------------------------------------------------------------
def test_cross_entropy_known_answer():
    # Uniform logits over K = 4 classes: the loss is log(4) whatever the target.
    logits = np.zeros((3, 4))
    assert cross_entropy(logits, np.array([0, 1, 3])) == pytest.approx(np.log(4))
    # Row [0, ln 3]: softmax [1/4, 3/4]; target 1 -> -ln(3/4).
    loss = cross_entropy(np.array([[0.0, np.log(3.0)]]), np.array([1]))
    assert loss == pytest.approx(-np.log(0.75))


def test_cross_entropy_is_stable_for_huge_logits():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = cross_entropy(np.array([[1000.0, 0.0], [0.0, 1000.0]], np.float32), np.array([0, 0]))
    assert np.isfinite(loss) and loss == pytest.approx(500.0, rel=1e-6)
    assert loss.dtype == np.float32


@pytest.mark.parametrize("seed,R,K", [(0, 5, 4), (1, 1, 3), (2, 8, 2)])
def test_cross_entropy_gradient(seed, R, K):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((R, K)) * 2
    target = rng.integers(0, K, R)
    _, cache = cross_entropy_forward(logits, target)
    dlogits = cross_entropy_backward(1.3, cache)
    assert rel_error(dlogits, numerical_gradient(lambda z: cross_entropy(z, target), logits, 1.3)) < 1e-6


def test_cross_entropy_bad_inputs():
    logits = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"target values must be in \[0, 4\)"):
        cross_entropy(logits, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"target values must be in \[0, 4\)"):
        cross_entropy(logits, np.array([0, -1, 1]))
    with pytest.raises(ValueError, match="target must have shape"):
        cross_entropy(logits, np.array([0, 1]))
    with pytest.raises(TypeError, match="target must be an integer array"):
        cross_entropy(logits, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="0 rows"):
        cross_entropy(np.zeros((0, 4)), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match=r"logits must have shape \[R, K\]"):
        cross_entropy(np.zeros(4), np.array([0]))
    with pytest.raises(TypeError, match="logits must be float32 or float64"):
        cross_entropy(np.zeros((3, 4), np.int64), np.array([0, 1, 2]))


# -- BCE with logits --------------------------------------------------------------
def test_bce_with_logits_known_answer():
    logits = np.array([0.0, 0.0, np.log(3.0)])
    target = np.array([1.0, 0.0, 1.0])
    losses = binary_cross_entropy_with_logits(logits, target, reduction="none")
    np.testing.assert_allclose(losses, [np.log(2), np.log(2), -np.log(0.75)], rtol=1e-12)
    assert binary_cross_entropy_with_logits(logits, target, "sum") == pytest.approx(losses.sum())
    assert binary_cross_entropy_with_logits(logits, target) == pytest.approx(losses.mean())


def test_bce_with_logits_is_stable():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        losses = binary_cross_entropy_with_logits(np.array([1000.0, -1000.0], np.float32),
                                                  np.array([0.0, 0.0], np.float32), "none")
        _, cache = binary_cross_entropy_with_logits_forward(np.array([1000.0, -1000.0]), np.array([1.0, 1.0]))
        grad = binary_cross_entropy_with_logits_backward(1.0, cache)
    np.testing.assert_allclose(losses, [1000.0, 0.0])
    np.testing.assert_allclose(grad, [0.0, -0.5])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("seed", [0, 1])
def test_bce_with_logits_gradient_soft_targets(reduction, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((3, 4, 4)) * 3
    target = rng.random(logits.shape)                           # soft targets in [0, 1)
    dloss = _dloss(rng, reduction, logits.shape)
    _, cache = binary_cross_entropy_with_logits_forward(logits, target, reduction)
    dlogits = binary_cross_entropy_with_logits_backward(dloss, cache)
    numeric = numerical_gradient(lambda z: binary_cross_entropy_with_logits(z, target, reduction), logits, dloss,
                                 eps=1e-5)
    assert rel_error(dlogits, numeric) < 1e-6


def test_bce_with_logits_bad_inputs():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="target must have logits's shape"):
        binary_cross_entropy_with_logits(x, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="reduction"):
        binary_cross_entropy_with_logits(x, x, reduction="avg")
    with pytest.raises(ValueError, match=r"target values must be in \[0, 1\]"):
        binary_cross_entropy_with_logits(x, x + 2)
    with pytest.raises(ValueError, match="0 elements"):
        binary_cross_entropy_with_logits(np.zeros(0), np.zeros(0))
    assert binary_cross_entropy_with_logits(np.zeros(0), np.zeros(0), "sum") == 0.0
    _, cache = binary_cross_entropy_with_logits_forward(x, x, "none")
    with pytest.raises(ValueError, match="dloss must have the loss's shape"):
        binary_cross_entropy_with_logits_backward(1.0, cache)


# -- smooth L1 --------------------------------------------------------------------
def test_smooth_l1_known_answer():
    d = np.array([0.5, -2.0, 0.0, 1.0])
    losses = smooth_l1_loss(d, np.zeros(4), beta=1.0, reduction="none")
    np.testing.assert_allclose(losses, [0.125, 1.5, 0.0, 0.5])
    np.testing.assert_allclose(smooth_l1_loss(d, np.zeros(4), beta=0.0, reduction="none"), np.abs(d))
    assert smooth_l1_loss(d, np.zeros(4), beta=1 / 9, reduction="sum") == pytest.approx(
        0.5 - 1 / 18 + 2.0 - 1 / 18 + 0 + 1.0 - 1 / 18)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [1.0, 1 / 9, 0.0])
def test_smooth_l1_gradient(reduction, beta):
    rng = np.random.default_rng(3)
    inp = rng.standard_normal((6, 4))
    target = rng.standard_normal((6, 4))
    # Stay away from the kinks |d| = beta (and d = 0 for plain L1).
    d = inp - target
    near = (np.abs(np.abs(d) - beta) < 1e-3) | (np.abs(d) < 1e-3)
    inp[near] += 0.01
    dloss = _dloss(rng, reduction, inp.shape)
    _, cache = smooth_l1_loss_forward(inp, target, beta, reduction)
    dinp = smooth_l1_loss_backward(dloss, cache)
    numeric = numerical_gradient(lambda z: smooth_l1_loss(z, target, beta, reduction), inp, dloss, eps=1e-5)
    assert rel_error(dinp, numeric) < 1e-6


def test_smooth_l1_dtype_and_errors():
    x = np.ones((2, 4), np.float32)
    assert smooth_l1_loss(x, np.zeros((2, 4), np.float32)).dtype == np.float32
    with pytest.raises(ValueError, match="target must have input's shape"):
        smooth_l1_loss(x, np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match="beta must be >= 0"):
        smooth_l1_loss(x, x, beta=-1.0)
    with pytest.raises(TypeError, match="input must be float32 or float64"):
        smooth_l1_loss(x.astype(np.int32), x)
    _, cache = smooth_l1_loss_forward(x, x)
    with pytest.raises(ValueError, match="dloss must be a scalar"):
        smooth_l1_loss_backward(np.ones((2, 4)), cache)
