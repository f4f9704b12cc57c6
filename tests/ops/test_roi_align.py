"""RoIAlign: known answers (docs/torchvision-parity.md sec. 14), twin == kernel, gradients,
determinism, invariances, edge cases and bad inputs."""

import os

import numba
import numpy as np
import pytest

from minimrcnn.gradcheck import numerical_gradient
from minimrcnn.ops.roi_align import (
    roi_align, roi_align_backward, roi_align_forward, roi_align_sample_points,
)

from tests.conftest import kernel_and_twin, random_rois, run_without_jit

X25 = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


KNOWN = [  # roi, out, scale, sampling_ratio, aligned, result
    ((0, 0, 0, 4, 4), 2, 1, -1, False, [[6, 8], [16, 18]]),
    ((0, 0, 0, 4, 4), 2, 1, 2, False, [[6, 8], [16, 18]]),
    ((0, 0, 0, 4, 4), 2, 1, -1, True, [[3, 5], [13, 15]]),
    ((0, 0, 0, 4, 4), 2, 1, 1, True, [[3, 5], [13, 15]]),
    ((0, -2, -2, 2, 2), 2, 1, -1, False, [[0, 0.5], [2.5, 6]]),
    ((0, -2, -2, 2, 2), 2, 1, 2, True, [[0, 0.25], [1.25, 3]]),
    ((0, 3, 3, 8, 8), 2, 1, 2, False, [[22.875, 0], [0, 0]]),
    ((0, 1, 1, 1, 1), 2, 1, -1, False, [[7.5, 8], [10, 10.5]]),
    ((0, 1, 1, 1, 1), 2, 1, -1, True, [[0, 0], [0, 0]]),
    ((0, 1, 1, 1, 1), 2, 1, 2, True, [[3, 3], [3, 3]]),
    ((0, 0, 0, 8, 8), 2, 0.5, 2, False, [[6, 8], [16, 18]]),
    ((0, 0, 0, 8, 8), 3, 0.5, -1, True,
     [[1.5, 2.75, 4.083333], [7.75, 9, 10.333333], [14.416667, 15.666667, 17]]),
    ((0, -3, -3, -1.5, -1.5), 1, 1, 1, False, [[0]]),
    ((0, 3, 3, 2, 2), 2, 1, 2, True, [[13.5, 13], [11, 10.5]]),
    ((0, 3, 3, 2, 2), 2, 1, -1, True, [[0, 0], [0, 0]]),
    ((0, 3, 3, 2, 2), 2, 1, -1, False, [[19.5, 20], [22, 22.5]]),
]


@pytest.mark.parametrize("roi,out,scale,sr,aligned,expected", KNOWN)
def test_known_answers(roi, out, scale, sr, aligned, expected):
    fast, slow = kernel_and_twin(lambda: roi_align(X25, np.array([roi], float), out, scale, sr, aligned))
    np.testing.assert_allclose(fast[0, 0], expected, atol=1e-6)
    np.testing.assert_array_equal(fast, slow)


@pytest.mark.parametrize("y,expected", [(-1.0, 2.0), (-1.0001, 0.0), (5.0, 22.0)])
def test_single_sample_range_is_inclusive(y, expected):
    # A zero-height box at y, 1x1 output, one sample: aligned=True keeps it zero-height,
    # and sampling_ratio=1 puts the sample exactly at (y, x=2).
    roi = np.array([[0, 2.5, y + 0.5, 2.5, y + 0.5]])
    fast, slow = kernel_and_twin(lambda: roi_align(X25, roi, 1, 1.0, 1, aligned=True))
    assert fast[0, 0, 0, 0] == pytest.approx(expected)
    assert slow[0, 0, 0, 0] == pytest.approx(expected)


GRAD_EXAMPLE = np.array([[0, 0, 0, 0],
                         [0.014375, 0.129375, 0.129375, 0.014375],
                         [0.010625, 0.095625, 0.095625, 0.010625],
                         [0.025, 0.225, 0.225, 0.025]])


def test_gradient_known_answer():
    out, cache = roi_align_forward(np.zeros((1, 1, 4, 4)), np.array([[0, 0.3, 0.6, 2.7, 3.9]]),
                                   1, 1.0, 2)
    fast, slow = kernel_and_twin(lambda: roi_align_backward(np.ones_like(out), cache))
    np.testing.assert_allclose(fast[0, 0], GRAD_EXAMPLE, atol=1e-12)
    np.testing.assert_allclose(slow[0, 0], GRAD_EXAMPLE, atol=1e-12)


def test_docs_worked_example_numbers_match_the_library():
    """docs/roi_align.md works the gradient example by hand; its numbers are the library's."""
    text = open(os.path.join(ROOT, "docs", "roi_align.md")).read()
    for value in ["0.014375", "0.129375", "0.010625", "0.095625", "0.225", "1.425", "3.075"]:
        assert value in text
    pts = roi_align_sample_points((0.3, 0.6, 2.7, 3.9), 1, sampling_ratio=2)
    np.testing.assert_allclose(pts["xs"], [[0.9, 2.1]])
    np.testing.assert_allclose(pts["ys"], [[1.425, 3.075]])
    assert (pts["gh"], pts["gw"], pts["bin_w"]) == (2, 2, pytest.approx(2.4))


@pytest.mark.parametrize("aligned,expected", [
    (False, [[7.5, 8, 8.5, 9], [10, 10.5, 11, 11.5], [12.5, 13, 13.5, 14], [15, 15.5, 16, 16.5]]),
    (True, [[4.5, 5, 5.5, 6], [7, 7.5, 8, 8.5], [9.5, 10, 10.5, 11], [12, 12.5, 13, 13.5]]),
])
def test_detectron2_example(aligned, expected):
    # detectron2's test_roi_align: box (1,1,3,3) on a 5x5 arange, 4x4 output, adaptive.
    out = roi_align(X25.astype(np.float32), np.array([[0, 1, 1, 3, 3]], np.float32), 4, 1.0, 0,
                    aligned)
    np.testing.assert_allclose(out[0, 0], expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("aligned", [False, True])
def test_twin_equals_kernel(dtype, aligned):
    rng = np.random.default_rng(1)
    # Non-contiguous input: a W/H-transposed view.
    x = rng.standard_normal((2, 3, 11, 9)).astype(dtype).transpose(0, 1, 3, 2)
    rois = random_rois(rng, 200, 2, 9, 11, dtype)
    for sr in (-1, 2):
        (out, cache), (out_ref, _) = kernel_and_twin(lambda: roi_align_forward(x, rois, (2, 3), 0.9, sr,
                                                                    aligned))
        np.testing.assert_array_equal(out, out_ref)             # same sum order: bitwise
        assert out.dtype == dtype
        dout = rng.standard_normal(out.shape).astype(dtype)[..., ::-1]   # non-contiguous
        fast, slow = kernel_and_twin(lambda: roi_align_backward(dout, cache))
        rtol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(fast, slow, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("seed,aligned,sr", [(0, False, 1), (1, True, 1), (2, False, 2),
                                             (3, True, 2), (4, False, -1), (5, True, -1)])
def test_gradient_check(seed, aligned, sr, one_numba_thread):   # hundreds of tiny calls
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 2, 5, 6))
    rois = random_rois(rng, 6, 2, 5, 6, np.float64, spread=1.5)
    out, cache = roi_align_forward(x, rois, 2, 1.0, sr, aligned)
    weights = rng.standard_normal(out.shape)
    analytic = roi_align_backward(weights, cache)
    numeric = numerical_gradient(lambda v: roi_align(v, rois, 2, 1.0, sr, aligned), x, weights)
    err = np.abs(analytic - numeric).max() / max(np.abs(numeric).max(), 1e-12)
    assert err <= 1e-6


def test_backward_parallel_equals_serial_and_is_deterministic():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 40, 12, 12)).astype(np.float32)
    rois = random_rois(rng, 300, 2, 12, 12, np.float32)
    out, cache = roi_align_forward(x, rois, 7, 0.5, 2, True)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    first = roi_align_backward(dout, cache)
    again = roi_align_backward(dout, cache)
    blocks = roi_align_backward(dout, cache, channel_block=3)
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        serial = roi_align_backward(dout, cache)
        serial_fwd = roi_align(x, rois, 7, 0.5, 2, True)
    finally:
        numba.set_num_threads(previous)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, blocks)
    np.testing.assert_array_equal(first, serial)
    np.testing.assert_array_equal(out, serial_fwd)


@pytest.mark.parametrize("sr", [-1, 2])
def test_backward_reuses_the_forwards_sample_tables(sr):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 8, 12, 12)).astype(np.float32)
    rois = random_rois(rng, 50, 2, 12, 12, np.float32)
    out, cache = roi_align_forward(x, rois, 7, 0.5, sr, True)
    offsets, pos, weights = cache.tables
    assert offsets.shape == (51,) and pos.shape == weights.shape == (offsets[-1], 4)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    np.testing.assert_array_equal(roi_align_backward(dout, cache),
                                  roi_align_backward(dout, cache._replace(tables=None)))   # recomputed


def test_runs_with_jit_disabled():
    stdout = run_without_jit("""
        import numpy as np; from minimrcnn.ops.roi_align import *
        x = np.arange(25.).reshape(1,1,5,5)
        o, c = roi_align_forward(x, np.array([[0,-2,-2,2,2.]]), 2, 1.0, 2, True)
        g = roi_align_backward(np.ones_like(o), c)
        print(o.ravel().tolist(), g.sum())
    """)
    out, cache = roi_align_forward(X25, np.array([[0, -2, -2, 2, 2.]]), 2, 1.0, 2, True)
    grad_sum = roi_align_backward(np.ones_like(out), cache).sum()
    assert stdout.split() == ["[0.0,", "0.25,", "1.25,", "3.0]", str(grad_sum)]


def test_half_size_image_and_box_give_the_same_values():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 4, 9, 9))
    rois = random_rois(rng, 40, 1, 9, 9, np.float64)
    doubled = rois.copy()
    doubled[:, 1:] *= 2
    for aligned in (False, True):
        np.testing.assert_array_equal(roi_align(x, rois, 3, 1.0, 2, aligned),
                                      roi_align(x, doubled, 3, 0.5, 2, aligned))


def test_list_of_boxes_equals_tensor_form():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    per_image = [rng.uniform(0, 8, (3, 4)), rng.uniform(0, 8, (2, 4))]
    rois = np.concatenate([np.r_[[0] * 3, [1] * 2][:, None], np.concatenate(per_image)], 1)
    np.testing.assert_array_equal(roi_align(x, per_image, 2), roi_align(x, rois, 2))


def test_empty_boxes():
    x = np.ones((2, 3, 5, 5), np.float32)
    for boxes in (np.zeros((0, 5)), [np.zeros((0, 4)), np.zeros((0, 4))]):
        out, cache = roi_align_forward(x, boxes, (2, 3))
        assert out.shape == (0, 3, 2, 3) and out.dtype == np.float32
        grad = roi_align_backward(out, cache)
        assert grad.shape == x.shape and not grad.any()


def test_grid_size_zero_or_negative_gives_zero():
    # aligned, adaptive, inverted in one axis only: torchvision's CPU kernel crashes here.
    roi = np.array([[0, 3, 1, 2, 3]], float)
    out, cache = roi_align_forward(X25, roi, 2, 1.0, -1, True)
    assert not out.any()
    assert not roi_align_backward(np.ones_like(out), cache).any()


@pytest.mark.parametrize("boxes,match", [
    (np.array([[0, np.nan, 0, 1, 1]]), "finite"),
    (np.array([[0, 0, 0, np.inf, 1]]), "finite"),
    (np.array([[1, 0, 0, 1, 1]]), "batch index"),
    (np.array([[-1, 0, 0, 1, 1]]), "batch index"),
    (np.array([[0, 0, 1, 1]]), r"float\[R, 5\]"),
    ([np.zeros((2, 3))], r"boxes\[0\]"),
])
def test_bad_boxes(boxes, match):
    with pytest.raises(ValueError, match=match):
        roi_align(X25, boxes, 2)


def test_bad_arguments():
    box = np.array([[0, 0, 0, 2, 2.]])
    with pytest.raises(ValueError, match="output_size"):
        roi_align(X25, box, 0)
    with pytest.raises(ValueError, match="output_size"):
        roi_align(X25, box, (2, -1))
    with pytest.raises(TypeError, match="sampling_ratio"):
        roi_align(X25, box, 2, sampling_ratio=2.0)
    with pytest.raises(TypeError, match="input"):
        roi_align(X25.astype(np.int64), box, 2)
    with pytest.raises(ValueError, match="input"):
        roi_align(X25[0], box, 2)
    with pytest.raises(ValueError, match="spatial_scale"):
        roi_align(X25, box, 2, spatial_scale=0.0)
    out, cache = roi_align_forward(X25, box, 2)
    with pytest.raises(ValueError, match="dout"):
        roi_align_backward(np.ones((1, 1, 3, 3)), cache)


def test_does_not_mutate_arguments():
    x = X25.copy()
    rois = np.array([[0, 0.5, 0.5, 3.5, 3.5]])
    out, cache = roi_align_forward(x, rois, 2)
    dout = np.ones_like(out)
    roi_align_backward(dout, cache)
    np.testing.assert_array_equal(x, X25)
    np.testing.assert_array_equal(rois, [[0, 0.5, 0.5, 3.5, 3.5]])
    np.testing.assert_array_equal(dout, 1)
