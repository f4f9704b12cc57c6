"""Batching for training: which images iteration t reads, and random horizontal flips.

This is the one batching path: the Trainer (and so ``minimrcnn train``) calls
:func:`batch_indices` and :func:`load_batch` at every iteration. Every random draw comes
from a generator seeded by the iteration (never from one that advances as batches are
drawn), so the images of iteration t depend only on (seed, t): a run resumed at t reads
exactly the batches the uninterrupted run would have read.

Images stay uint8[H, W, 3]: the model's transform converts them to float (one conversion,
``GeneralizedRCNNTransform.check_image``).

Shape shorthand: N images in a batch, H, W image size, G instances.
"""

from __future__ import annotations

import numpy as np


def batch_indices(config, iteration: int, dataset_length: int | None) -> list[int]:
    """Indices of the N = ``config.batch_size`` images of ``iteration``.

    Args:
        config: anything with ``batch_size`` and ``seed`` (a ``TrainConfig``).
        dataset_length: None for an endless stream (consecutive indices), else the dataset's
            length: position p of the whole run is image ``order_e[p mod length]`` of epoch
            ``e = p // length``, ``order_e`` a permutation drawn from (seed, 7, e). Each epoch
            visits every image once; a batch may span two epochs.
    """
    start = iteration * config.batch_size
    positions = range(start, start + config.batch_size)
    if dataset_length is None:
        return list(positions)
    indices = []
    for pos in positions:
        epoch, offset = divmod(pos, dataset_length)
        order = np.random.default_rng([config.seed, 7, epoch]).permutation(dataset_length)
        indices.append(int(order[offset]))
    return indices


def load_batch(dataset, indices, rng: np.random.Generator, flip_prob: float):
    """Read ``dataset[i]`` for each index and flip each with probability ``flip_prob``.

    Args:
        dataset: ``__getitem__`` -> (image uint8[H, W, 3], target dict).
        rng: one draw per image, in order (the Trainer seeds it with (seed, 1, t)).
    Returns:
        (images: list of N uint8[H, W, 3], the model's input as it is;
         targets: list of N dicts with boxes float32[G, 4], labels int64[G], masks uint8[G, H, W]).
    """
    images, targets = [], []
    for i in indices:
        image, target = dataset[i]
        if rng.random() < flip_prob:
            image, target = hflip(image, target)
        images.append(image)
        targets.append({k: target[k] for k in ("boxes", "labels", "masks")})
    return images, targets


def _flip_boxes(boxes: np.ndarray, width: int) -> np.ndarray:
    """xyxy boxes mirrored in an image of this width: x1' = W - x2, x2' = W - x1."""
    flipped = boxes.copy()
    flipped[:, 0] = width - boxes[:, 2]
    flipped[:, 2] = width - boxes[:, 0]
    return flipped


def hflip(image: np.ndarray, target: dict):
    """Mirror an image uint8[H, W, 3] and its target (boxes, masks, crowd_*) left to right.

    Returns new arrays; the inputs are not modified. Other target entries are copied as they are.
    """
    width = image.shape[1]
    out = dict(target)
    for key in ("boxes", "crowd_boxes"):
        if key in target:
            out[key] = _flip_boxes(np.asarray(target[key]), width)
    for key in ("masks", "crowd_masks"):
        if key in target:
            out[key] = np.ascontiguousarray(np.asarray(target[key])[..., ::-1])
    return np.ascontiguousarray(image[:, ::-1]), out
