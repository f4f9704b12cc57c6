"""Predict a folder (or globs) of images: overlays at each image's resolution and detections.json.

    minimrcnn predict --weights runs/shapes/model.npz photos/ 'more/*.jpg' --out runs/predict/photos

`image_paths` expands folders (their image files, not recursive) and glob patterns, in sorted
order. `predict_images` runs the model on one image at a time (the model's transform resizes
it; boxes and masks come back at the image's own size), writes OUT/<name>_pred.png per image
and OUT/detections.json: COCO's results format (image_id, category_id, bbox [x, y, w, h], score,
segmentation as compressed RLE; category_id is the model's label) with the image's `file_name`
(and `category_name` when the names are known) added to each detection, for the
detections that scored at least the threshold (the ones drawn).
"""

from __future__ import annotations

import glob
import json
import os

import numpy as np

from minimrcnn.data.images import read_image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def image_paths(arguments) -> list[str]:
    """Files named by `arguments` (files, folders, glob patterns), each once, in the given order.

    Raises:
        FileNotFoundError naming the argument: a pattern that matches nothing, a missing path.
        ValueError: a folder that holds no image file.
    """
    paths: list[str] = []
    for arg in arguments:
        if os.path.isdir(arg):
            found = sorted(os.path.join(arg, n) for n in os.listdir(arg) if n.lower().endswith(IMAGE_EXTENSIONS))
            if not found:
                raise ValueError(f"folder {arg} holds no image file ({', '.join(IMAGE_EXTENSIONS)})")
        elif glob.has_magic(arg):
            found = sorted(p for p in glob.glob(arg) if os.path.isfile(p))
            if not found:
                raise FileNotFoundError(f"no file matches the pattern {arg}")
        else:
            found = [arg]
        paths += [p for p in found if p not in paths]
    return paths


def _overlay_names(paths) -> list[str]:
    """<stem>_pred.png per image; a stem seen before gets _2, _3 (two folders with 001.jpg)."""
    names, seen = [], {}
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        seen[stem] = seen.get(stem, 0) + 1
        names.append(f"{stem}_pred.png" if seen[stem] == 1 else f"{stem}_{seen[stem]}_pred.png")
    return names


def predict_images(model, paths, out_dir: str, score_threshold: float = 0.5, class_names=None,
                   progress: bool = True, log=print) -> dict:
    """Overlays and detections.json for `paths` (list of image files) in `out_dir`.

    Every image is decoded first (a bad one stops everything before any file is written).
    Returns {"images": N, "detections": D, "best_score": highest score seen (None if no
    detection at all), "best_image": its file, "detections_json": path}.
    """
    from minimrcnn.eval.results import results_from_predictions
    from minimrcnn.io import atomic_write_text
    from minimrcnn.viz.overlay import save_overlay

    # Decode every image before writing anything, so a truncated file or a refused mode (data/images.py)
    # stops the command with nothing written; decoding costs little beside the model's pass.
    for path in paths:
        read_image(path)
    os.makedirs(out_dir, exist_ok=True)
    results, best, best_image = [], None, None
    iterator = paths
    if progress:
        from tqdm import tqdm
        iterator = tqdm(paths, desc="predict", unit="image", leave=False)
    for image_id, (path, name) in enumerate(zip(iterator, _overlay_names(paths)), start=1):
        image = read_image(path)                           # uint8[H, W, 3], upright
        output = model([image])[0]                         # boxes, masks at the image's own size
        scores = np.asarray(output["scores"])
        if len(scores) and (best is None or scores.max() > best):
            best, best_image = float(scores.max()), path
        target = os.path.join(out_dir, name)
        save_overlay(target, image, output, class_names, score_threshold)
        keep = scores >= score_threshold
        kept = {k: np.asarray(v)[keep] for k, v in output.items() if k in ("boxes", "labels", "scores", "masks")}
        # category_id = the model's label (range(K) maps each label to itself)
        for result in results_from_predictions([kept], [image_id], range(model.num_classes)):
            if class_names is not None:
                result["category_name"] = class_names[result["category_id"]]
            results.append({"file_name": path, **result})
        shown = int(keep.sum())
        note = f", best score {scores.max():.3f}" if shown == 0 and len(scores) else ""
        log(f"{path}: {shown} instance{'' if shown == 1 else 's'} drawn (score >= {score_threshold:g}){note} "
            f"-> {target}")
    json_path = os.path.join(out_dir, "detections.json")
    atomic_write_text(json_path, json.dumps(results))
    return {"images": len(paths), "detections": len(results), "best_score": best, "best_image": best_image,
            "detections_json": json_path}

