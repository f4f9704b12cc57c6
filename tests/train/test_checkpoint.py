import os

import numpy as np
import pytest

from minimrcnn.train import checkpoint as ckpt


def _state():
    return {"a.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "a.bias": np.ones(2, np.float32)}


def test_round_trip_without_pickle(tmp_path):
    path = str(tmp_path / "c.npz")
    ckpt.save_checkpoint(path, _state(), {"0": np.full(3, 2.0), "lr": np.array(0.01)}, 7, {"seed": 3})
    loaded = ckpt.load_checkpoint(path)
    assert loaded["iteration"] == 7
    assert loaded["config"] == {"seed": 3}
    np.testing.assert_array_equal(loaded["model"]["a.weight"], _state()["a.weight"])
    np.testing.assert_array_equal(loaded["optim"]["0"], np.full(3, 2.0))
    # Every entry is a plain array: loading with allow_pickle=False must work.
    with np.load(path, allow_pickle=False) as data:
        assert "meta/format" in data.files


def test_crash_during_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / "c.npz")
    ckpt.save_checkpoint(path, _state(), {}, 1, {})

    def exploding_savez(f, **arrays):
        f.write(b"partial garbage")
        raise KeyboardInterrupt("simulated crash")

    import minimrcnn.io

    monkeypatch.setattr(minimrcnn.io.np, "savez", exploding_savez)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(path, _state(), {}, 2, {})
    monkeypatch.undo()
    assert ckpt.load_checkpoint(path)["iteration"] == 1
    assert [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")] == []


def test_rejects_files_that_are_not_checkpoints(tmp_path):
    other = str(tmp_path / "other.npz")
    np.savez(other, x=np.zeros(2))
    with pytest.raises(ValueError, match="not a minimrcnn checkpoint"):
        ckpt.load_checkpoint(other)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable .npz"):
        ckpt.load_checkpoint(str(garbage))
    with pytest.raises(FileNotFoundError):
        ckpt.load_checkpoint(str(tmp_path / "missing.npz"))


def test_object_arrays_are_refused(tmp_path):
    path = str(tmp_path / "pickled.npz")
    np.savez(path, **{"meta/format": np.array(ckpt.FORMAT), "x": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError, match="not a readable"):
        ckpt.load_checkpoint(path)


def test_truncated_checkpoint_names_the_file(tmp_path):
    path = str(tmp_path / "c.npz")
    ckpt.save_checkpoint(path, _state(), {}, 3, {"seed": 1})
    assert ckpt.load_checkpoint_config(path) == {"seed": 1}
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    for reader in (ckpt.load_checkpoint, ckpt.load_checkpoint_config):
        with pytest.raises(ValueError, match="not a readable .npz checkpoint") as err:
            reader(path)
        assert path in str(err.value)
