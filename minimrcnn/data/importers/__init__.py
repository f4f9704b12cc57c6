"""Annotations from labelme and VIA into COCO-format folders (docs/custom-data.md, "Importing").

    from minimrcnn.data.importers import import_labelme, import_via
    import_labelme("photos/", "data/coins", val_fraction=0.2, seed=0)
    import_via("via_project.json", "photos/", "data/balloons", label_attribute="type")

Both return {"categories": [...], "splits": {...}, "instances": N} and write what
``minimrcnn train --coco`` reads. Masks follow COCO's polygon rule: the same pixels as
pycocotools' ``annToMask``. Errors are ValueErrors (`AnnotationError`) naming the file and shape.
"""

from __future__ import annotations

from minimrcnn.data.importers.common import AnnotationError, write_coco
from minimrcnn.data.importers.labelme import read_labelme
from minimrcnn.data.importers.via import read_via

__all__ = ["import_labelme", "import_via", "AnnotationError"]


def import_labelme(src: str, out_dir: str, categories=None, val_fraction: float = 0.0, seed: int = 0,
                   layout: str = "minimrcnn") -> dict:
    """labelme JSON files (folder `src`, or one file) -> COCO folder(s) under `out_dir`.

    Args:
        categories (list of str or None): category names in id order 1..K; default the sorted labels.
        val_fraction (float in [0, 1)): share of images moved to out_dir/val (the rest to
            out_dir/train); 0 writes out_dir/images and out_dir/annotations.json.
        seed (int): seed of the split.
        layout (str): "minimrcnn", or "torchvision-references" for torchvision's
            references/detection/train.py (train2017/, val2017/, annotations/; needs val_fraction).
    """
    return write_coco(read_labelme(src), out_dir, categories, val_fraction, seed, layout)


def import_via(project: str, images_dir: str, out_dir: str, label_attribute: str | None = None,
               categories=None, val_fraction: float = 0.0, seed: int = 0, layout: str = "minimrcnn") -> dict:
    """A VIA 2.x project or export JSON, with its images in `images_dir` -> COCO folder(s).

    Args:
        label_attribute (str or None): the region attribute holding the class name; default
            the only one the regions carry. Others as `import_labelme`.
    """
    return write_coco(read_via(project, images_dir, label_attribute), out_dir, categories, val_fraction, seed, layout)
