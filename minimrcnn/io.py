"""Writing files atomically: a crash (or Ctrl-C) never leaves a half-written file behind.

Everything goes to a temporary file in the target's folder, is flushed to disk, then renamed
over the target with ``os.replace`` (atomic on POSIX): readers see the previous file or the
new one, never a partial write.
"""

from __future__ import annotations

import os
import tempfile
from typing import Callable, Mapping

import numpy as np


def atomic_write(path: str, write: Callable, binary: bool = False) -> None:
    """Call ``write(f)`` on a temporary file, then rename it to ``path``.

    Args:
        write: takes the open file object and writes the whole content.
        binary: open in ``"wb"`` (images, .npz) rather than ``"w"`` (text).
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    fd, tmp_path = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    try:
        # mkstemp creates the file 0600; give it the permissions open() would (0666 - umask)
        os.chmod(tmp_path, 0o666 & ~_current_umask())
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def _current_umask() -> int:
    mask = os.umask(0)   # the only way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


def atomic_savez(path: str, arrays: Mapping[str, np.ndarray]) -> None:
    """``np.savez`` to ``path`` atomically. Arrays must not be object arrays: every file
    minimrcnn writes loads with ``allow_pickle=False``."""
    atomic_write(path, lambda f: np.savez(f, **arrays), binary=True)


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write(path, lambda f: f.write(text))
