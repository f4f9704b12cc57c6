"""Annotation files as labelme 5.x and VIA 2.0.x write them, made up for the import tests.

The files carry every field the tools add (labelme: version, flags, group_id, description,
mask, imageHeight/Width, imageData null or base64; VIA: _via_settings, _via_attributes,
_via_data_format_version, _via_image_id_list, size in the entry key, file_attributes), so
the importer reads them as it would read a user's. The shapes are chosen to exercise COCO's
polygon rule: thin diagonal strips, shapes on the image border, objects of several polygons
(labelme group_id), rectangles dragged from either corner, circles and rotated ellipses.
"""

from __future__ import annotations

import base64
import io
import json
import os

import numpy as np
from PIL import Image

LABELME_VERSION = "5.4.1"


def noise_image(rng, width: int, height: int, fmt: str = "PNG") -> bytes:
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def labelme_shape(label, points, shape_type="polygon", group_id=None):
    return {"label": label, "points": [[float(x), float(y)] for x, y in points], "group_id": group_id,
            "description": "", "shape_type": shape_type, "flags": {}, "mask": None}


def labelme_document(shapes, image_name, width, height, image_bytes=None):
    return {"version": LABELME_VERSION, "flags": {}, "shapes": shapes, "imagePath": image_name,
            "imageData": base64.b64encode(image_bytes).decode("ascii") if image_bytes is not None else None,
            "imageHeight": height, "imageWidth": width}


def random_polygon(rng, width, height, vertices):
    cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
    angles = np.sort(rng.uniform(0, 2 * np.pi, vertices))
    radii = rng.uniform(0.1, 0.3, vertices) * min(width, height)
    points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)
    return np.clip(points, 0, [width, height])     # the tools keep drawn points on the image


def labelme_shapes(rng, width, height):
    """A mix of every shape kind labelme draws, on an image of this size."""
    shapes = [
        labelme_shape("cat", random_polygon(rng, width, height, int(rng.integers(3, 12)))),
        # a thin diagonal strip, one pixel wide: COCO's rule decides every pixel
        labelme_shape("strip", [(2.3, 1.1), (width - 3.2, height - 2.7), (width - 2.4, height - 3.1), (3.1, 0.6)]),
        # touching (and 1 pixel past) the border, as annotators drag to the edge
        labelme_shape("cat", [(-1.0, -0.5), (width * 0.4, 0.0), (width * 0.3, height * 0.3), (0.0, height * 0.35)]),
        labelme_shape("cat", [(width - 1.0, height * 0.5), (width + 0.8, height * 0.5), (width, height),
                              (width * 0.7, height)]),
        # a rectangle dragged from its bottom-right corner, a circle
        labelme_shape("box", [(width * 0.8, height * 0.9), (width * 0.55, height * 0.6)], "rectangle"),
        labelme_shape("ball", [(width * 0.5, height * 0.5), (width * 0.5 + 6.3, height * 0.5 + 2.1)], "circle"),
        # one dog made of two polygons (labelme's group_id), and a second dog alone
        labelme_shape("dog", random_polygon(rng, width, height, 5), group_id=1),
        labelme_shape("dog", random_polygon(rng, width, height, 6), group_id=1),
        labelme_shape("dog", random_polygon(rng, width, height, 4)),
    ]
    return shapes


def write_labelme_folder(folder, seed=0, count=5):
    """labelme's output for `count` images: image files beside the JSONs, two with imageData embedded."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        width, height = int(rng.integers(40, 90)), int(rng.integers(40, 90))
        fmt, ext = ("JPEG", "jpg") if i % 2 else ("PNG", "png")
        name = f"photo_{i:02d}.{ext}"
        data = noise_image(rng, width, height, fmt)
        embedded = i in (1, 3)
        if not embedded:
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)
        document = labelme_document(labelme_shapes(rng, width, height), name, width, height,
                                    data if embedded else None)
        with open(os.path.join(folder, f"photo_{i:02d}.json"), "w") as f:
            json.dump(document, f, indent=2)      # labelme indents with 2 spaces
    return folder


# ----------------------------------------------------------------------------- VIA
def via_region(shape_attributes, region_attributes):
    return {"shape_attributes": shape_attributes, "region_attributes": region_attributes}


def via_polygon(points):
    return {"name": "polygon", "all_points_x": [int(round(x)) for x, _ in points],
            "all_points_y": [int(round(y)) for _, y in points]}


def via_regions(rng, width, height, attribute="type"):
    label = lambda name: {attribute: name}  # noqa: E731
    return [
        via_region(via_polygon(random_polygon(rng, width, height, 7)), label("balloon")),
        via_region(via_polygon([(1, 1), (width - 2, height - 3), (width - 1, height - 3), (2, 0)]), label("string")),
        via_region({"name": "rect", "x": 0, "y": int(height * 0.7), "width": int(width * 0.3),
                    "height": height - int(height * 0.7)}, label("box")),
        via_region({"name": "circle", "cx": int(width * 0.6), "cy": int(height * 0.4), "r": 7.5}, label("balloon")),
        via_region({"name": "ellipse", "cx": int(width * 0.3), "cy": int(height * 0.3), "rx": 9.2, "ry": 4.1,
                    "theta": 0.6}, label("balloon")),
    ]


def write_via_project(path, images_dir, seed=0, count=4, attribute="type", export_only=False):
    """A VIA 2.0.10 project file ("Save project") over `count` images written to images_dir."""
    rng = np.random.default_rng(seed)
    os.makedirs(images_dir, exist_ok=True)
    metadata = {}
    for i in range(count):
        width, height = int(rng.integers(40, 90)), int(rng.integers(40, 90))
        name = f"balloon_{i:02d}.jpg"
        data = noise_image(rng, width, height, "JPEG")
        with open(os.path.join(images_dir, name), "wb") as f:
            f.write(data)
        metadata[f"{name}{len(data)}"] = {"filename": name, "size": len(data),
                                          "regions": via_regions(rng, width, height, attribute),
                                          "file_attributes": {}}
    project = {
        "_via_settings": {"ui": {"annotation_editor_height": 25, "annotation_editor_fontsize": 0.8,
                                 "leftsidebar_width": 18, "image_grid": {"img_height": 80, "rshape_fill": "none"},
                                 "image": {"region_label": "__via_region_id__", "region_color": "__via_default_region_color__",
                                           "region_label_font": "10px Sans", "on_image_annotation_editor_placement": "NEAR_REGION"}},
                          "core": {"buffer_size": 18, "filepath": {}, "default_filepath": ""},
                          "project": {"name": "via_project_6Dec2026_0h0m"}},
        "_via_img_metadata": metadata,
        "_via_attributes": {"region": {attribute: {"type": "dropdown", "description": "",
                                                   "options": {"balloon": "", "string": "", "box": ""},
                                                   "default_options": {}}},
                            "file": {}},
        "_via_data_format_version": "2.0.10",
        "_via_image_id_list": list(metadata),
    }
    with open(path, "w") as f:
        json.dump(metadata if export_only else project, f)
    return path
