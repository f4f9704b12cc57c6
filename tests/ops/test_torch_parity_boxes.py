"""Optional parity with torchvision: nms, batched_nms (both paths), box_iou, anchors, box coder, matcher."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from torchvision.models.detection import _utils as det_utils  # noqa: E402
from torchvision.models.detection.anchor_utils import AnchorGenerator as TVAnchorGenerator  # noqa: E402
from torchvision.models.detection.image_list import ImageList  # noqa: E402

from minimrcnn.runtime import reference_kernels  # noqa: E402
from minimrcnn.ops import (  # noqa: E402
    AnchorGenerator, BoxCoder, Matcher, batched_nms, box_convert, box_iou, clip_boxes_to_image, masks_to_boxes,
    remove_small_boxes,
)
from minimrcnn.ops.nms import nms  # noqa: E402

from tests.conftest import random_boxes  # noqa: E402

pytestmark = pytest.mark.torch


def tv_nms(boxes, scores, thr):
    return torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), thr).numpy()


def assert_same_keep(ours, theirs):
    np.testing.assert_array_equal(np.sort(ours), np.sort(theirs))


def case(kind, rng, n, dtype):
    boxes = random_boxes(rng, n, dtype)
    scores = rng.uniform(size=n).astype(dtype)
    if kind == "ties":            # scores rounded to a few values
        scores = np.round(scores * 4).astype(dtype) / 4
    elif kind == "degenerate":    # duplicates, zero-area boxes, integer grid
        boxes = np.round(boxes / 50) * 50
        boxes[: n // 4] = boxes[0]
        boxes[n // 4: n // 3, 2:] = boxes[n // 4: n // 3, :2]
        scores = np.round(scores * 2).astype(dtype) / 2
    return boxes, scores


@pytest.mark.parametrize("kind", ["random", "ties", "degenerate"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nms_matches_torchvision(kind, dtype):
    for seed in range(12):
        rng = np.random.default_rng(seed)
        boxes, scores = case(kind, rng, int(rng.integers(1, 400)), dtype)
        for thr in (0.2, 0.3, 0.5, 0.7, 0.9):
            theirs = tv_nms(boxes, scores, thr)
            with reference_kernels(False):
                ours = nms(boxes, scores, thr)
            with reference_kernels(True):
                twin = nms(boxes, scores, thr)
            assert_same_keep(ours, theirs)
            np.testing.assert_array_equal(ours, twin)
            if kind == "random":      # distinct scores: the order is defined too
                np.testing.assert_array_equal(ours, theirs)


def test_nms_float32_point_three_and_threshold_plus_epsilon():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 3]], dtype=np.float32)   # IoU 30/100
    scores = np.array([0.9, 0.8], dtype=np.float32)
    np.testing.assert_array_equal(nms(boxes, scores, 0.3), tv_nms(boxes, scores, 0.3))
    # torchvision's own test: a box with IoU slightly above thr among 1000 random boxes.
    rng = np.random.default_rng(0)
    for thr in (0.2, 0.5, 0.8):
        boxes = random_boxes(rng, 1000)
        scores = rng.uniform(size=1000).astype(np.float32)
        x1, y1, x2, y2 = boxes[0]
        w = x2 - x1
        # Same y-extent, shifted right so that IoU = (w - d) / (w + d) = thr + 1e-5.
        target = thr + 1e-5
        d = w * (1 - target) / (1 + target)
        boxes[1] = [x1 + d, y1, x2 + d, y2]
        np.testing.assert_array_equal(nms(boxes, scores, thr), tv_nms(boxes, scores, thr))


@pytest.mark.parametrize("n", [300, 1000, 1001, 2500])     # <= 1000: coordinate trick; > 1000: vanilla
def test_batched_nms_matches_torchvision_both_paths(n):
    for seed in range(6):
        rng = np.random.default_rng(seed)
        boxes = random_boxes(rng, n)
        scores = rng.uniform(size=n).astype(np.float32)
        if seed % 2:
            scores = np.round(scores * 8) / 8
        idxs = rng.integers(0, 91 if seed % 3 == 0 else 4, n)
        for thr in (0.3, 0.5, 0.9):
            theirs = torchvision.ops.batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores),
                                                 torch.from_numpy(idxs), thr).numpy()
            ours = batched_nms(boxes, scores, idxs, thr)
            assert_same_keep(ours, theirs)
            # Same score sequence. Among exactly equal scores the vanilla path's final
            # torch.sort (not stable) orders arbitrarily; ours keeps ascending index.
            np.testing.assert_array_equal(scores[ours], scores[theirs])
            if n <= 1000:   # the trick path is one nms: its order (stable) is reproduced exactly
                np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_box_iou_matches_torchvision(dtype):
    rng = np.random.default_rng(0)
    b1, b2 = random_boxes(rng, 40, dtype), random_boxes(rng, 300, dtype)
    b1[0] = b2[0] = [5, 5, 5, 5]
    theirs = torchvision.ops.box_iou(torch.from_numpy(b1), torch.from_numpy(b2)).numpy()
    for flag in (False, True):
        with reference_kernels(flag):
            np.testing.assert_array_equal(box_iou(b1, b2), theirs)


def test_anchors_match_torchvision_800x1216():
    features = [(200, 304), (100, 152), (50, 76), (25, 38), (13, 19)]
    tv = TVAnchorGenerator(((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5)
    images = ImageList(torch.zeros(2, 3, 800, 1216), [(800, 1200), (790, 1216)])
    feature_maps = [torch.zeros(2, 1, h, w) for h, w in features]
    theirs = tv(images, feature_maps)
    ours = AnchorGenerator()((800, 1216), features)
    assert ours.shape == (242991, 4)
    for per_image in theirs:
        np.testing.assert_array_equal(ours, per_image.numpy())


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_box_coder_matches_torchvision(weights, dtype):
    rng = np.random.default_rng(1)
    proposals, gt = random_boxes(rng, 200, dtype), random_boxes(rng, 200, dtype)
    tv = det_utils.BoxCoder(weights)
    ours = BoxCoder(weights)
    theirs = tv.encode_single(torch.from_numpy(gt), torch.from_numpy(proposals)).numpy()
    np.testing.assert_allclose(ours.encode(gt, proposals), theirs, rtol=1e-6 if dtype == np.float32 else 1e-14,
                               atol=1e-6 if dtype == np.float32 else 1e-14)
    deltas = rng.normal(scale=2.0, size=(200, 4 * 3)).astype(dtype)   # large enough to hit the clamp
    deltas[0, 2] = 50.0
    theirs = tv.decode(torch.from_numpy(deltas), [torch.from_numpy(proposals)]).numpy()
    # float32: exp() may differ by an ulp between libms, and x1 = cx - w/2 cancels, so the
    # tolerance is absolute in pixels (boxes here reach a few thousand pixels).
    np.testing.assert_allclose(ours.decode(deltas, proposals), theirs, rtol=1e-6 if dtype == np.float32 else 1e-13,
                               atol=1e-3 if dtype == np.float32 else 1e-9)
    assert math.isclose(ours.bbox_xform_clip, tv.bbox_xform_clip)


@pytest.mark.parametrize("high, low, allow", [(0.7, 0.3, True), (0.7, 0.3, False), (0.5, 0.5, False)])
def test_matcher_matches_torchvision(high, low, allow):
    for seed in range(10):
        rng = np.random.default_rng(seed)
        gt = random_boxes(rng, int(rng.integers(1, 6)), max_side=300)
        anchors = random_boxes(rng, 500)
        quality = box_iou(gt, anchors)
        if seed % 2:
            quality = np.round(quality, 1)     # many ties
        theirs = det_utils.Matcher(high, low, allow)(torch.from_numpy(quality)).numpy()
        np.testing.assert_array_equal(Matcher(high, low, allow)(quality), theirs)


def test_box_utilities_match_torchvision():
    rng = np.random.default_rng(2)
    boxes = random_boxes(rng, 100, image=400)
    tb = torch.from_numpy(boxes)
    np.testing.assert_array_equal(clip_boxes_to_image(boxes, (300, 350)),
                                  torchvision.ops.clip_boxes_to_image(tb, (300, 350)).numpy())
    theirs = torchvision.ops.remove_small_boxes(tb, 60.0).numpy()
    np.testing.assert_array_equal(remove_small_boxes(boxes, 60.0), theirs)
    for a, b in (("xyxy", "xywh"), ("xyxy", "cxcywh"), ("xywh", "xyxy"), ("cxcywh", "xyxy")):
        theirs = torchvision.ops.box_convert(tb, a, b).numpy()
        np.testing.assert_array_equal(box_convert(boxes, a, b), theirs)
    masks = rng.uniform(size=(6, 20, 30)) > 0.97
    masks[2] = False
    theirs = torchvision.ops.masks_to_boxes(torch.from_numpy(masks)).numpy()
    np.testing.assert_array_equal(masks_to_boxes(masks), theirs)
