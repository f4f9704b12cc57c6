"""A trained shapes model's training step and inference, beside torchvision with the same weights.

A fresh model finds no objects, so its RoI heads sample few positives and its mask head
is light; the steps that fill a real run come from a model that has started to find
objects. These rows load the weights of a default ``minimrcnn train`` run into minimrcnn
and into torchvision's identical network, and time:

* a training step, batch 4 at 128 x 128 (forward, losses, backward, the same RoI sampling
  every call), with the preset's 128 sampled RoIs per image and with the training recipe's
  ``TrainConfig().box_batch_size_per_image``; the note gives the positive RoIs that reach
  the mask head (its batch R);
* inference on the same batch of 4, with the detections kept;
* each library's peak RSS over all of that (in the inference row's note);
* the per-stage time of our step and inference (forward stages plus backward add up to
  the step; timed separately, so the wrappers never touch the rows above).

Each library runs in **fresh processes, alternated** (ours, torchvision, ours, ...): a
process loads the weights, then times each case alone in its own block after its own
warm-up. A row gives the median over processes and the spread (lowest and highest
process median). Both processes run with ``keep_freed_memory()`` (as the ``minimrcnn``
command) and ``OMP_WAIT_POLICY=PASSIVE``.

    python benchmarks/run.py trained --weights lessons/assets/shapes_model.npz
    python benchmarks/bench_trained.py --worker ours --weights PATH     # one process's JSON

The weights file is the default training run (docs/benchmarks.md, "Training the tiny-shapes recipe"):

    minimrcnn train --out runs/shapes && cp runs/shapes/model.npz lessons/assets/shapes_model.npz
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (ROOT, Row, Stats, alternate_processes, median_ms, our_step, peak_rss_mb, python_argv,  # noqa: E402
                    shapes_batch, stage_rows, their_step, torch_inputs, torchvision_shapes)

DEFAULT_WEIGHTS = "lessons/assets/shapes_model.npz"
MAKE_WEIGHTS = "minimrcnn train --out runs/shapes && cp runs/shapes/model.npz lessons/assets/shapes_model.npz"
SHAPE = "batch 4, 128x128, trained"
PRESET_ROIS = 128      # the shapes preset's box_batch_size_per_image (torchvision's argument)


def roi_counts() -> list[int]:
    """Sampled RoIs per image to time: the preset's and the training recipe's."""
    from minimrcnn.train.config import TrainConfig
    return sorted({PRESET_ROIS, TrainConfig().box_batch_size_per_image}, reverse=True)


def load_ours(weights: str):
    from minimrcnn.models import maskrcnn_shapes
    from minimrcnn.models.weights import load_weights
    model = maskrcnn_shapes()
    load_weights(model, weights)
    return model


def load_theirs(weights: str, torch, torchvision):
    """torchvision's shapes network holding the weights in ``weights`` (via our state_dict's keys)."""
    state = load_ours(weights).state_dict()
    model = torchvision_shapes(torch, torchvision)
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=True)
    return model


def worker(library: str, weights: str, repeats: int, warmup: int) -> dict:
    """Time every case of this suite for one library, each in its own block; returns the JSON dict."""
    from minimrcnn import runtime
    runtime.keep_freed_memory()          # as the minimrcnn command; process-wide, so torch gets it too
    samples = shapes_batch(4)
    images, targets = [s[0] for s in samples], [s[1] for s in samples]
    result, positives = {}, []
    if library == "ours":
        model = load_ours(weights)
        original = model.roi_heads.mask_head.forward

        def counted(x, *args, **kwargs):
            positives.append(int(x.shape[0]))
            return original(x, *args, **kwargs)
        model.roi_heads.mask_head.forward = counted
        step = our_step(model.train(), images, targets)

        def set_rois(n):
            model.roi_heads.fg_bg_sampler.batch_size_per_image = n

        def infer():
            return [len(d["boxes"]) for d in model.eval()(images)]
    else:
        import torch
        import torchvision
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", 0)) or os.cpu_count() or 1)
        model = load_theirs(weights, torch, torchvision)
        model.roi_heads.mask_head.register_forward_hook(lambda m, inp, out: positives.append(int(inp[0].shape[0])))
        t_images, t_targets = torch_inputs(torch, samples)
        step = their_step(torch, model.train(), t_images, t_targets)

        def set_rois(n):
            model.roi_heads.fg_bg_sampler.batch_size_per_image = n

        def infer():
            with torch.no_grad():
                return [len(d["boxes"]) for d in model.eval()(t_images)]
    for rois in roi_counts():
        set_rois(rois)
        result[f"step_{rois}"] = median_ms(step, repeats, warmup)
        result[f"positives_{rois}"] = positives[-1]
    result["inference"] = median_ms(infer, repeats, warmup)
    result["detections"] = sum(infer())
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def run(ctx) -> list:
    # absolute: the worker processes run from the repository's root
    weights = os.path.abspath(ctx.weights) if ctx.weights else os.path.join(ROOT, DEFAULT_WEIGHTS)
    if not os.path.exists(weights):
        print(f"# suite 'trained': skipped, weights {weights!r} not found; make them with:\n#   {MAKE_WEIGHTS}")
        return []
    rounds, repeats, warmup = (1, 2, 1) if ctx.quick else (4, 6, 2)
    libraries = ["ours"] + (["torchvision"] if ctx.torch is not None else [])
    runs = alternate_processes({lib: python_argv("bench_trained.py", "--worker", lib, "--weights", weights,
                                                 "--repeats", repeats, "--warmup", warmup) for lib in libraries},
                               rounds)
    ours, theirs = runs["ours"], runs.get("torchvision")

    def stats(results, key):
        return Stats.of([r[key] for r in results]) if results else None

    def note(what, key):
        text = f"{ours[-1][key]} {what}" + (f" (torchvision {theirs[-1][key]})" if theirs else "")
        return text + f"; {rounds} processes each, alternated"

    rows = []
    recipe = roi_counts()[-1]
    for rois in roi_counts():
        label = f"trained shapes train step, {rois} RoIs/image" + (" (the recipe's)" if rois == recipe else "")
        rows.append(Row(label, SHAPE, stats(ours, f"step_{rois}"), ref_name="torchvision" if theirs else "",
                        ref=stats(theirs, f"step_{rois}"), note=note("positive RoIs in the mask head", f"positives_{rois}")))
    rows.append(Row("trained shapes inference", SHAPE, stats(ours, "inference"), ref_name="torchvision" if theirs else "",
                    ref=stats(theirs, "inference"), note=note("detections kept", "detections")))
    rss = f"peak RSS of a process timing the rows above: {max(r['peak_rss_mb'] for r in ours):.0f} MB"
    if theirs:
        rss += f" (torchvision {max(r['peak_rss_mb'] for r in theirs):.0f} MB)"
    rows[-1].note += "; " + rss

    # per-stage time of our step (the recipe's RoI count) and inference, in this process
    samples = shapes_batch(4)
    images, targets = [s[0] for s in samples], [s[1] for s in samples]
    model = load_ours(weights)
    model.roi_heads.fg_bg_sampler.batch_size_per_image = recipe
    stage_repeats = 1 if ctx.quick else 3
    rows += stage_rows(model.train(), our_step(model, images, targets), True, stage_repeats, SHAPE,
                       f"train, {recipe} RoIs/image")
    rows += stage_rows(model.eval(), lambda: model(images), False, stage_repeats, SHAPE, "inference")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", choices=("ours", "torchvision"), required=True,
                        help="time one library in this process and print one JSON line")
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS, help="model.npz of a trained shapes model")
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(worker(args.worker, args.weights, args.repeats, args.warmup)))
