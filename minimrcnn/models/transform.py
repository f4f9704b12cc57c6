"""GeneralizedRCNNTransform: validate, normalise, resize and batch images; undo it after.

The first and last stage of Mask R-CNN, as torchvision's ``transform.py``:

1. validate every image and target and name the image and field on a mistake;
2. normalise ``(img - mean) / std`` per channel, THEN resize (torchvision's order);
3. resize so the short side is ``min_size`` unless the long side would pass
   ``max_size``: ``s = min(min_size / short, max_size / long)``, new size
   ``floor(h * s) x floor(w * s)``, bilinear with ``align_corners=False``
   (``nn.functional.interpolate``, torch's formulas);
4. scale target boxes by ``out / in`` and resize target masks with legacy nearest;
5. zero-pad (in normalised space, so 0 is the mean colour) to a common size that is
   a multiple of 32, giving one ``float[N, 3, Hpad, Wpad]`` batch.

``postprocess`` maps detections back: boxes times ``original / resized`` and masks
pasted into the original image size.

Shape shorthand: N images, H, W, G ground-truth boxes, D detections, M mask size.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from minimrcnn.nn.functional.interpolate import axis_sources, interpolate
from minimrcnn.nn.module import Module
from minimrcnn.ops import paste_masks_in_image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageList(NamedTuple):
    """A padded batch and the sizes of the images inside it.

    tensors (float[N, 3, Hpad, Wpad]): normalised, resized, zero-padded images.
    image_sizes (list of (h, w)): the resized, unpadded size of each image.
    """
    tensors: np.ndarray
    image_sizes: list


def to_float_chw(image: np.ndarray, name: str = "image") -> np.ndarray:
    """uint8[H, W, 3] -> float32[3, H, W] in [0, 1]: the one uint8 -> float conversion.

    ``value / 255`` in float32, channels first. The transform calls it on uint8 images,
    so callers can pass images as they come from disk. ``name`` is used in errors.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        got = f"dtype {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
        raise TypeError(f"{name} must be a uint8 numpy array [H, W, 3], got {got}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{name} must be a non-empty uint8 [H, W, 3] image, got shape {image.shape}")
    return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / 255.0


def nearest_resize_masks(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Legacy 'nearest' resize of uint8[G, H, W] masks to uint8[G, Ho, Wo] (torch's
    upsample_nearest2d: ``src = min(floor(dst * in/out), in - 1)``, float32 scale)."""
    rows = axis_sources(masks.shape[1], size[0], "nearest")[0]      # int64[Ho]
    cols = axis_sources(masks.shape[2], size[1], "nearest")[0]      # int64[Wo]
    return masks[:, rows[:, None], cols[None, :]]


def resize_boxes(boxes: np.ndarray, original_size, new_size) -> np.ndarray:
    """Scale xyxy boxes float[G, 4] from ``original_size`` (h, w) to ``new_size`` (h, w).

    The ratios are float32 ``new / original``, as torchvision computes them.
    """
    ratio_h = np.float32(new_size[0]) / np.float32(original_size[0])
    ratio_w = np.float32(new_size[1]) / np.float32(original_size[1])
    scale = np.array([ratio_w, ratio_h, ratio_w, ratio_h], dtype=np.float32)
    return (boxes * scale).astype(boxes.dtype)


class GeneralizedRCNNTransform(Module):
    """Images in, one padded normalised batch out; detections back to image coordinates.

    A Module, as in torchvision: it shows in ``repr(model)`` and follows ``train()`` /
    ``eval()``. It has no parameters or buffers (no state_dict keys) and no backward:
    nothing before it learns, so no gradient is wanted at the images. Its forward returns
    ``(ImageList, targets, original_sizes)``; ``original_sizes`` plays the cache's part,
    as the one thing ``postprocess`` needs to undo the resize.

    Args:
        min_size (int): target length of the short side (800 for COCO, 128 for shapes).
        max_size (int): cap on the long side (1333 for COCO).
        image_mean, image_std (3 floats): per-channel normalisation (ImageNet's).
        size_divisible (int): the padded batch is a multiple of this (32: stride of C5).
        num_classes (int or None): when given, target labels must lie in [1, num_classes-1].
    """

    def __init__(self, min_size=800, max_size=1333, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD,
                 size_divisible=32, num_classes=None):
        super().__init__()
        self.min_size, self.max_size = int(min_size), int(max_size)
        self.image_mean = np.asarray(image_mean, dtype=np.float64)
        self.image_std = np.asarray(image_std, dtype=np.float64)
        self.size_divisible = int(size_divisible)
        self.num_classes = num_classes

    def extra_repr(self):
        return (f"min_size={self.min_size}, max_size={self.max_size}, "
                f"mean={self.image_mean.tolist()}, std={self.image_std.tolist()}")

    # -- validation ---------------------------------------------------------------
    def check_image(self, image, i: int, dtype=None) -> np.ndarray:
        """Return image i as float[3, H, W] in [0, 1]; uint8[H, W, 3] is converted (/255).

        ``dtype`` (the weights' dtype, given by the model): a float32 or float64 image is cast
        to it after the checks, so a float64 image runs through a float32 model (values in
        [0, 1] lose nothing a float32 model could use) and a float32 or uint8 one through a
        float64 model in a gradient check. None keeps the image's own float dtype.
        """
        if not isinstance(image, np.ndarray):
            raise TypeError(f"images[{i}] must be a numpy array, got {type(image).__name__}")
        if dtype is not None:
            return self.check_image(image, i).astype(dtype, copy=False)
        if image.dtype == np.uint8:
            return to_float_chw(image, f"images[{i}]")
        if image.dtype not in (np.float32, np.float64):
            raise TypeError(f"images[{i}] must be float32/float64 [3, H, W] or uint8 [H, W, 3], "
                            f"got dtype {image.dtype}")
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"images[{i}] must be a float [3, H, W] image, got shape {image.shape}")
        if image.shape[1] < 1 or image.shape[2] < 1:
            raise ValueError(f"images[{i}] must be a non-empty float [3, H, W] image, got shape {image.shape}")
        if not np.all(np.isfinite(image)):
            raise ValueError(f"images[{i}] must have finite float values in [0, 1], "
                             f"got {int(np.count_nonzero(~np.isfinite(image)))} NaN/inf values")
        if image.min() < 0 or image.max() > 1:
            raise ValueError(f"images[{i}] must have finite float values in [0, 1], "
                             f"got range [{image.min()}, {image.max()}]")
        return image

    def check_target(self, target, i: int, image_hw) -> dict:
        """Validate target i: boxes float[G, 4] non-degenerate, labels int64[G], masks uint8[G, H, W]."""
        if not isinstance(target, dict):
            raise TypeError(f"targets[{i}] must be a dict, got {type(target).__name__}")
        for key in ("boxes", "labels"):
            if key not in target:
                raise ValueError(f"targets[{i}] must have the field '{key}', got fields {sorted(target)}")
        boxes = np.asarray(target["boxes"])
        if boxes.ndim != 2 or boxes.shape[1] != 4 or not np.issubdtype(boxes.dtype, np.floating):
            raise ValueError(f"targets[{i}]['boxes'] must be float[G, 4], got {boxes.dtype}{list(boxes.shape)}")
        G = boxes.shape[0]
        bad = np.where((boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1]) | ~np.isfinite(boxes).all(1))[0]
        if len(bad):
            raise ValueError(f"targets[{i}]['boxes'] must have x2 > x1 and y2 > y1 (finite), got a degenerate "
                             f"box at index {int(bad[0])}: {boxes[bad[0]].tolist()}")
        labels = np.asarray(target["labels"])
        if labels.shape != (G,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"targets[{i}]['labels'] must be int64[{G}], got {labels.dtype}{list(labels.shape)}")
        high = None if self.num_classes is None else self.num_classes - 1
        if G and (labels.min() < 1 or (high is not None and labels.max() > high)):
            raise ValueError(f"targets[{i}]['labels'] must be in [1, {high if high else 'K-1'}] "
                             f"(0 is background), got range [{labels.min()}, {labels.max()}]")
        out = dict(target)
        out["boxes"], out["labels"] = boxes, labels.astype(np.int64)
        if "masks" in target:
            masks = np.asarray(target["masks"])
            if masks.shape != (G, *image_hw):
                raise ValueError(f"targets[{i}]['masks'] must have shape {(G, *image_hw)} (G boxes, image H, W), "
                                 f"got {masks.shape}")
            out["masks"] = masks.astype(np.uint8)
        return out

    # -- forward ------------------------------------------------------------------
    def get_size(self, h: int, w: int) -> tuple[int, int]:
        """Resized (h, w): ``floor(dim * s)`` with ``s = min(min_size/short, max_size/long)`` in float64."""
        scale = min(self.min_size / min(h, w), self.max_size / max(h, w))
        return int(math.floor(h * scale)), int(math.floor(w * scale))

    def forward(self, images, targets=None, dtype=None):
        """Returns (ImageList, resized targets or None, original sizes [(h, w), ...]).

        ``dtype``: cast every image to it (MaskRCNN passes its weights' dtype); see ``check_image``.
        """
        if not isinstance(images, (list, tuple)) or len(images) == 0:
            raise ValueError(f"images must be a non-empty list of images, got {type(images).__name__}")
        if targets is not None and (not isinstance(targets, (list, tuple)) or len(targets) != len(images)):
            length = len(targets) if hasattr(targets, "__len__") else "?"
            raise ValueError(f"targets must be a list of {len(images)} dicts (one per image), got "
                             f"{type(targets).__name__} of length {length}")
        resized, new_targets, original_sizes = [], [], []
        for i, image in enumerate(images):
            image = self.check_image(image, i, dtype)
            h, w = image.shape[-2:]
            original_sizes.append((h, w))
            target = None if targets is None else self.check_target(targets[i], i, (h, w))
            mean = self.image_mean.astype(image.dtype)[:, None, None]
            std = self.image_std.astype(image.dtype)[:, None, None]
            image = (image - mean) / std  # normalise first, then resize (torchvision's order)
            size = self.get_size(h, w)
            if size != (h, w):
                image = interpolate(image[None], size, "bilinear")[0]
                if target is not None:
                    target["boxes"] = resize_boxes(target["boxes"], (h, w), size)
                    if "masks" in target:
                        target["masks"] = nearest_resize_masks(target["masks"], size)
            resized.append(image)
            new_targets.append(target)
        return self.batch_images(resized), (None if targets is None else new_targets), original_sizes

    def batch_images(self, images: list) -> ImageList:
        """Zero-pad at the bottom/right to a common multiple of ``size_divisible``."""
        d = self.size_divisible
        max_h = max(im.shape[1] for im in images)
        max_w = max(im.shape[2] for im in images)
        Hpad, Wpad = int(math.ceil(max_h / d) * d), int(math.ceil(max_w / d) * d)
        batch = np.zeros((len(images), 3, Hpad, Wpad), dtype=images[0].dtype)
        for n, im in enumerate(images):
            batch[n, :, :im.shape[1], :im.shape[2]] = im
        return ImageList(batch, [(im.shape[1], im.shape[2]) for im in images])

    def backward(self, dout, cache):
        raise NotImplementedError("GeneralizedRCNNTransform has no backward: no gradient is taken at the "
                                  "input images (the backbone's backward is the last one)")

    # -- postprocess --------------------------------------------------------------
    def postprocess(self, detections: list, image_sizes: list, original_sizes: list) -> list:
        """Boxes back to original coordinates; mask probabilities [D,1,M,M] pasted to [D,1,H,W]."""
        out = []
        for det, resized_hw, original_hw in zip(detections, image_sizes, original_sizes):
            det = dict(det)
            det["boxes"] = resize_boxes(det["boxes"], resized_hw, original_hw)
            if "masks" in det:
                det["masks"] = paste_masks_in_image(det["masks"], det["boxes"], original_hw, padding=1)
            out.append(det)
        return out
