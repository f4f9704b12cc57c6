"""Solutions of lesson 10's exercises (each block replaces the exercise cell of the same number)."""

# %% exercise 1
def circle_polygon(cx, cy, px, py):
    # labelme circle (centre, a point on it) -> flat COCO polygon [x0, y0, x1, y1, ...].
    r = float(np.hypot(px - cx, py - cy))
    n = max(12, int(np.pi / np.arccos(1 - 1 / r))) if r > 1 else 12
    angles = 2 * np.pi * np.arange(n) / n
    points = np.stack([cx + r * np.sin(angles), cy + r * np.cos(angles)], axis=1)   # [n, 2]
    return points.ravel().tolist()

# %% exercise 2
def coco_annotation(points, height, width):
    # labelme polygon [[x, y], ...] -> {"segmentation", "area", "bbox"} as in annotations.json.
    polygon = np.asarray(points, dtype=np.float64).ravel().tolist()
    mask = polygons_to_mask([polygon], height, width)                   # uint8[H, W]
    x1, y1, x2, y2 = masks_to_boxes(mask[None])[0].tolist()             # x2 = last column + 1
    return {"segmentation": [polygon], "area": float(mask.sum()), "bbox": [x1, y1, x2 - x1, y2 - y1]}
