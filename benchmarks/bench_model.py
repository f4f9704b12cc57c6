"""Whole-model benchmarks of a freshly initialised model: shapes-preset training step and
inference, ResNet-50-FPN inference.

A fresh model finds no objects, so its RoI heads sample few positives and its mask head
is light; ``bench_trained.py`` times the steps that fill a real run. Rows (against
torchvision's identical network, each timed in its own blocks, alternated, when torch is
importable):

* shapes preset training step, batch 4 at 128 x 128, with the peak RSS of fresh processes
  doing 3 such steps (ours and torchvision's);
* the same step with one Numba thread (Numba's and OpenBLAS's pools then do not meet);
* the same step in fresh processes with glibc's default allocator thresholds and with
  ``minimrcnn.runtime.keep_freed_memory()`` (page faults per step, peak RSS);
* shapes preset inference per image;
* ResNet-50-FPN preset inference on one 800 x 1088 image (random weights, fewer repeats).

    python benchmarks/run.py model
"""

from __future__ import annotations

import json
import os
import resource
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (Row, alternate_processes, median_ms, one, our_step, peak_rss_mb, python_argv,  # noqa: E402
                    shapes_batch, their_step, torch_inputs, torchvision_shapes, versus)

SHAPE = "batch 4, 128x128"


def _rss_worker(library: str) -> None:
    """Peak RSS of this fresh process after 3 shapes training steps of a fresh model."""
    samples = shapes_batch(4)
    if library == "torchvision":
        import torch
        import torchvision
        model = torchvision_shapes(torch, torchvision).train()
        step = their_step(torch, model, *torch_inputs(torch, samples))
    else:
        from minimrcnn.models import maskrcnn_shapes
        model = maskrcnn_shapes().train()
        step = our_step(model, [s[0] for s in samples], [s[1] for s in samples])
    for _ in range(3):
        step()
    print(json.dumps({"peak_rss_mb": peak_rss_mb()}))


def _allocator_worker(mode: str, repeats: int) -> None:
    """Median ms, minor page faults per step and peak RSS of the shapes training step in this
    fresh process, with glibc's defaults or with ``keep_freed_memory()`` (as the CLI)."""
    from minimrcnn import runtime
    from minimrcnn.models import maskrcnn_shapes
    applied = runtime.keep_freed_memory() if mode == "keep" else False
    samples = shapes_batch(4)
    step = our_step(maskrcnn_shapes().train(), [s[0] for s in samples], [s[1] for s in samples])
    step()
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    ms = median_ms(step, repeats=repeats, warmup=0)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0) / repeats
    print(json.dumps({"ms": ms, "faults_per_step": faults, "peak_rss_mb": peak_rss_mb(), "applied": applied}))


def run(ctx) -> list:
    from minimrcnn.models import maskrcnn_resnet50_fpn, maskrcnn_shapes
    rows = []
    repeats, rounds = (2, 1) if ctx.quick else (8, 3)
    samples = shapes_batch(4)
    images, targets = [s[0] for s in samples], [s[1] for s in samples]

    # -- training step, batch 4 ----------------------------------------------------------
    model = maskrcnn_shapes().train()
    step = our_step(model, images, targets)
    rss_ours = alternate_processes({"ours": python_argv("bench_model.py", "--rss", "ours")}, 1)["ours"][0]
    note = f"peak RSS of 3 steps {rss_ours['peak_rss_mb']:.0f} MB"
    torch_model, ref, t_images = None, None, None
    if ctx.torch is not None:
        torch_model = torchvision_shapes(ctx.torch, ctx.torchvision).train()
        t_images, t_targets = torch_inputs(ctx.torch, samples)
        ours, ref = versus(step, their_step(ctx.torch, torch_model, t_images, t_targets), rounds, repeats, warmup=1)
        rss = alternate_processes({"tv": python_argv("bench_model.py", "--rss", "torchvision")}, 1)["tv"][0]
        note += f" (torchvision {rss['peak_rss_mb']:.0f} MB)"
    else:
        ours = one(median_ms(step, repeats, warmup=1))
    rows.append(Row("shapes train step, fresh model", SHAPE, ours, ref_name="torchvision" if ref else "", ref=ref,
                    note=note))
    import numba
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    rows.append(Row("shapes train step, fresh model, 1 Numba thread", SHAPE, one(median_ms(step, repeats, warmup=1))))
    numba.set_num_threads(previous)
    # glibc's defaults against keep_freed_memory() (what the minimrcnn command sets): the
    # setting is process-wide and cannot be undone, hence fresh processes
    fresh = alternate_processes({mode: python_argv("bench_model.py", "--allocator", mode, repeats)
                                 for mode in ("default", "keep")}, 1)
    default, keep = fresh["default"][0], fresh["keep"][0]
    for label, r, base in (("glibc defaults", default, None), ("keep_freed_memory()", keep, default)):
        rows.append(Row(f"shapes train step, fresh model, fresh process, {label}", SHAPE, one(r["ms"]),
                        ref_name="glibc defaults" if base else "", ref=one(base["ms"]) if base else None,
                        note=f"{r['faults_per_step']:.0f} page faults/step, peak RSS {r['peak_rss_mb']:.0f} MB"))

    # -- inference, per image --------------------------------------------------------------
    model.eval()
    infer = lambda: model(images)  # noqa: E731
    if torch_model is not None:
        torch_model.eval()

        def their_infer():
            with ctx.torch.no_grad():
                torch_model(t_images)
        ours, ref = versus(infer, their_infer, rounds, repeats, warmup=1)
    else:
        ours, ref = one(median_ms(infer, repeats, warmup=1)), None
    rows.append(Row("shapes inference per image, fresh model", SHAPE, ours.scaled(1 / len(images)),
                    ref_name="torchvision" if ref else "", ref=ref.scaled(1 / len(images)) if ref else None))

    # -- ResNet-50-FPN inference, one 800x1088 image ------------------------------------------
    big = maskrcnn_resnet50_fpn(norm="frozen_bn").eval()
    image = np.random.default_rng(0).random((3, 800, 1088)).astype(np.float32)
    big_repeats = 1 if ctx.quick else 3
    infer = lambda: big([image])  # noqa: E731
    if ctx.torch is not None:
        tv = ctx.torchvision.models.detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None).eval()
        timg = ctx.torch.from_numpy(image)

        def their_infer():
            with ctx.torch.no_grad():
                tv([timg])
        ours, ref = versus(infer, their_infer, 1, big_repeats, warmup=1)
    else:
        ours, ref = one(median_ms(infer, big_repeats, warmup=1)), None
    rows.append(Row("resnet50-FPN inference", "1 image 800x1088", ours,
                    ref_name="torchvision" if ref else "", ref=ref, note="random weights"))
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--rss":
        _rss_worker(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "--allocator":
        _allocator_worker(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(__doc__)
