"""Evaluate a model on a dataset with COCO AP (bbox and segm)."""

from __future__ import annotations

import os

import numpy as np


def validation_dataset(config, num_images: int):
    """The held-out set: ``config.val_coco`` if given, else generated shapes with ``val_seed``."""
    if config.val_coco:
        from minimrcnn.data.coco import CocoDataset

        return CocoDataset(os.path.join(config.val_coco, "images"), os.path.join(config.val_coco, "annotations.json"))
    from minimrcnn.data.shapes import ShapesDataset

    return ShapesDataset(num_images=num_images, seed=config.val_seed, image_size=config.image_size)


def category_ids_of(dataset) -> list[int]:
    """COCO category id of each contiguous label 1..K-1 (identity for generated shapes)."""
    ids = getattr(dataset, "category_ids", None)
    if ids is not None:
        return list(ids)[1:]  # entry 0 is the background placeholder (index = label)
    return list(range(1, len(dataset.class_names)))


def coco_gt_from_dataset(dataset) -> dict:
    """A COCO ground-truth dict (images, annotations with RLE masks, categories) for ``dataset``."""
    from minimrcnn.data import rle

    category_ids = category_ids_of(dataset)
    images, annotations = [], []
    for i in range(len(dataset)):
        image, target = dataset[i]
        h, w = image.shape[:2]
        images.append({"id": i, "height": h, "width": w, "file_name": f"{i:06d}.png"})
        for box, label, mask in zip(target["boxes"], target["labels"], target["masks"]):
            x1, y1, x2, y2 = (float(v) for v in box)
            annotations.append({
                "id": len(annotations) + 1, "image_id": i, "category_id": category_ids[int(label) - 1],
                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": float(mask.sum()), "iscrowd": 0,
                "segmentation": rle.encode(np.asarray(mask, dtype=np.uint8)),
            })
    names = list(getattr(dataset, "class_names", []))[1:] or [str(c) for c in category_ids]
    categories = [{"id": c, "name": n} for c, n in zip(category_ids, names)]
    return {"images": images, "annotations": annotations, "categories": categories}


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


def predict_dataset(model, dataset, batch_size: int = 8, progress: bool = False):
    """Run ``model`` in eval mode over ``dataset``; returns (list of uint8 images, list of outputs).

    Raises:
        TrainingDiverged: the model met or produced non-finite values (its weights diverged).
    """
    from tqdm.auto import tqdm

    from minimrcnn.train.diverge import ADVICE, TrainingDiverged, check_outputs

    model.eval()
    images, outputs = [], []
    for start in tqdm(range(0, len(dataset), batch_size), disable=not progress, desc="predict"):
        batch = [dataset[i][0] for i in range(start, min(start + batch_size, len(dataset)))]  # uint8[H, W, 3]
        images.extend(batch)
        try:
            # a diverged model overflows; check_outputs below says so in one message, not in warnings
            with np.errstate(over="ignore", invalid="ignore"):
                predicted = model(batch)  # the transform converts uint8 to float
        except ValueError as exc:
            if "finite" not in str(exc):
                raise
            raise TrainingDiverged(f"evaluation met non-finite values inside the model on images {start}.."
                                   f"{start + len(batch) - 1} ({exc}): the model's weights have diverged. "
                                   f"{ADVICE}") from exc
        check_outputs(predicted, start)
        outputs.extend(predicted)
    return images, outputs


def evaluate_model(model, dataset, batch_size: int = 8, progress: bool = False) -> dict:
    """COCO stats of ``model`` on ``dataset``: ``{"bbox": {...12 stats}, "segm": {...}}``."""
    from minimrcnn.eval.coco_eval import evaluate_coco
    from minimrcnn.eval.results import results_from_predictions

    gt = coco_gt_from_dataset(dataset)
    _, outputs = predict_dataset(model, dataset, batch_size, progress)
    label_to_category = {label: c for label, c in enumerate(category_ids_of(dataset), start=1)}
    results = results_from_predictions(outputs, [im["id"] for im in gt["images"]], label_to_category)
    return {iou_type: evaluate_coco(gt, results, iou_type=iou_type) for iou_type in ("bbox", "segm")}
