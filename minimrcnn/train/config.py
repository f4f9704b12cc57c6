"""The training configuration: one dataclass, one comment per field."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class TrainConfig:
    preset: str = "shapes"          # model preset; only the tiny-shapes preset trains on CPU in minutes
    iters: int = 1200               # SGD iterations (one batch each)
    batch_size: int = 4             # images per iteration
    lr: float = 0.02                # base learning rate
    momentum: float = 0.9           # SGD momentum
    weight_decay: float = 1e-4      # L2 weight decay on every trainable parameter
    warmup_iters: int = 100         # linear warmup length
    warmup_factor: float = 0.001    # lr multiplier at iteration 0 of the warmup
    milestones: tuple = (0.75, 0.9)  # fractions of `iters` where lr is multiplied by `gamma`
    gamma: float = 0.1              # lr decay at each milestone
    clip_grad_norm: float = 0.0     # rescale gradients whose global L2 norm exceeds this (0: off)
    seed: int = 0                   # seeds the model init, the data stream, flips and sampling
    flip_prob: float = 0.5          # probability of a horizontal flip per training image
    image_size: int = 128           # generated shapes images are image_size x image_size
    coco: str | None = None         # train on this COCO-format folder instead of generated shapes
    val_coco: str | None = None     # evaluate on this COCO-format folder (default: generated)
    num_val_images: int = 200       # held-out generated images for the final evaluation
    val_seed: int = 1_000_003       # seed of the held-out set (differs from any training seed)
    eval_every: int = 0             # periodic evaluation interval in iterations (0: only at the end)
    num_periodic_val_images: int = 50  # images for the periodic evaluations (cheaper than the final one)
    checkpoint_every: int = 250     # write checkpoint.npz every this many iterations (and at the end)
    log_every: int = 10             # metrics.jsonl line every this many iterations

    def milestone_iters(self) -> list[int]:
        return [int(round(f * self.iters)) for f in self.milestones]

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training config keys: {unknown}")
        d = dict(d)
        if "milestones" in d:
            d["milestones"] = tuple(d["milestones"])
        return cls(**d)
