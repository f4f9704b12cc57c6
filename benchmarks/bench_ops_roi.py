"""Benchmarks for the RoI ops: RoIAlign (fwd, fwd+bwd), RoIPool, MultiScaleRoIAlign and
mask pasting, against our readable twins and torchvision CPU measured in the same run.

Setting of the issue: features [2,64,32,32] at stride 4 (a 128x128 image), 512 random
boxes, sampling_ratio 2, aligned True; pasting 100 28x28 masks into an 800x1216 image.
Ours and torchvision each in their own blocks, alternated (``common.versus``); the
twins (slow by design) once, in one block.
"""

from __future__ import annotations

import numpy as np

from common import Row, median_ms, one, versus
from minimrcnn.runtime import reference_kernels
from minimrcnn.ops.masks import paste_masks_in_image
from minimrcnn.ops.poolers import MultiScaleRoIAlign
from minimrcnn.ops.roi_align import roi_align_backward, roi_align_forward
from minimrcnn.ops.roi_pool import roi_pool_backward, roi_pool_forward

N, C, H, W, IMAGE, NUM_BOXES = 2, 64, 32, 32, 128, 512


def _boxes(rng, n, height, width, min_side=4):
    xy = rng.uniform(0, [width * 0.9, height * 0.9], (n, 2))
    wh = rng.uniform(min_side, max(height, width) / 2, (n, 2))
    return np.concatenate([xy, np.minimum(xy + wh, [width, height])], axis=1).astype(np.float32)


def _rois(rng):
    return np.concatenate([rng.integers(0, N, (NUM_BOXES, 1)).astype(np.float32),
                           _boxes(rng, NUM_BOXES, IMAGE, IMAGE)], axis=1)


def _pair_rows(ctx, name, shape, forward, backward, torch_op, x, rois, repeats, rounds, twin):
    """Rows for fwd and fwd+bwd of one op: vs our twin (optional) and vs torchvision."""
    out, cache = forward()
    dout = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    cases = {"fwd": forward, "fwd+bwd": lambda: backward(dout, forward()[1])}
    rows = []
    for label, fn in cases.items():
        ours = one(median_ms(fn, repeats=repeats))
        op = f"{name} {label}"
        if twin:
            with reference_kernels():
                rows.append(Row(op, shape, ours, ref_name="NumPy twin", ref=one(median_ms(fn, repeats=1, warmup=0))))
        if ctx.torch is not None:
            torch = ctx.torch
            xt = torch.from_numpy(x).requires_grad_(label != "fwd")
            rt, dt = torch.from_numpy(rois), torch.from_numpy(dout)

            def torch_fn():
                if label == "fwd":
                    with torch.no_grad():
                        return torch_op(xt, rt)
                return torch.autograd.grad(torch_op(xt, rt), (xt,), dt)
            ours_block, theirs = versus(fn, torch_fn, rounds, repeats)
            rows.append(Row(op, shape, ours_block, ref_name="torchvision CPU", ref=theirs))
        if not rows or rows[-1].op != op:
            rows.append(Row(op, shape, ours))
    return rows


def _roi_align_rows(ctx, x, rois, P, repeats, rounds):
    shape = f"[{N},{C},{H},{W}] R={NUM_BOXES} {P}x{P}"
    tv = ctx.torchvision
    return _pair_rows(
        ctx, "roi_align", shape,
        lambda: roi_align_forward(x, rois, P, 0.25, 2, True), roi_align_backward,
        lambda xt, rt: tv.ops.roi_align(xt, rt, P, 0.25, 2, True), x, rois, repeats, rounds,
        twin=(P == 7 or not ctx.quick))


def _roi_pool_rows(ctx, x, rois, repeats, rounds):
    shape = f"[{N},{C},{H},{W}] R={NUM_BOXES} 7x7"
    tv = ctx.torchvision
    return _pair_rows(ctx, "roi_pool", shape, lambda: roi_pool_forward(x, rois, 7, 0.25),
                      roi_pool_backward, lambda xt, rt: tv.ops.roi_pool(xt, rt, 7, 0.25),
                      x, rois, repeats, rounds, twin=not ctx.quick)


def _multiscale_rows(ctx, rng, repeats, rounds):
    sizes = [(800, 1216)]
    feats = {name: rng.standard_normal((1, C, 200 >> i, 304 >> i)).astype(np.float32)
             for i, name in enumerate(["0", "1", "2", "3"])}
    boxes = [_boxes(rng, NUM_BOXES, 800, 1216, min_side=16)]
    pooler = MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2)
    shape = f"4 levels C={C} 800x1216 R={NUM_BOXES} 7x7"
    ours_fn = lambda: pooler.forward(feats, boxes, sizes)  # noqa: E731
    if ctx.torch is None:
        return [Row("MultiScaleRoIAlign fwd", shape, one(median_ms(ours_fn, repeats=repeats)))]
    torch = ctx.torch
    theirs = ctx.torchvision.ops.MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2)
    tfeats = {k: torch.from_numpy(v) for k, v in feats.items()}
    tboxes = [torch.from_numpy(b) for b in boxes]
    with torch.no_grad():
        ours, ref = versus(ours_fn, lambda: theirs(tfeats, tboxes, sizes), rounds, repeats)
    return [Row("MultiScaleRoIAlign fwd", shape, ours, ref_name="torchvision CPU", ref=ref)]


def _paste_rows(ctx, rng, repeats, rounds):
    D = 100
    masks = rng.uniform(size=(D, 1, 28, 28)).astype(np.float32)
    boxes = _boxes(rng, D, 800, 1216, min_side=20)
    shape = f"D={D} 28x28 -> 800x1216"
    fn = lambda: paste_masks_in_image(masks, boxes, (800, 1216))  # noqa: E731
    ours = one(median_ms(fn, repeats=repeats))
    rows = []
    with reference_kernels():
        rows.append(Row("paste_masks_in_image", shape, ours, ref_name="NumPy twin",
                        ref=one(median_ms(fn, repeats=max(1, repeats // 3), warmup=1))))
    if ctx.torch is not None:
        from torchvision.models.detection.roi_heads import paste_masks_in_image as tv_paste
        mt, bt = ctx.torch.from_numpy(masks), ctx.torch.from_numpy(boxes)
        ours, ref = versus(fn, lambda: tv_paste(mt, bt, (800, 1216)), rounds, repeats)
        rows.append(Row("paste_masks_in_image", shape, ours, ref_name="torchvision CPU", ref=ref))
    return rows


def run(ctx) -> list[Row]:
    rng = np.random.default_rng(0)
    repeats, rounds = (3, 1) if ctx.quick else (10, 3)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    rois = _rois(rng)
    rows = []
    for P in (7, 14):
        rows += _roi_align_rows(ctx, x, rois, P, repeats, rounds)
    rows += _roi_pool_rows(ctx, x, rois, repeats, rounds)
    rows += _multiscale_rows(ctx, rng, repeats, rounds)
    rows += _paste_rows(ctx, rng, repeats, rounds)
    return rows
