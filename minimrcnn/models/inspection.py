"""Recording a forward pass's intermediate arrays for ``MaskRCNN.inspect``.

A stage that has an array worth looking at names it in one line::

    record(anchors=anchors, objectness=objectness)

Outside ``with recording() as arrays:`` that call does nothing (it only looks at an
empty list), so training and inference keep exactly what they kept before. Inside, the
arrays land in the dict the ``with`` statement yields: the very arrays of the run, not
copies and not a recomputation. No forward takes a ``trace`` argument for it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

_recordings: list = []   # dicts being filled, innermost last; empty unless inspecting


def record(**arrays) -> None:
    """Keep ``name=array`` pairs in the innermost active recording; no-op when none is."""
    if _recordings:
        _recordings[-1].update(arrays)


@contextmanager
def recording() -> Iterator[dict]:
    """``with recording() as arrays:`` collects every ``record(...)`` call made inside it."""
    arrays: dict = {}
    _recordings.append(arrays)
    try:
        yield arrays
    finally:
        _recordings.pop()


__all__ = ["record", "recording"]
