"""The benchmarks' layout and the figures quoted from them; nothing here times anything.

* every suite ``benchmarks/run.py`` lists exists (with a ``run``), and every suite is listed;
* suites and experiments import shared helpers from ``benchmarks/common.py`` only, never
  from each other;
* every experiment has a docstring and a line in docs/benchmarks.md;
* every ``benchmarks/...py`` a doc or a script names exists;
* docs/benchmarks.md holds the markers ``run.py --write`` writes between;
* every figure README.md quotes is in docs/benchmarks.md, as is every figure of a lesson sentence
  that cites it, and the library's docstrings and
  comments quote no measured time that docs/benchmarks.md does not hold.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
DOC = ROOT / "docs" / "benchmarks.md"


def _run_py_constant(name: str):
    """The literal value of a module-level constant of benchmarks/run.py (read, not imported:
    importing the harness would change this process's environment)."""
    tree = ast.parse((BENCH / "run.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"benchmarks/run.py defines no {name}")


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _bench_scripts() -> list[Path]:
    return sorted(BENCH.glob("*.py")) + sorted((BENCH / "experiments").glob("*.py"))


def test_every_listed_suite_exists_and_has_run():
    suites = _run_py_constant("SUITES")
    assert suites, "run.py lists no suite"
    for name in suites:
        path = BENCH / f"bench_{name}.py"
        assert path.is_file(), f"run.py lists suite {name!r} but {path.relative_to(ROOT)} does not exist"
        functions = {n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)}
        assert "run" in functions, f"{path.name} has no top-level run(ctx)"


def test_every_suite_is_listed():
    suites = set(_run_py_constant("SUITES"))
    found = {p.stem[len("bench_"):] for p in BENCH.glob("bench_*.py")}
    assert found <= suites, f"suites not listed in run.py's SUITES: {sorted(found - suites)}"


def test_suites_and_experiments_import_nothing_from_each_other():
    local = {p.stem for p in BENCH.glob("*.py")} - {"common"}
    for path in _bench_scripts():
        if path.name == "run.py":
            continue
        bad = sorted(m for m in _imported_modules(path) if m.split(".")[0] in local)
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}; shared helpers belong in benchmarks/common.py"


def test_every_experiment_is_described():
    doc = DOC.read_text()
    experiments = sorted((BENCH / "experiments").glob("*.py"))
    assert experiments, "benchmarks/experiments/ is empty"
    for path in experiments:
        assert ast.get_docstring(ast.parse(path.read_text())), f"{path.name} has no docstring"
        assert f"`{path.name}`" in doc, f"docs/benchmarks.md's Experiments table has no line for {path.name}"


def test_every_named_benchmark_script_exists():
    sources = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *_bench_scripts(),
               *sorted((ROOT / "minimrcnn").rglob("*.py"))]
    for source in sources:
        # not after "REV:" (``git show REV:benchmarks/x.py``): a script of the history may be gone
        for match in re.finditer(r"(?<![\w:/])benchmarks/[\w/]+\.py", source.read_text()):
            assert (ROOT / match.group(0)).is_file(), f"{source.relative_to(ROOT)} names {match.group(0)}, which does not exist"


def test_doc_has_the_generated_block_markers():
    doc = DOC.read_text()
    begin, end = _run_py_constant("BEGIN"), _run_py_constant("END")
    assert doc.count(begin) == 1 and doc.count(end) == 1, "docs/benchmarks.md needs one begin and one end marker"
    assert doc.index(begin) < doc.index(end)


def _prose_figures(markdown: str) -> list[str]:
    """Decimal figures in Markdown prose (code blocks, version numbers and 'Python 3.x' left out)."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)
    return [m.group(1) for m in re.finditer(r"(?<!Python )(?<![\w.])(\d+\.\d+)(?!\w|\.\d)", text)]


def test_readme_figures_are_in_the_benchmarks_doc():
    doc = DOC.read_text()
    figures = _prose_figures((ROOT / "README.md").read_text())
    missing = [f for f in figures if not re.search(rf"(?<![\w.]){re.escape(f)}(?![\d])", doc)]
    assert not missing, f"README.md quotes {missing}, which docs/benchmarks.md does not hold"


def test_lesson_sentences_citing_the_benchmarks_doc_quote_its_figures():
    # A lesson's Markdown that quotes a measurement names docs/benchmarks.md in the same
    # sentence; no cell asserts such a figure, so the doc must hold it.
    import json
    doc = DOC.read_text()
    for path in sorted((ROOT / "lessons").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            for sentence in re.split(r"(?<=[.!?])\s+", "".join(cell["source"])):
                if "benchmarks.md" not in sentence:
                    continue
                missing = [f for f in _prose_figures(sentence) if not re.search(rf"(?<![\w.]){re.escape(f)}(?![\d])", doc)]
                assert not missing, f"{path.name} quotes {missing} from docs/benchmarks.md, which does not hold them"


def test_prose_figure_scan():
    text = "On Python 3.10+: 9.7 minutes, mask AP 0.719.\n```bash\npip install torch==2.14.1 x 1.5\n```\ntorch 2.14.1"
    assert _prose_figures(text) == ["9.7", "0.719"]


MEASURED = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?:-\d+(?:\.\d+)?)? ?(ms|s/iter|GFLOP/s|page faults)\b")


def _docstrings_and_comments(path: Path) -> str:
    source = path.read_text()
    parts = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            parts.append(ast.get_docstring(node) or "")
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            parts.append(token.string)
    return "\n".join(parts)


@pytest.mark.parametrize("folder", ["minimrcnn", "benchmarks"])
def test_docstrings_quote_no_measured_time_the_doc_lacks(folder):
    doc = DOC.read_text()
    stray = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for match in MEASURED.finditer(_docstrings_and_comments(path)):
            if match.group(0) not in doc:
                stray.append(f"{path.relative_to(ROOT)}: {match.group(0)!r}")
    assert not stray, ("measured figures in docstrings or comments; point to docs/benchmarks.md instead: "
                       + "; ".join(stray))


def test_measured_figure_pattern():
    found = [m.group(0) for m in MEASURED.finditer("took 750 ms, 12-15 ms each, 0.27 s/iter, 51 page faults; "
                                                    "[4,64,32,32] and median ms")]
    assert found == ["750 ms", "12-15 ms", "0.27 s/iter", "51 page faults"]


@pytest.fixture
def harness(monkeypatch):
    """benchmarks/run.py imported with this process's environment restored afterwards
    (common.py sets OMP_WAIT_POLICY on import)."""
    import importlib
    import sys
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.syspath_prepend(str(BENCH))
    for name in ("run", "common"):
        sys.modules.pop(name, None)
    module = importlib.import_module("run")
    yield module
    for name in ("run", "common"):
        sys.modules.pop(name, None)


def test_report_of_made_up_rows(harness, tmp_path):
    """The table, the targets and the doc writer on rows made up here (nothing is timed)."""
    from common import Row, Stats
    conv = Row("conv2d 3x3 64->64 fwd+bwd", "[128,64,14,14]", Stats(60.0, 58.0, 62.0, 3),
               flops=3 * 2 * 128 * 14 * 14 * 64 * 576, ref_name="torch", ref=Stats(30.0, 29.0, 31.0, 3))
    step = Row("trained shapes train step, 64 RoIs/image (the recipe's)", "batch 4", Stats(300.0, 290.0, 320.0, 4),
               ref_name="torchvision", ref=Stats(400.0, 390.0, 410.0, 4))
    table = harness.format_table([conv, step], gemm_gflops=200.0, markdown=True)
    assert "| 60.0 (58.0-62.0) |" in table and "| 2.00 |" in table and "| 0.75 |" in table
    gemm_fraction = conv.flops / 60e-3 / 1e9 / 200.0
    assert f"| {gemm_fraction:.2f} |" in table
    targets = harness.targets_table([conv, step], gemm_gflops=200.0)
    assert "| conv2d 3x3 fwd+bwd [128,64,14,14]: our time / torch's | <= 1.25 | 2.00 (spread 1.87-2.14) | no |" in targets
    assert "| trained step, the recipe's RoIs: our time / torchvision's | <= 0.75 | 0.75 (spread 0.71-0.82) | yes |" in targets
    assert "| trained inference: our time / torchvision's | <= 0.75 | not measured in this run | |" in targets
    # a recipe of 128 RoIs per image: one row serves both step targets
    step.op = "trained shapes train step, 128 RoIs/image (the recipe's)"
    assert "| trained step, 128 RoIs/image: our time / torchvision's | <= 0.75 | 0.75" in harness.targets_table(
        [step], gemm_gflops=200.0)
    doc = tmp_path / "page.txt"
    doc.write_text(f"head\n{harness.BEGIN}\nold\n{harness.END}\ntail\n")
    harness.write_block(str(doc), "new")
    assert doc.read_text() == f"head\n{harness.BEGIN}\nnew\n{harness.END}\ntail\n"
