"""max_pool2d: known answers (first max, -inf padding), kernel == twin, gradients, errors."""

import numpy as np
import pytest

from minimrcnn.runtime import reference_kernels
from minimrcnn.gradcheck import numerical_gradient, rel_error
from minimrcnn.nn.functional.pooling import max_pool2d, max_pool2d_backward, max_pool2d_forward

# (x shape, kernel_size, stride, padding)
CASES = [
    ((2, 3, 8, 8), 2, None, 0),
    ((2, 3, 9, 7), 3, 2, 1),          # ResNet's stem pool
    ((1, 2, 7, 9), (3, 2), (1, 2), (1, 0)),
    ((2, 2, 5, 5), 1, 2, 0),          # FPN's 'pool' level: x[:, :, ::2, ::2]
]


def test_max_pool2d_known_answer():
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    out, cache = max_pool2d_forward(x, 2)
    np.testing.assert_array_equal(out[0, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(cache.indices[0, 0], [[5, 7], [13, 15]])
    # 3x3 stride 2 pad 1: output (4 + 2 - 3) // 2 + 1 = 2; the windows' bottom-right pixels win
    np.testing.assert_array_equal(max_pool2d(x, 3, 2, 1)[0, 0], [[5, 7], [13, 15]])


def test_max_pool2d_padding_never_wins():
    # All values negative: implicit -inf padding (zero padding would give zeros).
    # Windows: rows -1..1 x cols -1..1, rows -1..1 x cols 1..3, ...; the top-left real pixel wins.
    x = -np.arange(1, 17, dtype=np.float32).reshape(1, 1, 4, 4)
    out, cache = max_pool2d_forward(x, 3, 2, 1)
    np.testing.assert_array_equal(out[0, 0], [[-1, -2], [-5, -6]])
    np.testing.assert_array_equal(cache.indices[0, 0], [[0, 1], [4, 5]])
    # An all -inf window keeps its first real pixel as the argmax, as torch.
    out, cache = max_pool2d_forward(np.full((1, 1, 2, 2), -np.inf), 3, 1, 1)
    assert np.all(out == -np.inf)
    np.testing.assert_array_equal(cache.indices[0, 0], [[0, 0], [0, 0]])


@pytest.mark.parametrize("use_twin", [False, True])
def test_max_pool2d_ties_pick_first_and_gradients_accumulate(use_twin):
    with reference_kernels(use_twin):
        out, cache = max_pool2d_forward(np.ones((1, 1, 2, 3)), 2, 1)
        np.testing.assert_array_equal(cache.indices[0, 0], [[0, 1]])   # first max in row-major scan
        # a centre maximum wins all four overlapping 2x2 windows and gets all four gradients
        x = np.zeros((1, 1, 3, 3))
        x[0, 0, 1, 1] = 1
        out, cache = max_pool2d_forward(x, 2, 1)
        dx = max_pool2d_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)
    expected = np.zeros((3, 3))
    expected[1, 1] = 10
    np.testing.assert_array_equal(dx[0, 0], expected)


def test_max_pool2d_kernel_1_stride_2_is_subsampling():
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 6)).astype(np.float32)
    np.testing.assert_array_equal(max_pool2d(x, 1, 2), x[:, :, ::2, ::2])     # size ceil(H/2)


def test_max_pool2d_nan_propagates():
    x = np.zeros((1, 1, 2, 2))
    x[0, 0, 1, 0] = np.nan
    assert np.isnan(max_pool2d(x, 2)[0, 0, 0, 0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, kernel_size, stride, padding", CASES)
def test_max_pool2d_kernel_equals_twin(x_shape, kernel_size, stride, padding, dtype):
    rng = np.random.default_rng(1)
    # a transposed view: the wrapper must make it contiguous
    x = rng.standard_normal(x_shape[:2] + x_shape[2:][::-1]).astype(dtype).transpose(0, 1, 3, 2)
    x[..., 0, :] = x[..., 1, :]                         # create ties
    out, cache = max_pool2d_forward(x, kernel_size, stride, padding)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = max_pool2d_backward(dout, cache)
    with reference_kernels():
        out_twin, cache_twin = max_pool2d_forward(x, kernel_size, stride, padding)
        dx_twin = max_pool2d_backward(dout, cache_twin)
    assert out.dtype == dx.dtype == dtype
    np.testing.assert_array_equal(out, out_twin)
    np.testing.assert_array_equal(cache.indices, cache_twin.indices)
    np.testing.assert_allclose(dx, dx_twin, rtol=1e-6)


@pytest.mark.parametrize("x_shape, kernel_size, stride, padding", CASES)
def test_max_pool2d_gradients(x_shape, kernel_size, stride, padding):
    # distinct values spaced far apart, so eps never changes a winner
    rng = np.random.default_rng(2)
    x = rng.permutation(np.prod(x_shape)).reshape(x_shape).astype(np.float64) * 0.1
    out, cache = max_pool2d_forward(x, kernel_size, stride, padding)
    dout = rng.standard_normal(out.shape)
    dx = max_pool2d_backward(dout, cache)
    assert rel_error(dx, numerical_gradient(lambda v: max_pool2d(v, kernel_size, stride, padding), x, dout)) < 1e-6


def test_max_pool2d_empty_batch():
    out, cache = max_pool2d_forward(np.zeros((0, 3, 8, 8), np.float32), 3, 2, 1)
    assert out.shape == (0, 3, 4, 4)
    assert max_pool2d_backward(out, cache).shape == (0, 3, 8, 8)


@pytest.mark.parametrize("x, args, error, match", [
    (np.zeros((3, 8, 8)), (2,), ValueError, r"x must be float\[N, C, H, W\]"),
    (np.zeros((1, 3, 8, 8), np.int64), (2,), TypeError, "float32 or float64"),
    (np.zeros((1, 3, 8, 8)), (2, 2, 2), ValueError, "padding must be at most half"),
    (np.zeros((1, 3, 2, 2)), (3,), ValueError, "too small"),
    (np.zeros((1, 3, 8, 8)), (0,), ValueError, "kernel_size"),
])
def test_max_pool2d_bad_inputs(x, args, error, match):
    with pytest.raises(error, match=match):
        max_pool2d(x, *args)


def test_max_pool2d_backward_rejects_wrong_dout():
    out, cache = max_pool2d_forward(np.zeros((1, 2, 4, 4)), 2)
    with pytest.raises(ValueError, match=r"max_pool2d_backward: dout must have the forward output's shape \(1, 2, 2, 2\), "
                                         r"got shape \(1, 2, 3, 3\)"):
        max_pool2d_backward(np.zeros((1, 2, 3, 3)), cache)
