"""The --quick demo end to end: trains, evaluates, draws; the loss falls and AP clears a floor."""

import json
import os

import pytest

from minimrcnn.cli import main


@pytest.mark.slow
def test_quick_training_run_learns(tmp_path):
    out = str(tmp_path / "run")
    assert main(["train", "--quick", "--seed", "0", "--out", out, "--no-progress"]) == 0
    for name in ("config.json", "model.npz", "best.npz", "checkpoint.npz", "metrics.jsonl", "curves.png",
                 "predictions.png", "summary.json", "README.txt"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    records = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    # the default run evaluates 3 times along the way (every 300 // 4 = 75 iterations), then at the end
    assert [r["iter"] for r in records if r["type"] == "eval"] == [75, 150, 225, 300]
    losses = [r["loss"] for r in records if r["type"] == "train"]
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.5 * first, (first, last)
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["iterations"] == 300
    # Measured with seed 0 (the recipe's 64 RoIs per image; 2026-12-06, after the fused ReLUs): in
    # the suite's xdist worker, one thread for BLAS and Numba, mean loss 1.69 -> 0.58, AP50 0.290
    # (bbox) and 0.300 (segm) on the 50 held-out images; run alone with 2 threads, 0.231 and 0.266
    # (the thread count changes the last bits of some sums). Before, a last-bit change in one bias
    # gradient's sum gave 0.360 and 0.372; an untrained model scores ~0. 300 early steps amplify
    # rounding, so the floors sit at about half of the lowest figures, and the test checks that
    # learning happened, not an exact number.
    assert summary["bbox"]["AP50"] > 0.12, summary["bbox"]
    assert summary["segm"]["AP50"] > 0.12, summary["segm"]
    # best.npz: the best mask AP of the evaluations on the first 50 images (the final weights included)
    along = {r["iter"]: r["segm_AP"] for r in records if r["type"] == "eval" and not r["final"]}
    assert summary["best"]["iteration"] in (*along, 300)
    assert summary["best"]["segm_AP"] >= max(along.values())
    assert set(summary["per_class"]["segm"]) == {"square", "circle", "triangle"}
    assert all(0 <= v["AP50"] <= 1 for v in summary["per_class"]["segm"].values())
