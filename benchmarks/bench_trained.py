"""A trained shapes model's training step and inference, beside torchvision with the same weights.

A fresh model finds no objects, so its RoI heads sample few positives and its mask
head is light; the steps that fill a real run come from a model that has started to
find objects. These rows load the weights of a default ``minimrcnn train`` run (2200
iterations, seed 0) into both minimrcnn and torchvision's identical network (when
torch is importable) and time, in the same process and interleaved round by round:

* a training step, batch 4 at 128 x 128 (forward, losses, backward), and the number of
  positive RoIs that reach the mask head (the mask head's batch R); with the preset's 128
  sampled RoIs per image, and again with the training recipe's ``TrainConfig().box_batch_size_per_image``;
* the per-stage time of that step (forward stages plus backward add up to the step);
* inference on the same batch of 4 and its per-stage time, with the detections kept.

    python benchmarks/run.py trained --weights lessons/assets/shapes_model.npz
    python benchmarks/bench_trained.py --weights PATH      # this suite alone
    python benchmarks/bench_trained.py --weights PATH --peak-rss   # VmHWM of 3 steps + inference

The weights file is made by (about 10 minutes on 2 cores):

    minimrcnn train --out runs/shapes && cp runs/shapes/model.npz lessons/assets/shapes_model.npz
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_model import StageTimer, shapes_batch, torch_inputs, torchvision_shapes  # noqa: E402
from common import Row  # noqa: E402

DEFAULT_WEIGHTS = "lessons/assets/shapes_model.npz"
MAKE_WEIGHTS = "minimrcnn train --out runs/shapes && cp runs/shapes/model.npz lessons/assets/shapes_model.npz"
SHAPE = "batch 4, 128x128, trained"


def interleaved_ms(fns: dict, rounds: int, warmup: int = 1) -> dict:
    """Median ms of each function, called in turn round after round, so that a busy
    spell on a shared machine slows every contender alike. Returns name -> (median, min, max)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: (float(np.median(t)), float(np.min(t)), float(np.max(t))) for name, t in times.items()}


def load_models(weights: str, torch, torchvision):
    """(ours, theirs or None), both holding the weights in ``weights``."""
    from minimrcnn.models import maskrcnn_shapes
    from minimrcnn.models.weights import load_weights
    ours = maskrcnn_shapes()
    load_weights(ours, weights)
    theirs = None
    if torch is not None:
        theirs = torchvision_shapes(torch, torchvision)
        theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()}, strict=True)
    return ours, theirs


def _count_mask_rois(module, attribute: str, counts: list):
    """Wrap ``module.attribute`` (a forward) to append the batch size it receives to counts."""
    original = getattr(module, attribute)

    def counted(x, *args, **kwargs):
        counts.append(int(x.shape[0]))
        return original(x, *args, **kwargs)
    setattr(module, attribute, counted)
    return original


def our_step(model, images, targets):
    def step():
        # the same sampling randomness every step, so every round times the same work
        losses, cache = model(images, targets, rng=np.random.default_rng(0))
        model.zero_grad()
        model.backward(cache)
    return step


def their_step(torch, model, images, targets):
    def step():
        torch.manual_seed(0)
        losses = model(images, targets)
        model.zero_grad()
        sum(losses.values()).backward()
    return step


def _spread(stats) -> str:
    median, low, high = stats
    return f"min {low:.0f} / max {high:.0f} ms"


def _stage_timer(model, training: bool) -> StageTimer:
    timer = StageTimer()
    heads = model.roi_heads
    timer.wrap(model.backbone.body, "forward", "backbone body fwd")
    timer.wrap(model.backbone.fpn, "forward", "FPN fwd")
    timer.wrap(model.rpn, "forward", "RPN fwd" + (" (head, proposals, targets, losses)" if training else ""))
    timer.wrap(heads, "forward", "RoI heads fwd (box + mask)")
    for module in (heads.mask_roi_pool, heads.mask_head, heads.mask_predictor):
        timer.wrap(module, "forward", "  of which mask branch fwd")
    timer.wrap(heads.mask_head, "forward", "    of which mask head (4 convs 3x3)")
    if training:
        timer.wrap(heads, "backward_mask", "mask branch bwd")
        timer.wrap(heads.mask_head, "backward", "  of which mask head bwd (4 convs 3x3)")
        timer.wrap(heads, "backward_box", "box branch bwd")
        timer.wrap(model.rpn, "backward", "RPN bwd")
        timer.wrap(model.backbone.fpn, "backward", "FPN bwd")
        timer.wrap(model.backbone.body, "backward", "backbone body bwd")
    else:
        timer.wrap(model.transform, "postprocess", "postprocess (resize boxes, paste masks)")
    return timer


def stage_rows(model, fn, training: bool, repeats: int) -> list:
    """Per-stage time of ``fn`` (a step or an inference of ``model``), averaged over repeats.

    The wrappers live on a separate pass so they never touch the timed rows above."""
    timer = _stage_timer(model, training)
    fn()
    timer.totals.clear()
    for _ in range(repeats):
        fn()
    tag = "train" if training else "inference"
    return [Row(f"  stage ({tag}): {label}", SHAPE, ms=1e3 * total / repeats) for label, total in timer.totals.items()]


def step_row(label: str, stats: dict, our_rois: list, their_rois: list, rounds: int) -> Row:
    """A training-step row: our median beside torchvision's (if timed), with the last
    step's positive RoI counts and both spreads in the note."""
    ref = stats.get("torchvision")
    note = f"{our_rois[-1]} positive RoIs in the mask head" + (f" (torchvision {their_rois[-1]})" if their_rois else "")
    return Row(label, SHAPE, stats["ours"][0], ref_name="torchvision" if ref else "", ref_ms=ref[0] if ref else None,
               note=f"{note}; {rounds} rounds, ours {_spread(stats['ours'])}"
                    + (f", torchvision {_spread(ref)}" if ref else ""))


def run(ctx) -> list:
    weights = getattr(ctx, "weights", None) or DEFAULT_WEIGHTS
    if not os.path.exists(weights):
        print(f"# suite 'trained': skipped, weights {weights!r} not found; make them with:\n#   {MAKE_WEIGHTS}")
        return []
    rounds = 2 if ctx.quick else 7
    samples = shapes_batch(4)
    images, targets = [s[0] for s in samples], [s[1] for s in samples]
    ours, theirs = load_models(weights, ctx.torch, ctx.torchvision)
    rows = []

    # -- training step -----------------------------------------------------------------
    ours.train()
    our_rois, their_rois = [], []
    _count_mask_rois(ours.roi_heads.mask_head, "forward", our_rois)
    fns = {"ours": our_step(ours, images, targets)}
    if theirs is not None:
        theirs.train()
        t_images, t_targets = torch_inputs(ctx.torch, samples)
        theirs.roi_heads.mask_head.register_forward_hook(lambda m, inp, out: their_rois.append(int(inp[0].shape[0])))
        fns["torchvision"] = their_step(ctx.torch, theirs, t_images, t_targets)
    rows.append(step_row("trained shapes train step", interleaved_ms(fns, rounds), our_rois, their_rois, rounds))
    rows += stage_rows(ours, fns["ours"], True, repeats=max(1, rounds // 2))

    # -- the same step with the training recipe's RoI sampling (TrainConfig) -------------------
    from minimrcnn.train.config import TrainConfig
    recipe_rois = TrainConfig().box_batch_size_per_image
    if recipe_rois != ours.roi_heads.fg_bg_sampler.batch_size_per_image:
        for model in (ours, theirs):
            if model is not None:
                model.roi_heads.fg_bg_sampler.batch_size_per_image = recipe_rois
        rows.append(step_row(f"trained shapes train step, {recipe_rois} RoIs/image (the recipe's)",
                             interleaved_ms(fns, rounds), our_rois, their_rois, rounds))

    # -- inference -----------------------------------------------------------------------
    ours.eval()
    detections = []

    def our_inference():
        detections[:] = [len(d["boxes"]) for d in ours(images)]
    fns = {"ours": our_inference}
    if theirs is not None:
        theirs.eval()
        their_detections = []

        def their_inference():
            with ctx.torch.no_grad():
                their_detections[:] = [len(d["boxes"]) for d in theirs(t_images)]
        fns["torchvision"] = their_inference
    stats = interleaved_ms(fns, rounds)
    ref = stats.get("torchvision")
    note = f"{sum(detections)} detections kept" + (f" (torchvision {sum(their_detections)})" if ref else "")
    rows.append(Row("trained shapes inference", SHAPE, stats["ours"][0], ref_name="torchvision" if ref else "",
                    ref_ms=ref[0] if ref else None,
                    note=f"{note}; {rounds} rounds, ours {_spread(stats['ours'])}"
                         + (f", torchvision {_spread(ref)}" if ref else "")))
    rows += stage_rows(ours, our_inference, False, repeats=max(1, rounds // 2))
    return rows


def peak_rss_worker(weights: str) -> None:
    """Peak RSS of this (fresh) process after 3 trained-weights steps and one inference,
    with keep_freed_memory() as the minimrcnn command sets it."""
    from bench_model import _peak_rss_kb
    from minimrcnn import runtime
    runtime.keep_freed_memory()
    samples = shapes_batch(4)
    images, targets = [s[0] for s in samples], [s[1] for s in samples]
    ours, _ = load_models(weights, None, None)
    step = our_step(ours.train(), images, targets)
    for _ in range(3):
        step()
    ours.eval()(images)
    print(f"peak RSS {_peak_rss_kb() / 1024:.0f} MB (3 trained-weights training steps + 1 inference, batch 4)")


if __name__ == "__main__":
    import argparse
    import run as harness
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS, help="model.npz of a trained shapes model")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--peak-rss", action="store_true", help="only print this process's peak RSS")
    args = parser.parse_args()
    if args.peak_rss:
        sys.exit(peak_rss_worker(args.weights))
    argv = ["trained", "--weights", args.weights] + [f for f, on in (("--quick", args.quick),
                                                        ("--markdown", args.markdown), ("--no-torch", args.no_torch)) if on]
    sys.exit(harness.main(argv))
