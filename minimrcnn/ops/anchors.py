"""Anchor boxes: the fixed reference boxes the RPN classifies and regresses from.

Faster R-CNN (Ren et al. 2015, sec. 3.1) places A anchors at every feature-map cell;
with FPN (Lin et al. 2017) each pyramid level gets one size and three aspect ratios,
so A = 3. This reproduces ``torchvision.models.detection.anchor_utils.AnchorGenerator``:

* aspect ratio = h / w: ``h = size * sqrt(r)``, ``w = size / sqrt(r)``;
* zero-centred cell anchors ``round([-w, -h, w, h] / 2)`` in float32, e.g. size 32,
  ratio 0.5: w = 45.25, h = 22.63 -> [-23, -11, 23, 11];
* stride = padded image size // feature size, per axis (integer floor division, so an
  800-high batch with a 13-row 'pool' level has stride 800 // 13 = 61, not 64);
* anchor centres at (j * stride_w, i * stride_h), no half-stride offset: the first
  anchor of a level is its cell anchor itself;
* order (row i, column j, anchor a): index (i * W_l + j) * A + a; levels concatenated.

Shape shorthand: L pyramid levels, H_l, W_l feature size of level l, A anchors per
location. Lesson: lessons/03_anchors_and_box_coding.ipynb.
"""

from __future__ import annotations

import numpy as np


def _cell_anchors(sizes, aspect_ratios, dtype=np.float32) -> np.ndarray:
    """float[len(ratios) * len(sizes), 4]: zero-centred anchors, ratio-major then size."""
    scales = np.asarray(sizes, dtype=dtype)
    ratios = np.asarray(aspect_ratios, dtype=dtype)
    h_ratios = np.sqrt(ratios)
    w_ratios = 1 / h_ratios
    ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)
    hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
    # np.round is half-to-even like torch.round (no .5 occurs with the default sizes).
    return np.round(np.stack([-ws, -hs, ws, hs], axis=1) / 2)


class AnchorGenerator:
    """Anchors for every level of a feature pyramid, as torchvision's ``AnchorGenerator``.

    sizes: one tuple of sizes (pixels, the square root of the anchor area) per level.
    aspect_ratios: one tuple of h / w ratios per level.
    """

    def __init__(self, sizes=((32,), (64,), (128,), (256,), (512,)),
                 aspect_ratios=((0.5, 1.0, 2.0),) * 5):
        sizes = tuple(tuple(s) for s in sizes)
        aspect_ratios = tuple(tuple(a) for a in aspect_ratios)
        if len(sizes) != len(aspect_ratios):
            raise ValueError(f"sizes and aspect_ratios must have one entry per level, got "
                             f"{len(sizes)} and {len(aspect_ratios)}")
        self.sizes = sizes
        self.aspect_ratios = aspect_ratios
        # Cached once: float32[A_l, 4] per level.
        self.cell_anchors = [_cell_anchors(s, a) for s, a in zip(sizes, aspect_ratios)]

    def __repr__(self) -> str:
        return f"AnchorGenerator(sizes={self.sizes}, aspect_ratios={self.aspect_ratios})"

    def num_anchors_per_location(self) -> list[int]:
        """A per level (3 for the Mask R-CNN default)."""
        return [len(s) * len(a) for s, a in zip(self.sizes, self.aspect_ratios)]

    def num_anchors_per_level(self, feature_sizes) -> list[int]:
        """H_l * W_l * A_l per level: how to split the concatenated anchors back into levels."""
        feature_sizes = self._check_feature_sizes(feature_sizes)
        return [h * w * a for (h, w), a in zip(feature_sizes, self.num_anchors_per_location())]

    def anchors_per_level(self, image_size, feature_sizes) -> list[np.ndarray]:
        """One float32[H_l * W_l * A_l, 4] array per level (the pieces ``__call__`` joins).

        image_size: (H_pad, W_pad) of the padded batch tensor.
        feature_sizes: [(H_l, W_l), ...], one per level.
        """
        feature_sizes = self._check_feature_sizes(feature_sizes)
        if len(image_size) != 2:
            raise ValueError(f"image_size must be (H_pad, W_pad), got {image_size!r}")
        H_pad, W_pad = int(image_size[0]), int(image_size[1])
        anchors = []
        for (H_l, W_l), cell in zip(feature_sizes, self.cell_anchors):
            stride_h, stride_w = H_pad // H_l, W_pad // W_l   # floor division, as torchvision
            shifts_x = np.arange(W_l, dtype=np.int64) * stride_w
            shifts_y = np.arange(H_l, dtype=np.int64) * stride_h
            shift_y, shift_x = np.meshgrid(shifts_y, shifts_x, indexing="ij")   # [H_l, W_l]
            shifts = np.stack([shift_x, shift_y, shift_x, shift_y], axis=-1).reshape(-1, 1, 4)
            # (H_l*W_l, 1, 4) + (1, A, 4) -> (H_l*W_l, A, 4) -> (H_l*W_l*A, 4): order (i, j, a)
            anchors.append((shifts.astype(np.float32) + cell[None]).reshape(-1, 4))
        return anchors

    def __call__(self, image_size, feature_sizes) -> np.ndarray:
        """All anchors of all levels, concatenated in level order.

        image_size: (H_pad, W_pad) of the padded batch (the same anchors serve every image).
        feature_sizes: [(H_l, W_l), ...], one per level.
        Returns float32[sum_l H_l * W_l * A_l, 4]: (x1, y1, x2, y2) in padded-image pixels.
        Example: an 800x1216 batch with the default FPN levels gives 242991 anchors.
        """
        return np.concatenate(self.anchors_per_level(image_size, feature_sizes), axis=0)

    def _check_feature_sizes(self, feature_sizes):
        feature_sizes = [tuple(int(v) for v in fs) for fs in feature_sizes]
        if len(feature_sizes) != len(self.cell_anchors):
            raise ValueError(f"feature_sizes must have one (H_l, W_l) per level ({len(self.cell_anchors)}), "
                             f"got {len(feature_sizes)}")
        for fs in feature_sizes:
            if len(fs) != 2 or fs[0] <= 0 or fs[1] <= 0:
                raise ValueError(f"feature_sizes entries must be positive (H_l, W_l), got {fs}")
        return feature_sizes
