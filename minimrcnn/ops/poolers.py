"""MultiScaleRoIAlign: RoIAlign on the FPN level that suits each box (FPN paper, eq. 1).

A box of side sqrt(w*h) = 224 pixels is pooled from level k0 = 4 (stride 16); each halving
of the side moves one level finer: k = floor(4 + log2(sqrt(area) / 224) + 1e-6), clamped
to the levels present ('0'..'3' = strides 4..32 = k 2..5). Example: a 112 x 112 box gives
k = 3 (stride 8), a 111.99 one gives k = 2. Semantics: docs/torchvision-parity.md sec. 9.

Shape shorthand: N images, C channels, H_l, W_l size of level l, L levels, R RoIs (all
images' boxes concatenated), P pooled size.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minimrcnn.nn.module import Module
from minimrcnn.ops.roi_align import RoIAlignCache, roi_align_backward, roi_align_forward


class LevelMapper:
    """Map each box to the FPN level it is pooled from (torchvision's LevelMapper).

    Args:
        k_min, k_max (int): finest and coarsest level present (2 and 5 for '0'..'3').
        canonical_scale (int): box side that maps to canonical_level (224, ImageNet size).
        canonical_level (int): 4, i.e. stride 16.
        eps (float): keeps a side of exactly 112 on level 3 despite log2 rounding.
    """

    def __init__(self, k_min, k_max, canonical_scale=224, canonical_level=4, eps=1e-6):
        self.k_min, self.k_max = int(k_min), int(k_max)
        self.s0, self.lvl0, self.eps = canonical_scale, canonical_level, eps

    def __call__(self, boxes_per_image):
        """boxes_per_image: list of float[L_i,4] -> int64[R] level index (0 = k_min)."""
        boxes = [np.asarray(b) for b in boxes_per_image]
        dtype = np.float64 if any(b.dtype == np.float64 for b in boxes) else np.float32
        boxes = np.concatenate([b.reshape(-1, 4).astype(dtype) for b in boxes]) if boxes \
            else np.zeros((0, 4), dtype)
        t = np.dtype(dtype).type
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        with np.errstate(divide="ignore", invalid="ignore"):      # area 0 -> log2(0) = -inf
            side = np.sqrt(area)
            k = np.floor(t(self.lvl0) + np.log2(side / t(self.s0)) + t(self.eps))
        # A zero area gives -inf and lands on k_min; an inverted box (NaN) too (torch: undefined).
        k = np.clip(np.nan_to_num(k, nan=self.k_min), self.k_min, self.k_max)
        return k.astype(np.int64) - self.k_min


def _infer_scale(feature_size, image_size):
    """2 ** round(log2(feature / image)), in float32 like torchvision (half to even)."""
    ratio = np.float32(float(feature_size) / float(image_size))
    return float(2.0 ** float(np.round(np.log2(ratio))))


class MultiScaleRoIAlignCache(NamedTuple):
    """Per level: which RoIs (int64 indices into R) went there and their RoIAlign cache."""
    level_indices: list          # list of int64[R_l]
    level_caches: list           # list of RoIAlignCache
    num_rois: int


class MultiScaleRoIAlign(Module):
    """RoIAlign over an FPN, each box on its own level (torchvision.ops.MultiScaleRoIAlign).

    Args:
        featmap_names (list of str): feature keys to pool from, finest first ('0'..'3').
        output_size (int or (P, P)): pooled size (7 for boxes, 14 for masks).
        sampling_ratio (int): samples per bin side (2 in Mask R-CNN); aligned is False.
        canonical_scale, canonical_level (int): LevelMapper's 224 and 4.
    The scales and the level mapper are inferred on the first forward and then kept,
    exactly as torchvision does (a later call with other image sizes reuses them).
    """

    def __init__(self, featmap_names, output_size, sampling_ratio, canonical_scale=224,
                 canonical_level=4):
        super().__init__()
        self.featmap_names = list(featmap_names)
        self.output_size = (output_size, output_size) if np.isscalar(output_size) \
            else tuple(output_size)
        self.sampling_ratio = sampling_ratio
        self.canonical_scale, self.canonical_level = canonical_scale, canonical_level
        self.scales = None
        self.map_levels = None

    def setup_scales(self, features, image_shapes):
        """Scale of each level from its height over the largest unpadded image height."""
        max_h = max(h for h, _ in image_shapes)
        self.scales = [_infer_scale(f.shape[-2], max_h) for f in features]
        k_min = int(-np.log2(np.float32(self.scales[0])))
        k_max = int(-np.log2(np.float32(self.scales[-1])))
        self.map_levels = LevelMapper(k_min, k_max, self.canonical_scale, self.canonical_level)

    def forward(self, features, boxes, image_shapes):
        """Pool every box from its level.

        Args:
            features (dict[str, float[N,C,H_l,W_l]]): FPN maps; keys not in featmap_names
                (e.g. 'pool') are ignored.
            boxes (list of float[L_i,4]): per-image boxes in (resized) image pixels.
            image_shapes (list of (h, w)): unpadded resized image sizes.
        Returns:
            out (float[R,C,P,P]) in the order of the concatenated boxes, and a cache.
        """
        missing = [name for name in self.featmap_names if name not in features]
        if missing:
            raise ValueError(f"features: expected keys {self.featmap_names}, missing {missing}")
        maps = [features[name] for name in self.featmap_names]
        if self.scales is None:
            self.setup_scales(maps, image_shapes)
        rois_per_image = [np.asarray(b).reshape(-1, 4) for b in boxes]
        R = sum(len(b) for b in rois_per_image)
        if len(maps) == 1:                                           # no level mapping
            levels = np.zeros(R, dtype=np.int64)
        else:
            levels = self.map_levels(rois_per_image)
        image_index = np.concatenate([np.full(len(b), i) for i, b in enumerate(rois_per_image)]) \
            if rois_per_image else np.zeros(0)
        dtype = maps[0].dtype
        rois = np.concatenate([image_index[:, None], np.concatenate(rois_per_image)], 1) \
            if R else np.zeros((0, 5))
        out = np.zeros((R, maps[0].shape[1], *self.output_size), dtype=dtype)
        indices, caches = [], []
        for level, (feature, scale) in enumerate(zip(maps, self.scales)):   # for each level
            idx = np.nonzero(levels == level)[0]
            out_level, cache = roi_align_forward(feature, rois[idx], self.output_size, scale,
                                                 self.sampling_ratio, aligned=False)
            out[idx] = out_level                                     # back in original order
            indices.append(idx)
            caches.append(cache)
        return out, MultiScaleRoIAlignCache(indices, caches, R)

    def backward(self, dout, cache):
        """dout float[R,C,P,P] -> dict name -> float[N,C,H_l,W_l] (zeros where no RoI landed)."""
        grads = {}
        for name, idx, level_cache in zip(self.featmap_names, cache.level_indices,
                                          cache.level_caches):
            grads[name] = roi_align_backward(dout[idx], level_cache)
        return grads

    def extra_repr(self):
        return (f"featmap_names={self.featmap_names}, output_size={self.output_size}, "
                f"sampling_ratio={self.sampling_ratio}")


__all__ = ["LevelMapper", "MultiScaleRoIAlign", "MultiScaleRoIAlignCache", "RoIAlignCache"]
