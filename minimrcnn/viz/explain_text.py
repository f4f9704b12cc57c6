"""The explain page's pipeline strip: one entry per stage, with its real shapes and a short text.

Each stage's ``name`` is the page's ``data-stage`` hook (docs/explain.md); the shapes
are read off the recorded arrays of the pass, the text says what the stage does and
which lesson opens it.
"""

from __future__ import annotations


def _shape(dtype: str, dims) -> str:
    return f"{dtype}[{', '.join(str(int(d)) for d in dims)}]"


def stage_list(model, trace, num_before_nms: int, num_candidates: int, num_detections: int) -> list:
    """[{name, title, shapes, text, lesson}] in pipeline order, shapes from ``trace`` (one image)."""
    images = trace["images"]
    h, w = trace["image_sizes"][0]
    feats = trace["features"]
    names = list(feats)
    inner = [block[0].weight.shape[1] for block in model.backbone.fpn.inner_blocks]
    c_shapes = ", ".join(f"C{i + 2} {_shape('', [inner[i], *feats[n].shape[-2:]])}" for i, n in enumerate(names[:len(inner)]))
    p_shapes = ", ".join(f"P{i + 2} {_shape('', feats[n].shape[1:])}" for i, n in enumerate(names))
    T = trace["anchors"].shape[0]
    R = len(trace["rpn_proposals"][0])
    K = trace["class_probs"].shape[1]
    M = trace["mask_logits"].shape[-1]
    C = feats[names[0]].shape[1]
    bp = model.roi_heads.box_roi_pool.output_size[0]
    mp = model.roi_heads.mask_roi_pool.output_size[0]
    D = num_detections
    return [
        {"name": "image", "title": "Image", "shapes": f"resized to {h} x {w}",
         "text": "The input image, resized so its short side is min_size (long side at most max_size). "
                 "Every box on this page is in these resized pixels.",
         "lesson": "lessons/00_tour.ipynb"},
        {"name": "normalize", "title": "Normalised batch", "shapes": _shape("float32", images.shape),
         "text": "Each channel minus the ImageNet mean, over the ImageNet std, zero-padded at the bottom/right "
                 "to a multiple of 32 so every stride divides it.",
         "lesson": "lessons/00_tour.ipynb"},
        {"name": "backbone", "title": "Backbone C2..C5", "shapes": c_shapes,
         "text": "The ResNet body: four stages, each halving the resolution (strides 4, 8, 16, 32). "
                 "Its outputs are not kept by the pass; their shapes come from the FPN's inputs.",
         "lesson": "lessons/06_fpn_levels_and_mask_head.ipynb"},
        {"name": "fpn", "title": "FPN P2..P6", "shapes": p_shapes,
         "text": "The feature pyramid: a 1x1 conv per stage, the coarser map upsampled and added, then a 3x3 conv; "
                 "P6 is a max-pool of P5. Pick a channel to see what one filter responds to.",
         "lesson": "lessons/06_fpn_levels_and_mask_head.ipynb"},
        {"name": "rpn", "title": "RPN: anchors, objectness, deltas",
         "shapes": f"anchors {_shape('float32', [T, 4])}, objectness {_shape('float32', [1, T])}, "
                   f"deltas {_shape('float32', [1, T, 4])}",
         "text": "At every cell of every level, A anchors (one size per level, three aspect ratios). A shared "
                 "3x3 conv head scores each anchor (objectness logit) and predicts four deltas that move it. "
                 "Click a cell of the heat map to see its anchors.",
         "lesson": "lessons/03_anchors_and_box_coding.ipynb"},
        {"name": "proposals", "title": "Proposals before / after NMS",
         "shapes": f"{_shape('float32', [num_before_nms, 4])} -> {_shape('float32', [R, 4])}",
         "text": "Per level the top pre_nms_top_n anchors by logit are decoded, clipped and de-duplicated by NMS "
                 "at IoU 0.7 (separately per level); the best post_nms_top_n survive as proposals.",
         "lesson": "lessons/04_nms.ipynb"},
        {"name": "levels", "title": "Level assignment", "shapes": f"int64[{R}] levels",
         "text": "Each box is pooled from one pyramid level, k = floor(k0 + log2(sqrt(wh) / 224)), clamped to 2..5: "
                 "big boxes read coarse maps, small boxes fine ones.",
         "lesson": "lessons/06_fpn_levels_and_mask_head.ipynb"},
        {"name": "roi_align", "title": "RoIAlign", "shapes": _shape("float32", [R, C, bp, bp]),
         "text": f"Each proposal's box is cut into {bp} x {bp} bins on its level; every bin averages "
                 "bilinear samples of the feature map, with no rounding. Hover a bin to see its samples.",
         "lesson": "lessons/02_bilinear_sampling.ipynb"},
        {"name": "box_head", "title": "Box head", "shapes": f"class_probs {_shape('float32', [R, K])}, "
                                                           f"refined boxes {_shape('float32', [R, K, 4])}",
         "text": "Two fully connected layers, then a softmax over the K classes and one box refinement per class.",
         "lesson": "lessons/05_losses.ipynb"},
        {"name": "nms", "title": "Per-class NMS",
         "shapes": f"{num_candidates} candidates -> {_shape('float32', [D, 4])}",
         "text": "Every (proposal, class) pair scoring above the threshold is a candidate; NMS at IoU 0.5 runs "
                 "per class and the best detections_per_img remain. The sliders recompute this in the page.",
         "lesson": "lessons/04_nms.ipynb"},
        {"name": "mask_head", "title": "Mask head",
         "shapes": f"{_shape('float32', [D, C, mp, mp])} -> logits {_shape('float32', [D, K, M, M])}",
         "text": f"Each detection box is pooled again, {mp} x {mp}, from its own level; four 3x3 convs and a "
                 f"stride-2 transposed conv give {M} x {M} logits per class.",
         "lesson": "lessons/06_fpn_levels_and_mask_head.ipynb"},
        {"name": "sigmoid", "title": "Sigmoid", "shapes": _shape("float32", [D, M, M]),
         "text": "Only the predicted class's channel is kept and squashed to a probability per mask cell.",
         "lesson": "lessons/06_fpn_levels_and_mask_head.ipynb"},
        {"name": "paste", "title": "Pasted masks", "shapes": _shape("float32", [D, 1, *trace["detections"][0]["masks"].shape[-2:]]),
         "text": f"The {M} x {M} probabilities are resized into the box (padded by one cell) in the original "
                 "image; 0.5 is the usual cut.",
         "lesson": "lessons/09_evaluation.ipynb"},
    ]


__all__ = ["stage_list"]
