"""Weights on disk: .npz files with torchvision's state_dict key names, and torch conversion.

* ``save_weights(model, path)`` writes every parameter and buffer as float32 (int64
  ``num_batches_tracked`` stays int64) into a temporary file, then ``os.replace``s it,
  so a crash never leaves half a file behind.
* ``read_weights(path)`` reads with ``allow_pickle=False`` (an .npz from the internet cannot
  run code); a missing, truncated or corrupt file, or one holding object (pickled) arrays,
  raises an error that names the file.
* ``load_weights(model, path, strict=True)`` reads through ``read_weights``, renames torchvision's legacy keys, drops
  ``num_batches_tracked`` for FrozenBatchNorm models, and lists every bad key.
* ``convert_torch_to_npz`` / ``convert_npz_to_torch`` move a torchvision checkpoint in
  and out; torch is imported only inside them.
"""

from __future__ import annotations

import re
from collections import OrderedDict

import numpy as np

from minimrcnn.io import atomic_savez, atomic_write, read_npz
from minimrcnn.nn.module import summarize

# torchvision's _load_from_state_dict hooks accept these pre-version-2 names.
_LEGACY_PATTERNS = [
    (re.compile(r"^(.*fpn\.(?:inner|layer)_blocks\.\d+)\.(weight|bias)$"), r"\1.0.\2"),
    (re.compile(r"^(.*rpn\.head\.conv)\.(weight|bias)$"), r"\1.0.0.\2"),
]
_MASK_FCN = re.compile(r"^(.*mask_head)\.mask_fcn(\d+)\.(weight|bias)$")


def remap_legacy_keys(state: dict) -> "OrderedDict[str, np.ndarray]":
    """Rename old torchvision keys: ``inner_blocks.i.weight`` -> ``inner_blocks.i.0.weight``,
    ``rpn.head.conv.weight`` -> ``rpn.head.conv.0.0.weight``, ``mask_head.mask_fcn{i+1}`` -> ``mask_head.{i}.0``."""
    out = OrderedDict()
    for key, value in state.items():
        new = key
        for pattern, repl in _LEGACY_PATTERNS:
            new = pattern.sub(repl, new)
        m = _MASK_FCN.match(new)
        if m:
            new = f"{m.group(1)}.{int(m.group(2)) - 1}.0.{m.group(3)}"
        out[new] = value
    return out


def read_weights(path: str) -> "OrderedDict[str, np.ndarray]":
    """Every array of an .npz weights file, without pickle.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError naming ``path``: not a readable .npz (truncated, corrupt, not a zip), or an
            entry is an object array (pickled Python objects, refused: loading them could run code).
    """
    return OrderedDict(read_npz(path, "weights file"))


def save_weights(model, path: str) -> None:
    """Write ``model.state_dict()`` to ``path`` (.npz, torchvision key names, float32)."""
    arrays = OrderedDict()
    for key, value in model.state_dict().items():
        value = np.asarray(value)
        arrays[key] = value.astype(np.float32) if np.issubdtype(value.dtype, np.floating) else value
    atomic_savez(path, arrays)


def load_weights(model, path: str, strict: bool = True):
    """Load an .npz written by ``save_weights`` or ``convert_torch_to_npz`` into ``model`` in place.

    Returns:
        (missing_keys, unexpected_keys) as ``Module.load_state_dict``.
    Raises:
        FileNotFoundError / ValueError from :func:`read_weights` (naming the file);
        ValueError listing every missing / unexpected / mis-shaped key (nothing is loaded then).
    """
    state = remap_legacy_keys(read_weights(path))
    own = model.state_dict()
    for key in list(state):
        # FrozenBatchNorm2d has no num_batches_tracked; torchvision ignores it too.
        if key.endswith("num_batches_tracked") and key not in own:
            del state[key]
    for key in own:
        # A BatchNorm2d model loading a FrozenBN file: start the counter at 0.
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = np.array(0, dtype=np.int64)
    try:
        return model.load_state_dict(state, strict=strict)
    except (KeyError, ValueError) as err:
        raise ValueError(f"load_weights({path!r}): {err}") from None


def _import_torch():
    try:
        import torch
    except ImportError:
        raise ImportError("converting .pth checkpoints needs PyTorch (pip install torch); "
                          "minimrcnn itself never needs it") from None
    return torch


def convert_torch_to_npz(in_pth: str, out_npz: str) -> list:
    """torchvision checkpoint (.pth state_dict) -> .npz with current key names. Returns the keys."""
    torch = _import_torch()
    import argparse

    try:
        # references/detection/train.py stores its argparse Namespace beside the weights; allow
        # that one plain class, nothing else that weights_only refuses
        with torch.serialization.safe_globals([argparse.Namespace]):
            state = torch.load(in_pth, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, not a torch file, a pickle that weights_only refuses, ...
        raise ValueError(f"{in_pth} is not a readable torch state_dict: {type(exc).__name__}: {exc}") from exc
    for wrapper in ("model", "state_dict"):
        if isinstance(state, dict) and wrapper in state and isinstance(state[wrapper], dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{in_pth} holds a {type(state).__name__}{' (empty)' if isinstance(state, dict) else ''}, "
                         "not a state_dict (a dict of parameter name -> tensor, maybe under 'model' or 'state_dict')")
    not_tensors = [f"{k} ({type(v).__name__})" for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise ValueError(f"{in_pth} is not a plain state_dict: entries that are not tensors: {summarize(not_tensors)}")
    arrays = OrderedDict()
    for key, tensor in remap_legacy_keys(state).items():
        value = tensor.detach().cpu().numpy()
        arrays[key] = value.astype(np.float32) if np.issubdtype(value.dtype, np.floating) else value
    atomic_savez(out_npz, arrays)
    return list(arrays)


def convert_npz_to_torch(in_npz: str, out_pth: str) -> list:
    """.npz -> a .pth state_dict that torchvision's maskrcnn_resnet50_fpn can load. Returns the keys."""
    torch = _import_torch()
    arrays = read_weights(in_npz)
    not_real = [f"{k} (dtype {v.dtype})" for k, v in arrays.items() if v.dtype.kind not in "biuf"]
    if not_real:
        raise ValueError(f"{in_npz}: arrays that are not real numbers cannot become tensors: {summarize(not_real)}")
    state = OrderedDict((k, torch.from_numpy(np.array(v))) for k, v in arrays.items())
    atomic_write(out_pth, lambda f: torch.save(state, f), binary=True)
    return list(state)
