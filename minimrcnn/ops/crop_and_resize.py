"""TensorFlow's crop_and_resize: one bilinear sample per output pixel (for contrast with RoIAlign).

tf.image.crop_and_resize places the crop_h x crop_w output pixels on a grid that spans
the box corner to corner, in a pixel model where the image's pixel centres sit at
0 .. H-1 in normalised units of 1/(H-1):

    in_y = y1 * (H-1) + y * (y2 - y1) * (H-1) / (crop_h - 1)      (crop_h > 1)
    in_y = 0.5 * (y1 + y2) * (H-1)                                (crop_h == 1)

and takes ONE bilinear sample there. RoIAlign instead averages several samples per bin
(a box filter before sampling), so a large box squeezed into a 7x7 grid aliases here and
not there. Samples outside [0, H-1] x [0, W-1] take ``extrapolation_value``.

Forward only, plain NumPy (it is for lessons/02_bilinear_sampling.ipynb, not the model).
Shape shorthand: N images, H, W, C (channels last, as TensorFlow), R boxes.
"""

from __future__ import annotations

import numpy as np

from minimrcnn.nn.functional._checks import pair
from minimrcnn.ops._checks import came, check_boxes


def _sample_positions(lo, hi, size, crop):
    """float[crop] sample coordinates along one axis for one box (normalised lo, hi)."""
    if crop > 1:
        scale = (hi - lo) * (size - 1) / (crop - 1)
        return lo * (size - 1) + np.arange(crop) * scale
    return np.array([0.5 * (lo + hi) * (size - 1)])


def crop_and_resize(image, boxes, box_indices, crop_size, extrapolation_value=0.0):
    """Bilinear crops with TensorFlow semantics.

    Args:
        image (float[N,H,W,C]): images, channels last.
        boxes (float[R,4]): (y1, x1, y2, x2) normalised to [0, 1] (y2 < y1 flips the crop).
        box_indices (int[R]): image of each box.
        crop_size ((crop_h, crop_w)): output size.
        extrapolation_value (float): value of samples outside the image.
    Returns:
        float32[R,crop_h,crop_w,C].
    """
    image = np.asarray(image)
    boxes = np.asarray(boxes, dtype=np.float64)
    box_indices = np.asarray(box_indices)
    if image.ndim != 4:
        raise ValueError(f"image must be float[N, H, W, C], got {came(image)}")
    if image.dtype.kind not in "fiu":
        raise TypeError(f"image must be a float or integer array, got {came(image, 'dtype')}")
    boxes = check_boxes(boxes, "boxes")           # (y1, x1, y2, x2), float64 here
    if box_indices.shape != (boxes.shape[0],) or (len(box_indices) and box_indices.dtype.kind not in "iu"):
        raise ValueError(f"box_indices must be int[{boxes.shape[0]}] (one per box), got {came(box_indices)} "
                         f"{came(box_indices, 'dtype')}")
    N, H, W, C = image.shape
    if len(box_indices) and (box_indices.min() < 0 or box_indices.max() >= N):
        raise ValueError(f"box_indices must be in [0, {N}), got values in "
                         f"[{box_indices.min()}, {box_indices.max()}]")
    crop_h, crop_w = pair(crop_size, "crop_size", 1)
    image = image.astype(np.float32)
    out = np.full((boxes.shape[0], crop_h, crop_w, C), extrapolation_value, dtype=np.float32)
    for r, (y1, x1, y2, x2) in enumerate(boxes):                     # for each box
        in_y = _sample_positions(y1, y2, H, crop_h).astype(np.float32)
        in_x = _sample_positions(x1, x2, W, crop_w).astype(np.float32)
        for y, sy in enumerate(in_y):                                # for each output row
            if not (0 <= sy <= H - 1):
                continue                                             # whole row extrapolated
            top, bottom = int(np.floor(sy)), int(np.ceil(sy))
            y_lerp = sy - top
            for x, sx in enumerate(in_x):                            # for each output column
                if not (0 <= sx <= W - 1):
                    continue
                left, right = int(np.floor(sx)), int(np.ceil(sx))
                x_lerp = sx - left
                img = image[box_indices[r]]
                top_row = img[top, left] + (img[top, right] - img[top, left]) * x_lerp
                bottom_row = img[bottom, left] + (img[bottom, right] - img[bottom, left]) * x_lerp
                out[r, y, x] = top_row + (bottom_row - top_row) * y_lerp
    return out
