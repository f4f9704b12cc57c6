"""Box utilities: known answers (torchvision's), IoU twin == kernel, properties, bad inputs."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minimrcnn.runtime import reference_kernels
from minimrcnn.ops.boxes import (
    _box_iou_kernel, _box_iou_kernel_serial, box_area, box_convert, box_iou, box_iou_reference, clip_boxes_to_image,
    masks_to_boxes, remove_small_boxes,
)

from tests.conftest import random_boxes


# -- known answers --------------------------------------------------------------------
def test_box_iou_known_answer_int_boxes():
    # torchvision test_ops.py: int boxes against the first three.
    boxes = np.array([[0, 0, 100, 100], [0, 0, 50, 50], [200, 200, 300, 300], [0, 0, 25, 25]])
    iou = box_iou(boxes, boxes[:3])
    expected = np.array([[1, .25, 0], [.25, 1, 0], [0, 0, 1], [.0625, .25, 0]])
    assert iou.dtype == np.float32
    np.testing.assert_allclose(iou, expected, atol=1e-7)


def test_box_iou_hand_computed():
    # [0,0,2,2] and [1,1,3,3]: overlap 1 pixel, union 4 + 4 - 1 = 7.
    iou = box_iou(np.array([[0.0, 0, 2, 2]]), np.array([[1.0, 1, 3, 3], [5.0, 5, 6, 6]]))
    np.testing.assert_allclose(iou, [[1 / 7, 0.0]], rtol=1e-15)


def test_box_iou_zero_area_pairs():
    a = np.array([[1.0, 1, 1, 1]])
    iou = box_iou(a, np.array([[1.0, 1, 1, 1], [0.0, 0, 4, 4]]))
    assert np.isnan(iou[0, 0])          # 0 / 0, as torchvision
    assert iou[0, 1] == 0.0             # zero-area box vs a real box


def test_box_area():
    np.testing.assert_array_equal(box_area(np.array([[0.0, 0, 10, 5], [1, 1, 1, 4]])), [50.0, 0.0])
    assert box_area(np.array([[0, 0, 3, 3]], dtype=np.int32)).dtype == np.int32


def test_clip_boxes_to_image_known_answer():
    out = clip_boxes_to_image(np.array([[-5.0, -3, 700, 900]]), (480, 640))
    np.testing.assert_array_equal(out, [[0, 0, 640, 480]])


def test_clip_boxes_to_image_keeps_shape_dtype_and_input():
    boxes = np.array([[[-1.0, 2, 50, 60]], [[3, -4, 5, 6]]], dtype=np.float32)   # [2, 1, 4]
    before = boxes.copy()
    out = clip_boxes_to_image(boxes, (10, 20))
    assert out.shape == boxes.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out, [[[0, 2, 20, 10]], [[3, 0, 5, 6]]])
    np.testing.assert_array_equal(boxes, before)


def test_remove_small_boxes_known_answer():
    keep = remove_small_boxes(np.array([[0, 0, 1, 5], [0, 0, .99, 5], [0, 0, 5, 1]]), 1.0)
    assert keep.dtype == np.int64
    np.testing.assert_array_equal(keep, [0, 2])


def test_box_convert_known_and_round_trip():
    xyxy = np.array([[10.0, 20, 30, 60]])
    np.testing.assert_array_equal(box_convert(xyxy, "xyxy", "xywh"), [[10, 20, 20, 40]])
    np.testing.assert_array_equal(box_convert(xyxy, "xyxy", "cxcywh"), [[20, 40, 20, 40]])
    boxes = random_boxes(np.random.default_rng(0), 20, np.float64)
    for fmt in ("xywh", "cxcywh"):
        np.testing.assert_allclose(box_convert(box_convert(boxes, "xyxy", fmt), fmt, "xyxy"), boxes, atol=1e-12)
    np.testing.assert_allclose(box_convert(box_convert(boxes, "xyxy", "xywh"), "xywh", "cxcywh"),
                               box_convert(boxes, "xyxy", "cxcywh"), atol=1e-12)
    with pytest.raises(ValueError, match="in_fmt"):
        box_convert(boxes, "xyxy", "yxyx")


def test_masks_to_boxes():
    masks = np.zeros((3, 6, 8), dtype=np.uint8)
    masks[0, 1:3, 2:4] = 1          # rows 1..2, cols 2..3
    masks[1, 5, 7] = 1              # single pixel at (row 5, col 7)
    # masks[2] is empty -> zeros, as torchvision
    boxes = masks_to_boxes(masks)
    assert boxes.dtype == np.float32
    np.testing.assert_array_equal(boxes, [[2, 1, 3, 2], [7, 5, 7, 5], [0, 0, 0, 0]])
    assert masks_to_boxes(np.zeros((0, 4, 4))).shape == (0, 4)


# -- twin == kernel ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_box_iou_kernel_equals_twin(dtype):
    rng = np.random.default_rng(1)
    b1 = random_boxes(rng, 70, dtype)
    b2 = random_boxes(rng, 90, dtype)
    b1[3] = b2[5]                          # an exact duplicate
    b1[4] = b2[6] = [5, 5, 5, 5]           # two zero-area boxes -> NaN
    expected = box_iou_reference(b1, b2)
    for kernel in (_box_iou_kernel, _box_iou_kernel_serial):   # parallel == serial == twin
        got = np.empty((70, 90), dtype=dtype)
        kernel(got, b1, b2)
        np.testing.assert_array_equal(got, expected)   # same float ops: bit-identical, NaN included
    # through the public wrapper, with non-contiguous inputs
    wide = np.zeros((70, 8), dtype=dtype)
    wide[:, ::2] = b1
    with reference_kernels(False):
        np.testing.assert_array_equal(box_iou(wide[:, ::2], b2), expected)
    with reference_kernels(True):
        np.testing.assert_array_equal(box_iou(wide[:, ::2], b2), expected)


def test_empty_inputs_give_empty_outputs():
    empty = np.zeros((0, 4), np.float32)
    assert box_area(empty).shape == (0,)
    assert remove_small_boxes(empty, 1.0).shape == (0,) and remove_small_boxes(empty, 1.0).dtype == np.int64
    assert clip_boxes_to_image(empty, (10, 10)).shape == (0, 4)
    assert box_convert(empty, "xyxy", "cxcywh").shape == (0, 4)


def test_box_iou_empty():
    assert box_iou(np.zeros((0, 4)), np.zeros((5, 4))).shape == (0, 5)
    assert box_iou(np.zeros((3, 4), np.float32), np.zeros((0, 4), np.float32)).shape == (3, 0)


# -- properties ----------------------------------------------------------------------
coord = st.floats(0, 100, allow_nan=False, width=32)
box = st.tuples(coord, coord, st.floats(0.5, 50, width=32), st.floats(0.5, 50, width=32)).map(
    lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]])


@settings(max_examples=60, deadline=None)
@given(st.lists(box, min_size=1, max_size=8), st.lists(box, min_size=1, max_size=8))
def test_box_iou_symmetric_and_in_unit_interval(a, b):
    a, b = np.array(a, dtype=np.float64), np.array(b, dtype=np.float64)
    iou = box_iou(a, b)
    np.testing.assert_array_equal(iou, box_iou(b, a).T)
    assert np.all((iou >= 0) & (iou <= 1))
    np.testing.assert_allclose(np.diag(box_iou(a, a)), 1.0, rtol=1e-12)


# -- bad inputs ------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.zeros((3, 5)), np.zeros(4), np.zeros((2, 2, 4))])
def test_box_iou_wrong_shape(bad):
    with pytest.raises(ValueError, match=r"boxes1 must have shape \[R, 4\]"):
        box_iou(bad, np.zeros((2, 4)))


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_box_iou_non_finite(value):
    b = np.array([[0.0, 0, 1, 1], [0, 0, value, 1]])
    with pytest.raises(ValueError, match="boxes2 must have finite"):
        box_iou(np.zeros((1, 4)), b)
    with pytest.raises(ValueError, match="boxes must have finite"):
        remove_small_boxes(b, 1.0)


def test_bad_inputs_other_utils():
    with pytest.raises(ValueError, match="size must be"):
        clip_boxes_to_image(np.zeros((1, 4)), (1, 2, 3))
    with pytest.raises(ValueError, match="masks must have shape"):
        masks_to_boxes(np.zeros((4, 4)))
    with pytest.raises(TypeError, match="both be float or both integer"):
        box_iou(np.zeros((1, 4), np.int64), np.zeros((1, 4)))
