"""The lesson notebooks: they run, their exercises are solvable and checked, their outputs are current.

Each lesson is executed once per test session, in fast mode (MINIMRCNN_LESSON_FAST=1), by
lessons/run_lessons.py's ``execute`` (cwd lessons/, inline backend), with every cell tagged
``exercise`` replaced by its block of lessons/solutions/<stem>.py. After the lesson's own cells,
the same kernel re-runs each original (unsolved) exercise cell followed by its check cell. The
tests then read that one executed notebook:

* every check printed "Exercise N: correct" on the solution, and not on the empty exercise;
* every check rejects the typical wrong answers of tests/lesson_wrong_answers/<stem>.py (at
  least two per exercise, each opened by ``# %% exercise N: <regex>``) with a message that
  matches the regex, i.e. names the cause (each is appended to the same kernel, after the
  stubs, with its check cell allowed to raise);
* the fast run drew at least as many figures as the committed full-mode outputs hold;
* the run wrote nothing into lessons/ (notebooks write under runs/).

Two cheap tests need no kernel: the exercises are well formed (>= 2 per lesson, one check and
one solution block each), and the committed outputs were produced by the committed code cells
(``metadata["minimrcnn"]["source_sha256"]``, written by run_lessons.py).

The tests that execute a lesson are marked slow (3-12 s a lesson, about 70 s for all of
them): ``pytest -m "not slow"`` leaves them to CI, which runs everything.
"""

import copy
import importlib.util
import pathlib
import re

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LESSONS_DIR = ROOT / "lessons"
WRONG_ANSWERS_DIR = pathlib.Path(__file__).resolve().parent / "lesson_wrong_answers"
MIN_WRONG_ANSWERS = 2   # per exercise
runs_the_lesson = pytest.mark.slow   # the first test of a lesson executes it (see the module docstring)

_spec = importlib.util.spec_from_file_location("run_lessons", LESSONS_DIR / "run_lessons.py")
run_lessons = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_lessons)

LESSONS = run_lessons.lesson_paths()
IDS = [p.stem for p in LESSONS]
CELL_TIMEOUT = 600  # seconds per cell; a lesson is meant to take well under a minute in fast mode


def _outputs_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") == "error":
            parts.append(f"{out.get('ename', '')}: {out.get('evalue', '')}")
        elif "text/plain" in out.get("data", {}):
            parts.append(out["data"]["text/plain"])
    return "".join(parts)


def _files_under(folder: pathlib.Path) -> set:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")
            if "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts}


class _Run:
    """One fast execution of a lesson with its solutions, then the stubs re-checked."""

    def __init__(self, path: pathlib.Path):
        committed = nbformat.read(path, as_version=4)
        nb = copy.deepcopy(committed)
        exercises, checks = run_lessons.tagged(nb, "exercise"), run_lessons.tagged(nb, "check")
        # A missing solution leaves the stub in place; test_exercises_are_well_formed reports it.
        has_solutions = (run_lessons.SOLUTIONS_DIR / f"{path.stem}.py").exists()
        solutions = run_lessons.solution_blocks(path.stem) if has_solutions else {}
        for number, index in enumerate(exercises, start=1):
            nb.cells[index].source = solutions.get(number, nb.cells[index].source)
        self.num_lesson_cells = len(nb.cells)
        self.solved_checks = checks
        self.stub_checks = []
        for exercise, check in zip(exercises, checks):
            nb.cells.append(nbformat.v4.new_code_cell(committed.cells[exercise].source))
            nb.cells.append(nbformat.v4.new_code_cell(committed.cells[check].source))
            self.stub_checks.append(len(nb.cells) - 1)
        self.wrong_checks = []   # (exercise number, cause regex, index of its check cell)
        for number, cause, source in wrong_answer_blocks(path.stem):
            if not 1 <= number <= len(checks):
                continue   # test_every_exercise_has_wrong_answers reports it
            for cell_source in (source, committed.cells[checks[number - 1]].source):
                nb.cells.append(nbformat.v4.new_code_cell(cell_source, metadata={"tags": ["raises-exception"]}))
            self.wrong_checks.append((number, cause, len(nb.cells) - 1))
        before = _files_under(LESSONS_DIR)
        self.error = None
        try:
            run_lessons.execute(nb, fast=True, timeout=CELL_TIMEOUT)
        except Exception as error:  # noqa: BLE001 - reported by every test of this lesson
            self.error = error
        self.new_files = sorted(_files_under(LESSONS_DIR) - before)
        self.nb = nb
        self.committed = committed

    def check_ran(self):
        if self.error is not None:
            pytest.fail(f"the lesson failed in fast mode with its solutions:\n{self.error}")


def wrong_answer_blocks(stem: str) -> list[tuple[int, str, str]]:
    """[(exercise N, cause regex, source)] of tests/lesson_wrong_answers/<stem>.py ([] if absent)."""
    path = WRONG_ANSWERS_DIR / f"{stem}.py"
    if not path.exists():
        return []
    return [(number, rest.lstrip(":").strip(), source) for number, rest, source in run_lessons.marked_blocks(path)]


_RUNS = {}


def executed(path: pathlib.Path) -> _Run:
    if path not in _RUNS:
        _RUNS[path] = _Run(path)
    return _RUNS[path]


def test_there_are_lessons():
    assert len(LESSONS) >= 8, f"expected the lesson notebooks in lessons/, found {IDS}"


@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_exercises_are_well_formed(path):
    nb = nbformat.read(path, as_version=4)
    exercises, checks = run_lessons.tagged(nb, "exercise"), run_lessons.tagged(nb, "check")
    assert len(exercises) >= 2, f"{path.name}: expected 2-3 cells tagged 'exercise', found {len(exercises)}"
    assert len(checks) == len(exercises), (
        f"{path.name}: {len(exercises)} 'exercise' cells but {len(checks)} 'check' cells")
    solutions = run_lessons.solution_blocks(path.stem)
    assert sorted(solutions) == list(range(1, len(exercises) + 1)), (
        f"solutions/{path.stem}.py: expected blocks for exercises 1..{len(exercises)}, found {sorted(solutions)}")
    for number, (exercise, check) in enumerate(zip(exercises, checks), start=1):
        stub, checker = nb.cells[exercise], nb.cells[check]
        assert stub.cell_type == checker.cell_type == "code"
        assert exercise < check, f"{path.name}: the check of exercise {number} comes before its exercise cell"
        assert "raise NotImplementedError" in stub.source, (
            f"{path.name}: exercise {number}'s cell must start as a stub that raises NotImplementedError")
        assert "except NotImplementedError" in checker.source and f"Exercise {number}: correct" in checker.source, (
            f"{path.name}: check {number} must catch NotImplementedError and print 'Exercise {number}: correct'")


@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_outputs_come_from_the_committed_sources(path):
    nb = nbformat.read(path, as_version=4)
    meta = nb.metadata.get(run_lessons.METADATA_KEY)
    hint = f"re-run `python lessons/run_lessons.py {path.stem}` and commit the notebook"
    assert meta, f"{path.name} has no outputs written by lessons/run_lessons.py: {hint}"
    assert meta["mode"] == "full", f"{path.name}'s outputs come from a {meta['mode']} run: {hint}"
    assert meta["source_sha256"] == run_lessons.source_sha256(nb), (
        f"{path.name}: code cells changed after its outputs were made (stale outputs): {hint}")
    assert meta["figures"] == run_lessons.count_figures(nb.cells), (
        f"{path.name}: metadata says {meta['figures']} figures, the outputs hold "
        f"{run_lessons.count_figures(nb.cells)}: {hint}")


@runs_the_lesson
@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_solutions_pass_the_checks(path):
    run = executed(path)
    run.check_ran()
    for number, index in enumerate(run.solved_checks, start=1):
        printed = _outputs_text(run.nb.cells[index])
        assert f"Exercise {number}: correct" in printed, (
            f"{path.name}: check {number} did not accept solutions/{path.stem}.py; it printed {printed!r}")


@runs_the_lesson
@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_checks_reject_the_empty_exercises(path):
    run = executed(path)
    run.check_ran()
    assert run.stub_checks, f"{path.name} has no exercises"
    for number, index in enumerate(run.stub_checks, start=1):
        printed = _outputs_text(run.nb.cells[index])
        assert f"Exercise {number}:" in printed and "correct" not in printed, (
            f"{path.name}: check {number} on the unsolved exercise printed {printed!r}")


@runs_the_lesson
@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_fast_run_draws_the_committed_figures(path):
    run = executed(path)
    run.check_ran()
    committed = (run.committed.metadata.get(run_lessons.METADATA_KEY) or {}).get("figures")
    assert committed is not None, f"{path.name} has no committed outputs (run lessons/run_lessons.py)"
    drawn = run_lessons.count_figures(run.nb.cells[:run.num_lesson_cells])
    assert drawn >= committed, f"{path.name}: the fast run drew {drawn} figures, the committed outputs hold {committed}"


@runs_the_lesson
@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_lesson_writes_nothing_into_lessons(path):
    run = executed(path)
    assert not run.new_files, f"{path.name} wrote {run.new_files} into lessons/ (write under ../runs/{path.stem}/)"


@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_every_exercise_has_wrong_answers(path):
    nb = nbformat.read(path, as_version=4)
    count = len(run_lessons.tagged(nb, "exercise"))
    blocks = wrong_answer_blocks(path.stem)
    per_exercise = {n: sum(1 for number, _, _ in blocks if number == n) for n in range(1, count + 1)}
    assert all(v >= MIN_WRONG_ANSWERS for v in per_exercise.values()), (
        f"tests/lesson_wrong_answers/{path.stem}.py: wrong answers per exercise {per_exercise}, "
        f"expected at least {MIN_WRONG_ANSWERS} each")
    assert all(1 <= number <= count and cause for number, cause, _ in blocks), (
        f"tests/lesson_wrong_answers/{path.stem}.py: every block opens with '# %% exercise N: <regex>', "
        f"N in 1..{count}")


@runs_the_lesson
@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_checks_reject_typical_wrong_answers(path):
    run = executed(path)
    run.check_ran()
    for number, cause, index in run.wrong_checks:
        printed = _outputs_text(run.nb.cells[index])
        wrong = run.nb.cells[index - 1].source.strip().splitlines()
        assert f"Exercise {number}: correct" not in printed, (
            f"{path.name}: check {number} accepted the wrong answer\n{chr(10).join(wrong)}")
        assert re.search(cause, printed, re.IGNORECASE | re.DOTALL), (
            f"{path.name}: check {number} rejected a wrong answer, but its message does not match "
            f"{cause!r} (the cause):\n{printed}\nthe wrong answer:\n{chr(10).join(wrong)}")
