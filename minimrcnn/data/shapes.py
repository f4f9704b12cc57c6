"""The tiny-shapes dataset: squares, circles and triangles painted on a plain background.

Spec: docs/shapes-preset.md (the "tiny-shapes preset"). Every sample is drawn from its
own random generator `np.random.default_rng([seed, i])`, so sample i of a set
depends only on (seed, i): no state is carried between samples, any index can be
generated first, and a training run can be resumed exactly.

Pixel model: pixel (x, y) covers [x, x+1) x [y, y+1) and is tested at its centre
(x + 0.5, y + 0.5). A square of side 2 centred at (3, 3) covers pixels 2 and 3 in
each direction. Boxes are (x1, y1, x2, y2) from the visible mask with
x2 = last column + 1, so that box width = number of columns.

Painting order is occlusion order: a later object hides the earlier ones, whose
masks lose the hidden pixels; instances left with fewer than `min_visible_pixels`
pixels are dropped from the targets (their few pixels stay painted).

Shape shorthand: H, W image size; G instances in an image.
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES = ("__background__", "square", "circle", "triangle")
SQUARE, CIRCLE, TRIANGLE = 1, 2, 3


def shape_mask(label: int, cx: float, cy: float, size: float, angle: float,
               px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """bool[h, w]: pixels whose centre (px, py) lies inside the shape (px, py float[h, w])."""
    half = size / 2.0
    if label == SQUARE:  # axis-aligned, side = size
        return (np.abs(px - cx) < half) & (np.abs(py - cy) < half)
    if label == CIRCLE:  # diameter = size
        return (px - cx) ** 2 + (py - cy) ** 2 < half ** 2
    # Equilateral triangle, circumcircle diameter = size, rotated by `angle`.
    corners = [(cx + half * np.cos(angle + k * 2 * np.pi / 3),
                cy + half * np.sin(angle + k * 2 * np.pi / 3)) for k in range(3)]
    inside = np.ones(px.shape, dtype=bool)
    for k in range(3):
        (x0, y0), (x1, y1) = corners[k], corners[(k + 1) % 3]
        # Edge function: the same sign for every point on the inner side of each edge.
        inside &= (x1 - x0) * (py - y0) - (y1 - y0) * (px - x0) >= 0
    return inside


def _window(center: float, half: float, size: int) -> slice:
    """Pixel range that can hold a shape of radius `half` around `center` (speed only)."""
    return slice(max(int(np.floor(center - half)) - 1, 0), min(int(np.ceil(center + half)) + 1, size))


def _pick_colors(rng: np.random.Generator, count: int, min_distance: float) -> np.ndarray:
    """uint8[1 + count, 3]: a background colour then `count` object colours, pairwise far apart.

    Rejection sampling with a bounded number of tries; if a colour cannot be placed
    far enough from all others, the best candidate seen (largest minimum distance) is used.
    """
    colors = [rng.integers(0, 256, size=3)]
    for _ in range(count):
        best, best_dist = None, -1.0
        for _ in range(100):
            candidate = rng.integers(0, 256, size=3)
            dist = min(float(np.linalg.norm(candidate - c)) for c in colors)
            if dist > best_dist:
                best, best_dist = candidate, dist
            if dist >= min_distance:
                break
        colors.append(best)
    return np.stack(colors).astype(np.uint8)


class ShapesDataset:
    """`num_images` synthetic images with instance masks; sample i depends only on (seed, i).

    Args:
        num_images: length of the dataset.
        seed: dataset seed (use a different one for held-out evaluation).
        image_size: H = W of each image.
        min_objects, max_objects: objects painted per image (inclusive).
        min_size, max_size: object size in pixels (inclusive; square side, circle
            diameter, triangle circumcircle diameter).
        min_visible_pixels: an instance with fewer visible pixels is dropped.
        min_color_distance: minimum RGB distance between any two colours of an image.

    `dataset[i]` returns (image uint8[H, W, 3], target) with target
        boxes float32[G, 4] xyxy, labels int64[G] (1 square, 2 circle, 3 triangle),
        masks uint8[G, H, W], image_id int (= i), area float32[G] (mask pixel count),
        iscrowd int64[G] (zeros).
    """

    class_names = CLASS_NAMES
    num_classes = len(CLASS_NAMES)

    def __init__(self, num_images: int, seed: int = 0, image_size: int = 128,
                 min_objects: int = 1, max_objects: int = 4, min_size: int = 12,
                 max_size: int = 48, min_visible_pixels: int = 20,
                 min_color_distance: float = 100.0):
        if num_images < 0:
            raise ValueError(f"num_images must be >= 0, got {num_images}")
        if not 1 <= min_objects <= max_objects:
            raise ValueError(f"need 1 <= min_objects <= max_objects, got {min_objects}, {max_objects}")
        if not 1 <= min_size <= max_size:
            raise ValueError(f"need 1 <= min_size <= max_size, got {min_size}, {max_size}")
        if min_visible_pixels > min_size * min_size // 3:
            raise ValueError(f"min_visible_pixels={min_visible_pixels} too large for min_size={min_size}")
        self.num_images = int(num_images)
        self.seed = int(seed)
        self.image_size = int(image_size)
        self.min_objects, self.max_objects = int(min_objects), int(max_objects)
        self.min_size, self.max_size = int(min_size), int(max_size)
        self.min_visible_pixels = int(min_visible_pixels)
        self.min_color_distance = float(min_color_distance)
        # Pixel-centre coordinates, computed once: px[y, x] = x + 0.5, py[y, x] = y + 0.5.
        centers = np.arange(self.image_size, dtype=np.float64) + 0.5
        self._px, self._py = np.meshgrid(centers, centers)

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, i: int):
        if not -self.num_images <= i < self.num_images:
            raise IndexError(f"index {i} out of range for ShapesDataset of length {self.num_images}")
        i = int(i) % self.num_images
        return self.generate(i)

    def generate(self, i: int):
        """Sample i (any i >= 0, also beyond len): redraw until at least one instance survives."""
        rng = np.random.default_rng([self.seed, i])
        while True:
            sample = self._draw(rng, i)
            if sample is not None:
                return sample

    def _draw(self, rng: np.random.Generator, image_id: int):
        """One attempt: paint the objects, apply occlusion, drop tiny instances (None if none left)."""
        size = self.image_size
        num_objects = int(rng.integers(self.min_objects, self.max_objects + 1))
        colors = _pick_colors(rng, num_objects, self.min_color_distance)
        image = np.empty((size, size, 3), dtype=np.uint8)
        image[:] = colors[0]
        labels, masks = [], []
        for k in range(num_objects):
            label = int(rng.integers(1, 4))
            obj_size = float(rng.integers(self.min_size, self.max_size + 1))
            cx, cy = rng.uniform(0, size, size=2)  # centres anywhere: objects may be cut by the border
            angle = float(rng.uniform(0, 2 * np.pi))
            # Rasterise inside the shape's bounding window only; the rest of the mask is 0.
            rows, cols = _window(cy, obj_size / 2, size), _window(cx, obj_size / 2, size)
            mask = np.zeros((size, size), dtype=bool)
            mask[rows, cols] = shape_mask(label, cx, cy, obj_size, angle,
                                          self._px[rows, cols], self._py[rows, cols])
            image[rows, cols][mask[rows, cols]] = colors[k + 1]
            for earlier in masks:  # the new object hides what it covers
                earlier[rows, cols] &= ~mask[rows, cols]
            labels.append(label)
            masks.append(mask)
        keep = [k for k, m in enumerate(masks) if m.sum() >= self.min_visible_pixels]
        if not keep:
            return None
        masks_g = np.stack([masks[k] for k in keep]).astype(np.uint8)  # (G, H, W)
        target = {
            "boxes": masks_to_boxes(masks_g),
            "labels": np.array([labels[k] for k in keep], dtype=np.int64),
            "masks": masks_g,
            "image_id": int(image_id),
            "area": masks_g.reshape(len(keep), -1).sum(1).astype(np.float32),
            "iscrowd": np.zeros(len(keep), dtype=np.int64),
        }
        return image, target


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """float32[G, 4] xyxy boxes of uint8[G, H, W] masks, x2 = last column + 1 (zeros if empty)."""
    boxes = np.zeros((len(masks), 4), dtype=np.float32)
    for g, mask in enumerate(masks):
        cols = np.flatnonzero(mask.any(0))
        rows = np.flatnonzero(mask.any(1))
        if len(cols):
            boxes[g] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes


def generate_batch(seed: int, start: int, count: int, **kwargs):
    """Samples start .. start+count-1 of the shapes set with this seed (kwargs as ShapesDataset)."""
    dataset = ShapesDataset(start + count, seed=seed, **kwargs)
    return [dataset.generate(i) for i in range(start, start + count)]
