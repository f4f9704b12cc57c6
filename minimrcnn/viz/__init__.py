"""Pictures of a model: matplotlib overlays (draw.py) and the explain page (explain_page.py).

``minimrcnn.viz.explain(model, image, target=None) -> str`` is the page's HTML; the
module that builds it is ``minimrcnn.viz.explain_page`` (a different name, so the
package attribute ``explain`` is always the function).
"""

from minimrcnn.viz.explain_page import explain, write_explain_page

__all__ = ["explain", "write_explain_page"]
