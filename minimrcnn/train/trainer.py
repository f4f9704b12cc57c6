"""The training loop: data stream -> model forward -> backward -> SGD step, with checkpoints.

Determinism: every random draw of iteration t (which images, flips, the samplers' picks)
comes from generators seeded with (seed, t), so two runs with the same config give the
same losses, and a run resumed from a checkpoint at iteration t continues exactly as the
uninterrupted run would have: same weights, same optimizer state, same logged losses.

Stopping: SIGINT (Ctrl-C) or SIGTERM during :meth:`Trainer.run` lets the current step
finish, writes the checkpoint atomically and raises :class:`TrainingInterrupted`.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np

from minimrcnn.data.datasets import Subset
from minimrcnn.data.loader import batch_indices, load_batch
from minimrcnn.models.mask_rcnn import LOSS_NAMES
from minimrcnn.optim import clip_grad_norm
from minimrcnn.train.checkpoint import load_checkpoint, save_checkpoint
from minimrcnn.train.config import TrainConfig, training_differences
from minimrcnn.train.diverge import LossWatch, NonFiniteLossError, TrainingDiverged, check_weights

__all__ = ["Trainer", "TrainBar", "TrainingInterrupted", "TrainingDiverged", "NonFiniteLossError", "build_model",
           "build_train_dataset", "batch_indices", "load_batch", "eval_record", "stats_of_record"]

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def eval_record(iteration: int, train_seconds: float, num_images: int, eval_seconds: float, stats: dict,
                final: bool) -> dict:
    """The metrics.jsonl line of one evaluation: flat keys, ``bbox_AP`` ... ``segm_ARl``."""
    record = {"type": "eval", "iter": iteration, "final": final, "train_seconds": round(train_seconds, 2),
              "num_images": num_images, "eval_seconds": round(eval_seconds, 2)}
    for iou_type in ("bbox", "segm"):
        record.update({f"{iou_type}_{k}": float(stats[iou_type][k]) for k in STAT_NAMES})
    return record


def stats_of_record(record: dict) -> dict:
    """{"bbox": {AP, ...}, "segm": {...}} of an eval line (either layout: flat, or the older nested "eval")."""
    if "eval" in record:
        return record["eval"]
    return {t: {k: record[f"{t}_{k}"] for k in STAT_NAMES if f"{t}_{k}" in record} for t in ("bbox", "segm")}


def is_eval_record(record: dict) -> bool:
    return record.get("type") == "eval" or "eval" in record


class TrainingInterrupted(Exception):
    """SIGINT/SIGTERM stopped the run; the checkpoint of ``iteration`` was written.

    ``during`` is "training" (:meth:`Trainer.run` stopped after a step) or "the final evaluation"
    (training had finished: resuming redoes only the evaluation and the figures).
    """

    def __init__(self, signal_name: str, iteration: int, checkpoint_path: str, during: str = "training"):
        super().__init__(f"{signal_name} received: stopped after iteration {iteration}; "
                         f"checkpoint written to {checkpoint_path}")
        self.signal_name, self.iteration, self.checkpoint_path = signal_name, iteration, checkpoint_path
        self.during = during

    def describe(self, iters: int) -> str:
        """What happened, in words, for a run of ``iters`` iterations."""
        if self.during == "training":
            return (f"stopped by {self.signal_name} after iteration {self.iteration} of {iters}; checkpoint "
                    f"written to {self.checkpoint_path}")
        return (f"stopped by {self.signal_name} during {self.during}, after training; the checkpoint of iteration "
                f"{self.iteration} is complete ({self.checkpoint_path}), and resuming redoes {self.during}")


def build_model(config: TrainConfig, num_classes: int):
    from minimrcnn.models import maskrcnn_shapes

    if config.preset != "shapes":
        raise ValueError(f"unknown preset {config.preset!r}; expected 'shapes'")
    return maskrcnn_shapes(num_classes=num_classes, seed=config.seed,
                           box_batch_size_per_image=config.box_batch_size_per_image)


def build_train_dataset(config: TrainConfig):
    """(dataset, stream_length): a COCO folder, or an endless stream of generated shapes."""
    if config.coco:
        from minimrcnn.data.coco import CocoDataset

        dataset = CocoDataset.from_folder(config.coco)
        return dataset, len(dataset)
    from minimrcnn.data.shapes import ShapesDataset

    # Sample i depends only on (seed, i): a "dataset" of 2**40 images is an endless stream.
    return ShapesDataset(num_images=2 ** 40, seed=config.seed, image_size=config.image_size), None


class _StopOnSignal:
    """While active, SIGINT/SIGTERM only set ``signal_name``; a second signal acts as usual at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self):
        self.signal_name, self.previous = None, {}
        if threading.current_thread() is threading.main_thread():   # signal.signal works only there
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum, frame):
        self.signal_name = signal.Signals(signum).name
        self._restore()

    def _restore(self):
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        self.previous = {}

    def __exit__(self, *exc):
        self._restore()


class Trainer:
    """Runs a :class:`TrainConfig` and writes its outputs into ``out_dir``.

    Files written: ``checkpoint.npz`` (weights + optimizer + iteration + config) and
    ``metrics.jsonl`` (one JSON object per logged iteration and per evaluation). Nothing is
    written before :meth:`run` (or :meth:`save` / :meth:`log`). The ``minimrcnn train``
    command adds ``model.npz`` and the figures. Lesson 07 walks through a run.

    Args:
        val_dataset: held-out set for the evaluations (default: ``validation_dataset(config)``);
            periodic evaluations use its first ``config.num_periodic_val_images`` images.
    """

    def __init__(self, config: TrainConfig, out_dir: str, progress: bool = True, val_dataset=None):
        from minimrcnn.optim import SGD

        self.config, self.out_dir, self.progress = config.validate(), out_dir, progress
        self.dataset, self.dataset_length = build_train_dataset(config)
        self.model = build_model(config, num_classes=self.dataset.num_classes)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
        self._build_scheduler()
        self._val_dataset = val_dataset
        self.iteration = 0
        self.train_seconds = 0.0     # time spent in train_step, summed over resumes (kept in the checkpoint)
        self.loss_watch = LossWatch()
        self.checkpoint_path = os.path.join(out_dir, "checkpoint.npz")
        self.metrics_path = os.path.join(out_dir, "metrics.jsonl")

    def _build_scheduler(self):
        from minimrcnn.optim import WarmupMultiStepLR

        config = self.config
        self.scheduler = WarmupMultiStepLR(self.optimizer, milestones=config.milestone_iters(), gamma=config.gamma,
                                           warmup_iters=config.warmup_iters, warmup_factor=config.warmup_factor)

    @property
    def val_dataset(self):
        if self._val_dataset is None:
            from minimrcnn.train.evaluate import validation_dataset

            self._val_dataset = validation_dataset(self.config, self.config.num_val_images)
        return self._val_dataset

    # -- checkpoints --------------------------------------------------------------
    def save(self) -> None:
        """Write checkpoint.npz atomically; refuses weights that diverged (train/diverge.py)."""
        check_weights(self.model.named_parameters(), self.iteration, {}, self.checkpoint_path)
        optim_state = {str(k): v for k, v in self.optimizer.state_dict().items()}
        save_checkpoint(self.checkpoint_path, self.model.state_dict(), optim_state, self.iteration,
                        self.config.to_dict(), dataset_length=self.dataset_length, train_seconds=self.train_seconds)

    def resume(self, extend: bool = False) -> None:
        """Continue from ``out_dir/checkpoint.npz``.

        Every setting that decides what is trained (``config.TRAINING_FIELDS``: schedule, seed, data,
        batch size, ``iters``, ...) must equal the checkpoint's, else ValueError names it.
        ``extend=True`` continues a *finished* run to this config's larger ``iters``: the
        learning-rate milestones stay at the checkpoint's iterations (``absolute_milestones``).
        metrics.jsonl is cut back to the checkpoint's iteration, so every iteration is logged once.
        """
        ckpt = load_checkpoint(self.checkpoint_path)
        saved = TrainConfig.from_dict(ckpt["config"])
        if extend:
            if ckpt["iteration"] != saved.iters:
                raise ValueError(f"extend: {self.checkpoint_path} is at iteration {ckpt['iteration']} of "
                                 f"{saved.iters}, not finished; resume it without extending first")
            if self.config.iters <= saved.iters:
                raise ValueError(f"extend: iters must exceed the finished run's {saved.iters}, "
                                 f"got {self.config.iters}")
            self.config.absolute_milestones = tuple(saved.milestone_iters())
            self._build_scheduler()
        diffs = training_differences(saved, self.config, extend)
        if diffs:
            raise ValueError(f"resume: {self.checkpoint_path} was written with a different config: " + diffs)
        self._check_class_count(ckpt, saved)
        trained_on, now_length = ckpt["dataset_length"], -1 if self.dataset_length is None else self.dataset_length
        if trained_on is not None and trained_on != now_length:
            raise ValueError(f"resume: {self.checkpoint_path} was written with a different config: coco: the "
                             f"checkpoint was trained on {ckpt['dataset_length']} images of {saved.coco}, the "
                             f"folder now holds {self.dataset_length}")
        self.model.load_state_dict(ckpt["model"], strict=True)
        self.optimizer.load_state_dict(ckpt["optim"])
        self.iteration = ckpt["iteration"]
        self.train_seconds = ckpt["train_seconds"] or 0.0
        # a finished run resumed as it is redoes its final evaluation: drop the old one
        self._trim_metrics(self.iteration, drop_last_eval=not extend and self.iteration == saved.iters)

    def _check_class_count(self, ckpt: dict, saved: TrainConfig) -> None:
        """Refuse, in words, a checkpoint whose class count differs from the training data's."""
        key = "roi_heads.box_predictor.cls_score.weight"          # [K, representation]
        if key not in ckpt["model"]:
            return
        trained, now = int(ckpt["model"][key].shape[0]), self.dataset.num_classes
        if trained != now:
            where = f"the training folder {saved.coco}" if saved.coco else "the generated shapes"
            raise ValueError(f"resume: {self.checkpoint_path} was trained on {trained - 1} classes "
                             f"({trained} with the background), but {where} now has {now - 1} "
                             f"({now} with the background): a checkpoint resumes only on the classes it was "
                             "trained on; start a new run (another --out, or --overwrite)")

    def _trim_metrics(self, last_iteration: int, drop_last_eval: bool = False) -> None:
        """Drop the records logged after the checkpoint (they will be logged again)."""
        if not os.path.exists(self.metrics_path):
            return
        from minimrcnn.io import atomic_write_text

        def keep(record: dict) -> bool:
            if drop_last_eval and is_eval_record(record) and record.get("iter") == last_iteration:
                return False
            return record.get("iter", 0) <= last_iteration

        with open(self.metrics_path) as f:
            lines = [line for line in f if line.strip()]
        kept = [line for line in lines if keep(json.loads(line))]
        if len(kept) != len(lines):
            atomic_write_text(self.metrics_path, "".join(kept))

    def log(self, record: dict) -> None:
        """Append one JSON line to metrics.jsonl."""
        os.makedirs(self.out_dir, exist_ok=True)
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    # -- one step -----------------------------------------------------------------
    def train_step(self) -> dict:
        """One SGD iteration at ``self.iteration``; returns the losses as floats.

        Raises:
            TrainingDiverged: a loss is non-finite or jumped by orders of magnitude, or the
                updated weights are non-finite or huge (see train/diverge.py).
        """
        config, t = self.config, self.iteration
        self.optimizer.lr = self.scheduler.get_lr(t)
        data_rng = np.random.default_rng([config.seed, 1, t])
        images, targets = load_batch(self.dataset, batch_indices(config, t, self.dataset_length),
                                     data_rng, config.flip_prob)          # uint8[H, W, 3] each
        self.model.train()
        self.model.rng = np.random.default_rng([config.seed, 2, t])
        losses, cache = self.model(images, targets)
        self.loss_watch.check(losses, t, self.checkpoint_path)
        self.model.zero_grad()
        self.model.backward(cache)
        if config.clip_grad_norm:
            clip_grad_norm(self.optimizer.params, config.clip_grad_norm)
        self.optimizer.step()
        check_weights(self.model.named_parameters(), t, losses, self.checkpoint_path)
        self.iteration += 1
        return losses

    def evaluate(self, num_images: int | None = None, dataset=None, per_class: bool = False) -> dict:
        """COCO stats on the first ``num_images`` of ``dataset`` (default: the held-out set)."""
        from minimrcnn.train.evaluate import evaluate_model

        dataset = self.val_dataset if dataset is None else dataset
        if num_images is not None:
            dataset = Subset(dataset, num_images)
        return evaluate_model(self.model, dataset, per_class=per_class)

    def run(self, on_step=None, on_eval=None) -> dict:
        """Train from ``self.iteration`` to ``config.iters``; returns the last losses.

        Evaluates on the first ``config.num_periodic_val_images`` held-out images every
        ``config.eval_interval()`` iterations (not at the last one: that is the final evaluation's).

        Args:
            on_step: optional ``f(iteration, losses, seconds)`` called after every step.
            on_eval: optional ``f(record)`` called after every evaluation along the way, with its
                metrics.jsonl line (:func:`eval_record`).
        Raises:
            TrainingInterrupted: SIGINT/SIGTERM arrived; the checkpoint was written after the step.
        """
        config, interval = self.config, self.config.eval_interval()
        os.makedirs(self.out_dir, exist_ok=True)
        bar = TrainBar(config.iters, self.iteration, self.progress)
        losses, window = {}, []
        try:
            with _StopOnSignal() as stop:
                while self.iteration < config.iters:
                    losses = self._step_and_log(bar, window, on_step)
                    t = self.iteration
                    if not stop.signal_name and interval and t % interval == 0 and t < config.iters:
                        t0 = time.perf_counter()
                        subset = Subset(self.val_dataset, config.num_periodic_val_images)
                        stats = self.evaluate(dataset=subset)
                        record = eval_record(t, self.train_seconds, len(subset), time.perf_counter() - t0, stats,
                                             final=False)
                        self.log(record)
                        if on_eval is not None:
                            on_eval(record)
                        bar.resume_clock()           # the evaluation's time is not training time
                    # a signal during the step or the evaluation: checkpoint now, then stop
                    if t % config.checkpoint_every == 0 or t == config.iters or stop.signal_name:
                        self.save()
                    if stop.signal_name:
                        raise TrainingInterrupted(stop.signal_name, t, self.checkpoint_path)
        finally:
            bar.close()
        return losses

    def _step_and_log(self, bar, window, on_step) -> dict:
        t0 = time.perf_counter()
        losses = self.train_step()
        window.append(time.perf_counter() - t0)
        self.train_seconds += window[-1]
        if on_step is not None:
            on_step(self.iteration, losses, window[-1])
        t = self.iteration
        if t % self.config.log_every == 0 or t == self.config.iters:
            self.log({"type": "train", "iter": t, "lr": self.optimizer.lr, "s_per_iter": float(np.median(window)),
                      "train_seconds": round(self.train_seconds, 2),
                      **{k: float(losses[k]) for k in LOSS_NAMES}, "loss": float(sum(losses.values()))})
            window.clear()
        bar.step(losses)
        return losses


class TrainBar:
    """The progress bar of :meth:`Trainer.run`: its clock and ETA count training steps only.

    The first step of a process (which may wait for Numba to compile the kernels) and every
    evaluation are left out of the elapsed time and the rate: the ETA is the time the
    remaining steps will take. ``enabled=False`` draws nothing. ``file`` defaults to stderr.
    """

    def __init__(self, total: int, initial: int, enabled: bool = True, file=None):
        self.bar = None
        self.first = True
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc="train", dynamic_ncols=True, file=file)

    def step(self, losses: dict) -> None:
        if self.bar is None:
            return
        if self.first:              # compile time: restart the clock from here
            self.first = False
            self.resume_clock()
        self.bar.set_postfix({k.replace("loss_", ""): f"{v:.3f}" for k, v in losses.items()}, refresh=False)
        self.bar.update(1)

    def resume_clock(self) -> None:
        """Leave the time since the bar last printed out of the elapsed time and the rate."""
        if self.bar is not None:
            self.bar.unpause()

    @property
    def elapsed(self) -> float:
        """Seconds of training the bar counts (0 without a bar)."""
        return 0.0 if self.bar is None else self.bar.format_dict["elapsed"]

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
