"""What every dataset shares: a view of its first ``n`` samples, and its COCO category ids.

A dataset here is anything with ``__len__``, ``__getitem__(i) -> (uint8[H, W, 3] image, target)``
and ``class_names`` (entry 0 the background): ``ShapesDataset`` and ``CocoDataset``.
"""

from __future__ import annotations


def category_ids_of(dataset) -> list[int]:
    """COCO category id of each contiguous label 1..K-1 (identity for generated shapes)."""
    ids = getattr(dataset, "category_ids", None)
    if ids is not None:
        return list(ids)[1:]  # entry 0 is the background placeholder (index = label)
    return list(range(1, len(dataset.class_names)))


class Subset:
    """The first ``n`` samples of a dataset (all of them if it has fewer)."""

    def __init__(self, dataset, n: int):
        self.dataset, self.n = dataset, min(n, len(dataset))
        for name in ("class_names", "category_ids"):   # what category_ids_of and the figures read
            if hasattr(dataset, name):
                setattr(self, name, getattr(dataset, name))

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(f"index {i} out of range for a subset of {self.n}")
        return self.dataset[i]
