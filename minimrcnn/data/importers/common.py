"""What every importer shares: shapes as COCO polygons, rasterising, categories, writing the folder.

An importer reads a tool's files into `ImportedImage` records (the image bytes or path, its
size and its instances, each a label and one or more flat polygons). `write_coco` then
checks every polygon against its image, rasterises it with COCO's rule
(`minimrcnn.data.rle.polygons_to_mask`, the pixels of pycocotools' ``annToMask``), numbers the
categories, splits train/val when asked and writes the folder(s) that `CocoDataset` reads:

    OUT/images/..., OUT/annotations.json                    (val_fraction = 0)
    OUT/train/images/..., OUT/train/annotations.json, OUT/val/...   (val_fraction > 0)

Everything is read and checked before anything is written; the folder is assembled beside
OUT under a temporary name and renamed into place, so a refused input leaves nothing behind.

Shapes that are not polygons become polygons the way the tools' own COCO converters do it:
a rectangle its 4 corners; a circle (centre, radius r) and an ellipse N points on the
outline, N = max(12, pi / arccos(1 - 1/r)) (labelme's labelme2coco rule for circles: each
edge of the polygon stays within one pixel of the curve; an ellipse uses its larger radius).

Shape shorthand: H, W image size; V polygon vertices.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import shutil

import numpy as np
from PIL import Image

from minimrcnn.data import rle as rle_codec
from minimrcnn.data.images import read_image_size
from minimrcnn.data.layouts import LAYOUTS, to_references_layout
from minimrcnn.data.shapes import masks_to_boxes
from minimrcnn.io import atomic_folder

# A vertex may sit this many pixels outside the image (annotators drag onto the border);
# farther means the annotation belongs to another image or another size.
OUTSIDE_TOLERANCE = 2.0


class AnnotationError(ValueError):
    """A file that cannot be imported; the message names the file and the shape."""


@dataclasses.dataclass
class ImportedInstance:
    label: str
    polygons: list            # list of flat [x1, y1, x2, y2, ...] lists, V >= 3 each
    where: str                # "FILE: shape 3 (polygon 'coin')" for error messages
    polygon_wheres: list = dataclasses.field(default_factory=list)   # one per polygon (default: where)


@dataclasses.dataclass
class ImportedImage:
    file_name: str            # name under OUT/images/
    where: str                # the annotation file that describes it
    path: str | None = None   # the image file on disk, or
    data: bytes | None = None  # its bytes (labelme's embedded imageData)
    width: int | None = None  # as the annotation file states it (checked against the image)
    height: int | None = None
    instances: list = dataclasses.field(default_factory=list)


# ----------------------------------------------------------------------------- shapes -> polygons
def rectangle_polygon(x1: float, y1: float, x2: float, y2: float) -> list[float]:
    """Two opposite corners -> the 4 corners, clockwise from the top left (labelme2coco's order)."""
    x1, x2 = sorted((float(x1), float(x2)))
    y1, y2 = sorted((float(y1), float(y2)))
    return [x1, y1, x2, y1, x2, y2, x1, y2]


def ellipse_polygon(cx: float, cy: float, rx: float, ry: float, theta: float = 0.0) -> list[float]:
    """Points on an ellipse (radii rx, ry, rotated by theta radians) as a flat polygon.

    The number of points follows labelme2coco's circle rule with the larger radius,
    max(12, pi / arccos(1 - 1/r)); a circle is rx = ry = r.
    """
    r = max(float(rx), float(ry))
    count = 12 if r <= 1 else max(int(math.pi / math.acos(1 - 1 / r)), 12)
    angle = 2 * math.pi * np.arange(count) / count
    x, y = rx * np.sin(angle), ry * np.cos(angle)
    cos, sin = math.cos(theta), math.sin(theta)
    xs, ys = cx + cos * x - sin * y, cy + sin * x + cos * y
    return np.stack([xs, ys], 1).ravel().tolist()


def check_points(points, where: str, minimum: int = 3) -> np.ndarray:
    """float64[V, 2] of finite numbers, V >= minimum; else AnnotationError naming `where`."""
    try:
        pts = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise AnnotationError(f"{where}: points must be [[x, y], ...] numbers, got {points!r:.80}") from None
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise AnnotationError(f"{where}: points must be [[x, y], ...], got an array of shape {pts.shape}")
    if len(pts) < minimum:
        raise AnnotationError(f"{where}: needs at least {minimum} points, got {len(pts)}")
    if not np.isfinite(pts).all():
        raise AnnotationError(f"{where}: points must be finite numbers, got {points!r:.80}")
    return pts


# ----------------------------------------------------------------------------- images
def _open_image(image: ImportedImage) -> Image.Image:
    try:
        pil = Image.open(io.BytesIO(image.data) if image.data is not None else image.path)
        pil.load()
        return pil
    except FileNotFoundError:
        raise AnnotationError(f"{image.where}: image {image.path} is missing") from None
    except (OSError, ValueError) as err:
        source = "its embedded imageData" if image.data is not None else image.path
        raise AnnotationError(f"{image.where}: cannot open {source} as an image: {err}") from None


def _check_image(image: ImportedImage) -> tuple[int, int]:
    """(H, W) of the image; the size the annotation file states must match it."""
    if image.data is None:           # a file: its upright size (EXIF applied, as labelme and read_image do)
        try:
            width, height = read_image_size(image.path)
        except ValueError as err:
            missing = not os.path.exists(image.path)
            raise AnnotationError(f"{image.where}: image {image.path} is missing" if missing
                                  else f"{image.where}: {err}") from None
    else:
        with _open_image(image) as pil:
            width, height = pil.size
    if image.width is not None and (image.width, image.height) != (width, height):
        raise AnnotationError(f"{image.where}: the file says the image is {image.width}x{image.height} (W x H), "
                           f"{image.path or 'its imageData'} is {width}x{height}")
    return height, width


# ----------------------------------------------------------------------------- categories
def categories_of(images, categories=None) -> list[str]:
    """Category names in id order 1..K: `categories` if given, else the sorted labels."""
    labels = {inst.label for image in images for inst in image.instances}
    if categories is None:
        return sorted(labels)
    names = [str(c) for c in categories]
    if len(set(names)) != len(names) or not all(names):
        raise ValueError(f"categories must be distinct non-empty names, got {names}")
    for image in images:
        for inst in image.instances:
            if inst.label not in names:
                raise AnnotationError(f"{inst.where}: label {inst.label!r} is not one of the categories {names}")
    return names


# ----------------------------------------------------------------------------- rasterise
def rasterise(image: ImportedImage, height: int, width: int, category_id: dict) -> list[dict]:
    """COCO annotations (without ids) of one image's instances: polygons, bbox, area from the mask."""
    annotations = []
    for inst in image.instances:
        wheres = inst.polygon_wheres or [inst.where] * len(inst.polygons)
        for poly, where in zip(inst.polygons, wheres):
            pts = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
            far = (pts[:, 0] < -OUTSIDE_TOLERANCE) | (pts[:, 0] > width + OUTSIDE_TOLERANCE) \
                | (pts[:, 1] < -OUTSIDE_TOLERANCE) | (pts[:, 1] > height + OUTSIDE_TOLERANCE)
            if far.any():
                x, y = pts[np.argmax(far)]
                raise AnnotationError(f"{where}: point ({x:g}, {y:g}) is far outside the {width}x{height} "
                                   f"(W x H) image (more than {OUTSIDE_TOLERANCE:g} pixels)")
        mask = rle_codec.polygons_to_mask(inst.polygons, height, width)   # uint8[H, W]
        area = int(mask.sum())
        if area == 0:
            raise AnnotationError(f"{inst.where}: covers no pixel centre once rasterised (too thin or too small)")
        x1, y1, x2, y2 = (float(v) for v in masks_to_boxes(mask[None])[0])
        annotations.append({"category_id": category_id[inst.label], "segmentation": inst.polygons,
                            "area": float(area), "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": 0})
    return annotations


# ----------------------------------------------------------------------------- write
def split_indices(count: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, val) image indices: round(val_fraction * count) images, at least 1, drawn with `seed`."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if val_fraction == 0:
        return list(range(count)), []
    if count < 2:
        raise ValueError(f"val_fraction={val_fraction} needs at least 2 images to split, got {count}")
    num_val = min(max(1, round(val_fraction * count)), count - 1)
    order = np.random.default_rng(seed).permutation(count)
    return sorted(order[num_val:].tolist()), sorted(order[:num_val].tolist())


def _write_split(folder: str, images, checked, names: list[str]) -> None:
    os.makedirs(os.path.join(folder, "images"))
    coco = {"images": [], "annotations": [], "categories": [{"id": k + 1, "name": n} for k, n in enumerate(names)]}
    for image_id, (image, (height, width, annotations)) in enumerate(zip(images, checked), start=1):
        target = os.path.join(folder, "images", image.file_name)
        if image.data is not None:
            with open(target, "wb") as f:
                f.write(image.data)
        else:
            shutil.copyfile(image.path, target)
        coco["images"].append({"id": image_id, "file_name": image.file_name, "height": height, "width": width})
        for ann in annotations:
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": image_id, **ann})
    with open(os.path.join(folder, "annotations.json"), "w") as f:
        json.dump(coco, f)


def write_coco(images, out_dir: str, categories=None, val_fraction: float = 0.0, seed: int = 0,
               layout: str = "minimrcnn") -> dict:
    """Check, rasterise and write `images` (list of ImportedImage) as COCO folder(s) under out_dir.

    `layout` "torchvision-references" (needs val_fraction > 0) writes the folders that
    torchvision's references/detection/train.py reads (minimrcnn.data.layouts).

    Returns:
        {"categories": [names], "splits": {"": n} or {"train": n, "val": m}, "instances": count}.
    Raises:
        AnnotationError (a ValueError) naming the file and the shape; ValueError for bad arguments
        or an out_dir that exists and is not empty. Nothing is written then.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if layout != "minimrcnn" and not val_fraction:
        raise ValueError(f"layout {layout!r} has a train and a val folder: give a val_fraction (--val-fraction) > 0")
    if not images:
        raise ValueError("no annotated images found to import")
    seen = {}
    for image in images:
        if image.file_name in seen:
            raise AnnotationError(f"{image.where} and {seen[image.file_name]} both name the image {image.file_name!r}")
        seen[image.file_name] = image.where
    names = categories_of(images, categories)
    category_id = {name: k + 1 for k, name in enumerate(names)}
    train, val = split_indices(len(images), val_fraction, seed)
    checked = []
    for image in images:           # everything is checked before the first file is written
        height, width = _check_image(image)
        checked.append((height, width, rasterise(image, height, width, category_id)))
    splits = {"": list(range(len(images)))} if not val else {"train": train, "val": val}

    def fill(tmp):
        for split, indices in splits.items():
            _write_split(os.path.join(tmp, split), [images[i] for i in indices],
                         [checked[i] for i in indices], names)
        if layout == "torchvision-references":
            to_references_layout(tmp)

    try:
        atomic_folder(out_dir, fill)
    except ValueError as err:
        raise ValueError(f"--out {err}") from None
    return {"categories": names, "splits": {k: len(v) for k, v in splits.items()},
            "instances": sum(len(c[2]) for c in checked)}
