"""matterport-style per-image VOC AP: hand-worked cases and matterport's quirks."""

import numpy as np
import pytest

from minimrcnn.eval.voc import per_image_ap


def masks_of(rects, H=20, W=20):
    out = np.zeros((len(rects), H, W), np.uint8)
    for k, (x1, y1, x2, y2) in enumerate(rects):
        out[k, y1:y2, x1:x2] = 1
    return out


GT = [(0, 0, 10, 10), (10, 10, 20, 20)]


def ap(pred_rects, labels, scores, gt_rects=GT, gt_labels=(1, 1), **kw):
    gt = np.array(gt_rects, float)
    pred = np.array(pred_rects, float).reshape(-1, 4)
    return per_image_ap(gt, np.array(gt_labels), masks_of(gt_rects), pred, np.array(labels),
                        np.array(scores, float), masks_of(pred_rects).astype(np.float32), **kw)


def test_perfect_and_empty():
    assert ap(GT, [1, 1], [0.9, 0.8]) == pytest.approx(1.0)
    assert ap([], [], []) == 0.0


def test_half_recall_and_false_positive_first():
    # one correct detection out of two GTs: precision 1 up to recall 0.5 -> AP 0.5
    assert ap([GT[0]], [1], [0.9]) == pytest.approx(0.5)
    # a false positive ranked first, then both GTs: precisions 0, 1/2, 2/3 -> AP = 2/3
    assert ap([(0, 10, 5, 20), GT[0], GT[1]], [1, 1, 1], [0.95, 0.9, 0.8]) == pytest.approx(2 / 3)


def test_wrong_class_and_threshold():
    assert ap(GT, [2, 2], [0.9, 0.8]) == 0.0
    # a box covering half of a GT: IoU 0.5 passes at 0.5 and fails at 0.6
    assert ap([(0, 0, 10, 5)], [1], [0.9], iou_threshold=0.5) == pytest.approx(0.5)
    assert ap([(0, 0, 10, 5)], [1], [0.9], iou_threshold=0.6) == 0.0


def test_matterport_quirk_gt_matched_by_first_prediction():
    # Both predictions hit GT 0; GT 0 matched by prediction index 0 still looks free
    # (gt_match > 0 test), so the duplicate counts as a second true positive: recall
    # reaches 2 and matterport's AP is 2.0. COCO AP would count the duplicate as a FP.
    assert ap([GT[0], GT[0]], [1, 1], [0.9, 0.8], gt_rects=[GT[0]], gt_labels=[1]) == pytest.approx(2.0)
    # when the first-ranked prediction is a miss, prediction 1 takes the GT and the duplicate
    # is a false positive: precision 1/2 at recall 1 -> AP 0.5
    assert ap([(0, 10, 5, 20), GT[0], GT[0]], [1, 1, 1], [0.95, 0.9, 0.8],
              gt_rects=[GT[0]], gt_labels=[1]) == pytest.approx(0.5)


def test_masks_with_channel_axis_and_no_gt():
    gt = np.array(GT, float)
    pm = masks_of(GT).astype(np.float32)[:, None]
    assert per_image_ap(gt, np.array([1, 1]), masks_of(GT), gt, np.array([1, 1]),
                        np.array([0.9, 0.8]), pm) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="GT"):
        per_image_ap(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 20, 20)), gt, np.array([1, 1]),
                     np.array([0.9, 0.8]), pm)
