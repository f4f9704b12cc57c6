"""SGD (torch semantics), WarmupMultiStepLR, clip_grad_norm."""

import numpy as np
import pytest

from minimrcnn.nn.module import Parameter
from minimrcnn.optim import SGD, WarmupMultiStepLR, clip_grad_norm


def _param(values, grad, requires_grad=True):
    p = Parameter(np.array(values, dtype=np.float64), requires_grad=requires_grad)
    p.grad[...] = grad
    return p


def test_sgd_plain_step():
    p = _param([1.0, 2.0], [0.5, -1.0])
    SGD([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [0.95, 2.1])


def test_sgd_momentum_and_weight_decay_by_hand():
    p = _param([1.0], [0.5])
    opt = SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    opt.step()   # d = 0.5 + 0.01 * 1 = 0.51; buf = 0.51; p = 1 - 0.051 = 0.949
    np.testing.assert_allclose(p.data, [0.949])
    opt.step()   # d = 0.5 + 0.00949 = 0.50949; buf = 0.9 * 0.51 + 0.50949 = 0.96849
    np.testing.assert_allclose(p.data, [0.949 - 0.1 * 0.96849])


def test_sgd_nesterov_by_hand():
    p = _param([1.0], [1.0])
    opt = SGD([p], lr=0.1, momentum=0.5, nesterov=True)
    opt.step()   # buf = 1; d = 1 + 0.5 * 1 = 1.5
    np.testing.assert_allclose(p.data, [0.85])
    opt.step()   # buf = 0.5 + 1 = 1.5; d = 1 + 0.75 = 1.75
    np.testing.assert_allclose(p.data, [0.85 - 0.175])


def test_sgd_skips_frozen_and_zero_grad():
    frozen = _param([1.0], [1.0], requires_grad=False)
    live = _param([1.0], [1.0])
    opt = SGD([frozen, live], lr=0.5, momentum=0.9)
    opt.step()
    np.testing.assert_array_equal(frozen.data, [1.0])
    np.testing.assert_allclose(live.data, [0.5])
    assert list(opt.momentum_buffers) == [1]
    opt.zero_grad()
    assert np.all(live.grad == 0) and np.all(frozen.grad == 0)


def test_sgd_float32_params_stay_float32():
    p = Parameter(np.ones(3, np.float32))
    p.grad[...] = 1
    SGD([p], lr=0.1, momentum=0.9).step()
    assert p.data.dtype == np.float32


def test_sgd_state_dict_round_trip_continues_identically():
    rng = np.random.default_rng(0)
    params_a = [_param(rng.standard_normal(3), rng.standard_normal(3)) for _ in range(2)]
    params_b = [_param(p.data.copy(), p.grad.copy()) for p in params_a]
    opt_a = SGD(params_a, lr=0.1, momentum=0.9, weight_decay=1e-4)
    opt_a.step()
    state = {k: np.asarray(v) for k, v in opt_a.state_dict().items()}   # as read back from an .npz
    for pa, pb in zip(params_a, params_b):
        pb.data[...] = pa.data
    opt_b = SGD(params_b, lr=1.0)
    opt_b.load_state_dict(state)
    assert opt_b.lr == 0.1 and opt_b.momentum == 0.9 and opt_b.weight_decay == 1e-4
    opt_a.step()
    opt_b.step()
    for pa, pb in zip(params_a, params_b):
        np.testing.assert_array_equal(pa.data, pb.data)


def test_sgd_load_state_dict_errors_list_every_problem():
    opt = SGD([_param([1.0, 2.0], 0.0)], lr=0.1, momentum=0.9)
    bad = {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "nesterov": False, "num_params": 2,
           "momentum_buffer.0": np.zeros(3), "momentum_buffer.5": np.zeros(2)}
    with pytest.raises(ValueError) as info:
        opt.load_state_dict(bad)
    message = str(info.value)
    assert "num_params: expected 1, got 2" in message
    assert "momentum_buffer.0: expected shape (2,), got (3,)" in message
    assert "momentum_buffer.5: no parameter with index 5" in message
    with pytest.raises(ValueError, match="missing key 'lr'"):
        opt.load_state_dict({})


def test_sgd_bad_arguments():
    with pytest.raises(TypeError, match=r"params\[0\] must be a Parameter"):
        SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(ValueError, match="nesterov"):
        SGD([], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="lr"):
        SGD([], lr=-1.0)


def test_warmup_multistep_values():
    opt = SGD([_param([0.0], 0.0)], lr=0.02)
    sched = WarmupMultiStepLR(opt, milestones=[150, 200], gamma=0.1, warmup_iters=100, warmup_factor=0.001)
    assert opt.lr == pytest.approx(0.02 * 0.001)                 # set at construction for iteration 0
    assert sched.get_lr(50) == pytest.approx(0.02 * (0.001 * 0.5 + 0.5))
    assert sched.get_lr(100) == pytest.approx(0.02)
    assert sched.get_lr(149) == pytest.approx(0.02)
    assert sched.get_lr(150) == pytest.approx(0.002)
    assert sched.get_lr(250) == pytest.approx(0.0002)
    for _ in range(150):
        sched.step()
    assert opt.lr == pytest.approx(0.002)


def test_warmup_multistep_state_dict_round_trip():
    opt = SGD([_param([0.0], 0.0)], lr=0.02)
    sched = WarmupMultiStepLR(opt, milestones=[5], warmup_iters=3)
    for _ in range(4):
        sched.step()
    opt2 = SGD([_param([0.0], 0.0)], lr=0.02)
    sched2 = WarmupMultiStepLR(opt2, milestones=[1], warmup_iters=0)
    sched2.load_state_dict({k: np.asarray(v) for k, v in sched.state_dict().items()})
    assert opt2.lr == opt.lr and sched2.last_iter == 4
    sched.step()
    sched2.step()
    assert opt2.lr == pytest.approx(opt.lr) == pytest.approx(0.002)
    with pytest.raises(ValueError, match="missing keys"):
        sched2.load_state_dict({})
    with pytest.raises(ValueError, match="increasing"):
        WarmupMultiStepLR(opt, milestones=[5, 2])


def test_clip_grad_norm():
    a, b = _param([0.0, 0.0], [3.0, 0.0]), _param([0.0], [4.0])
    frozen = _param([0.0], [100.0], requires_grad=False)
    total = clip_grad_norm([a, b, frozen], max_norm=1.0)
    assert total == pytest.approx(5.0)
    np.testing.assert_allclose(a.grad, [3.0 / (5 + 1e-6), 0.0])
    np.testing.assert_allclose(b.grad, [4.0 / (5 + 1e-6)])
    np.testing.assert_array_equal(frozen.grad, [100.0])
    # Below the threshold nothing changes.
    assert clip_grad_norm([a, b], max_norm=10.0) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(b.grad, [4.0 / (5 + 1e-6)])
