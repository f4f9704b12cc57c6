"""Ready-made Mask R-CNN networks: torchvision's ResNet-50-FPN and the tiny shapes preset.

Both are assembled from the same parts with plain constructor calls, so reading one
function shows every hyper-parameter of the network. Initialisations follow
torchvision (each module's constructor applies its own), drawn from one
``np.random.default_rng(seed)``.
"""

from __future__ import annotations

import numpy as np

from minimrcnn.models.backbone import BackboneWithFPN
from minimrcnn.models.box_head import FastRCNNPredictor, TwoMLPHead
from minimrcnn.models.mask_head import MaskRCNNHeads, MaskRCNNPredictor
from minimrcnn.models.mask_rcnn import MaskRCNN
from minimrcnn.models.resnet import BasicBlock, Bottleneck, ResNet
from minimrcnn.models.roi_heads import RoIHeads
from minimrcnn.models.rpn import RegionProposalNetwork, RPNHead
from minimrcnn.models.transform import GeneralizedRCNNTransform
from minimrcnn.ops import AnchorGenerator, BalancedPositiveNegativeSampler, BoxCoder, Matcher, MultiScaleRoIAlign


def _check_num_classes(num_classes) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2 (background plus at least one class), "
                         f"got {num_classes!r}")


def assemble_mask_rcnn(body, in_channels_list, out_channels, anchor_sizes, rpn_pre_nms, rpn_post_nms,
                       box_batch_size_per_image, representation_size, mask_layers, num_classes,
                       min_size, max_size, seed, rng):
    """Everything after the ResNet body, identical for both presets but for the numbers.

    Public so that a smaller or different network (a test's few-thousand-parameter model,
    another body) is built by the same code as the presets.

    Args:
        body (ResNet): the backbone body; ``in_channels_list`` its C2..C5 widths.
        out_channels (int): FPN width. anchor_sizes (5 ints): one per level P2..P6.
        rpn_pre_nms, rpn_post_nms (dict "training"/"testing" -> int): RPN top-n per level / image.
        box_batch_size_per_image (int): RoIs sampled per training image.
        representation_size (int): TwoMLPHead width. mask_layers (ints): mask head widths.
        num_classes (int): K including background. min_size, max_size (int): the transform's.
        seed (int): ``model.rng``'s seed. rng (np.random.Generator): initialisation.
    """
    backbone = BackboneWithFPN(body, in_channels_list, out_channels, rng=rng)
    anchor_generator = AnchorGenerator(tuple((s,) for s in anchor_sizes), ((0.5, 1.0, 2.0),) * len(anchor_sizes))
    rpn = RegionProposalNetwork(
        anchor_generator,
        RPNHead(out_channels, anchor_generator.num_anchors_per_location()[0], rng=rng),
        BoxCoder((1.0, 1.0, 1.0, 1.0)),
        Matcher(0.7, 0.3, allow_low_quality_matches=True),
        BalancedPositiveNegativeSampler(256, 0.5),
        pre_nms_top_n=rpn_pre_nms, post_nms_top_n=rpn_post_nms, nms_thresh=0.7)
    roi_heads = RoIHeads(
        box_roi_pool=MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2),
        box_head=TwoMLPHead(out_channels * 7 * 7, representation_size, rng=rng),
        box_predictor=FastRCNNPredictor(representation_size, num_classes, rng=rng),
        fg_iou_thresh=0.5, bg_iou_thresh=0.5,
        batch_size_per_image=box_batch_size_per_image, positive_fraction=0.25,
        bbox_reg_weights=(10.0, 10.0, 5.0, 5.0),
        score_thresh=0.05, nms_thresh=0.5, detections_per_img=100,
        mask_roi_pool=MultiScaleRoIAlign(["0", "1", "2", "3"], 14, 2),
        mask_head=MaskRCNNHeads(out_channels, mask_layers, rng=rng),
        mask_predictor=MaskRCNNPredictor(mask_layers[-1], mask_layers[-1], num_classes, rng=rng))
    transform = GeneralizedRCNNTransform(min_size, max_size, num_classes=num_classes)
    return MaskRCNN(transform, backbone, rpn, roi_heads, num_classes=num_classes, seed=seed)


def maskrcnn_resnet50_fpn(num_classes: int = 91, norm: str = "frozen_bn", seed: int = 0,
                          trainable_backbone_layers: int | None = None) -> MaskRCNN:
    """torchvision's ``maskrcnn_resnet50_fpn``: 307 state_dict keys (360 with norm="bn").

    Args:
        num_classes (int): K including background (91 for COCO).
        norm (str): "frozen_bn" (the pretrained layout), "bn" (torchvision's weights=None) or "gn".
        seed (int): initialisation and sampling seed.
        trainable_backbone_layers (int or None): 0..5; default 3 for "frozen_bn", else 5.
    """
    _check_num_classes(num_classes)
    if trainable_backbone_layers is None:
        trainable_backbone_layers = 3 if norm == "frozen_bn" else 5
    rng = np.random.default_rng(seed)
    body = ResNet(Bottleneck, [3, 4, 6, 3], widths=(64, 128, 256, 512), norm=norm, num_groups=32,
                  trainable_layers=trainable_backbone_layers, rng=rng)
    return assemble_mask_rcnn(body, [256, 512, 1024, 2048], 256, anchor_sizes=(32, 64, 128, 256, 512),
                              rpn_pre_nms={"training": 2000, "testing": 1000},
                              rpn_post_nms={"training": 2000, "testing": 1000},
                              box_batch_size_per_image=512, representation_size=1024, mask_layers=(256, 256, 256, 256),
                              num_classes=num_classes, min_size=800, max_size=1333, seed=seed, rng=rng)


def maskrcnn_shapes(num_classes: int = 4, seed: int = 0, box_batch_size_per_image: int = 64) -> MaskRCNN:
    """The tiny preset of docs/shapes-preset.md: ResNet-18-like GN(4) body 16..128, FPN 64.

    102 state_dict keys, about 1.94 M parameters, 128 x 128 input.

    Args:
        box_batch_size_per_image (int): RoIs the box head samples per training image, a
            quarter of them positive at most (torchvision's argument of the same name; 512 in
            its COCO model). A training setting only: the weights do not depend on it. 64 is
            also ``TrainConfig().box_batch_size_per_image``, the recipe the lesson asset was
            trained with (a test keeps the two equal).
    """
    _check_num_classes(num_classes)
    rng = np.random.default_rng(seed)
    body = ResNet(BasicBlock, [2, 2, 2, 2], widths=(16, 32, 64, 128), norm="gn", num_groups=4,
                  trainable_layers=5, rng=rng)
    return assemble_mask_rcnn(body, [16, 32, 64, 128], 64, anchor_sizes=(8, 16, 32, 64, 128),
                              rpn_pre_nms={"training": 1000, "testing": 500},
                              rpn_post_nms={"training": 500, "testing": 250},
                              box_batch_size_per_image=box_batch_size_per_image, representation_size=256, mask_layers=(64, 64, 64, 64),
                              num_classes=num_classes, min_size=128, max_size=128, seed=seed, rng=rng)
