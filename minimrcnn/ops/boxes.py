"""Box utilities with torchvision.ops names and semantics: area, IoU, clipping, conversion.

Boxes are ``(x1, y1, x2, y2)`` in float pixels. A box's width is ``x2 - x1`` with no
``+1``: the box [0, 0, 10, 10] covers 10 x 10 = 100 square pixels, so a box with
``x1 == x2`` has zero area. IoU (intersection over union, the overlap measure of
every detector since the PASCAL VOC evaluation) of two boxes is

    IoU = area(a & b) / (area(a) + area(b) - area(a & b))

e.g. [0, 0, 2, 2] and [1, 1, 3, 3] overlap in 1 pixel of 4 + 4 - 1 = 7: IoU = 1/7.
Two zero-area boxes give 0/0 = NaN, exactly as torchvision (NMS then keeps both).

``box_iou`` is the one hot loop here (the RPN compares every GT box with ~240k
anchors): ``box_iou_reference`` is the NumPy broadcasting twin, and
``_box_iou_kernel`` a Numba loop parallel over the rows (``_box_iou_kernel_serial``
for inputs too small to pay for threads).

Shape shorthand (docs/shapes.md): R1, R2 box counts of the two sets, R RoIs/boxes, G ground-truth
boxes (or masks), H, W mask height and width.
Lessons: lessons/03_anchors_and_box_coding.ipynb (IoU), lessons/04_nms.ipynb.
"""

from __future__ import annotations

import numba
import numpy as np

from minimrcnn.ops._checks import came, check_boxes
from minimrcnn.runtime import reference_kernels_enabled

# Below this many pairs the NumPy twin is as fast as the kernel (no thread start-up).
_KERNEL_MIN_PAIRS = 4096
# Above this many pairs (a few ms of work) the rows are split over threads.
_PARALLEL_MIN_PAIRS = 1 << 22


def _check_fmt(fmt: str) -> None:
    if fmt not in _FORMATS:
        raise ValueError(f"fmt must be one of {_FORMATS}, got {fmt!r}")


def box_area(boxes, fmt: str = "xyxy") -> np.ndarray:
    """Area of each box, ``(x2 - x1) * (y2 - y1)`` (no +1), as ``torchvision.ops.box_area``.

    boxes (float[R, 4]): (x1, y1, x2, y2), or (x, y, w, h) / (cx, cy, w, h) with ``fmt``
    "xywh" / "cxcywh", whose area is ``w * h``.
    Returns float[R] (the boxes' dtype).
    """
    _check_fmt(fmt)
    boxes = check_boxes(boxes, "boxes", allow_int=True)
    if fmt != "xyxy":
        return boxes[:, 2] * boxes[:, 3]
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou_reference(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """Readable twin of the IoU kernel: NumPy broadcasting, torchvision's formula line by line.

    boxes1 (float[R1, 4]), boxes2 (float[R2, 4]) -> float[R1, R2] in their dtype.
    """
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])   # [R1]
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])   # [R2]
    lt = np.maximum(boxes1[:, None, :2], boxes2[None, :, :2])   # [R1, R2, 2] top-left of the overlap
    rb = np.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])   # [R1, R2, 2] bottom-right
    wh = np.maximum(rb - lt, 0)                                 # no overlap -> width/height 0
    inter = wh[:, :, 0] * wh[:, :, 1]
    union = area1[:, None] + area2[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):        # 0/0 for two empty boxes -> NaN
        return inter / union


# error_model="numpy": 0/0 gives NaN as in torchvision (Numba's default would raise).
@numba.njit(cache=True, error_model="numpy")
def _box_iou_row(row, ax1, ay1, ax2, ay2, bx1, by1, bx2, by2, area_b):
    """IoU of one box a with every box of the second set (given as contiguous columns)."""
    zero = ax1 - ax1   # 0 in the boxes' dtype (a literal 0 would widen float32 to float64)
    area_a = (ax2 - ax1) * (ay2 - ay1)
    # for each box of the second set: a loop from 0 over contiguous arrays vectorises
    for j in range(bx1.shape[0]):
        w = max(min(ax2, bx2[j]) - max(ax1, bx1[j]), zero)
        h = max(min(ay2, by2[j]) - max(ay1, by1[j]), zero)
        inter = w * h
        row[j] = inter / (area_a + area_b[j] - inter)


@numba.njit(cache=True, error_model="numpy")
def _box_iou_kernel_serial(iou, boxes1, boxes2):
    """Fills iou[R1, R2], one row at a time (see ``_box_iou_kernel``)."""
    bx1, by1, bx2, by2 = boxes2[:, 0].copy(), boxes2[:, 1].copy(), boxes2[:, 2].copy(), boxes2[:, 3].copy()
    area_b = (bx2 - bx1) * (by2 - by1)
    # for each box of the first set (one output row)
    for i in range(boxes1.shape[0]):
        _box_iou_row(iou[i], boxes1[i, 0], boxes1[i, 1], boxes1[i, 2], boxes1[i, 3], bx1, by1, bx2, by2, area_b)


@numba.njit(cache=True, parallel=True, error_model="numpy")
def _box_iou_kernel(iou, boxes1, boxes2):
    """Fills iou[R1, R2]. Differs from the twin: no [R1, R2, 2] temporaries; the second set
    is first split into contiguous coordinate columns with precomputed areas, so the
    inner loop vectorises; rows run in parallel (each output row belongs to one
    iteration). Same body as ``_box_iou_kernel_serial``, which small inputs use
    because waking threads costs more than ~1M IoUs."""
    bx1, by1, bx2, by2 = boxes2[:, 0].copy(), boxes2[:, 1].copy(), boxes2[:, 2].copy(), boxes2[:, 3].copy()
    area_b = (bx2 - bx1) * (by2 - by1)
    # for each box of the first set (one output row), in parallel
    for i in numba.prange(boxes1.shape[0]):
        _box_iou_row(iou[i], boxes1[i, 0], boxes1[i, 1], boxes1[i, 2], boxes1[i, 3], bx1, by1, bx2, by2, area_b)


def box_iou(boxes1, boxes2, fmt: str = "xyxy") -> np.ndarray:
    """Pairwise IoU of two box sets, as ``torchvision.ops.box_iou``.

    boxes1 (float[R1, 4]), boxes2 (float[R2, 4]): (x1, y1, x2, y2), or in ``fmt`` "xywh" /
    "cxcywh" (converted to corners first, as torchvision does).
    Returns float[R1, R2]: IoU in [0, 1]; NaN where both boxes have zero area.
    float32/float64 in -> same dtype out; integer boxes -> float32 (as torch's int division).
    """
    _check_fmt(fmt)
    if fmt != "xyxy":
        boxes1 = box_convert(check_boxes(boxes1, "boxes1", allow_int=True), fmt, "xyxy")
        boxes2 = box_convert(check_boxes(boxes2, "boxes2", allow_int=True), fmt, "xyxy")
    boxes1 = check_boxes(boxes1, "boxes1", allow_int=True)
    boxes2 = check_boxes(boxes2, "boxes2", allow_int=True)
    R1, R2 = boxes1.shape[0], boxes2.shape[0]
    if boxes1.dtype.kind != "f" or boxes2.dtype.kind != "f":
        if boxes1.dtype.kind == "f" or boxes2.dtype.kind == "f":
            raise TypeError(f"boxes1 and boxes2 must both be float or both integer, "
                            f"got {boxes1.dtype} and {boxes2.dtype}")
        # Integer boxes: exact integer areas, then a float32 division like torch's int / int.
        a, b = boxes1.astype(np.int64), boxes2.astype(np.int64)
        area1, area2 = box_area(a), box_area(b)
        wh = np.maximum(np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2]), 0)
        inter = wh[:, :, 0] * wh[:, :, 1]
        union = area1[:, None] + area2[None, :] - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            return inter.astype(np.float32) / union.astype(np.float32)
    dtype = np.result_type(boxes1.dtype, boxes2.dtype)
    boxes1 = np.ascontiguousarray(boxes1, dtype=dtype)
    boxes2 = np.ascontiguousarray(boxes2, dtype=dtype)
    if reference_kernels_enabled() or R1 * R2 < _KERNEL_MIN_PAIRS:
        return box_iou_reference(boxes1, boxes2)
    iou = np.empty((R1, R2), dtype=dtype)
    if R1 * R2 >= _PARALLEL_MIN_PAIRS and R1 > 1:
        _box_iou_kernel(iou, boxes1, boxes2)
    else:
        _box_iou_kernel_serial(iou, boxes1, boxes2)
    return iou


def clip_boxes_to_image(boxes, size) -> np.ndarray:
    """Clamp x into [0, w] and y into [0, h] (upper bound w, not w - 1), as torchvision.

    boxes (float[..., 4]): (x1, y1, x2, y2); size: (h, w) of the image.
    Returns a new array of the same shape and dtype.
    Example: [[-5, -3, 700, 900]] in a (480, 640) image -> [[0, 0, 640, 480]].
    """
    boxes = np.asarray(boxes)
    if boxes.ndim < 1 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must have shape [..., 4], got {came(boxes)}")
    if len(size) != 2:
        raise ValueError(f"size must be (h, w), got {size!r}")
    h, w = size
    out = boxes.copy()
    out[..., 0::2] = np.clip(boxes[..., 0::2], 0, w)
    out[..., 1::2] = np.clip(boxes[..., 1::2], 0, h)
    return out


def remove_small_boxes(boxes, min_size: float) -> np.ndarray:
    """Indices of the boxes whose width and height are both ``>= min_size``.

    boxes (float[R, 4]): (x1, y1, x2, y2). Returns int64[k], ascending.
    Example: [[0,0,1,5], [0,0,.99,5], [0,0,5,1]] with min_size 1.0 -> [0, 2].
    """
    boxes = check_boxes(boxes, "boxes", allow_int=True)
    ws = boxes[:, 2] - boxes[:, 0]
    hs = boxes[:, 3] - boxes[:, 1]
    keep = (ws >= min_size) & (hs >= min_size)
    return np.nonzero(keep)[0].astype(np.int64)


_FORMATS = ("xyxy", "xywh", "cxcywh")


def box_convert(boxes, in_fmt: str, out_fmt: str) -> np.ndarray:
    """Convert boxes between 'xyxy', 'xywh' (corner + size) and 'cxcywh' (centre + size).

    boxes (float[..., 4]) in ``in_fmt``. Returns a new float[..., 4] in ``out_fmt``.
    Goes through xyxy like torchvision, so round trips are exact up to float rounding.
    """
    boxes = np.asarray(boxes)
    if in_fmt not in _FORMATS or out_fmt not in _FORMATS:
        raise ValueError(f"in_fmt and out_fmt must be one of {_FORMATS}, got {in_fmt!r} and {out_fmt!r}")
    if boxes.ndim < 1 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must have shape [..., 4], got {came(boxes)}")
    if in_fmt == out_fmt:
        return boxes.copy()
    a, b, c, d = (boxes[..., k] for k in range(4))
    if in_fmt == "xywh":        # (x, y, w, h) -> (x1, y1, x2, y2)
        a, b, c, d = a, b, a + c, b + d
    elif in_fmt == "cxcywh":    # (cx, cy, w, h) -> (x1, y1, x2, y2)
        a, b, c, d = a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d
    if out_fmt == "xywh":
        a, b, c, d = a, b, c - a, d - b
    elif out_fmt == "cxcywh":
        a, b, c, d = (a + c) / 2, (b + d) / 2, c - a, d - b
    return np.stack((a, b, c, d), axis=-1)


def masks_to_boxes(masks) -> np.ndarray:
    """Tight box around the nonzero pixels of each mask, as ``torchvision.ops.masks_to_boxes``.

    masks (any[G, H, W]): nonzero = inside.
    Returns float32[G, 4]: (x1, y1, x2, y2) with x2/y2 the last nonzero column/row
    index (NOT +1: a single pixel at (3, 5) gives [5, 3, 5, 3]). An all-zero mask gives
    [0, 0, 0, 0] (torchvision's choice).
    """
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must have shape [G, H, W], got {came(masks)}")
    G, H, W = masks.shape
    boxes = np.zeros((G, 4), dtype=np.float32)
    if masks.size == 0:
        return boxes
    rows = (masks != 0).any(axis=2)   # [G, H]: which rows hold a pixel
    cols = (masks != 0).any(axis=1)   # [G, W]
    nonempty = rows.any(axis=1)
    # argmax finds the first True; on the reversed array it finds the last one.
    boxes[:, 0] = cols.argmax(axis=1)
    boxes[:, 1] = rows.argmax(axis=1)
    boxes[:, 2] = (W - 1) - cols[:, ::-1].argmax(axis=1)
    boxes[:, 3] = (H - 1) - rows[:, ::-1].argmax(axis=1)
    boxes[~nonempty] = 0
    return boxes
