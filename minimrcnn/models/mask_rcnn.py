"""MaskRCNN: the whole pipeline, forward in pipeline order and backward in reverse.

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

Every stage keeps one contract (docs/architecture.md): ``forward`` returns its outputs,
its losses and a named cache; ``backward(dlosses, cache, dfeatures=None)`` takes the
loss seeds, adds the stage's gradient at the FPN features to ``dfeatures`` and returns
the sum as a dict keyed by level name ('0'..'3', 'pool').

The only randomness is the RPN's and the RoI heads' sampling of anchors and RoIs. It
draws from ``model.rng`` (a ``np.random.Generator``, seeded by the preset) unless an
``rng`` is passed to the call, which makes a step exactly repeatable.

Shape shorthand: N images, C channels, H, W, G ground-truth boxes, K classes, D detections.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minimrcnn.models.inspection import record, recording
from minimrcnn.models.transform import ImageList
from minimrcnn.nn import Module

LOSS_NAMES = ("loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg")


class MaskRCNNCache(NamedTuple):
    backbone: tuple   # BackboneCache
    rpn: tuple        # RPNCache
    roi_heads: tuple  # RoIHeadsCache


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

    def forward(self, images, targets=None, rng=None):
        """Train: (losses dict of 5 floats, MaskRCNNCache). Eval: list of N dicts boxes/labels/scores/masks.

        Args:
            images (list of float[3, H, W] in [0, 1] or uint8[H, W, 3]): sizes may differ; float32
                and float64 images are both cast to the weights' dtype.
            targets (list of dicts, training only): boxes float32[G, 4] xyxy pixels, labels
                int64[G] in 1..K-1, masks uint8[G, H, W].
            rng (np.random.Generator): sampling randomness for this call (default ``self.rng``).
        """
        if self.training:
            _check_training_targets(targets)
        rng = self.rng if rng is None else rng
        # images are cast to the weights' dtype: a float64 image runs through a float32 model
        weights_dtype = self.backbone.parameters()[0].data.dtype
        batch, targets, original_sizes = self.transform(images, targets if self.training else None, weights_dtype)
        features, backbone_cache = self.backbone.forward(batch.tensors)          # P2..P6
        record(images=batch.tensors, image_sizes=batch.image_sizes, targets=targets, features=features)
        proposals, rpn_losses, rpn_cache = self.rpn.forward(batch, features, targets, rng)
        detections, roi_losses, roi_cache = self.roi_heads.forward(
            features, proposals, batch.image_sizes, targets, rng)
        if not self.training:
            detections = self.transform.postprocess(detections, batch.image_sizes, original_sizes)
            record(detections=detections)
            return detections
        losses = {name: float({**roi_losses, **rpn_losses}[name]) for name in LOSS_NAMES}
        return losses, MaskRCNNCache(backbone_cache, rpn_cache, roi_cache)

    def backward(self, cache: MaskRCNNCache) -> None:
        """d(sum of the five losses) into every trainable Parameter.grad (accumulating with +=).

        The one backward without a ``dout``: the total is a scalar, the plain sum of the
        five losses, so d(total)/d(each loss) = 1. These unit seeds, ``dlosses``, are what
        each stage's backward takes in the place of ``dout``.
        """
        _check_backward_cache(cache)
        dlosses = dict.fromkeys(LOSS_NAMES, 1.0)
        # The RPN and the RoI heads both read the FPN outputs (no gradient flows through the
        # proposals that link them), so either may go first; each adds its share to the
        # gradient at the features in this fixed order: RPN, box branch, mask branch.
        dfeatures = self.rpn.backward(dlosses, cache.rpn)                          # '0'..'3', 'pool'
        dfeatures = self.roi_heads.backward(dlosses, cache.roi_heads, dfeatures)   # + '0'..'3'
        self.backbone.backward(dfeatures, cache.backbone)

    def inspect(self, images, targets=None, rng=None) -> dict:
        """One forward pass in the current mode, returning its intermediate arrays.

        The stages ``record`` them as they run (see models/inspection.py): the arrays of
        this very pass, not a recomputation. Keys: images, image_sizes, targets, features
        (P2..P6), anchors, num_anchors_per_level, objectness, rpn_box_deltas,
        rpn_proposals_before_nms, rpn_proposals, rpn_proposal_scores; in training also
        rpn_labels, rpn_regression_targets, rpn_sampled_inds, rpn_sampled_pos_inds,
        sampled_rois, sampled_labels, sampled_matched_idxs, sampled_regression_targets,
        class_logits, box_regression, mask_logits and mask_targets (when there are
        positives), losses; in eval class_probs, refined_boxes, detections_before_nms,
        mask_logits, detections.
        """
        with recording() as arrays:
            result = self.forward(images, targets, rng=rng)
        if self.training:
            arrays["losses"] = result[0]
        return arrays


def _check_training_targets(targets) -> None:
    """Training needs targets, each with masks: one clear error instead of a KeyError deep inside."""
    if targets is None:
        raise ValueError("targets: required in training mode (call model.eval() for inference)")
    for i, target in enumerate(targets):
        if isinstance(target, dict) and "masks" not in target:
            raise ValueError(f"targets[{i}]: missing field 'masks' (needed for the mask loss)")


__all__ = ["MaskRCNN", "ImageList", "LOSS_NAMES"]


def _check_backward_cache(cache) -> None:
    """``backward`` takes the cache of a training-mode forward; say so for anything else."""
    if isinstance(cache, MaskRCNNCache):
        return
    what = type(cache).__name__
    if cache is None:
        hint = "None"
    elif isinstance(cache, (list, tuple)) and cache and all(isinstance(d, dict) and "scores" in d for d in cache):
        hint = (f"a {what} of detections: the output of an eval-mode forward, which keeps no cache. "
                "Call model.train() before the forward whose losses you want to backpropagate")
    elif isinstance(cache, tuple) and len(cache) == 2 and isinstance(cache[1], MaskRCNNCache):
        hint = "the (losses, cache) pair itself: pass its second element"
    elif isinstance(cache, dict) and set(cache) <= set(LOSS_NAMES) | {"loss"}:
        hint = "the losses dict: pass the cache that came with it, the second element of model(images, targets)"
    else:
        hint = f"a {what}"
    raise TypeError("model.backward(cache) expects the MaskRCNNCache of a training-mode forward, "
                    f"as in `losses, cache = model(images, targets); model.backward(cache)`; got {hint}")
