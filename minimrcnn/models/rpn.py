"""Region Proposal Network (Faster R-CNN, Ren et al. 2015, section 3.1), forward and backward.

Per pyramid level the shared ``RPNHead`` predicts, for each of the A anchors at each
location, one objectness logit and four box deltas. ``RegionProposalNetwork`` then

1. flattens the predictions in the anchors' (y, x, a) order and concatenates levels;
2. decodes every anchor with its deltas (BoxCoder weights 1, 1, 1, 1);
3. per image: per level keeps the top ``pre_nms_top_n`` by logit, clips to the
   unpadded image, drops boxes smaller than 1e-3, runs NMS 0.7 separately per level,
   keeps the first ``post_nms_top_n`` (the proposals; no gradient flows through them);
4. in training: matches anchors to GT (IoU 0.7 / 0.3, low-quality matches allowed),
   samples 256 anchors per image (half positive at most) and computes
   ``loss_objectness`` = BCE mean over the sampled anchors and
   ``loss_rpn_box_reg`` = smooth L1 (beta 1/9) summed over sampled positives / sampled.

``backward`` sends both losses' gradients into the head outputs and through the head
to the FPN features, returned as a dict keyed by level name like the features.

Shape shorthand: N images, C channels, H_l, W_l size of level l, L levels, A anchors
per location, T = sum_l H_l * W_l * A anchors per image, G ground-truth boxes, R
proposals.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minimrcnn.models.backbone import add_feature_grads
from minimrcnn.models.inspection import record
from minimrcnn.nn import Conv2d, Conv2dNormActivation, Module, Sequential
from minimrcnn.nn import functional as F
from minimrcnn.nn import init
from minimrcnn.ops import batched_nms, box_iou, clip_boxes_to_image, remove_small_boxes


class RPNHead(Module):
    """3x3 conv + ReLU, then 1x1 convs to A objectness logits and 4A deltas (channel a*4 + coord).

    Keys ``conv.0.0``, ``cls_logits``, ``bbox_pred`` as torchvision; init normal(0.01), zero bias.
    """

    def __init__(self, in_channels: int, num_anchors: int, rng=None):
        super().__init__()
        rng = init.as_rng(rng)
        self.conv = Sequential(Conv2dNormActivation(in_channels, in_channels, 3, rng=rng))
        self.cls_logits = Conv2d(in_channels, num_anchors, 1, rng=rng)
        self.bbox_pred = Conv2d(in_channels, num_anchors * 4, 1, rng=rng)
        for conv in (self.conv[0][0], self.cls_logits, self.bbox_pred):
            conv.weight.data = init.normal(conv.weight.shape, rng, std=0.01)
            conv.bias.data = np.zeros_like(conv.bias.data)

    def forward_level(self, x):
        """x float[N, C, H, W] -> logits float[N, A, H, W], deltas float[N, 4A, H, W], cache."""
        hidden, conv_cache = self.conv.forward(x)
        logits, cls_cache = self.cls_logits.forward(hidden)
        deltas, box_cache = self.bbox_pred.forward(hidden)
        return logits, deltas, (conv_cache, cls_cache, box_cache)

    def backward_level(self, dlogits, ddeltas, cache):
        conv_cache, cls_cache, box_cache = cache
        # hidden feeds both 1x1 convs: its gradient is the sum of theirs.
        dhidden = self.cls_logits.backward(dlogits, cls_cache) + self.bbox_pred.backward(ddeltas, box_cache)
        return self.conv.backward(dhidden, conv_cache)

    def forward(self, features: list):
        """L levels float[N, C, H_l, W_l] -> L logits, L deltas, L caches: one call per level, shared weights."""
        logits, deltas, caches = [], [], []
        for x in features:
            lg, dl, cache = self.forward_level(x)
            logits.append(lg)
            deltas.append(dl)
            caches.append(cache)
        return logits, deltas, caches

    def backward(self, dlogits: list, ddeltas: list, caches: list) -> list:
        """Per-level gradients; the weight grads of the L calls add up (chain rule for shared weights)."""
        return [self.backward_level(dl, dd, c) for dl, dd, c in zip(dlogits, ddeltas, caches)]


def concat_box_prediction_layers(logits: list, deltas: list):
    """Per-level [N, A, H, W] / [N, 4A, H, W] -> objectness float[N, T], deltas float[N, T, 4].

    (N, A*4, H, W) -> (N, A, 4, H, W) -> (N, H, W, A, 4) -> (N, H*W*A, 4): the anchors' order.
    """
    obj, box = [], []
    for lg, dl in zip(logits, deltas):
        N, A, H, W = lg.shape
        obj.append(lg.transpose(0, 2, 3, 1).reshape(N, H * W * A))
        box.append(dl.reshape(N, A, 4, H, W).transpose(0, 3, 4, 1, 2).reshape(N, H * W * A, 4))
    return np.concatenate(obj, axis=1), np.concatenate(box, axis=1)


def split_box_prediction_grads(dobjectness, ddeltas, shapes: list):
    """Inverse of concat_box_prediction_layers for gradients: back to per-level [N, A, H, W] / [N, 4A, H, W]."""
    dlogits, dbox, start = [], [], 0
    for (N, A, H, W) in shapes:
        stop = start + H * W * A
        dlogits.append(np.ascontiguousarray(dobjectness[:, start:stop].reshape(N, H, W, A).transpose(0, 3, 1, 2)))
        d = ddeltas[:, start:stop].reshape(N, H, W, A, 4).transpose(0, 3, 4, 1, 2).reshape(N, A * 4, H, W)
        dbox.append(np.ascontiguousarray(d))
        start = stop
    return dlogits, dbox


class RPNCache(NamedTuple):
    level_names: list          # the features' keys, in the order the head ran over them
    head: list                 # one head cache per level
    level_shapes: list         # (N, A, H_l, W_l) per level
    sampled_inds: np.ndarray   # int64[num_sampled]: flat indices n*T + anchor of the sampled anchors
    sampled_pos_inds: np.ndarray  # int64[num_pos]: flat indices of the sampled positives
    bce: tuple                 # cache of the objectness BCE
    smooth_l1: tuple           # cache of the box smooth L1 (None without positives)
    dtype: np.dtype


class RegionProposalNetwork(Module):
    """Anchors + RPNHead + proposal filtering + (train) anchor targets and the two RPN losses.

    Args:
        anchor_generator (AnchorGenerator), head (RPNHead), box_coder (BoxCoder, weights 1,1,1,1),
        proposal_matcher (Matcher 0.7 / 0.3 low-quality), fg_bg_sampler (sampler 256 / 0.5),
        pre_nms_top_n, post_nms_top_n (dict "training"/"testing" -> int): per level / per image.
        nms_thresh (float): 0.7; score_thresh (float): 0.0; min_size: 1e-3 (torchvision hard-codes it).
    """

    def __init__(self, anchor_generator, head, box_coder, proposal_matcher, fg_bg_sampler,
                 pre_nms_top_n, post_nms_top_n, nms_thresh=0.7, score_thresh=0.0):
        super().__init__()
        self.anchor_generator = anchor_generator
        self.head = head
        self.box_coder, self.proposal_matcher, self.fg_bg_sampler = box_coder, proposal_matcher, fg_bg_sampler
        self._pre_nms_top_n, self._post_nms_top_n = dict(pre_nms_top_n), dict(post_nms_top_n)
        self.nms_thresh, self.score_thresh, self.min_size = nms_thresh, score_thresh, 1e-3

    def pre_nms_top_n(self) -> int:
        return self._pre_nms_top_n["training" if self.training else "testing"]

    def post_nms_top_n(self) -> int:
        return self._post_nms_top_n["training" if self.training else "testing"]

    # -- proposals ----------------------------------------------------------------
    def filter_proposals(self, proposals, objectness, image_sizes, num_anchors_per_level):
        """Per image: per-level top-n by logit, clip, drop small, per-level NMS, top post_nms_top_n.

        Args:
            proposals (float[N, T, 4]): decoded anchors.
            objectness (float[N, T]): logits.
        Returns:
            boxes (list of N float[R_i, 4]), scores (list of N float[R_i]): sigmoid probabilities.
        """
        N = proposals.shape[0]
        level_ids = np.repeat(np.arange(len(num_anchors_per_level)), num_anchors_per_level)
        starts = np.concatenate([[0], np.cumsum(num_anchors_per_level)])
        final_boxes, final_scores, before_nms = [], [], []
        for n in range(N):
            keep = []
            for lvl, n_l in enumerate(num_anchors_per_level):
                logit_l = objectness[n, starts[lvl]:starts[lvl + 1]]
                k = min(self.pre_nms_top_n(), n_l)
                # topk: the k largest logits, sorted descending (stable for ties).
                top = np.argpartition(-logit_l, k - 1)[:k] if k < n_l else np.arange(n_l)
                top = top[np.argsort(-logit_l[top], kind="stable")]
                keep.append(top + starts[lvl])
            keep = np.concatenate(keep)
            boxes, lvl = proposals[n, keep], level_ids[keep]
            scores = F.sigmoid(objectness[n, keep])
            boxes = clip_boxes_to_image(boxes, image_sizes[n])
            small_keep = remove_small_boxes(boxes, self.min_size)
            boxes, scores, lvl = boxes[small_keep], scores[small_keep], lvl[small_keep]
            score_keep = np.where(scores >= self.score_thresh)[0]
            boxes, scores, lvl = boxes[score_keep], scores[score_keep], lvl[score_keep]
            before_nms.append(boxes)
            # NMS independently per pyramid level: the level id plays the role of a class.
            nms_keep = batched_nms(boxes, scores, lvl, self.nms_thresh)[: self.post_nms_top_n()]
            final_boxes.append(boxes[nms_keep])
            final_scores.append(scores[nms_keep])
        record(rpn_proposals_before_nms=before_nms, rpn_proposals=final_boxes, rpn_proposal_scores=final_scores)
        return final_boxes, final_scores

    # -- training targets ---------------------------------------------------------
    def assign_targets_to_anchors(self, anchors, targets):
        """Per image: labels float[T] (1 fg, 0 bg, -1 ignore) and matched GT boxes float[T, 4]."""
        labels, matched_gt_boxes = [], []
        for target in targets:
            gt_boxes = target["boxes"].astype(anchors.dtype)
            if gt_boxes.shape[0] == 0:
                # No GT: every anchor is background, the regression target is irrelevant.
                labels.append(np.zeros(anchors.shape[0], dtype=anchors.dtype))
                matched_gt_boxes.append(np.zeros_like(anchors))
                continue
            matched_idxs = self.proposal_matcher(box_iou(gt_boxes, anchors))
            matched_gt_boxes.append(gt_boxes[np.maximum(matched_idxs, 0)])
            image_labels = (matched_idxs >= 0).astype(anchors.dtype)
            image_labels[matched_idxs == self.proposal_matcher.BETWEEN_THRESHOLDS] = -1  # ignored
            labels.append(image_labels)
        return labels, matched_gt_boxes

    def compute_loss(self, objectness, pred_deltas, labels, regression_targets, rng):
        """loss_objectness, loss_rpn_box_reg and what backward needs.

        Args:
            objectness (float[N, T]), pred_deltas (float[N, T, 4]),
            labels (list of float[T]), regression_targets (list of float[T, 4]).
        """
        pos_masks, neg_masks = self.fg_bg_sampler(labels, rng)
        sampled_pos = np.where(np.concatenate(pos_masks))[0]
        sampled_neg = np.where(np.concatenate(neg_masks))[0]
        sampled = np.concatenate([sampled_pos, sampled_neg])
        num_sampled = len(sampled)
        flat_logits = objectness.reshape(-1)
        flat_labels = np.concatenate(labels)
        loss_objectness, bce_cache = F.binary_cross_entropy_with_logits_forward(
            flat_logits[sampled], flat_labels[sampled], reduction="mean")
        flat_deltas = pred_deltas.reshape(-1, 4)
        flat_targets = np.concatenate(regression_targets).astype(flat_deltas.dtype)
        box_sum, l1_cache = F.smooth_l1_loss_forward(
            flat_deltas[sampled_pos], flat_targets[sampled_pos], beta=1.0 / 9, reduction="sum")
        loss_box = box_sum / num_sampled  # normalised by ALL sampled anchors, not by positives
        losses = {"loss_objectness": float(loss_objectness), "loss_rpn_box_reg": float(loss_box)}
        return losses, sampled, sampled_pos, bce_cache, l1_cache

    # -- forward / backward -------------------------------------------------------
    def forward(self, images, features, targets=None, rng=None):
        """images (ImageList), features (dict name -> float[N, C, H_l, W_l], L levels).

        Returns:
            boxes (list of N float[R_i, 4]): proposals in resized-image coordinates;
            losses (dict, empty in eval); cache (RPNCache or None in eval).
        """
        feats = list(features.values())
        logits, deltas, head_caches = self.head.forward(feats)
        Hpad, Wpad = images.tensors.shape[-2:]
        anchors = self.anchor_generator(image_size=(Hpad, Wpad), feature_sizes=[f.shape[-2:] for f in feats])
        anchors = anchors.astype(feats[0].dtype, copy=False)
        level_shapes = [lg.shape for lg in logits]
        num_anchors_per_level = [A * H * W for (_, A, H, W) in level_shapes]
        objectness, pred_deltas = concat_box_prediction_layers(logits, deltas)
        N, T = objectness.shape
        # Decode every anchor of every image (the same anchors for each image of the batch).
        proposals = self.box_coder.decode(pred_deltas.reshape(N * T, 4), np.tile(anchors, (N, 1)))
        proposals = proposals.reshape(N, T, 4)
        record(anchors=anchors, objectness=objectness, rpn_box_deltas=pred_deltas,
               num_anchors_per_level=num_anchors_per_level)
        boxes, _ = self.filter_proposals(proposals, objectness, images.image_sizes, num_anchors_per_level)
        if not self.training:
            return boxes, {}, None
        labels, matched_gt_boxes = self.assign_targets_to_anchors(anchors, targets)
        regression_targets = [self.box_coder.encode(gt, anchors) for gt in matched_gt_boxes]
        losses, sampled, sampled_pos, bce_cache, l1_cache = self.compute_loss(
            objectness, pred_deltas, labels, regression_targets, rng)
        record(rpn_labels=labels, rpn_regression_targets=regression_targets,
               rpn_sampled_inds=sampled, rpn_sampled_pos_inds=sampled_pos)
        cache = RPNCache(list(features), head_caches, level_shapes, sampled, sampled_pos, bce_cache, l1_cache,
                         objectness.dtype)
        return boxes, losses, cache

    def backward(self, dlosses: dict, cache: RPNCache, dfeatures: dict | None = None) -> dict:
        """Both RPN losses -> gradients at the features, added to ``dfeatures``.

        Args:
            dlosses (dict): d(total)/d(loss) for "loss_objectness" and "loss_rpn_box_reg"
                (other keys are ignored); MaskRCNN.backward passes 1.0 for each.
            dfeatures (dict name -> float[N, C, H_l, W_l] or None): the gradient other
                stages already sent to the features.
        Returns:
            dict name -> float[N, C, H_l, W_l] for every level: dfeatures + this stage's share.
        """
        dloss_objectness, dloss_box_reg = dlosses["loss_objectness"], dlosses["loss_rpn_box_reg"]
        N = cache.level_shapes[0][0]
        T = sum(A * H * W for (_, A, H, W) in cache.level_shapes)
        dobjectness = np.zeros(N * T, dtype=cache.dtype)
        dobjectness[cache.sampled_inds] = F.binary_cross_entropy_with_logits_backward(dloss_objectness, cache.bce)
        ddeltas = np.zeros((N * T, 4), dtype=cache.dtype)
        # loss_rpn_box_reg = sum / num_sampled, so d(sum) = dloss / num_sampled.
        dsum = dloss_box_reg / len(cache.sampled_inds)
        ddeltas[cache.sampled_pos_inds] = F.smooth_l1_loss_backward(dsum, cache.smooth_l1)
        dlogits, dbox = split_box_prediction_grads(dobjectness.reshape(N, T), ddeltas.reshape(N, T, 4),
                                                   cache.level_shapes)
        dlevels = self.head.backward(dlogits, dbox, cache.head)   # L arrays, in cache.level_names order
        return add_feature_grads(dfeatures or {}, dict(zip(cache.level_names, dlevels)))
