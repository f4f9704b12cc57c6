"""COCO detection metrics (AP, AR) for boxes and masks, a re-reading of pycocotools' COCOeval.

Lesson: lessons/09_evaluation.ipynb.

The protocol in a few lines:
  * For every image and category, detections are sorted by score (a stable
    mergesort, so ties keep their file order) and at most 100 are kept.
  * At an IoU threshold t, each detection in turn takes the not-yet-matched GT
    with the highest IoU >= t ("a detection matched at IoU t"); it is then a true
    positive, otherwise a false positive. Crowd GTs can absorb any number of
    detections, and those detections, like GTs outside the area range, are
    "ignored": neither true nor false positives.
  * Over all images of a category, detections are ranked by score; cumulative
    TP/FP give a precision-recall curve. Precision is made monotone (each point
    takes the best precision at any higher recall) and read at the 101 recall
    levels 0, 0.01, ..., 1: AP is their mean (the "101-point interpolated AP").
  * AP = mean over 10 IoU thresholds 0.5:0.05:0.95 and over categories that have
    GT; AP50 / AP75 at one threshold; APs/m/l for GT areas < 32^2, 32^2..96^2,
    > 96^2 pixels. AR1/10/100 = recall with at most 1/10/100 detections per image,
    averaged over thresholds and categories. A category without GT gives -1,
    which the averages skip; a statistic with nothing to average is -1.

Worked case (tested): one GT and one detection at IoU 0.6 -> matched for
t = 0.5, 0.55, 0.6, so AP50 = 1, AP75 = 0, AP = 3/10.

Differences from pycocotools: none intended. pycocotools stores the matched GT
*id* and tests it against 0, so a GT with id 0 never counts as matched; here a
boolean flag is stored, so id 0 works (the two agree for ids >= 1, as in COCO files).
"""

from __future__ import annotations

import json

import numpy as np

from minimrcnn.data import rle as rle_codec

# The constants of pycocotools' Params (iouType bbox / segm).
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
MAX_DETS = (1, 10, 100)
AREA_RANGES = ((0 ** 2, 1e5 ** 2), (0 ** 2, 32 ** 2), (32 ** 2, 96 ** 2), (96 ** 2, 1e5 ** 2))
AREA_LABELS = ("all", "small", "medium", "large")


def box_iou_xywh(dt: np.ndarray, gt: np.ndarray, iscrowd) -> np.ndarray:
    """float64[D, G] IoU of [x, y, w, h] boxes; for a crowd GT, intersection / detection area.

    The same arithmetic as pycocotools' bbIou, vectorised.
    """
    dt = np.asarray(dt, dtype=np.float64).reshape(-1, 4)[:, None, :]  # (D, 1, 4)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)[None, :, :]  # (1, G, 4)
    crowd = np.asarray(iscrowd, dtype=bool).reshape(1, -1)
    w = np.minimum(dt[..., 2] + dt[..., 0], gt[..., 2] + gt[..., 0]) - np.maximum(dt[..., 0], gt[..., 0])
    h = np.minimum(dt[..., 3] + dt[..., 1], gt[..., 3] + gt[..., 1]) - np.maximum(dt[..., 1], gt[..., 1])
    overlap = (w > 0) & (h > 0)
    inter = np.where(overlap, w * h, 0.0)
    dt_area, gt_area = dt[..., 2] * dt[..., 3], gt[..., 2] * gt[..., 3]
    union = np.where(crowd, dt_area, dt_area + gt_area - inter)
    out = np.zeros(inter.shape, dtype=np.float64)
    np.divide(inter, union, out=out, where=overlap)
    return out


# ---------------------------------------------------------------------------
# loading (COCO.loadRes rules)
# ---------------------------------------------------------------------------
def _load_json(obj, what: str):
    if isinstance(obj, (str, bytes)) or hasattr(obj, "__fspath__"):
        with open(obj) as f:
            return json.load(f)
    if obj is None:
        raise ValueError(f"{what} is None")
    return obj


def _prepare_results(results: list, image_ids: set) -> list[dict]:
    """Copies of the results with id, iscrowd, area and bbox filled in as COCO.loadRes does.

    If the first result has a non-empty "bbox", every area is the box area w * h (even
    for mask evaluation); otherwise areas and boxes come from the RLE segmentation.
    """
    if len(results) == 0:
        return []
    unknown = {r["image_id"] for r in results} - image_ids
    if unknown:
        raise ValueError(f"results refer to image ids absent from the ground truth: {sorted(unknown)[:10]}")
    use_box = "bbox" in results[0] and results[0]["bbox"] != []
    prepared = []
    for k, res in enumerate(results):
        d = dict(res, id=k + 1, iscrowd=0)
        if use_box:
            d["area"] = float(d["bbox"][2]) * float(d["bbox"][3])
        elif "segmentation" in d:
            d["area"] = float(rle_codec.area(d["segmentation"]))
            if "bbox" not in d:
                d["bbox"] = rle_codec.to_bbox(d["segmentation"])
        else:
            raise ValueError(f"result {k} has neither 'bbox' nor 'segmentation'")
        prepared.append(d)
    return prepared


def _mask_of(ann: dict, image: dict) -> np.ndarray:
    """uint8[H, W] of a GT or result segmentation (polygons, uncompressed or compressed RLE)."""
    segm = ann["segmentation"]
    if isinstance(segm, list):
        return rle_codec.polygons_to_mask(segm, image["height"], image["width"])
    return rle_codec.decode(segm)


def _compute_iou(dts: list, gts: list, iou_type: str, image: dict) -> np.ndarray:
    """float64[D, G] IoU between score-sorted detections and GTs of one image and category."""
    iscrowd = [int(g.get("iscrowd", 0)) for g in gts]
    if iou_type == "bbox":
        return box_iou_xywh([d["bbox"] for d in dts], [g["bbox"] for g in gts], iscrowd)
    dt_masks = [_mask_of(d, image) for d in dts]
    gt_masks = [_mask_of(g, image) for g in gts]
    if any(m.shape != gt_masks[0].shape for m in dt_masks + gt_masks):  # pycocotools: -1
        return rle_codec.iou([rle_codec.encode(m) for m in dt_masks],
                             [rle_codec.encode(m) for m in gt_masks], iscrowd)
    return rle_codec.mask_iou(np.stack(dt_masks), np.stack(gt_masks), iscrowd)


# ---------------------------------------------------------------------------
# per image: the greedy matching (COCOeval.evaluateImg)
# ---------------------------------------------------------------------------
def evaluate_image(ious: np.ndarray, gts: list, dts: list, area_range, max_det: int):
    """Match one image's detections of one category at every IoU threshold.

    Args:
        ious (float64[D, G]): IoU of the score-sorted detections with `gts` (file order).
        gts, dts: annotation dicts (with "area", "iscrowd"; dts with "score", sorted).
        area_range: (lo, hi); GTs with area < lo or > hi are ignored.
    Returns:
        None when there is neither GT nor detection, else a dict with
        dt_scores float[D'], dt_matched bool[T, D'], dt_ignore bool[T, D'], gt_ignore bool[G]
        (D' = min(D, max_det); GTs reordered non-ignored first).
    """
    if len(gts) == 0 and len(dts) == 0:
        return None
    lo, hi = area_range
    gt_ignore = np.array([bool(g.get("iscrowd", 0)) or g["area"] < lo or g["area"] > hi for g in gts], dtype=bool)
    gt_order = np.argsort(gt_ignore, kind="mergesort")  # ignored GTs last, stable
    gt_ignore = gt_ignore[gt_order]
    iscrowd = np.array([bool(gts[j].get("iscrowd", 0)) for j in gt_order], dtype=bool)
    dts = dts[:max_det]
    ious = ious[:len(dts)][:, gt_order] if ious.size else ious
    T, D, G = len(IOU_THRESHOLDS), len(dts), len(gts)
    gt_matched = np.zeros((T, G), dtype=bool)
    dt_matched = np.zeros((T, D), dtype=bool)
    dt_ignore = np.zeros((T, D), dtype=bool)
    if ious.size:
        for t, threshold in enumerate(IOU_THRESHOLDS):       # for each IoU threshold
            for d in range(D):                               # for each detection, best score first
                best_iou, m = min(threshold, 1 - 1e-10), -1
                for g in range(G):                           # for each GT, non-ignored first
                    if gt_matched[t, g] and not iscrowd[g]:  # taken (a crowd GT takes many)
                        continue
                    if m > -1 and not gt_ignore[m] and gt_ignore[g]:
                        break                                # a real match beats any ignored GT
                    if ious[d, g] < best_iou:
                        continue
                    best_iou, m = ious[d, g], g
                if m == -1:
                    continue
                dt_ignore[t, d] = gt_ignore[m]  # matched to an ignored GT: not counted
                dt_matched[t, d] = True
                gt_matched[t, m] = True
    # Unmatched detections outside the area range are ignored too, not false positives.
    dt_outside = np.array([d["area"] < lo or d["area"] > hi for d in dts], dtype=bool).reshape(1, D)
    dt_ignore |= ~dt_matched & dt_outside
    return {"dt_scores": np.array([d["score"] for d in dts], dtype=np.float64),
            "dt_matched": dt_matched, "dt_ignore": dt_ignore, "gt_ignore": gt_ignore}


# ---------------------------------------------------------------------------
# over images: precision / recall (COCOeval.accumulate)
# ---------------------------------------------------------------------------
def accumulate(per_image: list, max_det: int):
    """101-point precision float64[T, R] and recall float64[T] of one category, area, maxDet.

    Returns (None, None) when the category has no non-ignored GT (its entries stay -1).
    """
    per_image = [e for e in per_image if e is not None]
    if not per_image:
        return None, None
    scores = np.concatenate([e["dt_scores"][:max_det] for e in per_image])
    order = np.argsort(-scores, kind="mergesort")
    matched = np.concatenate([e["dt_matched"][:, :max_det] for e in per_image], axis=1)[:, order]
    ignore = np.concatenate([e["dt_ignore"][:, :max_det] for e in per_image], axis=1)[:, order]
    num_gt = int(np.count_nonzero(~np.concatenate([e["gt_ignore"] for e in per_image])))
    if num_gt == 0:
        return None, None
    tp = np.cumsum(matched & ~ignore, axis=1).astype(np.float64)   # (T, D) running true positives
    fp = np.cumsum(~matched & ~ignore, axis=1).astype(np.float64)  # (T, D) running false positives
    T, D = tp.shape
    precision = np.zeros((T, len(RECALL_THRESHOLDS)))
    recall = np.zeros(T)
    for t in range(T):
        rc = tp[t] / num_gt
        pr = tp[t] / (fp[t] + tp[t] + np.spacing(1))
        recall[t] = rc[-1] if D else 0.0
        pr = np.maximum.accumulate(pr[::-1])[::-1]  # monotone: best precision at any higher recall
        idx = np.searchsorted(rc, RECALL_THRESHOLDS, side="left")
        precision[t] = np.where(idx < D, pr[np.minimum(idx, D - 1)] if D else 0.0, 0.0)
    return precision, recall


def mean_valid(s: np.ndarray) -> float:
    """Mean of the entries > -1 (-1 marks "no ground truth"); -1 when there is none."""
    s = s[s > -1]
    return float(np.mean(s)) if s.size else -1.0


def summarize(precision: np.ndarray, recall: np.ndarray) -> dict:
    """The 12 numbers of COCOeval.summarize from precision[T, R, K, A, M] and recall[T, K, A, M]."""
    def ap(iou=None, area="all", max_dets=100):
        a, m = AREA_LABELS.index(area), MAX_DETS.index(max_dets)
        s = precision[..., a, m]
        if iou is not None:
            s = s[np.where(iou == IOU_THRESHOLDS)[0]]
        return mean_valid(s)

    def ar(area="all", max_dets=100):
        return mean_valid(recall[..., AREA_LABELS.index(area), MAX_DETS.index(max_dets)])

    return {"AP": ap(), "AP50": ap(iou=0.5), "AP75": ap(iou=0.75),
            "APs": ap(area="small"), "APm": ap(area="medium"), "APl": ap(area="large"),
            "AR1": ar(max_dets=1), "AR10": ar(max_dets=10), "AR100": ar(),
            "ARs": ar(area="small"), "ARm": ar(area="medium"), "ARl": ar(area="large")}


def _group(anns: list) -> dict:
    """{(image_id, category_id): [annotations in file order]}."""
    groups = {}
    for a in anns:
        if "area" not in a:
            raise ValueError(f"gt annotation id {a.get('id', '?')} has no 'area'")
        groups.setdefault((a["image_id"], a["category_id"]), []).append(a)
    return groups


def evaluate_coco(gt, results, iou_type: str = "bbox") -> dict:
    """COCO AP/AR of `results` against `gt`, the same numbers as pycocotools' COCOeval.

    Args:
        gt: path of a COCO instances json, or its loaded dict (not modified).
        results: a COCO results list [{image_id, category_id, score, bbox [x, y, w, h]
            and/or segmentation RLE}], or the path of one.
        iou_type: "bbox" or "segm".
    Returns:
        {AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl} as floats.
    """
    precision, recall, _ = precision_recall(gt, results, iou_type)
    return summarize(precision, recall)


def per_category_ap(precision: np.ndarray, category_ids) -> dict:
    """AP, AP50 and AP75 of each category from COCOeval's precision array (area all, 100 dets).

    The per-class table detectron2 prints: the mean over IoU thresholds and recall levels of
    one category's column of ``precision[T, R, K, A, M]``.

    Returns:
        {category_id: {"AP": .., "AP50": .., "AP75": ..}}; -1 for a category without GT.
    """
    a, m = AREA_LABELS.index("all"), MAX_DETS.index(100)
    out = {}
    for k, cat in enumerate(category_ids):
        p = precision[:, :, k, a, m]                     # [T, R]
        out[cat] = {"AP": mean_valid(p), "AP50": mean_valid(p[IOU_THRESHOLDS == 0.5]),
                    "AP75": mean_valid(p[np.isclose(IOU_THRESHOLDS, 0.75)])}
    return out


def precision_recall(gt, results, iou_type: str = "bbox"):
    """COCOeval's accumulated arrays: (precision float64[T, R, K, A, M], recall float64[T, K, A, M],
    category ids [K]), -1 where a category has no GT. Arguments as :func:`evaluate_coco`.

    T = 10 IoU thresholds, R = 101 recall levels, K categories (sorted ids), A = 4 area
    ranges (all, small, medium, large), M = 3 max-detection limits (1, 10, 100): the layout
    of pycocotools' ``COCOeval.eval["precision"]``.
    """
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be 'bbox' or 'segm', got {iou_type!r}")
    gt = _load_json(gt, "gt")
    results = _load_json(results, "results")
    images = {img["id"]: img for img in gt["images"]}
    image_ids = sorted(images)
    cat_ids = sorted({c["id"] for c in gt["categories"]})
    dts = _prepare_results(list(results), set(images))
    if iou_type == "segm" and any("segmentation" not in d for d in dts):
        raise ValueError("iou_type='segm' needs a 'segmentation' in every result")
    gts_by, dts_by = _group(gt["annotations"]), _group(dts)
    T, R, K, A, M = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS), len(cat_ids), len(AREA_RANGES), len(MAX_DETS)
    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    for k, cat in enumerate(cat_ids):                 # for each category
        per_area = [[] for _ in AREA_RANGES]
        for image_id in image_ids:                    # for each image
            g = gts_by.get((image_id, cat), [])
            d = dts_by.get((image_id, cat), [])
            order = np.argsort([-x["score"] for x in d], kind="mergesort")
            d = [d[i] for i in order][:MAX_DETS[-1]]
            ious = _compute_iou(d, g, iou_type, images[image_id]) if (g and d) else np.zeros((0, 0))
            for a, area_range in enumerate(AREA_RANGES):
                per_area[a].append(evaluate_image(ious, g, d, area_range, MAX_DETS[-1]))
        for a in range(A):
            for m, max_det in enumerate(MAX_DETS):
                p, r = accumulate(per_area[a], max_det)
                if p is not None:
                    precision[:, :, k, a, m] = p
                    recall[:, k, a, m] = r
    return precision, recall, cat_ids
