"""COCO evaluation: hand-worked cases, then all 12 stats against pycocotools (optional oracle)."""

import contextlib
import copy
import io
import json

import numpy as np
import pytest

from minimrcnn.data import rle
from minimrcnn.data.shapes import ShapesDataset
from minimrcnn.eval.coco_eval import box_iou_xywh, evaluate_coco, per_category_ap, precision_recall
from minimrcnn.eval.results import results_from_predictions

KEYS = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


def square_mask(x, y, w, h, H=64, W=64):
    m = np.zeros((H, W), np.uint8)
    m[y:y + h, x:x + w] = 1
    return m


def tiny_gt(boxes, cats=(1,), crowd=None, size=64):
    """One image; each box [x, y, w, h] integer, with a rectangular RLE mask."""
    anns = []
    for k, (x, y, w, h) in enumerate(boxes):
        anns.append({"id": k + 1, "image_id": 1, "category_id": cats[k % len(cats)], "bbox": [x, y, w, h],
                     "area": float(w * h), "iscrowd": int(crowd[k]) if crowd else 0,
                     "segmentation": rle.encode(square_mask(x, y, w, h, size, size))})
    return {"images": [{"id": 1, "height": size, "width": size, "file_name": "a.png"}],
            "annotations": anns, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}


def det(x, y, w, h, score=0.9, cat=1, size=64):
    return {"image_id": 1, "category_id": cat, "bbox": [x, y, w, h], "score": score,
            "segmentation": rle.encode(square_mask(x, y, w, h, size, size))}


# --- hand-worked cases (no pycocotools needed) ------------------------------------------
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_one_perfect_detection_gives_ap_1(iou_type):
    gt = tiny_gt([[10, 10, 20, 20]])
    stats = evaluate_coco(gt, [det(10, 10, 20, 20)], iou_type)
    assert stats["AP"] == pytest.approx(1.0) and stats["AP50"] == pytest.approx(1.0)
    assert stats["AR1"] == pytest.approx(1.0)
    # 20 x 20 = 400 < 32^2: small; medium and large have no GT -> -1
    assert stats["APs"] == pytest.approx(1.0) and stats["APm"] == -1 and stats["APl"] == -1


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_detection_at_iou_0_6(iou_type):
    # GT 20x20 and a detection shifted 5 px: inter 15*20 = 300, union 500 -> IoU 0.6
    gt = tiny_gt([[10, 10, 20, 20]])
    stats = evaluate_coco(gt, [det(15, 10, 20, 20)], iou_type)
    assert stats["AP50"] == pytest.approx(1.0)
    assert stats["AP75"] == pytest.approx(0.0)
    assert stats["AP"] == pytest.approx(0.3)  # matched at t = 0.5, 0.55, 0.6 of 10 thresholds


def test_no_detections_gives_zero_and_absent_category_is_skipped():
    gt = tiny_gt([[10, 10, 20, 20]])
    stats = evaluate_coco(gt, [], "bbox")
    assert stats["AP"] == 0.0 and stats["AR100"] == 0.0
    # category 2 has no GT: it is -1 and left out of the mean, so AP stays 1 for category 1 alone
    stats = evaluate_coco(gt, [det(10, 10, 20, 20), det(40, 40, 10, 10, cat=2)], "bbox")
    assert stats["AP"] == pytest.approx(1.0)


def test_crowd_absorbs_detections():
    # A crowd region: a detection inside it is ignored, not a false positive.
    gt = tiny_gt([[10, 10, 20, 20], [0, 40, 64, 24]], crowd=[0, 1])
    stats = evaluate_coco(gt, [det(10, 10, 20, 20, 0.5), det(5, 45, 10, 10, 0.9)], "bbox")
    assert stats["AP"] == pytest.approx(1.0)


def test_box_iou_crowd_semantics():
    iou = box_iou_xywh([[0, 0, 10, 10]], [[0, 0, 20, 20], [0, 0, 20, 20]], [0, 1])
    np.testing.assert_allclose(iou, [[0.25, 1.0]])


def test_bad_inputs():
    gt = tiny_gt([[10, 10, 20, 20]])
    with pytest.raises(ValueError, match="iou_type"):
        evaluate_coco(gt, [], "keypoints")
    with pytest.raises(ValueError, match="image ids"):
        evaluate_coco(gt, [dict(det(1, 1, 5, 5), image_id=7)], "bbox")


def test_paths_and_results_from_predictions(tmp_path):
    gt = tiny_gt([[10, 10, 20, 20]])
    masks = np.zeros((1, 1, 64, 64), np.float32)
    masks[0, 0, 10:30, 10:30] = 0.9
    preds = [{"boxes": np.array([[10, 10, 30, 30]], np.float32), "labels": np.array([1]),
              "scores": np.array([0.8], np.float32), "masks": masks}]
    results = results_from_predictions(preds, [1], {1: 1})
    assert results[0]["bbox"] == [10.0, 10.0, 20.0, 20.0]
    assert isinstance(results[0]["segmentation"]["counts"], str)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(results))
    for iou_type in ("bbox", "segm"):
        stats = evaluate_coco(str(tmp_path / "gt.json"), str(tmp_path / "res.json"), iou_type)
        assert stats["AP"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="masks"):
        results_from_predictions([dict(preds[0], masks=masks[:, 0])], [1], {1: 1})


# --- pycocotools oracle --------------------------------------------------------------------
def pycoco_stats(gt, results, iou_type, evaluator=False):
    COCO = pytest.importorskip("pycocotools.coco").COCO
    COCOeval = pytest.importorskip("pycocotools.cocoeval").COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(results)) if results else COCO()
        if not results:
            coco_dt.dataset = {"images": gt["images"], "annotations": [], "categories": gt["categories"]}
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = dict(zip(KEYS, ev.stats.tolist()))
    return (stats, ev) if evaluator else stats


def shapes_gt_and_predictions(seed, num_images=12, jitter=3.0, size=128):
    """GT from the shapes set and predictions = perturbed GT plus some false positives."""
    ds = ShapesDataset(num_images, seed=seed, image_size=size)
    rng = np.random.default_rng(seed + 100)
    images, anns, results = [], [], []
    for i in range(num_images):
        _, target = ds[i]
        images.append({"id": i + 1, "height": size, "width": size, "file_name": f"{i}.png"})
        for box, label, mask, area in zip(target["boxes"], target["labels"], target["masks"], target["area"]):
            x1, y1, x2, y2 = box.tolist()
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(label),
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": float(area), "iscrowd": 0,
                         "segmentation": rle.mask_to_polygons(mask) if len(anns) % 2 else rle.encode(mask)})
            for _ in range(rng.integers(0, 3)):  # 0..2 noisy copies, sometimes the wrong class
                shift = rng.integers(-int(jitter), int(jitter) + 1, size=2)
                pm = np.roll(mask, tuple(shift), axis=(0, 1))
                bx = box + np.r_[shift[::-1], shift[::-1]] + rng.normal(0, jitter, 4)
                cat = int(label) if rng.random() < 0.8 else int(rng.integers(1, 4))
                results.append({"image_id": i + 1, "category_id": cat, "score": round(float(rng.random()), 2),
                                "bbox": [bx[0], bx[1], max(bx[2] - bx[0], 1), max(bx[3] - bx[1], 1)],
                                "segmentation": rle.encode(pm)})
    cats = [{"id": k, "name": n} for k, n in enumerate(ShapesDataset.class_names) if k]
    cats.append({"id": 7, "name": "never seen"})  # a category without GT
    return {"images": images, "annotations": anns, "categories": cats}, results


def random_case(seed, size=160, max_random=15):
    """Random boxes/masks incl. crowd GTs, areas exactly 32^2 and 96^2, tied scores."""
    rng = np.random.default_rng(seed)
    images, anns, results = [], [], []
    for i in range(4):
        images.append({"id": 10 + i, "height": size, "width": size, "file_name": f"{i}.png"})
        for k in range(int(rng.integers(0, 6))):
            side = [32, 96, 20, 50][k % 4] if k < 4 else int(rng.integers(5, 100))
            x, y = (int(v) for v in rng.integers(0, size - side, 2))
            m = square_mask(x, y, side, side, size, size)
            cat = int(rng.integers(1, 3))
            anns.append({"id": len(anns) + 1, "image_id": 10 + i, "category_id": cat,
                         "bbox": [x, y, side, side], "area": float(side * side),
                         "iscrowd": int(rng.random() < 0.15), "segmentation": rle.encode(m)})
            for _ in range(int(rng.integers(0, 3))):  # detections near the GT, sides 32 / 96 kept exact
                dx, dy = (int(v) for v in rng.integers(-4, 5, 2))
                x2, y2 = min(max(x + dx, 0), size - side), min(max(y + dy, 0), size - side)
                w2 = side if rng.random() < 0.5 else int(np.clip(side + rng.integers(-6, 7), 3, size - x2))
                results.append({"image_id": 10 + i, "category_id": cat,
                                "score": float(rng.choice([0.3, 0.5, 0.7, rng.random()])),
                                "bbox": [x2, y2, w2, side],
                                "segmentation": rle.encode(square_mask(x2, y2, w2, side, size, size))})
        for _ in range(int(rng.integers(0, max_random))):
            w, h = (int(v) for v in rng.integers(4, 100, 2))
            x, y = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
            results.append({"image_id": 10 + i, "category_id": int(rng.integers(1, 3)),
                            "score": float(rng.choice([0.3, 0.5, 0.7, rng.random()])),  # many ties
                            "bbox": [x, y, w, h],
                            "segmentation": rle.encode(square_mask(x, y, w, h, size, size))})
    cats = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    return {"images": images, "annotations": anns, "categories": cats}, results


def segm_only(results):
    return [{k: v for k, v in r.items() if k != "bbox"} for r in results]


CASES = {
    "shapes": lambda: shapes_gt_and_predictions(0),
    "shapes_seed3": lambda: shapes_gt_and_predictions(3, jitter=6.0),
    "random1": lambda: random_case(1),
    "random2": lambda: random_case(2),
    "random5": lambda: random_case(5),
    "over_100_per_image": lambda: random_case(4, max_random=130),  # maxDets truncation
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_matches_pycocotools(case, iou_type):
    gt, results = CASES[case]()
    expected = pycoco_stats(gt, results, iou_type)
    ours = evaluate_coco(gt, results, iou_type)
    np.testing.assert_allclose([ours[k] for k in KEYS], [expected[k] for k in KEYS], atol=1e-6)


def test_matches_pycocotools_segm_results_without_bbox():
    # loadRes then takes areas from the masks instead of the boxes
    gt, results = shapes_gt_and_predictions(1)
    results = segm_only(results)
    expected = pycoco_stats(gt, results, "segm")
    ours = evaluate_coco(gt, results, "segm")
    np.testing.assert_allclose([ours[k] for k in KEYS], [expected[k] for k in KEYS], atol=1e-6)


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_matches_pycocotools_no_detections(iou_type):
    gt, _ = random_case(1)
    expected = pycoco_stats(gt, [], iou_type)
    ours = evaluate_coco(gt, [], iou_type)
    np.testing.assert_allclose([ours[k] for k in KEYS], [expected[k] for k in KEYS], atol=1e-6)


def test_rle_iou_matches_pycocotools():
    mask_utils = pytest.importorskip("pycocotools.mask")
    _, results = random_case(3)
    dts = [r["segmentation"] for r in results[:8]]
    gts = [r["segmentation"] for r in results[8:14]]
    crowd = [0, 1, 0, 1, 0, 0][:len(gts)]
    to_bytes = [dict(r, counts=r["counts"].encode()) for r in dts + gts]
    expected = mask_utils.iou(to_bytes[:len(dts)], to_bytes[len(dts):], crowd)
    np.testing.assert_allclose(rle.iou(dts, gts, crowd), expected, atol=1e-12)


@pytest.mark.parametrize("case", ["shapes", "random1", "over_100_per_image"])
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_per_category_ap_matches_pycocotools_precision(case, iou_type):
    """Per-class AP as detectron2 reads it off COCOeval: mean of eval["precision"][:, :, k, 0, -1] > -1."""
    gt, results = CASES[case]()
    _, ev = pycoco_stats(gt, results, iou_type, evaluator=True)
    precision, _, cat_ids = precision_recall(gt, results, iou_type)
    assert cat_ids == list(ev.params.catIds)
    np.testing.assert_allclose(precision, ev.eval["precision"], atol=1e-12)
    ours = per_category_ap(precision, cat_ids)
    theirs = ev.eval["precision"]
    for k, cat in enumerate(cat_ids):
        for name, t in (("AP", slice(None)), ("AP50", 0), ("AP75", 5)):
            p = theirs[t, :, k, 0, -1]
            p = p[p > -1]
            assert ours[cat][name] == pytest.approx(float(np.mean(p)) if p.size else -1.0, abs=1e-12), (cat, name)
    if case == "shapes":
        assert ours[7] == {"AP": -1.0, "AP50": -1.0, "AP75": -1.0}   # the category without GT
        assert 0 < ours[1]["AP"] <= 1


def test_per_category_ap_of_a_worked_case():
    # one GT, one detection at IoU 0.6 (the module docstring's case); category 2 has no GT
    gt = tiny_gt([[10, 10, 20, 20]])
    precision, _, cat_ids = precision_recall(gt, [det(15, 10, 20, 20)], "bbox")
    ap = per_category_ap(precision, cat_ids)
    assert ap[1] == pytest.approx({"AP": 0.3, "AP50": 1.0, "AP75": 0.0})
    assert ap[2] == {"AP": -1.0, "AP50": -1.0, "AP75": -1.0}
