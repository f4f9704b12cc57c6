"""The arrays of one recorded forward pass, shaped for the explain page (docs/explain.md).

``collect_explain_data(model, image, target)`` runs ``model.inspect`` once and turns what
the stages recorded into the JSON-ready dict the page draws from. Nothing here runs a
network layer again. Two kinds of index bookkeeping are replayed on the recorded arrays,
with the library's own functions, and then checked bit for bit against what the pass
recorded (a mismatch raises instead of drawing a wrong picture):

* which anchor each RPN proposal came from (so the page knows its level and score), by
  replaying ``RegionProposalNetwork.filter_proposals``' top-n / clip / small-box steps;
* which proposal and class each detection candidate came from, by replaying
  ``RoIHeads.postprocess_detections``' flatten / score / small-box steps.

Arrays travel as ``{"dtype", "shape", "b64"}`` (little-endian bytes, base64) or as
nested lists for small ones. Caps on what is exported are in ``DEFAULT_CAPS`` and are
written onto the page.

Shape shorthand (docs/shapes.md): C channels, H_l x W_l level size, A anchors per
location, R proposals, K classes, D detections, G ground-truth objects, M mask size.
"""

from __future__ import annotations

import base64
import io

import numpy as np

from minimrcnn.data.rle import mask_iou
from minimrcnn.models.mask_head import maskrcnn_inference
from minimrcnn.models.transform import resize_boxes
from minimrcnn.nn import functional as F
from minimrcnn.ops import batched_nms, box_iou, clip_boxes_to_image, remove_small_boxes
from minimrcnn.ops.roi_align import roi_align_sample_points
from minimrcnn.viz.draw import PALETTE
from minimrcnn.viz.explain_text import stage_list

FORMAT = "minimrcnn-explain/1"
DEFAULT_CAPS = {
    "channels_per_level": 8,     # feature channels exported per FPN level (the most active), plus the mean
    "candidates": 20000,         # detection candidates (proposal, class) before per-class NMS
    "jpeg_above_pixels": 256 * 256,  # larger input images are embedded as JPEG, smaller as PNG
}


# ----------------------------------------------------------------------------- encoding
def encode_array(array, dtype=np.float32) -> dict:
    """Any array -> {"dtype", "shape", "b64"}: its little-endian bytes in base64."""
    a = np.ascontiguousarray(np.asarray(array), dtype=np.dtype(dtype).newbyteorder("<"))
    return {"dtype": np.dtype(dtype).name, "shape": list(a.shape), "b64": base64.b64encode(a.tobytes()).decode()}


def decode_array(blob: dict) -> np.ndarray:
    """Inverse of ``encode_array`` (used by tests and by anyone reading a page's data)."""
    raw = base64.b64decode(blob["b64"])
    return np.frombuffer(raw, dtype=np.dtype(blob["dtype"]).newbyteorder("<")).reshape(blob["shape"])


def image_data_uri(rgb_or_gray: np.ndarray, jpeg: bool = False) -> str:
    """uint8[H, W, 3] (or [H, W] / [H, W, 4]) -> "data:image/...;base64,..." (PNG, or JPEG q90)."""
    from PIL import Image

    buffer = io.BytesIO()
    image = Image.fromarray(rgb_or_gray)
    if jpeg:
        image.convert("RGB").save(buffer, format="JPEG", quality=90)
    else:
        image.save(buffer, format="PNG")
    kind = "jpeg" if jpeg else "png"
    return f"data:image/{kind};base64," + base64.b64encode(buffer.getvalue()).decode()


def mask_crop(mask: np.ndarray, colour) -> dict | None:
    """float/uint8[H, W] mask in [0, 1] -> the PNG of its nonzero bounding box as RGBA, or None if empty.

    Returns {"x", "y", "w", "h", "png"}: the crop's place in the mask's image (pixels).
    """
    ys, xs = np.nonzero(mask > 0)
    if len(ys) == 0:
        return None
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = mask[y0:y1, x0:x1].astype(np.float32)
    rgba = np.zeros(crop.shape + (4,), dtype=np.uint8)
    rgba[..., :3] = np.asarray(colour, dtype=np.uint8)
    rgba[..., 3] = np.round(np.clip(crop, 0, 1) * 255).astype(np.uint8)
    return {"x": int(x0), "y": int(y0), "w": int(x1 - x0), "h": int(y1 - y0), "png": image_data_uri(rgba)}


# ----------------------------------------------------------------------------- replays
def replay_rpn_filter(model, trace) -> dict:
    """Anchor index, level and score of each proposal before NMS, and the NMS keep list.

    Replays ``filter_proposals`` for image 0 and checks the boxes equal the recorded
    ``rpn_proposals_before_nms`` and the kept ones the recorded ``rpn_proposals``.
    """
    rpn = model.rpn
    objectness = trace["objectness"][0]                       # [T] logits
    counts = trace["num_anchors_per_level"]
    starts = np.concatenate([[0], np.cumsum(counts)])
    keep = []
    for lvl, n_l in enumerate(counts):                        # the same top-n rule as the RPN
        logit_l = objectness[starts[lvl]:starts[lvl + 1]]
        k = min(rpn.pre_nms_top_n(), n_l)
        top = np.argpartition(-logit_l, k - 1)[:k] if k < n_l else np.arange(n_l)
        keep.append(top[np.argsort(-logit_l[top], kind="stable")] + starts[lvl])
    keep = np.concatenate(keep)
    # decode every anchor in one call, as the RPN did (a call on a subset may round differently)
    decoded = rpn.box_coder.decode(trace["rpn_box_deltas"][0], trace["anchors"]).reshape(-1, 4)
    boxes = decoded[keep]
    boxes = clip_boxes_to_image(boxes, trace["image_sizes"][0])
    scores = F.sigmoid(objectness[keep])
    small = remove_small_boxes(boxes, rpn.min_size)
    keep, boxes, scores = keep[small], boxes[small], scores[small]
    above = np.where(scores >= rpn.score_thresh)[0]
    keep, boxes, scores = keep[above], boxes[above], scores[above]
    levels = np.searchsorted(starts, keep, side="right") - 1
    recorded = trace["rpn_proposals_before_nms"][0]
    if not np.array_equal(boxes, recorded):
        raise RuntimeError("explain: replaying the RPN's proposal filter did not reproduce the recorded "
                           "rpn_proposals_before_nms; the page would be wrong, so none is written")
    nms_keep = batched_nms(boxes, scores, levels, rpn.nms_thresh)[: rpn.post_nms_top_n()]
    if not np.array_equal(boxes[nms_keep], trace["rpn_proposals"][0]):
        raise RuntimeError("explain: the RPN's NMS on the recorded proposals did not reproduce rpn_proposals")
    return {"anchor_index": keep, "levels": levels, "scores": scores, "boxes": boxes, "nms_keep": nms_keep}


def replay_detection_candidates(model, trace) -> dict:
    """Proposal index and class of each detection candidate, and which candidates are the detections.

    Replays ``postprocess_detections`` for image 0 on the recorded ``class_probs`` and
    ``refined_boxes`` and checks it against ``detections_before_nms`` and ``detections``.
    """
    heads = model.roi_heads
    probs, refined = trace["class_probs"], trace["refined_boxes"]     # [R, K], [R, K, 4]
    R, K = probs.shape
    boxes = clip_boxes_to_image(refined.reshape(-1, 4), trace["image_sizes"][0]).reshape(R, K, 4)
    boxes = boxes[:, 1:].reshape(-1, 4)
    scores = probs[:, 1:].reshape(-1)
    proposal = np.repeat(np.arange(R), K - 1)
    label = np.tile(np.arange(1, K), R)
    keep = np.where(scores > heads.score_thresh)[0]
    keep = keep[remove_small_boxes(boxes[keep], 1e-2)]
    before = trace["detections_before_nms"][0]
    if not (np.array_equal(boxes[keep], before["boxes"]) and np.array_equal(scores[keep], before["scores"])):
        raise RuntimeError("explain: replaying the box head's filter did not reproduce detections_before_nms")
    det_keep = batched_nms(before["boxes"], before["scores"], before["labels"], heads.nms_thresh)
    det_keep = det_keep[: heads.detections_per_img]
    if not np.array_equal(before["scores"][det_keep], trace["detections"][0]["scores"]):
        raise RuntimeError("explain: per-class NMS on detections_before_nms did not reproduce the detections")
    return {"proposal": proposal[keep], "label": label[keep], "boxes": before["boxes"],
            "scores": before["scores"], "keep": det_keep}


# ----------------------------------------------------------------------------- pieces
def _feature_levels(model, trace, cap: int) -> list:
    """Per FPN level: shape, the most active channels and the channel mean."""
    names = list(trace["features"])
    inner = [block[0].weight.shape[1] for block in model.backbone.fpn.inner_blocks]   # C2..C5 channels
    pad_h, pad_w = trace["images"].shape[-2:]
    levels = []
    for i, name in enumerate(names):
        fmap = trace["features"][name][0]                                  # [C, H_l, W_l]
        C, H, W = fmap.shape
        energy = np.abs(fmap).reshape(C, -1).mean(axis=1)
        channels = np.argsort(-energy, kind="stable")[:cap]
        levels.append({
            "name": name, "label": f"P{i + 2}", "shape": [C, H, W], "stride": [pad_h // H, pad_w // W],
            "backbone": ({"label": f"C{i + 2}", "shape": [int(inner[i]), H, W]} if i < len(inner) else None),
            "channels": channels.tolist(), "maps": encode_array(fmap[channels]),
            "mean": encode_array(fmap.mean(axis=0)),
        })
    return levels


def _objectness_levels(model, trace) -> list:
    """Per level: logits float32[A, H_l, W_l] and the A anchors of cell (0, 0) (recorded)."""
    out, start = [], 0
    logits = trace["objectness"][0]
    anchors = trace["anchors"]
    for name, count in zip(trace["features"], trace["num_anchors_per_level"]):
        _, H, W = trace["features"][name][0].shape
        A = count // (H * W)
        block = logits[start:start + count].reshape(H, W, A).transpose(2, 0, 1)      # anchors' (y, x, a) order
        out.append({"shape": [A, H, W], "logits": encode_array(block),
                    "cell_anchors": anchors[start:start + A].astype(float).tolist()})
        start += count
    return out


def _pooled_levels(pooler, boxes) -> list:
    """Level index (0 = k_min) each box float[R, 4] is pooled from: the pooler's own LevelMapper."""
    return (pooler.map_levels([boxes]) if len(boxes) else np.zeros(0, np.int64)).astype(int).tolist()


def _grid(pooler, box, level: int) -> dict:
    """Where RoIAlign samples for this box on this level: the library's own sample points."""
    scale = pooler.scales[level]
    pts = roi_align_sample_points(box, pooler.output_size, scale, pooler.sampling_ratio, aligned=False,
                                  dtype=np.float32)
    return {"level": int(level), "scale": scale, "output_size": list(pooler.output_size),
            "bin_h": pts["bin_h"], "bin_w": pts["bin_w"], "gh": pts["gh"], "gw": pts["gw"],
            "ys": pts["ys"].astype(float).tolist(), "xs": pts["xs"].astype(float).tolist()}


def _palette(label: int) -> tuple:
    """uint8 RGB of a class label: draw.py's palette, so a class keeps its colour in every picture."""
    return tuple(int(round(255 * v)) for v in PALETTE[int(label) % len(PALETTE)])


def _ground_truth(target, candidates_original, det_masks, original_hw, resized_hw) -> dict:
    """GT boxes (resized frame), mask crops, and IoU of candidates (box) / detections (mask) with each GT."""
    boxes = np.asarray(target["boxes"], dtype=np.float32).reshape(-1, 4)
    labels = np.asarray(target["labels"]).astype(int)
    masks = target.get("masks")
    G = len(boxes)
    box_ious = box_iou(candidates_original, boxes) if G and len(candidates_original) else \
        np.zeros((len(candidates_original), G), np.float32)
    mask_ious = None
    crops = []
    if masks is not None and G:
        crowd = np.asarray(target.get("iscrowd", np.zeros(G, np.int64)))
        mask_ious = (mask_iou(det_masks >= 0.5, masks, crowd) if len(det_masks)    # float64[D, G], as COCO eval
                     else np.zeros((0, G)))
        crops = [mask_crop(m.astype(np.float32), (255, 255, 255)) for m in np.asarray(masks)]
    return {"boxes_resized": resize_boxes(boxes, original_hw, resized_hw).astype(float).tolist(),
            "labels": labels.tolist(), "masks": crops,
            "box_iou": encode_array(box_ious),
            "mask_iou": None if mask_ious is None else mask_ious.tolist()}


# ----------------------------------------------------------------------------- main
def collect_explain_data(model, image, target=None, class_names=None, score_threshold=0.5,
                         caps=None) -> dict:
    """One ``model.inspect`` pass of ``image`` -> the page's data dict (docs/explain.md).

    Args:
        model (MaskRCNN): run in eval mode for this call (its mode is restored after).
        image (uint8[H, W, 3] or float[3, H, W] in [0, 1]): one image.
        target (dict or None): ground truth in the image's pixels: boxes float[G, 4],
            labels int[G], optional masks uint8[G, H, W].
        class_names (sequence or None): index = label, 0 background.
        score_threshold (float): the score slider's starting value.
        caps (dict or None): overrides of ``DEFAULT_CAPS``.
    """
    caps = {**DEFAULT_CAPS, **(caps or {})}
    was_training = model.training
    model.eval()      # also what pre/post_nms_top_n read, so eval lasts until the data are collected
    try:
        return _collect(model, model.inspect([image]), image, target, class_names, score_threshold, caps)
    finally:
        model.train(was_training)


def _collect(model, trace, image, target, class_names, score_threshold, caps) -> dict:
    heads = model.roi_heads
    resized_hw = tuple(int(v) for v in trace["image_sizes"][0])
    pasted = trace["detections"][0]["masks"][:, 0]                  # [D, H0, W0] probabilities
    original_hw = tuple(int(v) for v in _original_size(image))
    batch = trace["images"][0]
    mean, std = model.transform.image_mean, model.transform.image_std
    shown = batch[:, :resized_hw[0], :resized_hw[1]] * std[:, None, None] + mean[:, None, None]
    shown = np.round(np.clip(shown, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)   # uint8[h, w, 3]

    rpn = replay_rpn_filter(model, trace)
    cand = replay_detection_candidates(model, trace)
    if len(cand["scores"]) > caps["candidates"]:
        raise ValueError(f"explain: {len(cand['scores'])} detection candidates above score "
                         f"{heads.score_thresh} exceed the page's cap of {caps['candidates']}; raise "
                         "model.roi_heads.score_thresh")
    proposals = trace["rpn_proposals"][0]
    box_pool, mask_pool = heads.box_roi_pool, heads.mask_roi_pool
    proposal_levels = _pooled_levels(box_pool, proposals)
    mask_logits = trace["mask_logits"]                               # [D, K, M, M]
    det_boxes = cand["boxes"][cand["keep"]]
    det_labels = cand["label"][cand["keep"]]
    mask_probs = maskrcnn_inference(mask_logits, det_labels)[:, 0]   # [D, M, M], as the mask branch computed them
    det_levels = _pooled_levels(mask_pool, det_boxes)
    detections = []
    for d, c in enumerate(cand["keep"]):
        p = int(cand["proposal"][c])
        label = int(cand["label"][c])
        detections.append({
            "candidate": int(c), "proposal": p, "label": label, "score": float(cand["scores"][c]),
            "box": det_boxes[d].astype(float).tolist(), "proposal_box": proposals[p].astype(float).tolist(),
            "box_grid": _grid(box_pool, proposals[p], proposal_levels[p]),
            "mask_grid": _grid(mask_pool, det_boxes[d], det_levels[d]),
            "mask_probs": encode_array(mask_probs[d]),
            "pasted": mask_crop(pasted[d], _palette(label)),
        })
    cand_original = resize_boxes(cand["boxes"], resized_hw, original_hw) if len(cand["boxes"]) else \
        np.zeros((0, 4), np.float32)
    names = list(class_names) if class_names is not None and len(class_names) == model.num_classes else \
        ["__background__"] + [f"class {k}" for k in range(1, model.num_classes)]
    data = {
        "format": FORMAT,
        "meta": {
            "num_classes": model.num_classes, "class_names": names,
            "original_size": list(original_hw), "resized_size": list(resized_hw),
            "padded_size": list(trace["images"].shape[-2:]),
            "image_mean": mean.tolist(), "image_std": std.tolist(),
            "recorded_score_thresh": heads.score_thresh, "box_nms_thresh": heads.nms_thresh,
            "detections_per_img": heads.detections_per_img, "score_threshold": float(score_threshold),
            "rpn_nms_thresh": model.rpn.nms_thresh, "rpn_pre_nms_top_n": model.rpn.pre_nms_top_n(),
            "rpn_post_nms_top_n": model.rpn.post_nms_top_n(),
            "canonical_scale": box_pool.canonical_scale, "canonical_level": box_pool.canonical_level,
            "k_min": box_pool.map_levels.k_min, "k_max": box_pool.map_levels.k_max,
            "pooler_scales": list(box_pool.scales), "sampling_ratio": box_pool.sampling_ratio,
            "mask_size": int(mask_logits.shape[-1]), "box_pool_size": list(box_pool.output_size),
            "mask_pool_size": list(mask_pool.output_size),
            "anchor_sizes": [list(s) for s in model.rpn.anchor_generator.sizes],
            "aspect_ratios": [list(a) for a in model.rpn.anchor_generator.aspect_ratios],
            "caps": caps, "palette": ["#%02x%02x%02x" % _palette(k) for k in range(len(PALETTE))],
        },
        "image": {"src": image_data_uri(shown, jpeg=shown.shape[0] * shown.shape[1] > caps["jpeg_above_pixels"])},
        "stages": stage_list(model, trace, len(rpn["boxes"]), len(cand["scores"]), len(detections)),
        "levels": _feature_levels(model, trace, caps["channels_per_level"]),
        "objectness": _objectness_levels(model, trace),
        "proposals": {
            "before_nms": encode_array(rpn["boxes"]), "scores": encode_array(rpn["scores"]),
            "levels": encode_array(rpn["levels"], np.int32), "recorded_keep": rpn["nms_keep"].tolist(),
            "box_levels": proposal_levels, "class_probs": encode_array(trace["class_probs"]),
        },
        "candidates": {
            "boxes": encode_array(cand["boxes"]), "scores": encode_array(cand["scores"]),
            "labels": encode_array(cand["label"], np.int32), "proposal": encode_array(cand["proposal"], np.int32),
            "recorded_keep": cand["keep"].tolist(),
        },
        "detections": detections,
        "ground_truth": None,
    }
    if target is not None:
        data["ground_truth"] = _ground_truth(target, cand_original, pasted[: len(detections)],
                                             original_hw, resized_hw)
    return data


def _original_size(image) -> tuple:
    image = np.asarray(image)
    return image.shape[:2] if image.dtype == np.uint8 else image.shape[-2:]


__all__ = ["DEFAULT_CAPS", "FORMAT", "collect_explain_data", "decode_array", "encode_array",
           "replay_detection_candidates", "replay_rpn_filter"]
