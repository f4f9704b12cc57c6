"""Parity with torch (optional): norms, activations, losses forward + backward, and SGD."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from minimrcnn.nn.functional import activation, loss, norm  # noqa: E402
from minimrcnn.nn.module import Parameter  # noqa: E402
from minimrcnn.optim import SGD  # noqa: E402

TOL = {np.float64: 1e-5, np.float32: 1e-4}
DTYPES = [np.float64, np.float32]


def _t(a, grad=False):
    return torch.from_numpy(np.array(a, order="C", copy=True)).requires_grad_(grad)   # keeps 0-d as 0-d


def _close(ours, theirs, dtype):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    np.testing.assert_allclose(ours, theirs, rtol=TOL[dtype], atol=TOL[dtype])


def _grads_of(out_t, dout, *tensors):
    out_t.backward(_t(dout))
    return [tensor.grad for tensor in tensors]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,groups", [((2, 8, 5, 5), 4), ((2, 8, 5, 5), 8), ((3, 6), 2)])
def test_group_norm_parity(dtype, shape, groups):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype) * 2 + 1
    w, b = rng.standard_normal(shape[1]).astype(dtype), rng.standard_normal(shape[1]).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    out, cache = norm.group_norm_forward(x, groups, w, b)
    grads = norm.group_norm_backward(dout, cache)
    xt, wt, bt = _t(x, True), _t(w, True), _t(b, True)
    out_t = torch.nn.functional.group_norm(xt, groups, wt, bt, 1e-5)
    _close(out, out_t, dtype)
    for ours, theirs in zip(grads, _grads_of(out_t, dout, xt, wt, bt)):
        _close(ours, theirs, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_parity(dtype, training):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 4, 4)).astype(dtype) + 0.5
    w, b = rng.standard_normal(3).astype(dtype), rng.standard_normal(3).astype(dtype)
    rm, rv = rng.standard_normal(3).astype(dtype), (rng.random(3) + 0.5).astype(dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    out, cache = norm.batch_norm_forward(x, rm, rv, w, b, training=training, momentum=0.1, eps=1e-5)
    grads = norm.batch_norm_backward(dout, cache)
    rm_t, rv_t = _t(rm.copy()), _t(rv.copy())        # torch updates these in place
    xt, wt, bt = _t(x, True), _t(w, True), _t(b, True)
    out_t = torch.nn.functional.batch_norm(xt, rm_t, rv_t, wt, bt, training=training, momentum=0.1, eps=1e-5)
    _close(out, out_t, dtype)
    _close(cache.new_running_mean, rm_t, dtype)
    _close(cache.new_running_var, rv_t, dtype)
    for ours, theirs in zip(grads, _grads_of(out_t, dout, xt, wt, bt)):
        _close(ours, theirs, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_frozen_batch_norm_parity(dtype):
    from torchvision.ops.misc import FrozenBatchNorm2d
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4, 4)).astype(dtype)
    arrays = {k: rng.standard_normal(3).astype(dtype) for k in ("weight", "bias", "running_mean")}
    arrays["running_var"] = (rng.random(3) + 0.5).astype(dtype)
    layer = FrozenBatchNorm2d(3).to(torch.float64 if dtype == np.float64 else torch.float32)
    layer.load_state_dict({k: _t(v) for k, v in arrays.items()})
    dout = rng.standard_normal(x.shape).astype(dtype)
    out, cache = norm.frozen_batch_norm_forward(x, arrays["weight"], arrays["bias"], arrays["running_mean"],
                                                arrays["running_var"])
    xt = _t(x, True)
    out_t = layer(xt)
    _close(out, out_t, dtype)
    _close(norm.frozen_batch_norm_backward(dout, cache), _grads_of(out_t, dout, xt)[0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_parity(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 5)).astype(dtype) * 4
    dout = rng.standard_normal(x.shape).astype(dtype)
    for ours_fwd, ours_bwd, theirs in ((activation.relu_forward, activation.relu_backward, torch.relu),
                                       (activation.sigmoid_forward, activation.sigmoid_backward, torch.sigmoid),
                                       (lambda a: activation.softmax_forward(a, 1), activation.softmax_backward,
                                        lambda t: torch.softmax(t, 1))):
        out, cache = ours_fwd(x)
        xt = _t(x, True)
        out_t = theirs(xt)
        _close(out, out_t, dtype)
        _close(ours_bwd(dout, cache), _grads_of(out_t, dout, xt)[0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_parity(dtype):
    rng = np.random.default_rng(4)
    logits = (rng.standard_normal((16, 5)) * 3).astype(dtype)
    target = rng.integers(0, 5, 16)
    value, cache = loss.cross_entropy_forward(logits, target)
    xt = _t(logits, True)
    loss_t = torch.nn.functional.cross_entropy(xt, torch.from_numpy(target))
    _close(value, loss_t, dtype)
    loss_t.backward(torch.tensor(0.7, dtype=loss_t.dtype))
    _close(loss.cross_entropy_backward(0.7, cache), xt.grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_and_smooth_l1_parity(dtype, reduction):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((4, 7, 7)) * 3).astype(dtype)
    target = rng.random(x.shape).astype(dtype)
    dloss = rng.standard_normal(x.shape).astype(dtype) if reduction == "none" else np.array(1.3, dtype)
    cases = [
        (loss.binary_cross_entropy_with_logits_forward, loss.binary_cross_entropy_with_logits_backward, {},
         torch.nn.functional.binary_cross_entropy_with_logits),
        (loss.smooth_l1_loss_forward, loss.smooth_l1_loss_backward, {"beta": 1 / 9},
         torch.nn.functional.smooth_l1_loss),
    ]
    for fwd, bwd, kwargs, theirs in cases:
        value, cache = fwd(x, target, reduction=reduction, **kwargs)
        xt = _t(x, True)
        value_t = theirs(xt, _t(target), reduction=reduction, **kwargs)
        _close(value, value_t, dtype)
        value_t.backward(_t(dloss))
        _close(bwd(dloss, cache), xt.grad, dtype)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_matches_torch(nesterov):
    rng = np.random.default_rng(6)
    values = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    ours = [Parameter(v.copy()) for v in values]
    theirs = [torch.nn.Parameter(_t(v.copy())) for v in values]
    opt = SGD(ours, lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=nesterov)
    opt_t = torch.optim.SGD(theirs, lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=nesterov)
    for step in range(4):
        grads = [rng.standard_normal(v.shape) for v in values]
        for p, p_t, g in zip(ours, theirs, grads):
            p.grad[...] = g
            p_t.grad = _t(g.copy())
        if step == 2:                              # a learning-rate change mid-run
            opt.lr = 0.01
            opt_t.param_groups[0]["lr"] = 0.01
        opt.step()
        opt_t.step()
    for p, p_t in zip(ours, theirs):
        np.testing.assert_allclose(p.data, p_t.detach().numpy(), rtol=1e-12, atol=1e-12)
