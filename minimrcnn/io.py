"""Writing ``.npz`` files atomically: a crash never leaves a half-written file behind."""

from __future__ import annotations

import os
import tempfile
from typing import Mapping

import numpy as np


def atomic_savez(path: str, arrays: Mapping[str, np.ndarray]) -> None:
    """``np.savez`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    The rename is atomic on POSIX, so readers see either the previous file or the new
    one, never a partial write. Arrays must not be object arrays: every file minimrcnn
    writes loads with ``allow_pickle=False``.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise
