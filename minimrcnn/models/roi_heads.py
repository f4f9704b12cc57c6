"""RoIHeads: the second stage of Mask R-CNN (box branch + mask branch), forward and backward.

Training, as torchvision's ``roi_heads.py``:

1. append the GT boxes to each image's proposals;
2. match proposals to GT (IoU >= 0.5 foreground, else background);
3. sample ``batch_size_per_image`` RoIs per image, ``positive_fraction`` foreground at
   most, kept in ascending proposal order;
4. box branch: RoIAlign 7x7 -> TwoMLPHead -> FastRCNNPredictor -> fastrcnn_loss;
5. mask branch on the sampled positives: RoIAlign 14x14 -> MaskRCNNHeads ->
   MaskRCNNPredictor -> maskrcnn_loss against the GT masks projected into the boxes.

Inference: softmax scores, per-class boxes decoded and clipped, background dropped,
``score > score_thresh``, tiny boxes dropped, per-class NMS, top ``detections_per_img``;
then the mask branch on the detections (sigmoid of the predicted class's channel).

``backward`` runs the mask branch, then the box branch, and adds both to the gradient
at the features it is given (box first, then mask), keyed by level name '0'..'3'.

Shape shorthand: N images, C channels, H_l, W_l size of level l, R RoIs, R_pos positive
RoIs, G GT boxes, K classes incl. background, P pooled size, M mask size, D detections.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minimrcnn.models.backbone import add_feature_grads
from minimrcnn.models.box_head import fastrcnn_loss_backward, fastrcnn_loss_forward
from minimrcnn.models.inspection import record
from minimrcnn.models.mask_head import maskrcnn_inference, maskrcnn_loss_backward, maskrcnn_loss_forward
from minimrcnn.nn import Module
from minimrcnn.nn import functional as F
from minimrcnn.ops import (
    BalancedPositiveNegativeSampler, BoxCoder, Matcher, batched_nms, box_iou, clip_boxes_to_image,
    project_masks_on_boxes, remove_small_boxes,
)


class RoIHeadsCache(NamedTuple):
    """What the training backward needs; the mask fields are None when no RoI is positive."""
    box_pool: tuple        # MultiScaleRoIAlign cache (7x7)
    box_head: tuple
    box_predictor: tuple
    box_loss: tuple        # FastRCNNLossCache (None when nothing was sampled)
    mask_pool: tuple       # MultiScaleRoIAlign cache (14x14); None when there are no positives
    mask_head: list
    mask_predictor: tuple
    mask_loss: tuple       # MaskLossCache; None when there are no positives


class RoIHeads(Module):
    """Box and mask branches of Mask R-CNN.

    Args:
        box_roi_pool, mask_roi_pool (MultiScaleRoIAlign): 7x7 and 14x14 poolers over '0'..'3'.
        box_head (TwoMLPHead), box_predictor (FastRCNNPredictor),
        mask_head (MaskRCNNHeads), mask_predictor (MaskRCNNPredictor): the mask branch is
            required (keyword-only; torchvision lets it be None for Faster R-CNN).
        fg_iou_thresh, bg_iou_thresh (float): 0.5 / 0.5 (no ignore band).
        batch_size_per_image (int): 512 (128 in the shapes preset); positive_fraction: 0.25.
        bbox_reg_weights (4 floats): (10, 10, 5, 5).
        score_thresh (0.05), nms_thresh (0.5), detections_per_img (100): inference.
    """

    def __init__(self, box_roi_pool, box_head, box_predictor, fg_iou_thresh=0.5, bg_iou_thresh=0.5,
                 batch_size_per_image=512, positive_fraction=0.25, bbox_reg_weights=(10.0, 10.0, 5.0, 5.0),
                 score_thresh=0.05, nms_thresh=0.5, detections_per_img=100, *,
                 mask_roi_pool, mask_head, mask_predictor):
        super().__init__()
        self.box_roi_pool, self.box_head, self.box_predictor = box_roi_pool, box_head, box_predictor
        self.mask_roi_pool, self.mask_head, self.mask_predictor = mask_roi_pool, mask_head, mask_predictor
        self.proposal_matcher = Matcher(fg_iou_thresh, bg_iou_thresh, False)
        self.fg_bg_sampler = BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction)
        self.box_coder = BoxCoder(bbox_reg_weights)
        self.score_thresh, self.nms_thresh, self.detections_per_img = score_thresh, nms_thresh, detections_per_img

    # -- training sample selection ------------------------------------------------
    def select_training_samples(self, proposals, targets, rng):
        """Append GT, match, sample (ascending index order), encode regression targets.

        Returns per-image lists: proposals float[R_i, 4], matched_idxs int64[R_i],
        labels int64[R_i], regression_targets float[R_i, 4].
        """
        dtype = proposals[0].dtype
        all_proposals, all_matched, all_labels = [], [], []
        for boxes, target in zip(proposals, targets):
            gt_boxes = target["boxes"].astype(dtype)
            boxes = np.concatenate([boxes, gt_boxes])  # GT boxes are always candidates
            if gt_boxes.shape[0] == 0:
                matched = np.zeros(len(boxes), dtype=np.int64)
                labels = np.zeros(len(boxes), dtype=np.int64)
            else:
                match = self.proposal_matcher(box_iou(gt_boxes, boxes))
                matched = np.maximum(match, 0)
                labels = target["labels"][matched].astype(np.int64)
                labels[match == self.proposal_matcher.BELOW_LOW_THRESHOLD] = 0  # background
                labels[match == self.proposal_matcher.BETWEEN_THRESHOLDS] = -1  # ignored (empty band at 0.5 / 0.5)
            all_proposals.append(boxes)
            all_matched.append(matched)
            all_labels.append(labels)
        pos_masks, neg_masks = self.fg_bg_sampler(all_labels, rng)
        out_proposals, out_matched, out_labels, out_targets = [], [], [], []
        for boxes, matched, labels, pos, neg, target in zip(all_proposals, all_matched, all_labels,
                                                             pos_masks, neg_masks, targets):
            keep = np.where(pos.astype(bool) | neg.astype(bool))[0]  # ascending, not positives-first
            boxes, matched, labels = boxes[keep], matched[keep], labels[keep]
            gt_boxes = target["boxes"].astype(dtype)
            if gt_boxes.shape[0] == 0:
                gt_boxes = np.zeros((1, 4), dtype=dtype)
            out_targets.append(self.box_coder.encode(gt_boxes[matched], boxes).astype(dtype))
            out_proposals.append(boxes)
            out_matched.append(matched)
            out_labels.append(labels)
        return out_proposals, out_matched, out_labels, out_targets

    # -- inference ------------------------------------------------------------------
    def postprocess_detections(self, class_logits, box_regression, proposals, image_shapes):
        """class_logits float[R, K], box_regression float[R, 4K], proposals (list of N float[R_i, 4])
        -> per image: boxes float[D, 4], scores float[D], labels int64[D] (resized coordinates)."""
        K = class_logits.shape[1]
        counts = [len(p) for p in proposals]
        pred_boxes = self.box_coder.decode(box_regression, np.concatenate(proposals))  # [R, K, 4]
        pred_scores = F.softmax(class_logits, -1)  # [R, K]
        results, before_nms = [], []
        splits = np.cumsum(counts)[:-1]
        for boxes, scores, image_shape in zip(np.split(pred_boxes, splits), np.split(pred_scores, splits),
                                              image_shapes):
            boxes = clip_boxes_to_image(boxes.reshape(-1, 4), image_shape).reshape(-1, K, 4)
            labels = np.broadcast_to(np.arange(K), scores.shape)
            # Drop background, flatten proposal-major, class-minor: index r*(K-1) + (c-1).
            boxes = boxes[:, 1:].reshape(-1, 4)
            scores = scores[:, 1:].reshape(-1)
            labels = labels[:, 1:].reshape(-1)
            keep = np.where(scores > self.score_thresh)[0]  # strict, as torchvision
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = remove_small_boxes(boxes, 1e-2)
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            before_nms.append({"boxes": boxes, "scores": scores, "labels": labels})
            keep = batched_nms(boxes, scores, labels, self.nms_thresh)[: self.detections_per_img]
            results.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep].astype(np.int64)})
        record(class_probs=pred_scores, refined_boxes=pred_boxes, detections_before_nms=before_nms)
        return results

    # -- forward / backward -------------------------------------------------------
    def forward(self, features, proposals, image_shapes, targets=None, rng=None):
        """features (dict '0'..'3', 'pool'), proposals (list of N float[R_i, 4]), image_shapes [(h, w)].

        Returns:
            detections (list of dicts boxes/labels/scores/masks[D, 1, M, M]; empty in training),
            losses (dict; empty in eval), cache (RoIHeadsCache; None in eval).
        """
        if self.training:
            return self.forward_train(features, proposals, image_shapes, targets, rng)
        box_features, _ = self.box_roi_pool.forward(features, proposals, image_shapes)
        x, _ = self.box_head.forward(box_features)
        class_logits, box_regression, _ = self.box_predictor.forward(x)
        detections = self.postprocess_detections(class_logits, box_regression, proposals, image_shapes)
        counts = [len(d["boxes"]) for d in detections]
        M = 2 * self.mask_roi_pool.output_size[0]   # the predictor's 2x2 stride-2 upsampling doubles P
        dtype = class_logits.dtype
        if sum(counts) == 0:
            mask_logits = np.zeros((0, class_logits.shape[1], M, M), dtype=dtype)
            probs = np.zeros((0, 1, M, M), dtype=dtype)
        else:
            mask_features, _ = self.mask_roi_pool.forward(features, [d["boxes"] for d in detections], image_shapes)
            h, _ = self.mask_head.forward(mask_features)
            mask_logits, _ = self.mask_predictor.forward(h)
            probs = maskrcnn_inference(mask_logits, np.concatenate([d["labels"] for d in detections]))
        record(mask_logits=mask_logits)
        for det, masks in zip(detections, np.split(probs, np.cumsum(counts)[:-1])):
            det["masks"] = masks
        return detections, {}, None

    def forward_train(self, features, proposals, image_shapes, targets, rng):
        """Sample RoIs, run both branches on them: ([], losses of 3 floats, RoIHeadsCache)."""
        proposals, matched_idxs, labels, regression_targets = self.select_training_samples(proposals, targets, rng)
        record(sampled_rois=proposals, sampled_labels=labels, sampled_matched_idxs=matched_idxs,
               sampled_regression_targets=regression_targets)
        box_features, box_pool_cache = self.box_roi_pool.forward(features, proposals, image_shapes)
        x, box_head_cache = self.box_head.forward(box_features)
        class_logits, box_regression, predictor_cache = self.box_predictor.forward(x)
        loss_classifier, loss_box_reg, box_loss_cache = fastrcnn_loss_forward(
            class_logits, box_regression, np.concatenate(labels), np.concatenate(regression_targets))
        # Mask branch on the positives only.
        pos = [np.where(lb > 0)[0] for lb in labels]
        mask_proposals = [p[i] for p, i in zip(proposals, pos)]
        pos_matched = [m[i] for m, i in zip(matched_idxs, pos)]
        loss_mask, mask_caches = 0.0, (None, None, None, None)
        if sum(len(i) for i in pos) > 0:
            mask_features, mask_pool_cache = self.mask_roi_pool.forward(features, mask_proposals, image_shapes)
            h, mask_head_cache = self.mask_head.forward(mask_features)
            mask_logits, mask_predictor_cache = self.mask_predictor.forward(h)
            M = mask_logits.shape[-1]
            mask_targets = np.concatenate([project_masks_on_boxes(target["masks"], boxes, matched, M)
                                           for target, boxes, matched in zip(targets, mask_proposals, pos_matched)])
            # Bilinear weights summing to 1 in float32 can overshoot 1 by an ulp; BCE wants [0, 1].
            mask_targets = np.clip(mask_targets, 0, 1)
            gt_labels = np.concatenate([target["labels"][matched]
                                        for target, matched in zip(targets, pos_matched)]).astype(np.int64)
            loss_mask, mask_loss_cache = maskrcnn_loss_forward(mask_logits, gt_labels, mask_targets)
            mask_caches = (mask_pool_cache, mask_head_cache, mask_predictor_cache, mask_loss_cache)
            record(mask_logits=mask_logits, mask_targets=mask_targets)
        record(class_logits=class_logits, box_regression=box_regression)
        losses = {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg, "loss_mask": loss_mask}
        cache = RoIHeadsCache(box_pool_cache, box_head_cache, predictor_cache, box_loss_cache, *mask_caches)
        return [], losses, cache

    def backward(self, dlosses: dict, cache: RoIHeadsCache, dfeatures: dict | None = None) -> dict:
        """The three RoI losses -> gradients at the features '0'..'3', added to ``dfeatures``.

        Args:
            dlosses (dict): d(total)/d(loss) for "loss_classifier", "loss_box_reg" and
                "loss_mask" (other keys are ignored); MaskRCNN.backward passes 1.0 for each.
            dfeatures (dict name -> float[N, C, H_l, W_l] or None): the gradient other
                stages already sent to the features ('pool' passes through untouched).
        Returns:
            dict name -> float[N, C, H_l, W_l]: dfeatures + box branch + mask branch.
        """
        dmask = self.backward_mask(dlosses, cache)   # {} without positive RoIs
        dbox = self.backward_box(dlosses, cache)
        # Box before mask: the order of the float32 sums is part of what training reproduces.
        return add_feature_grads(add_feature_grads(dfeatures or {}, dbox), dmask)

    def backward_mask(self, dlosses: dict, cache: RoIHeadsCache) -> dict:
        """loss_mask -> dict '0'..'3' float[N, C, H_l, W_l]; empty without positives (no gradient)."""
        if cache.mask_loss is None:
            return {}
        dmask_logits = maskrcnn_loss_backward(dlosses["loss_mask"], cache.mask_loss)   # [R_pos, K, M, M]
        dh = self.mask_predictor.backward(dmask_logits, cache.mask_predictor)          # [R_pos, C, P, P]
        dmask_features = self.mask_head.backward(dh, cache.mask_head)
        return self.mask_roi_pool.backward(dmask_features, cache.mask_pool)

    def backward_box(self, dlosses: dict, cache: RoIHeadsCache) -> dict:
        """loss_classifier and loss_box_reg -> dict '0'..'3' float[N, C, H_l, W_l]."""
        dclass_logits, dbox_regression = fastrcnn_loss_backward(
            dlosses["loss_classifier"], dlosses["loss_box_reg"], cache.box_loss)      # [R, K], [R, 4K]
        dx = self.box_predictor.backward(dclass_logits, dbox_regression, cache.box_predictor)
        dbox_features = self.box_head.backward(dx, cache.box_head)                     # [R, C, P, P]
        return self.box_roi_pool.backward(dbox_features, cache.box_pool)
