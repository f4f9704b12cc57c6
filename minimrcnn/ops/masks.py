"""Mask targets (image -> RoI) and mask pasting (RoI -> image) for the Mask R-CNN branch.

Training: ``project_masks_on_boxes`` cuts each positive proposal's matched GT mask out
with RoIAlign (28 x 28, adaptive sampling, aligned=False). The targets are soft values in
[0, 1], not binarised (torchvision; Detectron binarises).

Inference: ``paste_masks_in_image`` undoes it approximately: pad the 28 x 28 probability
map to 30 x 30 with zeros (so the edge fades out instead of being cut), grow the box by
30/28 to match, round the box to whole pixels (truncation toward zero, inclusive end),
resize bilinearly (align_corners=False; torch's formulas, the one copy in
nn/functional/interpolate.py) and paste it, clipped to the image.
Example: box (10.0, 20.0, 38.0, 48.0), side 28 -> expanded side 30 around centre
(24, 34): (9, 19, 39, 49) -> a 31 x 31 paste. Semantics: docs/torchvision-parity.md sec. 10.

Shape shorthand: G GT masks of an image, R RoIs, M mask size (28), D detections,
H, W image size.
"""

from __future__ import annotations

import numba
import numpy as np

from minimrcnn.nn.functional.interpolate import axis_sources, bilinear_source
from minimrcnn.ops._checks import came, check_boxes
from minimrcnn.ops.roi_align import roi_align
from minimrcnn.runtime import reference_kernels_enabled


def project_masks_on_boxes(gt_masks, boxes, matched_idxs, M=28):
    """Mask targets: each RoI's matched GT mask resampled to M x M with RoIAlign.

    Args:
        gt_masks (uint8 or float[G,H,W]): GT instance masks of one image.
        boxes (float[R,4]): proposals (x1, y1, x2, y2) in the same pixels as the masks.
        matched_idxs (int64[R]): index of the GT matched to each proposal.
        M (int): output size.
    Returns:
        float32[R,M,M] soft targets in [0, 1] (float64 if boxes are float64, as torchvision).
    """
    gt_masks = np.asarray(gt_masks)
    boxes = check_boxes(boxes, "boxes", allow_int=True)
    matched_idxs = np.asarray(matched_idxs)
    if gt_masks.ndim != 3:
        raise ValueError(f"gt_masks must have shape [G, H, W], got {came(gt_masks)}")
    if matched_idxs.shape != (boxes.shape[0],):
        raise ValueError(f"matched_idxs must be int64[{boxes.shape[0]}] (one per box), got {came(matched_idxs)}")
    dtype = np.float64 if boxes.dtype == np.float64 else np.float32
    rois = np.concatenate([matched_idxs[:, None].astype(dtype), boxes.astype(dtype)], axis=1)
    # [G,H,W] -> [G,1,H,W]: the GT index plays the role of RoIAlign's batch index.
    masks = gt_masks[:, None].astype(dtype)
    return roi_align(masks, rois, (M, M), spatial_scale=1.0, sampling_ratio=-1,
                     aligned=False)[:, 0]


def expand_boxes_for_paste(boxes, M, padding=1):
    """int64[D,4]: boxes grown by (M + 2*padding) / M about their centres (float32 math),
    then truncated toward zero, as torchvision's expand_boxes(...).to(int64)."""
    boxes = np.asarray(boxes, dtype=np.float32)
    scale = np.float32((M + 2 * padding) / M)
    half = np.float32(0.5)
    w_half = (boxes[:, 2] - boxes[:, 0]) * half * scale
    h_half = (boxes[:, 3] - boxes[:, 1]) * half * scale
    x_c = (boxes[:, 2] + boxes[:, 0]) * half
    y_c = (boxes[:, 3] + boxes[:, 1]) * half
    expanded = np.stack([x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half], axis=1)
    return np.trunc(expanded).astype(np.int64)


# --------------------------------------------------------------------------------------
# Reference twin
# --------------------------------------------------------------------------------------

def paste_masks_in_image_reference(masks_padded, boxes_int, image_shape):
    """Readable paste: masks_padded float32[D,M+2,M+2], boxes_int int64[D,4] -> float32[D,H,W]."""
    H, W = image_shape
    D, Mp, _ = masks_padded.shape
    out = np.zeros((D, H, W), dtype=np.float32)
    for d in range(D):                                               # for each detection
        x1, y1, x2, y2 = (int(v) for v in boxes_int[d])
        w, h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)              # inclusive end (+1)
        # Bilinear resize Mp x Mp -> h x w (torch's formulas, float32), rows then columns.
        y_lo, y_hi, hy0, hy1 = axis_sources(Mp, h, "bilinear", np.float32)
        x_lo, x_hi, wx0, wx1 = axis_sources(Mp, w, "bilinear", np.float32)
        m = masks_padded[d]
        top = m[y_lo][:, x_lo] * wx0 + m[y_lo][:, x_hi] * wx1       # float32[h,w], row y_lo
        bottom = m[y_hi][:, x_lo] * wx0 + m[y_hi][:, x_hi] * wx1
        resized = top * hy0[:, None] + bottom * hy1[:, None]
        # Paste, clipped to the image.
        px0, px1 = max(x1, 0), min(x2 + 1, W)
        py0, py1 = max(y1, 0), min(y2 + 1, H)
        if px1 > px0 and py1 > py0:
            out[d, py0:py1, px0:px1] = resized[py0 - y1:py1 - y1, px0 - x1:px1 - x1]
    return out


# --------------------------------------------------------------------------------------
# Numba kernel
# --------------------------------------------------------------------------------------

@numba.njit(cache=True, parallel=True)
def _paste_masks_kernel(out, masks_padded, boxes_int):
    """out float32[D,H,W] (zeroed): resize-and-paste fused, only for pixels inside the image.

    Differs from the twin: computes each pasted pixel directly instead of resizing the
    whole box first; parallel over detections, each owns out[d].
    """
    D, H, W = out.shape
    Mp = masks_padded.shape[1]
    dtype = masks_padded.dtype.type
    for d in numba.prange(D):                                        # for each detection
        x1, y1, x2, y2 = boxes_int[d, 0], boxes_int[d, 1], boxes_int[d, 2], boxes_int[d, 3]
        w = max(x2 - x1 + 1, 1)
        h = max(y2 - y1 + 1, 1)
        for y in range(max(y1, 0), min(y2 + 1, H)):                  # for each pasted row
            y_lo, y_hi, hy0, hy1 = bilinear_source(y - y1, Mp, h, dtype)
            for x in range(max(x1, 0), min(x2 + 1, W)):              # for each pasted column
                x_lo, x_hi, wx0, wx1 = bilinear_source(x - x1, Mp, w, dtype)
                top = masks_padded[d, y_lo, x_lo] * wx0 + masks_padded[d, y_lo, x_hi] * wx1
                bottom = masks_padded[d, y_hi, x_lo] * wx0 + masks_padded[d, y_hi, x_hi] * wx1
                out[d, y, x] = top * hy0 + bottom * hy1


def paste_masks_in_image(masks, boxes, image_shape, padding=1):
    """Paste M x M mask probabilities into full images (torchvision's paste_masks_in_image).

    Args:
        masks (float[D,1,M,M]): per-detection mask probabilities.
        boxes (float[D,4]): detections (x1, y1, x2, y2) in the output image's pixels.
        image_shape ((H, W)): output image size.
        padding (int): zero border added to the masks (the box grows by (M+2p)/M).
    Returns:
        float32[D,1,H,W] probabilities, 0 outside each (expanded) box. No threshold.
    """
    masks = np.asarray(masks)
    boxes = np.asarray(boxes)
    if masks.ndim != 4 or masks.shape[1] != 1 or masks.shape[2] != masks.shape[3]:
        raise ValueError(f"masks must be float[D, 1, M, M], got {came(masks)}")
    boxes = check_boxes(boxes, "boxes", allow_int=True)
    if boxes.shape[0] != masks.shape[0]:
        raise ValueError(f"boxes must have shape [{masks.shape[0]}, 4] (one per mask), got {came(boxes)}")
    H, W = (int(v) for v in image_shape)
    D, M = masks.shape[0], masks.shape[-1]
    if D == 0:
        return np.zeros((0, 1, H, W), dtype=np.float32)
    # [D,1,M,M] -> zero-padded float32[D, M+2p, M+2p]
    p = int(padding)
    masks_padded = np.pad(masks[:, 0].astype(np.float32), ((0, 0), (p, p), (p, p)))
    boxes_int = expand_boxes_for_paste(boxes, M, p)
    if reference_kernels_enabled():
        out = paste_masks_in_image_reference(masks_padded, boxes_int, (H, W))
    else:
        out = np.zeros((D, H, W), dtype=np.float32)
        _paste_masks_kernel(out, masks_padded, boxes_int)
    return out[:, None]
