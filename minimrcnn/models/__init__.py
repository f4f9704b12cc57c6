"""Mask R-CNN as stages with forward/backward: transform, backbone (ResNet + FPN), RPN, RoI heads.

    from minimrcnn.models import maskrcnn_shapes
    model = maskrcnn_shapes()            # the tiny preset, trains on a laptop CPU
    losses, cache = model(images, targets); model.backward(cache)
"""

from minimrcnn.models.backbone import BackboneWithFPN
from minimrcnn.models.fpn import FeaturePyramidNetwork, LastLevelMaxPool
from minimrcnn.models.mask_rcnn import LOSS_NAMES, MaskRCNN
from minimrcnn.models.presets import assemble_mask_rcnn, maskrcnn_resnet50_fpn, maskrcnn_shapes
from minimrcnn.models.resnet import BasicBlock, Bottleneck, ResNet
from minimrcnn.models.roi_heads import RoIHeads
from minimrcnn.models.rpn import RegionProposalNetwork, RPNHead
from minimrcnn.models.transform import GeneralizedRCNNTransform, ImageList
from minimrcnn.models.weights import load_weights, save_weights

__all__ = [
    "MaskRCNN", "maskrcnn_resnet50_fpn", "maskrcnn_shapes", "assemble_mask_rcnn", "LOSS_NAMES", "BackboneWithFPN",
    "FeaturePyramidNetwork", "LastLevelMaxPool", "ResNet", "BasicBlock", "Bottleneck", "RoIHeads",
    "RegionProposalNetwork", "RPNHead", "GeneralizedRCNNTransform", "ImageList",
    "load_weights", "save_weights",
]
