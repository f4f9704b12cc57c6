"""Evaluate a model on a dataset with COCO AP (bbox and segm)."""

from __future__ import annotations


import numpy as np

from minimrcnn.data.datasets import category_ids_of


def validation_dataset(config, num_images: int):
    """The held-out set: ``config.val_coco`` if given, else generated shapes with ``val_seed``."""
    if config.val_coco:
        from minimrcnn.data.coco import CocoDataset

        return CocoDataset.from_folder(config.val_coco)
    from minimrcnn.data.shapes import ShapesDataset

    return ShapesDataset(num_images=num_images, seed=config.val_seed, image_size=config.image_size)


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


def predict_dataset(model, dataset, batch_size: int = 8, progress: bool = False, desc: str = "predict"):
    """Run ``model`` in eval mode over ``dataset``; returns (list of uint8 images, list of outputs).

    Raises:
        TrainingDiverged: the model met or produced non-finite values (its weights diverged).
    """
    from tqdm.auto import tqdm

    from minimrcnn.train.diverge import ADVICE, TrainingDiverged, check_outputs

    model.eval()
    images, outputs = [], []
    for start in tqdm(range(0, len(dataset), batch_size), disable=not progress, desc=desc):
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


def evaluate_model(model, dataset, batch_size: int = 8, progress: bool = False, per_class: bool = False) -> dict:
    """COCO stats of ``model`` on ``dataset``: ``{"bbox": {...12 stats}, "segm": {...}}``.

    With ``per_class``, also ``"per_class": {"bbox": {class name: {"AP", "AP50", "AP75"}}, "segm": ...}``
    (-1: the class has no ground truth in ``dataset``).
    """
    _, outputs = predict_dataset(model, dataset, batch_size, progress, desc="evaluate")
    return score_outputs(dataset, outputs, per_class)


def score_outputs(dataset, outputs: list, per_class: bool = False) -> dict:
    """COCO stats of predictions already made (``outputs[i]`` for ``dataset[i]``); as :func:`evaluate_model`."""
    from minimrcnn.eval.coco_eval import per_category_ap, precision_recall, summarize
    from minimrcnn.eval.results import results_from_predictions

    gt = coco_gt_from_dataset(dataset)
    label_to_category = {label: c for label, c in enumerate(category_ids_of(dataset), start=1)}
    results = results_from_predictions(list(outputs), [im["id"] for im in gt["images"]], label_to_category)
    names = {c["id"]: c["name"] for c in gt["categories"]}
    stats, classes = {}, {}
    for iou_type in ("bbox", "segm"):
        precision, recall, category_ids = precision_recall(gt, results, iou_type)
        stats[iou_type] = summarize(precision, recall)
        classes[iou_type] = {names[c]: ap for c, ap in per_category_ap(precision, category_ids).items()}
    if per_class:
        stats["per_class"] = classes
    return stats
