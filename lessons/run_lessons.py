"""Execute the lesson notebooks and write their outputs back: the one script that does it.

    python lessons/run_lessons.py                 # every lesson, full mode (the committed outputs)
    python lessons/run_lessons.py 03 07_train     # lessons whose file name starts with these
    python lessons/run_lessons.py --fast 04       # fast mode (MINIMRCNN_LESSON_FAST=1, as in CI)

Each notebook runs top to bottom in a fresh kernel, as Jupyter runs it: working directory
lessons/, the inline matplotlib backend (MPLBACKEND is removed from the kernel's environment,
so a figure is a PNG output and can be counted), figures at 100 dpi, readable at GitHub's width.
The notebook is written back with its outputs and with ``metadata["minimrcnn"]``:

    source_sha256  sha256 of the code cells' sources (tests/test_lessons.py compares it with
                   the committed sources: a cell edited after the run makes the test fail)
    figures        the number of PNG outputs (CI's fast run must produce at least as many)
    mode           "full" or "fast" (the committed notebooks are executed in full mode)

tests/test_lessons.py imports this file for ``execute``, ``source_sha256``,
``count_figures`` and the exercise helpers, so the test runs the lessons exactly as this
script does. Exercise conventions (see lessons/README.md): a code cell tagged ``exercise``
holds the learner's stub, a cell tagged ``check`` checks it, and
``lessons/solutions/<stem>.py`` holds one block per exercise, opened by ``# %% exercise N``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import pathlib
import re
import sys
import time

LESSONS_DIR = pathlib.Path(__file__).resolve().parent
SOLUTIONS_DIR = LESSONS_DIR / "solutions"
FAST_ENV = "MINIMRCNN_LESSON_FAST"
METADATA_KEY = "minimrcnn"
FIGURE_DPI = 100

# Run before the first cell, outside the notebook (not stored, not counted in the history).
SETUP_CODE = f"""\
%matplotlib inline
import matplotlib
matplotlib.rcParams["figure.dpi"] = {FIGURE_DPI}
"""

_BLOCK_MARK = re.compile(r"^# %% exercise (\d+)(.*)$", re.MULTILINE)


def lesson_paths(names=()) -> list[pathlib.Path]:
    """The notebooks of lessons/ whose file name starts with one of ``names`` (all if empty)."""
    paths = sorted(LESSONS_DIR.glob("*.ipynb"))
    if not names:
        return paths
    chosen = []
    for name in names:
        stem = pathlib.Path(name).name.removesuffix(".ipynb")
        found = [p for p in paths if p.stem.startswith(stem)]
        if not found:
            raise SystemExit(f"run_lessons.py: no lesson matches {name!r}; lessons: {[p.stem for p in paths]}")
        chosen += [p for p in found if p not in chosen]
    return chosen


def code_sources(nb) -> list[str]:
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def source_sha256(nb) -> str:
    """sha256 of the code cells' sources, in order (markdown edits do not make outputs stale)."""
    return hashlib.sha256(json.dumps(code_sources(nb)).encode("utf-8")).hexdigest()


def count_figures(cells) -> int:
    """Number of PNG outputs (one per figure shown) in ``cells``."""
    return sum(1 for cell in cells if cell.cell_type == "code"
               for out in cell.get("outputs", []) if "image/png" in out.get("data", {}))


def tagged(nb, tag: str) -> list[int]:
    """Indices of the cells carrying ``tag`` in their metadata, in notebook order."""
    return [i for i, cell in enumerate(nb.cells) if tag in cell.metadata.get("tags", [])]


def marked_blocks(path: pathlib.Path) -> list[tuple[int, str, str]]:
    """[(N, rest of the mark line, source)] of a file of blocks opened by ``# %% exercise N...`` lines."""
    text = path.read_text()
    marks = list(_BLOCK_MARK.finditer(text))
    if not marks:
        raise ValueError(f"{path}: expected blocks opened by '# %% exercise N' lines, found none")
    blocks = []
    for k, mark in enumerate(marks):
        end = marks[k + 1].start() if k + 1 < len(marks) else len(text)
        blocks.append((int(mark.group(1)), mark.group(2).strip(), text[mark.end():end].strip("\n") + "\n"))
    return blocks


def solution_blocks(stem: str) -> dict[int, str]:
    """{N: source} of lessons/solutions/<stem>.py, one block per ``# %% exercise N`` line."""
    path = SOLUTIONS_DIR / f"{stem}.py"
    blocks = {}
    for number, _, source in marked_blocks(path):
        if number in blocks:
            raise ValueError(f"{path}: exercise {number} appears twice")
        blocks[number] = source
    return blocks


@contextlib.contextmanager
def _kernel_environment(fast: bool):
    """Fast/full mode for the kernel, and no MPLBACKEND (CI exports Agg; the kernel must stay inline)."""
    saved = {key: os.environ.get(key) for key in (FAST_ENV, "MPLBACKEND")}
    os.environ.pop("MPLBACKEND", None)
    if fast:
        os.environ[FAST_ENV] = "1"
    else:
        os.environ.pop(FAST_ENV, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def execute(nb, fast: bool, timeout: int | None = None):
    """Run every code cell of ``nb`` (in place) in a fresh kernel with cwd lessons/; returns ``nb``.

    Raises nbclient's CellExecutionError (with the traceback) at the first failing cell.
    """
    import nbclient
    import nbformat

    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                                     resources={"metadata": {"path": str(LESSONS_DIR)}})
    # nbclient addresses outputs by cell index: the setup cell sits at index 0 while it runs.
    nb.cells.insert(0, nbformat.v4.new_code_cell(SETUP_CODE))
    try:
        with _kernel_environment(fast), client.setup_kernel():
            client.execute_cell(nb.cells[0], 0, store_history=False)
            count = 0
            for index, cell in enumerate(nb.cells[1:], start=1):
                if cell.cell_type == "code":
                    count += 1
                    client.execute_cell(cell, index, execution_count=count)
    finally:
        del nb.cells[0]
    return nb


def _children_cpu_seconds() -> float:
    """User + system CPU time of this process's finished children (the kernels), where available."""
    try:
        import resource
    except ImportError:  # not on Windows
        return float("nan")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_lesson(path: pathlib.Path, fast: bool) -> float:
    """Execute one notebook and write it back with outputs and metadata; returns the wall time (s)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    start, cpu_start = time.perf_counter(), _children_cpu_seconds()
    execute(nb, fast)
    seconds = time.perf_counter() - start
    print(f"{path.name}: kernel CPU time {_children_cpu_seconds() - cpu_start:.1f} s", flush=True)
    nb.metadata[METADATA_KEY] = {"source_sha256": source_sha256(nb), "figures": count_figures(nb.cells),
                                 "mode": "fast" if fast else "full"}
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="lesson file names or prefixes (default: all)")
    parser.add_argument("--fast", action="store_true", help=f"fast mode ({FAST_ENV}=1), as in CI")
    args = parser.parse_args(argv)
    paths = lesson_paths(args.names)
    import nbclient.exceptions

    total, failed = 0.0, []
    for path in paths:
        print(f"{path.name}: running ({'fast' if args.fast else 'full'} mode) ...", flush=True)
        try:
            seconds = run_lesson(path, args.fast)
        except nbclient.exceptions.CellExecutionError as error:
            failed.append(path.name)
            print(f"{path.name}: FAILED, not written back\n{error}", flush=True)
            continue
        total += seconds
        print(f"{path.name}: {seconds:.1f} s wall time, written back", flush=True)
    print(f"{len(paths) - len(failed)} lessons in {total:.1f} s" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
