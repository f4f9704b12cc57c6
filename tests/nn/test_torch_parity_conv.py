"""Parity with torch.nn.functional for conv2d, conv_transpose2d, linear, max_pool2d, interpolate.

Optional: skipped when torch is not installed. Forward and backward must agree within
1e-5 (float64) / 1e-4 (float32).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
TF = torch.nn.functional

from minimrcnn.nn.functional.conv import conv2d_backward, conv2d_forward  # noqa: E402
from minimrcnn.nn.functional.conv_transpose import conv_transpose2d_backward, conv_transpose2d_forward  # noqa: E402
from minimrcnn.nn.functional.interpolate import interpolate_backward, interpolate_forward  # noqa: E402
from minimrcnn.nn.functional.linear import linear_backward, linear_forward  # noqa: E402
from minimrcnn.nn.functional.pooling import max_pool2d_backward, max_pool2d_forward  # noqa: E402

DTYPES = [np.float32, np.float64]
TOL = {np.float32: 1e-4, np.float64: 1e-5}


def _torch_grads(fn, arrays, dout):
    """Run fn on torch copies of arrays; return (out, grads) as NumPy."""
    tensors = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), [None if t is None else t.grad.numpy() for t in tensors]


def _assert_close(ours, theirs, dtype):
    tol = TOL[dtype]
    for a, b in zip(ours, theirs):
        if a is None or b is None:
            assert a is None and b is None
            continue
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, bias", [
    ((2, 8, 16, 16), (6, 8, 3, 3), 1, 1, 1, True),
    ((2, 3, 32, 30), (8, 3, 7, 7), 2, 3, 1, False),
    ((1, 4, 11, 9), (5, 4, 3, 2), (2, 1), (0, 2), (2, 1), True),
    ((2, 8, 7, 7), (4, 8, 1, 1), 2, 0, 1, False),
    ((2, 8, 7, 7), (4, 8, 1, 1), 1, 0, 1, True),
])
def test_conv2d_matches_torch(x_shape, w_shape, stride, padding, dilation, bias, dtype):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    out, cache = conv2d_forward(x, w, b, stride, padding, dilation)
    dout = rng.standard_normal(out.shape).astype(dtype)
    t_out, t_grads = _torch_grads(lambda x_, w_, b_: TF.conv2d(x_, w_, b_, stride, padding, dilation), [x, w, b], dout)
    _assert_close([out, *conv2d_backward(dout, cache)], [t_out, *t_grads], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", [
    ((2, 8, 14, 14), (8, 4, 2, 2), 2, 0),
    ((1, 3, 5, 6), (3, 2, 3, 3), 2, 1),
    ((2, 2, 4, 4), (2, 3, 4, 3), (1, 2), (1, 0)),
])
def test_conv_transpose2d_matches_torch(x_shape, w_shape, stride, padding, dtype):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[1]).astype(dtype)
    out, cache = conv_transpose2d_forward(x, w, b, stride, padding)
    dout = rng.standard_normal(out.shape).astype(dtype)
    t_out, t_grads = _torch_grads(lambda x_, w_, b_: TF.conv_transpose2d(x_, w_, b_, stride, padding), [x, w, b], dout)
    _assert_close([out, *conv_transpose2d_backward(dout, cache)], [t_out, *t_grads], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_matches_torch(dtype):
    rng = np.random.default_rng(2)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in ((9, 20), (7, 20), (7,)))
    out, cache = linear_forward(x, w, b)
    dout = rng.standard_normal(out.shape).astype(dtype)
    t_out, t_grads = _torch_grads(TF.linear, [x, w, b], dout)
    _assert_close([out, *linear_backward(dout, cache)], [t_out, *t_grads], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, kernel_size, stride, padding", [
    ((2, 4, 17, 16), 3, 2, 1), ((1, 3, 8, 9), 2, None, 0), ((1, 2, 9, 7), (3, 2), (1, 2), (1, 1)),
    ((1, 2, 7, 7), 1, 2, 0),
])
def test_max_pool2d_matches_torch(x_shape, kernel_size, stride, padding, dtype):
    rng = np.random.default_rng(3)
    # rounded values create ties, so the first-max rule is compared too
    x = np.round(rng.standard_normal(x_shape) * 2).astype(dtype)
    out, cache = max_pool2d_forward(x, kernel_size, stride, padding)
    dout = rng.standard_normal(out.shape).astype(dtype)
    t_out, t_indices = TF.max_pool2d(torch.tensor(x), kernel_size, stride, padding, return_indices=True)
    np.testing.assert_array_equal(cache.indices, t_indices.numpy())
    t_out, t_grads = _torch_grads(lambda x_: TF.max_pool2d(x_, kernel_size, stride, padding), [x], dout)
    _assert_close([out, max_pool2d_backward(dout, cache)], [t_out, *t_grads], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("x_shape, size", [
    ((1, 2, 25, 34), (50, 68)), ((1, 2, 13, 17), (25, 34)), ((1, 3, 7, 9), (20, 15)),
    ((1, 1, 48, 64), (800, 1066)), ((1, 3, 30, 40), (17, 23)),
])
def test_interpolate_matches_torch(x_shape, size, mode, dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(x_shape).astype(dtype)
    out, cache = interpolate_forward(x, size, mode)
    dout = rng.standard_normal(out.shape).astype(dtype)
    kwargs = {"align_corners": False} if mode == "bilinear" else {}
    t_out, t_grads = _torch_grads(lambda x_: TF.interpolate(x_, size=size, mode=mode, **kwargs), [x], dout)
    if mode == "nearest":
        np.testing.assert_array_equal(out, t_out)      # a gather: bit-exact indices
    _assert_close([out, interpolate_backward(dout, cache)], [t_out, *t_grads], dtype)
