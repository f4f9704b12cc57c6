"""Typical wrong answers to lesson 10's exercises; each block's mark line gives the regex its rejection must match."""

# %% exercise 1: your code called minimrcnn\.data\.importers\.common\.ellipse_polygon
def circle_polygon(cx, cy, px, py):
    # the library shortcut
    r = float(np.hypot(px - cx, py - cy))
    return ellipse_polygon(cx, cy, r, r)

# %% exercise 1: point \d+ .*x = cx \+ r sin
def circle_polygon(cx, cy, px, py):
    # sin and cos swapped (the usual maths convention, not labelme's)
    r = float(np.hypot(px - cx, py - cy))
    n = max(12, int(np.pi / np.arccos(1 - 1 / r))) if r > 1 else 12
    angles = 2 * np.pi * np.arange(n) / n
    return np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], axis=1).ravel().tolist()

# %% exercise 1: expected n = \d+ points
def circle_polygon(cx, cy, px, py):
    # always 12 points, whatever the radius
    r = float(np.hypot(px - cx, py - cy))
    angles = 2 * np.pi * np.arange(12) / 12
    return np.stack([cx + r * np.sin(angles), cy + r * np.cos(angles)], axis=1).ravel().tolist()

# %% exercise 2: your bbox .*w = last column \+ 1
def coco_annotation(points, height, width):
    # w = last column - first column (the +1 forgotten)
    polygon = np.asarray(points, dtype=np.float64).ravel().tolist()
    mask = polygons_to_mask([polygon], height, width)
    ys, xs = np.nonzero(mask)
    return {"segmentation": [polygon], "area": float(mask.sum()),
            "bbox": [float(xs.min()), float(ys.min()), float(xs.max() - xs.min()), float(ys.max() - ys.min())]}

# %% exercise 2: your area .*number of mask pixels
def coco_annotation(points, height, width):
    # the polygon's own area (shoelace) instead of the mask's pixel count
    xy = np.asarray(points, dtype=np.float64)
    polygon = xy.ravel().tolist()
    mask = polygons_to_mask([polygon], height, width)
    x1, y1, x2, y2 = masks_to_boxes(mask[None])[0].tolist()
    area = 0.5 * abs(np.dot(xy[:, 0], np.roll(xy[:, 1], 1)) - np.dot(xy[:, 1], np.roll(xy[:, 0], 1)))
    return {"segmentation": [polygon], "area": float(area), "bbox": [x1, y1, x2 - x1, y2 - y1]}

# %% exercise 2: your segmentation
def coco_annotation(points, height, width):
    # the points as pairs, not flattened
    polygon = np.asarray(points, dtype=np.float64).ravel().tolist()
    mask = polygons_to_mask([polygon], height, width)
    x1, y1, x2, y2 = masks_to_boxes(mask[None])[0].tolist()
    return {"segmentation": [points], "area": float(mask.sum()), "bbox": [x1, y1, x2 - x1, y2 - y1]}

# %% exercise 2: your code called minimrcnn\.data\.importers\.common\.rasterise
def coco_annotation(points, height, width):
    # the library shortcut: the importer's own rasterise
    from minimrcnn.data.importers.common import ImportedImage, ImportedInstance, rasterise
    polygon = np.ravel(points).astype(float).tolist()
    image = ImportedImage(file_name="x.png", where="exercise",
                          instances=[ImportedInstance(label="coin", polygons=[polygon], where="exercise")])
    return rasterise(image, height, width, {"coin": 1})[0]
