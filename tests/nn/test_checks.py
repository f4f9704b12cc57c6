"""The nn layer's argument checks: one module (nn/functional/_checks.py), one message style
"[<op>: ]<argument> must be <expected>, got <what came>"; float16 never reaches a kernel."""

import numpy as np
import pytest

from minimrcnn.nn import functional as F

X = np.zeros((1, 4, 5, 5), np.float32)


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.group_norm(X.astype(np.float16), 2), TypeError, "group_norm: x must be float32 or float64, got dtype float16"),
    (lambda: F.group_norm(X, 2, weight=np.ones(4, np.float16)), TypeError,
     "group_norm: weight must be float32 or float64, got dtype float16"),
    (lambda: F.group_norm(X, 2, bias=np.ones(3, np.float32)), ValueError,
     r"group_norm: bias must have shape \(4,\) \(one value per channel\), got shape \(3,\)"),
    (lambda: F.batch_norm(X, [0.0] * 4, np.ones(4)), TypeError,
     r"batch_norm: running_mean must be a numpy array of shape \(4,\), got list"),
    (lambda: F.frozen_batch_norm(X, *[np.ones(5)] * 4), ValueError,
     r"frozen_batch_norm: weight must have shape \(4,\) \(one value per channel\), got shape \(5,\)"),
    (lambda: F.frozen_batch_norm(X[0, 0, 0], *[np.ones(5)] * 4), ValueError,
     r"frozen_batch_norm: x must have shape \[N, C, \*\], got shape \(5,\)"),
    (lambda: F.interpolate(X.astype(np.float16), (2, 2)), TypeError, "x must be float32 or float64, got dtype float16"),
    (lambda: F.interpolate(X[0], (2, 2)), ValueError, r"x must be float\[N, C, H, W\] \(4-D\), got shape \(4, 5, 5\)"),
    (lambda: F.interpolate(X, None), ValueError, "size must be an int >= 1 or a pair of them, got None"),
    (lambda: F.interpolate(np.zeros((1, 1, 0, 3)), 2), ValueError,
     r"x must have a non-empty spatial size H, W, got shape \(1, 1, 0, 3\)"),
    (lambda: F.max_pool2d([[1.0]], 2), TypeError, r"x must be a numpy array float\[N, C, H, W\], got list"),
    (lambda: F.relu(X.astype(np.float16)), TypeError, "relu: x must be float32 or float64, got dtype float16"),
])
def test_messages_name_argument_expectation_and_what_came(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_backward_dout_checks():
    out, cache = F.interpolate_forward(X, (2, 3))
    with pytest.raises(ValueError, match=r"interpolate_backward: dout must have the forward output's shape "
                                         r"\(1, 4, 2, 3\), got shape \(1, 4, 3, 2\)"):
        F.interpolate_backward(np.zeros((1, 4, 3, 2), np.float32), cache)
    out, cache = F.group_norm_forward(X, 2)
    with pytest.raises(TypeError, match="group_norm_backward: dout must be float32 or float64, got dtype int64"):
        F.group_norm_backward(np.zeros(X.shape, np.int64), cache)


def test_int_or_pair_arguments():
    # One check reads every int-or-pair argument (stride, padding, dilation, size).
    x, w = np.ones((1, 1, 8, 8)), np.ones((1, 1, 1, 1))
    np.testing.assert_array_equal(F.conv2d(x, w, stride=3), F.conv2d(x, w, stride=(3, 3)))
    assert F.conv2d(x, w, stride=(2, 5)).shape == (1, 1, 4, 2)
    for bad in (0, (1, 2, 3), 1.5, "ab", None):
        with pytest.raises(ValueError, match="stride must be an int >= 1 or a pair of them, got"):
            F.conv2d(x, w, stride=bad)
