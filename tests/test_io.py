"""The one atomic writer: whole files or none, with the permissions open() would give."""

import os

import numpy as np
import pytest

from minimrcnn.io import atomic_savez, atomic_write_text


def test_written_file_has_open_permissions(tmp_path):
    previous = os.umask(0o022)
    try:
        atomic_savez(str(tmp_path / "w.npz"), {"a": np.zeros(3, np.float32)})
        atomic_write_text(str(tmp_path / "t.txt"), "hello")
    finally:
        os.umask(previous)
    for name in ("w.npz", "t.txt"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o644, name


def test_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def boom(f):
        f.write("half")
        raise RuntimeError("interrupted")

    from minimrcnn.io import atomic_write
    with pytest.raises(RuntimeError, match="interrupted"):
        atomic_write(str(target), boom)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
