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

from minimrcnn.interop import preset_of_weights, torchvision_model  # noqa: E402
from minimrcnn.models import LOSS_NAMES, maskrcnn_resnet50_fpn, maskrcnn_shapes  # noqa: E402


def torchvision_shapes():
    return torchvision_model("shapes", num_classes=4)


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
    theirs = torchvision_model("resnet50_fpn", num_classes=91, norm="bn", min_size=256, max_size=256)
    theirs = move_weights(ours, theirs).eval()
    image = np.random.default_rng(0).random((3, 200, 300))
    out = ours([image])
    with torch.no_grad():
        ref = theirs([torch.from_numpy(image)])
    compare_detections(out, ref)


@pytest.mark.parametrize("norm", ["bn", "frozen_bn", "gn"])
def test_resnet50_builder_matches_the_preset_and_torchvision(norm):
    ours = maskrcnn_resnet50_fpn(num_classes=5, norm=norm)
    theirs = torchvision_model("resnet50_fpn", num_classes=5, norm=norm)
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(theirs_state)
    assert all(tuple(ours_state[k].shape) == tuple(theirs_state[k].shape) for k in ours_state)
    assert {n for n, p in ours.named_parameters() if p.requires_grad} == \
        {n for n, p in theirs.named_parameters() if p.requires_grad}
    assert preset_of_weights(ours_state) == ("resnet50_fpn", {"num_classes": 5, **({} if norm == "frozen_bn" else {"norm": norm})})
    if norm == "bn":   # what torchvision's own builder makes without pretrained weights
        tv = torchvision.models.detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=5)
        assert str(tv) == str(theirs)


def test_shapes_builder_loads_the_preset_strictly():
    ours = maskrcnn_shapes(num_classes=7)
    theirs = move_weights(ours, torchvision_model("shapes", num_classes=7))   # strict=True inside
    assert preset_of_weights(ours.state_dict()) == ("shapes", {"num_classes": 7})
    assert sum(p.numel() for p in theirs.parameters()) == sum(p.data.size for p in ours.parameters())
    with pytest.raises(ValueError, match="preset must be one of"):
        torchvision_model("resnet18")
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        torchvision_model("shapes", num_classes=1)


def test_convert_prints_the_two_lines_that_load_the_result(tmp_path, capsys, monkeypatch):
    from minimrcnn.cli import main
    from minimrcnn.models.weights import save_weights

    monkeypatch.chdir(tmp_path)
    ours = maskrcnn_shapes(num_classes=3, seed=1)
    save_weights(ours, "model.npz")
    assert main(["convert", "model.npz", "model.pth"]) == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()[2:]]
    assert lines == ["import torch; from minimrcnn.interop import torchvision_model",
                     "model = torchvision_model('shapes', num_classes=3); "
                     "model.load_state_dict(torch.load('model.pth', weights_only=True))"]
    scope = {}
    exec("\n".join(lines), scope)          # the lines as a user pastes them
    loaded = scope["model"].state_dict()
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(loaded[key].numpy(), value)
