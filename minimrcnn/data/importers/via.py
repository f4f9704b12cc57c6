"""VGG Image Annotator (VIA 2.x) projects -> ImportedImage records.

A VIA 2 project file ("Project > Save") holds the annotations under `_via_img_metadata`;
"Annotation > Export as JSON" writes that part alone (matterport's balloon sample ships
this form). Each entry is

    "coin_03.png40211": {"filename": "coin_03.png", "size": 40211,
                         "regions": [{"shape_attributes": {"name": "polygon",
                                                           "all_points_x": [...], "all_points_y": [...]},
                                      "region_attributes": {"type": "coin"}}, ...],
                         "file_attributes": {}}

Region shapes read here: polygon, rect (x, y, width, height), circle (cx, cy, r) and ellipse
(cx, cy, rx, ry, theta in radians). VIA 1.x's regions as an object {"0": {...}} are read too.
Each region is one instance. Its class is the value of one region attribute, named by
`label_attribute`; by default the only attribute the regions carry (several: an error that
lists them; none at all: every region is the category "object"). A checkbox attribute
(a dict of options) must have exactly one option ticked.
"""

from __future__ import annotations

import json
import os

import numpy as np

from minimrcnn.data.importers.common import (AnnotationError, ImportedImage, ImportedInstance, check_points,
                                             ellipse_polygon, rectangle_polygon)

SHAPE_NAMES = ("polygon", "rect", "circle", "ellipse")
DEFAULT_LABEL = "object"


def _entries(data, path: str) -> list[dict]:
    if isinstance(data, dict) and "_via_img_metadata" in data:
        data = data["_via_img_metadata"]
    if not isinstance(data, dict) or not all(isinstance(v, dict) and "filename" in v and "regions" in v
                                             for v in data.values()):
        raise AnnotationError(f"{path}: not a VIA project or export (expected '_via_img_metadata', or entries "
                              "with 'filename' and 'regions')")
    return list(data.values())


def _regions(entry: dict, path: str) -> list[dict]:
    regions = entry["regions"]
    if isinstance(regions, dict):            # VIA 1.x: {"0": region, "1": region}
        regions = [regions[k] for k in sorted(regions, key=lambda k: int(k) if str(k).isdigit() else 0)]
    if not isinstance(regions, list):
        raise AnnotationError(f"{path}: image {entry['filename']!r}: 'regions' must be a list")
    return regions


def _numbers(shape: dict, keys, where: str) -> list[float]:
    try:
        values = [float(shape[k]) for k in keys]
    except KeyError as err:
        raise AnnotationError(f"{where}: missing shape attribute {err.args[0]!r}") from None
    except (TypeError, ValueError):
        raise AnnotationError(f"{where}: shape attributes {list(keys)} must be numbers") from None
    if not np.isfinite(values).all():
        raise AnnotationError(f"{where}: shape attributes {list(keys)} must be finite, got {values}")
    return values


def _region_polygon(shape: dict, where: str) -> list[float]:
    name = shape.get("name")
    if name == "polygon":
        xs, ys = shape.get("all_points_x"), shape.get("all_points_y")
        if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys):
            raise AnnotationError(f"{where}: all_points_x and all_points_y must be lists of one length")
        return check_points(list(zip(xs, ys)), where, 3).ravel().tolist()
    if name == "rect":
        x, y, w, h = _numbers(shape, ("x", "y", "width", "height"), where)
        return rectangle_polygon(x, y, x + w, y + h)
    if name == "circle":
        cx, cy, r = _numbers(shape, ("cx", "cy", "r"), where)
        return ellipse_polygon(cx, cy, r, r)
    if name == "ellipse":
        cx, cy, rx, ry = _numbers(shape, ("cx", "cy", "rx", "ry"), where)
        theta = _numbers(shape, ("theta",), where)[0] if "theta" in shape else 0.0
        return ellipse_polygon(cx, cy, rx, ry, theta)
    raise AnnotationError(f"{where}: unknown shape type {name!r}; instances are drawn as one of {SHAPE_NAMES}")


def _label_attribute(entries, path: str, label_attribute: str | None) -> str | None:
    names = sorted({k for e in entries for r in _regions(e, path)
                    for k in (r.get("region_attributes") or {})})
    if label_attribute is not None:
        if label_attribute not in names:
            raise AnnotationError(f"{path}: no region carries the attribute {label_attribute!r}; "
                                  f"they carry {names or 'none'}")
        return label_attribute
    if len(names) > 1:
        raise AnnotationError(f"{path}: the regions carry several attributes {names}: name the one that "
                              "holds the class with --label-attribute (label_attribute=)")
    return names[0] if names else None


def _label(value, where: str, attribute: str) -> str:
    if isinstance(value, dict):              # checkbox: {"coin": true, "note": false}
        ticked = [k for k, v in value.items() if v]
        if len(ticked) != 1:
            raise AnnotationError(f"{where}: attribute {attribute!r} must have one option ticked, got {ticked}")
        value = ticked[0]
    if not isinstance(value, (str, int, float)) or str(value).strip() == "":
        raise AnnotationError(f"{where}: attribute {attribute!r} has no class name (got {value!r})")
    return str(value).strip()


def read_via(project: str, images_dir: str, label_attribute: str | None = None) -> list[ImportedImage]:
    """Every image of a VIA 2.x project (or export) JSON; image files are looked up in `images_dir`."""
    try:
        with open(project) as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise AnnotationError(f"{project}: cannot read JSON: {err}") from None
    if not os.path.isdir(images_dir):
        raise FileNotFoundError(f"--images {images_dir} is not a folder")
    entries = _entries(data, project)
    attribute = _label_attribute(entries, project, label_attribute)
    images = []
    for entry in entries:
        file_name = str(entry["filename"])
        if "://" in file_name:
            raise AnnotationError(f"{project}: image {file_name!r} is a URL: download it into --images first")
        image = ImportedImage(file_name=os.path.basename(file_name), where=f"{project} ({file_name})",
                              path=os.path.join(images_dir, file_name))
        for index, region in enumerate(_regions(entry, project)):
            shape = region.get("shape_attributes") or {}
            where = f"{project}: image {file_name!r} region {index} ({shape.get('name')})"
            polygon = _region_polygon(shape, where)
            attrs = region.get("region_attributes") or {}
            if attribute is None:
                label = DEFAULT_LABEL
            elif attribute not in attrs:
                raise AnnotationError(f"{where}: has no attribute {attribute!r} (it has {sorted(attrs)})")
            else:
                label = _label(attrs[attribute], where, attribute)
            image.instances.append(ImportedInstance(label, [polygon], where))
        images.append(image)
    return images
