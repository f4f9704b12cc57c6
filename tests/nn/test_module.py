"""Module/Parameter contract: state_dict keys and round trip, strict loading, modes,
dtype casts, and layer-level gradient checks through minimrcnn.nn.layers."""

import importlib.util

import numpy as np
import pytest

from minimrcnn import gradcheck
from minimrcnn.nn import init
from minimrcnn.nn.layers import BatchNorm2d, Conv2d, FrozenBatchNorm2d, GroupNorm, ReLU
from minimrcnn.nn.module import Module, ModuleList, Parameter, Sequential

HAS_CONV = importlib.util.find_spec("minimrcnn.nn.functional.conv") is not None


class Head(Module):
    """Own parameter + own buffer + children: exercises torch's key order."""

    def __init__(self):
        super().__init__()
        self.scale = Parameter(np.ones(2, np.float32))
        self.register_buffer("offset", np.zeros(2, np.float32))
        self.norms = ModuleList([GroupNorm(2, 4), BatchNorm2d(4)])
        self.frozen = FrozenBatchNorm2d(4)

    def forward(self, x):
        caches = []
        for layer in (self.norms[0], self.norms[1], self.frozen):
            x, cache = layer.forward(x)
            caches.append(cache)
        return x, caches


def _net():
    return Sequential(BatchNorm2d(4), ReLU(), Head())


# The order torch.nn.Module.state_dict() gives for the same structure: a module's own
# parameters, then its buffers, then its children in registration order.
EXPECTED_KEYS = [
    "0.weight", "0.bias", "0.running_mean", "0.running_var", "0.num_batches_tracked",
    "2.scale", "2.offset",
    "2.norms.0.weight", "2.norms.0.bias",
    "2.norms.1.weight", "2.norms.1.bias", "2.norms.1.running_mean", "2.norms.1.running_var",
    "2.norms.1.num_batches_tracked",
    "2.frozen.weight", "2.frozen.bias", "2.frozen.running_mean", "2.frozen.running_var",
]


def test_state_dict_key_order_matches_torch():
    assert list(_net().state_dict()) == EXPECTED_KEYS


def test_state_dict_key_order_against_real_torch():
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class TorchHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(2))
            self.register_buffer("offset", torch.zeros(2))
            self.norms = nn.ModuleList([nn.GroupNorm(2, 4), nn.BatchNorm2d(4)])
            self.frozen = nn.BatchNorm2d(4)      # stands in for FrozenBatchNorm2d (same first 4 keys)

    keys = [k for k in nn.Sequential(nn.BatchNorm2d(4), nn.ReLU(), TorchHead()).state_dict()
            if k != "2.frozen.num_batches_tracked"]   # FrozenBatchNorm2d has no counter
    assert keys == EXPECTED_KEYS


def test_state_dict_round_trip_including_buffers():
    rng = np.random.default_rng(0)
    source = _net()
    x = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    source.forward(x)                                  # BatchNorm updates running stats and the counter
    source.forward(x)
    state = source.state_dict()
    assert int(state["0.num_batches_tracked"]) == 2
    assert state["0.num_batches_tracked"].dtype == np.int64
    target = _net()
    missing, unexpected = target.load_state_dict(state)
    assert missing == [] and unexpected == []
    for key, value in target.state_dict().items():
        np.testing.assert_array_equal(value, state[key], err_msg=key)
        assert value.dtype == state[key].dtype
    # state_dict returns copies: editing it does not touch the module.
    state["0.running_mean"][...] = 123
    assert not np.any(source.state_dict()["0.running_mean"] == 123)


def test_plain_assignment_keeps_a_buffer_registered_as_torch_does():
    # torch: `self.running_mean = x` replaces the buffer's value; it stays in state_dict.
    bn = BatchNorm2d(3)
    new_mean = np.arange(3, dtype=np.float32)
    bn.running_mean = new_mean
    state = bn.state_dict()
    assert list(state) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    np.testing.assert_array_equal(state["running_mean"], new_mean)
    assert dict(bn.named_buffers())["running_mean"] is new_mean
    # ... and loading writes through the same registry.
    state["running_mean"] = np.full(3, 7, np.float32)
    bn.load_state_dict(state)
    np.testing.assert_array_equal(bn.running_mean, 7)


def test_assigning_a_non_array_over_a_registered_name_is_a_type_error():
    head = Head()
    with pytest.raises(TypeError, match="buffer 'offset' of Head .a numpy array expected"):
        head.offset = [0.0, 0.0]
    with pytest.raises(TypeError, match="parameter 'scale' of Head .a Parameter; to change its value assign to .data"):
        head.scale = np.zeros(2, np.float32)
    with pytest.raises(TypeError, match="child module 'frozen' of Head"):
        head.frozen = None
    assert list(head.state_dict()) == [k[2:] for k in EXPECTED_KEYS if k.startswith("2.")]
    with pytest.raises(KeyError, match="'scale' already exists"):
        head.register_buffer("scale", np.zeros(2))
    # A Parameter or a Module moves the name to its own registry, as in torch.
    head.offset = Parameter(np.zeros(2, np.float32))
    assert "offset" in dict(head.named_parameters()) and "offset" not in dict(head.named_buffers())


def test_strict_load_lists_every_problem_in_one_error():
    net = _net()
    state = net.state_dict()
    del state["0.weight"]
    del state["2.frozen.running_var"]
    state["2.extra"] = np.zeros(1)
    state["2.norms.0.bias"] = np.zeros(5, np.float32)
    before = net.state_dict()
    with pytest.raises(ValueError) as info:
        net.load_state_dict(state)
    message = str(info.value)
    for fragment in ("0.weight", "2.frozen.running_var", "2.extra", "2.norms.0.bias: expected shape (4,), got (5,)"):
        assert fragment in message
    for key, value in net.state_dict().items():        # nothing was loaded
        np.testing.assert_array_equal(value, before[key])
    # Non-strict: missing/unexpected are reported, not raised.
    del state["2.norms.0.bias"]
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert set(missing) == {"0.weight", "2.frozen.running_var", "2.norms.0.bias"} and unexpected == ["2.extra"]


def test_zero_grad_train_eval_and_astype():
    net = _net()
    for p in net.parameters():
        p.grad += 1
    net.zero_grad()
    assert all(np.all(p.grad == 0) for p in net.parameters())
    net.eval()
    assert all(not m.training for _, m in net.named_modules())
    net.train()
    assert all(m.training for _, m in net.named_modules())
    net.astype(np.float64)
    assert all(p.data.dtype == np.float64 and p.grad.dtype == np.float64 for p in net.parameters())
    buffers = dict(net.named_buffers())
    assert buffers["2.frozen.running_var"].dtype == np.float64
    assert buffers["0.num_batches_tracked"].dtype == np.int64       # integers stay integers


def test_batch_norm_layer_eval_does_not_update_running_stats():
    bn = BatchNorm2d(3).astype(np.float64)
    x = np.random.default_rng(1).standard_normal((2, 3, 2, 2)) + 5
    bn.eval()
    bn.forward(x)
    np.testing.assert_array_equal(bn.running_mean, 0)
    assert int(bn.num_batches_tracked) == 0
    bn.train()
    bn.forward(x)
    np.testing.assert_allclose(bn.running_mean, 0.1 * x.mean(axis=(0, 2, 3)))
    assert int(bn.num_batches_tracked) == 1


# -- layer gradient checks ---------------------------------------------------------
def check_layer_gradients(layer, x, seed=0, tol=1e-6):
    errors = gradcheck.check_layer_gradients(layer, x, seed)
    assert set(errors) == {"x"} | {name for name, p in layer.named_parameters() if p.requires_grad}
    bad = {name: err for name, err in errors.items() if not err < tol}
    assert not bad, bad


def _randomise(layer, rng):
    for p in layer.parameters():
        p.data = rng.standard_normal(p.shape)
        p.grad = np.zeros_like(p.data)
    return layer


@pytest.mark.parametrize("seed", [0, 1])
def test_group_norm_layer_gradients(seed):
    rng = np.random.default_rng(seed)
    layer = _randomise(GroupNorm(2, 4).astype(np.float64), rng)
    check_layer_gradients(layer, rng.standard_normal((2, 4, 3, 3)), seed)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_layer_gradients(training):
    rng = np.random.default_rng(2)
    layer = _randomise(BatchNorm2d(3).astype(np.float64), rng)
    layer.running_mean = rng.standard_normal(3)
    layer.running_var = rng.random(3) + 0.5
    layer.train(training)
    check_layer_gradients(layer, rng.standard_normal((2, 3, 2, 3)))


def test_frozen_batch_norm_layer_gradients_and_no_parameters():
    rng = np.random.default_rng(3)
    layer = FrozenBatchNorm2d(3).astype(np.float64)
    for name in ("weight", "bias", "running_mean"):
        setattr(layer, name, rng.standard_normal(3))
    layer.running_var = rng.random(3) + 0.5
    assert layer.parameters() == []
    check_layer_gradients(layer, rng.standard_normal((2, 3, 2, 2)))


def test_relu_layer_gradient():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 4))
    x[np.abs(x) < 0.01] = 0.5
    check_layer_gradients(ReLU(), x)


def test_sequential_of_norm_layers_gradients():
    rng = np.random.default_rng(5)
    net = Sequential(_randomise(GroupNorm(2, 4), rng), ReLU(), _randomise(BatchNorm2d(4), rng)).astype(np.float64)
    check_layer_gradients(net, rng.standard_normal((2, 4, 3, 3)) + 0.3)


@pytest.mark.skipif(not HAS_CONV, reason="minimrcnn.nn.functional.conv is not written yet")
def test_conv_linear_pool_layer_gradients():
    from minimrcnn.nn.layers import Conv2d, ConvTranspose2d, Linear, MaxPool2d
    rng = np.random.default_rng(6)
    check_layer_gradients(Conv2d(2, 3, 3, stride=2, padding=1).astype(np.float64), rng.standard_normal((2, 2, 5, 5)))
    check_layer_gradients(ConvTranspose2d(2, 3, 2, stride=2).astype(np.float64), rng.standard_normal((1, 2, 3, 3)))
    check_layer_gradients(Linear(4, 3).astype(np.float64), rng.standard_normal((5, 4)))
    # Distinct values (a permutation) so no pooling window has a tie near its maximum.
    x = rng.permutation(2 * 2 * 6 * 6).reshape(2, 2, 6, 6) / 10.0
    check_layer_gradients(MaxPool2d(3, stride=2, padding=1), x)


def test_as_rng_is_the_one_default_for_initialisation():
    given = np.random.default_rng(5)
    assert init.as_rng(given) is given
    assert init.as_rng(None).random() == np.random.default_rng(0).random()
    # A layer built without an rng is deterministic: the same weights on every build.
    np.testing.assert_array_equal(Conv2d(2, 3, 3).weight.data, Conv2d(2, 3, 3).weight.data)
