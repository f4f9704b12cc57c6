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

Shape shorthand: H, W image size; G instances; K classes including background.
"""

from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image

from minimrcnn.data import rle as rle_codec
from minimrcnn.data.shapes import CLASS_NAMES, ShapesDataset


def export_shapes_coco(out_dir: str, num_images: int, seed: int, image_size: int = 128,
                       segmentation: str = "rle") -> str:
    """Write out_dir/images/NNNNNN.png and out_dir/annotations.json for a shapes set.

    Args:
        segmentation: "rle" (compressed RLE, exact), "polygon" (traced outlines, lossy
            at the pixel level) or "mixed" (odd annotation ids RLE, even ids polygons).
    Returns:
        the path of annotations.json. Image ids are the sample indices 0..num_images-1;
        annotation ids start at 1; categories 1 square, 2 circle, 3 triangle.
    """
    if segmentation not in ("rle", "polygon", "mixed"):
        raise ValueError(f"segmentation must be 'rle', 'polygon' or 'mixed', got {segmentation!r}")
    os.makedirs(os.path.join(out_dir, "images"), exist_ok=True)
    dataset = ShapesDataset(num_images, seed=seed, image_size=image_size)
    images, annotations = [], []
    for i in range(num_images):
        image, target = dataset[i]
        file_name = f"{i:06d}.png"
        Image.fromarray(image).save(os.path.join(out_dir, "images", file_name))
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
    path = os.path.join(out_dir, "annotations.json")
    with open(path, "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)
    return path


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
    Grayscale, palette and RGBA images are converted to RGB.

    Attributes: class_names (tuple, index = label, 0 "__background__"), category_ids
    (list, index = label, 0 for background), num_classes K, image_ids.

    Everything (keys, boxes, categories, segmentations, that each image opens) is
    checked in the constructor; a malformed file raises ValueError naming the file,
    the annotation id and the problem. Boxes may overshoot the image by up to 1 pixel
    (rounding in real files) and are clipped; annotations with w or h == 0 are skipped.
    """

    def __init__(self, images_dir: str, annotations_json: str):
        self.images_dir = images_dir
        self.annotations_json = annotations_json
        try:
            with open(annotations_json) as f:
                data = json.load(f)
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{annotations_json}: cannot read JSON: {err}") from None
        for key in ("images", "annotations", "categories"):
            if not isinstance(data, dict) or key not in data:
                raise ValueError(f"{annotations_json}: missing top-level key {key!r}")
        cats = data["categories"]
        for c in cats:
            if "id" not in c or "name" not in c:
                raise ValueError(f"{annotations_json}: category {c!r} lacks 'id' or 'name'")
        cats = sorted(cats, key=lambda c: c["id"])
        self.category_ids = [0] + [int(c["id"]) for c in cats]
        self.class_names = ("__background__",) + tuple(c["name"] for c in cats)
        self.num_classes = len(self.class_names)
        self._label_of = {cid: label for label, cid in enumerate(self.category_ids) if label > 0}
        self._images = {}
        for img in data["images"]:
            for key in ("id", "file_name", "height", "width"):
                if key not in img:
                    raise ValueError(f"{annotations_json}: image {img.get('id', '?')} lacks key {key!r}")
            self._images[img["id"]] = img
        self.image_ids = sorted(self._images)
        for image_id in self.image_ids:  # images first: an annotation is checked against its image
            self._check_image(self._images[image_id])
        self._anns = {image_id: [] for image_id in self.image_ids}
        for ann in data["annotations"]:
            checked = self._check_annotation(ann)
            if checked is not None:
                self._anns[ann["image_id"]].append(checked)

    def _check_annotation(self, ann: dict):
        """Validate one annotation and return (label, box xyxy, segmentation, area, iscrowd)."""
        where = f"{self.annotations_json}: annotation id {ann.get('id', '?')}"
        for key in ("id", "image_id", "category_id", "bbox", "segmentation"):
            if key not in ann:
                raise ValueError(f"{where}: missing key {key!r}")
        if ann["image_id"] not in self._images:
            raise ValueError(f"{where}: unknown image_id {ann['image_id']}")
        if ann["category_id"] not in self._label_of:
            raise ValueError(f"{where}: unknown category_id {ann['category_id']}")
        img = self._images[ann["image_id"]]
        bbox = ann["bbox"]
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise ValueError(f"{where}: bbox must be [x, y, w, h], got {bbox!r}")
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

    def _check_image(self, img: dict) -> None:
        path = os.path.join(self.images_dir, img["file_name"])
        try:
            with Image.open(path) as pil:
                size = pil.size
        except (OSError, ValueError) as err:
            raise ValueError(f"{self.annotations_json}: image id {img['id']}: cannot open {path}: {err}") from None
        if size != (img["width"], img["height"]):
            raise ValueError(f"{self.annotations_json}: image id {img['id']}: {path} is {size[0]}x{size[1]}, "
                             f"the file says {img['width']}x{img['height']} (W x H)")

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, i: int):
        img = self._images[self.image_ids[i]]
        H, W = img["height"], img["width"]
        with Image.open(os.path.join(self.images_dir, img["file_name"])) as pil:
            image = np.asarray(pil.convert("RGB"), dtype=np.uint8).copy()
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
