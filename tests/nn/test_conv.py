"""conv2d: known answers, kernel == twin == direct loops, gradients, errors, JIT-off run."""

import numba
import numpy as np
import pytest

from minimrcnn.runtime import reference_kernels
from minimrcnn.gradcheck import numerical_gradient, rel_error
from minimrcnn.nn.functional.conv import (
    _col2im_kernel, _im2col_kernel, col2im_reference, conv2d, conv2d_backward, conv2d_forward,
    conv2d_reference, im2col_reference,
)

from tests.conftest import randn, run_without_jit

# (x shape, weight shape, stride, padding, dilation): square and non-square kernels,
# strides 1 and 2, paddings 0/1/3, dilations 1 and 2, and the 1x1 shortcut.
CASES = [
    ((2, 3, 7, 6), (4, 3, 3, 3), 1, 1, 1),
    ((2, 3, 9, 8), (4, 3, 3, 2), 2, 0, 1),
    ((1, 2, 9, 10), (3, 2, 2, 3), (1, 2), (3, 1), 2),
    ((2, 3, 11, 11), (2, 3, 7, 7), 2, 3, 1),
    ((2, 4, 5, 6), (3, 4, 1, 1), 1, 0, 1),
    ((2, 4, 5, 6), (3, 4, 1, 1), 2, 0, 1),
    ((1, 2, 4, 5), (2, 2, 2, 3), 3, (3, 4), 1),     # whole output rows/columns in the padding
]


def test_conv2d_known_answer_2x2_kernel():
    # x = [[0,1,2],[3,4,5],[6,7,8]], w = [[1,2],[3,4]]: out[0,0] = 0*1 + 1*2 + 3*3 + 4*4 = 27.
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    w = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    np.testing.assert_array_equal(conv2d(x, w)[0, 0], [[27, 37], [57, 67]])
    np.testing.assert_array_equal(conv2d(x, w, np.array([1.0]))[0, 0], [[28, 38], [58, 68]])
    # Padding 1, stride 2: the top-left window sees only x[0,0]*w[1,1]; the others
    # 1*3 + 2*4 = 11, 3*2 + 6*4 = 30 and the full 4 + 10 + 21 + 32 = 67.
    np.testing.assert_array_equal(conv2d(x, w, stride=2, padding=1)[0, 0], [[0, 11], [30, 67]])


def test_conv2d_known_answer_dilation():
    # A dilated 2x2 kernel of ones on the 3x3 input sums its four corners: 0+2+6+8 = 16.
    x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    out = conv2d(x, np.ones((1, 1, 2, 2), np.float32), dilation=2)
    assert out.shape == (1, 1, 1, 1) and out.dtype == np.float32 and out[0, 0, 0, 0] == 16


def test_conv2d_backward_known_answer():
    # With dout = 1 everywhere, dw[i, j] is the sum of the pixels tap (i, j) sees.
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    w = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    out, cache = conv2d_forward(x, w, np.zeros(1))
    dx, dw, db = conv2d_backward(np.ones_like(out), cache)
    np.testing.assert_array_equal(dw[0, 0], [[0 + 1 + 3 + 4, 1 + 2 + 4 + 5], [3 + 4 + 6 + 7, 4 + 5 + 7 + 8]])
    np.testing.assert_array_equal(db, [4.0])
    # the centre pixel is seen by all four taps: 1 + 2 + 3 + 4
    np.testing.assert_array_equal(dx[0, 0], [[1, 3, 2], [4, 10, 6], [3, 7, 4]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation", CASES)
def test_conv2d_kernel_equals_twin_and_direct_loops(x_shape, w_shape, stride, padding, dilation, dtype):
    rng = np.random.default_rng(1)
    x, w, b = randn(rng, x_shape, dtype), randn(rng, w_shape, dtype), randn(rng, w_shape[0], dtype)
    out, cache = conv2d_forward(x, w, b, stride, padding, dilation)
    dout = randn(rng, out.shape, dtype)
    grads = conv2d_backward(dout, cache)
    with reference_kernels():
        out_twin, cache_twin = conv2d_forward(x, w, b, stride, padding, dilation)
        grads_twin = conv2d_backward(dout, cache_twin)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    np.testing.assert_allclose(out, conv2d_reference(x, w, b, stride, padding, dilation), rtol=tol, atol=tol)
    np.testing.assert_allclose(out, out_twin, rtol=tol, atol=tol)
    for g, g_twin in zip(grads, grads_twin):
        np.testing.assert_allclose(g, g_twin, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_col2im_kernels_equal_twins(dtype):
    rng = np.random.default_rng(2)
    x = randn(rng, (2, 3, 8, 7), dtype)
    args = ((3, 2), (2, 1), (1, 2), (1, 2), (4, 9))       # kernel, stride, padding, dilation, out size
    cols = np.full((18, 2, 36), np.nan, dtype)             # [K, N, P]; every entry must be written
    _im2col_kernel(cols, x, 3, 2, 2, 1, 1, 2, 1, 2, 4, 9)
    np.testing.assert_array_equal(cols.transpose(1, 0, 2), im2col_reference(x, *args))
    dx = _col2im_kernel(np.zeros_like(x), cols, 3, 2, 2, 1, 1, 2, 1, 2, 4, 9)
    np.testing.assert_allclose(dx, col2im_reference(cols.transpose(1, 0, 2), x.shape, *args), rtol=1e-6)


def test_col2im_parallel_equals_serial():
    # col2im scatters with +=; the parallel kernel must give the serial sums exactly,
    # because each (image, channel) plane is owned by one iteration.
    rng = np.random.default_rng(6)
    cols = rng.standard_normal((5 * 9, 3, 6 * 6)).astype(np.float32)     # [K, N, P]
    args = (3, 3, 1, 1, 1, 1, 1, 1, 6, 6)
    python_source = getattr(_col2im_kernel, "py_func", _col2im_kernel)     # plain function when JIT is off
    serial = numba.njit(python_source)(np.zeros((3, 5, 6, 6), np.float32), cols, *args)
    np.testing.assert_array_equal(_col2im_kernel(np.zeros((3, 5, 6, 6), np.float32), cols, *args), serial)


def test_conv2d_non_contiguous_inputs():
    rng = np.random.default_rng(3)
    x = randn(rng, (2, 6, 5, 3), np.float32).transpose(0, 3, 2, 1)     # [2, 3, 5, 6] view
    w = randn(rng, (3, 3, 4, 2), np.float32).transpose(2, 1, 0, 3)     # [4, 3, 3, 2] view
    out, cache = conv2d_forward(x, w, None, 1, 1)
    dout = randn(rng, (out.shape[0], out.shape[3], out.shape[2], out.shape[1]), np.float32).transpose(0, 3, 2, 1)
    dx, dw, db = conv2d_backward(dout, cache)
    xc, wc, doutc = (np.ascontiguousarray(a) for a in (x, w, dout))
    out_c, cache_c = conv2d_forward(xc, wc, None, 1, 1)
    np.testing.assert_array_equal(out, out_c)
    for g, g_c in zip((dx, dw), conv2d_backward(doutc, cache_c)[:2]):
        np.testing.assert_array_equal(g, g_c)
    assert db is None


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation", CASES[:5])
def test_conv2d_gradients(x_shape, w_shape, stride, padding, dilation, seed):
    rng = np.random.default_rng(seed)
    x, w, b = randn(rng, x_shape), randn(rng, w_shape), randn(rng, w_shape[0])
    out, cache = conv2d_forward(x, w, b, stride, padding, dilation)
    dout = randn(rng, out.shape)
    dx, dw, db = conv2d_backward(dout, cache)
    assert rel_error(dx, numerical_gradient(lambda v: conv2d(v, w, b, stride, padding, dilation), x, dout)) < 1e-6
    assert rel_error(dw, numerical_gradient(lambda v: conv2d(x, v, b, stride, padding, dilation), w, dout)) < 1e-6
    assert rel_error(db, numerical_gradient(lambda v: conv2d(x, w, v, stride, padding, dilation), b, dout)) < 1e-6


def test_conv2d_backward_without_input_grad():
    rng = np.random.default_rng(4)
    x, w = randn(rng, (1, 2, 5, 5)), randn(rng, (3, 2, 3, 3))
    out, cache = conv2d_forward(x, w, None, 1, 1)
    dout = randn(rng, out.shape)
    dx, dw, db = conv2d_backward(dout, cache, need_input_grad=False)
    assert dx is None and db is None
    np.testing.assert_array_equal(dw, conv2d_backward(dout, cache)[1])


def test_conv2d_does_not_mutate_arguments():
    rng = np.random.default_rng(5)
    x, w, b = randn(rng, (1, 2, 4, 4)), randn(rng, (2, 2, 1, 1)), randn(rng, 2)
    copies = [a.copy() for a in (x, w, b)]
    out, cache = conv2d_forward(x, w, b)
    dout = randn(rng, out.shape)
    dout_copy = dout.copy()
    conv2d_backward(dout, cache)
    for a, a_copy in zip((x, w, b, dout), copies + [dout_copy]):
        np.testing.assert_array_equal(a, a_copy)


def test_conv2d_empty_batch():
    # torch accepts N = 0 and returns an empty batch of the right shape.
    out, cache = conv2d_forward(np.zeros((0, 3, 8, 8), np.float32), np.ones((5, 3, 3, 3), np.float32),
                                np.ones(5, np.float32), 2, 1)
    assert out.shape == (0, 5, 4, 4)
    dx, dw, db = conv2d_backward(np.zeros((0, 5, 4, 4), np.float32), cache)
    assert dx.shape == (0, 3, 8, 8) and not dw.any() and not db.any()


@pytest.mark.parametrize("x, w, b, kwargs, error, match", [
    (np.zeros((3, 8, 8)), np.zeros((2, 3, 3, 3)), None, {}, ValueError, r"x must be float\[N, C_in, H, W\]"),
    (np.zeros((1, 4, 8, 8)), np.zeros((2, 3, 3, 3)), None, {}, ValueError, "C_in=3"),
    (np.zeros((1, 3, 8, 8), np.int64), np.zeros((2, 3, 3, 3)), None, {}, TypeError, "x must be float32 or float64"),
    (np.zeros((1, 3, 8, 8)), np.zeros((2, 3, 3, 3), np.float32), None, {}, TypeError, "weight must have"),
    (np.zeros((1, 3, 8, 8)), np.zeros((2, 3, 3, 3)), np.zeros(3), {}, ValueError, r"bias must have shape \(2,\)"),
    (np.zeros((1, 3, 2, 2)), np.zeros((2, 3, 3, 3)), None, {}, ValueError, "smaller than the dilated kernel"),
    (np.zeros((1, 3, 8, 8)), np.zeros((2, 3, 3, 3)), None, {"stride": 0}, ValueError, "stride"),
    (np.zeros((1, 3, 8, 8)), np.zeros((2, 3, 3, 3)), None, {"padding": -1}, ValueError, "padding"),
])
def test_conv2d_bad_inputs(x, w, b, kwargs, error, match):
    with pytest.raises(error, match=match):
        conv2d(x, w, b, **kwargs)


def test_conv2d_backward_rejects_wrong_dout():
    out, cache = conv2d_forward(np.zeros((1, 3, 8, 8)), np.zeros((2, 3, 3, 3)))
    with pytest.raises(ValueError, match="dout must have shape"):
        conv2d_backward(np.zeros((1, 2, 5, 5)), cache)


def test_conv2d_and_max_pool2d_with_jit_disabled():
    # With NUMBA_DISABLE_JIT=1 the kernels (im2col, shifted conv and its fused ReLU, the transposed
    # conv's tiles, max-pool) run as plain Python and must match the twins; one subprocess for all.
    stdout = run_without_jit("""
        import numpy as np
        from minimrcnn.runtime import reference_kernels
        from minimrcnn.nn.functional.conv import conv2d_backward, conv2d_forward
        from minimrcnn.nn.functional.pooling import max_pool2d_backward, max_pool2d_forward
        rng = np.random.default_rng(0)
        x, w = rng.standard_normal((1, 2, 5, 4)), rng.standard_normal((3, 2, 3, 2))
        results = []
        for use_twin in (False, True):
            with reference_kernels(use_twin):
                out, cache = conv2d_forward(x, w, None, 2, 1, 1)
                pooled, pool_cache = max_pool2d_forward(x, 3, 2, 1)
                results.append([out, *conv2d_backward(np.ones_like(out), cache)[:2], pooled,
                                max_pool2d_backward(np.ones_like(pooled), pool_cache)])
        for a, b in zip(*results):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        # the shifted-GEMM 3x3 path, with and without its fused ReLU: kernels, twins and im2col agree
        x, w = rng.standard_normal((2, 2, 5, 4)), rng.standard_normal((3, 2, 3, 3))
        dout = rng.standard_normal((2, 3, 5, 4))
        for relu in (False, True):
            shifted = []
            for use_twin, algorithm in ((False, "shifted"), (True, "shifted"), (False, "im2col")):
                with reference_kernels(use_twin):
                    out, cache = conv2d_forward(x, w, None, 1, 1, algorithm=algorithm, relu=relu)
                    shifted.append([out, *conv2d_backward(dout, cache)[:2]])
            for other in shifted[1:]:
                for a, b in zip(shifted[0], other):
                    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        # conv_transpose2d's tile kernels (kernel == stride), with and without the ReLU
        from minimrcnn.nn.functional.conv_transpose import conv_transpose2d_backward, conv_transpose2d_forward
        x, w, b = rng.standard_normal((2, 3, 3, 4)), rng.standard_normal((3, 2, 2, 2)), rng.standard_normal(2)
        dout = rng.standard_normal((2, 2, 6, 8))
        for relu in (False, True):
            tiles = []
            for use_twin in (False, True):
                with reference_kernels(use_twin):
                    out, cache = conv_transpose2d_forward(x, w, b, 2, relu=relu)
                    tiles.append([out, *conv_transpose2d_backward(dout, cache)])
            for a, b_ in zip(*tiles):
                np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12)
        print("ok")
    """)
    assert stdout.strip() == "ok"


def test_conv_layers_keep_no_cache_in_eval_mode():
    # Inference drops what only the backward needs; a backward after an eval-mode forward
    # says why it cannot run instead of failing inside the op.
    from minimrcnn.nn import Conv2d, ConvTranspose2d
    x = np.random.default_rng(7).standard_normal((2, 3, 6, 6)).astype(np.float32)
    for layer in (Conv2d(3, 4, 3, padding=1), ConvTranspose2d(3, 4, 2, stride=2)):
        out_train, cache = layer.forward(x)
        assert cache is not None
        layer.eval()
        out_eval, no_cache = layer.forward(x)
        assert no_cache is None
        np.testing.assert_array_equal(out_eval, out_train)
        with pytest.raises(ValueError, match="forward ran in eval mode"):
            layer.backward(np.ones_like(out_eval), no_cache)
