"""labelme's per-image JSON files -> ImportedImage records.

labelme (5.x) saves one JSON per image beside it:

    {"version": "5.4.1", "flags": {},
     "shapes": [{"label": "coin", "points": [[x, y], ...], "group_id": null,
                 "description": "", "shape_type": "polygon", "flags": {}, "mask": null}, ...],
     "imagePath": "coin_03.png", "imageData": null or base64 of the image file,
     "imageHeight": 303, "imageWidth": 384}

Read here: polygon (V >= 3 points), rectangle (2 opposite corners) and circle (centre, then a
point on the circle) shapes; `imagePath` is relative to the JSON file, and an embedded
`imageData` is used instead of the file when present (as labelme itself does). Shapes that
share a label and a non-null `group_id` are one object of several polygons (labelme2coco's
rule); a shape without group_id is an object of its own. Line, point and mask shapes cannot
describe an instance polygon and are refused with the file and the shape named.
"""

from __future__ import annotations

import base64
import binascii
import glob
import json
import os

from minimrcnn.data.importers.common import (AnnotationError, ImportedImage, ImportedInstance, check_points,
                                             ellipse_polygon, rectangle_polygon)

SHAPE_TYPES = ("polygon", "rectangle", "circle")


def labelme_files(src: str) -> list[str]:
    """The .json files of folder `src` (not recursive), sorted; or [src] for one file."""
    if os.path.isfile(src):
        return [src]
    if not os.path.isdir(src):
        raise FileNotFoundError(f"labelme source {src} is neither a folder nor a .json file")
    files = sorted(glob.glob(os.path.join(src, "*.json")))
    if not files:
        raise ValueError(f"labelme source {src} holds no .json files (labelme saves one beside each image)")
    return files


def _shape_polygon(shape: dict, where: str) -> list[float]:
    kind = shape.get("shape_type") or "polygon"     # labelme 3 files have no shape_type: polygons
    if kind == "polygon":
        return check_points(shape.get("points"), where, 3).ravel().tolist()
    if kind == "rectangle":
        pts = check_points(shape.get("points"), where, 2)
        if len(pts) != 2:     # labelme writes the two corners it was dragged between
            raise AnnotationError(f"{where}: a rectangle has 2 corner points, got {len(pts)}")
        return rectangle_polygon(*pts[0], *pts[1])
    if kind == "circle":
        pts = check_points(shape.get("points"), where, 2)
        if len(pts) != 2:
            raise AnnotationError(f"{where}: a circle has 2 points (centre, a point on it), got {len(pts)}")
        (cx, cy), (x, y) = pts
        r = float(((x - cx) ** 2 + (y - cy) ** 2) ** 0.5)
        return ellipse_polygon(cx, cy, r, r)
    raise AnnotationError(f"{where}: unknown shape type {kind!r}; instances are drawn as one of {SHAPE_TYPES}")


def read_labelme_file(path: str) -> ImportedImage:
    """One labelme JSON -> ImportedImage (instances grouped by (label, group_id))."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise AnnotationError(f"{path}: cannot read JSON: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list) or "imagePath" not in data:
        raise AnnotationError(f"{path}: not a labelme file (expected an object with 'shapes' and 'imagePath')")
    image_path = str(data["imagePath"]).replace("\\", "/")     # labelme on Windows writes backslashes
    image = ImportedImage(file_name=os.path.basename(image_path), where=path,
                          width=data.get("imageWidth"), height=data.get("imageHeight"))
    if data.get("imageData"):
        try:
            image.data = base64.b64decode(data["imageData"], validate=True)
        except (binascii.Error, ValueError, TypeError) as err:
            raise AnnotationError(f"{path}: imageData is not base64: {err}") from None
    else:
        image.path = os.path.join(os.path.dirname(path), image_path)
    groups: dict = {}
    for index, shape in enumerate(data["shapes"]):
        if not isinstance(shape, dict):
            raise AnnotationError(f"{path}: shape {index} is not an object: {shape!r:.80}")
        label = shape.get("label")
        where = f"{path}: shape {index} ({shape.get('shape_type') or 'polygon'} {label!r})"
        if not isinstance(label, str) or not label:
            raise AnnotationError(f"{where}: needs a non-empty 'label'")
        polygon = _shape_polygon(shape, where)
        group = shape.get("group_id")
        key = (label, group) if group is not None else (label, "shape", index)
        if key not in groups:
            groups[key] = ImportedInstance(label, [], where)
        groups[key].polygons.append(polygon)
        groups[key].polygon_wheres.append(where)
    image.instances = list(groups.values())
    return image


def read_labelme(src: str) -> list[ImportedImage]:
    """Every labelme JSON of folder `src` (or the one file `src`)."""
    return [read_labelme_file(path) for path in labelme_files(src)]
