"""A trained-weights training step and inference: this working tree against an earlier commit.

    python benchmarks/experiments/revision_ab.py 98e4b77                 # 6 rounds, 64 RoIs per image
    python benchmarks/experiments/revision_ab.py 98e4b77 --rounds 8 --rois 128

``git archive REV minimrcnn`` is unpacked into a temporary folder (its Numba kernels
compile there once), then fresh processes alternate: tree, REV, tree, REV, ... Each
process loads the same weights (default lessons/assets/shapes_model.npz), warms up and
prints the median time of 10 training steps (batch 4, the benchmark's fixed images and
sampling) and of 10 inferences. Alternating processes, rather than one block per
version, lets a busy spell of the machine slow both alike. Prints the median over
rounds of each, and the tree's time over REV's (below 1: the tree is faster).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # benchmarks/
ROOT = os.path.dirname(HERE)

WORKER = r"""
import sys
import numpy as np
sys.path.insert(0, {bench!r})
from common import median_ms, shapes_batch
from minimrcnn import runtime
runtime.keep_freed_memory()
from minimrcnn.models import maskrcnn_shapes
from minimrcnn.models.weights import load_weights
model = maskrcnn_shapes()
load_weights(model, {weights!r})
model.roi_heads.fg_bg_sampler.batch_size_per_image = {rois}
samples = shapes_batch(4)
images, targets = [s[0] for s in samples], [s[1] for s in samples]

def step():
    losses, cache = model.train()(images, targets, rng=np.random.default_rng(0))
    model.zero_grad()
    model.backward(cache)

def infer():
    model.eval()(images)

print(median_ms(step, 10, warmup=1), median_ms(infer, 10, warmup=1))
"""


def measure(source_root: str, weights: str, rois: int) -> tuple[float, float]:
    """(step ms, inference ms) of one fresh process importing minimrcnn from source_root."""
    code = WORKER.format(bench=HERE, weights=os.path.abspath(weights), rois=rois)
    env = {**os.environ, "PYTHONPATH": source_root}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=source_root, check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[-2]), float(out[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rev", help="the earlier commit (anything `git archive` takes)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--rois", type=int, default=64, help="sampled RoIs per image (default 64, the recipe's)")
    parser.add_argument("--weights", default=os.path.join(ROOT, "lessons", "assets", "shapes_model.npz"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        archive = os.path.join(tmp, "rev.tar")
        with open(archive, "wb") as f:
            subprocess.run(["git", "archive", args.rev, "minimrcnn"], cwd=ROOT, check=True, stdout=f)
        rev_root = os.path.join(tmp, "rev")
        with tarfile.open(archive) as tar:
            tar.extractall(rev_root, filter="data")
        measure(rev_root, args.weights, args.rois)              # compiles REV's kernels once
        results = {"tree": [], args.rev: []}
        for _ in range(args.rounds):
            results["tree"].append(measure(ROOT, args.weights, args.rois))
            results[args.rev].append(measure(rev_root, args.weights, args.rois))
    tree, rev = np.median(results["tree"], axis=0), np.median(results[args.rev], axis=0)
    print(f"{args.rounds} rounds, {args.rois} RoIs per image, weights {args.weights}")
    print(f"train step: tree {tree[0]:.1f} ms, {args.rev} {rev[0]:.1f} ms (tree / {args.rev}: {tree[0] / rev[0]:.2f})")
    print(f"inference:  tree {tree[1]:.1f} ms, {args.rev} {rev[1]:.1f} ms (tree / {args.rev}: {tree[1] / rev[1]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
