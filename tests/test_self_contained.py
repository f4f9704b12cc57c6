"""The repository stands alone: no tracked file points to a path outside it.

Docstrings, tests, lessons and docs cite `docs/` (the torchvision semantics are in
docs/torchvision-parity.md, the tiny preset in docs/shapes-preset.md). This test fails when
a tracked file names an absolute path of the machine it was written on, a folder next to
the checkout, or a Markdown file that the repository does not contain.
"""

import ast
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THIS_FILE = os.path.relpath(os.path.abspath(__file__), ROOT).replace(os.sep, "/")

# Paths that only exist on some machine: the shared workspace, a folder beside the
# checkout, home directories (Linux, macOS, Windows), and the external reference notes
# whose content now lives in docs/torchvision-parity.md.
OUTSIDE = re.compile(r"/work/|shared/reference|\.\./shared|torchvision-semantics|"
                     r"/home/\w|/root/|/Users/\w|[A-Za-z]:\\Users\\")
# A name starts where a run of path characters starts: without the look-behind, every position
# inside a notebook's base64 figures started a scan to the end of its run (quadratic, 5 s).
MARKDOWN_NAME = re.compile(r"(?<![\w./-])[\w./-]*[\w-]\.md\b")
PARITY_SECTION = re.compile(r"torchvision-parity\.md,? secs?\. (\d+)(?: and (\d+))?")


def tracked_files():
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return [p for p in out.stdout.decode().split("\0") if p]


def tracked_texts():
    """(path, text) of every tracked file that decodes as UTF-8 (binary files are skipped)."""
    for path in tracked_files():
        full = os.path.join(ROOT, path)
        if path == THIS_FILE or not os.path.isfile(full):
            continue
        try:
            with open(full, encoding="utf-8") as f:
                yield path, f.read()
        except UnicodeDecodeError:
            continue


def line_of(text, index):
    return text.count("\n", 0, index) + 1


def resolves(name, path, files, basenames):
    """A Markdown name is fine if it is a tracked path, relative to the file, or a tracked basename."""
    relative = os.path.normpath(os.path.join(os.path.dirname(path), name)).replace(os.sep, "/")
    name = name[2:] if name.startswith("./") else name
    return (name in files or relative in files or any(f.endswith("/" + name) for f in files)
            or ("/" not in name and name in basenames))


@pytest.fixture(scope="module")
def texts():
    texts = list(tracked_texts())
    assert len(texts) > 50, "git ls-files found too few files: is this a git checkout?"
    return texts


def test_no_file_points_outside_the_repository(texts):
    hits = [f"{path}:{line_of(text, m.start())}: {m.group(0)!r}"
            for path, text in texts for m in OUTSIDE.finditer(text)]
    assert not hits, "paths outside the repository:\n" + "\n".join(hits)


def test_every_markdown_name_is_a_file_of_the_repository(texts):
    files = set(tracked_files())
    basenames = {os.path.basename(f) for f in files}
    missing = [f"{path}:{line_of(text, m.start())}: {m.group(0)}"
               for path, text in texts for m in MARKDOWN_NAME.finditer(text)
               if not resolves(m.group(0), path, files, basenames)]
    assert not missing, "Markdown files named but not in the repository:\n" + "\n".join(missing)


def test_parity_doc_sections_cited_exist(texts):
    doc = dict(texts)["docs/torchvision-parity.md"]
    sections = {int(n) for n in re.findall(r"^## (\d+)\. ", doc, re.M)}
    assert sections == set(range(1, 16))
    bad = [f"{path}:{line_of(text, m.start())}: {m.group(0)}"
           for path, text in texts for m in PARITY_SECTION.finditer(text)
           for n in m.groups() if n is not None and int(n) not in sections]
    assert not bad, "citations of missing sections:\n" + "\n".join(bad)


def test_the_checks_catch_what_they_are_for():
    # The patterns themselves, on lines of the kind that used to be in the repository.
    assert OUTSIDE.search('APPENDIX = "/work/' + 'shared/reference/x.md"')
    assert OUTSIDE.search("Semantics: torchvision-" + "semantics.md sec. 10.")
    assert OUTSIDE.search("see ../" + "shared/notes")
    assert OUTSIDE.search("/home/" + "alice/minimrcnn")
    assert not OUTSIDE.search("Semantics: docs/torchvision-parity.md sec. 10.")
    files = {"docs/shapes-preset.md", "docs/roi_align.md"}
    basenames = {"shapes-preset.md", "roi_align.md"}
    assert resolves("shapes-preset.md", "minimrcnn/data/shapes.py", files, basenames)
    assert resolves("../docs/roi_align.md", "lessons/01.ipynb", files, basenames)
    assert not resolves("style.md", "lessons/02.ipynb", files, basenames)


def known_answer_rows(doc, title):
    """Cells of the table after the line starting with `title` in the parity doc's sec. 14."""
    section = doc.split("## 14. Known-answer vectors", 1)[1].split("\n## ", 1)[0]
    table = section.split(title, 1)[1].split("\n\n", 2)[1]
    rows = [line.strip("|").split(" | ") for line in table.splitlines()[2:]]
    return [[cell.strip() for cell in row] for row in rows]


def leading_literal(cell):
    """The Python literal a table cell starts with: '[[0, 0], [0, 0]] (note)' -> [[0, 0], [0, 0]]."""
    depth = 0
    for i, ch in enumerate(cell):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if depth == 0:
            return ast.literal_eval(cell[:i + 1])
    raise ValueError(cell)


def test_known_answer_tables_are_the_vectors_the_tests_assert(texts):
    from tests.ops import test_roi_align, test_roi_pool
    doc = dict(texts)["docs/torchvision-parity.md"]
    align = [(leading_literal(r[0]), int(r[1]), float(r[2]), int(r[3]), r[4] == "True",
              leading_literal(r[5])) for r in known_answer_rows(doc, "**roi_align**")]
    assert align == [(tuple(roi), out, scale, sr, aligned, expected)
                     for roi, out, scale, sr, aligned, expected in test_roi_align.KNOWN]
    pool = []
    for r in known_answer_rows(doc, "**roi_pool**"):
        out = int(r[0].split("), ")[1][0]) if "output" in r[0] else 2
        scale = float(r[0].rsplit("scale ", 1)[1]) if "scale" in r[0] else 1.0
        pool.append((leading_literal(r[0]), out, scale, leading_literal(r[1])))
    assert pool == [(tuple(roi), out, scale, expected) for roi, out, scale, expected in test_roi_pool.KNOWN]
    np_grad = test_roi_align.GRAD_EXAMPLE.tolist()
    block = doc.split("The\ngradient by rows:", 1)[1].split("\n\n", 2)[1]
    assert [[float(v) for v in re.findall(r"\d+(?:\.\d+)?", line)] for line in block.splitlines()] == np_grad
