"""conv2d's shifted-GEMM path: kernels == twins, shifted == im2col == direct loops, gradients.

The run with NUMBA_DISABLE_JIT=1 is in test_conv.py (one subprocess for every conv path).
"""

import numpy as np
import pytest

from minimrcnn.runtime import reference_kernels
from minimrcnn.gradcheck import numerical_gradient, rel_error
from minimrcnn.nn.functional import conv_shifted
from minimrcnn.nn.functional.conv import conv2d, conv2d_backward, conv2d_forward, conv2d_reference

from tests.conftest import kernel_and_twin, randn

# (x shape, weight shape, padding): 3x3 as in the model, non-square kernels, a 1xk kernel
# (no vertical padding), a batch of many small maps like the mask head's RoIs, and
# C_in != C_out.
CASES = [
    ((2, 3, 7, 6), (4, 3, 3, 3), 1),
    ((2, 3, 6, 9), (4, 3, 5, 3), (2, 1)),
    ((2, 3, 5, 9), (2, 3, 1, 3), (0, 1)),
    ((3, 2, 4, 5), (3, 2, 3, 1), (1, 0)),
    ((9, 4, 4, 4), (5, 4, 3, 3), 1),
    ((1, 2, 1, 1), (3, 2, 3, 3), 1),       # a 1x1 map: every tap but the centre reads padding
]


@pytest.mark.parametrize("kernel, stride, padding, dilation, expected", [
    ((3, 3), (1, 1), (1, 1), (1, 1), True),
    ((5, 3), (1, 1), (2, 1), (1, 1), True),
    ((1, 1), (1, 1), (0, 0), (1, 1), False),   # the pointwise shortcut is cheaper still
    ((3, 3), (2, 2), (1, 1), (1, 1), False),
    ((3, 3), (1, 1), (0, 0), (1, 1), False),   # 'valid', not 'same'
    ((3, 3), (1, 1), (2, 2), (2, 2), False),
    ((2, 2), (1, 1), (1, 1), (1, 1), False),   # even kernel
])
def test_applies_only_to_same_stride1_odd_kernels(kernel, stride, padding, dilation, expected):
    assert conv_shifted.applies(kernel, stride, padding, dilation) is expected


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, padding", CASES)
def test_shifted_equals_im2col_and_direct_loops(x_shape, w_shape, padding, dtype):
    rng = np.random.default_rng(1)
    x, w, b = randn(rng, x_shape, dtype), randn(rng, w_shape, dtype), randn(rng, w_shape[0], dtype)
    out, cache = conv2d_forward(x, w, b, 1, padding, algorithm="shifted")
    assert cache.shifted is not None and cache.cols is None
    ref, ref_cache = conv2d_forward(x, w, b, 1, padding, algorithm="im2col")
    dout = randn(rng, out.shape, dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert out.dtype == dtype
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(out, conv2d_reference(x, w, b, 1, padding), rtol=tol, atol=tol)
    for g, g_ref in zip(conv2d_backward(dout, cache), conv2d_backward(dout, ref_cache)):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, g_ref, rtol=tol, atol=tol)


def test_auto_picks_shifted_for_3x3_pad1_and_im2col_elsewhere():
    x, w = np.zeros((1, 2, 5, 5)), np.zeros((3, 2, 3, 3))
    assert conv2d_forward(x, w, None, 1, 1)[1].shifted is not None
    assert conv2d_forward(x, w, None, 2, 1)[1].shifted is None
    with pytest.raises(ValueError, match="algorithm 'shifted' needs stride 1"):
        conv2d(x, w, None, 2, 1, algorithm="shifted")
    with pytest.raises(ValueError, match="algorithm must be one of"):
        conv2d(x, w, None, 1, 1, algorithm="fft")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, kW, padding", [((2, 3, 5, 4), 3, (1, 1)), ((3, 2, 4, 6), 3, (0, 1)),
                                                   ((2, 2, 3, 3), 5, (2, 2))])
def test_stack_and_crop_kernels_equal_twins(x_shape, kW, padding, dtype):
    rng = np.random.default_rng(2)
    x = randn(rng, x_shape, dtype)
    geo = conv_shifted.GridGeometry(x_shape[0], x_shape[2], x_shape[3], *padding)
    gate = randn(rng, x_shape, dtype)            # a ReLU's output would be >= 0; only > 0 matters
    for g in (None, gate):
        stacked, twin = kernel_and_twin(conv_shifted.stack_shifted, x, kW, *padding, gate=g)
        np.testing.assert_array_equal(stacked, twin)
    # the gate zeroes x where gate <= 0 and nothing else
    np.testing.assert_array_equal(stacked, conv_shifted.stack_shifted(np.where(gate > 0, x, 0), kW, *padding))
    rows_product = randn(rng, (2 * padding[0] + 1, 4, geo.U), dtype)        # [kH, C, U]
    bias = randn(rng, 4, dtype)
    for b in (bias, None):
        for relu in (False, True):
            out, twin = kernel_and_twin(conv_shifted.crop_grid, rows_product, geo, b, relu)
            np.testing.assert_array_equal(out, twin)
    assert (out >= 0).all() and (out == 0).any() and (out > 0).any()


def test_the_kernels_write_every_entry_of_their_buffers(monkeypatch):
    # the dispatchers take their buffers from np.empty: hand them NaN-filled ones instead,
    # so that an entry the kernel forgets to write shows up
    x = randn(np.random.default_rng(3), (3, 2, 4, 5), np.float32)
    monkeypatch.setattr(np, "empty", lambda shape, dtype=float: np.full(shape, np.nan, dtype))
    for gate in (None, x):
        assert np.isfinite(conv_shifted.stack_shifted(x, 3, 1, 1, gate)).all()
    rows = conv_shifted.rows_gemm(conv_shifted.stack_shifted(x, 3, 1, 1), np.ones((4, 2, 3, 3), np.float32))
    for relu in (False, True):
        assert np.isfinite(conv_shifted.crop_grid(rows, conv_shifted.GridGeometry(3, 4, 5, 1, 1), None, relu)).all()


def test_stacked_buffer_layout_on_a_known_image():
    # One 2x2 image, 3x3 kernel, padding 1: the grid is 3x3 (one shared zero column and
    # row), margin 1*3 + 1 = 4, U = 9 + 2*3 = 15; copy j is the flat buffer shifted by j.
    x = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    flat = [0, 0, 0, 0, 1, 2, 0, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0]          # margin + grid + margin
    stacked = conv_shifted.stack_shifted(x, 3, 1, 1)
    assert stacked.shape == (3, 1, 15)
    for j in range(3):
        np.testing.assert_array_equal(stacked[j, 0], flat[j:j + 15])


@pytest.mark.parametrize("x_shape, w_shape, padding", CASES[:4])
def test_shifted_gradients(x_shape, w_shape, padding):
    rng = np.random.default_rng(0)
    x, w, b = randn(rng, x_shape), randn(rng, w_shape), randn(rng, w_shape[0])
    out, cache = conv2d_forward(x, w, b, 1, padding, algorithm="shifted")
    dout = randn(rng, out.shape)
    dx, dw, db = conv2d_backward(dout, cache)
    f = lambda x_, w_, b_: conv2d(x_, w_, b_, 1, padding, algorithm="shifted")  # noqa: E731
    assert rel_error(dx, numerical_gradient(lambda v: f(v, w, b), x, dout)) < 1e-6
    assert rel_error(dw, numerical_gradient(lambda v: f(x, v, b), w, dout)) < 1e-6
    assert rel_error(db, numerical_gradient(lambda v: f(x, w, v), b, dout)) < 1e-6
    dx_none, dw_only, _ = conv2d_backward(dout, cache, need_input_grad=False)
    assert dx_none is None
    np.testing.assert_array_equal(dw_only, dw)
