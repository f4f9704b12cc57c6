"""Layers as explicit forward/backward pairs: ``minimrcnn.nn`` and ``minimrcnn.nn.functional``."""

from minimrcnn.nn import functional
from minimrcnn.nn.layers import (
    BatchNorm2d,
    Conv2d,
    Conv2dNormActivation,
    ConvTranspose2d,
    FrozenBatchNorm2d,
    GroupNorm,
    Linear,
    MaxPool2d,
    ReLU,
)
from minimrcnn.nn.module import Module, ModuleList, Parameter, Sequential

__all__ = [
    "functional", "Module", "ModuleList", "Parameter", "Sequential", "Conv2d", "Conv2dNormActivation",
    "ConvTranspose2d", "Linear", "ReLU", "MaxPool2d", "GroupNorm", "FrozenBatchNorm2d", "BatchNorm2d",
]
