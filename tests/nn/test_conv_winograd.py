"""conv2d's Winograd F(2x2, 3x3) path: kernels == twins, adjoints, Winograd == im2col == direct loops, gradients.

The run with NUMBA_DISABLE_JIT=1 is in test_conv.py (one subprocess for every conv path).
"""

import numpy as np
import pytest

from minimrcnn.gradcheck import numerical_gradient, rel_error
from minimrcnn.nn.functional import conv_winograd
from minimrcnn.nn.functional.conv import conv2d, conv2d_backward, conv2d_forward, conv2d_reference

# (x shape, C_out): even and odd sizes (a last tile half outside the output), a 1x1 map,
# a 1xW strip, many small maps like the mask head's RoIs, C_in != C_out.
CASES = [
    ((2, 3, 6, 6), 4),
    ((2, 3, 5, 7), 2),
    ((1, 2, 1, 1), 3),
    ((2, 2, 1, 6), 2),
    ((9, 4, 4, 4), 5),
]


def _rand(rng, shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("kernel, stride, padding, dilation, expected", [
    ((3, 3), (1, 1), (1, 1), (1, 1), True),
    ((5, 5), (1, 1), (2, 2), (1, 1), False),
    ((3, 3), (2, 2), (1, 1), (1, 1), False),
    ((3, 3), (1, 1), (0, 0), (1, 1), False),
    ((3, 3), (1, 1), (2, 2), (2, 2), False),
])
def test_applies_only_to_3x3_stride1_pad1(kernel, stride, padding, dilation, expected):
    assert conv_winograd.applies(kernel, stride, padding, dilation) is expected


def test_known_answer_all_ones():
    # a 2x2 image of ones, a 3x3 filter of ones, padding 1: every output window holds the
    # whole image, so every output pixel is 4 (+ bias 0.5)
    out = conv2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3)), np.array([0.5]), 1, 1, algorithm="winograd")
    np.testing.assert_allclose(out, np.full((1, 1, 2, 2), 4.5), rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, C_out", CASES)
def test_winograd_equals_im2col_and_direct_loops(x_shape, C_out, dtype):
    rng = np.random.default_rng(1)
    w_shape = (C_out, x_shape[1], 3, 3)
    x, w, b = _rand(rng, x_shape, dtype), _rand(rng, w_shape, dtype), _rand(rng, C_out, dtype)
    out, cache = conv2d_forward(x, w, b, 1, 1, algorithm="winograd")
    assert cache.winograd is not None and cache.cols is None and cache.shifted is None
    ref, ref_cache = conv2d_forward(x, w, b, 1, 1, algorithm="im2col")
    dout = _rand(rng, out.shape, dtype)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    assert out.dtype == dtype
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(out, conv2d_reference(x, w, b, 1, 1), rtol=tol, atol=tol)
    for g, g_ref in zip(conv2d_backward(dout, cache), conv2d_backward(dout, ref_cache)):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, g_ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape", [(2, 3, 5, 7), (1, 2, 1, 1), (3, 2, 4, 6), (2, 2, 3, 2)])
def test_transform_kernels_equal_twins(x_shape, dtype):
    rng = np.random.default_rng(2)
    N, C, H, W = x_shape
    geo = conv_winograd.TileGeometry(N, H, W)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    x = _rand(rng, x_shape, dtype)
    V = np.full((16, C, geo.T), np.nan, dtype)                 # every entry must be written
    conv_winograd._input_transform_kernel(V, x, geo.th, geo.tw)
    np.testing.assert_allclose(V, conv_winograd.input_transform_reference(x), rtol=tol, atol=tol)
    M, bias = _rand(rng, (16, C, geo.T), dtype), _rand(rng, C, dtype)
    for b in (bias, None):
        out = np.full(x_shape, np.nan, dtype)
        conv_winograd._output_transform_kernel(out, M, b if b is not None else np.zeros(1, dtype), b is not None,
                                               geo.th, geo.tw)
        np.testing.assert_allclose(out, conv_winograd.output_transform_reference(M, geo, b), rtol=tol, atol=tol)
    dM = np.full((16, C, geo.T), np.nan, dtype)
    conv_winograd._output_transform_adjoint_kernel(dM, x, geo.th, geo.tw)
    np.testing.assert_allclose(dM, conv_winograd.output_transform_adjoint_reference(x, geo), rtol=tol, atol=tol)
    dx = np.full(x_shape, np.nan, dtype)
    conv_winograd._input_transform_adjoint_kernel(dx, M, geo.th, geo.tw)
    np.testing.assert_allclose(dx, conv_winograd.input_transform_adjoint_reference(M, geo), rtol=tol, atol=tol)


def test_adjoint_transforms_are_adjoints():
    # <T x, y> == <x, T^T y> for the input, output and filter transforms (float64, twins)
    rng = np.random.default_rng(3)
    geo = conv_winograd.TileGeometry(2, 5, 6)
    x, V = rng.standard_normal((2, 3, 5, 6)), rng.standard_normal((16, 3, geo.T))
    assert np.isclose(np.vdot(conv_winograd.input_transform_reference(x), V),
                      np.vdot(x, conv_winograd.input_transform_adjoint_reference(V, geo)), rtol=1e-12)
    assert np.isclose(np.vdot(conv_winograd.output_transform_reference(V, geo), x),
                      np.vdot(V, conv_winograd.output_transform_adjoint_reference(x, geo)), rtol=1e-12)
    g, U = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal((16, 4, 3))
    assert np.isclose(np.vdot(conv_winograd.filter_transform(g), U),
                      np.vdot(g, conv_winograd.filter_transform_adjoint(U)), rtol=1e-12)


# Maps where every tap meets the image: a weight that only ever reads padding has an
# exact zero gradient, which the finite difference of Winograd's rounded sums is not.
@pytest.mark.parametrize("x_shape, C_out", [CASES[0], CASES[1], ((1, 2, 3, 2), 3), CASES[4]])
def test_winograd_gradients(x_shape, C_out):
    rng = np.random.default_rng(0)
    x, w, b = _rand(rng, x_shape), _rand(rng, (C_out, x_shape[1], 3, 3)), _rand(rng, C_out)
    out, cache = conv2d_forward(x, w, b, 1, 1, algorithm="winograd")
    dout = _rand(rng, out.shape)
    dx, dw, db = conv2d_backward(dout, cache)
    f = lambda x_, w_, b_: conv2d(x_, w_, b_, 1, 1, algorithm="winograd")  # noqa: E731
    # conv2d is linear in each argument, so a central difference has no truncation error
    # and a larger step only shrinks the rounding noise divided by it
    eps = 1e-3
    assert rel_error(dx, numerical_gradient(lambda v: f(v, w, b), x, dout, eps)) < 1e-7
    assert rel_error(dw, numerical_gradient(lambda v: f(x, v, b), w, dout, eps)) < 1e-7
    assert rel_error(db, numerical_gradient(lambda v: f(x, w, v), b, dout, eps)) < 1e-7
    dx_none, dw_only, _ = conv2d_backward(dout, cache, need_input_grad=False)
    assert dx_none is None
    np.testing.assert_array_equal(dw_only, dw)


def test_winograd_refuses_other_convolutions():
    x = np.zeros((1, 2, 5, 5))
    with pytest.raises(ValueError, match="algorithm 'winograd' needs a 3x3 kernel, stride 1, padding 1"):
        conv2d(x, np.zeros((3, 2, 5, 5)), None, 1, 2, algorithm="winograd")
    with pytest.raises(ValueError, match="algorithm 'winograd' needs"):
        conv2d(x, np.zeros((3, 2, 3, 3)), None, 2, 1, algorithm="winograd")
    # 'auto' never picks it (opt-in): the shifted path stays the default for 3x3 pad 1
    assert conv2d_forward(x, np.zeros((3, 2, 3, 3)), None, 1, 1)[1].winograd is None
