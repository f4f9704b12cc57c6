"""Batching for training: collate samples, random horizontal flips, a resumable iterator.

`BatchIterator` draws everything (the order of each epoch, each flip) from
generators seeded by (seed, epoch, position), never from a generator that
advances as batches are drawn. Its whole state is therefore (epoch, position):
`state_dict()` saves that, and a resumed run draws exactly the same batches.

Shape shorthand: N images in a batch, H, W image size, G instances.
"""

from __future__ import annotations

import numpy as np


def collate(samples):
    """(image uint8[H, W, 3], target) pairs -> (images list of float32[3, H, W] in [0, 1], targets).

    Images keep their own sizes (the model's transform pads the batch); targets are passed through.
    """
    images, targets = [], []
    for image, target in samples:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be uint8[H, W, 3], got {image.dtype}{list(image.shape)}")
        # HWC -> CHW, then scale 0..255 -> 0..1
        images.append(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / np.float32(255))
        targets.append(target)
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


class BatchIterator:
    """Endless iterator of collated batches over a dataset, deterministic from `seed`.

    Each epoch visits every sample once (shuffled if `shuffle`); a batch never spans
    two epochs, so the last batch of an epoch may be smaller. Sample at position p of
    epoch e is flipped when a generator seeded by (seed, e, p) says so.

    Args:
        dataset: anything with __len__ and __getitem__ -> (image uint8[H, W, 3], target).
        batch_size: images per batch (N).
        shuffle: new random order every epoch.
        seed: the seed of all randomness here.
        flip_prob: probability of a horizontal flip per sample (0 disables).
    Yields:
        (images list of N float32[3, H, W], targets list of N dicts), as `collate`.
    """

    def __init__(self, dataset, batch_size: int, shuffle: bool = True, seed: int = 0, flip_prob: float = 0.5):
        if len(dataset) == 0:
            raise ValueError("dataset is empty")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0.0 <= flip_prob <= 1.0:
            raise ValueError(f"flip_prob must be in [0, 1], got {flip_prob}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.flip_prob = float(flip_prob)
        self.epoch = 0      # current epoch
        self.position = 0   # index into this epoch's order of the next sample

    def __len__(self) -> int:
        """Batches per epoch."""
        return -(-len(self.dataset) // self.batch_size)

    def _order(self, epoch: int) -> np.ndarray:
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, 0, epoch]).permutation(n)

    def _flip(self, epoch: int, position: int) -> bool:
        if self.flip_prob == 0.0:
            return False
        return bool(np.random.default_rng([self.seed, 1, epoch, position]).random() < self.flip_prob)

    def __iter__(self):
        return self

    def __next__(self):
        order = self._order(self.epoch)
        stop = min(self.position + self.batch_size, len(order))
        samples = []
        for p in range(self.position, stop):
            image, target = self.dataset[int(order[p])]
            if self._flip(self.epoch, p):
                image, target = hflip(image, target)
            samples.append((image, target))
        self.position = stop
        if self.position >= len(order):
            self.epoch, self.position = self.epoch + 1, 0
        return collate(samples)

    def state_dict(self) -> dict:
        return {"seed": self.seed, "epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        if int(state["seed"]) != self.seed:
            raise ValueError(f"state seed {state['seed']} differs from this iterator's seed {self.seed}")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
