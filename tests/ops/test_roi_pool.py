"""RoIPool: known answers (docs/torchvision-parity.md sec. 14), twin == kernel, gradients,
determinism, the lesson's quantisation numbers, edge cases and bad inputs."""

import math

import numba
import numpy as np
import pytest

from minimrcnn.gradcheck import numerical_gradient
from minimrcnn.runtime import reference_kernels
from minimrcnn.ops.roi_align import roi_align_sample_points
from minimrcnn.ops.roi_pool import (
    c_round, roi_pool, roi_pool_backward, roi_pool_bin_edges, roi_pool_forward,
)

from tests.conftest import random_rois, run_without_jit

X25 = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5)


KNOWN = [
    ((0, 0.5, 0.5, 2.5, 2.5), 2, 1.0, [[12, 13], [17, 18]]),
    ((0, 1.5, 1.5, 3.49, 3.49), 2, 1.0, [[12, 13], [17, 18]]),
    ((0, -0.5, -0.5, 1.5, 1.5), 2, 1.0, [[0, 2], [10, 12]]),
    ((0, 3, 3, 1, 1), 2, 1.0, [[18, 18], [18, 18]]),
    ((0, 0, 0, 4, 4), 2, 1.0, [[12, 14], [22, 24]]),
    ((0, 4.6, 4.6, 9, 9), 2, 1.0, [[0, 0], [0, 0]]),
    ((0, 0, 0, 4, 4), 3, 0.5, [[0, 1, 2], [5, 6, 7], [10, 11, 12]]),
]


@pytest.mark.parametrize("roi,out,scale,expected", KNOWN)
def test_known_answers(roi, out, scale, expected):
    result = roi_pool(X25, np.array([roi]), out, scale)
    with reference_kernels():
        twin = roi_pool(X25, np.array([roi]), out, scale)
    np.testing.assert_array_equal(result[0, 0], expected)
    np.testing.assert_array_equal(twin, result)


def test_all_bins_empty_have_argmax_minus_one():
    _, cache = roi_pool_forward(X25, np.array([[0, 4.6, 4.6, 9, 9]]), 2)
    assert (cache.argmax == -1).all()


def test_c_round_is_half_away_from_zero():
    assert [c_round(v) for v in (0.5, 2.5, -0.5, -2.5, 0.49999997, 1.4)] == [1, 3, -1, -3, 0, 1]


def test_lesson_quantisation_numbers():
    """800x800 image, a 665x665 box, stride 32, 7x7 pooling: the lesson's numbers."""
    box, scale = (0.0, 0.0, 665.0, 665.0), 1 / 32
    align = roi_align_sample_points(box, 7, scale, sampling_ratio=2)
    assert align["bin_w"] * 7 == pytest.approx(20.78125)          # 665 / 32, not rounded
    assert align["bin_w"] == pytest.approx(2.96875)               # 20.78 / 7
    np.testing.assert_allclose(align["xs"][-1], [6 * 2.96875 + 0.25 * 2.96875,
                                                 6 * 2.96875 + 0.75 * 2.96875])
    pool = roi_pool_bin_edges(np.array([0, *box]), (7, 7), scale, 25, 25)
    assert pool["x_end"] == 21                                    # round(20.78) = 21
    assert pool["roi_w"] == 22                                    # torchvision's inclusive +1
    assert pool["bin_w"] == pytest.approx(22 / 7)                 # 3.14 cells per bin
    np.testing.assert_array_equal(pool["wstart"], [0, 3, 6, 9, 12, 15, 18])
    np.testing.assert_array_equal(pool["wend"], [4, 7, 10, 13, 16, 19, 22])
    # The classic Fast R-CNN account floors instead: 20 cells, bins of 20/7 = 2.86 -> 2.
    cells = math.floor(align["bin_w"] * 7)
    assert cells == 20 and math.floor(cells / 7) == 2
    assert (align["bin_w"] * 7 - cells) * 32 == pytest.approx(25.0)      # 0.78 cell = 25 px
    assert (cells / 7 - 2) * 32 == pytest.approx(27.43, abs=0.01)       # 0.86 cell per bin


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_twin_equals_kernel(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 11)).astype(dtype).transpose(0, 1, 3, 2)   # non-contiguous
    rois = random_rois(rng, 200, 2, 11, 9, dtype)
    for scale in (1.0, 0.4):
        out, cache = roi_pool_forward(x, rois, (3, 2), scale)
        with reference_kernels():
            out_ref, cache_ref = roi_pool_forward(x, rois, (3, 2), scale)
        np.testing.assert_array_equal(out, out_ref)
        np.testing.assert_array_equal(cache.argmax, cache_ref.argmax)
        assert out.dtype == dtype
        dout = rng.standard_normal(out.shape).astype(dtype)
        grad = roi_pool_backward(dout, cache)
        with reference_kernels():
            grad_ref = roi_pool_backward(dout, cache)
        np.testing.assert_allclose(grad, grad_ref, rtol=1e-6, atol=1e-6)


def test_ties_go_to_the_first_pixel():
    x = np.ones((1, 1, 4, 4))
    _, cache = roi_pool_forward(x, np.array([[0, 0, 0, 3, 3]]), 1)
    assert cache.argmax[0, 0, 0, 0] == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_check(seed):
    rng = np.random.default_rng(seed)
    x = rng.permutation(60).reshape(1, 2, 5, 6).astype(np.float64)   # distinct: stable argmax
    rois = random_rois(rng, 5, 1, 5, 6, np.float64)
    out, cache = roi_pool_forward(x, rois, 2)
    weights = rng.standard_normal(out.shape)
    analytic = roi_pool_backward(weights, cache)
    # eps 1e-4: the values differ by >= 1, so the argmax stays (few entries: no thread juggling)
    numeric = numerical_gradient(lambda v: roi_pool(v, rois, 2), x, weights, eps=1e-4)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_backward_parallel_equals_serial():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 8, 10, 10)).astype(np.float32)
    rois = random_rois(rng, 200, 2, 10, 10, np.float32)
    out, cache = roi_pool_forward(x, rois, 3)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    first = roi_pool_backward(dout, cache)
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        serial = roi_pool_backward(dout, cache)
    finally:
        numba.set_num_threads(previous)
    np.testing.assert_array_equal(first, serial)
    np.testing.assert_array_equal(first, roi_pool_backward(dout, cache))


def test_empty_boxes():
    x = np.ones((1, 2, 4, 4), np.float32)
    out, cache = roi_pool_forward(x, np.zeros((0, 5)), 2)
    assert out.shape == (0, 2, 2, 2)
    assert not roi_pool_backward(out, cache).any()


def test_bad_inputs():
    with pytest.raises(ValueError, match="finite"):
        roi_pool(X25, np.array([[0, np.nan, 0, 1, 1]]), 2)
    with pytest.raises(ValueError, match="batch index"):
        roi_pool(X25, np.array([[3, 0, 0, 1, 1]]), 2)
    with pytest.raises(ValueError, match="output_size"):
        roi_pool(X25, np.array([[0, 0, 0, 1, 1]]), 0)
    with pytest.raises(TypeError, match="input"):
        roi_pool(X25.astype(np.int32), np.array([[0, 0, 0, 1, 1]]), 2)
    _, cache = roi_pool_forward(X25, np.array([[0, 0, 0, 1, 1]]), 2)
    with pytest.raises(ValueError, match="dout"):
        roi_pool_backward(np.ones((1, 1, 3, 3)), cache)


def test_runs_with_jit_disabled():
    stdout = run_without_jit("""
        import numpy as np; from minimrcnn.ops.roi_pool import *
        x = np.arange(25.).reshape(1,1,5,5)
        o, c = roi_pool_forward(x, np.array([[0,0.5,0.5,2.5,2.5]]), 2)
        print(o.ravel().tolist(), roi_pool_backward(np.ones_like(o), c).sum())
    """)
    assert stdout.split() == ["[12.0,", "13.0,", "17.0,", "18.0]", "4.0"]
