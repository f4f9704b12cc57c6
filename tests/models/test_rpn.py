"""RPN: head keys and init, flatten order, proposal filtering, anchor targets, losses, gradients."""

import numpy as np
import pytest

from minimrcnn.gradcheck import check_parameter_gradients
from minimrcnn.models.inspection import recording
from minimrcnn.models.rpn import RegionProposalNetwork, RPNHead, concat_box_prediction_layers, \
    split_box_prediction_grads
from minimrcnn.models.transform import ImageList
from minimrcnn.ops import AnchorGenerator, BalancedPositiveNegativeSampler, BoxCoder, Matcher


def make_rpn(channels=4, pre=50, post=20, seed=0):
    anchors = AnchorGenerator(((8,), (16,)), ((0.5, 1.0, 2.0),) * 2)
    head = RPNHead(channels, 3, rng=np.random.default_rng(seed))
    return RegionProposalNetwork(anchors, head, BoxCoder((1.0, 1.0, 1.0, 1.0)), Matcher(0.7, 0.3, True),
                                 BalancedPositiveNegativeSampler(16, 0.5),
                                 {"training": pre, "testing": pre}, {"training": post, "testing": post})


def features(rng, dtype=np.float64, N=2, C=4):
    return {"0": rng.standard_normal((N, C, 8, 8)).astype(dtype), "1": rng.standard_normal((N, C, 4, 4)).astype(dtype)}


def targets():
    return [{"boxes": np.array([[4, 4, 14, 12], [16, 18, 30, 30]], np.float32), "labels": np.array([1, 2])},
            {"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64)}]


def test_head_keys_and_init():
    head = RPNHead(8, 3)
    assert list(head.state_dict()) == ["conv.0.0.weight", "conv.0.0.bias", "cls_logits.weight", "cls_logits.bias",
                                       "bbox_pred.weight", "bbox_pred.bias"]
    assert head.bbox_pred.weight.shape == (12, 8, 1, 1)
    assert np.all(head.conv[0][0].bias.data == 0) and 0.005 < head.conv[0][0].weight.data.std() < 0.015


def test_flatten_order_matches_anchors_and_round_trips():
    N, A, H, W = 1, 3, 2, 2
    logits = np.arange(N * A * H * W, dtype=np.float64).reshape(N, A, H, W)
    deltas = np.arange(N * 4 * A * H * W, dtype=np.float64).reshape(N, 4 * A, H, W)
    obj, box = concat_box_prediction_layers([logits], [deltas])
    # flat index (i*W + j)*A + a  <->  logits[0, a, i, j]; box channel a*4 + coord
    assert obj[0, (1 * W + 0) * A + 2] == logits[0, 2, 1, 0]
    assert box[0, (0 * W + 1) * A + 1, 3] == deltas[0, 1 * 4 + 3, 0, 1]
    dl, dd = split_box_prediction_grads(obj, box, [logits.shape])
    np.testing.assert_array_equal(dl[0], logits)
    np.testing.assert_array_equal(dd[0], deltas)


def test_filter_proposals_per_level_topn_and_post_nms():
    rpn = make_rpn(pre=5, post=7).eval()
    rng = np.random.default_rng(0)
    feats = features(rng, np.float32)
    images = ImageList(np.zeros((2, 3, 32, 32), np.float32), [(32, 32), (20, 28)])
    with recording() as trace:
        boxes, losses, cache = rpn(images, feats)
    assert losses == {} and cache is None
    for b, before, (h, w) in zip(boxes, trace["rpn_proposals_before_nms"], images.image_sizes):
        assert len(before) <= 10 and len(b) <= 7        # 5 per level before NMS, 7 after
        assert np.all(b[:, [0, 2]] <= w) and np.all(b[:, [1, 3]] <= h) and np.all(b >= 0)
    scores = trace["rpn_proposal_scores"][0]
    assert np.all(np.diff(scores) <= 0)                  # sorted by probability


def test_anchor_targets_and_loss_normalisation():
    rpn = make_rpn()
    rng = np.random.default_rng(1)
    images = ImageList(np.zeros((2, 3, 32, 32)), [(32, 32), (32, 32)])
    with recording() as trace:
        _, losses, cache = rpn(images, features(rng, np.float32), targets(), rng=np.random.default_rng(0))
    labels = trace["rpn_labels"]
    assert np.all(labels[1] == 0)                        # image without GT: all background
    assert set(np.unique(labels[0])) <= {-1.0, 0.0, 1.0} and (labels[0] == 1).sum() >= 2
    sampled, pos = trace["rpn_sampled_inds"], trace["rpn_sampled_pos_inds"]
    assert len(sampled) == 32 and len(pos) <= 8
    x = trace["objectness"].reshape(-1)[sampled]
    target = np.concatenate(labels)[sampled]
    bce = np.mean(np.maximum(x, 0) - x * target + np.log1p(np.exp(-np.abs(x))))
    assert losses["loss_objectness"] == pytest.approx(bce)
    d = trace["rpn_box_deltas"].reshape(-1, 4)[pos] - np.concatenate(trace["rpn_regression_targets"])[pos]
    beta = 1 / 9
    l1 = np.where(np.abs(d) < beta, 0.5 * d * d / beta, np.abs(d) - 0.5 * beta).sum() / len(sampled)
    assert losses["loss_rpn_box_reg"] == pytest.approx(l1)


def test_backward_gradient_check_wrt_features_and_head():
    rpn = make_rpn().astype(np.float64)
    rng = np.random.default_rng(2)
    feats = features(rng)
    images = ImageList(np.zeros((2, 3, 32, 32)), [(32, 32), (32, 32)])

    def loss():
        _, losses, _ = rpn(images, feats, targets(), rng=np.random.default_rng(0))
        return losses["loss_objectness"] + losses["loss_rpn_box_reg"]
    _, _, cache = rpn(images, feats, targets(), rng=np.random.default_rng(0))
    rpn.zero_grad()
    dfeats = rpn.backward({"loss_objectness": 1.0, "loss_rpn_box_reg": 1.0}, cache)
    assert list(dfeats) == list(feats)                   # keyed by level name, like the features
    eps = 1e-6
    for name in feats:
        for _ in range(5):
            idx = tuple(int(rng.integers(0, s)) for s in feats[name].shape)
            old = feats[name][idx]
            feats[name][idx] = old + eps
            plus = loss()
            feats[name][idx] = old - eps
            minus = loss()
            feats[name][idx] = old
            num = (plus - minus) / (2 * eps)
            assert abs(num - dfeats[name][idx]) <= 1e-6 * max(abs(num) + abs(dfeats[name][idx]), 1e-3)
    errors = check_parameter_gradients(rpn, loss, entries=1, seed=1, floor=1e-3)
    assert sorted(errors) == sorted(name for name, _ in rpn.named_parameters())
    bad = {name: err for name, err in errors.items() if not err <= 1e-6}
    assert not bad, bad


def test_backward_adds_to_the_given_gradient_and_scales_with_the_seeds():
    rpn = make_rpn().astype(np.float64)
    rng = np.random.default_rng(2)   # (with 3, the ReLU before bbox_pred is dead at both positives)
    feats = features(rng)
    images = ImageList(np.zeros((2, 3, 32, 32)), [(32, 32), (32, 32)])
    _, _, cache = rpn(images, feats, targets(), rng=np.random.default_rng(0))
    own = rpn.backward({"loss_objectness": 1.0, "loss_rpn_box_reg": 1.0}, cache)
    earlier = {name: rng.standard_normal(f.shape) for name, f in feats.items()}
    added = rpn.backward({"loss_objectness": 1.0, "loss_rpn_box_reg": 1.0}, cache, earlier)
    for name in feats:
        np.testing.assert_array_equal(added[name], earlier[name] + own[name])
    # d(loss)/d(features) is linear in the seeds: objectness alone plus box alone is the whole.
    obj = rpn.backward({"loss_objectness": 1.0, "loss_rpn_box_reg": 0.0}, cache)
    box = rpn.backward({"loss_objectness": 0.0, "loss_rpn_box_reg": 1.0}, cache)
    for name in feats:
        np.testing.assert_allclose(obj[name] + box[name], own[name], rtol=1e-12, atol=1e-15)
    assert sum(np.abs(g).sum() for g in box.values()) > 0   # the box seed alone does reach the features
