"""crop_and_resize: TensorFlow's semantics (one bilinear sample per output pixel)."""

import numpy as np
import pytest

from minimrcnn.ops.crop_and_resize import crop_and_resize
from minimrcnn.ops.roi_align import roi_align

IMAGE = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)     # NHWC, values 0..8


def crop(boxes, size, **kwargs):
    boxes = np.asarray(boxes, np.float32)
    return crop_and_resize(IMAGE, boxes, np.zeros(len(boxes), np.int64), size, **kwargs)[..., 0]


def test_full_box_at_image_size_is_the_image():
    np.testing.assert_array_equal(crop([[0, 0, 1, 1]], (3, 3))[0], IMAGE[0, :, :, 0])


def test_corners_and_centre():
    np.testing.assert_array_equal(crop([[0, 0, 1, 1]], (2, 2))[0], [[0, 2], [6, 8]])
    # crop size 1: the single sample sits at the box centre, 0.5 * (0 + 1) * (3 - 1) = 1.
    np.testing.assert_array_equal(crop([[0, 0, 1, 1]], (1, 1))[0], [[4]])


def test_bilinear_between_pixels():
    # in = 0, 0.5, 1 along each axis: value = 3 * y + x.
    np.testing.assert_allclose(crop([[0, 0, 0.5, 0.5]], (3, 3))[0],
                               [[0, 0.5, 1], [1.5, 2, 2.5], [3, 3.5, 4]])


def test_outside_takes_extrapolation_value_and_flipped_box_flips():
    out = crop([[-1, -1, 0, 0]], (2, 2), extrapolation_value=-7.0)[0]
    np.testing.assert_array_equal(out, [[-7, -7], [-7, 0]])     # in = -2 (outside), 0
    np.testing.assert_array_equal(crop([[1, 1, 0, 0]], (3, 3))[0], IMAGE[0, ::-1, ::-1, 0])


def test_differs_from_roi_align_on_a_large_box():
    """One sample per pixel (TF) versus an average of samples per bin (RoIAlign)."""
    rng = np.random.default_rng(0)
    image = rng.standard_normal((1, 32, 32, 1)).astype(np.float32)
    tf_like = crop_and_resize(image, np.array([[0, 0, 1, 1]], np.float32), np.array([0]), (4, 4))
    pooled = roi_align(image.transpose(0, 3, 1, 2), np.array([[0, 0, 0, 31, 31]], np.float32), 4)
    assert not np.allclose(tf_like[0, :, :, 0], pooled[0, 0])
    assert tf_like[0, 0, 0, 0] == image[0, 0, 0, 0]             # corner sample = corner pixel


def test_bad_inputs():
    with pytest.raises(ValueError, match="image"):
        crop_and_resize(IMAGE[0], np.zeros((1, 4)), np.zeros(1, np.int64), (2, 2))
    with pytest.raises(ValueError, match="boxes"):
        crop_and_resize(IMAGE, np.zeros((1, 5)), np.zeros(1, np.int64), (2, 2))
    with pytest.raises(ValueError, match="box_indices"):
        crop_and_resize(IMAGE, np.zeros((1, 4)), np.array([1]), (2, 2))
    with pytest.raises(ValueError, match="crop_size"):
        crop_and_resize(IMAGE, np.zeros((1, 4)), np.zeros(1, np.int64), (0, 2))
    assert crop_and_resize(IMAGE, np.zeros((0, 4)), np.zeros(0, np.int64), (2, 3)).shape == (0, 2, 3, 1)
