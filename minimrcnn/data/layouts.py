"""Folder layouts of a COCO data set with a train and a val split.

minimrcnn's (what ``minimrcnn train --coco DIR/train --val-coco DIR/val`` reads):

    DIR/train/images/...   DIR/train/annotations.json
    DIR/val/images/...     DIR/val/annotations.json

torchvision's references/detection/train.py ``--dataset coco --data-path DIR`` (its fixed
layout, COCO 2017's file names):

    DIR/train2017/...      DIR/annotations/instances_train2017.json
    DIR/val2017/...        DIR/annotations/instances_val2017.json

That script reads masks with pycocotools' ``frPyObjects``, which takes polygons and
uncompressed RLE but not compressed RLE strings: folders meant for it hold polygons.
"""

from __future__ import annotations

import os

LAYOUTS = ("minimrcnn", "torchvision-references")
SPLITS = ("train", "val")


def references_paths(folder: str, split: str) -> tuple[str, str]:
    """(images folder, annotations file) of `split` in the references layout under `folder`."""
    return (os.path.join(folder, f"{split}2017"),
            os.path.join(folder, "annotations", f"instances_{split}2017.json"))


def to_references_layout(folder: str) -> None:
    """Move folder/{train,val}/{images, annotations.json} into the references layout, in place."""
    os.makedirs(os.path.join(folder, "annotations"), exist_ok=True)
    for split in SPLITS:
        images, annotations = references_paths(folder, split)
        os.rename(os.path.join(folder, split, "images"), images)
        os.rename(os.path.join(folder, split, "annotations.json"), annotations)
        os.rmdir(os.path.join(folder, split))


def export_shapes_references(out_dir: str, num_images: int, num_val_images: int, seed: int = 0,
                             image_size: int = 128) -> tuple[str, str]:
    """Shapes in the references layout: train2017 with `seed`, val2017 with `seed + 1`, polygon masks.

    The same images as ``minimrcnn shapes export`` with those seeds (which minimrcnn's own
    ``train`` and ``eval`` read). Assembled under a temporary name beside `out_dir`, which must
    not exist or be empty. Returns the two image folders.
    """
    from minimrcnn.data.coco import export_shapes_coco
    from minimrcnn.io import atomic_folder

    def fill(tmp):
        for split, count, split_seed in (("train", num_images, seed), ("val", num_val_images, seed + 1)):
            export_shapes_coco(os.path.join(tmp, split), count, split_seed, image_size, segmentation="polygon")
        to_references_layout(tmp)

    atomic_folder(out_dir, fill)
    return references_paths(out_dir, "train")[0], references_paths(out_dir, "val")[0]
