"""One clear error for bad dtypes: float16 (and other dtypes the Numba kernels lack) is refused
up front with a TypeError that names the argument, what was expected and what came, for
every public op that takes boxes or feature maps -- also for inputs large enough to reach
the kernels (issue 11: float16 boxes used to crash inside Numba with NotImplementedError)."""

import numpy as np
import pytest

from minimrcnn.ops import BoxCoder, box_area, box_iou, paste_masks_in_image, project_masks_on_boxes
from minimrcnn.ops import remove_small_boxes, batched_nms
from minimrcnn.ops.crop_and_resize import crop_and_resize
from minimrcnn.ops.nms import nms
from minimrcnn.ops.roi_align import roi_align
from minimrcnn.ops.roi_pool import roi_pool


def _boxes(n, dtype, seed=0):
    xy = np.random.default_rng(seed).uniform(0, 100, (n, 2))
    return np.concatenate([xy, xy + 10], axis=1).astype(dtype)


B16 = _boxes(3000, np.float16)            # > the kernels' size thresholds
B32 = _boxes(3000, np.float32)
SCORES = np.linspace(0, 1, 3000, dtype=np.float32)
X16 = np.zeros((1, 2, 8, 8), np.float16)


@pytest.mark.parametrize("call, error, message", [
    (lambda: nms(B16, SCORES, 0.5), TypeError, "boxes must be float32 or float64, got dtype float16"),
    (lambda: batched_nms(B16, SCORES, np.zeros(3000, np.int64), 0.5), TypeError,
     "boxes must be float32 or float64, got dtype float16"),
    (lambda: box_iou(B16, B32), TypeError, "boxes1 must be float32, float64 or integer, got dtype float16"),
    (lambda: box_iou(B32, B16), TypeError, "boxes2 must be float32, float64 or integer, got dtype float16"),
    (lambda: box_area(B16), TypeError, "boxes must be float32, float64 or integer, got dtype float16"),
    (lambda: remove_small_boxes(B16, 1.0), TypeError, "boxes must be float32, float64 or integer, got dtype float16"),
    (lambda: BoxCoder((1, 1, 1, 1)).encode(B16, B32), TypeError, "gt_boxes must be float32 or float64, got dtype float16"),
    (lambda: BoxCoder((1, 1, 1, 1)).decode(B16, B32), TypeError, "deltas must be float32 or float64, got dtype float16"),
    (lambda: roi_align(X16, [B32[:5]], 2), TypeError, "input must be float32 or float64, got dtype float16"),
    (lambda: roi_pool(X16, [B32[:5]], 2), TypeError, "input must be float32 or float64, got dtype float16"),
    (lambda: paste_masks_in_image(np.ones((5, 1, 4, 4), np.float32), B16[:5], (20, 20)), TypeError,
     "boxes must be float32, float64 or integer, got dtype float16"),
    (lambda: project_masks_on_boxes(np.ones((1, 8, 8), np.uint8), B16[:2], np.zeros(2, np.int64)), TypeError,
     "boxes must be float32, float64 or integer, got dtype float16"),
    (lambda: nms(B32.astype(bool), SCORES, 0.5), TypeError, "boxes must be float32 or float64, got dtype bool"),
    (lambda: nms(B32, SCORES.astype(complex), 0.5), TypeError, "scores must be a numeric array, got dtype complex128"),
    (lambda: box_iou(np.zeros(4), B32), ValueError, r"boxes1 must have shape \[R, 4\], got shape \(4,\)"),
    (lambda: box_iou(np.float32(1), B32), ValueError, r"boxes1 must have shape \[R, 4\], got shape \(\)"),
    (lambda: BoxCoder((1, 1, 1, 1)).decode(np.zeros((2, 0), np.float32), B32[:2]), ValueError,
     r"deltas must have shape \[R, 4\*K\], got shape \(2, 0\)"),
    (lambda: crop_and_resize(np.zeros((1, 8, 8, 1)), np.zeros((1, 4)), np.zeros(1, np.int64), (0, 2)), ValueError,
     r"crop_size must be an int >= 1 or a pair of them, got \(0, 2\)"),
    (lambda: roi_align(np.zeros((1, 2, 8, 8)), np.zeros((1, 5), bool), 2), TypeError,
     "boxes must be a float or integer array, got dtype bool"),
])
def test_bad_dtypes_and_shapes_raise_one_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_float32_boxes_of_the_same_size_still_work():
    assert nms(B32, SCORES, 0.5).dtype == np.int64
    assert box_iou(B32, B32[:10]).shape == (3000, 10)
