"""Layer classes: hold Parameters, call the functional forward/backward pairs.

Each ``forward(x) -> (out, cache)``; each ``backward(dout, cache) -> dx`` adds its
parameter gradients with ``+=`` (see module.py for why). In eval mode (``.eval()``,
``training`` False) forward returns ``(out, None)``: inference drops what only the
backward needs (a conv's unfolded or stacked input is several times its input) as soon
as the output exists, so it is freed and reused at once; backward then raises.
BatchNorm2d is the exception: its eval-mode backward (fixed statistics) is supported. Initialisations are
torch's defaults, drawn from the ``rng`` passed in (``np.random.default_rng(0)`` when
none is given, so a layer built alone is still deterministic).
"""

from __future__ import annotations

import numpy as np

from minimrcnn.nn import functional as F
from minimrcnn.nn import init
from minimrcnn.nn.module import Module, Parameter, Sequential


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def _keep(module: Module, out, cache):
    """(out, cache) in training mode, (out, None) in eval mode."""
    return out, (cache if module.training else None)


def _check_cache(module: Module, cache) -> None:
    if cache is None:
        raise ValueError(f"{type(module).__name__}.backward: cache is None because forward ran in eval mode "
                         f"(training=False), which keeps no cache; call .train() before the forward pass")


def _accumulate(param: Parameter | None, grad) -> None:
    if param is not None and param.requires_grad and grad is not None:
        param.grad += grad


class Conv2d(Module):
    """2-D convolution (cross-correlation), weight [C_out, C_in, kH, kW], bias [C_out]."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 bias=True, rng=None):
        super().__init__()
        rng = init.as_rng(rng)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding, self.dilation = _pair(padding), _pair(dilation)
        shape = (out_channels, in_channels, *self.kernel_size)
        self.weight = Parameter(init.kaiming_uniform(shape, rng, a=5 ** 0.5))
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]
        self.bias = Parameter(init.bias_uniform(out_channels, fan_in, rng)) if bias else None
        # The layer that sees the raw image has no use for dx; the model sets this to False.
        self.needs_input_grad = True

    def forward(self, x, relu=False):
        """x float[N, C_in, H, W] -> float[N, C_out, Ho, Wo]; ``relu`` applies a ReLU in the same op
        (conv2d_forward's ``relu``; backward then includes it)."""
        bias = None if self.bias is None else self.bias.data
        return _keep(self, *F.conv2d_forward(x, self.weight.data, bias, self.stride, self.padding, self.dilation,
                                             relu=relu))

    def backward(self, dout, cache):
        _check_cache(self, cache)
        dx, dw, db = F.conv2d_backward(dout, cache, need_input_grad=self.needs_input_grad)
        _accumulate(self.weight, dw)
        _accumulate(self.bias, db)
        return dx

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")


class Conv2dNormActivation(Sequential):
    """Conv2d then ReLU: torchvision's Conv2dNormActivation as the mask head and the RPN head build it
    (no norm layer).

    Children "0" (the Conv2d: keys ``0.weight``, ``0.bias``) and "1" (the ReLU), as torchvision.
    The two run as one op, the conv's ``forward(x, relu=True)``, with the same values as
    running the children in turn: the ReLU costs no pass of its own (docs/convolution.md).
    x float[N, C_in, H, W] -> float[N, C_out, Ho, Wo].
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=None, rng=None):
        padding = (kernel_size - 1) // 2 if padding is None else padding     # torchvision's default
        super().__init__(Conv2d(in_channels, out_channels, kernel_size, stride, padding, rng=rng), ReLU())

    def forward(self, x):
        return self[0].forward(x, relu=True)

    def backward(self, dout, cache):
        _check_cache(self, cache)
        return self[0].backward(dout, cache)      # the cache's ReLU output gates dout (conv2d_backward)


class ConvTranspose2d(Module):
    """Transposed convolution, weight [C_in, C_out, kH, kW] (torch's layout), bias [C_out]."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, rng=None):
        super().__init__()
        rng = init.as_rng(rng)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = _pair(kernel_size), _pair(stride), _pair(padding)
        shape = (in_channels, out_channels, *self.kernel_size)
        self.weight = Parameter(init.kaiming_uniform(shape, rng, a=5 ** 0.5))
        # torch computes fan_in from weight.shape[1] * kH * kW for ConvTranspose2d.
        fan_in = out_channels * self.kernel_size[0] * self.kernel_size[1]
        self.bias = Parameter(init.bias_uniform(out_channels, fan_in, rng)) if bias else None

    def forward(self, x, relu=False):
        """x float[N, C_in, H, W] -> float[N, C_out, Ho, Wo]; ``relu`` as Conv2d's."""
        bias = None if self.bias is None else self.bias.data
        return _keep(self, *F.conv_transpose2d_forward(x, self.weight.data, bias, self.stride, self.padding,
                                                       relu=relu))

    def backward(self, dout, cache):
        _check_cache(self, cache)
        dx, dw, db = F.conv_transpose2d_backward(dout, cache)
        _accumulate(self.weight, dw)
        _accumulate(self.bias, db)
        return dx

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"


class Linear(Module):
    """y = x @ W.T + b with W [out, in], b [out]."""

    def __init__(self, in_features, out_features, bias=True, rng=None):
        super().__init__()
        rng = init.as_rng(rng)
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(init.kaiming_uniform((out_features, in_features), rng, a=5 ** 0.5))
        self.bias = Parameter(init.bias_uniform(out_features, in_features, rng)) if bias else None

    def forward(self, x):
        bias = None if self.bias is None else self.bias.data
        return _keep(self, *F.linear_forward(x, self.weight.data, bias))

    def backward(self, dout, cache):
        _check_cache(self, cache)
        dx, dw, db = F.linear_backward(dout, cache)
        _accumulate(self.weight, dw)
        _accumulate(self.bias, db)
        return dx

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}"


class ReLU(Module):
    def forward(self, x):
        return _keep(self, *F.relu_forward(x))

    def backward(self, dout, cache):
        _check_cache(self, cache)
        return F.relu_backward(dout, cache)


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        return _keep(self, *F.max_pool2d_forward(x, self.kernel_size, self.stride, self.padding))

    def backward(self, dout, cache):
        _check_cache(self, cache)
        return F.max_pool2d_backward(dout, cache)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class GroupNorm(Module):
    """GroupNorm over [N, C, H, W] with affine weight/bias [C] (init 1 and 0)."""

    def __init__(self, num_groups, num_channels, eps=1e-5):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        self.num_groups, self.num_channels, self.eps = num_groups, num_channels, eps
        self.weight = Parameter(np.ones(num_channels, np.float32))
        self.bias = Parameter(np.zeros(num_channels, np.float32))

    def forward(self, x):
        return _keep(self, *F.group_norm_forward(x, self.num_groups, self.weight.data, self.bias.data, self.eps))

    def backward(self, dout, cache):
        _check_cache(self, cache)
        dx, dw, db = F.group_norm_backward(dout, cache)
        _accumulate(self.weight, dw)
        _accumulate(self.bias, db)
        return dx

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}"


class FrozenBatchNorm2d(Module):
    """y = x * scale + shift with scale = w / sqrt(var + eps), shift = b - mean * scale.

    All four arrays are buffers (no gradient), as in torchvision; a
    ``num_batches_tracked`` key in a loaded state_dict is ignored by the loaders.
    """

    def __init__(self, num_features, eps=1e-5):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.register_buffer("weight", np.ones(num_features, np.float32))
        self.register_buffer("bias", np.zeros(num_features, np.float32))
        self.register_buffer("running_mean", np.zeros(num_features, np.float32))
        self.register_buffer("running_var", np.ones(num_features, np.float32))

    def forward(self, x):
        return _keep(self, *F.frozen_batch_norm_forward(x, self.weight, self.bias, self.running_mean,
                                                         self.running_var, self.eps))

    def backward(self, dout, cache):
        _check_cache(self, cache)
        return F.frozen_batch_norm_backward(dout, cache)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}"


class BatchNorm2d(Module):
    """BatchNorm2d: batch statistics in train mode (running stats updated), running stats in eval."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(np.ones(num_features, np.float32))
        self.bias = Parameter(np.zeros(num_features, np.float32))
        self.register_buffer("running_mean", np.zeros(num_features, np.float32))
        self.register_buffer("running_var", np.ones(num_features, np.float32))
        self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))

    def forward(self, x):
        out, cache = F.batch_norm_forward(
            x, self.running_mean, self.running_var, self.weight.data, self.bias.data,
            training=self.training, momentum=self.momentum, eps=self.eps)
        if self.training:
            # The functional op never mutates its arguments; the layer owns its state.
            self.running_mean = cache.new_running_mean      # buffers stay registered on assignment
            self.running_var = cache.new_running_var
            self.num_batches_tracked = np.array(self.num_batches_tracked + 1, dtype=np.int64)
        return out, cache   # kept in eval mode too: its eval-mode backward is a tested use (fixed statistics)

    def backward(self, dout, cache):
        dx, dw, db = F.batch_norm_backward(dout, cache)
        _accumulate(self.weight, dw)
        _accumulate(self.bias, db)
        return dx

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
