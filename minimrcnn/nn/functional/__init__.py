"""Functional ops as explicit forward/backward pairs.

For each op: ``<op>_forward(inputs..., **hyper) -> (out, cache)``,
``<op>_backward(dout, cache) -> gradients of the differentiable inputs in argument
order`` and a plain ``<op>(...)`` that returns only the output. Caches are NamedTuples
defined beside each op. Nothing here mutates its arguments.
"""

from minimrcnn.nn.functional.activation import (
    relu, relu_backward, relu_forward, sigmoid, sigmoid_backward, sigmoid_forward, softmax,
    softmax_backward, softmax_forward,
)
from minimrcnn.nn.functional.conv import conv2d, conv2d_backward, conv2d_forward
from minimrcnn.nn.functional.conv_transpose import (
    conv_transpose2d, conv_transpose2d_backward, conv_transpose2d_forward,
)
from minimrcnn.nn.functional.interpolate import interpolate, interpolate_backward, interpolate_forward
from minimrcnn.nn.functional.linear import linear, linear_backward, linear_forward
from minimrcnn.nn.functional.loss import (
    binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_backward,
    binary_cross_entropy_with_logits_forward, cross_entropy, cross_entropy_backward,
    cross_entropy_forward, smooth_l1_loss, smooth_l1_loss_backward, smooth_l1_loss_forward,
)
from minimrcnn.nn.functional.norm import (
    batch_norm, batch_norm_backward, batch_norm_forward, frozen_batch_norm,
    frozen_batch_norm_backward, frozen_batch_norm_forward, group_norm, group_norm_backward,
    group_norm_forward,
)
from minimrcnn.nn.functional.pooling import max_pool2d, max_pool2d_backward, max_pool2d_forward
from minimrcnn.nn.functional.tensor import (
    add, add_backward, add_forward, concat, concat_backward, concat_forward, flatten,
    flatten_backward, flatten_forward,
)

__all__ = [name for name in dir() if not name.startswith("_")]
