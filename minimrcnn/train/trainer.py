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

from minimrcnn.data.loader import batch_indices, load_batch
from minimrcnn.models.mask_rcnn import LOSS_NAMES
from minimrcnn.optim import clip_grad_norm
from minimrcnn.train.checkpoint import load_checkpoint, save_checkpoint
from minimrcnn.train.config import TRAINING_FIELDS, TrainConfig
from minimrcnn.train.diverge import LossWatch, NonFiniteLossError, TrainingDiverged, check_weights

__all__ = ["Trainer", "TrainingInterrupted", "TrainingDiverged", "NonFiniteLossError", "build_model",
           "build_train_dataset", "batch_indices", "load_batch"]


class TrainingInterrupted(Exception):
    """SIGINT/SIGTERM stopped :meth:`Trainer.run`; the checkpoint of ``iteration`` was written."""

    def __init__(self, signal_name: str, iteration: int, checkpoint_path: str):
        super().__init__(f"{signal_name} received: stopped after iteration {iteration}; "
                         f"checkpoint written to {checkpoint_path}")
        self.signal_name, self.iteration, self.checkpoint_path = signal_name, iteration, checkpoint_path


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

        dataset = CocoDataset(os.path.join(config.coco, "images"), os.path.join(config.coco, "annotations.json"))
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
        self.train_seconds = 0.0     # time spent in train_step (this process), for AP-vs-time
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
                        self.config.to_dict(), dataset_length=self.dataset_length)

    def resume(self, extend: bool = False) -> None:
        """Continue from ``out_dir/checkpoint.npz``.

        Every setting that decides what is trained (``TRAINING_FIELDS``: schedule, seed, data,
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
        now = self.config.to_dict()
        ignore = {"iters", "absolute_milestones"} if extend else set()
        diffs = [f"{k}: checkpoint {v!r} vs now {now[k]!r}" for k, v in saved.to_dict().items()
                 if k in TRAINING_FIELDS and k not in ignore and v != now[k]]
        trained_on, now_length = ckpt["dataset_length"], -1 if self.dataset_length is None else self.dataset_length
        if not diffs and trained_on is not None and trained_on != now_length:
            diffs = [f"coco: the checkpoint was trained on {ckpt['dataset_length']} images of {saved.coco}, "
                     f"the folder now holds {self.dataset_length}"]
        if diffs:
            hint = ""
            if any(d.startswith("iters:") for d in diffs):
                hint = (f" (the learning-rate milestones are fractions of iters, at iterations "
                        f"{saved.milestone_iters()} in the checkpoint: another iters would change the schedule "
                        f"of iterations already trained; to train a finished run further, extend it: "
                        f"`minimrcnn train --extend --iters N`, or Trainer.resume(extend=True))")
            raise ValueError(f"resume: {self.checkpoint_path} was written with a different config: "
                             + ", ".join(diffs) + hint)
        self.model.load_state_dict(ckpt["model"], strict=True)
        self.optimizer.load_state_dict(ckpt["optim"])
        self.iteration = ckpt["iteration"]
        # a finished run resumed as it is redoes its final evaluation: drop the old one
        self._trim_metrics(self.iteration, drop_last_eval=not extend and self.iteration == saved.iters)

    def _trim_metrics(self, last_iteration: int, drop_last_eval: bool = False) -> None:
        """Drop the records logged after the checkpoint (they will be logged again)."""
        if not os.path.exists(self.metrics_path):
            return
        from minimrcnn.io import atomic_write_text

        def keep(record: dict) -> bool:
            if drop_last_eval and "eval" in record and record.get("iter") == last_iteration:
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

    def evaluate(self, num_images: int | None = None, dataset=None) -> dict:
        """COCO stats on the first ``num_images`` of ``dataset`` (default: the held-out set)."""
        from minimrcnn.train.evaluate import Subset, evaluate_model

        dataset = self.val_dataset if dataset is None else dataset
        if num_images is not None:
            dataset = Subset(dataset, num_images)
        return evaluate_model(self.model, dataset)

    def run(self, on_step=None) -> dict:
        """Train from ``self.iteration`` to ``config.iters``; returns the last losses.

        Args:
            on_step: optional ``f(iteration, losses, seconds)`` called after every step.
        Raises:
            TrainingInterrupted: SIGINT/SIGTERM arrived; the checkpoint was written after the step.
        """
        config = self.config
        os.makedirs(self.out_dir, exist_ok=True)
        bar = _progress_bar(config.iters, self.iteration, self.progress)
        losses, window = {}, []
        try:
            with _StopOnSignal() as stop:
                while self.iteration < config.iters:
                    losses = self._step_and_log(bar, window, on_step)
                    t = self.iteration
                    if not stop.signal_name and config.eval_every and t % config.eval_every == 0 and t < config.iters:
                        t0 = time.perf_counter()
                        stats = self.evaluate(config.num_periodic_val_images)
                        self.log({"iter": t, "train_seconds": round(self.train_seconds, 2),
                                  "num_images": min(config.num_periodic_val_images, len(self.val_dataset)),
                                  "eval_seconds": round(time.perf_counter() - t0, 2), "eval": stats})
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
            self.log({"iter": t, "lr": self.optimizer.lr, "s_per_iter": float(np.median(window)),
                      "train_seconds": round(self.train_seconds, 2),
                      **{k: float(losses[k]) for k in LOSS_NAMES}, "loss": float(sum(losses.values()))})
            window.clear()
        bar.set_postfix({k.replace("loss_", ""): f"{v:.3f}" for k, v in losses.items()}, refresh=False)
        bar.update(1)
        return losses


class _NoBar:
    def set_postfix(self, *args, **kwargs):
        pass

    def update(self, n=1):
        pass

    def close(self):
        pass


def _progress_bar(total: int, initial: int, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="train", dynamic_ncols=True)
