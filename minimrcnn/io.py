"""Files on disk: written atomically, .npz read without pickle.

Writing: everything goes to a temporary file in the target's folder, is flushed to disk,
then renamed over the target with ``os.replace`` (atomic on POSIX): readers see the
previous file or the new one, never a partial write; a crash or Ctrl-C leaves no half file.

Reading: ``read_npz`` is the one reader of the .npz files minimrcnn writes (weights,
checkpoints). It never unpickles (an .npz from the internet cannot run code), and every
error names the file.
"""

from __future__ import annotations

import os
import tempfile
from typing import Callable, Iterable, Mapping

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


def read_npz(path: str, what: str, keys: Iterable[str] | None = None) -> dict:
    """The arrays of the .npz ``path`` (only those of ``keys`` that it holds, if given).

    Args:
        what: what the file is meant to be ("weights file", "checkpoint"), for the errors.
    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError naming ``path``: not a readable .npz (truncated, corrupt, not a zip), or an
            entry is an object array (pickled Python objects, refused: unpickling can run code).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    unreadable = f"{path} is not a readable .npz {what}"
    try:
        with np.load(path, allow_pickle=False) as data:
            wanted = data.files if keys is None else [k for k in keys if k in data.files]
            arrays = {}
            for key in wanted:
                try:
                    arrays[key] = data[key]
                except ValueError as exc:
                    if "allow_pickle" not in str(exc):
                        raise
                    raise _Refused(f"{path}: entry {key!r} is an object (pickled) array, so the file is not "
                                   f"a readable .npz {what}: minimrcnn refuses to unpickle, since that can "
                                   "run code. Its files hold plain numeric arrays only") from None
            return arrays
    except _Refused as exc:
        raise ValueError(str(exc)) from None
    except Exception as exc:  # zipfile.BadZipFile, EOFError, OSError, ValueError, ...
        raise ValueError(f"{unreadable} (truncated or corrupt?): {type(exc).__name__}: {exc}") from exc


class _Refused(Exception):
    pass


def atomic_folder(path: str, fill: Callable[[str], None]) -> None:
    """Create the folder ``path`` whole: ``fill(tmp)`` writes into a temporary folder beside it,
    which is then renamed to ``path``. ``path`` must not exist, or be an empty folder.

    Raises:
        ValueError naming ``path`` if it exists and is not an empty folder. On any error the
        temporary folder is removed: nothing is left half-written.
    """
    import shutil

    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise ValueError(f"{path} exists and is not an empty folder: choose a new folder")
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
    try:
        fill(tmp)
        os.chmod(tmp, 0o777 & ~_current_umask())     # mkdtemp makes it 0700; give mkdir's permissions
        if os.path.isdir(path):
            os.rmdir(path)
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
