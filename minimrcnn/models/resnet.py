"""ResNet (He et al. 2016) as a feature extractor returning C2..C5, with forward/backward.

torchvision's ResNet "v1.5" (the stride sits on the 3x3 conv of a Bottleneck), minus
``avgpool`` and ``fc``: ``forward`` returns the outputs of layer1..layer4 as '0'..'3'
(strides 4, 8, 16, 32), as torchvision's ``IntermediateLayerGetter`` does.

Norm choice (``norm``): "frozen_bn" (pretrained-style, buffers only), "bn" (trainable
BatchNorm2d with batch statistics in train mode) or "gn" (GroupNorm with ``num_groups``;
the modules keep the ``bn`` names so state_dict keys match torchvision's).

Frozen stages: ``trainable_layers`` in 0..5 keeps the last ones trainable, as
torchvision's ``_resnet_fpn_extractor``; backward stops at the first trainable stage
because nothing before it needs a gradient.

Shape shorthand: N images, C channels, H, W; C_l, H_l, W_l of the output of stage l.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from minimrcnn.nn import BatchNorm2d, Conv2d, FrozenBatchNorm2d, GroupNorm, MaxPool2d, Module, Sequential
from minimrcnn.nn import functional as F
from minimrcnn.nn import init

NORMS = ("frozen_bn", "bn", "gn")


def make_norm(norm: str, num_channels: int, num_groups: int = 32) -> Module:
    """The normalisation layer after every conv: "frozen_bn", "bn" or "gn"."""
    if norm == "frozen_bn":
        return FrozenBatchNorm2d(num_channels)
    if norm == "bn":
        return BatchNorm2d(num_channels)
    if norm == "gn":
        return GroupNorm(num_groups, num_channels)
    raise ValueError(f"norm: expected one of {NORMS}, got {norm!r}")


def _conv(in_c, out_c, k, stride, rng):
    """A conv without bias (the norm after it has one), torchvision's ResNet init."""
    conv = Conv2d(in_c, out_c, k, stride=stride, padding=k // 2, bias=False, rng=rng)
    conv.weight.data = init.kaiming_normal(conv.weight.shape, rng, mode="fan_out")
    return conv


def _downsample(in_c, out_c, stride, norm, num_groups, rng):
    """1x1 conv (stride) + norm on the identity path when the block changes the shape, else None."""
    if stride == 1 and in_c == out_c:
        return None
    return Sequential(_conv(in_c, out_c, 1, stride, rng), make_norm(norm, out_c, num_groups))


class ResidualBlock(Module):
    """relu(main(x) + identity(x)); main is ``convs()``, each conv + norm + ReLU but the last
    ReLU, which comes after the residual add. Subclasses build the convs and ``downsample``."""
    expansion = 1

    def convs(self) -> list:
        """(conv, norm) pairs of the main path, in order."""
        raise NotImplementedError

    def forward(self, x):
        """x float[N, C, H, W] -> (float[N, width * expansion, H / stride, W / stride], cache)."""
        identity, down_cache = (x, None) if self.downsample is None else self.downsample.forward(x)
        convs = self.convs()
        out, caches = x, []
        for j, (conv, bn) in enumerate(convs):
            out, conv_cache = conv.forward(out)
            out, bn_cache = bn.forward(out)
            if j == len(convs) - 1:
                out = out + identity  # the residual add, before the last ReLU
            out, relu_cache = F.relu_forward(out)
            caches.append((conv_cache, bn_cache, relu_cache))
        return out, (caches, down_cache)

    def backward(self, dout, cache):
        caches, down_cache = cache
        convs = self.convs()
        dsum = F.relu_backward(dout, caches[-1][2])   # through the last ReLU, to the residual add
        # The add sends the same gradient down both paths.
        didentity = dsum if self.downsample is None else self.downsample.backward(dsum, down_cache)
        dmain = dsum
        for j in reversed(range(len(convs))):
            conv, bn = convs[j]
            conv_cache, bn_cache, relu_cache = caches[j]
            if j < len(convs) - 1:
                dmain = F.relu_backward(dmain, relu_cache)
            dmain = conv.backward(bn.backward(dmain, bn_cache), conv_cache)
        return dmain + didentity


class BasicBlock(ResidualBlock):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + identity), two 3x3 convs (ResNet-18/34)."""
    expansion = 1

    def __init__(self, in_c, width, stride, norm, num_groups, rng):
        super().__init__()
        self.conv1 = _conv(in_c, width, 3, stride, rng)
        self.bn1 = make_norm(norm, width, num_groups)
        self.conv2 = _conv(width, width, 3, 1, rng)
        self.bn2 = make_norm(norm, width, num_groups)
        self.downsample = _downsample(in_c, width * self.expansion, stride, norm, num_groups, rng)

    def convs(self):
        return [(self.conv1, self.bn1), (self.conv2, self.bn2)]


class Bottleneck(ResidualBlock):
    """relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + identity): 1x1, 3x3 (stride), 1x1."""
    expansion = 4

    def __init__(self, in_c, width, stride, norm, num_groups, rng):
        super().__init__()
        self.conv1 = _conv(in_c, width, 1, 1, rng)
        self.bn1 = make_norm(norm, width, num_groups)
        self.conv2 = _conv(width, width, 3, stride, rng)
        self.bn2 = make_norm(norm, width, num_groups)
        self.conv3 = _conv(width, width * self.expansion, 1, 1, rng)
        self.bn3 = make_norm(norm, width * self.expansion, num_groups)
        self.downsample = _downsample(in_c, width * self.expansion, stride, norm, num_groups, rng)

    def convs(self):
        return [(self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3)]


class ResNet(Module):
    """ResNet body: stem (conv1 7x7/2, bn1, ReLU, maxpool 3x3/2) and layer1..layer4.

    Args:
        block: BasicBlock or Bottleneck.
        layers (4 ints): blocks per stage, e.g. [3, 4, 6, 3] for ResNet-50.
        widths (4 ints): stage widths, torchvision's are (64, 128, 256, 512); stem = widths[0].
        norm (str): "frozen_bn", "bn" or "gn".
        num_groups (int): GroupNorm groups (only for norm="gn").
        trainable_layers (int): 0..5; stages before the last ``trainable_layers`` are frozen.
        rng (np.random.Generator): initialisation (kaiming_normal fan_out; norms 1 and 0).
    """

    def __init__(self, block, layers, widths=(64, 128, 256, 512), norm="frozen_bn", num_groups=32,
                 trainable_layers=5, rng=None):
        super().__init__()
        rng = init.as_rng(rng)
        if not 0 <= trainable_layers <= 5:
            raise ValueError(f"trainable_layers: expected 0..5, got {trainable_layers}")
        self.conv1 = _conv(3, widths[0], 7, 2, rng)
        self.conv1.needs_input_grad = False  # nobody needs d(loss)/d(image)
        self.bn1 = make_norm(norm, widths[0], num_groups)
        self.maxpool = MaxPool2d(3, 2, 1)
        in_c = widths[0]
        for s, (num_blocks, width) in enumerate(zip(layers, widths)):
            stride = 1 if s == 0 else 2
            blocks = []
            for b in range(num_blocks):
                blocks.append(block(in_c, width, stride if b == 0 else 1, norm, num_groups, rng))
                in_c = width * block.expansion
            self.add_module(f"layer{s + 1}", Sequential(*blocks))
        self.out_channels_list = [w * block.expansion for w in widths]
        self.freeze(trainable_layers)

    def freeze(self, trainable_layers: int) -> None:
        """torchvision's rule: train ['layer4', 'layer3', 'layer2', 'layer1', 'conv1'][:trainable_layers]
        (+ 'bn1' when all 5 are trainable); every other parameter gets requires_grad = False."""
        train = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
        if trainable_layers == 5:
            train.append("bn1")
        for name, p in self.named_parameters():
            p.requires_grad = any(name.startswith(prefix) for prefix in train)
        self.trainable_layers = trainable_layers

    def stages(self):
        return [self.layer1, self.layer2, self.layer3, self.layer4]

    def forward(self, x):
        """x float[N, 3, H, W] -> (OrderedDict '0'..'3' of C2..C5 float[N, C_l, H/2^(l+2), W/2^(l+2)], cache)."""
        out, conv_cache = self.conv1.forward(x)
        out, bn_cache = self.bn1.forward(out)
        out, relu_cache = F.relu_forward(out)
        out, pool_cache = self.maxpool.forward(out)
        features, stage_caches = OrderedDict(), []
        for s, stage in enumerate(self.stages()):
            out, stage_cache = stage.forward(out)
            features[str(s)] = out
            stage_caches.append(stage_cache)
        return features, ((conv_cache, bn_cache, relu_cache, pool_cache), stage_caches)

    def backward(self, dfeatures: dict, cache) -> None:
        """Accumulate parameter grads from dfeatures ('0'..'3' float[N, C_l, H_l, W_l]); returns None
        (no image grad).

        Stops early: once neither a part nor anything before it has a trainable parameter,
        nothing further down needs a gradient.
        """
        (conv_cache, bn_cache, relu_cache, pool_cache), stage_caches = cache
        reaches = self.parts_needing_backward()   # [stem, layer1, ..., layer4]
        dout = None  # gradient at the current stage's output arriving from the stage above
        for s in reversed(range(4)):
            if not reaches[s + 1]:
                return None
            d = dfeatures.get(str(s))
            dout = d if dout is None else (dout if d is None else dout + d)
            if dout is not None:
                dout = self.stages()[s].backward(dout, stage_caches[s])
        if not reaches[0] or dout is None:
            return None
        dout = self.maxpool.backward(dout, pool_cache)
        dout = F.relu_backward(dout, relu_cache)
        dout = self.bn1.backward(dout, bn_cache)
        self.conv1.backward(dout, conv_cache)
        return None

    def parts_needing_backward(self) -> list:
        """For [stem, layer1, ..., layer4]: does it, or any part before it, have a trainable parameter?"""
        stem = self.conv1.parameters() + self.bn1.parameters()
        trains = [any(p.requires_grad for p in params)
                  for params in [stem] + [stage.parameters() for stage in self.stages()]]
        return [any(trains[:i + 1]) for i in range(len(trains))]
