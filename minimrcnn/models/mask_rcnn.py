"""MaskRCNN: the whole pipeline, forward in pipeline order and backward in exact reverse.

Lesson: lessons/08_inspect_a_model.ipynb (``inspect`` and the gradient walk).

    images --transform--> batch --backbone (ResNet + FPN)--> features P2..P6
        --rpn--> proposals --roi_heads (box + mask branches)--> detections --postprocess-->

Training::

    model.train()
    losses, cache = model(images, targets)   # five floats, torchvision's names
    model.zero_grad(); model.backward(cache) # d(sum of the five losses) into Parameter.grad

Inference::

    model.eval()
    outputs = model(images)   # per image: boxes, labels, scores, masks[D, 1, H, W]

``model.inspect(images, targets=None)`` returns the intermediate arrays of one real
forward pass (recorded as it runs, not recomputed).

The only randomness is the RPN's and the RoI heads' sampling of anchors and RoIs. It
draws from ``model.rng`` (a ``np.random.Generator``, seeded by the preset) unless an
``rng`` is passed to the call, which makes a step exactly repeatable.

Shape shorthand: N images, C channels, H, W, L levels, D detections.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minimrcnn.models.transform import ImageList
from minimrcnn.nn import Module

LOSS_NAMES = ("loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg")


class MaskRCNNCache(NamedTuple):
    backbone: tuple
    rpn: tuple
    roi_heads: tuple
    feature_shapes: dict   # name -> shape of each FPN output
    dtype: np.dtype


class MaskRCNN(Module):
    """Mask R-CNN (He et al. 2017) with torchvision's module names and semantics.

    Args:
        transform (GeneralizedRCNNTransform), backbone (BackboneWithFPN),
        rpn (RegionProposalNetwork), roi_heads (RoIHeads).
        num_classes (int): K, including background 0.
        seed (int): seeds ``self.rng`` for the samplers.
    """

    def __init__(self, transform, backbone, rpn, roi_heads, num_classes: int, seed: int = 0):
        super().__init__()
        self.transform = transform
        self.backbone = backbone
        self.rpn = rpn
        self.roi_heads = roi_heads
        self.num_classes = num_classes
        self.rng = np.random.default_rng(seed)

    def forward(self, images, targets=None, rng=None, trace=None):
        """Train: (losses dict of 5 floats, cache). Eval: list of N dicts boxes/labels/scores/masks.

        Args:
            images (list of float32[3, H, W] in [0, 1] or uint8[H, W, 3]): sizes may differ.
            targets (list of dicts, training only): boxes float32[G, 4] xyxy pixels, labels
                int64[G] in 1..K-1, masks uint8[G, H, W].
            rng (np.random.Generator): sampling randomness for this call (default ``self.rng``).
            trace (dict): if given, filled with intermediate arrays (see ``inspect``).
        """
        if self.training:
            if targets is None:
                raise ValueError("targets: required in training mode (call model.eval() for inference)")
            for i, t in enumerate(targets):
                if isinstance(t, dict) and "masks" not in t:
                    raise ValueError(f"targets[{i}]: missing field 'masks' (needed for the mask loss)")
        rng = self.rng if rng is None else rng
        batch, targets, original_sizes = self.transform(images, targets if self.training else None)
        if trace is not None:
            trace.update(images=batch.tensors, image_sizes=batch.image_sizes, targets=targets)
        features, backbone_cache = self.backbone.forward(batch.tensors)          # P2..P6
        if trace is not None:
            trace["features"] = features
        proposals, rpn_losses, rpn_cache = self.rpn.forward(batch, features, targets, rng, trace)
        detections, roi_losses, roi_cache = self.roi_heads.forward(
            features, proposals, batch.image_sizes, targets, rng, trace)
        if not self.training:
            detections = self.transform.postprocess(detections, batch.image_sizes, original_sizes)
            if trace is not None:
                trace["detections"] = detections
            return detections
        losses = {name: float({**roi_losses, **rpn_losses}[name]) for name in LOSS_NAMES}
        feature_shapes = {name: f.shape for name, f in features.items()}
        dtype = batch.tensors.dtype
        return losses, MaskRCNNCache(backbone_cache, rpn_cache, roi_cache, feature_shapes, dtype)

    def backward(self, cache: MaskRCNNCache) -> None:
        """d(sum of the five losses) into every trainable Parameter.grad (accumulating with +=).

        The stages run in exact reverse of forward: roi_heads (mask, then box), rpn,
        backbone. The unit seeds mean every loss has weight 1 in the total.
        """
        dmask = self.roi_heads.backward_mask(cache.roi_heads, dloss_mask=1.0)    # '0'..'3' or None
        dbox = self.roi_heads.backward_box(cache.roi_heads, dloss_classifier=1.0, dloss_box_reg=1.0)
        drpn = self.rpn.backward(cache.rpn, dloss_objectness=1.0, dloss_box_reg=1.0)  # one per level
        dfeatures = {}
        for l, (name, shape) in enumerate(cache.feature_shapes.items()):
            # Each FPN output feeds the RPN (all levels), the box pooler and the mask pooler
            # ('0'..'3' only), so its gradient is the sum of the three branches' gradients.
            d = drpn[l]
            if name in dbox:
                d = d + dbox[name]
            if dmask is not None and name in dmask:
                d = d + dmask[name]
            dfeatures[name] = d
        self.backbone.backward(dfeatures, cache.backbone)

    def inspect(self, images, targets=None, rng=None) -> dict:
        """One forward pass in the current mode, returning its intermediate arrays.

        Keys include: images, image_sizes, features (P2..P6), anchors, objectness,
        rpn_box_deltas, rpn_proposals_before_nms, rpn_proposals, (train) rpn_labels,
        sampled_rois, sampled_labels, sampled_regression_targets, class_logits,
        box_regression, mask_logits, mask_targets, losses; (eval) class_probs,
        refined_boxes, detections_before_nms, mask_logits, detections.
        """
        trace = {}
        result = self.forward(images, targets, rng=rng, trace=trace)
        if self.training:
            trace["losses"] = result[0]
        return trace


__all__ = ["MaskRCNN", "ImageList", "LOSS_NAMES"]
