"""COCO-format files: export the shapes set, and load any COCO instances file.

A COCO instances file is one JSON object with
    images:      [{id, file_name, height, width}]
    annotations: [{id, image_id, category_id, bbox [x, y, w, h], area, iscrowd,
                   segmentation}]  segmentation = list of flat polygons, or an RLE
                   dict with "counts" a list (uncompressed) or a string (compressed)
    categories:  [{id, name}]
Category ids may be any integers (COCO's run 1..90 with gaps); `CocoDataset` maps
them in sorted order onto contiguous labels 1..K-1 (0 is background) and keeps
`category_ids[label]` to map predictions back.

Crowd annotations (iscrowd = 1) mark regions of many objects. They are not
training targets: `CocoDataset` returns them separately as target["crowd_boxes"]
float32[Gc, 4] and target["crowd_masks"] uint8[Gc, H, W]; the evaluator ignores
detections that fall on them.

A COCO folder, as the command line takes it (``--coco DIR``) and ``shapes export``
writes it, is ``DIR/annotations.json`` and ``DIR/images/`` holding the files that
``file_name`` names: `coco_folder_paths` is the one place that spells it.

Shape shorthand: H, W image size; G instances; K classes including background.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import numpy as np
from PIL import Image

from minimrcnn.data import coco_fields as fields
from minimrcnn.data import rle as rle_codec
from minimrcnn.data.images import read_image, read_image_size
from minimrcnn.data.shapes import CLASS_NAMES, ShapesDataset

ANNOTATIONS_FILE = "annotations.json"
IMAGES_FOLDER = "images"


def coco_folder_paths(folder: str) -> tuple[str, str]:
    """(images folder, annotations file) of the COCO folder ``folder``."""
    return os.path.join(folder, IMAGES_FOLDER), os.path.join(folder, ANNOTATIONS_FILE)


def export_shapes_coco(out_dir: str, num_images: int, seed: int, image_size: int = 128,
                       segmentation: str = "rle", overwrite: bool = False) -> str:
    """Write out_dir/images/NNNNNN.png and out_dir/annotations.json for a shapes set.

    The folder is built beside ``out_dir`` and moved into place at the end, so an error or
    Ctrl-C leaves no half-written folder.

    Args:
        segmentation: "rle" (compressed RLE, exact), "polygon" (traced outlines, lossy
            at the pixel level) or "mixed" (odd annotation ids RLE, even ids polygons).
        overwrite: ``out_dir`` may exist and hold files; its images/ folder (stale images
            included) and annotations.json are replaced, anything else in it is left alone.
            Without it, a non-empty ``out_dir`` is refused (FileExistsError).
    Returns:
        the path of annotations.json. Image ids are the sample indices 0..num_images-1;
        annotation ids start at 1; categories 1 square, 2 circle, 3 triangle.
    """
    if segmentation not in ("rle", "polygon", "mixed"):
        raise ValueError(f"segmentation must be 'rle', 'polygon' or 'mixed', got {segmentation!r}")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise NotADirectoryError(f"{out_dir} exists and is not a folder: the export writes a folder")
    held = sorted(os.listdir(out_dir)) if os.path.isdir(out_dir) else []
    if held and not overwrite:
        shown = ", ".join(held[:3]) + (f" and {len(held) - 3} more" if len(held) > 3 else "")
        raise FileExistsError(f"{out_dir} is not empty (it holds {shown}): pass --overwrite (overwrite=True) to "
                              f"replace its {IMAGES_FOLDER}/ and {ANNOTATIONS_FILE}, or give a new or empty folder")
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".tmp-export-", dir=parent)
    try:
        _write_shapes_coco(staging, num_images, seed, image_size, segmentation)
        if not held:
            if os.path.isdir(out_dir):
                os.rmdir(out_dir)
            os.rename(staging, out_dir)
        else:
            images_dir, annotations_json = coco_folder_paths(out_dir)
            if os.path.isdir(images_dir) and not os.path.islink(images_dir):
                shutil.rmtree(images_dir)                 # stale images go with it
            elif os.path.lexists(images_dir):
                os.remove(images_dir)
            staged_images, staged_json = coco_folder_paths(staging)
            os.rename(staged_images, images_dir)
            os.replace(staged_json, annotations_json)
            os.rmdir(staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)      # gone already unless something failed
    return coco_folder_paths(out_dir)[1]


def _write_shapes_coco(out_dir: str, num_images: int, seed: int, image_size: int, segmentation: str) -> None:
    images_dir, annotations_json = coco_folder_paths(out_dir)
    os.makedirs(images_dir)
    dataset = ShapesDataset(num_images, seed=seed, image_size=image_size)
    images, annotations = [], []
    for i in range(num_images):
        image, target = dataset[i]
        file_name = f"{i:06d}.png"
        Image.fromarray(image).save(os.path.join(images_dir, file_name))
        images.append({"id": i, "file_name": file_name, "height": image_size, "width": image_size})
        for box, label, mask, area in zip(target["boxes"], target["labels"], target["masks"], target["area"]):
            ann_id = len(annotations) + 1
            use_polygon = segmentation == "polygon" or (segmentation == "mixed" and ann_id % 2 == 0)
            segm = rle_codec.mask_to_polygons(mask) if use_polygon else rle_codec.encode(mask)
            x1, y1, x2, y2 = (float(v) for v in box)
            annotations.append({"id": ann_id, "image_id": i, "category_id": int(label),
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": float(area),
                                "iscrowd": 0, "segmentation": segm})
    categories = [{"id": k, "name": name} for k, name in enumerate(CLASS_NAMES) if k > 0]
    with open(annotations_json, "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)


def _segmentation_to_mask(segm, height: int, width: int, where: str) -> np.ndarray:
    """uint8[H, W] from polygons, uncompressed or compressed RLE; ValueError naming `where`."""
    try:
        if isinstance(segm, list):
            if not segm or not all(isinstance(p, list) for p in segm):
                raise ValueError("polygon segmentation must be a non-empty list of flat lists")
            return rle_codec.polygons_to_mask(segm, height, width)
        if isinstance(segm, dict):
            if [int(v) for v in segm.get("size", [])] != [height, width]:
                raise ValueError(f"RLE size {segm.get('size')} differs from the image size {[height, width]}")
            return rle_codec.decode(segm)
        raise ValueError(f"segmentation must be a list of polygons or an RLE dict, got {type(segm).__name__}")
    except (ValueError, TypeError) as err:
        raise ValueError(f"{where}: segmentation malformed: {err}") from None


class CocoDataset:
    """Images and instance targets from a COCO instances file, validated when constructed.

    `dataset[i]` returns (image uint8[H, W, 3], target) with target
        boxes float32[G, 4] xyxy (x2 = x + w), labels int64[G] in 1..K-1,
        masks uint8[G, H, W], image_id int (the COCO image id), area float32[G]
        (the file's "area"), iscrowd int64[G] (zeros), and the crowd regions apart:
        crowd_boxes float32[Gc, 4], crowd_masks uint8[Gc, H, W].
    Images are read by `minimrcnn.data.images.read_image`: every Pillow mode converted to
    RGB (16-bit scaled) or refused by name, EXIF orientation applied.

    Attributes: class_names (tuple, index = label, 0 "__background__"), category_ids
    (list, index = label, 0 for background), num_classes K, image_ids.

    Everything is checked in the constructor: the type of every field (coco_fields.py),
    unique image, category and annotation ids, boxes, categories, segmentations, and each
    image file against its width/height. A malformed file raises one ValueError naming
    the file, the record and the problem. Boxes may overshoot the image by up to 1 pixel
    (rounding in real files) and are clipped; annotations with w or h == 0 are skipped.

    Args:
        decode_up_front: decode every image in the constructor, so a truncated or corrupt
            file fails before training starts. None (default): when the images total at
            most `DECODE_UP_FRONT_PIXELS` (about 330 images of 640x480, a second or two);
            above that only the headers are read up front and a corrupt file fails, named,
            when `dataset[i]` first reads it.
    """

    #: default budget for decoding every image in the constructor (its cost: docs/custom-data.md)
    DECODE_UP_FRONT_PIXELS = 100_000_000

    def __init__(self, images_dir: str, annotations_json: str, decode_up_front: bool | None = None):
        self.images_dir = images_dir
        self.annotations_json = annotations_json
        path = annotations_json
        try:
            with open(annotations_json) as f:
                data = json.load(f)
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{annotations_json}: cannot read JSON: {err}") from None
        fields.check_top_level(data, path)
        cats = fields.check_categories(data["categories"], path)      # [(id, name)] by id
        self.category_ids = [0] + [cid for cid, _ in cats]
        self.class_names = ("__background__",) + tuple(name for _, name in cats)
        self.num_classes = len(self.class_names)
        self._label_of = {cid: label for label, cid in enumerate(self.category_ids) if label > 0}
        self._images = fields.check_images(data["images"], path)
        self.image_ids = sorted(self._images)
        # images first: an annotation is checked against its image
        sizes = [self._check_image(self._images[image_id]) for image_id in self.image_ids]
        if decode_up_front is None:
            decode_up_front = sum(w * h for w, h in sizes) <= self.DECODE_UP_FRONT_PIXELS
        if decode_up_front:
            for image_id in self.image_ids:
                self._read(self._images[image_id])
        self._anns = {image_id: [] for image_id in self.image_ids}
        seen = set()
        for index, ann in enumerate(data["annotations"]):
            where = fields.check_annotation(ann, index, path)
            if ann["id"] in seen:
                raise ValueError(f"{where}: another annotation has the same id: annotation ids must be unique")
            seen.add(ann["id"])
            checked = self._check_annotation(ann, where)
            if checked is not None:
                self._anns[ann["image_id"]].append(checked)

    @classmethod
    def from_folder(cls, folder: str, **kwargs) -> "CocoDataset":
        """The dataset of a COCO folder: FOLDER/annotations.json and FOLDER/images/."""
        images_dir, annotations_json = coco_folder_paths(folder)
        return cls(images_dir, annotations_json, **kwargs)

    def _check_annotation(self, ann: dict, where: str):
        """Validate one typed annotation against its image and the categories.

        Returns (label, box xyxy, segmentation, area, iscrowd, where), or None for w or h == 0."""
        if ann["image_id"] not in self._images:
            raise ValueError(f"{where}: unknown image_id {ann['image_id']} (no image has that id)")
        if ann["category_id"] not in self._label_of:
            raise ValueError(f"{where}: unknown category_id {ann['category_id']} (the categories' ids are "
                             f"{self.category_ids[1:]})")
        img = self._images[ann["image_id"]]
        bbox = ann["bbox"]
        x, y, w, h = (float(v) for v in bbox)
        if w < 0 or h < 0:
            raise ValueError(f"{where}: bbox has negative size {bbox!r}")
        if x < -1 or y < -1 or x + w > img["width"] + 1 or y + h > img["height"] + 1:
            raise ValueError(f"{where}: bbox {bbox!r} outside the image of size "
                             f"{img['width']}x{img['height']} (W x H)")
        if w == 0 or h == 0:
            return None
        # Decode once now so a malformed segmentation fails at construction.
        _segmentation_to_mask(ann["segmentation"], img["height"], img["width"], where)
        box = [max(x, 0.0), max(y, 0.0), min(x + w, img["width"]), min(y + h, img["height"])]
        area = float(ann.get("area", w * h))
        return (self._label_of[ann["category_id"]], box, ann["segmentation"], area,
                int(ann.get("iscrowd", 0)), where)

    def _where(self, img: dict) -> str:
        return f"{self.annotations_json}: image id {img['id']}"

    def _check_image(self, img: dict) -> tuple[int, int]:
        """The upright (W, H) from the file's header, which must match the record's width/height."""
        path = os.path.join(self.images_dir, img["file_name"])
        try:
            size = read_image_size(path)
        except ValueError as err:
            raise ValueError(f"{self._where(img)}: {err}") from None
        if size != (img["width"], img["height"]):
            stored = read_image_size(path, upright=False)
            raw = f" upright (stored {stored[0]}x{stored[1]}, turned by its EXIF orientation)" if stored != size else ""
            raise ValueError(f"{self._where(img)}: {path} is {size[0]}x{size[1]}{raw}, the file says "
                             f"{img['width']}x{img['height']} (W x H)")
        return size

    def _read(self, img: dict) -> np.ndarray:
        path = os.path.join(self.images_dir, img["file_name"])
        try:
            image = read_image(path)                                # uint8[H, W, 3]
        except ValueError as err:
            raise ValueError(f"{self._where(img)}: {err}") from None
        if image.shape[:2] != (img["height"], img["width"]):        # an EXIF tag only the decoder saw
            raise ValueError(f"{self._where(img)}: {path} decodes to {image.shape[1]}x{image.shape[0]} upright, "
                             f"the file says {img['width']}x{img['height']} (W x H)")
        return image

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, i: int):
        img = self._images[self.image_ids[i]]
        H, W = img["height"], img["width"]
        image = self._read(img)
        parts = {0: ([], [], [], []), 1: ([], [], [], [])}  # by iscrowd: labels, boxes, masks, areas
        for label, box, segm, area, iscrowd, where in self._anns[img["id"]]:
            labels, boxes, masks, areas = parts[1 if iscrowd else 0]
            labels.append(label)
            boxes.append(box)
            masks.append(_segmentation_to_mask(segm, H, W, where))
            areas.append(area)
        labels, boxes, masks, areas = parts[0]
        G = len(labels)
        target = {
            "boxes": np.array(boxes, dtype=np.float32).reshape(G, 4),
            "labels": np.array(labels, dtype=np.int64),
            "masks": np.array(masks, dtype=np.uint8).reshape(G, H, W),
            "image_id": int(img["id"]),
            "area": np.array(areas, dtype=np.float32),
            "iscrowd": np.zeros(G, dtype=np.int64),
            "crowd_boxes": np.array(parts[1][1], dtype=np.float32).reshape(-1, 4),
            "crowd_masks": np.array(parts[1][2], dtype=np.uint8).reshape(-1, H, W),
        }
        return image, target
