"""What ``minimrcnn train`` leaves in its run folder, and the checks made before it writes any of it.

One run owns a folder at a time: :class:`RunLock` holds ``RUN_DIR/.lock`` (the process id and
host) while it runs. A second run into a live folder is refused; the lock of a process that
no longer exists (killed with SIGKILL, a crashed machine) is taken over, saying so.
"""

from __future__ import annotations

import json
import os
import socket
import textwrap

from minimrcnn.io import atomic_write_text

# The lines of metrics.jsonl: one record shape per "type", every value a number (pandas:
# ``df = pd.read_json(path, lines=True); df[df.type == "eval"]``).
TRAIN_RECORD = ("type", "iter", "lr", "s_per_iter", "train_seconds", "loss_classifier", "loss_box_reg", "loss_mask",
                "loss_objectness", "loss_rpn_box_reg", "loss")
EVAL_RECORD = ("type", "iter", "final", "train_seconds", "num_images", "eval_seconds", "bbox_AP", "...", "segm_ARl")

FILES = {
    "config.json": "the run's TrainConfig (written before the first iteration; TrainConfig.from_dict reads it)",
    "model.npz": "final weights, torchvision state_dict key names (minimrcnn.load_weights, "
                 "`minimrcnn eval --weights`, `minimrcnn predict --weights`)",
    "best.npz": "the weights with the highest mask AP among the evaluations along the way and the final "
                "weights, all scored on the same first held-out images; its iteration and AP are in "
                "summary.json under \"best\"",
    "checkpoint.npz": "weights + optimizer state + iteration + config + train seconds; `minimrcnn train "
                      "--resume --out RUN_DIR` continues the run bit for bit",
    "metrics.jsonl": "one JSON object per line, two shapes told apart by \"type\". \"train\" (every log_every "
                     "iterations): " + ", ".join(TRAIN_RECORD[1:]) + ". \"eval\" (each evaluation; final: true "
                     "for the one on the whole held-out set): iter, final, train_seconds, num_images, "
                     "eval_seconds and the 12 COCO stats of each task as bbox_AP, bbox_AP50, ..., segm_ARl "
                     "(-1: nothing to measure, e.g. APl without large objects)",
    "curves.png": "left: training losses (dots: logged values, lines: moving median); right: COCO AP and "
                  "AP50 at every evaluation",
    "predictions.png": "held-out images: ground truth on the left, predictions with score >= 0.5 on the "
                       "right (class name and score on each box)",
    "summary.json": "final COCO stats (bbox, segm), per-class AP (per_class), the best weights (best), "
                    "timings (train_seconds: over every resume), the config, and this list of files",
    "README.txt": "this description",
}
LOCK = ".lock"
RUN_FILES = tuple(FILES) + (LOCK,)      # what --overwrite removes (nothing else in the folder)


def check_out_dir(out: str, resume: bool, overwrite: bool = False) -> str:
    """Refuse an output folder that cannot take a run; returns the checkpoint path. Writes nothing.

    Raises:
        ValueError naming ``out``: it is a file, it is not writable, a live run holds it, it
            already holds a run (without ``resume`` or ``overwrite``), or it holds none (with ``resume``).
    """
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out} exists and is not a folder: choose a folder for the run")
    existing = os.path.abspath(out)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: cannot write in {existing} (permission denied)")
    RunLock(out).check()
    checkpoint = os.path.join(out, "checkpoint.npz")
    if resume and overwrite:
        raise ValueError("--resume and --overwrite contradict each other: continue the run, or start it again")
    if resume and not os.path.isfile(checkpoint):
        raise ValueError(f"--resume: no checkpoint at {checkpoint}; start a new run without --resume"
                         + (" (with --overwrite: the folder holds files of an earlier run)" if _run_files(out) else ""))
    if not resume and not overwrite:
        if os.path.exists(checkpoint):
            finished = os.path.exists(os.path.join(out, "summary.json"))
            raise ValueError(f"{out} already holds {'a finished' if finished else 'an unfinished'} run "
                             "(checkpoint.npz): pass --resume to continue it, --overwrite to start it again, "
                             "or choose another --out")
        found = _run_files(out)
        if found:
            raise ValueError(f"{out} holds an unfinished run, stopped before its first checkpoint ({', '.join(found)}): "
                             "pass --overwrite to start it again, or choose another --out")
    return checkpoint


def _run_files(out: str) -> list[str]:
    return [name for name in FILES if os.path.exists(os.path.join(out, name))]


def clear_run(out: str) -> list[str]:
    """Delete the files a run writes (``RUN_FILES``, leftover ``.tmp-*``) from ``out``; returns their names."""
    removed = []
    if not os.path.isdir(out):
        return removed
    for name in sorted(os.listdir(out)):
        if name in FILES or name.startswith(".tmp-"):
            os.remove(os.path.join(out, name))
            removed.append(name)
    return removed


def remove_stale_temporaries(out: str) -> list[str]:
    """Delete ``.tmp-*`` files left by a write that a kill interrupted (io.atomic_write); the lock holder only."""
    names = [n for n in os.listdir(out) if n.startswith(".tmp-")] if os.path.isdir(out) else []
    for name in names:
        os.remove(os.path.join(out, name))
    return names


class RunLock:
    """``RUN_DIR/.lock``: held by one live ``train`` at a time.

    ``acquire()`` creates the folder and the lock file atomically (``O_EXCL``) and returns a
    message when it took over the lock of a dead process, else None. ``release()`` removes it.
    """

    def __init__(self, out: str):
        self.out, self.path = out, os.path.join(out, LOCK)

    def _holder(self):
        """(pid, host) written in the lock file, or None when there is no readable lock."""
        try:
            with open(self.path) as f:
                data = json.load(f)
            return int(data["pid"]), str(data["host"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _alive(self, holder) -> bool:
        pid, host = holder
        if host != socket.gethostname():
            return True             # cannot tell from here: assume it runs
        if pid == os.getpid():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:     # exists, owned by someone else
            return True
        return True

    def check(self) -> None:
        """Raise ValueError when a live run holds the folder. Writes nothing."""
        holder = self._holder()
        if holder is not None and self._alive(holder):
            raise ValueError(f"{self.out} is in use by a running `minimrcnn train` (process {holder[0]} on "
                             f"{holder[1]}, {self.path}): wait for it to finish, or choose another --out")

    def acquire(self) -> str | None:
        os.makedirs(self.out, exist_ok=True)
        note = None
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self.check()
                holder = self._holder()
                note = (f"took over the lock of a run that is no longer running (process {holder[0]}): "
                        f"{self.path}" if holder else f"replaced an unreadable lock file: {self.path}")
                os.remove(self.path)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump({"pid": os.getpid(), "host": socket.gethostname()}, f)
            return note
        raise ValueError(f"{self.out}: another run took the lock ({self.path}) at the same moment; choose another --out")

    def release(self) -> None:
        holder = self._holder()
        if holder is not None and holder[0] == os.getpid() and os.path.exists(self.path):
            os.remove(self.path)


def write_config(out: str, config: dict) -> None:
    atomic_write_text(os.path.join(out, "config.json"), json.dumps(config, indent=2))


def write_summary(out: str, summary: dict) -> None:
    """summary.json (with the ``files`` list) and README.txt, each written atomically."""
    atomic_write_text(os.path.join(out, "summary.json"), json.dumps({**summary, "files": FILES}, indent=2))
    lines = [f"A minimrcnn training run: {summary.get('iterations')} iterations.", "", "Files:"]
    for name, text in FILES.items():
        lines += textwrap.wrap(text, 100, initial_indent=f"  {name:16s} ", subsequent_indent=" " * 19)
    atomic_write_text(os.path.join(out, "README.txt"), "\n".join(lines) + "\n")
