"""NMS and batched NMS: torchvision's known answers, twin == kernel, greedy properties, errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minimrcnn.ops.boxes import box_iou
from minimrcnn.ops.nms import batched_nms, nms, nms_reference

from tests.conftest import kernel_and_twin, random_boxes, run_without_jit


# -- known answers (docs/torchvision-parity.md secs. 3 and 14) ----------------------
def test_three_identical_boxes_equal_scores_keep_lowest_index():
    boxes = np.array([[0, 0, 10, 10]] * 3, dtype=np.float32)
    for keep in kernel_and_twin(nms, boxes, np.array([0.5, 0.5, 0.5], np.float32), 0.5):
        assert keep.dtype == np.int64
        np.testing.assert_array_equal(keep, [0])


def test_iou_exactly_half_is_kept():
    # [0,0,10,10] vs [0,0,10,5]: inter 50, union 100 -> IoU 0.5 exactly (also in float32).
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 5]], dtype=np.float32)
    for keep in kernel_and_twin(nms, boxes, np.array([0.9, 0.8], np.float32), 0.5):
        np.testing.assert_array_equal(keep, [0, 1])


def test_float32_iou_point_three_is_suppressed_at_point_three():
    # inter 30 / union 100: float32 rounds 0.3 up to 0.300000012 > 0.3 (as a double): suppressed.
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 3]])
    scores = np.array([0.9, 0.8])
    for keep in kernel_and_twin(nms, boxes.astype(np.float32), scores, 0.3):
        np.testing.assert_array_equal(keep, [0])
    for keep in kernel_and_twin(nms, boxes.astype(np.float64), scores, 0.3):   # 0.3 == 0.3 in float64: kept
        np.testing.assert_array_equal(keep, [0, 1])


def test_zero_area_duplicates_both_kept():
    boxes = np.array([[5, 5, 5, 5], [5, 5, 5, 5]], dtype=np.float32)   # IoU 0/0 = NaN
    for keep in kernel_and_twin(nms, boxes, np.array([0.9, 0.8], np.float32), 0.5):
        np.testing.assert_array_equal(keep, [0, 1])


def test_output_sorted_by_decreasing_score():
    boxes = np.array([[0, 0, 10, 10], [100, 100, 110, 110], [0, 0, 10, 9]], dtype=np.float32)
    scores = np.array([0.2, 0.9, 0.5], np.float32)
    for keep in kernel_and_twin(nms, boxes, scores, 0.5):
        np.testing.assert_array_equal(keep, [1, 2])


def test_batched_nms_known_answer():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 10, 10]], dtype=np.float32)
    keep = batched_nms(boxes, np.array([.9, .8, .7], np.float32), np.array([0, 1, 1]), 0.5)
    np.testing.assert_array_equal(keep, [0, 1])


def test_empty_inputs():
    for dtype in (np.float32, np.float64):
        keep = nms(np.zeros((0, 4), dtype), np.zeros(0, dtype), 0.5)
        assert keep.dtype == np.int64 and keep.shape == (0,)
        keep = batched_nms(np.zeros((0, 4), dtype), np.zeros(0, dtype), np.zeros(0, np.int64), 0.5)
        assert keep.dtype == np.int64 and keep.shape == (0,)


# -- twin == kernel --------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.7])
def test_kernel_equals_twin(dtype, threshold):
    rng = np.random.default_rng(int(threshold * 10))
    boxes = random_boxes(rng, 300, dtype)
    boxes[10:20] = boxes[0]                            # duplicates
    boxes[20:23] = [3, 3, 3, 3]                        # zero-area duplicates
    scores = np.round(rng.uniform(size=300), 1)        # many ties
    wide = np.zeros((300, 8), dtype=dtype)
    wide[:, 1::2] = boxes                              # non-contiguous view
    kernel, twin = kernel_and_twin(nms, wide[:, 1::2], scores[::-1].copy()[::-1], threshold)
    np.testing.assert_array_equal(kernel, twin)
    np.testing.assert_array_equal(kernel, nms_reference(boxes, scores, threshold))


def test_kernel_equals_twin_without_jit():
    # The kernel run as plain Python (NUMBA_DISABLE_JIT=1) gives the same answers.
    stdout = run_without_jit("""
        import numpy as np
        from minimrcnn.runtime import reference_kernels
        from minimrcnn.ops.boxes import box_iou
        from minimrcnn.ops.nms import nms
        rng = np.random.default_rng(0)
        c = rng.uniform(0, 300, (120, 2)); s = rng.uniform(10, 100, (120, 2))
        boxes = np.concatenate([c - s / 2, c + s / 2], 1).astype(np.float32)
        scores = np.round(rng.uniform(size=120), 1)
        a, b = nms(boxes, scores, 0.3), box_iou(boxes, boxes)
        with reference_kernels():
            assert np.array_equal(a, nms(boxes, scores, 0.3))
            assert np.array_equal(b, box_iou(boxes, boxes), equal_nan=True)
        # float32 IoU 0.3 still compared as a double (suppressed) when the kernel is Python.
        point_three = np.array([[0, 0, 10, 10], [0, 0, 10, 3]], np.float32)
        assert list(nms(point_three, np.array([0.9, 0.8]), 0.3)) == [0]
        print("ok", len(a))
    """)
    assert stdout.startswith("ok")


# -- greedy properties -------------------------------------------------------------------
coord = st.integers(0, 60)
side = st.integers(0, 30)
box = st.tuples(coord, coord, side, side).map(lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]])


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(box, st.integers(0, 5)), min_size=1, max_size=25),
       st.sampled_from([0.0, 0.3, 0.5, 0.7]))
def test_nms_greedy_properties(items, threshold):
    boxes = np.array([b for b, _ in items], dtype=np.float32)
    scores = np.array([s for _, s in items], dtype=np.float32) / 5
    keep = nms(boxes, scores, threshold)
    iou = box_iou(boxes, boxes).astype(np.float64)
    over = iou > threshold                                  # NaN compares False
    # No two kept boxes overlap by more than the threshold.
    assert not over[np.ix_(keep, keep)][~np.eye(len(keep), dtype=bool)].any()
    # Every suppressed box overlaps a kept box of higher-or-equal score by more than it.
    suppressed = np.setdiff1d(np.arange(len(boxes)), keep)
    for j in suppressed:
        assert np.any(over[keep, j] & (scores[keep] >= scores[j]))
    # Output sorted by decreasing score.
    assert np.all(np.diff(scores[keep]) <= 0)


# -- batched_nms -------------------------------------------------------------------------
def test_batched_nms_equals_per_class_nms_on_both_paths():
    rng = np.random.default_rng(3)
    for n in (400, 1500):                                    # trick path, vanilla path
        boxes = random_boxes(rng, n, np.float64)             # float64: both paths agree exactly
        scores = rng.uniform(size=n)
        idxs = rng.integers(0, 4, n)
        keep = batched_nms(boxes, scores, idxs, 0.5)
        expected = np.concatenate([np.nonzero(idxs == c)[0][nms(boxes[idxs == c], scores[idxs == c], 0.5)]
                                   for c in range(4)])
        np.testing.assert_array_equal(np.sort(keep), np.sort(expected))
        assert np.all(np.diff(scores[keep]) <= 0)


# -- bad inputs --------------------------------------------------------------------------
@pytest.mark.parametrize("boxes, scores, match", [
    (np.zeros((3, 5)), np.zeros(3), r"boxes must have shape \[R, 4\]"),
    (np.zeros(4), np.zeros(1), r"boxes must have shape \[R, 4\]"),
    (np.zeros((3, 4)), np.zeros(2), r"scores must have shape \[R\] = \[3\]"),
    (np.zeros((3, 4)), np.zeros((3, 1)), r"scores must have shape \[R\] = \[3\]"),
    (np.array([[0, 0, np.nan, 1]]), np.zeros(1), "boxes must have finite"),
    (np.array([[0, 0, np.inf, 1]]), np.zeros(1), "boxes must have finite"),
    (np.zeros((1, 4)), np.array([np.nan]), "scores must not contain NaN"),
])
def test_nms_bad_inputs(boxes, scores, match):
    with pytest.raises(ValueError, match=match):
        nms(boxes, scores, 0.5)
    with pytest.raises(ValueError, match=match):
        batched_nms(boxes, scores, np.zeros(len(scores), np.int64), 0.5)


def test_nms_bad_dtypes_and_idxs():
    with pytest.raises(TypeError, match="boxes must be float32 or float64"):
        nms(np.zeros((2, 4), np.int32), np.zeros(2), 0.5)
    with pytest.raises(ValueError, match=r"idxs must have shape \[R\] = \[2\]"):
        batched_nms(np.zeros((2, 4)), np.zeros(2), np.zeros(3, np.int64), 0.5)
    with pytest.raises(TypeError, match="idxs must be an integer array"):
        batched_nms(np.zeros((2, 4)), np.zeros(2), np.zeros(2), 0.5)
