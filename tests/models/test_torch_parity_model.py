"""Optional parity with torchvision: same weights (moved via state_dict) -> same outputs.

Everything runs in float64 on both sides, so that rankings (top-k, NMS, sampling
candidates) cannot flip on float32 round-off between two correct implementations.
Training losses and gradients are compared with the random sampling injected: our
samplers' choices are replayed in torchvision's samplers.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from torch import nn  # noqa: E402
from torchvision.models.detection import MaskRCNN as TVMaskRCNN  # noqa: E402
from torchvision.models.detection.anchor_utils import AnchorGenerator as TVAnchorGenerator  # noqa: E402
from torchvision.models.detection.backbone_utils import BackboneWithFPN as TVBackboneWithFPN  # noqa: E402
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead  # noqa: E402
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor  # noqa: E402
from torchvision.models.resnet import BasicBlock  # noqa: E402

from minimrcnn.models import LOSS_NAMES, maskrcnn_resnet50_fpn, maskrcnn_shapes  # noqa: E402


class ShapesBody(nn.Module):
    """torchvision's ResNet layout with BasicBlocks [2,2,2,2], widths 16..128 and GroupNorm(4)."""

    def __init__(self):
        super().__init__()
        norm = lambda c: nn.GroupNorm(4, c)  # noqa: E731
        self.conv1 = nn.Conv2d(3, 16, 7, 2, 3, bias=False)
        self.bn1 = norm(16)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = 16
        for i, (width, stride) in enumerate(zip((16, 32, 64, 128), (1, 2, 2, 2))):
            down = None
            if stride != 1 or inplanes != width:
                down = nn.Sequential(nn.Conv2d(inplanes, width, 1, stride, bias=False), norm(width))
            blocks = [BasicBlock(inplanes, width, stride, down, norm_layer=norm),
                      BasicBlock(width, width, norm_layer=norm)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            inplanes = width


def torchvision_shapes():
    backbone = TVBackboneWithFPN(ShapesBody(), {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
                                 [16, 32, 64, 128], 64)
    anchors = TVAnchorGenerator(((8,), (16,), (32,), (64,), (128,)), ((0.5, 1.0, 2.0),) * 5)
    return TVMaskRCNN(
        backbone, num_classes=None, min_size=128, max_size=128, rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=1000, rpn_pre_nms_top_n_test=500, rpn_post_nms_top_n_train=500,
        rpn_post_nms_top_n_test=250, box_batch_size_per_image=128,
        box_head=TwoMLPHead(64 * 7 * 7, 256), box_predictor=FastRCNNPredictor(256, 4),
        mask_head=MaskRCNNHeads(64, (64, 64, 64, 64), 1), mask_predictor=MaskRCNNPredictor(64, 64, 4))


def move_weights(ours, theirs):
    state = {k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state, strict=True)
    return theirs.double()


def shapes_batch(num, seed):
    from minimrcnn.data.shapes import ShapesDataset
    data = ShapesDataset(num, seed=seed)
    samples = [data[i] for i in range(num)]
    images = [(im.transpose(2, 0, 1) / 255.0).astype(np.float64) for im, _ in samples]
    targets = [{"boxes": t["boxes"].astype(np.float64), "labels": t["labels"], "masks": t["masks"]} for _, t in samples]
    return images, targets


def to_torch_targets(targets):
    return [{"boxes": torch.from_numpy(t["boxes"]), "labels": torch.from_numpy(t["labels"]),
             "masks": torch.from_numpy(t["masks"])} for t in targets]


def compare_detections(ours, theirs):
    for o, t in zip(ours, theirs):
        assert len(o["boxes"]) == len(t["boxes"]) > 0
        np.testing.assert_allclose(o["boxes"], t["boxes"].numpy(), atol=1e-3)
        np.testing.assert_allclose(o["scores"], t["scores"].numpy(), atol=1e-6)
        np.testing.assert_array_equal(o["labels"], t["labels"].numpy())
        np.testing.assert_allclose(o["masks"], t["masks"].numpy(), atol=1e-4)


def test_shapes_preset_eval_parity():
    ours = maskrcnn_shapes(seed=0).astype(np.float64).eval()
    theirs = move_weights(ours, torchvision_shapes()).eval()
    images, _ = shapes_batch(2, seed=5)
    out = ours(images)
    with torch.no_grad():
        ref = theirs([torch.from_numpy(im) for im in images])
    compare_detections(out, ref)


class ReplaySampler:
    """Stands in for torchvision's sampler and returns the masks our sampler drew."""

    def __init__(self, recorded):
        self.recorded = recorded

    def __call__(self, labels):
        pos, neg = self.recorded.pop(0)
        return [torch.from_numpy(p) for p in pos], [torch.from_numpy(n) for n in neg]


def record_sampler(sampler, log):
    def wrapped(labels, rng):
        pos, neg = type(sampler).__call__(sampler, labels, rng)
        log.append((pos, neg))
        return pos, neg
    return wrapped


def test_shapes_preset_training_losses_and_gradients_parity():
    ours = maskrcnn_shapes(seed=0).astype(np.float64)
    theirs = move_weights(ours, torchvision_shapes()).train()
    images, targets = shapes_batch(2, seed=6)
    rpn_log, roi_log = [], []
    ours.rpn.fg_bg_sampler = record_sampler(ours.rpn.fg_bg_sampler, rpn_log)
    ours.roi_heads.fg_bg_sampler = record_sampler(ours.roi_heads.fg_bg_sampler, roi_log)
    losses, cache = ours(images, targets)
    ours.zero_grad()
    ours.backward(cache)
    theirs.rpn.fg_bg_sampler = ReplaySampler(rpn_log)
    theirs.roi_heads.fg_bg_sampler = ReplaySampler(roi_log)
    ref = theirs([torch.from_numpy(im) for im in images], to_torch_targets(targets))
    for name in LOSS_NAMES:
        assert losses[name] == pytest.approx(ref[name].item(), rel=1e-7, abs=1e-12), name
    sum(ref.values()).backward()
    torch_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        g = torch_params[name].grad
        g = np.zeros_like(p.grad) if g is None else g.numpy()
        np.testing.assert_allclose(p.grad, g, rtol=1e-5, atol=1e-9, err_msg=name)


def test_resnet50_preset_eval_parity():
    ours = maskrcnn_resnet50_fpn(num_classes=91, norm="bn", seed=0).astype(np.float64).eval()
    ours.transform.min_size = ours.transform.max_size = 256  # smaller than COCO's 800 to stay fast
    theirs = torchvision.models.detection.maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=91, min_size=256, max_size=256)
    theirs = move_weights(ours, theirs).eval()
    image = np.random.default_rng(0).random((3, 200, 300))
    out = ours([image])
    with torch.no_grad():
        ref = theirs([torch.from_numpy(image)])
    compare_detections(out, ref)
