"""One image's detections drawn at the image's own resolution (Pillow, no figure margins).

`draw.save_prediction_grid` lays images out in a matplotlib figure of fixed size; a photo of
4000 x 3000 pixels would shrink there. `save_overlay` writes a PNG of exactly H x W pixels:
the masks blended in (`draw.overlay_masks`, same palette), a box and a "name score" tag per
detection, line width and text size growing with the image.

Shape shorthand: D detections, H, W image size.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from minimrcnn.io import atomic_write
from minimrcnn.viz.draw import PALETTE, overlay_masks


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)     # Pillow >= 10.1 with FreeType
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def draw_overlay(image: np.ndarray, output: dict, class_names=None, score_threshold: float = 0.5) -> np.ndarray:
    """uint8[H, W, 3]: `image` with the detections scoring >= score_threshold.

    Args:
        image (uint8[H, W, 3]).
        output: boxes float[D, 4] xyxy, labels int[D], scores float[D], masks float[D, 1, H, W] (optional).
        class_names (sequence indexed by label, or None: the label number is shown).
    """
    keep = np.asarray(output["scores"]) >= score_threshold
    boxes = np.asarray(output["boxes"]).reshape(-1, 4)[keep]
    labels, scores = np.asarray(output["labels"])[keep], np.asarray(output["scores"])[keep]
    blended = image
    if output.get("masks") is not None and keep.any():
        blended = (overlay_masks(image, np.asarray(output["masks"])[keep], labels) * 255 + 0.5).astype(np.uint8)
    pil = Image.fromarray(np.ascontiguousarray(blended))
    draw = ImageDraw.Draw(pil)
    H, W = image.shape[:2]
    width = max(1, round(min(H, W) / 250))
    font = _font(max(10, round(min(H, W) / 40)))
    for box, label, score in zip(boxes, labels, scores):
        colour = tuple(int(c * 255) for c in PALETTE[int(label) % len(PALETTE)])
        x1, y1, x2, y2 = (float(v) for v in box)
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=width)
        name = class_names[int(label)] if class_names is not None else str(int(label))
        tag = f"{name} {float(score):.2f}"
        left, top, right, bottom = draw.textbbox((x1, y1), tag, font=font, anchor="lb")
        if top < 0:                                   # no room above the box: write inside it
            left, top, right, bottom = draw.textbbox((x1, y1), tag, font=font, anchor="lt")
        draw.rectangle([left, top, right, bottom], fill=colour)
        draw.text((left, top), tag, fill=(255, 255, 255), font=font, anchor="lt")
    return np.asarray(pil)


def save_overlay(path: str, image: np.ndarray, output: dict, class_names=None, score_threshold: float = 0.5) -> None:
    """Write `draw_overlay(...)` as a PNG of the image's own size, atomically."""
    drawn = Image.fromarray(draw_overlay(image, output, class_names, score_threshold))
    atomic_write(path, lambda f: drawn.save(f, format="PNG"), binary=True)
