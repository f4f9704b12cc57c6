"""``train(config, out_dir)``: the one call behind ``minimrcnn train``, top to bottom.

1. Check everything before writing anything: the output folder (and its lock), the config,
   the checkpoint when resuming, the training and validation data.
2. Take the folder's lock, write ``config.json``, print the header.
3. Train (:class:`~minimrcnn.train.trainer.Trainer`): checkpoints, metrics.jsonl, one line per
   evaluation along the way, ``best.npz`` whenever the mask AP improves. Ctrl-C / SIGTERM
   finish the step, write the checkpoint and raise ``TrainingInterrupted``.
4. The final evaluation on the whole held-out set, ``model.npz``, the figures, ``summary.json``
   and ``README.txt`` (run_folder.FILES lists every file), and the per-class AP table.
"""

from __future__ import annotations

import json
import os
import sys
import time

from tqdm.auto import tqdm

from minimrcnn import runtime
from minimrcnn.data.datasets import Subset
from minimrcnn.models.weights import save_weights
from minimrcnn.train import report
from minimrcnn.train.checkpoint import load_checkpoint_config
from minimrcnn.train.config import TrainConfig, training_differences
from minimrcnn.train.evaluate import predict_dataset, score_outputs, validation_dataset
from minimrcnn.train.run_folder import (RunLock, check_out_dir, clear_run, remove_stale_temporaries, write_config,
                                        write_summary)
from minimrcnn.train.trainer import Trainer, TrainingInterrupted, eval_record, is_eval_record, stats_of_record

NUM_DRAWN = 4                     # held-out images in predictions.png
BEST_BY = ("segm", "AP")          # best.npz: the highest mask AP


def config_for_resume(out_dir: str, **changes) -> TrainConfig:
    """The config stored in ``out_dir/checkpoint.npz`` with ``changes`` applied (not yet validated)."""
    config = TrainConfig.from_dict(load_checkpoint_config(check_out_dir(out_dir, resume=True)))
    for name, value in changes.items():
        setattr(config, name, value)
    return config


def say(text: str, file=None) -> None:
    """Print above a running progress bar without breaking it (stdout unless told)."""
    tqdm.write(text, file=file or sys.stdout)


def train(config: TrainConfig, out_dir: str, *, resume: bool = False, extend: bool = False,
          overwrite: bool = False, progress: bool = True) -> dict:
    """Train ``config`` into the run folder ``out_dir``; returns what summary.json holds.

    Args:
        resume: continue the run in ``out_dir`` from its checkpoint; ``config`` must keep every
            training field of the checkpoint's (``config_for_resume(out_dir)`` gives it).
        extend: train a finished run further, to the larger ``config.iters``; its learning-rate
            milestones stay at their iterations (implies ``resume``).
        overwrite: start afresh in a folder that holds a run (its run files are deleted).
        progress: draw progress bars (the text lines are printed either way).
    Raises:
        ValueError: a refused input, named (the folder, a setting, a data file, the checkpoint);
            nothing was written.
        TrainingInterrupted: SIGINT/SIGTERM; the checkpoint of the last step was written.
        TrainingDiverged: the model blew up; the last good checkpoint is untouched.
    """
    resume = resume or extend
    checkpoint_path = check_out_dir(out_dir, resume, overwrite)
    config.validate()
    if resume:
        saved = TrainConfig.from_dict(load_checkpoint_config(checkpoint_path))
        diffs = training_differences(saved, config, extend)
        if diffs:
            raise ValueError(f"resume: {checkpoint_path} was written with a different config: {diffs}")
    if not resume:
        _refuse_coco_without_val_coco(config)
    val = validation_dataset(config, config.num_val_images)       # reads --val-coco completely
    trainer = Trainer(config, out_dir, progress=progress, val_dataset=val)    # reads --coco completely
    resumed_from = None
    if resume:
        trainer.resume(extend=extend)       # first what the checkpoint says about the data, then this
        _refuse_coco_without_val_coco(config)
        resumed_from = trainer.iteration

    lock = RunLock(out_dir)
    took_over = lock.acquire()
    try:
        if took_over:
            say(f"note: {took_over}", sys.stderr)
        if overwrite:
            removed = clear_run(out_dir)
            if removed:
                say(f"--overwrite: removed the earlier run's {', '.join(removed)}", sys.stderr)
        stale = remove_stale_temporaries(out_dir)
        if stale:
            say(f"note: removed {len(stale)} unfinished temporary file(s) of a killed run: {', '.join(stale)}",
                sys.stderr)
        write_config(out_dir, config.to_dict())
        return _train_and_finish(trainer, val, out_dir, checkpoint_path, resumed_from, extend)
    finally:
        lock.release()


def _refuse_coco_without_val_coco(config: TrainConfig) -> None:
    if config.coco and not config.val_coco:
        raise ValueError(f"coco {config.coco} is given without val_coco: the evaluations would score the model "
                         "on generated shapes, whose classes are not yours. Give a held-out COCO folder of the "
                         f"same classes (--val-coco DIR), or the training folder itself (--val-coco {config.coco}) "
                         "to score on the training images")


def _train_and_finish(trainer, val, out_dir, checkpoint_path, resumed_from, extend) -> dict:
    config = trainer.config
    say(report.header(config, trainer.dataset, val, trainer.scheduler, out_dir, resumed_from))
    warning = report.warmup_warning(config, trainer.scheduler) if resumed_from is None else None
    if warning:
        say(warning, sys.stderr)
    if resumed_from is not None:
        say(f"resumed from {checkpoint_path} at iteration {resumed_from} of {config.iters}")
        if extend:
            say(f"extended to {config.iters} iterations: the learning-rate milestones stay at iterations "
                f"{config.milestone_iters()} (absolute), so the new iterations keep the final lr "
                f"{trainer.scheduler.get_lr(trainer.iteration):.3g}")

    best = {"candidate": _best_so_far(trainer)}        # {"score", "record"} of best.npz, or None
    best_path = os.path.join(out_dir, "best.npz")

    def keep_if_best(record) -> bool:
        current = best["candidate"]
        if current is not None and _score(record) <= current["score"]:
            return False
        save_weights(trainer.model, best_path)
        best["candidate"] = {"score": _score(record), "record": record}
        return True

    def on_eval(record):
        say(report.eval_line(record, config.iters, best=keep_if_best(record)))

    on_step, first_iteration = None, trainer.iteration + 1
    if runtime.kernel_cache_is_cold():
        say("first run: Numba compiles the kernels once (they are cached for later runs); "
            "the first iteration waits for it", sys.stderr)

        def on_step(iteration, losses, seconds):
            if iteration == first_iteration:
                say(f"kernels compiled: the first iteration took {seconds:.1f} s", sys.stderr)

    trainer.run(on_step=on_step, on_eval=on_eval)
    try:
        return _finish(trainer, val, out_dir, resumed_from, keep_if_best, best)
    except KeyboardInterrupt:
        raise TrainingInterrupted("SIGINT", trainer.iteration, trainer.checkpoint_path,
                                  during="the final evaluation") from None


def _finish(trainer, val, out_dir, resumed_from, keep_if_best, best) -> dict:
    """The final evaluation, model.npz, best.npz, the figures, summary.json; prints the results."""
    config = trainer.config
    say(f"final evaluation: predicting {len(val)} held-out images ...")
    save_weights(trainer.model, os.path.join(out_dir, "model.npz"))
    t0 = time.perf_counter()
    images, outputs = predict_dataset(trainer.model, val, progress=trainer.progress, desc="evaluate")
    stats = score_outputs(val, outputs, per_class=True)
    per_class = stats.pop("per_class")
    eval_seconds = time.perf_counter() - t0
    trainer.log(eval_record(trainer.iteration, trainer.train_seconds, len(val), eval_seconds, stats, final=True))
    # the final weights compete for best.npz on the images the evaluations along the way used
    n = min(config.num_periodic_val_images, len(val))
    final_on_subset = eval_record(trainer.iteration, trainer.train_seconds, n, 0.0,
                                  score_outputs(Subset(val, n), outputs[:n]), final=True)
    keep_if_best(final_on_subset)

    from minimrcnn.viz.draw import save_prediction_grid, save_training_curves   # loads matplotlib: only here

    targets = [val[i][1] for i in range(min(NUM_DRAWN, len(val)))]
    save_prediction_grid(os.path.join(out_dir, "predictions.png"), images[:NUM_DRAWN], outputs[:NUM_DRAWN],
                         getattr(val, "class_names", None), targets=targets)
    save_training_curves(os.path.join(out_dir, "curves.png"), trainer.metrics_path)
    b = best["candidate"]["record"]
    summary = {"iterations": trainer.iteration, "train_seconds": round(trainer.train_seconds, 1),
               "eval_seconds": round(eval_seconds, 2), "num_val_images": len(val), **stats, "per_class": per_class,
               "best": {"file": "best.npz", "iteration": b["iter"], "segm_AP": b["segm_AP"], "bbox_AP": b["bbox_AP"],
                        "num_images": b["num_images"]},
               "config": config.to_dict()}
    write_summary(out_dir, summary)

    say(f"trained {trainer.iteration} iterations in {trainer.train_seconds / 60:.1f} min of training steps"
        + (" (over every resume)" if resumed_from else ""))
    for line in report.stats_lines(stats, len(val)):
        say(line)
    say(f"per-class AP ({len(val)} held-out images):")
    say(report.per_class_table(per_class))
    say(f"best.npz: iteration {b['iter']}, mask AP {b['segm_AP']:.3f} on the first {b['num_images']} held-out images")
    for name in ("model.npz", "best.npz", "checkpoint.npz", "config.json", "metrics.jsonl", "curves.png",
                 "predictions.png", "summary.json", "README.txt"):
        say(f"  {report.shown_path(os.path.join(out_dir, name))}")
    return summary


def _score(record: dict) -> float:
    return float(record[f"{BEST_BY[0]}_{BEST_BY[1]}"])


def _best_so_far(trainer) -> dict | None:
    """The best evaluation along the way already in metrics.jsonl (a resumed run), if best.npz exists."""
    if not (os.path.exists(trainer.metrics_path) and os.path.exists(os.path.join(trainer.out_dir, "best.npz"))):
        return None
    best = None
    with open(trainer.metrics_path) as f:
        for line in f:
            record = json.loads(line)
            if not is_eval_record(record) or record.get("final"):
                continue
            stats = stats_of_record(record)
            flat = {"iter": record["iter"], "num_images": record.get("num_images"),
                    "segm_AP": stats["segm"]["AP"], "bbox_AP": stats["bbox"]["AP"]}
            if best is None or _score(flat) > best["score"]:
                best = {"score": _score(flat), "record": flat}
    return best
