"""Non-maximum suppression (NMS): keep the best box of each cluster of overlapping boxes.

Greedy NMS, as in torchvision's CPU kernel: visit boxes by decreasing score; keep a box
unless a kept box overlaps it with IoU strictly greater than ``iou_threshold``.

    scores  0.9, 0.8, 0.7 for boxes A, B, C; IoU(A, B) = 0.8, IoU(A, C) = 0.1
    -> A kept, B suppressed by A, C kept: keep = [A, C]

Details that decide bit-exact agreement with torchvision:
* Ties in score are visited lowest index first (a stable sort of -scores).
* IoU is computed in the boxes' dtype and compared to the threshold as float64: an IoU
  of exactly 0.3 rounds to 0.300000012 in float32 and IS suppressed at 0.3.
* Suppression needs ``IoU > threshold``: IoU == threshold is kept. Two identical
  zero-area boxes have IoU 0/0 = NaN, which is never > threshold: both are kept.

``nms_reference`` is the readable twin (a Python loop over kept boxes, NumPy over the
rest); ``_nms_kernel`` is the Numba kernel. ``batched_nms`` runs NMS per category with
torchvision's two code paths (see its docstring).

Shape shorthand (docs/shapes.md): R boxes, k kept boxes.
Lesson: lessons/04_nms.ipynb.
"""

from __future__ import annotations

import numba
import numpy as np

from minimrcnn.ops._checks import came, check_boxes
from minimrcnn.runtime import reference_kernels_enabled

# torchvision (CPU) switches batched_nms to a per-class loop above this many coordinates.
_BATCHED_NMS_TRICK_MAX_NUMEL = 4000


def nms_reference(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Readable twin: torchvision's greedy loop; the IoU of one kept box against all
    later unsuppressed boxes is one NumPy expression.

    boxes (float[R, 4]), scores (float[R]) -> int64[k] kept indices by decreasing score.
    """
    order = np.argsort(-scores, kind="stable")    # decreasing score, ties: lower index first
    x1, y1, x2, y2 = (boxes[:, c] for c in range(4))
    areas = (x2 - x1) * (y2 - y1)                 # no +1, in the boxes' dtype
    suppressed = np.zeros(len(boxes), dtype=bool)
    keep = []
    for pos, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = order[pos + 1:]
        rest = rest[~suppressed[rest]]
        w = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0)
        h = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0)
        inter = w * h
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = inter / (areas[i] + areas[rest] - inter)
        # float64 comparison as in C++ (float promoted to double); NaN > thr is False.
        suppressed[rest[iou.astype(np.float64) > iou_threshold]] = True
    return np.array(keep, dtype=np.int64)


# error_model="numpy": 0/0 gives NaN as in torchvision (Numba's default would raise).
@numba.njit(cache=True, error_model="numpy")
def _nms_kernel(keep, x1, y1, x2, y2, areas, iou_threshold):
    """Fills keep[:k] with kept positions in the sorted arrays and returns k.

    Differs from the twin: the coordinates come already sorted by decreasing score, so
    the boxes after box i are the contiguous tails ``x1[i + 1:]`` etc.; the inner loop
    runs over those tails from index 0 without a branch (already-suppressed boxes are
    simply recomputed and OR-ed), which LLVM turns into SIMD code. Same arithmetic,
    same dtype, same comparison as the twin, so the same result bit for bit.
    """
    R = x1.shape[0]
    zero = x1[0] - x1[0]   # 0 in the boxes' dtype (a literal 0 would widen float32 to float64)
    suppressed = np.zeros(R, dtype=np.bool_)
    num_kept = 0
    # for each box by decreasing score
    for i in range(R):
        if suppressed[i]:
            continue
        keep[num_kept] = i
        num_kept += 1
        ax1, ay1, ax2, ay2, area_i = x1[i], y1[i], x2[i], y2[i], areas[i]
        # Tail views starting at 0: with a loop index that is provably >= 0 Numba
        # drops its negative-index wraparound and the loop vectorises.
        bx1, by1, bx2, by2 = x1[i + 1:], y1[i + 1:], x2[i + 1:], y2[i + 1:]
        area_j, suppressed_j = areas[i + 1:], suppressed[i + 1:]
        # for each lower-scoring box
        for j in range(R - i - 1):
            w = max(min(ax2, bx2[j]) - max(ax1, bx1[j]), zero)
            h = max(min(ay2, by2[j]) - max(ay1, by1[j]), zero)
            inter = w * h
            iou = inter / (area_i + area_j[j] - inter)
            # float32 IoU promoted to float64 as in C++ (explicitly: without JIT, NumPy
            # would compare an np.float32 with a Python float in float32); NaN stays kept
            suppressed_j[j] |= float(iou) > iou_threshold
    return num_kept


def _check_nms_inputs(boxes, scores, iou_threshold):
    """boxes float32/float64 [R, 4] finite (the kernel is compiled for those), scores numeric [R]."""
    boxes = check_boxes(boxes, "boxes")
    scores = np.asarray(scores)
    if scores.ndim != 1 or scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"scores must have shape [R] = [{boxes.shape[0]}] to match boxes, got {came(scores)}")
    if scores.dtype.kind not in "fiu":
        raise TypeError(f"scores must be a numeric array, got {came(scores, 'dtype')}")
    if scores.dtype.kind == "f" and np.isnan(scores).any():
        raise ValueError("scores must not contain NaN")
    if not np.isscalar(iou_threshold) or np.isnan(iou_threshold):
        raise ValueError(f"iou_threshold must be a float, got {iou_threshold!r}")
    if scores.dtype.kind != "f":
        scores = scores.astype(np.float64)   # so that -scores cannot wrap around
    return boxes, scores, float(iou_threshold)


def nms(boxes, scores, iou_threshold: float) -> np.ndarray:
    """Greedy NMS, as ``torchvision.ops.nms``.

    boxes (float[R, 4]): (x1, y1, x2, y2); IoU is computed in this dtype.
    scores (float[R]): higher is better.
    iou_threshold (float): suppress boxes whose IoU with a kept box is > this.
    Returns int64[k]: indices of the kept boxes, sorted by decreasing score.
    """
    boxes, scores, iou_threshold = _check_nms_inputs(boxes, scores, iou_threshold)
    if boxes.shape[0] == 0:
        return np.empty((0,), dtype=np.int64)
    if reference_kernels_enabled():
        return nms_reference(boxes, scores, iou_threshold)
    order = np.argsort(-scores, kind="stable")
    sorted_boxes = boxes[order]   # gather once: the kernel then reads contiguous memory
    x1, y1, x2, y2 = (np.ascontiguousarray(sorted_boxes[:, c]) for c in range(4))
    areas = (x2 - x1) * (y2 - y1)
    keep = np.empty(boxes.shape[0], dtype=np.int64)
    num_kept = _nms_kernel(keep, x1, y1, x2, y2, areas, iou_threshold)
    return order[keep[:num_kept]].astype(np.int64)


def batched_nms(boxes, scores, idxs, iou_threshold: float) -> np.ndarray:
    """NMS independently per category, as ``torchvision.ops.batched_nms`` (CPU), bit for bit.

    boxes (float[R, 4]), scores (float[R]), idxs (int64[R]): category of each box.
    Returns int64[k]: kept indices sorted by decreasing score.

    torchvision picks one of two paths, and so do we, because they can differ in the
    last bits:
    * ``boxes.size <= 4000`` (R <= 1000): the coordinate trick. Shift every box of
      category c by ``c * (boxes.max() + 1)`` so categories never overlap, then run one
      NMS. The shift is done in the boxes' dtype, so float32 coordinates lose precision.
    * otherwise: one NMS per category on the original coordinates, the kept indices
      merged in ascending order and then sorted by decreasing score.

    Limitations: on the per-class path torchvision's final sort is not stable, so
    boxes with exactly equal scores may come out in another order there (the kept
    set is the same); ours lists them by ascending index.
    """
    boxes, scores, iou_threshold = _check_nms_inputs(boxes, scores, iou_threshold)
    idxs = np.asarray(idxs)
    if idxs.shape != scores.shape:
        raise ValueError(f"idxs must have shape [R] = [{boxes.shape[0]}] to match boxes, got {came(idxs)}")
    if idxs.dtype.kind not in "iu":
        raise TypeError(f"idxs must be an integer array, got {came(idxs, 'dtype')}")
    if boxes.shape[0] == 0:
        return np.empty((0,), dtype=np.int64)
    if boxes.size > _BATCHED_NMS_TRICK_MAX_NUMEL:
        return _batched_nms_vanilla(boxes, scores, idxs, iou_threshold)
    return _batched_nms_coordinate_trick(boxes, scores, idxs, iou_threshold)


def _batched_nms_coordinate_trick(boxes, scores, idxs, iou_threshold):
    dtype = boxes.dtype.type
    max_coordinate = boxes.max()
    offsets = idxs.astype(dtype) * (max_coordinate + dtype(1))   # in the boxes' dtype, as torch
    boxes_for_nms = boxes + offsets[:, None]
    return nms(boxes_for_nms, scores, iou_threshold)


def _batched_nms_vanilla(boxes, scores, idxs, iou_threshold):
    keep_mask = np.zeros(boxes.shape[0], dtype=bool)
    for class_id in np.unique(idxs):   # ascending category ids
        curr_indices = np.nonzero(idxs == class_id)[0]
        curr_keep = nms(boxes[curr_indices], scores[curr_indices], iou_threshold)
        keep_mask[curr_indices[curr_keep]] = True
    keep = np.nonzero(keep_mask)[0]
    return keep[np.argsort(-scores[keep], kind="stable")].astype(np.int64)
