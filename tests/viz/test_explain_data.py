"""The explain page's data (no browser): it is the recorded pass's numbers, the page is
self-contained, small, and bad input gets one clear error."""

import re

import numpy as np
import pytest

from minimrcnn.nn import functional as F
from minimrcnn.ops import batched_nms
from minimrcnn.ops.roi_align import roi_align_sample_points
from minimrcnn.viz import explain
from minimrcnn.viz.explain_data import decode_array, encode_array, replay_rpn_filter


def test_encode_decode_round_trip():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7
    blob = encode_array(a)
    assert blob["dtype"] == "float32" and blob["shape"] == [2, 3, 4]
    np.testing.assert_array_equal(decode_array(blob), a)
    np.testing.assert_array_equal(decode_array(encode_array([1, -2], np.int32)), [1, -2])


def test_page_is_self_contained_and_small(shapes_page):
    _, page, data = shapes_page
    assert page.count('<script type="application/json" id="explain-data">') == 1
    links = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']*)', page)
    assert links and all(link.startswith("data:") for link in links), links
    assert not re.search(r"<(?:script|link|img)[^>]+(?:src|href)=[\"']?(?:https?:)?//", page)
    assert len(page.encode()) < 3_000_000, "a 128 x 128 shapes page must stay under 3 MB"
    assert page.isascii()
    assert data["format"] == "minimrcnn-explain/1"
    for hook in ('data-control="score-threshold"', 'data-control="nms-iou"', 'data-control="rpn-post-nms-top-n"',
                 'data-role="detection-count"'):
        assert hook in page
    assert [s["name"] for s in data["stages"]] == ["image", "normalize", "backbone", "fpn", "rpn", "proposals",
                                                   "levels", "roi_align", "box_head", "nms", "mask_head",
                                                   "sigmoid", "paste"]
    assert data["meta"]["caps"] == {"channels_per_level": 8, "candidates": 20000, "jpeg_above_pixels": 65536}


def test_data_are_the_recorded_numbers(shapes_model, shapes_sample, shapes_page):
    """Every exported array equals what model.inspect records for the same image."""
    _, _, data = shapes_page
    image, _ = shapes_sample
    trace = shapes_model.inspect([image])
    heads = shapes_model.roi_heads
    # proposals and candidates
    before = decode_array(data["proposals"]["before_nms"])
    np.testing.assert_array_equal(before, trace["rpn_proposals_before_nms"][0])
    keep = data["proposals"]["recorded_keep"]
    np.testing.assert_array_equal(before[keep], trace["rpn_proposals"][0])
    np.testing.assert_array_equal(decode_array(data["proposals"]["scores"])[keep], trace["rpn_proposal_scores"][0])
    np.testing.assert_array_equal(decode_array(data["proposals"]["class_probs"]), trace["class_probs"])
    cand = data["candidates"]
    b = trace["detections_before_nms"][0]
    np.testing.assert_array_equal(decode_array(cand["boxes"]), b["boxes"])
    np.testing.assert_array_equal(decode_array(cand["scores"]), b["scores"])
    np.testing.assert_array_equal(decode_array(cand["labels"]), b["labels"])
    # each candidate's proposal and class give back its score: the replayed bookkeeping is right
    probs = trace["class_probs"][decode_array(cand["proposal"]), decode_array(cand["labels"])]
    np.testing.assert_array_equal(probs, b["scores"])
    # detections: levels, grids, masks
    dets = data["detections"]
    assert [d["score"] for d in dets] == trace["detections"][0]["scores"].tolist()
    props = trace["rpn_proposals"][0]
    box_levels = heads.box_roi_pool.map_levels([props])
    assert data["proposals"]["box_levels"] == box_levels.tolist()
    det_boxes = np.array([d["box"] for d in dets], dtype=np.float32)
    mask_levels = heads.mask_roi_pool.map_levels([det_boxes])
    for d, det in enumerate(dets):
        assert det["box_grid"]["level"] == box_levels[det["proposal"]]
        assert det["mask_grid"]["level"] == mask_levels[d]
        pts = roi_align_sample_points(props[det["proposal"]], 7, heads.box_roi_pool.scales[det["box_grid"]["level"]],
                                      2, dtype=np.float32)
        np.testing.assert_array_equal(np.float32(det["box_grid"]["ys"]), pts["ys"])
        np.testing.assert_array_equal(np.float32(det["box_grid"]["xs"]), pts["xs"])
        probs = F.sigmoid(trace["mask_logits"][d, det["label"]])
        np.testing.assert_array_equal(decode_array(det["mask_probs"]), probs)


def test_replay_refuses_a_trace_it_cannot_reproduce(shapes_model, shapes_sample):
    trace = shapes_model.inspect([shapes_sample[0]])
    trace["rpn_proposals_before_nms"] = [trace["rpn_proposals_before_nms"][0] + 1]
    with pytest.raises(RuntimeError, match="rpn_proposals_before_nms"):
        replay_rpn_filter(shapes_model, trace)


def test_ground_truth_ious(shapes_page, shapes_sample):
    _, _, data = shapes_page
    _, target = shapes_sample
    gt = data["ground_truth"]
    assert gt["labels"] == target["labels"].tolist()
    ious = decode_array(gt["box_iou"])
    assert ious.shape == (len(decode_array(data["candidates"]["scores"])), len(target["labels"]))
    assert np.all((ious >= 0) & (ious <= 1))
    assert len(gt["mask_iou"]) == len(data["detections"])


def test_bad_arguments(shapes_model, shapes_sample):
    with pytest.raises(ValueError, match="score_threshold"):
        explain(shapes_model, shapes_sample[0], score_threshold=1.5)
    with pytest.raises(TypeError, match="images\\[0\\]"):
        explain(shapes_model, np.zeros((8, 8, 3), dtype=np.int16))


def test_recorded_detections_are_batched_nms_of_the_candidates(shapes_page, shapes_model):
    _, _, data = shapes_page
    c = data["candidates"]
    keep = batched_nms(decode_array(c["boxes"]), decode_array(c["scores"]), decode_array(c["labels"]),
                       shapes_model.roi_heads.nms_thresh)
    assert keep.tolist() == c["recorded_keep"]


def test_a_model_in_training_mode_is_explained_in_eval_and_left_in_training(shapes_model, shapes_sample):
    shapes_model.train()
    try:
        page = explain(shapes_model, shapes_sample[0])
        assert shapes_model.training
    finally:
        shapes_model.eval()
    assert 'id="explain-data"' in page


@pytest.mark.slow
def test_resnet50_page_of_an_800x1216_image_stays_under_15_mb(resnet50_page):
    """The resnet50 preset (random weights) at its full input size: the caps keep the page small."""
    _, page, data = resnet50_page
    size = len(page.encode())
    assert size < 15_000_000, f"{size / 1e6:.1f} MB"
    assert data["meta"]["resized_size"] == [800, 1216]
    assert all(len(level["channels"]) == data["meta"]["caps"]["channels_per_level"] for level in data["levels"])
    assert "most active channels" in page          # the cap is stated on the page (explain.js footer)


def test_a_pass_without_detections_still_makes_a_page(empty_page):
    _, data = empty_page
    assert data["detections"] == [] and data["candidates"]["recorded_keep"] == []
    assert len(data["ground_truth"]["labels"]) >= 1 and data["ground_truth"]["mask_iou"] == []
