"""Weight initialisations with torch.nn.init's formulas, drawn from a np.random.Generator.

fan_in = in_channels * kH * kW and fan_out = out_channels * kH * kW for a conv weight
[out, in, kH, kW] (torch computes the ConvTranspose2d fans from its [in, out, kH, kW]
layout the same way, i.e. with dims 1 and 0 swapped in meaning).
"""

from __future__ import annotations

import math

import numpy as np


def as_rng(rng: np.random.Generator | None) -> np.random.Generator:
    """``rng`` itself, or ``np.random.default_rng(0)`` when it is None.

    Every layer and head takes an optional ``rng`` for its initialisation; with none given
    it is still deterministic, the same weights on every build.
    """
    return np.random.default_rng(0) if rng is None else rng


def _fans(shape: tuple) -> tuple[int, int]:
    if len(shape) < 2:
        raise ValueError(f"shape must have at least 2 dims (out, in, ...) for fan in/out, got {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def kaiming_uniform(shape, rng: np.random.Generator, a: float = 0.0, mode: str = "fan_in", dtype=np.float32):
    """U(-b, b) with b = gain * sqrt(3 / fan), gain = sqrt(2 / (1 + a^2))."""
    fan_in, fan_out = _fans(tuple(shape))
    fan = fan_in if mode == "fan_in" else fan_out
    bound = math.sqrt(2.0 / (1 + a * a)) * math.sqrt(3.0 / fan)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def kaiming_normal(shape, rng: np.random.Generator, mode: str = "fan_out", dtype=np.float32):
    """N(0, std^2) with std = sqrt(2 / fan) (ReLU gain)."""
    fan_in, fan_out = _fans(tuple(shape))
    fan = fan_in if mode == "fan_in" else fan_out
    return (rng.standard_normal(size=shape) * math.sqrt(2.0 / fan)).astype(dtype)


def normal(shape, rng: np.random.Generator, std: float = 0.01, dtype=np.float32):
    return (rng.standard_normal(size=shape) * std).astype(dtype)


def bias_uniform(num: int, fan_in: int, rng: np.random.Generator, dtype=np.float32):
    """torch's default bias init for Linear/Conv: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return rng.uniform(-bound, bound, size=(num,)).astype(dtype)
