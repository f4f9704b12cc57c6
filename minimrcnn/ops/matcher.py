"""Matcher: assign each predicted box (anchor or proposal) to a ground-truth box or to none.

Given the IoU of every GT box with every prediction, each prediction takes the GT it
overlaps most, and is then labelled by that best IoU:

    IoU >= high_threshold               -> the GT index (foreground)
    low_threshold <= IoU < high         -> BETWEEN_THRESHOLDS (-2, ignored in training)
    IoU < low_threshold                 -> BELOW_LOW_THRESHOLD (-1, background)

With ``allow_low_quality_matches`` (the RPN, Faster R-CNN sec. 3.1.2) a GT box that no
prediction reaches ``high_threshold`` with still gets its best predictions: for each
GT, every prediction tied at that GT's best IoU gets back its own argmax GT (which may
be a different GT if the prediction overlaps another one even more). As in
torchvision, a GT with best IoU 0 would restore every prediction with IoU 0 to it.

Shape shorthand: G ground-truth boxes, R predictions.
Lesson: lessons/03_anchors_and_box_coding.ipynb.
"""

from __future__ import annotations

import numpy as np


class Matcher:
    """IoU-threshold matcher, as torchvision's ``models.detection._utils.Matcher``.

    high_threshold: best IoU at or above this -> matched to that GT.
    low_threshold: best IoU below this -> BELOW_LOW_THRESHOLD (-1).
    allow_low_quality_matches: also match each GT's best predictions (ties included).
    """

    BELOW_LOW_THRESHOLD = -1
    BETWEEN_THRESHOLDS = -2

    def __init__(self, high_threshold: float, low_threshold: float, allow_low_quality_matches: bool = False):
        if low_threshold > high_threshold:
            raise ValueError(f"low_threshold must be <= high_threshold, got {low_threshold} > {high_threshold}")
        self.high_threshold = high_threshold
        self.low_threshold = low_threshold
        self.allow_low_quality_matches = allow_low_quality_matches

    def __repr__(self) -> str:
        return (f"Matcher(high_threshold={self.high_threshold}, low_threshold={self.low_threshold}, "
                f"allow_low_quality_matches={self.allow_low_quality_matches})")

    def __call__(self, quality) -> np.ndarray:
        """quality (float[G, R]): IoU of each GT box (row) with each prediction (column).

        Returns int64[R]: matched GT index in [0, G), or -1 / -2 (see the module docstring).
        """
        quality = np.asarray(quality)
        if quality.ndim != 2:
            raise ValueError(f"quality must have shape [G, R], got {quality.shape}")
        if quality.size == 0:
            # torchvision raises too: callers handle images without GT (or proposals) themselves.
            if quality.shape[0] == 0:
                raise ValueError("No ground-truth boxes available for one of the images during training "
                                 f"(quality has shape {quality.shape})")
            raise ValueError(f"No proposal boxes available for one of the images during training "
                             f"(quality has shape {quality.shape})")
        if quality.dtype.kind == "f" and np.isnan(quality).any():
            raise ValueError("quality must not contain NaN (a zero-area GT box or prediction?)")
        # Best GT per prediction; argmax returns the first (lowest) GT index on ties.
        matches = quality.argmax(axis=0)                      # [R]
        matched_vals = quality[matches, np.arange(quality.shape[1])]
        all_matches = matches.copy()
        below_low_threshold = matched_vals < self.low_threshold
        between_thresholds = (matched_vals >= self.low_threshold) & (matched_vals < self.high_threshold)
        matches[below_low_threshold] = self.BELOW_LOW_THRESHOLD
        matches[between_thresholds] = self.BETWEEN_THRESHOLDS
        if self.allow_low_quality_matches:
            self._set_low_quality_matches(matches, all_matches, quality)
        return matches.astype(np.int64)

    @staticmethod
    def _set_low_quality_matches(matches, all_matches, quality) -> None:
        """Restore, in place, the argmax GT of every prediction that is some GT's best (ties included)."""
        highest_quality_foreach_gt = quality.max(axis=1)                      # [G]
        _, pred_inds_to_update = np.nonzero(quality == highest_quality_foreach_gt[:, None])
        matches[pred_inds_to_update] = all_matches[pred_inds_to_update]
