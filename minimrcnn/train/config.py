"""The training configuration: one dataclass, one line per field, and its range checks.

Each field is declared with :func:`setting`: its default, one line of help and the range it
must lie in. ``minimrcnn train`` builds one flag per field from these (``--batch-size`` for
``batch_size``, with this help and this default), so a new field is one line here, and
``minimrcnn train --help`` cannot disagree with this file.

Every field is either in ``TRAINING_FIELDS`` (it decides what is trained; a resumed run must
keep it) or in ``RUN_FIELDS`` (it only changes evaluation, logging and checkpointing); a test
checks that the two lists cover the fields exactly.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, NamedTuple


class Check(NamedTuple):
    """A range a setting must lie in: ``ok(value)`` and what that means in words."""
    ok: Callable
    expected: str


def at_least(n: int) -> Check:
    return Check(lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= n, f"an integer >= {n}")


def number(expected: str, ok: Callable) -> Check:
    """A real number (NaN and inf fail) for which ``ok`` holds."""
    return Check(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and ok(v),
                 expected)


def fractions(v) -> bool:
    return (isinstance(v, (tuple, list)) and len(v) > 0 and list(v) == sorted(v)
            and all(isinstance(f, (int, float)) and 0 < f <= 1 for f in v))


def setting(default, help: str, check: Check | None = None, kind: type | None = None, flag: bool = True,
            unset: str | None = None):
    """A TrainConfig field: ``default``, one line of ``help`` (the --help text), its range.

    Args:
        kind: the type a command-line value is parsed to (default: the default's type).
        flag: False for a field the command line does not set (it is derived).
        unset: what a default of None means, in words.
    """
    return dataclasses.field(default=default, metadata={
        "help": help, "check": check, "kind": kind or type(default), "flag": flag, "unset": unset})


# A short run for a first try and for CI (`minimrcnn train --quick`): these fields, unless given.
QUICK = {"iters": 300, "num_val_images": 50}
# With eval_every None: this many evaluations along the way, unless they would come closer than
# MIN_EVAL_INTERVAL iterations (then only the final one).
EVALUATIONS_ALONG_THE_WAY = 3
MIN_EVAL_INTERVAL = 50


@dataclasses.dataclass
class TrainConfig:
    preset: str = setting("shapes", "model preset; only the tiny-shapes preset trains on CPU in minutes",
                          Check(lambda v: v == "shapes", "'shapes'"))
    iters: int = setting(2200, "SGD iterations (one batch each)", at_least(1))
    batch_size: int = setting(4, "images per iteration", at_least(1))
    lr: float = setting(0.02, "base learning rate", number("a number > 0", lambda v: v > 0))
    momentum: float = setting(0.9, "SGD momentum", number("a number in [0, 1)", lambda v: 0 <= v < 1))
    weight_decay: float = setting(1e-4, "L2 weight decay on every trainable parameter",
                                  number("a number >= 0", lambda v: v >= 0))
    warmup_iters: int = setting(100, "iterations of the linear learning-rate warmup", at_least(0))
    warmup_factor: float = setting(0.001, "lr multiplier at iteration 0 of the warmup",
                                   number("a number in (0, 1]", lambda v: 0 < v <= 1))
    milestones: tuple = setting((0.75, 0.9), "fractions of iters where the lr is multiplied by gamma",
                                Check(fractions, "increasing fractions in (0, 1]"), kind=float)
    absolute_milestones: tuple | None = setting(
        None, "iterations of the lr drops, set when a finished run is extended (--extend)",
        Check(lambda v: v is None or (list(v) == sorted(v) and all(int(m) >= 0 for m in v)),
              "None or increasing iterations"), flag=False)
    gamma: float = setting(0.1, "lr multiplier at each milestone", number("a number in (0, 1]", lambda v: 0 < v <= 1))
    clip_grad_norm: float = setting(0.0, "rescale gradients whose global L2 norm exceeds this (0: off)",
                                    number("a number >= 0 (0: off)", lambda v: v >= 0))
    box_batch_size_per_image: int = setting(
        64, "RoIs the box head samples per training image, at most a quarter positive; the positives "
            "also train the mask head (the shapes preset's default)", at_least(4))
    seed: int = setting(0, "seeds the model init, the data stream, flips and sampling", at_least(0))
    flip_prob: float = setting(0.5, "probability of a horizontal flip per training image",
                               number("a probability in [0, 1]", lambda v: 0 <= v <= 1))
    image_size: int = setting(128, "side of the generated shapes images", at_least(32))
    coco: str | None = setting(None, "train on this COCO-format folder (DIR/images, DIR/annotations.json); "
                                     "needs val_coco", kind=str, unset="generated shapes")
    val_coco: str | None = setting(None, "evaluate on this COCO-format folder", kind=str,
                                   unset="generated held-out shapes")
    num_val_images: int = setting(200, "generated held-out images for the final evaluation (a validation "
                                       "COCO folder is used whole)", at_least(1))
    val_seed: int = setting(1_000_003, "seed of the generated held-out set (differs from any training seed)",
                            at_least(0))
    eval_every: int | None = setting(
        None, "evaluate on num_periodic_val_images held-out images every this many iterations (0: only at the end)",
        Check(lambda v: v is None or (isinstance(v, int) and v >= 0), "an integer >= 0 (0: only at the end)"),
        kind=int, unset=f"{EVALUATIONS_ALONG_THE_WAY} evaluations along the way, every iters // "
                        f"{EVALUATIONS_ALONG_THE_WAY + 1}, or none when that is under {MIN_EVAL_INTERVAL} iterations")
    num_periodic_val_images: int = setting(50, "held-out images of the evaluations along the way (the first "
                                               "ones of the held-out set)", at_least(1))
    checkpoint_every: int = setting(250, "write checkpoint.npz every this many iterations (also at the end "
                                         "and on Ctrl-C)", at_least(1))
    log_every: int = setting(10, "write the losses to metrics.jsonl every this many iterations", at_least(1))

    def milestone_iters(self) -> list[int]:
        """Iterations where the learning rate drops: fractions of ``iters``, unless fixed by an extension."""
        if self.absolute_milestones is not None:
            return [int(m) for m in self.absolute_milestones]
        return [int(round(f * self.iters)) for f in self.milestones]

    def eval_interval(self) -> int:
        """Iterations between evaluations along the way (0: none): ``eval_every``, or its rule when None."""
        if self.eval_every is not None:
            return self.eval_every
        interval = self.iters // (EVALUATIONS_ALONG_THE_WAY + 1)
        return interval if interval >= MIN_EVAL_INTERVAL else 0

    def validate(self) -> "TrainConfig":
        """Raise ValueError naming the first field out of range; returns self."""
        for field in dataclasses.fields(self):
            check, value = field.metadata["check"], getattr(self, field.name)
            if check is None:
                if value is not None and not isinstance(value, field.metadata["kind"]):
                    raise ValueError(f"TrainConfig.{field.name} must be a {field.metadata['kind'].__name__} "
                                     f"or None, got {value!r}")
                continue
            try:
                ok = check.ok(value)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(f"TrainConfig.{field.name} must be {check.expected}, got {value!r}")
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


# Fields that decide what is trained. A resumed run must keep them (else it would match
# neither the old nor the new run).
TRAINING_FIELDS = ("preset", "iters", "batch_size", "lr", "momentum", "weight_decay", "warmup_iters",
                   "warmup_factor", "milestones", "absolute_milestones", "gamma", "clip_grad_norm",
                   "box_batch_size_per_image", "seed", "flip_prob", "image_size", "coco")
# Fields that only change evaluation, logging and checkpointing: a resume may change them.
RUN_FIELDS = ("val_coco", "num_val_images", "val_seed", "eval_every", "num_periodic_val_images",
              "checkpoint_every", "log_every")

# Fields added after checkpoints were first written: a checkpoint without the field trained with
# this value. Checkpoints from before box_batch_size_per_image existed sampled the preset's
# then default of 128 RoIs per image, so that is what they must resume with.
LEGACY_VALUES = {"box_batch_size_per_image": 128}


def training_differences(saved: TrainConfig, now: TrainConfig, extend: bool = False) -> str:
    """The training fields where ``now`` differs from a checkpoint's ``saved`` config, in words ('' if none).

    ``extend`` (a finished run trained further) lets ``iters`` grow and fixes the milestones in iterations.
    """
    ignore = {"iters", "absolute_milestones"} if extend else set()
    old, new = saved.to_dict(), now.to_dict()
    diffs = [f"{k}: checkpoint {old[k]!r} vs now {new[k]!r}" for k in TRAINING_FIELDS
             if k not in ignore and old[k] != new[k]]
    text = ", ".join(diffs)
    if any(d.startswith("iters:") for d in diffs):
        text += (f" (the learning-rate milestones are fractions of iters, at iterations {saved.milestone_iters()} "
                 "in the checkpoint: another iters would change the schedule of iterations already trained; to "
                 "train a finished run further, extend it: `minimrcnn train --extend --iters N`, or "
                 "train(config, out_dir, extend=True))")
    return text
