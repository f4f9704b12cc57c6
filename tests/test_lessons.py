"""Execute every lesson notebook top to bottom (fast mode), as a learner would."""

import pathlib

import nbclient
import nbformat
import pytest

LESSONS = sorted((pathlib.Path(__file__).parent.parent / "lessons").glob("*.ipynb"))


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs(path, tmp_path, monkeypatch):
    # Fast mode: lessons that train shorten their runs; outputs go to a temporary folder.
    monkeypatch.setenv("MINIMRCNN_LESSON_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for cell in notebook.cells if cell.cell_type == "code"
              for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors


def test_there_are_lessons():
    assert len(LESSONS) >= 6, f"expected the lesson notebooks in lessons/, found {[p.name for p in LESSONS]}"
