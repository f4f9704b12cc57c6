"""Whole-model benchmarks: shapes-preset training step and inference, ResNet-50 inference.

Rows (ratios against torchvision's identical network measured in the same run, when
torch is importable):

* shapes preset training iteration, batch 4 at 128 x 128 (median s/iter), with the peak
  RSS of a fresh process doing the same (VmHWM);
* the same iteration in fresh processes with glibc's default allocator thresholds and
  with ``minimrcnn.runtime.keep_freed_memory()`` (page faults per step, peak RSS);
* per-stage time of that iteration: backbone body, FPN, RPN, RoI box branch, mask
  branch, and the backward of each (the forward stages plus backward add up to the step);
* shapes preset inference per image;
* ResNet-50-FPN preset inference on one 800 x 1088 image (fewer repeats).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Row, median_ms  # noqa: E402


def shapes_batch(num, seed=0):
    from minimrcnn.data.shapes import ShapesDataset
    data = ShapesDataset(num, seed=seed)
    return [data[i] for i in range(num)]


def ours_train_step(model, images, targets):
    def step():
        losses, cache = model(images, targets)
        model.zero_grad()
        model.backward(cache)
    return step


class StageTimer:
    """Wraps bound methods of the model's stages in place and sums their wall time."""

    def __init__(self):
        self.totals = {}

    def wrap(self, obj, method, label):
        original = getattr(obj, method)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.totals[label] = self.totals.get(label, 0.0) + time.perf_counter() - t0
        setattr(obj, method, timed)


def stage_rows(model, images, targets, repeats):
    timer = StageTimer()
    heads = model.roi_heads
    timer.wrap(model.backbone.body, "forward", "backbone body fwd")
    timer.wrap(model.backbone.fpn, "forward", "FPN fwd")
    timer.wrap(model.rpn, "forward", "RPN fwd (head, proposals, targets, losses)")
    timer.wrap(heads, "forward", "RoI heads fwd (box + mask)")
    for module in (heads.mask_roi_pool, heads.mask_head, heads.mask_predictor):
        timer.wrap(module, "forward", "  of which mask branch fwd")
    timer.wrap(heads, "backward_mask", "mask branch bwd")
    timer.wrap(heads, "backward_box", "box branch bwd")
    timer.wrap(model.rpn, "backward", "RPN bwd")
    timer.wrap(model.backbone.fpn, "backward", "FPN bwd")
    timer.wrap(model.backbone.body, "backward", "backbone body bwd")
    step = ours_train_step(model, images, targets)
    step()
    timer.totals.clear()
    for _ in range(repeats):
        step()
    return [Row(f"  stage: {label}", "shapes train, batch 4", ms=1e3 * total / repeats)
            for label, total in timer.totals.items()]


def torchvision_shapes(torch, torchvision):
    """torchvision's MaskRCNN with exactly the shapes preset's architecture."""
    from torch import nn
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.models.resnet import BasicBlock

    class Body(nn.Module):
        def __init__(self):
            super().__init__()
            norm = lambda c: nn.GroupNorm(4, c)  # noqa: E731
            self.conv1, self.bn1 = nn.Conv2d(3, 16, 7, 2, 3, bias=False), norm(16)
            self.relu, self.maxpool = nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
            inplanes = 16
            for i, (w, s) in enumerate(zip((16, 32, 64, 128), (1, 2, 2, 2))):
                down = None if (s == 1 and inplanes == w) else nn.Sequential(
                    nn.Conv2d(inplanes, w, 1, s, bias=False), norm(w))
                setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(inplanes, w, s, down, norm_layer=norm),
                                                             BasicBlock(w, w, norm_layer=norm)))
                inplanes = w

    backbone = BackboneWithFPN(Body(), {f"layer{i + 1}": str(i) for i in range(4)}, [16, 32, 64, 128], 64)
    return MaskRCNN(backbone, num_classes=None, min_size=128, max_size=128,
                    rpn_anchor_generator=AnchorGenerator(((8,), (16,), (32,), (64,), (128,)), ((0.5, 1.0, 2.0),) * 5),
                    rpn_pre_nms_top_n_train=1000, rpn_pre_nms_top_n_test=500, rpn_post_nms_top_n_train=500,
                    rpn_post_nms_top_n_test=250, box_batch_size_per_image=128,
                    box_head=TwoMLPHead(64 * 49, 256), box_predictor=FastRCNNPredictor(256, 4),
                    mask_head=MaskRCNNHeads(64, (64,) * 4, 1), mask_predictor=MaskRCNNPredictor(64, 64, 4))


def torch_inputs(torch, samples):
    images = [torch.from_numpy(im.transpose(2, 0, 1) / np.float32(255)) for im, _ in samples]
    targets = [{"boxes": torch.from_numpy(t["boxes"]), "labels": torch.from_numpy(t["labels"]),
                "masks": torch.from_numpy(t["masks"])} for _, t in samples]
    return images, targets


def torch_train_step(torch, model, images, targets):
    def step():
        losses = model(images, targets)
        model.zero_grad()
        sum(losses.values()).backward()
    return step


def torch_peak_rss_mb() -> float | None:
    """Peak RSS (MB) of a fresh process doing 3 shapes training steps with torchvision
    (ours comes from step_in_fresh_process)."""
    try:
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--rss-torch"], capture_output=True,
                             text=True, timeout=600, check=True).stdout
        return float(json.loads(out.strip().splitlines()[-1])["peak_rss_mb"])
    except Exception:
        return None


def _torch_rss_worker() -> None:
    import torch
    import torchvision
    samples = shapes_batch(4)
    model = torchvision_shapes(torch, torchvision).train()
    step = torch_train_step(torch, model, *torch_inputs(torch, samples))
    for _ in range(3):
        step()
    print(json.dumps({"peak_rss_mb": _peak_rss_kb() / 1024}))


def step_in_fresh_process(keep_freed: bool, repeats: int) -> dict | None:
    """Median ms, minor page faults per step and peak RSS of the shapes training step in a
    fresh process, with glibc's defaults or with ``config.keep_freed_memory()`` (as the CLI)."""
    try:
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--step", "keep" if keep_freed else "default",
                              str(repeats)], capture_output=True, text=True, timeout=900, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])
    except Exception:
        return None


def _step_worker(mode: str, repeats: int) -> None:
    from minimrcnn import runtime
    from minimrcnn.models import maskrcnn_shapes
    applied = runtime.keep_freed_memory() if mode == "keep" else False
    samples = shapes_batch(4)
    model = maskrcnn_shapes().train()
    step = ours_train_step(model, [s[0] for s in samples], [s[1] for s in samples])
    step()
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    ms = median_ms(step, repeats=repeats, warmup=0)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0) / repeats
    print(json.dumps({"ms": ms, "faults_per_step": faults, "peak_rss_mb": _peak_rss_kb() / 1024, "applied": applied}))


def _peak_rss_kb() -> float:
    """VmHWM of this process. ru_maxrss would do, but Linux carries it over from the
    parent through fork + exec, so a child spawned by a big parent reports the parent's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # kilobytes on Linux


def run(ctx) -> list:
    from minimrcnn.models import maskrcnn_resnet50_fpn, maskrcnn_shapes
    rows = []
    repeats = 2 if ctx.quick else 8
    samples = shapes_batch(4)
    images, targets = [s[0] for s in samples], [s[1] for s in samples]

    # -- training iteration, batch 4 -------------------------------------------------
    model = maskrcnn_shapes().train()
    ms = median_ms(ours_train_step(model, images, targets), repeats=repeats, warmup=1)
    ref_ms, torch_model = None, None
    if ctx.torch is not None:
        torch_model = torchvision_shapes(ctx.torch, ctx.torchvision).train()
        t_images, t_targets = torch_inputs(ctx.torch, samples)
        ref_ms = median_ms(torch_train_step(ctx.torch, torch_model, t_images, t_targets), repeats=repeats, warmup=1)
    # fresh processes: glibc's defaults against keep_freed_memory() (what the minimrcnn
    # command sets), since the setting is process-wide and cannot be undone
    default, keep = step_in_fresh_process(False, repeats), step_in_fresh_process(True, repeats)
    rss = default["peak_rss_mb"] if default else None
    rss_torch = torch_peak_rss_mb() if ctx.torch is not None else None
    note = f"peak RSS {rss:.0f} MB" if rss else ""
    if rss_torch:
        note += f" (torchvision {rss_torch:.0f} MB)"
    rows.append(Row("shapes train iteration", "batch 4, 128x128", ms, ref_name="torchvision" if ref_ms else "",
                    ref_ms=ref_ms, note=note))
    # Numba's and OpenBLAS's pools both at 2 threads contend for 2 cores; one Numba thread
    # often wins (a step measured 3x faster on a busy machine).
    import numba
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    ms1 = median_ms(ours_train_step(model, images, targets), repeats=repeats, warmup=1)
    numba.set_num_threads(previous)
    rows.append(Row("shapes train iteration, 1 Numba thread", "batch 4, 128x128", ms1,
                    ref_name="torchvision" if ref_ms else "", ref_ms=ref_ms))
    if default and keep:
        for label, r, ref in (("glibc defaults", default, None), ("keep_freed_memory()", keep, default)):
            rows.append(Row(f"shapes train iteration, fresh process, {label}", "batch 4, 128x128", r["ms"],
                            ref_name="glibc defaults" if ref else "", ref_ms=ref["ms"] if ref else None,
                            note=f"{r['faults_per_step']:.0f} page faults/step, peak RSS {r['peak_rss_mb']:.0f} MB"))
    rows += stage_rows(maskrcnn_shapes().train(), images, targets, repeats=max(1, repeats // 2))

    # -- inference per image -----------------------------------------------------------
    model.eval()
    ms = median_ms(lambda: model(images), repeats=repeats, warmup=1) / len(images)
    ref_ms = None
    if torch_model is not None:
        torch_model.eval()
        with ctx.torch.no_grad():
            ref_ms = median_ms(lambda: torch_model(t_images), repeats=repeats, warmup=1) / len(images)
    rows.append(Row("shapes inference per image", "batch 4, 128x128", ms,
                    ref_name="torchvision" if ref_ms else "", ref_ms=ref_ms))

    # -- ResNet-50-FPN inference, one 800x1088 image --------------------------------------
    big = maskrcnn_resnet50_fpn(norm="frozen_bn").eval()
    image = np.random.default_rng(0).random((3, 800, 1088)).astype(np.float32)
    ms = median_ms(lambda: big([image]), repeats=1 if ctx.quick else 3, warmup=1)
    ref_ms = None
    if ctx.torch is not None:
        tv = ctx.torchvision.models.detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None).eval()
        with ctx.torch.no_grad():
            timg = ctx.torch.from_numpy(image)
            ref_ms = median_ms(lambda: tv([timg]), repeats=1 if ctx.quick else 3, warmup=1)
    rows.append(Row("resnet50-FPN inference", "1 image 800x1088", ms,
                    ref_name="torchvision" if ref_ms else "", ref_ms=ref_ms, note="random weights"))
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--rss-torch":
        _torch_rss_worker()
    elif len(sys.argv) == 4 and sys.argv[1] == "--step":
        _step_worker(sys.argv[2], int(sys.argv[3]))
