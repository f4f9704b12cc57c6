"""conv_transpose2d: known answers, GEMM path == painting loops, adjoint of conv2d, gradients."""

import numpy as np
import pytest

from minimrcnn.runtime import reference_kernels
from minimrcnn.gradcheck import numerical_gradient, rel_error
from minimrcnn.nn.functional.conv import conv2d
from minimrcnn.nn.functional.conv_transpose import (
    conv_transpose2d, conv_transpose2d_backward, conv_transpose2d_forward, conv_transpose2d_reference,
    image_to_tiles, tiles_apart, tiles_to_image,
)

from tests.conftest import kernel_and_twin, randn

# (x shape, weight shape [C_in, C_out, kH, kW], stride, padding)
CASES = [
    ((2, 3, 4, 5), (3, 2, 2, 2), 2, 0),          # the mask head's 2x2 stride-2 upsampling
    ((1, 2, 3, 3), (2, 3, 3, 3), 1, 1),
    ((2, 2, 3, 4), (2, 2, 3, 2), (2, 1), (1, 0)),
    ((1, 3, 4, 4), (3, 2, 4, 4), 2, 1),
    ((2, 3, 3, 4), (3, 2, 3, 2), (3, 2), 0),     # kernel == stride, not square: tiles apart as well
]


def test_conv_transpose2d_known_answer_stride2_paints_tiles():
    # Stride 2 with a 2x2 kernel: each input pixel paints its own 2x2 tile x[i, j] * w.
    x = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    w = np.array([[1.0, 10.0], [100.0, 1000.0]]).reshape(1, 1, 2, 2)
    expected = [[1, 10, 2, 20], [100, 1000, 200, 2000], [3, 30, 4, 40], [300, 3000, 400, 4000]]
    np.testing.assert_array_equal(conv_transpose2d(x, w, stride=2)[0, 0], expected)
    np.testing.assert_array_equal(conv_transpose2d(x, w, np.array([0.5]), stride=2)[0, 0], np.add(expected, 0.5))


def test_conv_transpose2d_known_answer_overlap_and_padding():
    # Stride 1, 2x2 ones: overlapping tiles add; the centre gets all four pixels 1+2+3+4.
    x = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    w = np.ones((1, 1, 2, 2))
    np.testing.assert_array_equal(conv_transpose2d(x, w)[0, 0], [[1, 3, 2], [4, 10, 6], [3, 7, 4]])
    # padding=1 crops one pixel from every side: size (2-1)*1 - 2 + 2 = 1
    np.testing.assert_array_equal(conv_transpose2d(x, w, padding=1)[0, 0], [[10]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CASES)
def test_conv_transpose2d_kernel_equals_twin_and_loops(x_shape, w_shape, stride, padding, dtype):
    rng = np.random.default_rng(0)
    x, w, b = randn(rng, x_shape, dtype), randn(rng, w_shape, dtype), randn(rng, w_shape[1], dtype)
    out, cache = conv_transpose2d_forward(x, w, b, stride, padding)
    dout = randn(rng, out.shape, dtype)
    grads = conv_transpose2d_backward(dout, cache)
    with reference_kernels():
        out_twin, cache_twin = conv_transpose2d_forward(x, w, b, stride, padding)
        grads_twin = conv_transpose2d_backward(dout, cache_twin)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    np.testing.assert_allclose(out, conv_transpose2d_reference(x, w, b, stride, padding), rtol=tol, atol=tol)
    np.testing.assert_allclose(out, out_twin, rtol=tol, atol=tol)
    for g, g_twin in zip(grads, grads_twin):
        np.testing.assert_allclose(g, g_twin, rtol=tol, atol=tol)


def test_tiles_apart_only_when_kernel_equals_stride_without_padding():
    assert tiles_apart((2, 2), (2, 2), (0, 0)) and tiles_apart((3, 2), (3, 2), (0, 0))
    assert not tiles_apart((2, 2), (1, 1), (0, 0)) and not tiles_apart((2, 2), (2, 2), (1, 0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tiles_shape", [(3, 2, 2, 2, 4, 5), (2, 3, 1, 1, 2, 3), (1, 1, 1, 1, 1, 1)])
def test_tiles_kernels_equal_their_twins_and_invert_each_other(tiles_shape, dtype):
    rng = np.random.default_rng(4)
    tiles, bias = randn(rng, tiles_shape, dtype), randn(rng, tiles_shape[0], dtype)
    C, kH, kW, N, H, W = tiles_shape
    for b in (None, bias):
        image, image_twin = kernel_and_twin(tiles_to_image, tiles, b)
        assert image.shape == (N, C, H * kH, W * kW) and image.dtype == dtype
        np.testing.assert_array_equal(image, image_twin)
    # the known answer: tile entry (i, j) of input pixel (y, x) lands at (y*kH + i, x*kW + j)
    n, o, y, x, i, j = N - 1, C - 1, H - 1, W // 2, kH - 1, 0
    assert image[n, o, y * kH + i, x * kW + j] == tiles[o, i, j, n, y, x] + bias[o]
    back, back_twin = kernel_and_twin(image_to_tiles, tiles_to_image(tiles), kH, kW)
    np.testing.assert_array_equal(back, back_twin)
    np.testing.assert_array_equal(back, tiles)
    # with a ReLU: negative values become 0; the gate zeroes where it is <= 0 and nothing else
    relu_image, relu_twin = kernel_and_twin(tiles_to_image, tiles, bias, True)
    np.testing.assert_array_equal(relu_image, relu_twin)
    np.testing.assert_array_equal(relu_image, np.maximum(image, 0))
    gate = randn(rng, image.shape, dtype)
    gated, gated_twin = kernel_and_twin(image_to_tiles, image, kH, kW, gate)
    np.testing.assert_array_equal(gated, gated_twin)
    np.testing.assert_array_equal(gated, image_to_tiles(np.where(gate > 0, image, 0), kH, kW))


def test_conv_transpose2d_is_the_adjoint_of_conv2d():
    # <conv2d(y, w), x> == <y, conv_transpose2d(x, w)> for the same weight array.
    rng = np.random.default_rng(1)
    w = randn(rng, (3, 2, 3, 3))                        # conv2d: 2 -> 3; transpose: 3 -> 2
    x = randn(rng, (2, 3, 4, 4))
    y = conv_transpose2d(x, w, stride=2, padding=1)      # [2, 2, 7, 7]
    y_probe = randn(rng, y.shape)
    np.testing.assert_allclose(np.sum(conv2d(y_probe, w, stride=2, padding=1) * x), np.sum(y_probe * y), rtol=1e-12)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CASES)
def test_conv_transpose2d_gradients(x_shape, w_shape, stride, padding):
    rng = np.random.default_rng(2)
    x, w, b = randn(rng, x_shape), randn(rng, w_shape), randn(rng, w_shape[1])
    out, cache = conv_transpose2d_forward(x, w, b, stride, padding)
    dout = randn(rng, out.shape)
    dx, dw, db = conv_transpose2d_backward(dout, cache)
    assert rel_error(dx, numerical_gradient(lambda v: conv_transpose2d(v, w, b, stride, padding), x, dout)) < 1e-6
    assert rel_error(dw, numerical_gradient(lambda v: conv_transpose2d(x, v, b, stride, padding), w, dout)) < 1e-6
    assert rel_error(db, numerical_gradient(lambda v: conv_transpose2d(x, w, v, stride, padding), b, dout)) < 1e-6


def test_conv_transpose2d_non_contiguous_and_no_bias():
    rng = np.random.default_rng(3)
    x = randn(rng, (2, 5, 4, 3), np.float32).transpose(0, 3, 2, 1)    # [2, 3, 4, 5] view
    w = randn(rng, (3, 2, 2, 2), np.float32)[:, :, ::-1, :]           # negative-stride view
    out, cache = conv_transpose2d_forward(x, w, None, 2)
    out_c, cache_c = conv_transpose2d_forward(np.ascontiguousarray(x), np.ascontiguousarray(w), None, 2)
    np.testing.assert_array_equal(out, out_c)
    dout = randn(rng, out.shape, np.float32)[:, :, ::-1]
    dx, dw, db = conv_transpose2d_backward(dout, cache)
    dx_c, dw_c, _ = conv_transpose2d_backward(np.ascontiguousarray(dout), cache_c)
    np.testing.assert_array_equal(dx, dx_c)
    np.testing.assert_array_equal(dw, dw_c)
    assert db is None


def test_conv_transpose2d_empty_batch():
    out, cache = conv_transpose2d_forward(np.zeros((0, 4, 14, 14), np.float32), np.ones((4, 2, 2, 2), np.float32),
                                          None, 2)
    assert out.shape == (0, 2, 28, 28)
    dx, dw, _ = conv_transpose2d_backward(np.zeros_like(out), cache)
    assert dx.shape == (0, 4, 14, 14) and not dw.any()


@pytest.mark.parametrize("x, w, kwargs, error, match", [
    (np.zeros((4, 5, 5)), np.zeros((4, 2, 2, 2)), {}, ValueError, r"x must be float\[N, C_in, H, W\]"),
    (np.zeros((1, 3, 5, 5)), np.zeros((4, 2, 2, 2)), {}, ValueError, "C_in=4"),
    (np.zeros((1, 4, 5, 5), np.int32), np.zeros((4, 2, 2, 2)), {}, TypeError, "float32 or float64"),
    (np.zeros((1, 4, 1, 1)), np.zeros((4, 2, 2, 2)), {"padding": 1}, ValueError, "padding"),
])
def test_conv_transpose2d_bad_inputs(x, w, kwargs, error, match):
    with pytest.raises(error, match=match):
        conv_transpose2d(x, w, **kwargs)
