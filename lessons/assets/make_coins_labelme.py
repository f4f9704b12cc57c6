"""Make lessons/assets/coins_labelme/: 12 photos cut from scikit-image's coins photo, annotated in labelme's format.

The annotations come from a classical segmentation, not from a hand: lesson 10 shows every
step, draws every polygon over its photo (that figure is how they were checked by eye) and
checks that running this file again gives the committed files. From the repository root:

    python lessons/assets/make_coins_labelme.py

The photo is `skimage.data.coins()` (Greek coins from Pompeii, Brooklyn Museum collection,
303 x 384 grey pixels; it ships inside scikit-image). It is cut into a 3 x 4 grid of tiles of
101 x 96 pixels that do not overlap, so that a random train/val split of the tiles never shows
the model a validation pixel.
"""

from __future__ import annotations

import json
import os

import numpy as np

GRID = (3, 4)                 # rows, columns of tiles
MIN_PIXELS = 80               # a coin piece smaller than this at a tile border is not annotated
TOLERANCE = 1.0               # pixels a polygon may deviate from the traced outline (fewer clicks)
LABELME_VERSION = "5.4.1"


def segment_coins(image: np.ndarray) -> np.ndarray:
    """int32[H, W] instance ids (0 background) of uint8[H, W]: scikit-image's coins recipe.

    1. Sobel gradient magnitude: the "elevation map", high on coin rims.
    2. Markers: surely background (grey value < 30) and surely coin (> 150).
    3. Watershed floods the elevation map from the markers: each pixel joins the marker
       whose basin reaches it first, so the split follows the rims, not a fixed threshold.
    4. Holes inside a coin are filled, then connected regions are numbered.
    """
    from scipy import ndimage as ndi
    from skimage.filters import sobel
    from skimage.segmentation import watershed

    elevation = sobel(image)
    markers = np.zeros(image.shape, dtype=np.int32)
    markers[image < 30] = 1
    markers[image > 150] = 2
    coins = ndi.binary_fill_holes(watershed(elevation, markers) == 2)
    instances, _ = ndi.label(coins)
    return instances


def tiles(shape) -> list[tuple[slice, slice]]:
    """(rows, columns) slices of the GRID tiles of an image of this shape."""
    H, W = shape[:2]
    h, w = H // GRID[0], W // GRID[1]
    return [(slice(r * h, (r + 1) * h), slice(c * w, (c + 1) * w)) for r in range(GRID[0]) for c in range(GRID[1])]


def mask_polygon(mask: np.ndarray) -> list[list[float]]:
    """The outline of a binary mask as [[x, y], ...], simplified as an annotator would click it.

    The contour at level 0.5 runs halfway between coin and background pixel centres, which is
    where COCO's polygon rule (a pixel is inside when its centre coordinate is) puts the edge.
    """
    from skimage.measure import approximate_polygon, find_contours

    padded = np.pad(mask.astype(float), 1)              # closes contours that touch the border
    contour = max(find_contours(padded, 0.5), key=len) - 1
    contour = approximate_polygon(contour, tolerance=TOLERANCE)[:-1]   # (row, col), closed -> open
    return [[round(float(c), 2), round(float(r), 2)] for r, c in contour]


def labelme_documents(image: np.ndarray, instances: np.ndarray) -> dict:
    """{file name: labelme JSON} of every tile, with one 'coin' polygon per coin piece."""
    documents = {}
    for k, (rows, cols) in enumerate(tiles(image.shape)):
        tile = instances[rows, cols]
        shapes = []
        for coin in np.unique(tile[tile > 0]):
            piece = tile == coin
            if piece.sum() >= MIN_PIXELS:
                shapes.append({"label": "coin", "points": mask_polygon(piece), "group_id": None,
                               "description": "", "shape_type": "polygon", "flags": {}, "mask": None})
        name = f"coins_{k:02d}.png"
        documents[name] = {"version": LABELME_VERSION, "flags": {}, "shapes": shapes, "imagePath": name,
                           "imageData": None, "imageHeight": tile.shape[0], "imageWidth": tile.shape[1]}
    return documents


def write(folder: str) -> None:
    from PIL import Image
    from skimage.data import coins

    image = coins()
    os.makedirs(folder, exist_ok=True)
    documents = labelme_documents(image, segment_coins(image))
    for (rows, cols), (name, document) in zip(tiles(image.shape), documents.items()):
        Image.fromarray(image[rows, cols]).save(os.path.join(folder, name))
        with open(os.path.join(folder, name.replace(".png", ".json")), "w") as f:
            json.dump(document, f, indent=2)


if __name__ == "__main__":
    write(os.path.join(os.path.dirname(os.path.abspath(__file__)), "coins_labelme"))
