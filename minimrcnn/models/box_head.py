"""The box branch of Fast R-CNN: TwoMLPHead, FastRCNNPredictor and fastrcnn_loss.

    pooled RoI features [R, C, 7, 7] --flatten (C, H, W order)--> fc6 + ReLU --> fc7 + ReLU
        --> cls_score [R, K]  and  bbox_pred [R, 4K] (class-major: column c*4 + coord)

``fastrcnn_loss``: cross-entropy averaged over the R sampled RoIs, plus smooth L1
(beta 1/9) on the deltas of each positive RoI's GT class, summed and divided by R
(all sampled, not only the positives), as torchvision.

Shape shorthand: R RoIs, R_pos positive RoIs, C channels, P pooled size (7), K classes incl.
background; ``rep`` is ``representation_size`` (1024 in torchvision, 256 in the shapes preset).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minimrcnn.nn import Linear, Module
from minimrcnn.nn import functional as F


class TwoMLPHead(Module):
    """fc6 (C*P*P -> rep) + ReLU, fc7 (rep -> rep) + ReLU; torch's default Linear init."""

    def __init__(self, in_channels: int, representation_size: int, rng=None):
        super().__init__()
        self.fc6 = Linear(in_channels, representation_size, rng=rng)
        self.fc7 = Linear(representation_size, representation_size, rng=rng)

    def forward(self, x):
        """x float[R, C, P, P] -> float[R, rep], cache."""
        flat, flat_cache = F.flatten_forward(x, 1)
        h, fc6_cache = self.fc6.forward(flat)
        h, relu6_cache = F.relu_forward(h)
        h, fc7_cache = self.fc7.forward(h)
        h, relu7_cache = F.relu_forward(h)
        return h, (flat_cache, fc6_cache, relu6_cache, fc7_cache, relu7_cache)

    def backward(self, dout, cache):
        flat_cache, fc6_cache, relu6_cache, fc7_cache, relu7_cache = cache
        d = self.fc7.backward(F.relu_backward(dout, relu7_cache), fc7_cache)
        d = self.fc6.backward(F.relu_backward(d, relu6_cache), fc6_cache)
        return F.flatten_backward(d, flat_cache)


class FastRCNNPredictor(Module):
    """cls_score (rep -> K) and bbox_pred (rep -> 4K, class-major)."""

    def __init__(self, in_channels: int, num_classes: int, rng=None):
        super().__init__()
        self.cls_score = Linear(in_channels, num_classes, rng=rng)
        self.bbox_pred = Linear(in_channels, num_classes * 4, rng=rng)

    def forward(self, x):
        """x float[R, rep] -> class_logits float[R, K], box_regression float[R, 4K], cache."""
        scores, cls_cache = self.cls_score.forward(x)
        deltas, box_cache = self.bbox_pred.forward(x)
        return scores, deltas, (cls_cache, box_cache)

    def backward(self, dscores, ddeltas, cache):
        cls_cache, box_cache = cache
        # x feeds both linears: its gradient is the sum.
        return self.cls_score.backward(dscores, cls_cache) + self.bbox_pred.backward(ddeltas, box_cache)


class FastRCNNLossCache(NamedTuple):
    ce: tuple               # cross-entropy cache
    smooth_l1: tuple        # smooth L1 cache over the positives' GT-class deltas
    pos: np.ndarray         # int64[R_pos]: rows of the positive RoIs
    pos_labels: np.ndarray  # int64[R_pos]: their GT classes
    box_shape: tuple        # (R, 4K)


def fastrcnn_loss_forward(class_logits, box_regression, labels, regression_targets):
    """Fast R-CNN classification and box losses.

    Args:
        class_logits (float[R, K]), box_regression (float[R, 4K]),
        labels (int64[R]): 0 background, 1..K-1 class, regression_targets (float[R, 4]).
    Returns:
        loss_classifier (float), loss_box_reg (float), cache
    """
    R = class_logits.shape[0]
    loss_classifier, ce_cache = F.cross_entropy_forward(class_logits, labels)
    pos = np.where(labels > 0)[0]
    pos_labels = labels[pos]
    # The 4 deltas of the GT class: columns label*4 .. label*4+3.
    pred = box_regression.reshape(R, -1, 4)[pos, pos_labels]
    box_sum, l1_cache = F.smooth_l1_loss_forward(pred, regression_targets[pos].astype(pred.dtype),
                                                 beta=1.0 / 9, reduction="sum")
    loss_box_reg = box_sum / R  # normalised by ALL sampled RoIs, not by the positives
    cache = FastRCNNLossCache(ce_cache, l1_cache, pos, pos_labels, box_regression.shape)
    return float(loss_classifier), float(loss_box_reg), cache


def fastrcnn_loss_backward(dloss_classifier, dloss_box_reg, cache: FastRCNNLossCache):
    """-> dclass_logits float[R, K], dbox_regression float[R, 4K] (zero outside the GT-class slices)."""
    dclass_logits = F.cross_entropy_backward(dloss_classifier, cache.ce)
    R = cache.box_shape[0]
    dbox = np.zeros((R, cache.box_shape[1] // 4, 4), dtype=dclass_logits.dtype)
    # loss_box_reg = sum / R, so d(sum) = dloss / R.
    dbox[cache.pos, cache.pos_labels] = F.smooth_l1_loss_backward(dloss_box_reg / R, cache.smooth_l1)
    return dclass_logits, dbox.reshape(cache.box_shape)
