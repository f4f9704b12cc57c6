"""ResNet body, FPN and BackboneWithFPN: shapes, freezing, 'pool' level, gradient checks."""

import numpy as np
import pytest

from minimrcnn.gradcheck import check_parameter_gradients
from minimrcnn.models.backbone import BackboneWithFPN
from minimrcnn.models.fpn import FeaturePyramidNetwork, LastLevelMaxPool
from minimrcnn.models.resnet import BasicBlock, Bottleneck, ResNet, make_norm


def tiny_backbone(norm="gn", block=BasicBlock, seed=0, trainable_layers=5):
    rng = np.random.default_rng(seed)
    body = ResNet(block, [1, 1, 1, 1], widths=(4, 8, 8, 8), norm=norm, num_groups=2,
                  trainable_layers=trainable_layers, rng=rng)
    return BackboneWithFPN(body, body.out_channels_list, 8, rng=rng)


def weighted_sum(features, douts):
    return sum(float((features[k] * douts[k]).sum()) for k in features)


def check_param_grads(module, loss, names, seed, tol=1e-6):
    """3 random entries of each named parameter against central differences of loss()."""
    errors = check_parameter_gradients(module, loss, names, entries=3, seed=seed)
    bad = {name: err for name, err in errors.items() if not err < tol}
    assert not bad, bad


def test_shapes_strides_and_pool_level():
    bb = tiny_backbone()
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 96)).astype(np.float32)
    feats, _ = bb.forward(x)
    assert list(feats) == ["0", "1", "2", "3", "pool"]
    assert [f.shape[-2:] for f in feats.values()] == [(16, 24), (8, 12), (4, 6), (2, 3), (1, 2)]
    assert all(f.dtype == np.float32 and f.shape[1] == 8 for f in feats.values())
    np.testing.assert_array_equal(feats["pool"], feats["3"][:, :, ::2, ::2])


def test_last_level_max_pool_backward_scatters_into_p5():
    pool = LastLevelMaxPool()
    p5 = np.arange(2 * 1 * 3 * 3, dtype=np.float64).reshape(2, 1, 3, 3)
    out, cache = pool.forward(p5)
    assert out.shape == (2, 1, 2, 2)
    dp5 = pool.backward(np.ones_like(out), cache)
    expected = np.zeros((3, 3))
    expected[::2, ::2] = 1
    np.testing.assert_array_equal(dp5[0, 0], expected)


@pytest.mark.parametrize("norm", ["gn", "bn", "frozen_bn"])
def test_backbone_gradient_check(norm):
    rng = np.random.default_rng(2)
    bb = tiny_backbone(norm=norm).astype(np.float64)
    x = rng.standard_normal((2, 3, 64, 64))
    feats, cache = bb.forward(x)
    douts = {k: rng.standard_normal(v.shape) for k, v in feats.items()}
    bb.zero_grad()
    bb.backward(douts, cache)
    names = ["body.conv1.weight", "body.layer1.0.conv2.weight", "body.layer2.0.downsample.0.weight",
             "body.layer4.0.conv1.weight", "fpn.inner_blocks.0.0.weight", "fpn.inner_blocks.3.0.bias",
             "fpn.layer_blocks.1.0.weight", "fpn.layer_blocks.3.0.bias"]
    if norm != "frozen_bn":
        names += ["body.bn1.weight", "body.layer3.0.bn2.bias", "body.layer2.0.downsample.1.weight"]
    # BatchNorm in train mode would update running stats on every call; the loss does not depend on them.
    check_param_grads(bb, lambda: weighted_sum(bb.forward(x)[0], douts), names, seed=2)


def test_bottleneck_gradient_check_and_keys():
    rng = np.random.default_rng(3)
    bb = tiny_backbone(block=Bottleneck).astype(np.float64)
    keys = list(bb.state_dict())
    assert "body.layer1.0.conv3.weight" in keys and "body.layer1.0.bn3.weight" in keys
    assert bb.state_dict()["body.layer1.0.downsample.0.weight"].shape == (16, 4, 1, 1)
    x = rng.standard_normal((1, 3, 32, 32))
    feats, cache = bb.forward(x)
    douts = {k: rng.standard_normal(v.shape) for k, v in feats.items()}
    bb.zero_grad()
    bb.backward(douts, cache)
    check_param_grads(bb, lambda: weighted_sum(bb.forward(x)[0], douts),
                      ["body.layer1.0.conv1.weight", "body.layer1.0.conv3.weight", "body.layer3.0.conv2.weight",
                       "body.bn1.weight"], seed=3)


@pytest.mark.parametrize("t, frozen", [(0, 53), (1, 43), (2, 24), (3, 11), (4, 1), (5, 0)])
def test_trainable_layers_freeze_like_torchvision(t, frozen):
    # torchvision's test: ResNet-50 with FrozenBN has 53/43/24/11/1/0 frozen parameters for t = 0..5.
    body = ResNet(Bottleneck, [3, 4, 6, 3], widths=(2, 2, 2, 2), norm="frozen_bn", trainable_layers=t)
    flags = [p.requires_grad for p in body.parameters()]
    assert len(flags) == 53
    assert sum(not f for f in flags) == frozen
    assert flags[:frozen] == [False] * frozen  # the first ones, in registration order


def test_frozen_stages_receive_no_gradient():
    rng = np.random.default_rng(4)
    bb = tiny_backbone(norm="frozen_bn", trainable_layers=2).astype(np.float64)
    feats, cache = bb.forward(rng.standard_normal((1, 3, 32, 32)))
    bb.zero_grad()
    bb.backward({k: np.ones_like(v) for k, v in feats.items()}, cache)
    grads = {n: np.abs(p.grad).sum() for n, p in bb.named_parameters()}
    assert grads["body.conv1.weight"] == 0 and grads["body.layer2.0.conv1.weight"] == 0
    assert grads["body.layer3.0.conv1.weight"] > 0 and grads["fpn.inner_blocks.0.0.weight"] > 0


def test_fpn_init_and_bad_norm():
    fpn = FeaturePyramidNetwork([4, 8], 6, rng=np.random.default_rng(0))
    assert np.all(fpn.inner_blocks[0][0].bias.data == 0)
    bound = np.sqrt(3.0 / 4)  # kaiming_uniform(a=1): gain 1, fan_in 4
    assert np.abs(fpn.inner_blocks[0][0].weight.data).max() <= bound
    with pytest.raises(ValueError, match="norm"):
        make_norm("layer_norm", 4)
    with pytest.raises(ValueError, match="trainable_layers"):
        ResNet(BasicBlock, [1, 1, 1, 1], trainable_layers=6)
