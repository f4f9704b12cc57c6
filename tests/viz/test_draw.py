"""viz.draw: instance tags stay inside the picture."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from minimrcnn.viz.draw import draw_instances  # noqa: E402


def _tag_boxes(boxes):
    fig, ax = plt.subplots(figsize=(2, 2), dpi=100)
    draw_instances(ax, np.zeros((64, 64, 3), np.uint8), np.array(boxes, np.float32), np.array([1] * len(boxes)),
                   class_names=["bg", "circle"])
    fig.canvas.draw()
    axes_box = ax.get_window_extent()
    tags = [t.get_window_extent() for t in ax.texts]
    plt.close(fig)
    return axes_box, tags


def test_a_box_at_the_top_edge_keeps_its_tag_inside_the_axes():
    axes_box, tags = _tag_boxes([[4, 0, 30, 20], [10, 30, 40, 60]])
    for tag in tags:   # display coordinates: y grows upwards
        assert axes_box.y0 - 0.5 <= tag.y0 and tag.y1 <= axes_box.y1 + 0.5, (tag, axes_box)
