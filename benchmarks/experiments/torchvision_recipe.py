"""torchvision trained with minimrcnn's recipe: is our accuracy per iteration torchvision's?

    PYTHONPATH=. TORCH_VENV/bin/python benchmarks/experiments/torchvision_recipe.py --out runs/recipes/torchvision_2200
    python benchmarks/train_recipe.py --table-only --out runs/recipes/torchvision_2200

(TORCH_VENV: a virtual environment with torch and torchvision, never the project's; the
second command, with either Python, prints the run's table as for any recipe run.)

The network is ``minimrcnn.interop.torchvision_model("shapes")``, which holds the same
modules and key names as ``maskrcnn_shapes()``, and it starts from minimrcnn's own initial
weights for the seed (``build_model(TrainConfig())``, copied in), so the two libraries
start from the same point. Everything of ``TrainConfig()`` (or the flags given) is kept:
the images of iteration t (``batch_indices`` and ``load_batch`` with the Trainer's seeds),
the flips, SGD with momentum and weight decay on every trainable parameter, the warmup and
the learning-rate drops (minimrcnn's ``WarmupMultiStepLR.get_lr``), the sampled RoIs per
image. What differs is torchvision itself: its RoI and anchor sampling draw from torch's
generator (seeded once with the seed), and its float32 sums round in their own order.

Each evaluation copies torchvision's weights into minimrcnn's model and scores them with
minimrcnn's evaluation on the same held-out images as a ``minimrcnn train`` run (the two
networks predict the same detections from the same weights,
tests/models/test_torch_parity_model.py). The run folder gets the ``metrics.jsonl`` and
``summary.json`` of a ``minimrcnn train`` run (the fields ``train_recipe.py`` reads), so
its table prints like any recipe's. "train_seconds" counts torchvision's steps only.
The evaluations are the one place where minimrcnn runs between torch's steps, a few times
a run, never call by call; the logged s/iter of the window right after an evaluation
matches the windows before it (torchvision_2200's metrics.jsonl), so they do not slow
torch's steps as per-call interleaving does (docs/benchmarks.md, "Interleaving, measured").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import torch_inputs, try_import_torch  # noqa: E402  (sets OMP_WAIT_POLICY before torch)

import numpy as np  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="run folder (created; must not hold a run)")
    parser.add_argument("--iters", type=int, default=None, help="iterations (default: TrainConfig's)")
    parser.add_argument("--evals", type=int, default=4, help="evaluations on 50 images along the way")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    torch, torchvision = try_import_torch()
    if torch is None:
        raise SystemExit("torchvision_recipe.py needs torch and torchvision: run it with the Python of a virtual "
                         "environment that has them (never the project's), PYTHONPATH set to the repository")

    from minimrcnn.data.loader import batch_indices, load_batch
    from minimrcnn.data.datasets import Subset
    from minimrcnn.interop import torchvision_model
    from minimrcnn.io import atomic_write_text
    from minimrcnn.optim import WarmupMultiStepLR
    from minimrcnn.train.config import TrainConfig
    from minimrcnn.train.evaluate import evaluate_model, validation_dataset
    from minimrcnn.train.trainer import build_model, build_train_dataset, eval_record

    config = TrainConfig() if args.iters is None else TrainConfig(iters=args.iters)
    config.eval_every = max(1, config.iters // (args.evals + 1))
    config.validate()
    if os.path.exists(os.path.join(args.out, "summary.json")):
        raise SystemExit(f"{args.out} already holds a finished run")
    os.makedirs(args.out, exist_ok=True)

    dataset, length = build_train_dataset(config)
    ours = build_model(config, num_classes=dataset.num_classes)          # the initial weights, and the scorer
    model = torchvision_model("shapes", num_classes=dataset.num_classes,
                              box_batch_size_per_image=config.box_batch_size_per_image)
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()}, strict=True)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    # minimrcnn's schedule, read for its get_lr(t) only (it sets .lr on what it is given)
    schedule = WarmupMultiStepLR(types.SimpleNamespace(lr=config.lr), milestones=config.milestone_iters(),
                                 gamma=config.gamma, warmup_iters=config.warmup_iters,
                                 warmup_factor=config.warmup_factor)
    torch.manual_seed(config.seed)
    val = validation_dataset(config, config.num_val_images)
    metrics = open(os.path.join(args.out, "metrics.jsonl"), "w")

    def evaluate(iteration: int, train_seconds: float, final: bool) -> tuple[dict, float]:
        """(COCO stats, seconds) of torchvision's current weights, scored in minimrcnn's model; logged."""
        state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
        ours.load_state_dict(state, strict=True)
        images = config.num_val_images if final else config.num_periodic_val_images
        t0 = time.perf_counter()
        stats = evaluate_model(ours, val if final else Subset(val, images))
        seconds = time.perf_counter() - t0
        record = eval_record(iteration, train_seconds, images, seconds, stats, final)
        metrics.write(json.dumps(record) + "\n")
        metrics.flush()
        print(f"iteration {iteration}: mask AP {stats['segm']['AP']:.3f}, bbox AP {stats['bbox']['AP']:.3f} "
              f"({images} images, {train_seconds / 60:.1f} train min)", flush=True)
        return stats, seconds

    train_seconds, window = 0.0, []
    for t in range(config.iters):
        t0 = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = schedule.get_lr(t)
        images, targets = load_batch(dataset, batch_indices(config, t, length),
                                     np.random.default_rng([config.seed, 1, t]), config.flip_prob)
        images, targets = torch_inputs(torch, list(zip(images, targets)))
        model.train()
        losses = model(images, targets)
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
        step = time.perf_counter() - t0
        train_seconds += step
        window.append(step)
        if (t + 1) % config.log_every == 0:
            record = {"type": "train", "iter": t + 1, "lr": schedule.get_lr(t), "s_per_iter": float(np.mean(window)),
                      "train_seconds": round(train_seconds, 2), **{k: float(v.detach()) for k, v in losses.items()}}
            record["loss"] = float(sum(record[k] for k in losses))
            metrics.write(json.dumps(record) + "\n")
            window = []
        if (t + 1) % config.eval_every == 0 and t + 1 < config.iters:
            evaluate(t + 1, train_seconds, final=False)
    final, eval_seconds = evaluate(config.iters, train_seconds, final=True)
    metrics.close()
    summary = {"iterations": config.iters, "train_seconds": round(train_seconds, 1), "eval_seconds": round(eval_seconds, 2),
               "num_val_images": config.num_val_images, "config": config.to_dict(),
               "library": f"torchvision {torchvision.__version__.split('+')[0]}",
               **{t: {k: float(v) for k, v in s.items()} for t, s in final.items()}}
    atomic_write_text(os.path.join(args.out, "summary.json"), json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
