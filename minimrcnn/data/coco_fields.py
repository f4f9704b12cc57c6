"""The fields of a COCO instances file, checked by type and value before anything uses them.

One function per record kind (category, image, annotation). Each takes the parsed JSON
record and ``where`` (the file and the record, for the message) and raises one
``ValueError`` naming the field, what it must be and the value that came, e.g.

    ann.json: annotation id 7: field 'category_id' must be an integer, got '3' (str)

JSON has no integer type of its own: ``3`` and ``3.0`` parse to int and float. Ids,
sizes and ``category_id`` must be integers (``3``); a string ``"3"``, a float ``3.0`` or
a boolean is refused rather than guessed at. Numbers (bbox, area, polygon points) may be
int or float, finite, never strings or booleans.
"""

from __future__ import annotations

import math


def _show(value) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})"


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _need(ok: bool, where: str, key: str, expected: str, value) -> None:
    if not ok:
        raise ValueError(f"{where}: field {key!r} must be {expected}, got {_show(value)}")


def _record(record, where: str) -> dict:
    if not isinstance(record, dict):
        raise ValueError(f"{where} must be a JSON object {{...}}, got {_show(record)}")
    return record


def _name(record, index: int, path: str, key: str, kind: str) -> str:
    """'FILE: image id 4' when the record has an integer id, else 'FILE: images[3]'."""
    _record(record, f"{path}: {key}[{index}]")
    if _is_int(record.get("id")):
        return f"{path}: {kind} id {record['id']}"
    return f"{path}: {key}[{index}]"


def _required(record: dict, keys, where: str) -> None:
    for key in keys:
        if key not in record:
            raise ValueError(f"{where}: missing key {key!r} (it has {sorted(record)})")


def check_top_level(data, path: str) -> None:
    """``data`` is an object whose images, annotations and categories are lists, the first and last
    not empty."""
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the file must hold one JSON object with images, annotations and categories, "
                         f"got {_show(data)}")
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise ValueError(f"{path}: missing top-level key {key!r}")
        _need(isinstance(data[key], list), path, key, "a list", data[key])
    for key in ("images", "categories"):   # annotations may be empty: images without objects
        if not data[key]:
            raise ValueError(f"{path}: {key!r} is empty: a COCO folder to train, evaluate or predict on needs "
                             f"at least one {key[:-1].replace('categorie', 'category')}")


def check_categories(categories: list, path: str) -> list:
    """[(id, name)] sorted by id; every id an integer, every name a non-empty string, ids unique."""
    seen = {}
    for i, cat in enumerate(categories):
        where = f"{path}: categories[{i}]"
        _record(cat, where)
        _required(cat, ("id", "name"), where)
        _need(_is_int(cat["id"]), where, "id", "an integer", cat["id"])
        _need(isinstance(cat["name"], str) and cat["name"] != "", where, "name", "a non-empty string", cat["name"])
        if cat["id"] in seen:
            raise ValueError(f"{path}: categories {seen[cat['id']]!r} and {cat['name']!r} share id {cat['id']}: "
                             "category ids must be unique")
        seen[cat["id"]] = cat["name"]
    return sorted(seen.items())


def check_image(img, index: int, path: str) -> dict:
    """An image record: id an integer, file_name a non-empty string, width and height positive integers."""
    where = _name(img, index, path, "images", "image")
    _required(img, ("id", "file_name", "height", "width"), where)
    _need(_is_int(img["id"]), where, "id", "an integer", img["id"])
    _need(isinstance(img["file_name"], str) and img["file_name"] != "", where, "file_name", "a non-empty string",
          img["file_name"])
    for key in ("width", "height"):
        _need(_is_int(img[key]) and img[key] > 0, where, key, "a positive integer (pixels)", img[key])
    return img


def check_images(images: list, path: str) -> dict:
    """{id: image record}; ids must be unique (a duplicate would silently merge two images)."""
    by_id = {}
    for i, img in enumerate(images):
        check_image(img, i, path)
        if img["id"] in by_id:
            raise ValueError(f"{path}: images {by_id[img['id']]['file_name']!r} and {img['file_name']!r} share "
                             f"id {img['id']}: image ids must be unique (annotations find their image by id)")
        by_id[img["id"]] = img
    return by_id


def check_annotation(ann, index: int, path: str) -> str:
    """Types of one annotation's fields; returns ``where`` ("FILE: annotation id N") for later messages.

    id, image_id, category_id integers; bbox [x, y, w, h] of finite numbers; segmentation
    polygons (a list of flat lists of >= 6 numbers, an even count) or an RLE object
    ({"size": [h, w], "counts": list of integers >= 0 or a string}); area (optional) a
    number >= 0; iscrowd (optional) 0 or 1.
    """
    where = _name(ann, index, path, "annotations", "annotation")
    _required(ann, ("id", "image_id", "category_id", "bbox", "segmentation"), where)
    _need(_is_int(ann["id"]), where, "id", "an integer", ann["id"])
    for key in ("image_id", "category_id"):
        _need(_is_int(ann[key]), where, key, "an integer", ann[key])
    bbox = ann["bbox"]
    _need(isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox), where, "bbox",
          "[x, y, w, h], four finite numbers", bbox)
    if "area" in ann:
        _need(_is_number(ann["area"]) and ann["area"] >= 0, where, "area", "a finite number >= 0", ann["area"])
    if "iscrowd" in ann:
        _need(ann["iscrowd"] in (0, 1) and isinstance(ann["iscrowd"], (int, bool)), where, "iscrowd", "0 or 1",
              ann["iscrowd"])
    check_segmentation(ann["segmentation"], where)
    return where


def check_segmentation(segm, where: str) -> None:
    """Polygons or RLE, by type (the sizes are checked against the image when decoded)."""
    key = "segmentation"
    if isinstance(segm, list):
        _need(len(segm) > 0, where, key, "a non-empty list of polygons", segm)
        for polygon in segm:
            _need(isinstance(polygon, list) and all(_is_number(v) for v in polygon), where, key,
                  "a list of polygons, each a flat list of numbers [x1, y1, x2, y2, ...]", segm)
            _need(len(polygon) >= 6 and len(polygon) % 2 == 0, where, key,
                  "polygons of at least 3 points (an even count >= 6 of numbers)", polygon)
        return
    if isinstance(segm, dict):
        _required(segm, ("size", "counts"), f"{where}: segmentation")
        size, counts = segm["size"], segm["counts"]
        _need(isinstance(size, list) and len(size) == 2 and all(_is_int(v) and v > 0 for v in size), where,
              "segmentation.size", "[height, width], two positive integers", size)
        _need(isinstance(counts, str) or (isinstance(counts, list) and all(_is_int(v) and v >= 0 for v in counts)),
              where, "segmentation.counts", "a string (compressed RLE) or a list of integers >= 0", counts)
        return
    _need(False, where, key, "a list of polygons or an RLE object {size, counts}", segm)
