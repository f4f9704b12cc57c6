"""Model predictions -> a COCO results list (the input of `evaluate_coco` and pycocotools).

Shape shorthand: D detections, H, W image size.
"""

from __future__ import annotations

import numpy as np

from minimrcnn.data import rle as rle_codec


def results_from_predictions(predictions, image_ids, label_to_category_id) -> list[dict]:
    """One COCO result dict per detection.

    Args:
        predictions: list (one per image) of dicts with boxes float[D, 4] xyxy,
            labels int[D] (1..K-1), scores float[D] and optionally masks float[D, 1, H, W]
            (probabilities; pixels > 0.5 are foreground, as torchvision's evaluation).
        image_ids: the COCO image id of each prediction.
        label_to_category_id: mapping (dict or sequence indexed by label) to COCO category ids,
            e.g. `CocoDataset.category_ids`.
    Returns:
        [{image_id, category_id, bbox [x, y, w, h], score, segmentation {size, counts (ascii str)}}]
        (segmentation only when masks are given).
    """
    if len(predictions) != len(image_ids):
        raise ValueError(f"need one image id per prediction: {len(predictions)} predictions, "
                         f"{len(image_ids)} image_ids")
    results = []
    for pred, image_id in zip(predictions, image_ids):
        boxes = np.asarray(pred["boxes"], dtype=np.float64).reshape(-1, 4)
        labels = np.asarray(pred["labels"]).reshape(-1)
        scores = np.asarray(pred["scores"], dtype=np.float64).reshape(-1)
        masks = pred.get("masks")
        if not len(boxes) == len(labels) == len(scores):
            raise ValueError(f"image {image_id}: boxes {boxes.shape}, labels {labels.shape} and "
                             f"scores {scores.shape} must have the same length D")
        if masks is not None:
            masks = np.asarray(masks)
            if masks.ndim != 4 or masks.shape[:2] != (len(boxes), 1):
                raise ValueError(f"image {image_id}: masks must be float[D, 1, H, W] with D = {len(boxes)}, "
                                 f"got shape {masks.shape}")
        for d in range(len(boxes)):
            x1, y1, x2, y2 = boxes[d].tolist()
            result = {"image_id": int(image_id),
                      "category_id": int(label_to_category_id[int(labels[d])]),
                      "bbox": [x1, y1, x2 - x1, y2 - y1],  # xyxy -> xywh
                      "score": float(scores[d])}
            if masks is not None:
                result["segmentation"] = rle_codec.encode((masks[d, 0] > 0.5).astype(np.uint8))
            results.append(result)
    return results
