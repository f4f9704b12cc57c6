"""Train the tiny-shapes recipe and print COCO AP against iterations and training time.

    python benchmarks/train_recipe.py --iters 1800 --eval-every 300 --out runs/recipe

Runs ``minimrcnn train`` (periodic evaluations on 50 held-out images, the final one on
200), then prints one row per evaluation from RUN_DIR/metrics.jsonl. "train min" counts
only the training steps, not the evaluations. The figures in docs/benchmarks.md come
from this script.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from minimrcnn.cli import main as minimrcnn_main


def table(run_dir: str) -> str:
    rows = ["| iteration | train min | images | bbox AP / AP50 / AP75 | mask AP / AP50 / AP75 |", "|---|---|---|---|---|"]
    summary = json.load(open(os.path.join(run_dir, "summary.json")))
    records = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
    evals = [r for r in records if "eval" in r]
    for i, r in enumerate(evals):
        images = summary["num_val_images"] if i == len(evals) - 1 else summary["config"]["num_periodic_val_images"]
        b, s = r["eval"]["bbox"], r["eval"]["segm"]
        rows.append(f"| {r['iter']} | {r.get('train_seconds', float('nan')) / 60:.1f} | {images} | "
                    f"{b['AP']:.3f} / {b['AP50']:.3f} / {b['AP75']:.3f} | {s['AP']:.3f} / {s['AP50']:.3f} / {s['AP75']:.3f} |")
    steps = [r["s_per_iter"] for r in records if "s_per_iter" in r]
    rows.append("")
    rows.append(f"median s/iter over logged windows: {sorted(steps)[len(steps) // 2]:.3f}; "
                f"final evaluation of {summary['num_val_images']} images: {summary['eval_seconds']:.1f} s")
    return "\n".join(rows)


def run(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=None, help="iterations (default: the CLI's recipe)")
    parser.add_argument("--eval-every", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/recipe")
    parser.add_argument("--table-only", action="store_true", help="only print the table of an existing run")
    args = parser.parse_args(argv)
    if not args.table_only:
        cli = ["train", "--out", args.out, "--eval-every", str(args.eval_every), "--seed", str(args.seed),
               "--no-progress"] + (["--iters", str(args.iters)] if args.iters else [])
        status = minimrcnn_main(cli)
        if status:
            return status
    print(table(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(run())
