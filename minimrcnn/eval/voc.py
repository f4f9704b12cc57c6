"""Per-image VOC-style AP, as matterport Mask R-CNN's `utils.compute_ap`, to contrast with COCO AP.

matterport's recipe for one image: sort predictions by score; each prediction in
turn takes the GT with the highest *mask* IoU that is not yet matched, has the same
class and IoU >= threshold; precision/recall along the ranked list, precision made
monotone, AP = area under that step curve (all recall points, not 101 levels).
Unlike COCO: classes are pooled into one curve, one image at a time, no crowd or
area handling, and the result is usually averaged over images ("mAP").

Reproduced quirks of the original (so numbers agree with it):
  * a GT matched by the prediction ranked first (index 0) still looks unmatched
    (`gt_match[j] > 0`), so a later prediction can match it again, recall can pass 1
    and the "AP" can exceed 1 (a duplicate of a perfect first detection gives 2.0);
  * the candidate GTs are scanned in descending IoU and the scan stops at the first
    IoU below the threshold, skipping GTs of another class on the way;
  * ties in scores are ordered by `np.argsort(scores)[::-1]`.

Shape shorthand: G ground-truth instances, D detections, H, W image size.
"""

from __future__ import annotations

import numpy as np


def _mask_overlaps(pred_masks: np.ndarray, gt_masks: np.ndarray) -> np.ndarray:
    """float[D, G] IoU of masks thresholded at 0.5 (matterport compute_overlaps_masks)."""
    if len(pred_masks) == 0 or len(gt_masks) == 0:
        return np.zeros((len(pred_masks), len(gt_masks)))
    pred = (pred_masks.reshape(len(pred_masks), -1) > 0.5).astype(np.float32)
    gt = (gt_masks.reshape(len(gt_masks), -1) > 0.5).astype(np.float32)
    inter = pred @ gt.T
    union = pred.sum(1)[:, None] + gt.sum(1)[None, :] - inter
    return inter / union


def per_image_ap(gt_boxes, gt_labels, gt_masks, pred_boxes, pred_labels, pred_scores, pred_masks,
                 iou_threshold: float = 0.5) -> float:
    """matterport's compute_ap for one image.

    Args:
        gt_boxes float[G, 4], gt_labels int[G], gt_masks uint8[G, H, W];
        pred_boxes float[D, 4], pred_labels int[D], pred_scores float[D],
        pred_masks float[D, H, W] or float[D, 1, H, W] (probabilities or 0/1).
        Boxes only serve, as in matterport, to drop all-zero padding rows.
    Returns:
        AP in [0, 1]. matterport returns NaN when there is no GT; here G = 0 raises ValueError.
    """
    gt_boxes, pred_boxes = np.asarray(gt_boxes).reshape(-1, 4), np.asarray(pred_boxes).reshape(-1, 4)
    gt_masks, pred_masks = np.asarray(gt_masks), np.asarray(pred_masks)
    if pred_masks.ndim == 4:
        pred_masks = pred_masks[:, 0]
    # Drop zero-padding rows (matterport trim_zeros).
    gt_keep = ~np.all(gt_boxes == 0, axis=1)
    pred_keep = ~np.all(pred_boxes == 0, axis=1)
    gt_labels, gt_masks = np.asarray(gt_labels)[gt_keep], gt_masks[gt_keep]
    pred_labels, pred_scores = np.asarray(pred_labels)[pred_keep], np.asarray(pred_scores)[pred_keep]
    pred_masks = pred_masks[pred_keep]
    if len(gt_labels) == 0:
        raise ValueError("per_image_ap needs at least one GT (recall is undefined without GT)")
    order = np.argsort(pred_scores)[::-1]
    pred_labels, pred_masks = pred_labels[order], pred_masks[order]
    overlaps = _mask_overlaps(pred_masks, gt_masks)  # (D, G)
    pred_match = -np.ones(len(pred_labels))
    gt_match = -np.ones(len(gt_labels))
    for i in range(len(pred_labels)):            # for each prediction, best score first
        for j in np.argsort(overlaps[i])[::-1]:  # for each GT, highest IoU first
            if gt_match[j] > 0:                  # sic: index 0 counts as unmatched
                continue
            if overlaps[i, j] < iou_threshold:
                break
            if pred_labels[i] == gt_labels[j]:
                gt_match[j], pred_match[i] = i, j
                break
    # Precision and recall after each prediction, padded with (0, 0) and (1, 0).
    hits = np.cumsum(pred_match > -1)
    precisions = np.concatenate([[0], hits / (np.arange(len(pred_match)) + 1), [0]])
    recalls = np.concatenate([[0], hits.astype(np.float32) / len(gt_match), [1]])
    precisions = np.maximum.accumulate(precisions[::-1])[::-1]  # monotone, as VOC
    steps = np.where(recalls[:-1] != recalls[1:])[0] + 1
    return float(np.sum((recalls[steps] - recalls[steps - 1]) * precisions[steps]))
