"""Divergence, said plainly: checks that stop a run whose model has blown up.

Three symptoms, each with a message that names what went wrong and what to try:

* a loss that is NaN/inf, or that jumps by orders of magnitude above its recent median;
* weights that are no longer finite, or that grew past ``WEIGHT_BOUND``;
* evaluation that meets non-finite outputs (a model can still give finite losses on its
  training batch while its predictions overflow).

None of the checks changes any number: they only read.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

# The trained shapes model's largest |weight| is of order 1; 1e4 is far past any sane value.
WEIGHT_BOUND = 1e4
# A loss this many times its recent median (and above JUMP_FLOOR) means divergence: 1000 = 3 orders of magnitude.
JUMP_FACTOR = 1000.0
JUMP_FLOOR = 100.0
HISTORY = 20      # iterations in the running median

ADVICE = "Try a lower --lr (TrainConfig.lr) or --clip-grad-norm (e.g. 10)."


class TrainingDiverged(RuntimeError):
    """The model diverged; the last good checkpoint is left untouched."""


class NonFiniteLossError(TrainingDiverged):
    """A loss became NaN or infinite."""


class LossWatch:
    """Per-loss running history; :meth:`check` raises when a loss is non-finite or jumps."""

    def __init__(self):
        self.history: dict[str, deque] = {}

    def check(self, losses: dict, iteration: int, checkpoint_path: str) -> None:
        where = f"training stopped; the last good checkpoint ({checkpoint_path}, if one was written) is left untouched"
        for name, value in losses.items():
            if not math.isfinite(value):
                raise NonFiniteLossError(f"{name} is {value} at iteration {iteration}: the model diverged; "
                                         f"{where}. {ADVICE}")
            past = self.history.setdefault(name, deque(maxlen=HISTORY))
            if len(past) >= 5:
                median = float(np.median(past))
                if value > JUMP_FLOOR and value > JUMP_FACTOR * median:
                    raise TrainingDiverged(
                        f"{name} jumped to {value:.4g} at iteration {iteration}, over {JUMP_FACTOR:g} times its "
                        f"median of {median:.4g} over the last {len(past)} iterations: the model diverged; "
                        f"{where}. {ADVICE}")
            past.append(float(value))


def check_weights(named_parameters, iteration: int, losses: dict, checkpoint_path: str) -> None:
    """Raise if any parameter is non-finite (NonFiniteLossError) or has |w| > WEIGHT_BOUND
    (TrainingDiverged). ``losses`` (may be empty) names the largest loss in the message."""
    for name, param in named_parameters:
        largest = float(np.max(np.abs(param.data))) if param.data.size else 0.0
        if largest <= WEIGHT_BOUND:
            continue
        finite = math.isfinite(largest)   # False also for NaN, which fails the test above
        state = f"reached |w| = {largest:.3g}" if finite else "is not finite"
        detail = f"bound {WEIGHT_BOUND:g}"
        if losses:
            loss_name, loss = max(losses.items(), key=lambda kv: kv[1])
            detail += f"; the largest loss, {loss_name}, was {loss:.4g}"
        error = TrainingDiverged if finite else NonFiniteLossError
        raise error(f"parameter {name} {state} after iteration {iteration} ({detail}): the model diverged; training "
                    f"stopped and the last good checkpoint ({checkpoint_path}, if one was written) is left "
                    f"untouched. {ADVICE}")


def check_outputs(outputs, first_image: int) -> None:
    """Raise TrainingDiverged if a prediction (boxes, scores, masks) holds NaN or inf."""
    for k, out in enumerate(outputs):
        for key in ("boxes", "scores", "masks"):
            value = out.get(key)
            if value is not None and not np.isfinite(value).all():
                raise TrainingDiverged(
                    f"evaluation met non-finite {key} in the prediction for image {first_image + k}: the model's "
                    f"weights have diverged. {ADVICE}")
