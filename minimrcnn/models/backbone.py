"""BackboneWithFPN: the ResNet body followed by the FPN, as torchvision's ``backbone_utils``.

``backbone.body`` returns C2..C5 ('0'..'3'); ``backbone.fpn`` turns them into
P2..P6 ('0', '1', '2', '3', 'pool') with ``out_channels`` channels each.

Several stages read these features (the RPN all five levels, both RoI poolers
'0'..'3'), so the gradient at each level is the sum of theirs: ``add_feature_grads``
is that sum, the one place where the stages' gradients meet.

Shape shorthand: N images, C channels, H_l, W_l size of level l.
"""

from __future__ import annotations

from typing import NamedTuple

from minimrcnn.models.fpn import FeaturePyramidNetwork
from minimrcnn.models.resnet import ResNet
from minimrcnn.nn import Module


def add_feature_grads(dfeatures: dict, grads: dict) -> dict:
    """dfeatures + grads, level by level, as a new dict; a level only one side has is copied.

    Args:
        dfeatures, grads (dict name -> float[N, C, H_l, W_l]): gradients at the FPN outputs.
    A stage adds its gradient to the sum the stages before it left: float32 addition is
    not associative, so this fixed order is what keeps training bit-for-bit repeatable.
    """
    total = dict(dfeatures)
    for name, grad in grads.items():
        total[name] = total[name] + grad if name in total else grad
    return total


class BackboneCache(NamedTuple):
    body: tuple
    fpn: tuple


class BackboneWithFPN(Module):
    """body (ResNet) + fpn (FeaturePyramidNetwork); ``out_channels`` is the FPN width."""

    def __init__(self, body: ResNet, in_channels_list, out_channels: int, rng=None):
        super().__init__()
        self.body = body
        self.fpn = FeaturePyramidNetwork(in_channels_list, out_channels, rng=rng)
        self.out_channels = out_channels

    def forward(self, images):
        """images float[N, 3, Hpad, Wpad] -> (OrderedDict '0'..'3', 'pool' float[N, C, H_l, W_l], cache)."""
        c_features, body_cache = self.body.forward(images)
        p_features, fpn_cache = self.fpn.forward(c_features)
        return p_features, BackboneCache(body_cache, fpn_cache)

    def backward(self, dfeatures: dict, cache: BackboneCache) -> None:
        """dfeatures (dict '0'..'3', 'pool' float[N, C, H_l, W_l]) -> parameter grads of the FPN
        and the body (no image grad, so it returns None)."""
        dc_features = self.fpn.backward(dfeatures, cache.fpn)
        self.body.backward(dc_features, cache.body)
