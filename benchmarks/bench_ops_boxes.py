"""Box ops: NMS, batched NMS, box_iou, anchor generation; ours vs our twin and torchvision.

Random boxes: centres uniform in a 1000x1000 image, sides uniform in 10..200 pixels,
scores uniform; float32 as in the model. Ours and torchvision each in their own blocks,
alternated (``common.versus``); the twins once, in one block.
"""

from __future__ import annotations

import numpy as np
from common import Row, median_ms, one, versus

from minimrcnn.runtime import reference_kernels
from minimrcnn.ops import AnchorGenerator, batched_nms, box_iou
from minimrcnn.ops.nms import nms


def _random_boxes(rng, n):
    centres = rng.uniform(0, 1000, (n, 2))
    sides = rng.uniform(10, 200, (n, 2))
    return np.concatenate([centres - sides / 2, centres + sides / 2], axis=1).astype(np.float32)


def _twin_ms(fn, repeats):
    with reference_kernels(True):
        return one(median_ms(fn, repeats=repeats, warmup=1))


def run(ctx) -> list[Row]:
    repeats, rounds = (3, 1) if ctx.quick else (15, 3)
    rng = np.random.default_rng(0)
    tv, torch = ctx.torchvision, ctx.torch
    rows = []

    # nms: vs torchvision when present, else vs our reference twin.
    for n in (1000, 5000):
        boxes, scores = _random_boxes(rng, n), rng.uniform(size=n).astype(np.float32)
        ms = one(median_ms(lambda: nms(boxes, scores, 0.7), repeats=repeats))
        twin = _twin_ms(lambda: nms(boxes, scores, 0.7), max(1, repeats // 3))
        rows.append(Row("nms iou 0.7", f"[{n},4]", ms, ref_name="our twin", ref=twin,
                        note=f"{len(nms(boxes, scores, 0.7))} kept"))
        if tv is not None:
            tb, ts = torch.from_numpy(boxes), torch.from_numpy(scores)
            ours, theirs = versus(lambda: nms(boxes, scores, 0.7), lambda: tv.ops.nms(tb, ts, 0.7), rounds, repeats)
            rows.append(Row("nms iou 0.7", f"[{n},4]", ours, ref_name="torchvision", ref=theirs))

    # batched_nms: 5000 boxes in 4 classes (> 1000 boxes: the per-class path).
    boxes, scores = _random_boxes(rng, 5000), rng.uniform(size=5000).astype(np.float32)
    idxs = rng.integers(0, 4, 5000)
    ours_fn = lambda: batched_nms(boxes, scores, idxs, 0.7)  # noqa: E731
    ms, ref_name, ref = one(median_ms(ours_fn, repeats=repeats)), "", None
    if tv is not None:
        tb, ts, ti = torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(idxs)
        ms, ref = versus(ours_fn, lambda: tv.ops.batched_nms(tb, ts, ti, 0.7), rounds, repeats)
        ref_name = "torchvision"
    rows.append(Row("batched_nms iou 0.7, 4 classes", "[5000,4]", ms, ref_name=ref_name, ref=ref))

    # box_iou 5000 x 50 (kernel) vs the NumPy broadcasting twin and torchvision.
    b1, b2 = _random_boxes(rng, 5000), _random_boxes(rng, 50)
    ms = one(median_ms(lambda: box_iou(b1, b2), repeats=repeats))
    rows.append(Row("box_iou", "[5000,4]x[50,4]", ms, ref_name="our twin",
                    ref=_twin_ms(lambda: box_iou(b1, b2), repeats)))
    if tv is not None:
        t1, t2 = torch.from_numpy(b1), torch.from_numpy(b2)
        ours, theirs = versus(lambda: box_iou(b1, b2), lambda: tv.ops.box_iou(t1, t2), rounds, repeats)
        rows.append(Row("box_iou", "[5000,4]x[50,4]", ours, ref_name="torchvision", ref=theirs))

    # Anchors: a 128x128 batch with a stride-4..64 FPN and sizes 8..128, and the default 800x1216.
    cases = [
        ("anchors sizes 8..128", AnchorGenerator(((8,), (16,), (32,), (64,), (128,))), (128, 128),
         [(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)]),
        ("anchors default sizes", AnchorGenerator(), (800, 1216),
         [(200, 304), (100, 152), (50, 76), (25, 38), (13, 19)]),
    ]
    for name, generator, image_size, features in cases:
        ours_fn = lambda: generator(image_size, features)  # noqa: E731
        ms, ref_name, ref = one(median_ms(ours_fn, repeats=repeats)), "", None
        if tv is not None:
            from torchvision.models.detection.anchor_utils import AnchorGenerator as TVAnchorGenerator
            from torchvision.models.detection.image_list import ImageList
            tv_gen = TVAnchorGenerator(generator.sizes, generator.aspect_ratios)
            images = ImageList(torch.zeros(1, 3, *image_size), [image_size])
            maps = [torch.zeros(1, 1, h, w) for h, w in features]
            ms, ref = versus(ours_fn, lambda: tv_gen(images, maps), rounds, repeats)
            ref_name = "torchvision"
        rows.append(Row(name, f"{image_size[0]}x{image_size[1]}", ms, ref_name=ref_name, ref=ref,
                        note=f"{sum(generator.num_anchors_per_level(features))} anchors"))
    return rows
