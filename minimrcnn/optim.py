"""SGD with momentum, the warmup + multi-step learning-rate schedule, gradient clipping.

The Mask R-CNN recipe (Detectron, torchvision references): SGD, momentum 0.9, weight
decay 1e-4, linear warmup, then the learning rate divided by 10 at fixed iterations.

State dicts are flat ``{str: numpy array}`` so a checkpoint stores them in an ``.npz``
(see minimrcnn/train/checkpoint.py); momentum buffers are keyed by parameter index.
"""

from __future__ import annotations

import bisect
from typing import Iterable, Mapping

import numpy as np

from minimrcnn.nn.module import Parameter


class SGD:
    """Stochastic gradient descent with torch.optim.SGD's update (dampening 0):

        d = grad + weight_decay * p
        buf = d on the first step, else momentum * buf + d
        d = d + momentum * buf if nesterov else buf
        p -= lr * d

    Parameters with ``requires_grad=False`` are skipped (they keep no buffer).
    """

    def __init__(self, params: Iterable[Parameter], lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        self.params = list(params)
        for i, p in enumerate(self.params):
            if not isinstance(p, Parameter):
                raise TypeError(f"SGD: params[{i}] must be a Parameter, got {type(p).__name__}")
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: lr, momentum, weight_decay must be >= 0, got {lr}, {momentum}, {weight_decay}")
        if nesterov and momentum <= 0:
            raise ValueError("SGD: nesterov momentum requires momentum > 0")
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.nesterov = bool(nesterov)
        self.momentum_buffers: dict[int, np.ndarray] = {}   # parameter index -> buffer

    def step(self) -> None:
        """Update every trainable parameter in place from its ``.grad``."""
        for i, p in enumerate(self.params):
            if not p.requires_grad:
                continue
            d = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad.copy()
            if self.momentum:
                buf = self.momentum_buffers.get(i)
                buf = d.copy() if buf is None else self.momentum * buf + d
                self.momentum_buffers[i] = buf
                d = d + self.momentum * buf if self.nesterov else buf
            p.data -= (self.lr * d).astype(p.data.dtype, copy=False)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad[...] = 0

    def state_dict(self) -> dict:
        """Hyper-parameters as 0-d arrays and ``momentum_buffer.<index>`` arrays."""
        state = {
            "lr": np.array(self.lr), "momentum": np.array(self.momentum),
            "weight_decay": np.array(self.weight_decay), "nesterov": np.array(self.nesterov),
            "num_params": np.array(len(self.params), dtype=np.int64),
        }
        for i, buf in sorted(self.momentum_buffers.items()):
            state[f"momentum_buffer.{i}"] = buf.copy()
        return state

    def load_state_dict(self, state: Mapping) -> None:
        """Restore from :meth:`state_dict`; raises ValueError listing every mismatch."""
        problems = [f"missing key {k!r}" for k in ("lr", "momentum", "weight_decay", "nesterov", "num_params")
                    if k not in state]
        if "num_params" in state and int(state["num_params"]) != len(self.params):
            problems.append(f"num_params: expected {len(self.params)}, got {int(state['num_params'])}")
        buffers = {}
        for key, value in state.items():
            if not key.startswith("momentum_buffer."):
                continue
            i = int(key.split(".", 1)[1])
            if not 0 <= i < len(self.params):
                problems.append(f"{key}: no parameter with index {i}")
            elif np.shape(value) != self.params[i].shape:
                problems.append(f"{key}: expected shape {self.params[i].shape}, got {np.shape(value)}")
            else:
                buffers[i] = np.array(value, dtype=self.params[i].data.dtype, copy=True)
        if problems:
            raise ValueError("SGD.load_state_dict: " + "; ".join(problems))
        self.lr = float(state["lr"])
        self.momentum = float(state["momentum"])
        self.weight_decay = float(state["weight_decay"])
        self.nesterov = bool(state["nesterov"])
        self.momentum_buffers = buffers


class WarmupMultiStepLR:
    """Linear warmup then step decay, as detectron2's WarmupMultiStepLR:

        lr(it) = base_lr * warmup(it) * gamma ** (number of milestones <= it)
        warmup(it) = warmup_factor * (1 - it / warmup_iters) + it / warmup_iters  for it < warmup_iters, else 1

    Example: base_lr 0.02, warmup_factor 0.001, warmup_iters 100: lr(0) = 2e-5,
    lr(50) = 0.02 * 0.5005 = 0.01001, lr(100) = 0.02. Call ``step()`` after each
    iteration; it sets ``optimizer.lr`` for the next one. Construction sets lr(0).
    """

    def __init__(self, optimizer: SGD, milestones, gamma: float = 0.1, warmup_iters: int = 100,
                 warmup_factor: float = 0.001):
        milestones = [int(m) for m in milestones]
        if milestones != sorted(milestones):
            raise ValueError(f"WarmupMultiStepLR: milestones must be increasing, got {milestones}")
        if warmup_iters < 0:
            raise ValueError(f"WarmupMultiStepLR: warmup_iters must be >= 0, got {warmup_iters}")
        self.optimizer = optimizer
        self.milestones = milestones
        self.gamma = float(gamma)
        self.warmup_iters = int(warmup_iters)
        self.warmup_factor = float(warmup_factor)
        self.base_lr = optimizer.lr
        self.last_iter = 0
        optimizer.lr = self.get_lr(0)

    def get_lr(self, iteration: int) -> float:
        """The learning rate used at ``iteration`` (0-based)."""
        factor = 1.0
        if iteration < self.warmup_iters:
            alpha = iteration / self.warmup_iters
            factor = self.warmup_factor * (1 - alpha) + alpha
        return self.base_lr * factor * self.gamma ** bisect.bisect_right(self.milestones, iteration)

    def step(self) -> None:
        self.last_iter += 1
        self.optimizer.lr = self.get_lr(self.last_iter)

    def state_dict(self) -> dict:
        return {"base_lr": np.array(self.base_lr), "last_iter": np.array(self.last_iter, dtype=np.int64),
                "milestones": np.array(self.milestones, dtype=np.int64), "gamma": np.array(self.gamma),
                "warmup_iters": np.array(self.warmup_iters, dtype=np.int64),
                "warmup_factor": np.array(self.warmup_factor)}

    def load_state_dict(self, state: Mapping) -> None:
        missing = [k for k in self.state_dict() if k not in state]
        if missing:
            raise ValueError(f"WarmupMultiStepLR.load_state_dict: missing keys {missing}")
        self.base_lr = float(state["base_lr"])
        self.last_iter = int(state["last_iter"])
        self.milestones = [int(m) for m in np.atleast_1d(state["milestones"])]
        self.gamma = float(state["gamma"])
        self.warmup_iters = int(state["warmup_iters"])
        self.warmup_factor = float(state["warmup_factor"])
        self.optimizer.lr = self.get_lr(self.last_iter)


def clip_grad_norm(params: Iterable[Parameter], max_norm: float) -> float:
    """Scale all gradients so their joint L2 norm is at most ``max_norm`` (torch semantics).

    total = sqrt(sum of squared gradient entries over trainable params); if total >
    max_norm every grad is multiplied by max_norm / (total + 1e-6).

    Returns:
        total (float): the norm before clipping (inf/nan pass through, as in torch).
    """
    grads = [p.grad for p in params if p.requires_grad]
    total = float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads)))
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for g in grads:
            g *= g.dtype.type(coef)
    return total
