"""``minimrcnn train``: check every input, train (stoppable, resumable), evaluate, draw.

Order matters for "nothing written on an error": the output folder, the flags, the
training and validation folders and the checkpoint (when resuming) are all checked before
the first iteration, and the Trainer writes nothing before it runs.
"""

from __future__ import annotations

import os
import shlex
import sys
import time

from minimrcnn.train.config import TrainConfig

# CLI flag -> TrainConfig field, for flags whose default is "the config's" (None on the command line).
FLAG_FIELDS = {"preset": "preset", "iters": "iters", "batch_size": "batch_size", "lr": "lr", "seed": "seed",
               "coco": "coco", "val_coco": "val_coco", "num_val_images": "num_val_images",
               "eval_every": "eval_every", "checkpoint_every": "checkpoint_every",
               "clip_grad_norm": "clip_grad_norm", "image_size": "image_size", "log_every": "log_every",
               "box_batch_size_per_image": "box_batch_size_per_image"}
EVALUATIONS_ALONG_THE_WAY = 3     # default periodic evaluations (on num_periodic_val_images images each) ...
MIN_EVAL_INTERVAL = 50            # ... unless they would come closer than this many iterations
NUM_DRAWN = 4                     # held-out images in predictions.png


def resume_command(out: str) -> str:
    return f"minimrcnn train --resume --out {shlex.quote(out)}"


def build_config(args, checkpoint_path: str) -> TrainConfig:
    """The run's config: the checkpoint's when resuming, else the defaults; then the flags given."""
    from minimrcnn.train.checkpoint import load_checkpoint_config

    given = {field: getattr(args, flag) for flag, field in FLAG_FIELDS.items() if getattr(args, flag) is not None}
    if args.quick:
        given.setdefault("iters", 300)
        given.setdefault("num_val_images", 50)
    if args.resume:
        config = TrainConfig.from_dict(load_checkpoint_config(checkpoint_path))
        for field, value in given.items():
            setattr(config, field, value)
    else:
        config = TrainConfig(**given)
        if "eval_every" not in given:   # a few cheap evaluations along the way, for the AP curve
            interval = config.iters // (EVALUATIONS_ALONG_THE_WAY + 1)
            config.eval_every = interval if interval >= MIN_EVAL_INTERVAL else 0
    try:
        return config.validate()
    except ValueError as exc:
        raise ValueError(str(exc).replace("TrainConfig.", "the setting ")) from None


def _note(message: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(message, file=sys.stderr)


def cmd_train(args) -> int:
    from minimrcnn.train.evaluate import validation_dataset
    from minimrcnn.train.run_folder import check_out_dir, kernel_cache_is_cold
    from minimrcnn.train.trainer import Trainer, TrainingInterrupted

    out = args.out
    if args.extend:
        if args.iters is None:
            raise ValueError("--extend needs --iters N: the new, larger number of iterations")
        args.resume = True
    checkpoint_path = check_out_dir(out, args.resume)
    config = build_config(args, checkpoint_path)
    val = validation_dataset(config, config.num_val_images)   # checks --val-coco before any training
    trainer = Trainer(config, out, progress=not args.no_progress, val_dataset=val)  # checks --coco
    if args.resume:
        trainer.resume(extend=args.extend)
        print(f"resumed from {checkpoint_path} at iteration {trainer.iteration} of {config.iters}")
        if args.extend:
            print(f"extended to {config.iters} iterations: the learning-rate milestones stay at iterations "
                  f"{config.milestone_iters()} (absolute), so the new iterations keep the final lr "
                  f"{trainer.scheduler.get_lr(trainer.iteration):.3g}")

    on_step, first_iteration = None, trainer.iteration + 1
    if kernel_cache_is_cold():
        _note("first run: Numba compiles the kernels once (they are cached for later runs); "
              "the first iteration waits for it")

        def on_step(iteration, losses, seconds):
            if iteration == first_iteration:
                _note(f"kernels compiled: the first iteration took {seconds:.1f} s")

    start = time.perf_counter()
    try:
        trainer.run(on_step=on_step)
    except TrainingInterrupted as stop:
        print(f"minimrcnn train: stopped by {stop.signal_name} after iteration {stop.iteration} of "
              f"{config.iters}; checkpoint written to {stop.checkpoint_path}. Resume with:\n"
              f"  {resume_command(out)}", file=sys.stderr)
        return 130
    train_seconds = time.perf_counter() - start
    try:
        return _finish(trainer, val, out, train_seconds)
    except KeyboardInterrupt:
        print(f"minimrcnn train: interrupted after training, during the final evaluation; the checkpoint of "
              f"iteration {trainer.iteration} is complete. To redo the evaluation and figures:\n"
              f"  {resume_command(out)}", file=sys.stderr)
        return 130


def _finish(trainer, val, out: str, train_seconds: float) -> int:
    """model.npz, the final evaluation, the figures and summary.json / README.txt."""
    from minimrcnn.models.weights import save_weights
    from minimrcnn.train.evaluate import Subset, predict_dataset
    from minimrcnn.train.run_folder import write_summary
    from minimrcnn.viz.draw import save_prediction_grid, save_training_curves

    config = trainer.config
    save_weights(trainer.model, os.path.join(out, "model.npz"))
    t0 = time.perf_counter()
    stats = trainer.evaluate()
    eval_seconds = time.perf_counter() - t0
    trainer.log({"iter": trainer.iteration, "train_seconds": round(trainer.train_seconds, 2),
                 "num_images": len(val), "eval_seconds": round(eval_seconds, 2), "eval": stats})
    shown = Subset(val, NUM_DRAWN)
    images, outputs = predict_dataset(trainer.model, shown)
    targets = [shown[i][1] for i in range(len(shown))]
    save_prediction_grid(os.path.join(out, "predictions.png"), images, outputs,
                         getattr(val, "class_names", None), targets=targets)
    save_training_curves(os.path.join(out, "curves.png"), trainer.metrics_path)
    write_summary(out, {"iterations": trainer.iteration, "train_seconds": round(train_seconds, 1),
                        "eval_seconds": round(eval_seconds, 2), "num_val_images": len(val), **stats,
                        "config": config.to_dict()})
    print(f"trained {trainer.iteration} iterations in {train_seconds / 60:.1f} min")
    print(f"bbox ({len(val)} held-out images): " + "  ".join(f"{k} {v:.3f}" for k, v in stats["bbox"].items()))
    print(f"segm ({len(val)} held-out images): " + "  ".join(f"{k} {v:.3f}" for k, v in stats["segm"].items()))
    for name in ("model.npz", "checkpoint.npz", "metrics.jsonl", "curves.png", "predictions.png", "summary.json",
                 "README.txt"):
        print(f"  {os.path.join(out, name)}")
    return 0
