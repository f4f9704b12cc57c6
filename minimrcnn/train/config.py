"""The training configuration: one dataclass, one comment per field, and its range checks."""

from __future__ import annotations

import dataclasses

# Fields that decide what is trained. A resumed run must keep them (else it would match
# neither the old nor the new run); the others only change evaluation and logging.
TRAINING_FIELDS = ("preset", "iters", "batch_size", "lr", "momentum", "weight_decay", "warmup_iters",
                   "warmup_factor", "milestones", "absolute_milestones", "gamma", "clip_grad_norm", "seed",
                   "flip_prob", "image_size", "coco", "box_batch_size_per_image")

# Fields added after checkpoints were first written: a checkpoint without the field trained with this value.
LEGACY_VALUES = {"box_batch_size_per_image": 128}


@dataclasses.dataclass
class TrainConfig:
    preset: str = "shapes"          # model preset; only the tiny-shapes preset trains on CPU in minutes
    iters: int = 2200               # SGD iterations (one batch each)
    batch_size: int = 4             # images per iteration
    lr: float = 0.02                # base learning rate
    momentum: float = 0.9           # SGD momentum
    weight_decay: float = 1e-4      # L2 weight decay on every trainable parameter
    warmup_iters: int = 100         # linear warmup length
    warmup_factor: float = 0.001    # lr multiplier at iteration 0 of the warmup
    milestones: tuple = (0.75, 0.9)  # fractions of `iters` where lr is multiplied by `gamma`
    absolute_milestones: tuple | None = None  # iterations of the lr drops, set when a finished run is extended
    gamma: float = 0.1              # lr decay at each milestone
    clip_grad_norm: float = 0.0     # rescale gradients whose global L2 norm exceeds this (0: off)
    box_batch_size_per_image: int = 64   # RoIs sampled per image for the box head, <= 25 % positive (the mask head's)
    seed: int = 0                   # seeds the model init, the data stream, flips and sampling
    flip_prob: float = 0.5          # probability of a horizontal flip per training image
    image_size: int = 128           # generated shapes images are image_size x image_size
    coco: str | None = None         # train on this COCO-format folder instead of generated shapes
    val_coco: str | None = None     # evaluate on this COCO-format folder (default: generated)
    num_val_images: int = 200       # held-out generated images for the final evaluation
    val_seed: int = 1_000_003       # seed of the held-out set (differs from any training seed)
    eval_every: int = 0             # periodic evaluation interval in iterations (0: only at the end)
    num_periodic_val_images: int = 50  # images for the periodic evaluations (the first of the held-out set)
    checkpoint_every: int = 250     # write checkpoint.npz every this many iterations (and at the end)
    log_every: int = 10             # metrics.jsonl line every this many iterations

    def milestone_iters(self) -> list[int]:
        """Iterations where the learning rate drops: fractions of ``iters``, unless fixed by an extension."""
        if self.absolute_milestones is not None:
            return [int(m) for m in self.absolute_milestones]
        return [int(round(f * self.iters)) for f in self.milestones]

    def validate(self) -> "TrainConfig":
        """Raise ValueError naming the first field out of range; returns self."""
        checks = [
            ("iters", self.iters >= 1, "an integer >= 1"),
            ("batch_size", self.batch_size >= 1, "an integer >= 1"),
            ("lr", self.lr > 0, "a number > 0"),
            ("momentum", 0 <= self.momentum < 1, "a number in [0, 1)"),
            ("weight_decay", self.weight_decay >= 0, "a number >= 0"),
            ("warmup_iters", self.warmup_iters >= 0, "an integer >= 0"),
            ("warmup_factor", 0 < self.warmup_factor <= 1, "a number in (0, 1]"),
            ("milestones", list(self.milestones) == sorted(self.milestones)
             and all(0 < f <= 1 for f in self.milestones), "increasing fractions in (0, 1]"),
            ("gamma", 0 < self.gamma <= 1, "a number in (0, 1]"),
            ("clip_grad_norm", self.clip_grad_norm >= 0, "a number >= 0 (0: off)"),
            ("box_batch_size_per_image", self.box_batch_size_per_image >= 4, "an integer >= 4 (a quarter may be positive)"),
            ("seed", self.seed >= 0, "an integer >= 0"),
            ("flip_prob", 0 <= self.flip_prob <= 1, "a probability in [0, 1]"),
            ("image_size", self.image_size >= 32, "an integer >= 32"),
            ("num_val_images", self.num_val_images >= 1, "an integer >= 1"),
            ("val_seed", self.val_seed >= 0, "an integer >= 0"),
            ("eval_every", self.eval_every >= 0, "an integer >= 0 (0: only at the end)"),
            ("num_periodic_val_images", self.num_periodic_val_images >= 1, "an integer >= 1"),
            ("checkpoint_every", self.checkpoint_every >= 1, "an integer >= 1"),
            ("log_every", self.log_every >= 1, "an integer >= 1"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"TrainConfig.{name} must be {expected}, got {getattr(self, name)!r}")
        return self

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        if self.absolute_milestones is not None:
            d["absolute_milestones"] = list(self.absolute_milestones)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training config keys: {unknown}")
        d = {**LEGACY_VALUES, **d}
        for key in ("milestones", "absolute_milestones"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return cls(**d)
