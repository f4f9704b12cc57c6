"""What a training run says on the terminal: the header, one line per evaluation, the final tables.

Every function returns text; ``minimrcnn.train.run`` prints it.
"""

from __future__ import annotations

import os

# A COCO stat of -1 means there was nothing to measure: no ground truth of that kind.
AREA_OF_STAT = {"s": "small objects (area < 32² px)", "m": "medium objects (32² to 96² px)",
                "l": "large objects (area > 96² px)"}


def shown_path(path: str, max_up: int = 2) -> str:
    """``path`` relative to the working folder when it lies inside it or at most ``max_up``
    folders above it (a notebook in lessons/ shows ``../runs/...``), else absolute."""
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute)
    parts = relative.split(os.sep)
    up = next((k for k, part in enumerate(parts) if part != os.pardir), len(parts))
    return absolute if up > max_up or up == len(parts) else relative


def describe_data(config, dataset) -> str:
    if config.coco:
        return f"COCO folder {shown_path(config.coco)}, {len(dataset)} images"
    return (f"generated shapes, {config.image_size} x {config.image_size}, a new image every draw "
            f"(seed {config.seed})")


def describe_validation(config, val) -> str:
    if config.val_coco:
        where = f"COCO folder {shown_path(config.val_coco)}, {len(val)} images"
    else:
        where = f"{len(val)} generated held-out images (seed {config.val_seed})"
    interval = config.eval_interval()
    if interval:
        along = f"; along the way, the first {min(config.num_periodic_val_images, len(val))} every {interval} iterations"
    else:
        along = "; only at the end"
    return where + along


def describe_schedule(config, scheduler) -> str:
    milestones = config.milestone_iters()
    images = "image" if config.batch_size == 1 else "images"
    return (f"{config.iters} iterations of {config.batch_size} {images}; lr {config.lr:g}, linear warmup over "
            f"{config.warmup_iters} iterations from x{config.warmup_factor:g}, x{config.gamma:g} at iterations "
            f"{milestones}; lr at the end {scheduler.get_lr(config.iters - 1):.3g}")


def header(config, dataset, val, scheduler, out: str, resumed_from: int | None = None) -> str:
    names = list(dataset.class_names)[1:]
    lines = [f"minimrcnn train -> {shown_path(out)}" + (f" (resumed at iteration {resumed_from})"
                                                         if resumed_from is not None else ""),
             f"  data:       {describe_data(config, dataset)}",
             f"  classes:    {len(names)}: {', '.join(names)}",
             f"  validation: {describe_validation(config, val)}",
             f"  schedule:   {describe_schedule(config, scheduler)}",
             f"  model:      {config.preset} preset, {config.box_batch_size_per_image} sampled RoIs per image"]
    return "\n".join(lines)


def warmup_warning(config, scheduler) -> str | None:
    """One line when a learning-rate drop comes before the warmup ends (the lr never reaches ``lr``)."""
    early = [m for m in config.milestone_iters() if m < config.warmup_iters]
    if not early:
        return None
    peak = max(scheduler.get_lr(t) for t in range(config.iters))
    return (f"warning: the learning-rate drops at iterations {early} fall inside the {config.warmup_iters}-iteration "
            f"warmup, so the lr never reaches {config.lr:g} (it peaks at {peak:.2g}); schedule: "
            f"{describe_schedule(config, scheduler)}. Train longer (--iters) or shorten the warmup (--warmup-iters)")


def eval_line(record: dict, total: int, best: bool = False) -> str:
    """One evaluation along the way, from its metrics.jsonl line."""
    return (f"iteration {record['iter']}/{total}: bbox AP {record['bbox_AP']:.3f} AP50 {record['bbox_AP50']:.3f} | "
            f"mask AP {record['segm_AP']:.3f} AP50 {record['segm_AP50']:.3f} ({record['num_images']} images, "
            f"{record['eval_seconds']:.1f} s)" + ("  best so far" if best else ""))


def stats_lines(stats: dict, num_images: int) -> list[str]:
    """The 12 COCO stats of each task, then what any -1 means."""
    lines = [f"{iou_type} ({num_images} held-out images): " + "  ".join(f"{k} {v:.3f}" for k, v in stats[iou_type].items())
             for iou_type in ("bbox", "segm")]
    missing = sorted({k for t in ("bbox", "segm") for k, v in stats[t].items() if v == -1},
                     key=list(stats["bbox"]).index)
    if missing:
        line = f"  -1 = nothing to measure: {', '.join(missing)}"
        why = sorted({AREA_OF_STAT[k[-1]] for k in missing if k[-1] in AREA_OF_STAT})
        if why:
            line += "; the held-out images hold no " + " and no ".join(why)
        lines.append(line)
    return lines


def per_class_table(per_class: dict) -> str:
    """Per-class AP / AP50 of bbox and segm, one row per class; -1 explained when it appears."""
    names = list(per_class["bbox"])
    width = max([len(n) for n in names] + [5])
    lines = [f"  {'class':{width}s}  bbox AP   AP50 | mask AP   AP50"]
    for name in names:
        b, m = per_class["bbox"][name], per_class["segm"][name]
        lines.append(f"  {name:{width}s}  {b['AP']:7.3f} {b['AP50']:6.3f} | {m['AP']:7.3f} {m['AP50']:6.3f}")
    if any(per_class[t][n]["AP"] == -1 for t in per_class for n in names):
        lines.append("  -1: the class has no ground truth in the held-out images")
    return "\n".join(lines)
