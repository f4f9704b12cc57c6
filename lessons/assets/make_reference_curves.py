"""Turn training runs' metrics.jsonl into reference_curves.json, the healthy run lesson 07 draws.

From the repository root, after the default training run (seed 0; ``--eval-every 100`` only adds
evaluations on 50 held-out images, it does not change the training)::

    minimrcnn train --out runs/ref --eval-every 100
    python lessons/assets/make_reference_curves.py runs/ref --out lessons/assets/reference_curves.json

More run folders (other ``--seed`` values) give lesson 07 a seed-to-seed band.

The JSON (schema ``minimrcnn-reference-curves/1``)::

    {"schema": ..., "made_by": the command above,
     "runs": [{"seed": int, "iters": int (the run's length), "iters_done": int (last logged),
               "loss_iters": [int], "losses": {"loss_classifier": [float], ..., "loss": [float]},
               "evals": [{"iter": int, "num_images": int, "bbox_AP": float, "bbox_AP50": float,
                          "segm_AP": float, "segm_AP50": float}]}]}

Only :func:`parse_records` knows metrics.jsonl's record shapes; adapt it if they change.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

SCHEMA = "minimrcnn-reference-curves/1"
LOSS_NAMES = ("loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg", "loss")


def _round(value: float) -> float:
    return float(f"{value:.4g}")


def parse_records(records: list[dict]) -> tuple[list[dict], list[dict]]:
    """metrics.jsonl's records -> (loss points, evaluations), each in this file's own shape.

    A loss point: {"iter", "loss_classifier", ..., "loss"}; an evaluation: {"iter",
    "num_images", "bbox_AP", "bbox_AP50", "segm_AP", "segm_AP50"}. A resumed run may log an
    iteration twice; the last record wins.
    """
    steps, evals = {}, {}
    for record in records:
        if "eval" in record:
            stats = record["eval"]
            evals[record["iter"]] = {"iter": record["iter"], "num_images": record.get("num_images"),
                                     **{f"{kind}_{stat}": _round(stats[kind][stat])
                                        for kind in ("bbox", "segm") for stat in ("AP", "AP50")}}
        elif "loss" in record:
            steps[record["iter"]] = {"iter": record["iter"], **{k: _round(record[k]) for k in LOSS_NAMES}}
    return [steps[k] for k in sorted(steps)], [evals[k] for k in sorted(evals)]


def read_run(run_dir: str) -> dict:
    """One run folder (metrics.jsonl and checkpoint.npz of ``minimrcnn train``) -> one entry of "runs"."""
    from minimrcnn.train.checkpoint import load_checkpoint_config

    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.isfile(path):
        raise SystemExit(f"make_reference_curves.py: {path} not found: pass the --out folder of `minimrcnn train`")
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    steps, evals = parse_records(records)
    if not steps:
        raise SystemExit(f"make_reference_curves.py: {path} holds no loss records")
    config = load_checkpoint_config(os.path.join(run_dir, "checkpoint.npz"))
    return {"seed": config["seed"], "iters": config["iters"], "iters_done": steps[-1]["iter"],
            "loss_iters": [s["iter"] for s in steps],
            "losses": {name: [s[name] for s in steps] for name in LOSS_NAMES},
            "evals": evals}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders written by `minimrcnn train --out`")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "reference_curves.json"))
    args = parser.parse_args(argv)
    runs = [read_run(run) for run in args.runs]
    made_by = "python lessons/assets/make_reference_curves.py " + " ".join(
        os.path.relpath(os.path.abspath(r)) for r in args.runs)
    data = {"schema": SCHEMA, "made_by": made_by, "runs": runs}
    with open(args.out + ".tmp", "w") as f:
        json.dump(data, f, separators=(",", ":"))
    os.replace(args.out + ".tmp", args.out)
    for run in runs:
        print(f"seed {run['seed']}: {len(run['loss_iters'])} loss points up to iteration {run['iters_done']} "
              f"of {run['iters']}, {len(run['evals'])} evaluations -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
