"""torchvision networks built exactly like minimrcnn's presets, to load converted weights into.

    import torch
    from minimrcnn.interop import torchvision_model
    model = torchvision_model("shapes", num_classes=4)
    model.load_state_dict(torch.load("model.pth", weights_only=True))

``torchvision_model(preset, num_classes)`` returns torchvision's ``MaskRCNN`` with the same
modules, key names, shapes and hyper-parameters (anchor sizes, RPN top-n, image size, heads) as
``minimrcnn.models.maskrcnn_shapes()`` or ``maskrcnn_resnet50_fpn()``, so that the ``.pth`` that
``minimrcnn convert model.npz model.pth`` writes loads with ``strict=True`` and predicts the same
detections (tests/models/test_torch_parity_model.py). torchvision's own
``maskrcnn_resnet50_fpn(num_classes=4)`` is a different network from the shapes preset (ResNet-50
and FPN 256 against a ResNet-18-like body 16..128 with GroupNorm and FPN 64), which is why its
``load_state_dict`` refuses the shapes weights.

torch and torchvision are imported inside the functions only: minimrcnn never needs them.
``preset_of_weights`` (no torch) tells which preset a weights dict belongs to.
"""

from __future__ import annotations

PRESETS = ("shapes", "resnet50_fpn")


def _import_torchvision():
    try:
        import torch
        import torchvision
    except ImportError:
        raise ImportError("building the torchvision model needs PyTorch and torchvision "
                          "(pip install torch torchvision); minimrcnn itself never needs them") from None
    return torch, torchvision


def _shapes_body(torch, torchvision):
    """torchvision's ResNet layout with BasicBlocks [2, 2, 2, 2], widths 16..128 and GroupNorm(4)."""
    from torchvision.models.resnet import BasicBlock

    nn = torch.nn

    def norm(channels):
        return nn.GroupNorm(4, channels)

    body = nn.Module()
    body.conv1 = nn.Conv2d(3, 16, 7, 2, 3, bias=False)
    body.bn1 = norm(16)
    body.relu = nn.ReLU(inplace=True)
    body.maxpool = nn.MaxPool2d(3, 2, 1)
    inplanes = 16
    for i, (width, stride) in enumerate(zip((16, 32, 64, 128), (1, 2, 2, 2))):
        down = None
        if stride != 1 or inplanes != width:
            down = nn.Sequential(nn.Conv2d(inplanes, width, 1, stride, bias=False), norm(width))
        blocks = [BasicBlock(inplanes, width, stride, down, norm_layer=norm),
                  BasicBlock(width, width, norm_layer=norm)]
        setattr(body, f"layer{i + 1}", nn.Sequential(*blocks))
        inplanes = width
    return body


def _shapes(num_classes: int, **kwargs):
    torch, torchvision = _import_torchvision()
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor

    # the numbers of minimrcnn.models.presets.maskrcnn_shapes, one for one
    backbone = BackboneWithFPN(_shapes_body(torch, torchvision),
                               {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"}, [16, 32, 64, 128], 64)
    options = dict(min_size=128, max_size=128,
                   rpn_anchor_generator=AnchorGenerator(((8,), (16,), (32,), (64,), (128,)), ((0.5, 1.0, 2.0),) * 5),
                   rpn_pre_nms_top_n_train=1000, rpn_pre_nms_top_n_test=500,
                   rpn_post_nms_top_n_train=500, rpn_post_nms_top_n_test=250, box_batch_size_per_image=128,
                   box_head=TwoMLPHead(64 * 7 * 7, 256), box_predictor=FastRCNNPredictor(256, num_classes),
                   mask_head=MaskRCNNHeads(64, (64, 64, 64, 64), 1),
                   mask_predictor=MaskRCNNPredictor(64, 64, num_classes))
    options.update(kwargs)
    return MaskRCNN(backbone, num_classes=None, **options)


def _resnet50_fpn(num_classes: int, norm: str = "frozen_bn", trainable_backbone_layers: int | None = None, **kwargs):
    torch, torchvision = _import_torchvision()
    from torchvision.models import resnet50
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.ops.misc import FrozenBatchNorm2d

    layers = {"frozen_bn": FrozenBatchNorm2d, "bn": torch.nn.BatchNorm2d,
              "gn": lambda channels: torch.nn.GroupNorm(32, channels)}
    if norm not in layers:
        raise ValueError(f"norm must be one of {sorted(layers)}, got {norm!r}")
    if trainable_backbone_layers is None:      # as minimrcnn's preset and torchvision's builder
        trainable_backbone_layers = 3 if norm == "frozen_bn" else 5
    body = resnet50(weights=None, norm_layer=layers[norm])
    return MaskRCNN(_resnet_fpn_extractor(body, trainable_backbone_layers), num_classes=num_classes, **kwargs)


def torchvision_model(preset: str = "shapes", num_classes: int = 4, **kwargs):
    """torchvision's MaskRCNN built exactly as a minimrcnn preset (untrained; load weights into it).

    Args:
        preset (str): "shapes" (``maskrcnn_shapes()``) or "resnet50_fpn" (``maskrcnn_resnet50_fpn()``).
        num_classes (int): K including background, as the weights' ``cls_score`` rows.
        **kwargs: for "resnet50_fpn", ``norm`` ("frozen_bn", "bn", "gn") and
            ``trainable_backbone_layers`` as in the minimrcnn preset; any other keyword goes to
            torchvision's ``MaskRCNN`` (e.g. ``min_size``, ``box_score_thresh``).
    Returns:
        torchvision.models.detection.MaskRCNN in training mode, float32.
    """
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2 (background included), got {num_classes!r}")
    if preset == "shapes":
        return _shapes(num_classes, **kwargs)
    return _resnet50_fpn(num_classes, **kwargs)


def preset_of_weights(state) -> tuple[str, dict]:
    """(preset, keyword arguments) of ``torchvision_model`` that fit a weights dict (arrays or tensors).

    The ResNet-50 body has Bottleneck blocks (``conv3``); its norm layers are told apart by
    ``running_mean`` (BatchNorm) and ``num_batches_tracked`` (trainable BatchNorm, not frozen).
    """
    key = "roi_heads.box_predictor.cls_score.weight"
    if key not in state or len(state[key].shape) != 2:
        raise ValueError(f"the weights have no 2-D {key}: not Mask R-CNN weights with torchvision's key names")
    kwargs = {"num_classes": int(state[key].shape[0])}
    if "backbone.body.layer1.0.conv3.weight" not in state:
        return "shapes", kwargs
    if "backbone.body.bn1.running_mean" not in state:
        kwargs["norm"] = "gn"
    elif "backbone.body.bn1.num_batches_tracked" in state:
        kwargs["norm"] = "bn"
    return "resnet50_fpn", kwargs


def loading_lines(pth_path: str, preset: str, kwargs: dict) -> list[str]:
    """The two Python lines that load a converted .pth into torchvision (printed by ``convert``)."""
    args = "".join(f", {k}={v!r}" for k, v in kwargs.items())
    return ["import torch; from minimrcnn.interop import torchvision_model",
            f"model = torchvision_model({preset!r}{args}); "
            f"model.load_state_dict(torch.load({pth_path!r}, weights_only=True))"]


# ----------------------------------------------------------------------------- references/detection
# torchvision's references/detection/train.py: its defaults, which its --resume dict must fit
REFERENCES_DEFAULTS = dict(lr=0.02, momentum=0.9, weight_decay=1e-4, lr_steps=(16, 22), lr_gamma=0.1)


def references_checkpoint(in_npz: str, out_pth: str, lr: float = 0.02, momentum: float = 0.9,
                          weight_decay: float = 1e-4, lr_steps=(16, 22), lr_gamma: float = 0.1) -> dict:
    """Write the dict that torchvision's references/detection/train.py ``--resume`` loads.

    {"model": state_dict, "optimizer": SGD state, "lr_scheduler": MultiStepLR state, "epoch": -1}:
    the script then starts at epoch -1 + 1 = 0. Its optimizer is built as the script builds it
    (SGD over the parameters that require grad), so ``optimizer.load_state_dict`` accepts it;
    ``--resume`` then *replaces* the script's --lr, --momentum, --weight-decay and --lr-steps by
    the values stored here, which is why they are arguments of this function. Everything in it is
    a tensor, number or list: ``torch.load(..., weights_only=True)`` reads it.

    The script builds ``maskrcnn_resnet50_fpn`` with trainable BatchNorm when it gets no
    pretrained weights (its default), so ResNet-50 weights go into that layout; shapes-preset
    weights need the one-line patch of docs/graduate.md.

    Returns:
        {"preset", "kwargs" (of torchvision_model), "trainable" (parameter count in the optimizer)}.
    """
    torch, _ = _import_torchvision()
    import numpy as np

    from minimrcnn.io import atomic_write
    from minimrcnn.models.weights import read_weights, remap_legacy_keys

    state = remap_legacy_keys(read_weights(in_npz))
    preset, kwargs = preset_of_weights(state)
    if preset == "resnet50_fpn":
        if kwargs.get("norm") == "gn":
            raise ValueError(f"{in_npz} has GroupNorm ResNet-50 weights: references/detection/train.py builds "
                             "BatchNorm layers, which cannot take them")
        kwargs["norm"] = "bn"       # train.py without --weights/--weights-backbone: nn.BatchNorm2d, 5 layers trained
    model = torchvision_model(preset, **kwargs)
    tensors = {k: torch.from_numpy(np.array(v)) for k, v in state.items()}
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{in_npz} does not fit torchvision's {preset} network: {err}") from None
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(lr_steps), gamma=lr_gamma)
    checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                  "lr_scheduler": scheduler.state_dict(), "epoch": -1}
    atomic_write(out_pth, lambda f: torch.save(checkpoint, f), binary=True)
    return {"preset": preset, "kwargs": kwargs, "trainable": len(params)}
