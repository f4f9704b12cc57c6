"""relu=True: relu(conv2d(x)) and relu(conv_transpose2d(x)) as one op, and the Conv2dNormActivation block.

The fused ops must give relu_forward's values bit for bit and relu_backward's gradients, on
the paths that fuse it (conv2d's shifted path: the crop and the stacking; conv_transpose2d's
tiles: the rearrangements) and on the others (im2col, col2im).
"""

import numpy as np
import pytest

from minimrcnn.gradcheck import numerical_gradient, rel_error
from minimrcnn.nn import Conv2d, Conv2dNormActivation, ReLU, Sequential
from minimrcnn.nn.functional import (
    conv2d, conv2d_backward, conv2d_forward, conv_transpose2d, conv_transpose2d_backward, conv_transpose2d_forward,
    relu_backward, relu_forward,
)

from tests.conftest import kernel_and_twin, randn

# (x shape, weight shape, stride, padding, algorithm): the mask head's block, a non-square
# kernel, and two the shifted path does not take
CASES = [
    ((6, 4, 5, 5), (3, 4, 3, 3), 1, 1, "shifted"),
    ((2, 3, 6, 7), (4, 3, 5, 3), 1, (2, 1), "shifted"),
    ((2, 3, 6, 7), (4, 3, 3, 3), 2, 1, "im2col"),
    ((2, 3, 6, 7), (4, 3, 1, 1), 1, 0, "im2col"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, algorithm", CASES)
def test_equals_conv_then_relu_bit_for_bit(x_shape, w_shape, stride, padding, algorithm, dtype):
    rng = np.random.default_rng(0)
    x, w, b = randn(rng, x_shape, dtype), randn(rng, w_shape, dtype), randn(rng, w_shape[0], dtype)
    out, cache = conv2d_forward(x, w, b, stride, padding, algorithm=algorithm, relu=True)
    conv_out, conv_cache = conv2d_forward(x, w, b, stride, padding, algorithm=algorithm)
    expected, relu_cache = relu_forward(conv_out)
    assert (cache.shifted is not None) == (algorithm == "shifted")
    np.testing.assert_array_equal(out, expected)
    assert (out == 0).any() and (out > 0).any()          # both sides of the ReLU are exercised
    dout = randn(rng, out.shape, dtype)
    for need_input_grad in (True, False):
        got = conv2d_backward(dout, cache, need_input_grad)
        want = conv2d_backward(relu_backward(dout, relu_cache), conv_cache, need_input_grad)
        for g, g_want in zip(got, want):
            if g_want is None:
                assert g is None
            else:
                np.testing.assert_array_equal(g, g_want)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, algorithm", CASES)
def test_kernels_equal_twins(x_shape, w_shape, stride, padding, algorithm):
    rng = np.random.default_rng(1)
    x, w, b = randn(rng, x_shape, np.float32), randn(rng, w_shape, np.float32), randn(rng, w_shape[0], np.float32)

    def forward_backward():
        out, cache = conv2d_forward(x, w, b, stride, padding, algorithm=algorithm, relu=True)
        return (out, *conv2d_backward(np.ones_like(out), cache))

    for got, twin in zip(*kernel_and_twin(forward_backward)):
        np.testing.assert_allclose(got, twin, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, algorithm", CASES)
def test_gradients_float64(x_shape, w_shape, stride, padding, algorithm):
    rng = np.random.default_rng(2)
    x, w, b = randn(rng, x_shape), randn(rng, w_shape), randn(rng, w_shape[0])
    out, cache = conv2d_forward(x, w, b, stride, padding, algorithm=algorithm, relu=True)
    assert np.abs(conv2d(x, w, b, stride, padding)).min() > 1e-4   # no output sits on the kink
    dout = randn(rng, out.shape)
    dx, dw, db = conv2d_backward(dout, cache)
    f = lambda x_, w_, b_: conv2d(x_, w_, b_, stride, padding, algorithm=algorithm, relu=True)  # noqa: E731
    assert rel_error(dx, numerical_gradient(lambda v: f(v, w, b), x, dout)) < 1e-6
    assert rel_error(dw, numerical_gradient(lambda v: f(x, v, b), w, dout)) < 1e-6
    assert rel_error(db, numerical_gradient(lambda v: f(x, w, v), b, dout)) < 1e-6


# (x shape, weight shape [C_in, C_out, kH, kW], stride, padding): the mask predictor's 2x2
# stride 2 (tiles apart), a non-square one, and one with overlapping tiles (col2im)
TRANSPOSED_CASES = [
    ((5, 4, 3, 4), (4, 3, 2, 2), 2, 0),
    ((2, 3, 2, 3), (3, 2, 3, 2), (3, 2), 0),
    ((2, 3, 3, 3), (3, 2, 3, 3), 2, 1),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", TRANSPOSED_CASES)
def test_transposed_equals_conv_transpose_then_relu_bit_for_bit(x_shape, w_shape, stride, padding, dtype):
    rng = np.random.default_rng(4)
    x, w, b = randn(rng, x_shape, dtype), randn(rng, w_shape, dtype), randn(rng, w_shape[1], dtype)
    for bias in (b, None):
        out, cache = conv_transpose2d_forward(x, w, bias, stride, padding, relu=True)
        plain_out, plain_cache = conv_transpose2d_forward(x, w, bias, stride, padding)
        expected, relu_cache = relu_forward(plain_out)
        np.testing.assert_array_equal(out, expected)
        assert (out == 0).any() and (out > 0).any()
        dout = randn(rng, out.shape, dtype)
        got = conv_transpose2d_backward(dout, cache)
        want = conv_transpose2d_backward(relu_backward(dout, relu_cache), plain_cache)
        for g, g_want in zip(got, want):
            if g_want is None:
                assert g is None
            else:
                np.testing.assert_array_equal(g, g_want)
        for got_k, twin in zip(*kernel_and_twin(lambda: (conv_transpose2d(x, w, bias, stride, padding, relu=True),
                                                         *conv_transpose2d_backward(dout, cache)))):
            if twin is not None:
                np.testing.assert_allclose(got_k, twin, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", TRANSPOSED_CASES)
def test_transposed_gradients_float64(x_shape, w_shape, stride, padding):
    rng = np.random.default_rng(5)
    x, w, b = randn(rng, x_shape), randn(rng, w_shape), randn(rng, w_shape[1])
    out, cache = conv_transpose2d_forward(x, w, b, stride, padding, relu=True)
    assert np.abs(conv_transpose2d(x, w, b, stride, padding)).min() > 1e-4   # no output sits on the kink
    dout = randn(rng, out.shape)
    dx, dw, db = conv_transpose2d_backward(dout, cache)
    f = lambda x_, w_, b_: conv_transpose2d(x_, w_, b_, stride, padding, relu=True)  # noqa: E731
    assert rel_error(dx, numerical_gradient(lambda v: f(v, w, b), x, dout)) < 1e-6
    assert rel_error(dw, numerical_gradient(lambda v: f(x, v, b), w, dout)) < 1e-6
    assert rel_error(db, numerical_gradient(lambda v: f(x, w, v), b, dout)) < 1e-6


def test_nan_becomes_zero_as_in_relu_forward():
    x = np.zeros((1, 1, 3, 3), np.float32)
    w = np.ones((1, 1, 3, 3), np.float32)
    b = np.array([np.nan], np.float32)
    for algorithm in ("shifted", "im2col"):
        out, twin = kernel_and_twin(conv2d, x, w, b, 1, 1, algorithm=algorithm, relu=True)
        np.testing.assert_array_equal(out, relu_forward(conv2d(x, w, b, 1, 1))[0])
        np.testing.assert_array_equal(twin, out)
        assert (out == 0).all()
    b_nan = np.array([np.nan, 1.0], np.float32)
    out, twin = kernel_and_twin(conv_transpose2d, np.ones((1, 1, 2, 2), np.float32), np.ones((1, 2, 2, 2), np.float32),
                                b_nan, 2, relu=True)
    np.testing.assert_array_equal(twin, out)
    assert (out[0, 0] == 0).all() and (out[0, 1] == 2).all()


def test_block_equals_conv_then_relu_and_keeps_torchvisions_keys():
    rng = np.random.default_rng(3)
    block = Conv2dNormActivation(4, 3, 3, rng=np.random.default_rng(7))
    assert list(block.state_dict()) == ["0.weight", "0.bias"] and block[0].padding == (1, 1)
    assert isinstance(block[1], ReLU)
    plain = Sequential(Conv2d(4, 3, 3, padding=1, rng=np.random.default_rng(7)), ReLU())
    np.testing.assert_array_equal(plain[0].weight.data, block[0].weight.data)   # the same init draws
    x = randn(rng, (5, 4, 6, 6), np.float32)
    out, cache = block.forward(x)
    out_plain, cache_plain = plain.forward(x)
    np.testing.assert_array_equal(out, out_plain)
    dout = randn(rng, out.shape, np.float32)
    block.zero_grad()
    plain.zero_grad()
    np.testing.assert_array_equal(block.backward(dout, cache), plain.backward(dout, cache_plain))
    for name, p in block.named_parameters():
        np.testing.assert_array_equal(p.grad, dict(plain.named_parameters())[name].grad)


def test_block_keeps_no_cache_in_eval_mode():
    block = Conv2dNormActivation(2, 2, 3).eval()
    out, cache = block.forward(np.ones((1, 2, 4, 4), np.float32))
    assert cache is None and out.shape == (1, 2, 4, 4)
    with pytest.raises(ValueError, match="Conv2dNormActivation.backward: cache is None because forward ran in eval"):
        block.backward(np.ones_like(out), cache)
