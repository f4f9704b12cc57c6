"""Train a tiny-shapes recipe and print COCO AP against iterations and training time.

    python benchmarks/train_recipe.py --out runs/recipes/default             # the CLI's recipe
    python benchmarks/train_recipe.py --out runs/recipes/roi64_2200 --iters 2200 --box-batch-size-per-image 64
    python benchmarks/train_recipe.py --compare runs/recipes/* --plot runs/recipes/ap_vs_minutes.png

Any flag this script does not know goes to ``minimrcnn train`` (``--lr``,
``--box-batch-size-per-image``, ``--clip-grad-norm``, ...). The run evaluates on 50
held-out images ``--evals`` times along the way and on 200 at the end; the script then
prints one row per evaluation from RUN_DIR/metrics.jsonl. "train min" counts only the
training steps, not the evaluations. ``--compare`` prints the table of every finished run
given and draws their mask AP against training minutes into one figure. The figures and
tables of docs/benchmarks.md come from this script.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from minimrcnn.cli import main as minimrcnn_main
from minimrcnn.train.trainer import is_eval_record, stats_of_record


def read_run(run_dir: str):
    """(summary dict, evaluation records of metrics.jsonl in order, median s/iter) of a finished run."""
    summary_path = os.path.join(run_dir, "summary.json")
    if not os.path.isfile(summary_path):
        raise ValueError(f"{run_dir} holds no finished run (no summary.json)")
    with open(summary_path) as f:
        summary = json.load(f)
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    steps = sorted(r["s_per_iter"] for r in records if "s_per_iter" in r)
    evals = [dict(r, eval=stats_of_record(r)) for r in records if is_eval_record(r)]   # either metrics layout
    return summary, evals, steps[len(steps) // 2]


def recipe_label(summary: dict) -> str:
    """The settings that differ from TrainConfig's defaults, e.g. 'iters 2200, box_batch_size_per_image 64'."""
    from minimrcnn.train.config import TrainConfig

    default = TrainConfig().to_dict()
    config = TrainConfig.from_dict(summary["config"]).to_dict()    # a run older than a field: the value it used
    skip = {"eval_every", "checkpoint_every", "log_every", "num_val_images", "num_periodic_val_images"}
    changed = [f"{k} {v}" for k, v in config.items() if k not in skip and default.get(k) != v]
    label = ", ".join(changed) or "defaults"
    # a run of another library with the same recipe (experiments/torchvision_recipe.py) says which
    return f"{summary['library']}, {label}" if "library" in summary else label


def table(run_dir: str) -> str:
    summary, evals, median_step = read_run(run_dir)
    rows = [f"{run_dir}: {recipe_label(summary)}", "",
            "| iteration | train min | images | bbox AP / AP50 / AP75 | mask AP / AP50 / AP75 |", "|---|---|---|---|---|"]
    for i, r in enumerate(evals):
        images = summary["num_val_images"] if i == len(evals) - 1 else summary["config"]["num_periodic_val_images"]
        b, s = r["eval"]["bbox"], r["eval"]["segm"]
        rows.append(f"| {r['iter']} | {r.get('train_seconds', float('nan')) / 60:.1f} | {images} | "
                    f"{b['AP']:.3f} / {b['AP50']:.3f} / {b['AP75']:.3f} | {s['AP']:.3f} / {s['AP50']:.3f} / {s['AP75']:.3f} |")
    rows.append("")
    rows.append(f"median s/iter over logged windows: {median_step:.3f}; "
                f"final evaluation of {summary['num_val_images']} images: {summary['eval_seconds']:.1f} s")
    return "\n".join(rows)


def plot(run_dirs: list[str], path: str) -> None:
    """Mask AP against training minutes, one line per run; the final (200-image) point is a larger marker."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from minimrcnn.io import atomic_write

    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=90)
    for run_dir in run_dirs:
        summary, evals, _ = read_run(run_dir)
        minutes = [r["train_seconds"] / 60 for r in evals]
        ap = [r["eval"]["segm"]["AP"] for r in evals]
        line, = ax.plot(minutes, ap, marker="o", markersize=3, label=f"{os.path.basename(os.path.normpath(run_dir))}: {recipe_label(summary)}")
        ax.plot(minutes[-1:], ap[-1:], marker="o", markersize=8, color=line.get_color())
    # issue 16's targets for the default command: 9.5 minutes of training, mask AP 0.74
    ax.axvline(9.5, color="grey", linestyle=":", linewidth=1, label="9.5 minutes (the time limit)")
    ax.axhline(0.74, color="grey", linestyle="--", linewidth=1, label="mask AP 0.74 (the target)")
    ax.set_ylim(top=max(ax.get_ylim()[1], 0.76))
    ax.set_xlabel("training minutes (steps only, 2 cores)")
    ax.set_ylabel("mask AP (50 held-out images; last point 200)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png"), binary=True)
    plt.close(fig)


def run(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=None, help="iterations (default: the CLI's recipe)")
    parser.add_argument("--evals", type=int, default=4, help="evaluations on 50 images along the way (default 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/recipe")
    parser.add_argument("--table-only", action="store_true", help="only print the table of the finished run in --out")
    parser.add_argument("--compare", nargs="+", metavar="RUN_DIR", help="print the tables of these finished runs")
    parser.add_argument("--plot", metavar="PNG", help="with --compare: draw their mask AP against training minutes")
    args, train_flags = parser.parse_known_args(argv)
    if args.compare:
        finished = [d for d in args.compare if os.path.isfile(os.path.join(d, "summary.json"))]
        for d in args.compare:
            if d not in finished:
                print(f"skipped {d}: no summary.json (not a run folder, or a run that diverged or did not finish)")
        print("\n\n".join(table(d) for d in finished))
        if args.plot:
            plot(finished, args.plot)
            print(f"\nwrote {args.plot}")
        return 0
    if not args.table_only:
        from minimrcnn.train.config import TrainConfig

        iters = args.iters or TrainConfig.iters
        cli = ["train", "--out", args.out, "--eval-every", str(max(1, iters // (args.evals + 1))),
               "--seed", str(args.seed), "--no-progress", "--iters", str(iters)] + train_flags
        status = minimrcnn_main(cli)
        if status:
            return status
    print(table(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(run())
