"""Weights IO: .npz round trip, legacy torchvision key remapping, errors, FrozenBN/BN interplay."""

import os

import numpy as np
import pytest

from minimrcnn.models import load_weights, maskrcnn_shapes, save_weights
from minimrcnn.models.weights import convert_npz_to_torch, convert_torch_to_npz, remap_legacy_keys


def test_round_trip_is_exact(tmp_path):
    a, b = maskrcnn_shapes(seed=0), maskrcnn_shapes(seed=1)
    path = str(tmp_path / "w.npz")
    save_weights(a, path)
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp")]  # temp file replaced
    with np.load(path, allow_pickle=False) as data:
        assert list(data.files) == list(a.state_dict())
        assert all(data[k].dtype == np.float32 for k in data.files)
    load_weights(b, path)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(va, vb)


def test_float64_model_saves_float32(tmp_path):
    model = maskrcnn_shapes().astype(np.float64)
    path = str(tmp_path / "w.npz")
    save_weights(model, path)
    with np.load(path) as data:
        assert data["rpn.head.conv.0.0.weight"].dtype == np.float32
    load_weights(model, path)
    assert model.rpn.head.conv[0][0].weight.data.dtype == np.float64  # the model keeps its dtype


def test_legacy_keys_are_remapped():
    legacy = {
        "backbone.fpn.inner_blocks.2.weight": 1, "backbone.fpn.layer_blocks.0.bias": 2,
        "rpn.head.conv.weight": 3, "rpn.head.conv.bias": 4,
        "roi_heads.mask_head.mask_fcn1.weight": 5, "roi_heads.mask_head.mask_fcn4.bias": 6,
        "rpn.head.cls_logits.weight": 7, "backbone.fpn.inner_blocks.3.0.weight": 8,
    }
    assert list(remap_legacy_keys(legacy)) == [
        "backbone.fpn.inner_blocks.2.0.weight", "backbone.fpn.layer_blocks.0.0.bias",
        "rpn.head.conv.0.0.weight", "rpn.head.conv.0.0.bias",
        "roi_heads.mask_head.0.0.weight", "roi_heads.mask_head.3.0.bias",
        "rpn.head.cls_logits.weight", "backbone.fpn.inner_blocks.3.0.weight"]


def test_load_legacy_file(tmp_path):
    a, b = maskrcnn_shapes(seed=0), maskrcnn_shapes(seed=1)
    state = a.state_dict()
    legacy = {}
    for k, v in state.items():
        k = k.replace("fpn.inner_blocks.1.0.", "fpn.inner_blocks.1.").replace("rpn.head.conv.0.0.", "rpn.head.conv.")
        k = k.replace("mask_head.2.0.", "mask_head.mask_fcn3.")
        legacy[k] = v
    path = str(tmp_path / "legacy.npz")
    np.savez(path, **legacy)
    load_weights(b, path)
    np.testing.assert_array_equal(b.roi_heads.mask_head[2][0].weight.data, a.roi_heads.mask_head[2][0].weight.data)
    np.testing.assert_array_equal(b.rpn.head.conv[0][0].bias.data, a.rpn.head.conv[0][0].bias.data)


def test_bad_keys_are_listed_and_nothing_loads(tmp_path):
    a, b = maskrcnn_shapes(seed=0), maskrcnn_shapes(seed=1)
    state = a.state_dict()
    del state["rpn.head.bbox_pred.bias"]
    state["rpn.head.extra.weight"] = np.zeros(3, np.float32)
    state["roi_heads.box_head.fc7.bias"] = np.zeros(5, np.float32)
    path = str(tmp_path / "bad.npz")
    np.savez(path, **state)
    before = b.rpn.head.cls_logits.weight.data.copy()
    with pytest.raises(ValueError) as err:
        load_weights(b, path)
    msg = str(err.value)
    assert "rpn.head.bbox_pred.bias" in msg and "rpn.head.extra.weight" in msg and "fc7.bias" in msg
    assert "bad.npz" in msg
    np.testing.assert_array_equal(b.rpn.head.cls_logits.weight.data, before)


def test_num_batches_tracked_dropped_for_frozen_bn_and_added_for_bn(tmp_path):
    from minimrcnn.models.presets import assemble_mask_rcnn
    from minimrcnn.models.resnet import Bottleneck, ResNet

    def small(norm):
        rng = np.random.default_rng(0)
        body = ResNet(Bottleneck, [1, 1, 1, 1], widths=(4, 4, 4, 4), norm=norm, rng=rng, num_groups=2)
        return assemble_mask_rcnn(body, body.out_channels_list, 8, (8, 16, 32, 64, 128), {"training": 10, "testing": 10},
                                  {"training": 10, "testing": 10}, 8, 8, (8, 8, 8, 8), 3, 32, 32, 0, rng)
    frozen, bn = small("frozen_bn"), small("bn")
    assert len(bn.state_dict()) == len(frozen.state_dict()) + 17  # one counter per BN layer
    path_bn, path_frozen = str(tmp_path / "bn.npz"), str(tmp_path / "frozen.npz")
    save_weights(bn, path_bn)
    save_weights(frozen, path_frozen)
    load_weights(frozen, path_bn)     # counters ignored
    load_weights(bn, path_frozen)     # counters start at 0
    assert bn.backbone.body.bn1.num_batches_tracked == 0


def test_torch_conversion_round_trip(tmp_path):
    pytest.importorskip("torch")
    a, b = maskrcnn_shapes(seed=0), maskrcnn_shapes(seed=1)
    npz, pth, back = str(tmp_path / "a.npz"), str(tmp_path / "a.pth"), str(tmp_path / "b.npz")
    save_weights(a, npz)
    keys = convert_npz_to_torch(npz, pth)
    assert len(keys) == 102
    convert_torch_to_npz(pth, back)
    load_weights(b, back)
    np.testing.assert_array_equal(b.backbone.body.conv1.weight.data, a.backbone.body.conv1.weight.data)


def test_conversion_without_torch_says_so(tmp_path, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch":
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(ImportError, match="PyTorch"):
        convert_torch_to_npz(str(tmp_path / "x.pth"), str(tmp_path / "x.npz"))


# -- unreadable files: every error names the file, nothing is loaded ----------------------
def _truncated(tmp_path):
    path = str(tmp_path / "w.npz")
    save_weights(maskrcnn_shapes(), path)
    data = open(path, "rb").read()
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(data[: len(data) // 2])
    return str(bad)


@pytest.mark.parametrize("make, message", [
    (_truncated, "is not a readable .npz weights file"),
    (lambda tmp: (tmp / "garbage.npz").write_bytes(b"not a zip") and str(tmp / "garbage.npz"),
     "is not a readable .npz weights file"),
    (lambda tmp: np.savez(str(tmp / "obj.npz"), w=np.array([{"a": 1}], dtype=object)) or str(tmp / "obj.npz"),
     r"entry 'w' is an object \(pickled\) array"),
])
def test_unreadable_weights_files_name_the_file(tmp_path, make, message):
    path = make(tmp_path)
    model = maskrcnn_shapes(seed=0)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=message) as err:
        load_weights(model, path)
    assert path in str(err.value)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
    with pytest.raises(FileNotFoundError, match="weights file not found: .*missing.npz"):
        load_weights(model, str(tmp_path / "missing.npz"))


# -- all or nothing, summarised messages, non-numeric arrays --------------------------------
def _assert_unchanged(model, before):
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


@pytest.mark.parametrize("bad_value", [np.array(["a", "b"]), np.array([b"xy"]), np.array([1 + 2j], np.complex64)])
def test_a_non_numeric_array_is_named_and_nothing_loads(tmp_path, bad_value):
    """The string array sits in the middle of the file: before, the arrays ahead of it were loaded."""
    a, b = maskrcnn_shapes(seed=0), maskrcnn_shapes(seed=1)
    state = a.state_dict()
    keys = list(state)
    bad_key = keys[len(keys) // 2]
    if bad_value.dtype.kind != "c":
        state[bad_key] = bad_value
    else:
        state[bad_key] = np.zeros(state[bad_key].shape, np.complex64)
    path = str(tmp_path / "strings.npz")
    np.savez(path, **state)
    before = {k: v.copy() for k, v in b.state_dict().items()}
    with pytest.raises(ValueError) as err:
        load_weights(b, path)
    msg = str(err.value)
    assert "strings.npz" in msg and f"{bad_key}: expected real numbers, got dtype {state[bad_key].dtype}" in msg
    assert "nothing was loaded" in msg
    _assert_unchanged(b, before)


def test_load_state_dict_is_all_or_nothing_on_every_failure():
    model = maskrcnn_shapes(seed=1)
    good = maskrcnn_shapes(seed=0).state_dict()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    keys = list(good)
    for mutate in (lambda s: s.__setitem__(keys[-1], np.zeros(3, np.float32)),          # last key mis-shaped
                   lambda s: s.__setitem__(keys[-1], np.array("text")),                 # last key a string
                   lambda s: s.pop(keys[-1]),                                           # last key missing
                   lambda s: s.__setitem__("extra.weight", np.zeros(1, np.float32))):  # one key too many
        state = dict(good)
        mutate(state)
        with pytest.raises(ValueError, match="nothing was loaded"):
            model.load_state_dict(state)
        _assert_unchanged(model, before)
    with pytest.raises(ValueError, match="non-numeric arrays"):       # strict=False still refuses strings
        model.load_state_dict({keys[0]: np.full(good[keys[0]].shape, "x")}, strict=False)
    _assert_unchanged(model, before)


def test_long_key_lists_are_summarised(tmp_path):
    """Weights of another architecture: hundreds of unexpected keys, most shapes wrong, under 1,000 characters."""
    model = maskrcnn_shapes(seed=0)
    state = {}
    for i, (key, value) in enumerate(model.state_dict().items()):
        if i % 3 == 0:
            state[key] = np.zeros(value.shape + (2,), np.float32)             # mis-shaped
        elif i % 3 == 1:
            state[key.replace("layer", "stage")] = value                         # renamed: missing + unexpected
        else:
            state[key] = value
    for i in range(400):
        state[f"backbone.body.layer4.{i}.conv{i % 3 + 1}.weight"] = np.zeros(1, np.float32)
    path = str(tmp_path / "other_architecture.npz")
    np.savez(path, **state)
    with pytest.raises(ValueError) as err:
        load_weights(model, path)
    msg = str(err.value)
    assert len(msg) < 1000, (len(msg), msg)
    assert "other_architecture.npz" in msg and "nothing was loaded" in msg
    missing = [k for k in model.state_dict() if k not in state]
    unexpected = [k for k in state if k not in model.state_dict()]
    assert f"missing keys ({len(missing)}): {missing[0]}, " in msg and f"and {len(missing) - 3} more" in msg
    assert f"unexpected keys ({len(unexpected)}): " in msg and f"and {len(unexpected) - 3} more" in msg
    assert "shape mismatches (34): " in msg


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused(tmp_path, bad):
    """NaN weights used to load, and the model then silently drew 0 detections."""
    a, b = maskrcnn_shapes(seed=0), maskrcnn_shapes(seed=1)
    state = a.state_dict()
    state["roi_heads.box_predictor.cls_score.weight"][0, :2] = bad
    path = str(tmp_path / "nan.npz")
    np.savez(path, **state)
    before = {k: v.copy() for k, v in b.state_dict().items()}
    with pytest.raises(ValueError, match=r"(?s)nan\.npz.*non-finite arrays \(1\): roi_heads\.box_predictor\.cls_score"
                                         r"\.weight: 2 of 1024 values NaN or infinite"):
        load_weights(b, path)
    _assert_unchanged(b, before)


@pytest.mark.parametrize("num_classes", [0, 1, -3, 2.5, "4", True, None])
def test_presets_refuse_a_class_count_below_two(num_classes):
    from minimrcnn.models import maskrcnn_resnet50_fpn
    for preset in (maskrcnn_shapes, maskrcnn_resnet50_fpn):
        with pytest.raises(ValueError, match=r"num_classes must be an integer >= 2 \(background plus at least one "
                                             rf"class\), got {num_classes!r}"):
            preset(num_classes=num_classes)


@pytest.mark.parametrize("content,message", [
    ({"model": {"a.weight": "text"}, "epoch": 3}, r"entries that are not tensors: \(1\): a\.weight \(str\)"),
    ({"epoch": 3, "lr": 0.1}, r"entries that are not tensors: \(2\): epoch \(int\), lr \(float\)"),
    ([1, 2], "holds a list, not a state_dict"),
    ({}, r"holds a dict \(empty\), not a state_dict"),
])
def test_torch_files_that_are_not_state_dicts_are_named(tmp_path, content, message):
    torch = pytest.importorskip("torch")
    path = str(tmp_path / "odd.pth")
    torch.save(content, path)
    with pytest.raises(ValueError, match=rf"odd\.pth .*{message}"):
        convert_torch_to_npz(path, str(tmp_path / "out.npz"))
    assert not os.path.exists(tmp_path / "out.npz")


def test_npz_with_strings_does_not_become_a_torch_file(tmp_path):
    pytest.importorskip("torch")
    path = str(tmp_path / "s.npz")
    np.savez(path, w=np.zeros(2, np.float32), names=np.array(["a", "b"]))
    with pytest.raises(ValueError, match=r"s\.npz: arrays that are not real numbers cannot become tensors: "
                                         r"\(1\): names \(dtype <U1\)"):
        convert_npz_to_torch(path, str(tmp_path / "out.pth"))
    assert not os.path.exists(tmp_path / "out.pth")
