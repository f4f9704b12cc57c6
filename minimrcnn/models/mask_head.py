"""The mask branch of Mask R-CNN (He et al. 2017, section 3): heads, predictor, loss, inference.

Lesson: lessons/05_losses.ipynb (why a per-class sigmoid, not a softmax).

    pooled RoI features [R, C, 14, 14] --4 x (3x3 conv + ReLU)--> [R, C, 14, 14]
        --ConvTranspose 2x2 stride 2 + ReLU--> [R, C, 28, 28] --1x1 conv--> logits [R, K, 28, 28]

Training uses only the channel of each positive RoI's GT class: binary cross-entropy
with logits, averaged over R * 28 * 28, against SOFT targets (the GT mask RoI-aligned
into the proposal box, not binarised). Inference takes the sigmoid of the channel of
the predicted class.

Shape shorthand: R RoIs, C channels, K classes incl. background, M mask size (28).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minimrcnn.nn import Conv2d, Conv2dNormActivation, ConvTranspose2d, Module, Sequential
from minimrcnn.nn import functional as F
from minimrcnn.nn import init


class MaskRCNNHeads(Sequential):
    """4 x (3x3 conv pad 1 + ReLU, one Conv2dNormActivation each); keys ``{i}.0``; init
    kaiming_normal(fan_out, relu), zero bias."""

    def __init__(self, in_channels: int, layers=(256, 256, 256, 256), rng=None):
        rng = init.as_rng(rng)
        blocks, c = [], in_channels
        for width in layers:
            block = Conv2dNormActivation(c, width, 3, rng=rng)
            conv = block[0]
            conv.weight.data = init.kaiming_normal(conv.weight.shape, rng, mode="fan_out")
            conv.bias.data = np.zeros_like(conv.bias.data)
            blocks.append(block)
            c = width
        super().__init__(*blocks)


class MaskRCNNPredictor(Module):
    """conv5_mask (ConvTranspose2d 2x2 s2) + ReLU, mask_fcn_logits (1x1 conv to K).

    Weights kaiming_normal(fan_out, relu); biases keep torch's default init (as torchvision).
    """

    def __init__(self, in_channels: int, dim_reduced: int, num_classes: int, rng=None):
        super().__init__()
        rng = init.as_rng(rng)
        self.conv5_mask = ConvTranspose2d(in_channels, dim_reduced, 2, stride=2, rng=rng)
        self.mask_fcn_logits = Conv2d(dim_reduced, num_classes, 1, rng=rng)
        for layer in (self.conv5_mask, self.mask_fcn_logits):
            layer.weight.data = init.kaiming_normal(layer.weight.shape, rng, mode="fan_out")

    def forward(self, x):
        """x float[R, C, 14, 14] -> mask logits float[R, K, 28, 28]."""
        h, up_cache = self.conv5_mask.forward(x, relu=True)      # torchvision's relu5, in the same op
        logits, fcn_cache = self.mask_fcn_logits.forward(h)
        return logits, (up_cache, fcn_cache)

    def backward(self, dlogits, cache):
        up_cache, fcn_cache = cache
        d = self.mask_fcn_logits.backward(dlogits, fcn_cache)
        return self.conv5_mask.backward(d, up_cache)             # through the ReLU too


class MaskLossCache(NamedTuple):
    bce: tuple             # BCE cache on the selected channels
    labels: np.ndarray     # int64[R]: GT class of each positive RoI
    logits_shape: tuple    # (R, K, M, M)


def maskrcnn_loss_forward(mask_logits, labels, mask_targets):
    """BCE-with-logits mean over R*M*M on the GT-class channel.

    Args:
        mask_logits (float[R, K, M, M]), labels (int64[R]) in 1..K-1,
        mask_targets (float[R, M, M]): soft targets in [0, 1].
    Returns:
        loss (float), cache.  R == 0 is the caller's case (loss 0, zero gradient).
    """
    R = mask_logits.shape[0]
    selected = mask_logits[np.arange(R), labels]   # [R, M, M]
    loss, bce_cache = F.binary_cross_entropy_with_logits_forward(
        selected, mask_targets.astype(selected.dtype), reduction="mean")
    return float(loss), MaskLossCache(bce_cache, labels, mask_logits.shape)


def maskrcnn_loss_backward(dloss, cache: MaskLossCache):
    """-> dmask_logits float[R, K, M, M], zero except on each RoI's GT-class channel."""
    dselected = F.binary_cross_entropy_with_logits_backward(dloss, cache.bce)
    dlogits = np.zeros(cache.logits_shape, dtype=dselected.dtype)
    dlogits[np.arange(cache.logits_shape[0]), cache.labels] = dselected
    return dlogits


def maskrcnn_inference(mask_logits, labels):
    """sigmoid of the predicted class's channel: float[D, K, M, M], int64[D] -> float[D, 1, M, M]."""
    D = mask_logits.shape[0]
    return F.sigmoid(mask_logits[np.arange(D), labels])[:, None]
