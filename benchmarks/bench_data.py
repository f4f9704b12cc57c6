"""Data and evaluation: shapes generation, RLE codec, COCO evaluation (vs pycocotools when present).

Ours and pycocotools each in their own blocks, alternated (``common.versus``).
"""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
from common import Row, median_ms, one, versus

from minimrcnn.data import rle
from minimrcnn.data.shapes import ShapesDataset
from minimrcnn.eval.coco_eval import evaluate_coco


def _pycocotools():
    try:
        from pycocotools import mask as mask_utils
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except Exception:
        return None
    return mask_utils, COCO, COCOeval


def _shapes_eval_case(num_images: int):
    """GT of a shapes set and predictions = GT masks shifted by a pixel, boxes jittered, plus duplicates."""
    ds = ShapesDataset(num_images, seed=123)
    rng = np.random.default_rng(0)
    images, anns, results = [], [], []
    for i in range(num_images):
        _, t = ds[i]
        images.append({"id": i, "height": 128, "width": 128, "file_name": f"{i}.png"})
        for box, label, mask, area in zip(t["boxes"], t["labels"], t["masks"], t["area"]):
            x1, y1, x2, y2 = box.tolist()
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(label), "iscrowd": 0,
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": float(area), "segmentation": rle.encode(mask)})
            for _ in range(3):
                shift = tuple(int(v) for v in rng.integers(-2, 3, 2))
                jitter = rng.normal(0, 2, 4)
                results.append({"image_id": i, "category_id": int(label), "score": float(rng.random()),
                                "bbox": [x1 + jitter[0], y1 + jitter[1], x2 - x1 + jitter[2], y2 - y1 + jitter[3]],
                                "segmentation": rle.encode(np.roll(mask, shift, axis=(0, 1)))})
    cats = [{"id": k, "name": n} for k, n in enumerate(ShapesDataset.class_names) if k]
    return {"images": images, "annotations": anns, "categories": cats}, results


def _pycoco_eval(tools, gt, results, iou_type):
    _, COCO, COCOeval = tools
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        res = [dict(r, segmentation=dict(r["segmentation"], counts=r["segmentation"]["counts"].encode()))
               for r in results]
        ev = COCOeval(coco_gt, coco_gt.loadRes(res), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def run(ctx) -> list[Row]:
    repeats, rounds = (3, 1) if ctx.quick else (10, 3)
    tools = _pycocotools()
    rows = []

    ds = ShapesDataset(10 ** 6, seed=0)
    counter = iter(range(10 ** 6))
    ms = median_ms(lambda: [ds[next(counter)] for _ in range(4)], repeats=repeats * 3)
    rows.append(Row("shapes: generate 4 images", "[4,128,128,3]", one(ms), note="budget < 5 ms"))

    _, target = ds[0]
    masks = [m for i in range(20) for m in ds[i][1]["masks"]]
    encoded = [rle.encode(m) for m in masks]
    encode = lambda: [rle.encode(m) for m in masks]  # noqa: E731
    decode = lambda: [rle.decode(r) for r in encoded]  # noqa: E731
    if tools:
        fortran = [np.asfortranarray(m) for m in masks]
        as_bytes = [dict(r, counts=r["counts"].encode()) for r in encoded]
        ref_name = "pycocotools (C)"
        ours_enc, ref_enc = versus(encode, lambda: [tools[0].encode(m) for m in fortran], rounds, repeats)
        ours_dec, ref_dec = versus(decode, lambda: [tools[0].decode(r) for r in as_bytes], rounds, repeats)
    else:
        ref_name, ref_enc, ref_dec = "", None, None
        ours_enc, ours_dec = one(median_ms(encode, repeats=repeats)), one(median_ms(decode, repeats=repeats))
    rows.append(Row("rle.encode", f"{len(masks)} x [128,128]", ours_enc, ref_name=ref_name, ref=ref_enc))
    rows.append(Row("rle.decode", f"{len(masks)} x [128,128]", ours_dec, ref_name=ref_name, ref=ref_dec))

    num_images = 50 if ctx.quick else 200
    gt, results = _shapes_eval_case(num_images)
    for iou_type in ("bbox", "segm"):
        ms = one(median_ms(lambda: evaluate_coco(gt, results, iou_type), repeats=1, warmup=0))
        ref, note = None, "budget < 5 s for bbox + segm at 200 images"
        if tools:
            ref = one(median_ms(lambda: _pycoco_eval(tools, gt, results, iou_type), repeats=1, warmup=0))
            ours = evaluate_coco(gt, results, iou_type)
            diff = np.max(np.abs(np.array(list(ours.values())) - _pycoco_eval(tools, gt, results, iou_type)))
            note += f"; max |stat diff| = {diff:.1e}"
        rows.append(Row(f"evaluate_coco {iou_type}", f"{num_images} images, {len(results)} dets", ms,
                        ref_name=ref_name, ref=ref, note=note))
    return rows
