"""The training loop: data stream -> model forward -> backward -> SGD step, with checkpoints.

Determinism: every random draw of iteration t (which images, flips, the samplers' picks)
comes from generators seeded with (seed, t), so two runs with the same config give the
same losses, and a run resumed from a checkpoint at iteration t continues exactly as the
uninterrupted run would have.
"""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np

from minimrcnn.optim import clip_grad_norm
from minimrcnn.train.checkpoint import load_checkpoint, save_checkpoint
from minimrcnn.train.config import TrainConfig

LOSS_NAMES = ("loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg")


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is left untouched."""


def build_model(config: TrainConfig, num_classes: int):
    from minimrcnn.models import maskrcnn_shapes

    if config.preset != "shapes":
        raise ValueError(f"unknown preset {config.preset!r}; expected 'shapes'")
    return maskrcnn_shapes(num_classes=num_classes, seed=config.seed)


def build_train_dataset(config: TrainConfig):
    """(dataset, stream_length): a COCO folder, or an endless stream of generated shapes."""
    if config.coco:
        from minimrcnn.data.coco import CocoDataset

        dataset = CocoDataset(os.path.join(config.coco, "images"), os.path.join(config.coco, "annotations.json"))
        return dataset, len(dataset)
    from minimrcnn.data.shapes import ShapesDataset

    # Sample i depends only on (seed, i): a "dataset" of 2**40 images is an endless stream.
    return ShapesDataset(num_images=2 ** 40, seed=config.seed, image_size=config.image_size), None


def batch_indices(config: TrainConfig, iteration: int, dataset_length: int | None) -> list[int]:
    """Indices of the images of ``iteration``: consecutive for a stream, epoch-shuffled otherwise."""
    start = iteration * config.batch_size
    positions = range(start, start + config.batch_size)
    if dataset_length is None:
        return list(positions)
    indices = []
    for pos in positions:
        epoch, offset = divmod(pos, dataset_length)
        order = np.random.default_rng([config.seed, 7, epoch]).permutation(dataset_length)
        indices.append(int(order[offset]))
    return indices


def load_batch(dataset, indices, rng: np.random.Generator, flip_prob: float):
    """uint8 samples -> (images: list of float32[3,H,W] in [0,1], targets), randomly flipped."""
    from minimrcnn.data.loader import hflip

    images, targets = [], []
    for i in indices:
        image, target = dataset[i]
        if rng.random() < flip_prob:
            image, target = hflip(image, target)
        images.append(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / 255.0)
        targets.append({k: target[k] for k in ("boxes", "labels", "masks")})
    return images, targets


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


class Trainer:
    """Runs a :class:`TrainConfig` and writes its outputs into ``out_dir``.

    Files written: ``checkpoint.npz`` (weights + optimizer + iteration + config) and
    ``metrics.jsonl`` (one JSON object per logged iteration and per evaluation). The
    ``minimrcnn train`` command adds ``model.npz`` and the figures. Lesson 07
    (``lessons/07_train_tiny_shapes.ipynb``) walks through a run.
    """

    def __init__(self, config: TrainConfig, out_dir: str, progress: bool = True):
        from minimrcnn.optim import SGD, WarmupMultiStepLR

        self.config, self.out_dir, self.progress = config, out_dir, progress
        os.makedirs(out_dir, exist_ok=True)
        self.dataset, self.dataset_length = build_train_dataset(config)
        num_classes = getattr(self.dataset, "num_classes", 4)
        self.model = build_model(config, num_classes)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
        self.scheduler = WarmupMultiStepLR(self.optimizer, milestones=config.milestone_iters(), gamma=config.gamma,
                                           warmup_iters=config.warmup_iters, warmup_factor=config.warmup_factor)
        self.iteration = 0
        self.train_seconds = 0.0     # time spent in train_step (this process), for AP-vs-time
        self.checkpoint_path = os.path.join(out_dir, "checkpoint.npz")
        self.metrics_path = os.path.join(out_dir, "metrics.jsonl")

    # -- checkpoints --------------------------------------------------------------
    def save(self) -> None:
        """Write checkpoint.npz atomically; refuses weights that are no longer finite."""
        for name, param in self.model.named_parameters():
            if not np.isfinite(param.data).all():
                raise NonFiniteLossError(f"parameter {name} is not finite after iteration {self.iteration}; "
                                         f"the last good checkpoint ({self.checkpoint_path}) is left untouched.")
        optim_state = {str(k): v for k, v in self.optimizer.state_dict().items()}
        save_checkpoint(self.checkpoint_path, self.model.state_dict(), optim_state, self.iteration,
                        self.config.to_dict())

    def resume(self) -> None:
        """Continue from ``out_dir/checkpoint.npz`` (its config must match this run's)."""
        ckpt = load_checkpoint(self.checkpoint_path)
        saved = TrainConfig.from_dict(ckpt["config"])
        ignore = {"iters", "eval_every", "checkpoint_every", "log_every", "milestones"}
        diffs = {k: (v, getattr(self.config, k)) for k, v in saved.to_dict().items()
                 if k not in ignore and v != self.config.to_dict()[k]}
        if diffs:
            raise ValueError(f"--resume: {self.checkpoint_path} was written with a different config: "
                             + ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in diffs.items()))
        self.model.load_state_dict(ckpt["model"], strict=True)
        self.optimizer.load_state_dict(ckpt["optim"])
        self.iteration = ckpt["iteration"]

    def _log(self, record: dict) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    # -- one step -----------------------------------------------------------------
    def train_step(self) -> dict:
        """One SGD iteration at ``self.iteration``; returns the losses as floats."""
        config, t = self.config, self.iteration
        self.optimizer.lr = self.scheduler.get_lr(t)
        data_rng = np.random.default_rng([config.seed, 1, t])
        images, targets = load_batch(self.dataset, batch_indices(config, t, self.dataset_length),
                                     data_rng, config.flip_prob)
        self.model.train()
        self.model.rng = np.random.default_rng([config.seed, 2, t])
        losses, cache = self.model(images, targets)
        for name, value in losses.items():
            if not math.isfinite(value):
                raise NonFiniteLossError(
                    f"{name} is {value} at iteration {t}; training stopped. The last good checkpoint "
                    f"({self.checkpoint_path}, if one was written) is left untouched.")
        self.model.zero_grad()
        self.model.backward(cache)
        if config.clip_grad_norm:
            clip_grad_norm(self.optimizer.params, config.clip_grad_norm)
        self.optimizer.step()
        self.iteration += 1
        return losses

    def evaluate(self, num_images: int) -> dict:
        from minimrcnn.train.evaluate import evaluate_model, validation_dataset

        dataset = validation_dataset(self.config, num_images)
        return evaluate_model(self.model, dataset)

    def run(self) -> dict:
        """Train from ``self.iteration`` to ``config.iters``; returns the last losses."""
        config = self.config
        bar = _progress_bar(config.iters, self.iteration, self.progress)
        losses, window = {}, []
        while self.iteration < config.iters:
            t0 = time.perf_counter()
            losses = self.train_step()
            window.append(time.perf_counter() - t0)
            self.train_seconds += window[-1]
            t = self.iteration
            if t % config.log_every == 0 or t == config.iters:
                record = {"iter": t, "lr": self.optimizer.lr, "s_per_iter": float(np.median(window)),
                          "train_seconds": round(self.train_seconds, 2),
                          **{k: float(v) for k, v in losses.items()}, "loss": float(sum(losses.values()))}
                self._log(record)
                window = []
            bar.set_postfix({k.replace("loss_", ""): f"{v:.3f}" for k, v in losses.items()}, refresh=False)
            bar.update(1)
            if config.eval_every and t % config.eval_every == 0 and t < config.iters:
                stats = self.evaluate(config.num_periodic_val_images)
                self._log({"iter": t, "train_seconds": round(self.train_seconds, 2), "eval": stats})
            if t % config.checkpoint_every == 0 or t == config.iters:
                self.save()
        bar.close()
        return losses
