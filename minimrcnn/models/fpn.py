"""Feature Pyramid Network (Lin et al. 2017) with LastLevelMaxPool, forward and backward.

From the backbone's C2..C5 ('0'..'3') to P2..P6 ('0', '1', '2', '3', 'pool'), all with
``out_channels`` channels, exactly as torchvision's ``FeaturePyramidNetwork``::

    last = inner[3](C5);  P5 = layer[3](last)
    for i in 2, 1, 0:                              # top-down pathway
        last = inner[i](C_i) + nearest(last, size of C_i);  P_i = layer[i](last)
    'pool' = max_pool2d(P5, kernel 1, stride 2) = P5[:, :, ::2, ::2]

``inner_blocks.i.0`` are the 1x1 lateral convs, ``layer_blocks.i.0`` the 3x3 output
convs (both with bias, no norm, no activation; kaiming_uniform(a=1) and zero bias).

Shape shorthand: N images, C channels, H, W, L levels.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from minimrcnn.nn import Conv2d, Module, ModuleList, Sequential
from minimrcnn.nn import functional as F
from minimrcnn.nn import init


class LastLevelMaxPool(Module):
    """'pool' = P5[:, :, ::2, ::2] (max-pool with a 1x1 window and stride 2 just subsamples)."""

    def forward(self, p5: np.ndarray):
        return np.ascontiguousarray(p5[:, :, ::2, ::2]), p5.shape

    def backward(self, dpool: np.ndarray, p5_shape):
        """Each 'pool' pixel came from exactly one P5 pixel; the others get zero gradient."""
        dp5 = np.zeros(p5_shape, dtype=dpool.dtype)
        dp5[:, :, ::2, ::2] = dpool
        return dp5


class FPNCache(NamedTuple):
    inner: list        # cache of inner_blocks[i] for i = 0..L-1
    layer: list        # cache of layer_blocks[i]
    upsample: list     # cache of the nearest resize feeding level i (None for the top level)
    pool: tuple        # cache of the extra block


class FeaturePyramidNetwork(Module):
    """Lateral 1x1 convs + top-down nearest upsampling + 3x3 output convs + LastLevelMaxPool.

    Args:
        in_channels_list (L ints): channels of C2..C5, e.g. [256, 512, 1024, 2048].
        out_channels (int): channels of every output level (256; 64 in the shapes preset).
        rng (np.random.Generator): initialisation.
    """

    def __init__(self, in_channels_list, out_channels, rng=None):
        super().__init__()
        rng = init.as_rng(rng)
        self.inner_blocks = ModuleList()
        self.layer_blocks = ModuleList()
        for in_c in in_channels_list:
            inner = Conv2d(in_c, out_channels, 1, rng=rng)
            layer = Conv2d(out_channels, out_channels, 3, padding=1, rng=rng)
            for conv in (inner, layer):
                conv.weight.data = init.kaiming_uniform(conv.weight.shape, rng, a=1)
                conv.bias.data = np.zeros_like(conv.bias.data)
            self.inner_blocks.append(Sequential(inner))
            self.layer_blocks.append(Sequential(layer))
        self.extra_blocks = LastLevelMaxPool()
        self.out_channels = out_channels

    def forward(self, features: "OrderedDict[str, np.ndarray]"):
        """features '0'..'3' float[N, C_l, H_l, W_l] -> (OrderedDict '0'..'3', 'pool' float[N, C, H_l, W_l], cache)."""
        names = list(features.keys())
        xs = list(features.values())
        L = len(xs)
        inner_caches, layer_caches, up_caches = [None] * L, [None] * L, [None] * L
        results = [None] * L
        last, inner_caches[-1] = self.inner_blocks[-1].forward(xs[-1])
        results[-1], layer_caches[-1] = self.layer_blocks[-1].forward(last)
        for i in range(L - 2, -1, -1):  # top-down: coarse to fine
            lateral, inner_caches[i] = self.inner_blocks[i].forward(xs[i])
            top_down, up_caches[i] = F.interpolate_forward(last, size=lateral.shape[-2:], mode="nearest")
            last = lateral + top_down
            results[i], layer_caches[i] = self.layer_blocks[i].forward(last)
        pool, pool_cache = self.extra_blocks.forward(results[-1])
        out = OrderedDict(zip(names, results))
        out["pool"] = pool
        return out, FPNCache(inner_caches, layer_caches, up_caches, pool_cache)

    def backward(self, dresults: dict, cache: FPNCache) -> "OrderedDict[str, np.ndarray]":
        """dresults '0'..'3', 'pool' -> OrderedDict '0'..'3' of gradients w.r.t. C2..C5."""
        L = len(self.inner_blocks)
        names = [str(i) for i in range(L)]
        dfeatures = OrderedDict()
        dlast_from_below = None  # gradient reaching the merged map 'last' of level i from level i-1
        for i in range(L):  # reverse of the top-down pass: fine to coarse
            dresult = dresults[names[i]]
            if i == L - 1:
                # P5 feeds both its own output and 'pool'.
                dresult = dresult + self.extra_blocks.backward(dresults["pool"], cache.pool)
            dlast = self.layer_blocks[i].backward(dresult, cache.layer[i])
            if dlast_from_below is not None:
                dlast = dlast + dlast_from_below
            # last_i = lateral_i + up(last_{i+1}): both summands receive dlast.
            dfeatures[names[i]] = self.inner_blocks[i].backward(dlast, cache.inner[i])
            if i < L - 1:
                dlast_from_below = F.interpolate_backward(dlast, cache.upsample[i])
        return dfeatures
