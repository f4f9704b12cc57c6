"""Checkpoints as plain ``.npz`` files: written atomically, read without pickle.

Layout of a checkpoint (every entry a NumPy array, so ``np.load(..., allow_pickle=False)``
reads it):

    model/<state_dict key>      the model's weights, torchvision key names
    optim/<name>                the optimizer's state (momentum buffers, lr, ...)
    meta/iteration              int64[]: iterations completed
    meta/dataset_length         int64[]: images in the training folder (-1: the generated stream)
    meta/train_seconds          float64[]: seconds spent in training steps so far, over every resume
    meta/config                 str[]: the training config as JSON
    meta/format                 str[]: "minimrcnn-checkpoint-1"

The random state of a run is not stored: every random draw of iteration t comes from a
generator seeded with (seed, t), so (config, iteration) determine it exactly.

Writing goes to a temporary file in the same folder, flushed to disk, then renamed over
the target with ``os.replace`` (atomic on POSIX): a crash mid-write leaves the previous
checkpoint intact.
"""

from __future__ import annotations

import json
from typing import Mapping

import numpy as np

from minimrcnn.io import atomic_savez, read_npz

FORMAT = "minimrcnn-checkpoint-1"


def _flatten(prefix: str, mapping: Mapping[str, np.ndarray]) -> dict:
    return {f"{prefix}/{key}": np.asarray(value) for key, value in mapping.items()}


def _unflatten(prefix: str, arrays: Mapping[str, np.ndarray]) -> dict:
    start = prefix + "/"
    return {key[len(start):]: arrays[key] for key in arrays if key.startswith(start)}


def save_checkpoint(path: str, model_state: Mapping, optim_state: Mapping, iteration: int, config: dict,
                    dataset_length: int | None = None, train_seconds: float = 0.0) -> None:
    """Write a training checkpoint atomically (see the module docstring for the layout)."""
    arrays = {"meta/dataset_length": np.array(-1 if dataset_length is None else dataset_length, dtype=np.int64),
              "meta/train_seconds": np.array(train_seconds, dtype=np.float64)}
    arrays.update(_flatten("model", model_state))
    arrays.update(_flatten("optim", optim_state))
    arrays["meta/iteration"] = np.array(iteration, dtype=np.int64)
    arrays["meta/config"] = np.array(json.dumps(config, sort_keys=True))
    arrays["meta/format"] = np.array(FORMAT)
    atomic_savez(path, arrays)


def _read(path: str, keys=None) -> dict:
    """The arrays of ``path`` (only ``keys`` if given), without pickle; errors name the file."""
    arrays = read_npz(path, "checkpoint", None if keys is None else ["meta/format", *keys])
    found = arrays.get("meta/format")
    if found is None or str(found) != FORMAT:
        raise ValueError(f"{path} is not a minimrcnn checkpoint (meta/format is missing or not {FORMAT!r})")
    return arrays


def load_checkpoint(path: str) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns:
        dict with ``model`` (state_dict), ``optim`` (optimizer state), ``iteration`` (int),
        ``config`` (dict), ``dataset_length`` (int, -1 for the generated stream, None if not recorded)
        and ``train_seconds`` (float, None if not recorded).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError naming ``path``: not a minimrcnn checkpoint, truncated/corrupt, or holding
            object (pickled) arrays.
    """
    arrays = _read(path)
    length = arrays.get("meta/dataset_length")      # absent in checkpoints written before it existed
    seconds = arrays.get("meta/train_seconds")      # likewise
    return {
        "model": _unflatten("model", arrays),
        "optim": _unflatten("optim", arrays),
        "iteration": int(arrays["meta/iteration"]),
        "config": json.loads(str(arrays["meta/config"])),
        "dataset_length": None if length is None else int(length),
        "train_seconds": None if seconds is None else float(seconds),
    }


def load_checkpoint_config(path: str) -> dict:
    """Only the training config of a checkpoint (reads one small entry of the file)."""
    return json.loads(str(_read(path, ["meta/config"])["meta/config"]))
