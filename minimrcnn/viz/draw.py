"""Drawing instances (masks, boxes, labels, scores) with matplotlib."""

from __future__ import annotations

import numpy as np

# A fixed palette so the same class keeps its colour across figures.
PALETTE = np.array([
    [0.90, 0.10, 0.10], [0.10, 0.60, 0.90], [0.95, 0.75, 0.10], [0.20, 0.75, 0.30],
    [0.60, 0.30, 0.85], [0.95, 0.45, 0.10], [0.10, 0.80, 0.75], [0.85, 0.20, 0.60],
])


def overlay_masks(image: np.ndarray, masks: np.ndarray, labels: np.ndarray, alpha: float = 0.45,
                  threshold: float = 0.5) -> np.ndarray:
    """Blend instance masks into an image.

    Args:
        image (uint8[H, W, 3]): the picture.
        masks (float[D, H, W] or float[D, 1, H, W]): probabilities or binary masks.
        labels (int[D]): class of each instance (picks the colour).
    Returns:
        float[H, W, 3] in [0, 1].
    """
    out = image.astype(np.float32) / 255.0
    masks = np.asarray(masks)
    if masks.ndim == 4:
        masks = masks[:, 0]
    for mask, label in zip(masks, labels):
        colour = PALETTE[int(label) % len(PALETTE)]
        m = mask > threshold
        out[m] = (1 - alpha) * out[m] + alpha * colour
    return out


def draw_instances(ax, image, boxes, labels, scores=None, masks=None, class_names=None, score_threshold=0.5):
    """Draw one image's instances on a matplotlib Axes (masks, boxes, 'name score' tags)."""
    boxes, labels = np.asarray(boxes).reshape(-1, 4), np.asarray(labels).reshape(-1)
    keep = np.ones(len(labels), bool) if scores is None else np.asarray(scores) >= score_threshold
    shown = image if masks is None else overlay_masks(image, np.asarray(masks)[keep], labels[keep])
    ax.imshow(shown)
    for i in np.flatnonzero(keep):
        x1, y1, x2, y2 = boxes[i]
        colour = PALETTE[int(labels[i]) % len(PALETTE)]
        ax.add_patch(_rectangle(x1, y1, x2 - x1, y2 - y1, colour))
        name = class_names[int(labels[i])] if class_names is not None else str(int(labels[i]))
        tag = name if scores is None else f"{name} {float(scores[i]):.2f}"
        # Above the box, unless the box touches the top edge: then inside it, so no tag is clipped.
        inside = y1 < 0.08 * image.shape[0]
        ax.text(x1, y1 + 1 if inside else y1 - 1, tag, fontsize=7, color="white", va="top" if inside else "bottom",
                bbox=dict(facecolor=colour, alpha=0.8, pad=0.5, linewidth=0))
    ax.set_axis_off()


def _rectangle(x, y, w, h, colour):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, fill=False, edgecolor=colour, linewidth=1.2)


def _save_figure(fig, path: str) -> None:
    """PNG through a temporary file: a crash never leaves half an image."""
    from minimrcnn.io import atomic_write

    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110), binary=True)


def save_prediction_grid(path, images, outputs, class_names=None, columns: int = 4, score_threshold=0.5,
                         targets=None):
    """Save images with their predicted instances as a PNG.

    With ``targets`` (one dict with boxes, labels, masks per image), each row shows one image
    twice: its ground truth on the left, the predictions on the right, so a reader sees what
    was missed; ``columns`` is then ignored.
    """
    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

    if targets is not None:
        rows, columns = max(1, len(images)), 2
    else:
        rows = max(1, int(np.ceil(len(images) / columns)))
    fig = Figure(figsize=(2.6 * columns, 2.6 * rows))
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    if targets is None:
        for ax, image, out in zip(axes.ravel(), images, outputs):
            draw_instances(ax, image, out["boxes"], out["labels"], out["scores"], out.get("masks"),
                           class_names, score_threshold)
    else:
        for row, image, out, target in zip(axes, images, outputs, targets):
            draw_instances(row[0], image, target["boxes"], target["labels"], masks=target.get("masks"),
                           class_names=class_names)
            row[0].set_title(f"ground truth: {len(target['labels'])}", fontsize=8)
            draw_instances(row[1], image, out["boxes"], out["labels"], out["scores"], out.get("masks"),
                           class_names, score_threshold)
            shown = int((np.asarray(out["scores"]) >= score_threshold).sum())
            row[1].set_title(f"predicted: {shown} with score >= {score_threshold:g}", fontsize=8)
    fig.tight_layout()
    _save_figure(fig, path)


def smooth(values, window: int = 9) -> np.ndarray:
    """Centred moving median over ``window`` points (shorter at the ends): robust to single spikes."""
    values = np.asarray(values, dtype=np.float64)
    half = window // 2
    return np.array([np.median(values[max(0, i - half):i + half + 1]) for i in range(len(values))])


def save_training_curves(path, metrics_jsonl: str):
    """Plot the loss components (raw points, smoothed line) and AP of every evaluation over iterations."""
    import json

    from matplotlib.figure import Figure

    steps, evals = [], []
    with open(metrics_jsonl) as f:
        for line in f:
            record = json.loads(line)
            if record.get("type") == "eval":             # flat: bbox_AP, ..., segm_ARl
                evals.append({"iter": record["iter"], "eval": {
                    t: {k: record[f"{t}_{k}"] for k in ("AP", "AP50")} for t in ("bbox", "segm")}})
            elif "eval" in record:                       # the layout before "type" existed
                evals.append(record)
            else:
                steps.append(record)
    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
    names = [k for k in (steps[0] if steps else {}) if k.startswith("loss_")] + (["loss"] if steps else [])
    xs = [r["iter"] for r in steps]
    for k, name in enumerate(names):
        ys = [r[name] for r in steps]
        colour = "k" if name == "loss" else PALETTE[k % len(PALETTE)]
        axes[0].plot(xs, ys, ".", color=colour, alpha=0.3, markersize=3)
        axes[0].plot(xs, smooth(ys), "-", color=colour, lw=1.5 if name == "loss" else 1.0,
                     label="total" if name == "loss" else name)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("iteration")
    axes[0].set_title("training losses (dots: logged values; lines: moving median)")
    if names:
        axes[0].legend(fontsize=7)
    for iou_type, style in (("bbox", "-o"), ("segm", "-s")):
        for stat in ("AP", "AP50"):
            xe = [r["iter"] for r in evals if iou_type in r["eval"]]
            ye = [r["eval"][iou_type][stat] for r in evals if iou_type in r["eval"]]
            if xe:
                axes[1].plot(xe, ye, style, label=f"{iou_type} {stat}")
    axes[1].set_xlabel("iteration")
    axes[1].set_title("COCO AP on held-out images")
    axes[1].set_ylim(0, 1)
    if xs:
        axes[1].set_xlim(0, max(xs + [r["iter"] for r in evals]) * 1.02)
    if evals:
        axes[1].legend(fontsize=7)
    fig.tight_layout()
    _save_figure(fig, path)
