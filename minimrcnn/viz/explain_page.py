"""``minimrcnn.viz.explain``: one forward pass of one image as a single self-contained HTML page.

    from minimrcnn.viz import explain, write_explain_page
    html = explain(model, image, target=None)           # str: the whole page
    write_explain_page("runs/explain.html", html)        # atomically

The page is three readable files of this package inlined into one: ``explain.html``
(the template), ``explain.css`` and ``explain.js``; the data is embedded once as
``<script type="application/json" id="explain-data">``. It loads nothing from the
network. docs/explain.md describes its panels, its data and how it is tested.
"""

from __future__ import annotations

import html as html_lib
import json
import os

from minimrcnn.viz.explain_data import collect_explain_data

_HERE = os.path.dirname(os.path.abspath(__file__))


def _read(name: str) -> str:
    with open(os.path.join(_HERE, name), encoding="utf-8") as f:
        return f.read()


def _script_safe(text: str) -> str:
    """JSON inside <script>: '</' would end the element early, so it is escaped (JSON still parses)."""
    return text.replace("</", "<\\/")


def render_explain_page(data: dict, title: str = "minimrcnn explain") -> str:
    """The page for a data dict from ``collect_explain_data``."""
    # The page is pure ASCII (JSON escapes the rest, the title uses character references),
    # so it reads the same whatever encoding a browser or an editor assumes.
    title = html_lib.escape(title).encode("ascii", "xmlcharrefreplace").decode()
    page = _read("explain.html").replace("{{TITLE}}", title)
    parts = {
        "{{CSS}}": _read("explain.css"),
        "{{DATA}}": _script_safe(json.dumps(data, separators=(",", ":"), allow_nan=False)),
        "{{JS}}": _script_safe(_read("explain.js")),
    }
    for key, value in parts.items():
        before, sep, after = page.partition(key)
        page = before + value + after       # each placeholder once; values are never re-scanned
    return page


def explain(model, image, target=None, class_names=None, score_threshold: float = 0.5,
            title: str = "minimrcnn explain", caps: dict | None = None) -> str:
    """One recorded forward pass of ``image`` as a self-contained HTML page (a str).

    Args:
        model (MaskRCNN): any preset, trained or not; run in eval mode for the call.
        image (uint8[H, W, 3] or float[3, H, W] in [0, 1]).
        target (dict or None): ground truth in the image's pixels, boxes float[G, 4],
            labels int[G], optional masks uint8[G, H, W]: detections are then marked
            true/false positive and missed objects drawn.
        class_names (sequence or None): index = label, 0 background.
        score_threshold (float): where the score slider starts.
        caps (dict or None): overrides of ``explain_data.DEFAULT_CAPS``.
    Returns:
        str: the HTML. Save it with ``write_explain_page``; in Jupyter,
        ``IPython.display.IFrame`` of the saved file shows it inline.
    """
    if not 0.0 <= float(score_threshold) <= 1.0:
        raise ValueError(f"score_threshold: expected a number in [0, 1], got {score_threshold!r}")
    data = collect_explain_data(model, image, target, class_names, score_threshold, caps)
    return render_explain_page(data, title)


def write_explain_page(path: str, page: str) -> str:
    """Write the page atomically (never half-written) and return ``path``."""
    from minimrcnn.io import atomic_write_text

    atomic_write_text(path, page)
    return path


def read_explain_data(page: str) -> dict:
    """The embedded data dict of a page written by ``explain`` (for tests and tools)."""
    start_tag = '<script type="application/json" id="explain-data">'
    start = page.index(start_tag) + len(start_tag)
    end = page.index("</script>", start)
    return json.loads(page[start:end].replace("<\\/", "</"))


__all__ = ["explain", "read_explain_data", "render_explain_page", "write_explain_page"]
