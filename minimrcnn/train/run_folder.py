"""What ``minimrcnn train`` leaves in its run folder, and the checks made before it writes any of it."""

from __future__ import annotations

import json
import os

from minimrcnn.io import atomic_write_text

FILES = {
    "model.npz": "final weights, torchvision state_dict key names (minimrcnn.load_weights, "
                 "`minimrcnn eval --weights`, `minimrcnn predict --weights`)",
    "checkpoint.npz": "weights + optimizer state + iteration + config; `minimrcnn train --resume --out "
                      "RUN_DIR` continues the run bit for bit",
    "metrics.jsonl": "one JSON object per logged iteration (the five losses, their sum, lr, s_per_iter, "
                     "train_seconds) and one per evaluation (\"eval\": 12 COCO stats for bbox and segm)",
    "curves.png": "left: training losses (dots: logged values, lines: moving median); right: COCO AP and "
                  "AP50 at every evaluation",
    "predictions.png": "held-out images: ground truth on the left, predictions with score >= 0.5 on the "
                       "right (class name and score on each box)",
    "summary.json": "final COCO stats (bbox, segm), timings, the config, and this list of files",
    "README.txt": "this description",
}


def check_out_dir(out: str, resume: bool) -> str:
    """Refuse an output folder that cannot take a run; returns the checkpoint path. Writes nothing.

    Raises:
        ValueError naming ``out``: it is a file, it is not writable, it already holds a run
            (without ``resume``), or it holds none (with ``resume``).
    """
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out} exists and is not a folder: choose a folder for the run")
    existing = os.path.abspath(out)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: cannot write in {existing} (permission denied)")
    checkpoint = os.path.join(out, "checkpoint.npz")
    if resume and not os.path.isfile(checkpoint):
        raise ValueError(f"--resume: no checkpoint at {checkpoint}; start a new run without --resume")
    if not resume and os.path.exists(checkpoint):
        raise ValueError(f"{out} already holds a run (checkpoint.npz): pass --resume to continue it, "
                         "or choose another --out")
    return checkpoint


def write_summary(out: str, summary: dict) -> None:
    """summary.json (with the ``files`` list) and README.txt, each written atomically."""
    atomic_write_text(os.path.join(out, "summary.json"), json.dumps({**summary, "files": FILES}, indent=2))
    lines = [f"A minimrcnn training run: {summary.get('iterations')} iterations.", "", "Files:"]
    lines += [f"  {name:16s} {text}" for name, text in FILES.items()]
    atomic_write_text(os.path.join(out, "README.txt"), "\n".join(lines) + "\n")


def kernel_cache_is_cold(roots=None) -> bool:
    """True when no Numba cache index (*.nbi) exists yet for minimrcnn: this run compiles the kernels.

    Numba writes its cache beside each module (``__pycache__``) or under ``NUMBA_CACHE_DIR``;
    ``roots`` replaces those places (for tests).
    """
    from minimrcnn import runtime

    if runtime.jit_disabled():
        return False
    if roots is None:
        roots = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
        if os.environ.get("NUMBA_CACHE_DIR"):
            roots.append(os.environ["NUMBA_CACHE_DIR"])
    for root in roots:
        for _, _, files in os.walk(root):
            if any(f.endswith(".nbi") for f in files):
                return False
    return True
