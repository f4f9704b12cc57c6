"""Box coding: boxes <-> regression deltas relative to anchors or proposals.

Faster R-CNN eq. 2 (after R-CNN, Girshick et al. 2014, appendix C): a target box g is
described relative to a reference box p by

    t_x = w_x * (g_cx - p_cx) / p_w        t_w = w_w * log(g_w / p_w)
    t_y = w_y * (g_cy - p_cy) / p_h        t_h = w_h * log(g_h / p_h)

with centres cx = x1 + 0.5 * w and widths w = x2 - x1 (no +1). The weights
(w_x, w_y, w_w, w_h) are (1, 1, 1, 1) in the RPN and (10, 10, 5, 5) in the box head,
which scales the targets to roughly unit variance. Decoding inverts this and clamps
dt_w, dt_h from above at log(1000 / 16) so exp() cannot overflow on a wild prediction
(a box at most 62.5x its reference). This is the only place where boxes are not xyxy.

Shape shorthand: R boxes, K classes (decode predicts one box per class).
Lesson: lessons/03_anchors_and_box_coding.ipynb.
"""

from __future__ import annotations

import math

import numpy as np

from minimrcnn.ops._checks import came, check_boxes


class BoxCoder:
    """Encode boxes as deltas to reference boxes and decode them back, as torchvision's ``BoxCoder``.

    weights: (w_x, w_y, w_w, w_h) multipliers of the four deltas.
    bbox_xform_clip: upper bound of dt_w and dt_h in ``decode``.
    """

    def __init__(self, weights, bbox_xform_clip: float = math.log(1000.0 / 16)):
        weights = tuple(float(w) for w in weights)
        if len(weights) != 4:
            raise ValueError(f"weights must be 4 numbers (wx, wy, ww, wh), got {weights}")
        self.weights = weights
        self.bbox_xform_clip = float(bbox_xform_clip)

    def __repr__(self) -> str:
        return f"BoxCoder(weights={self.weights}, bbox_xform_clip={self.bbox_xform_clip})"

    def encode(self, gt_boxes, proposals) -> np.ndarray:
        """Regression targets that move each proposal onto its matched GT box.

        gt_boxes (float[R, 4]): matched ground-truth box of each proposal, xyxy.
        proposals (float[R, 4]): reference boxes (anchors or proposals), xyxy.
        Returns float[R, 4]: (dx, dy, dw, dh) in the inputs' dtype.
        """
        gt_boxes = check_boxes(gt_boxes, "gt_boxes")
        proposals = check_boxes(proposals, "proposals")
        if gt_boxes.shape[0] != proposals.shape[0]:
            raise ValueError(f"gt_boxes and proposals must have the same R, got {came(gt_boxes)} and {came(proposals)}")
        wx, wy, ww, wh = self.weights
        ex_widths = proposals[:, 2] - proposals[:, 0]
        ex_heights = proposals[:, 3] - proposals[:, 1]
        ex_ctr_x = proposals[:, 0] + 0.5 * ex_widths
        ex_ctr_y = proposals[:, 1] + 0.5 * ex_heights
        gt_widths = gt_boxes[:, 2] - gt_boxes[:, 0]
        gt_heights = gt_boxes[:, 3] - gt_boxes[:, 1]
        gt_ctr_x = gt_boxes[:, 0] + 0.5 * gt_widths
        gt_ctr_y = gt_boxes[:, 1] + 0.5 * gt_heights
        # Faster R-CNN eq. 2 (weighted); a degenerate box gives inf/NaN, as in torchvision.
        with np.errstate(divide="ignore", invalid="ignore"):
            targets_dx = wx * (gt_ctr_x - ex_ctr_x) / ex_widths
            targets_dy = wy * (gt_ctr_y - ex_ctr_y) / ex_heights
            targets_dw = ww * np.log(gt_widths / ex_widths)
            targets_dh = wh * np.log(gt_heights / ex_heights)
        return np.stack((targets_dx, targets_dy, targets_dw, targets_dh), axis=1)

    def decode(self, deltas, proposals) -> np.ndarray:
        """Apply predicted deltas to reference boxes.

        deltas (float[R, 4*K]): (dx, dy, dw, dh) per class, class-major: column c*4 + k.
        proposals (float[R, 4]): reference boxes, xyxy; cast to the deltas' dtype.
        Returns float[R, K, 4]: decoded boxes, xyxy (not clipped to the image).
        """
        deltas = check_boxes(deltas, "deltas", columns=None)
        proposals = check_boxes(proposals, "proposals")
        R = deltas.shape[0]
        if proposals.shape[0] != R:
            raise ValueError(f"proposals must have shape [R, 4] = [{R}, 4] to match deltas, got {came(proposals)}")
        proposals = proposals.astype(deltas.dtype, copy=False)
        wx, wy, ww, wh = self.weights
        widths = proposals[:, 2] - proposals[:, 0]
        heights = proposals[:, 3] - proposals[:, 1]
        ctr_x = proposals[:, 0] + 0.5 * widths
        ctr_y = proposals[:, 1] + 0.5 * heights
        dx = deltas[:, 0::4] / wx                                  # [R, K]
        dy = deltas[:, 1::4] / wy
        # Clamp only from above: a tiny box is harmless, a huge one overflows exp().
        dw = np.minimum(deltas[:, 2::4] / ww, self.bbox_xform_clip)
        dh = np.minimum(deltas[:, 3::4] / wh, self.bbox_xform_clip)
        pred_ctr_x = dx * widths[:, None] + ctr_x[:, None]
        pred_ctr_y = dy * heights[:, None] + ctr_y[:, None]
        pred_w = np.exp(dw) * widths[:, None]
        pred_h = np.exp(dh) * heights[:, None]
        # (R, K) x 4 -> (R, K, 4)
        return np.stack((pred_ctr_x - 0.5 * pred_w, pred_ctr_y - 0.5 * pred_h,
                         pred_ctr_x + 0.5 * pred_w, pred_ctr_y + 0.5 * pred_h), axis=2)
