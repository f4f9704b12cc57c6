"""RoI heads: sample selection, Fast R-CNN and mask losses (known answers, gradients), postprocess."""

import numpy as np
import pytest

from minimrcnn.gradcheck import numerical_gradient, rel_error
from minimrcnn.models.box_head import FastRCNNPredictor, TwoMLPHead, fastrcnn_loss_backward, fastrcnn_loss_forward
from minimrcnn.models.mask_head import (
    MaskRCNNHeads, MaskRCNNPredictor, maskrcnn_inference, maskrcnn_loss_backward, maskrcnn_loss_forward,
)
from minimrcnn.models.roi_heads import RoIHeads
from minimrcnn.ops import MultiScaleRoIAlign


def make_heads(batch=8, K=3, C=4):
    rng = np.random.default_rng(0)
    return RoIHeads(MultiScaleRoIAlign(["0", "1"], 7, 2), TwoMLPHead(C * 49, 8, rng=rng),
                    FastRCNNPredictor(8, K, rng=rng),
                    batch_size_per_image=batch, positive_fraction=0.25,
                    mask_roi_pool=MultiScaleRoIAlign(["0", "1"], 14, 2), mask_head=MaskRCNNHeads(C, (4, 4), rng=rng),
                    mask_predictor=MaskRCNNPredictor(4, 4, K, rng=rng))


def test_keys_and_init():
    heads = make_heads()
    keys = list(heads.state_dict())
    assert keys[:4] == ["box_head.fc6.weight", "box_head.fc6.bias", "box_head.fc7.weight", "box_head.fc7.bias"]
    assert "mask_head.1.0.weight" in keys and "mask_predictor.conv5_mask.weight" in keys
    assert np.all(heads.mask_head[0][0].bias.data == 0)
    assert np.any(heads.mask_predictor.mask_fcn_logits.bias.data != 0)  # default bias init kept


def test_select_training_samples_appends_gt_and_sorts():
    heads = make_heads(batch=12)  # room for 3 positives: everything is sampled
    proposals = [np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30], [0, 0, 3, 3]], np.float64),
                 np.array([[5, 5, 9, 9]], np.float64)]
    targets = [{"boxes": np.array([[0, 0, 10, 9]], np.float32), "labels": np.array([2])},
               {"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64)}]
    props, matched, labels, reg = heads.select_training_samples(proposals, targets, np.random.default_rng(0))
    # image 0: candidates = 4 proposals + the GT; positives (IoU >= 0.5): 0, 1 and the GT (index 4)
    # everything is sampled, in ascending candidate order (not positives first)
    np.testing.assert_array_equal(props[0], np.concatenate([proposals[0], targets[0]["boxes"]]))
    np.testing.assert_array_equal(labels[0], [2, 2, 0, 0, 2])
    np.testing.assert_allclose(reg[0][4], 0, atol=1e-12)          # the GT encodes to itself
    np.testing.assert_array_equal(labels[1], [0])                    # no GT: background, matched 0
    np.testing.assert_array_equal(matched[1], [0])
    heads.fg_bg_sampler.batch_size_per_image = 4          # 1 positive + the 2 negatives
    props, _, labels, _ = heads.select_training_samples(proposals, targets, np.random.default_rng(0))
    assert len(props[0]) == 3 and (labels[0] > 0).sum() == 1
    rows = [int(np.where((np.concatenate([proposals[0], targets[0]["boxes"]]) == p).all(1))[0][0]) for p in props[0]]
    assert rows == sorted(rows)


def test_fastrcnn_loss_known_answer_and_gradient():
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    labels = np.array([0, 1])
    box = np.zeros((2, 12))
    box[1, 4:8] = [0.1, 0.0, 1.0, 0.0]
    targets = np.zeros((2, 4))
    ce, l1, cache = fastrcnn_loss_forward(logits, box, labels, targets)
    expected_ce = np.mean([np.log(np.exp(2) + 2) - 2, np.log(np.exp(1) + 2) - 1])
    assert ce == pytest.approx(expected_ce)
    beta = 1 / 9   # |0.1| < beta: 0.5 * 0.01 / beta; |1.0| >= beta: 1 - beta / 2; divided by R = 2
    assert l1 == pytest.approx((0.5 * 0.01 / beta + 1 - 0.5 * beta) / 2)
    rng = np.random.default_rng(0)
    logits, box, targets = rng.standard_normal((5, 3)), rng.standard_normal((5, 12)), rng.standard_normal((5, 4))
    labels = np.array([0, 1, 2, 0, 2])
    _, _, cache = fastrcnn_loss_forward(logits, box, labels, targets)
    dlogits, dbox = fastrcnn_loss_backward(1.0, 0.5, cache)
    num_l = numerical_gradient(lambda x: fastrcnn_loss_forward(x, box, labels, targets)[0], logits, 1.0)
    num_b = numerical_gradient(lambda x: fastrcnn_loss_forward(logits, x, labels, targets)[1], box, 0.5)
    assert rel_error(dlogits, num_l) < 1e-6 and rel_error(dbox, num_b) < 1e-6


def test_mask_loss_gradient_and_inference():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((3, 4, 5, 5))
    labels = np.array([1, 3, 2])
    targets = rng.random((3, 5, 5))
    loss, cache = maskrcnn_loss_forward(logits, labels, targets)
    sel = logits[np.arange(3), labels]
    assert loss == pytest.approx(np.mean(np.maximum(sel, 0) - sel * targets + np.log1p(np.exp(-np.abs(sel)))))
    d = maskrcnn_loss_backward(1.0, cache)
    num = numerical_gradient(lambda x: maskrcnn_loss_forward(x, labels, targets)[0], logits, 1.0)
    assert rel_error(d, num) < 1e-6 and np.all(d[0, 0] == 0)
    probs = maskrcnn_inference(logits, labels)
    assert probs.shape == (3, 1, 5, 5)
    np.testing.assert_allclose(probs[1, 0], 1 / (1 + np.exp(-logits[1, 3])))


def close(a, b):
    """Max abs difference relative to the largest gradient (entries near 0 have no meaningful rel error)."""
    return np.abs(a - b).max() <= 1e-7 * np.abs(b).max()


def test_head_modules_gradient_check():
    rng = np.random.default_rng(2)
    heads = make_heads().astype(np.float64)
    for module, shape in ((heads.mask_head, (3, 4, 14, 14)), (heads.mask_predictor, (3, 4, 14, 14)),
                          (heads.box_head, (3, 4, 7, 7))):
        x = rng.standard_normal(shape)
        out, cache = module.forward(x)
        dout = rng.standard_normal(out.shape)
        module.zero_grad()
        dx = module.backward(dout, cache)
        assert close(dx, numerical_gradient(lambda v: module.forward(v)[0], x, dout))
        for name, p in module.named_parameters():
            saved = p.data.copy()

            def f(w):
                p.data = w
                return module.forward(x)[0]
            num = numerical_gradient(f, saved.copy(), dout) if p.data.size < 300 else None
            p.data = saved
            if num is not None:
                assert close(p.grad, num), name


def test_postprocess_detections_order_threshold_and_nms():
    heads = make_heads(K=3)
    heads.score_thresh = 0.3
    proposals = [np.array([[0, 0, 10, 10], [20, 20, 40, 40]], np.float32)]
    # Proposal 0: class 1 p=0.6, class 2 p=0.3 (not > 0.3: dropped). Proposal 1: class 2 p=0.8.
    probs = np.array([[0.1, 0.6, 0.3], [0.1, 0.1, 0.8]])
    logits = np.log(probs).astype(np.float32)
    box_regression = np.zeros((2, 12), np.float32)
    det = heads.postprocess_detections(logits, box_regression, proposals, [(32, 32)])[0]
    np.testing.assert_array_equal(det["labels"], [2, 1])            # sorted by score
    np.testing.assert_allclose(det["scores"], [0.8, 0.6], rtol=1e-5)
    np.testing.assert_allclose(det["boxes"], [[20, 20, 32, 32], [0, 0, 10, 10]])  # clipped to the image


def test_mask_branch_is_required():
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="mask_roi_pool"):
        RoIHeads(MultiScaleRoIAlign(["0"], 7, 2), TwoMLPHead(4 * 49, 8, rng=rng), FastRCNNPredictor(8, 3, rng=rng))


def _train_pass(heads, gt_boxes, gt_labels):
    """One training forward on a 2-level 64 x 64 pyramid: (features, cache)."""
    rng = np.random.default_rng(5)
    features = {"0": rng.standard_normal((1, 4, 16, 16)), "1": rng.standard_normal((1, 4, 8, 8)),
                "pool": rng.standard_normal((1, 4, 4, 4))}
    masks = np.zeros((len(gt_boxes), 64, 64), np.uint8)
    for m, (x1, y1, x2, y2) in zip(masks, np.asarray(gt_boxes, int).reshape(-1, 4)):
        m[y1:y2, x1:x2] = 1
    targets = [{"boxes": np.asarray(gt_boxes, np.float64).reshape(-1, 4), "labels": np.asarray(gt_labels, np.int64),
                "masks": masks}]
    proposals = [np.array([[2, 2, 30, 30], [4, 6, 28, 31], [30, 30, 60, 62], [10, 40, 20, 60]], np.float64)]
    _, losses, cache = heads.forward(features, proposals, [(64, 64)], targets, np.random.default_rng(0))
    return features, losses, cache


def test_backward_adds_box_then_mask_to_the_given_gradient():
    heads = make_heads(batch=8).astype(np.float64)
    features, losses, cache = _train_pass(heads, [[3, 3, 29, 30]], [2])
    assert losses["loss_mask"] > 0
    dlosses = {"loss_classifier": 1.0, "loss_box_reg": 1.0, "loss_mask": 1.0, "loss_objectness": 1.0}
    dbox, dmask = heads.backward_box(dlosses, cache), heads.backward_mask(dlosses, cache)
    assert sorted(dbox) == sorted(dmask) == ["0", "1"]          # the levels the poolers read
    earlier = {name: np.full(f.shape, 0.5) for name, f in features.items()}
    total = heads.backward(dlosses, cache, earlier)
    assert sorted(total) == ["0", "1", "pool"]
    np.testing.assert_array_equal(total["pool"], earlier["pool"])   # not read by the heads: passes through
    for name in ["0", "1"]:
        np.testing.assert_array_equal(total[name], earlier[name] + dbox[name] + dmask[name])
        np.testing.assert_array_equal(heads.backward(dlosses, cache)[name], dbox[name] + dmask[name])


def test_backward_without_positives_has_no_mask_gradient():
    heads = make_heads(batch=8).astype(np.float64)
    _, losses, cache = _train_pass(heads, np.zeros((0, 4)), np.zeros(0, np.int64))
    assert losses["loss_mask"] == 0 and cache.mask_loss is None
    dlosses = {"loss_classifier": 1.0, "loss_box_reg": 1.0, "loss_mask": 1.0}
    assert heads.backward_mask(dlosses, cache) == {}
    dbox = heads.backward_box(dlosses, cache)
    total = heads.backward(dlosses, cache)
    assert sorted(total) == ["0", "1"]
    for name in total:
        np.testing.assert_array_equal(total[name], dbox[name])
