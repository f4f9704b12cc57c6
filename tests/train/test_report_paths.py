"""train.report.shown_path: what the terminal shows of a path."""

import os

from minimrcnn.train.report import shown_path


def test_paths_near_the_working_folder_are_relative_others_absolute(tmp_path, monkeypatch):
    work = tmp_path / "repo" / "lessons"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    assert shown_path("run/model.npz") == os.path.join("run", "model.npz")
    assert shown_path("../runs/x/model.npz") == os.path.join("..", "runs", "x", "model.npz")
    assert shown_path(str(tmp_path / "elsewhere" / "a" / "model.npz"), max_up=1) == str(tmp_path / "elsewhere" / "a" / "model.npz")
    assert shown_path("..") == str(tmp_path / "repo")
