"""project_masks_on_boxes and paste_masks_in_image (docs/torchvision-parity.md sec. 10)."""

import numba
import numpy as np
import pytest

from minimrcnn.nn.functional.interpolate import axis_sources
from minimrcnn.ops.masks import expand_boxes_for_paste, paste_masks_in_image, project_masks_on_boxes
from minimrcnn.ops.roi_align import roi_align
from minimrcnn.runtime import reference_kernels

from tests.conftest import random_mask_targets, run_without_jit


def test_project_masks_is_roi_align_of_the_matched_mask():
    rng = np.random.default_rng(0)
    gt, boxes, matched = random_mask_targets(rng, 3, 40, 30, 8)
    targets = project_masks_on_boxes(gt, boxes, matched, 28)
    assert targets.shape == (8, 28, 28) and targets.dtype == np.float32
    for r in range(8):
        expected = roi_align(gt[matched[r]][None, None].astype(np.float32),
                             np.r_[0, boxes[r]][None].astype(np.float32), 28, 1.0, -1, False)
        np.testing.assert_array_equal(targets[r], expected[0, 0])
    assert 0 <= targets.min() and targets.max() <= 1
    assert ((targets > 0) & (targets < 1)).any()          # soft targets, not binarised


def test_project_masks_known_answer():
    gt = np.zeros((1, 8, 8), np.uint8)
    gt[0, :, :4] = 1                                      # left half is the object
    target = project_masks_on_boxes(gt, np.array([[0, 0, 8, 8]], np.float32), np.array([0]), 4)
    # 4x4 bins of 2 cells, 2x2 samples at x = 0.5, 1.5 | 2.5, 3.5 | 4.5 ...: bin 1 sees
    # x = 2.5 (1) and 3.5 (mask 1 -> 0 halfway: 0.5), bin 2 sees 4.5, 5.5 (0).
    np.testing.assert_allclose(target[0], [[1, 0.75, 0, 0]] * 4)


def test_project_masks_empty_and_bad_input():
    gt = np.ones((2, 5, 5), np.uint8)
    assert project_masks_on_boxes(gt, np.zeros((0, 4)), np.zeros(0, np.int64)).shape == (0, 28, 28)
    with pytest.raises(ValueError, match="matched_idxs"):
        project_masks_on_boxes(gt, np.zeros((2, 4)), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="gt_masks"):
        project_masks_on_boxes(gt[0], np.zeros((1, 4)), np.zeros(1, np.int64))
    with pytest.raises(ValueError, match="batch index"):
        project_masks_on_boxes(gt, np.zeros((1, 4)), np.array([5]))


def test_expand_boxes_worked_example():
    # Module docstring: side 28 grows by 30/28 to 30 around (24, 34); inclusive end -> 31 px.
    np.testing.assert_array_equal(expand_boxes_for_paste(np.array([[10, 20, 38, 48]]), 28),
                                  [[9, 19, 39, 49]])
    # Truncation toward zero, not floor: -0.5 -> 0.
    np.testing.assert_array_equal(expand_boxes_for_paste(np.array([[-0.5, 0, 1.5, 2]]), 2, 0),
                                  [[0, 0, 1, 2]])


def test_resize_weights_align_corners_false():
    # pasting resizes with interpolate's formulas, in float32
    i0, i1, l0, l1 = axis_sources(2, 4, "bilinear", np.float32)   # src = (dst+0.5)/2 - 0.5
    np.testing.assert_array_equal(i0, [0, 0, 0, 1])
    np.testing.assert_array_equal(i1, [1, 1, 1, 1])
    np.testing.assert_allclose(l1, [0, 0.25, 0.75, 0.25])   # i0 == i1 there: harmless


def test_paste_worked_example():
    masks = np.ones((1, 1, 28, 28), np.float32)
    out = paste_masks_in_image(masks, np.array([[10, 20, 38, 48]], np.float32), (60, 50))
    assert out.shape == (1, 1, 60, 50) and out.dtype == np.float32
    # The paste covers rows 19..49 and columns 9..39, but its outermost pixels sample
    # the zero padding exactly (src clamps to 0 / lands on 29), so the support is 1 smaller.
    rows, cols = np.nonzero(out[0, 0])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (20, 48, 10, 38)
    assert out[0, 0, 34, 24] == 1.0                       # the interior is the mask value
    assert 0 < out[0, 0, 20, 24] < 1                      # the zero padding fades the edge


@pytest.mark.parametrize("seed", [0, 1])
def test_paste_twin_equals_kernel(seed):
    rng = np.random.default_rng(seed)
    D = 25
    masks = rng.uniform(size=(D, 1, 28, 28)).astype(np.float32)
    xy = rng.uniform(-30, 100, (D, 2))
    boxes = np.c_[xy, xy + rng.uniform(0, 90, (D, 2))].astype(np.float32)
    boxes[0] = [200, 200, 250, 250]                        # entirely outside: all zeros
    boxes[1] = [5, 5, 5, 5]                                # degenerate
    fast = paste_masks_in_image(masks, boxes, (90, 110))
    with reference_kernels():
        slow = paste_masks_in_image(masks, boxes, (90, 110))
    np.testing.assert_array_equal(fast, slow)
    assert not fast[0].any()
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        np.testing.assert_array_equal(paste_masks_in_image(masks, boxes, (90, 110)), fast)
    finally:
        numba.set_num_threads(previous)


def test_paste_empty_and_bad_input():
    out = paste_masks_in_image(np.zeros((0, 1, 28, 28)), np.zeros((0, 4)), (30, 40))
    assert out.shape == (0, 1, 30, 40) and out.dtype == np.float32
    with pytest.raises(ValueError, match="masks"):
        paste_masks_in_image(np.zeros((2, 28, 28)), np.zeros((2, 4)), (30, 40))
    with pytest.raises(ValueError, match="boxes"):
        paste_masks_in_image(np.zeros((2, 1, 28, 28)), np.zeros((3, 4)), (30, 40))
    with pytest.raises(ValueError, match="finite"):
        paste_masks_in_image(np.zeros((1, 1, 28, 28)), np.array([[0, 0, np.nan, 4]]), (30, 40))


def test_paste_runs_with_jit_disabled():
    stdout = run_without_jit("""
        import numpy as np; from minimrcnn.ops.masks import paste_masks_in_image
        out = paste_masks_in_image(np.ones((1,1,28,28),np.float32), np.array([[10,20,38,48]],np.float32), (60,50))
        print(repr(float(out.sum())))
    """)
    expected = paste_masks_in_image(np.ones((1, 1, 28, 28), np.float32),
                                    np.array([[10, 20, 38, 48]], np.float32), (60, 50))
    assert stdout.strip() == repr(float(expected.sum()))
