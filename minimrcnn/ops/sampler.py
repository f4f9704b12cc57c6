"""Balanced sampling of positive and negative training examples per image.

An image has a handful of foreground anchors among ~240k; training the RPN on all of
them would teach it to say "background". Faster R-CNN (sec. 3.1.3) samples a fixed
batch per image with at most a given fraction of positives and fills the rest with
negatives:

    num_pos = min(#positives, int(batch_size_per_image * positive_fraction))
    num_neg = min(#negatives, batch_size_per_image - num_pos)

e.g. batch_size_per_image = 256, fraction 0.5, 10 positives and 1000 negatives -> 10 positives + 246
negatives. Which ones is random (a permutation from the ``rng`` you pass), so runs are
reproducible from a seed; torch's RNG stream itself cannot be matched.

Shape shorthand: R_i predictions of image i.
Lesson: lessons/03_anchors_and_box_coding.ipynb.
"""

from __future__ import annotations

import numpy as np


class BalancedPositiveNegativeSampler:
    """As torchvision's ``BalancedPositiveNegativeSampler``.

    batch_size_per_image: number of examples sampled per image (if available).
    positive_fraction: at most this fraction of them positive.
    """

    def __init__(self, batch_size_per_image: int, positive_fraction: float):
        if batch_size_per_image < 0:
            raise ValueError(f"batch_size_per_image must be >= 0, got {batch_size_per_image}")
        if not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(f"positive_fraction must be in [0, 1], got {positive_fraction}")
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction

    def __repr__(self) -> str:
        return (f"BalancedPositiveNegativeSampler(batch_size_per_image={self.batch_size_per_image}, "
                f"positive_fraction={self.positive_fraction})")

    def __call__(self, matched_labels, rng: np.random.Generator):
        """matched_labels: list of int[R_i] per image (>= 1 positive, 0 negative, -1 ignored).
        rng: the generator that draws the random subsets.

        Returns (pos_masks, neg_masks): lists of uint8[R_i], 1 where sampled.
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        pos_masks, neg_masks = [], []
        for i, labels in enumerate(matched_labels):
            labels = np.asarray(labels)
            if labels.ndim != 1:
                raise ValueError(f"matched_labels[{i}] must have shape [R_i], got {labels.shape}")
            positive = np.nonzero(labels >= 1)[0]
            negative = np.nonzero(labels == 0)[0]
            num_pos = min(positive.size, int(self.batch_size_per_image * self.positive_fraction))
            num_neg = min(negative.size, self.batch_size_per_image - num_pos)
            # First num_pos of a random permutation = a uniform random subset.
            pos_idx = positive[rng.permutation(positive.size)[:num_pos]]
            neg_idx = negative[rng.permutation(negative.size)[:num_neg]]
            pos_mask = np.zeros(labels.shape, dtype=np.uint8)
            neg_mask = np.zeros(labels.shape, dtype=np.uint8)
            pos_mask[pos_idx] = 1
            neg_mask[neg_idx] = 1
            pos_masks.append(pos_mask)
            neg_masks.append(neg_mask)
        return pos_masks, neg_masks
