"""What the lessons' exercise checks share: hide the function being re-implemented, find the
smallest input that disagrees, and print numbers as plain Python.

A check cell uses it like this (lesson 04, exercise 1)::

    from checking import hidden, smallest_disagreement

    expected = [nms(*case) for case in cases]                  # the library, before hiding it
    with hidden("minimrcnn.ops.nms.nms", exercise=1):
        found = smallest_disagreement(cases, my_nms, expected)  # my_nms runs with nms hidden
    assert found is None, found.message("Exercise 1", ("boxes", "scores", "threshold"),
                                        hint="Visit the boxes in stable order of -scores.")

``hidden`` replaces the library object, wherever the learner could reach it (the notebook's
globals and every ``minimrcnn`` module that holds it), by a stand-in that raises
``LibraryShortcut`` naming the function. The reference answers are computed outside the
``with`` block, so the check itself can still call the library.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import sys

import numpy as np


class LibraryShortcut(AssertionError):
    """The learner's code called the library function the exercise asks them to write."""


def _resolve(dotted: str):
    """'minimrcnn.ops.nms.nms' -> the object: the longest importable module path, then attributes
    (so 'minimrcnn.ops.anchors.AnchorGenerator.__call__' names a method)."""
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(f"cannot resolve {dotted!r}")


def _owner_class(dotted: str):
    """The class that holds a method named by ``dotted`` ('...AnchorGenerator.__call__'), else None."""
    parent = dotted.rpartition(".")[0]
    try:
        owner = _resolve(parent)
    except (ImportError, AttributeError, ValueError):
        return None
    return owner if isinstance(owner, type) else None


@contextlib.contextmanager
def hidden(*dotted_names: str, exercise: int | None = None, namespace: dict | None = None):
    """Within the block, every binding of these library objects raises ``LibraryShortcut``.

    dotted_names: e.g. "minimrcnn.ops.nms.nms". namespace: the notebook's globals (default:
    the ``__main__`` module's, which is the notebook's in Jupyter). Bindings are restored on exit.
    """
    namespace = vars(sys.modules["__main__"]) if namespace is None else namespace
    label = f"Exercise {exercise}: " if exercise is not None else ""
    originals = {dotted: _resolve(dotted) for dotted in dotted_names}
    swapped = []   # (dict, key, original)
    class_swaps = []   # (class, method name, original)
    places = [namespace] + [vars(module) for name, module in list(sys.modules.items())
                            if name.split(".")[0] == "minimrcnn" and module is not None]
    for dotted, original in originals.items():
        def stand_in(*args, _dotted=dotted, **kwargs):
            raise LibraryShortcut(
                f"{label}your code called {_dotted}, the function this exercise asks you to write "
                f"yourself. Build it from the pieces the exercise names instead.")
        for place in places:
            for key, value in list(place.items()):
                if value is original:
                    swapped.append((place, key, original))
                    place[key] = stand_in
        owner = _owner_class(dotted)
        if owner is not None:   # a method: every instance (e.g. model.rpn.anchor_generator) trips
            method = dotted.rpartition(".")[2]
            class_swaps.append((owner, method, owner.__dict__[method]))
            setattr(owner, method, stand_in)
    try:
        yield
    finally:
        for place, key, original in reversed(swapped):
            place[key] = original
        for owner, method, original in reversed(class_swaps):
            setattr(owner, method, original)


def plain(value):
    """NumPy arrays and scalars as plain Python numbers (floats to 6 significant digits)."""
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    array = np.asarray(value) if isinstance(value, (np.ndarray, np.generic)) else None
    if array is None:
        return float(f"{value:.6g}") if isinstance(value, float) else value
    if array.dtype.kind == "f":
        return plain(array.tolist())
    return array.tolist()


def _size(args) -> int:
    return sum(np.size(a) for a in args if isinstance(a, (np.ndarray, list, tuple)))


@dataclasses.dataclass
class Disagreement:
    """The smallest case where the learner's function and the reference differ."""
    args: tuple
    got: object
    expected: object

    def message(self, label: str, names: tuple[str, ...] = (), hint: str = "") -> str:
        """'Exercise N: on input ... you return ..., the library returns ...' plus the hint."""
        names = names or tuple(f"argument {k + 1}" for k in range(len(self.args)))
        shown = ", ".join(f"{n}={plain(a)!r}" for n, a in zip(names, self.args))
        text = f"{label}: on {shown}\n  you return      {plain(self.got)!r}\n  the library has {plain(self.expected)!r}"
        return text + (f"\n{hint}" if hint else "")


def _same(got, expected, atol: float) -> bool:
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape != expected.shape:
        return False
    if expected.dtype.kind == "f" or got.dtype.kind == "f":
        return bool(np.allclose(got, expected, rtol=0, atol=atol, equal_nan=True))
    return bool(np.array_equal(got, expected))


def smallest_disagreement(cases, mine, reference, atol: float = 1e-5) -> Disagreement | None:
    """Run ``mine(*args)`` on every case; the smallest case (by element count) that differs.

    cases: list of argument tuples. reference: the library function or a list of its answers
    (one per case; pass answers computed beforehand when ``mine`` runs under ``hidden``).
    Floats agree within ``atol``; integers and shapes exactly. Returns None when all agree.
    """
    expected = reference if isinstance(reference, list) else [reference(*args) for args in cases]
    found = []
    for args, answer in zip(cases, expected):
        got = mine(*args)
        if not _same(got, answer, atol):
            found.append(Disagreement(tuple(args), got, answer))
    return min(found, key=lambda d: _size(d.args)) if found else None


@contextlib.contextmanager
def hidden_methods(*methods: tuple, exercise: int | None = None):
    """Within the block, calling these methods raises ``LibraryShortcut``.

    methods: (class, attribute name) pairs, e.g. ``(BoxCoder, "decode")`` or
    ``(LevelMapper, "__call__")``: a method reached through any instance (``hidden`` only
    swaps module-level bindings, which an instance such as ``model.roi_heads.box_coder``
    bypasses). The class attributes are restored on exit.
    """
    label = f"Exercise {exercise}: " if exercise is not None else ""
    saved = []   # (class, name, the class's own attribute or a marker that it had none)
    missing = object()
    for cls, name in methods:
        def stand_in(*args, _name=f"{cls.__module__}.{cls.__qualname__}.{name}", **kwargs):
            raise LibraryShortcut(
                f"{label}your code called {_name}, the function this exercise asks you to write "
                f"yourself. Build it from the pieces the exercise names instead.")
        saved.append((cls, name, vars(cls).get(name, missing)))
        setattr(cls, name, stand_in)
    try:
        yield
    finally:
        for cls, name, original in reversed(saved):
            if original is missing:
                delattr(cls, name)
            else:
                setattr(cls, name, original)


def solution(stem: str, number: int, namespace: dict | None = None) -> dict:
    """What lessons/solutions/<stem>.py's block N defines, run on a copy of ``namespace``.

    For the "what you should find" cells (the payoff of a measurement exercise, shown in the
    committed outputs while the exercise cell stays a stub) and for checks whose reference is
    the solution itself. namespace: the notebook's globals (default: ``__main__``'s).
    """
    import pathlib
    import runpy

    here = pathlib.Path(__file__).resolve().parent
    run_lessons = runpy.run_path(str(here / "run_lessons.py"), run_name="run_lessons_for_checking")
    source = run_lessons["solution_blocks"](stem)[number]
    scope = dict(vars(sys.modules["__main__"]) if namespace is None else namespace)
    before = set(scope)
    exec(compile(source, f"solutions/{stem}.py (exercise {number})", "exec"), scope)
    defined = _defined_names(source)
    return {k: v for k, v in scope.items() if k != "__builtins__" and (k not in before or k in defined)}


def _defined_names(source: str) -> set:
    """Top-level names a block of code defines (def, class, assignment)."""
    import ast

    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names
