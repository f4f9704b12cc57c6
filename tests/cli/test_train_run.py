"""A tiny real run through `minimrcnn train` and `minimrcnn.train.train`: what the terminal says,
what the run folder holds, the lock, and the refusals that protect the user."""

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import time

import pytest

from minimrcnn.cli import main
from minimrcnn.train import TrainConfig, train
from minimrcnn.train.run_folder import EVAL_RECORD, FILES, TRAIN_RECORD
from minimrcnn.train.trainer import STAT_NAMES, TrainBar, Trainer

# 4 iterations, evaluations along the way at 2 (on 2 images), the final one on 3; milestones
# [3, 4] fall inside the default 100-iteration warmup, so the warning shows too
TINY = ["--iters", "4", "--batch-size", "1", "--image-size", "64", "--num-val-images", "3", "--eval-every", "2",
        "--num-periodic-val-images", "2", "--log-every", "1", "--no-progress"]


def run_main(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A tiny run, and config.json as it was when the first iteration started."""
    folder = str(tmp_path_factory.mktemp("train_run") / "run")
    seen = {}
    real_step = Trainer.train_step

    def step(self):
        if self.iteration == 0:
            seen["config.json"] = os.path.isfile(os.path.join(self.out_dir, "config.json"))
            seen["lock"] = os.path.isfile(os.path.join(self.out_dir, ".lock"))
        return real_step(self)

    Trainer.train_step = step
    try:
        status, out, err = run_main(["train", "--out", folder] + TINY)
    finally:
        Trainer.train_step = real_step
    assert status == 0, err
    return folder, out, err, seen


def test_the_terminal_tells_the_run(finished):
    folder, out, err, _ = finished
    for fragment in ("minimrcnn train ->", "data:       generated shapes, 64 x 64", "classes:    3: square, circle, "
                     "triangle", "validation: 3 generated held-out images", "the first 2 every 2 iterations",
                     "schedule:   4 iterations of 1 image; lr 0.02, linear warmup over 100 iterations",
                     "x0.1 at iterations [3, 4]"):
        assert fragment in out, fragment
    assert re.search(r"^iteration 2/4: bbox AP \d\.\d{3} AP50 \d\.\d{3} \| mask AP \d\.\d{3} AP50 \d\.\d{3} "
                     r"\(2 images, \d+\.\d s\)", out, flags=re.M), out
    assert "final evaluation: predicting 3 held-out images" in out
    assert out.index("iteration 2/4") < out.index("final evaluation") < out.index("per-class AP")
    assert re.search(r"class\s+bbox AP\s+AP50 \| mask AP\s+AP50\n  square\s", out), out
    assert re.search(r"-1 = nothing to measure: .*APl.*no .*large objects \(area > 96² px\)", out), out
    # milestones inside the warmup: one line, with the schedule
    warning = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "[3, 4] fall inside the 100-iteration warmup" in warning[0]
    assert "never reaches 0.02" in warning[0] and "schedule:" in warning[0]


def test_the_run_folder(finished):
    folder, _, _, seen = finished
    assert seen == {"config.json": True, "lock": True}          # both before the first iteration
    assert sorted(os.listdir(folder)) == sorted(FILES)           # no lock, no .tmp left
    config = TrainConfig.from_dict(json.load(open(os.path.join(folder, "config.json"))))
    assert config.iters == 4 and config.eval_every == 2
    summary = json.load(open(os.path.join(folder, "summary.json")))
    assert set(summary["per_class"]) == {"bbox", "segm"}
    assert set(summary["per_class"]["segm"]) == {"square", "circle", "triangle"}
    assert set(summary["per_class"]["bbox"]["square"]) == {"AP", "AP50", "AP75"}
    best = summary["best"]
    assert best["file"] == "best.npz" and best["iteration"] in (2, 4) and best["num_images"] == 2
    assert -1 <= best["segm_AP"] <= 1 and os.path.getsize(os.path.join(folder, "best.npz")) > 0
    assert summary["train_seconds"] > 0


def test_metrics_jsonl_has_one_record_shape_per_type(finished):
    folder = finished[0]
    records = [json.loads(line) for line in open(os.path.join(folder, "metrics.jsonl"))]
    shapes = {}
    for r in records:
        shapes.setdefault(r["type"], set()).add(tuple(r))
    assert set(shapes) == {"train", "eval"}
    assert shapes["train"] == {TRAIN_RECORD}
    eval_keys = EVAL_RECORD[:-3] + tuple(f"{t}_{k}" for t in ("bbox", "segm") for k in STAT_NAMES)
    assert shapes["eval"] == {eval_keys}
    assert [(r["iter"], r["final"]) for r in records if r["type"] == "eval"] == [(2, False), (4, True)]
    readme = open(os.path.join(folder, "README.txt")).read()
    assert '"type"' in readme and "bbox_AP" in readme and "segm_ARl" in readme


def test_resuming_a_finished_run_keeps_the_training_time(finished, tmp_path):
    import shutil

    folder = str(tmp_path / "again")
    shutil.copytree(finished[0], folder)
    before = json.load(open(os.path.join(folder, "summary.json")))["train_seconds"]
    status, out, err = run_main(["train", "--resume", "--out", folder, "--no-progress"])
    assert status == 0, err
    after = json.load(open(os.path.join(folder, "summary.json")))
    assert after["train_seconds"] == before > 0            # nothing trained, nothing lost
    assert "(resumed at iteration 4)" in out and "warning:" not in err


def test_api_train_resume_adds_the_training_time(tmp_path):
    config = TrainConfig(iters=2, batch_size=1, image_size=64, num_val_images=1, eval_every=0, warmup_iters=0)
    out = str(tmp_path / "run")
    trainer = Trainer(config, out, progress=False)
    trainer.train_step()
    trainer.train_seconds = 100.0          # as if the first iteration had taken 100 s
    trainer.save()
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        summary = train(config, out, resume=True, progress=False)
    assert 100.0 < summary["train_seconds"] < 200, summary["train_seconds"]
    assert re.search(r"trained 2 iterations in 1\.\d min of training steps \(over every resume\)", printed.getvalue())


# -- the lock and the folder checks ----------------------------------------------------------
def write_lock(folder, pid):
    import socket

    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, ".lock"), "w") as f:
        json.dump({"pid": pid, "host": socket.gethostname()}, f)


def test_a_live_run_holds_its_folder(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        folder = str(tmp_path / "run")
        write_lock(folder, sleeper.pid)
        status, _, err = run_main(["train", "--out", folder] + TINY)
        assert status == 2
        assert f"{folder} is in use by a running `minimrcnn train` (process {sleeper.pid}" in err
        assert os.listdir(folder) == [".lock"]
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_dead_lock_is_taken_over_and_temporaries_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = str(tmp_path / "run")
    write_lock(folder, dead.pid)
    with open(os.path.join(folder, ".tmp-abc.npz"), "wb") as f:        # a checkpoint write that was killed
        f.write(b"half")
    config = TrainConfig(iters=1, batch_size=1, image_size=64, num_val_images=1, warmup_iters=0)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        train(config, folder, progress=False)
    assert f"took over the lock of a run that is no longer running (process {dead.pid})" in err.getvalue()
    assert "removed 1 unfinished temporary file(s) of a killed run: .tmp-abc.npz" in err.getvalue()
    assert not [n for n in os.listdir(folder) if n.startswith(".")]


def test_a_fresh_run_into_an_unfinished_one_needs_overwrite(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "metrics.jsonl").write_text('{"type": "train", "iter": 1}\n')      # killed before a checkpoint
    status, _, err = run_main(["train", "--out", str(folder)] + TINY)
    assert status == 2 and "holds an unfinished run, stopped before its first checkpoint (metrics.jsonl)" in err
    assert "--overwrite" in err
    (folder / "notes.txt").write_text("mine")
    status, _, err = run_main(["train", "--out", str(folder), "--overwrite"] + TINY[:-1] + ["--iters", "1",
                                                                                          "--eval-every", "0"])
    assert status == 0, err
    assert "--overwrite: removed the earlier run's metrics.jsonl" in err
    lines = [json.loads(line) for line in open(folder / "metrics.jsonl")]
    assert [r["iter"] for r in lines if r["type"] == "train"] == [1]              # not appended to the old log
    assert (folder / "notes.txt").read_text() == "mine"                            # not a run file: kept


def test_coco_without_val_coco_is_refused(tmp_path):
    assert main(["shapes", "export", str(tmp_path / "coco"), "--num-images", "2", "--image-size", "64"]) == 0
    status, _, err = run_main(["train", "--coco", str(tmp_path / "coco"), "--out", str(tmp_path / "run")] + TINY)
    assert status == 2
    assert "without val_coco" in err and "generated shapes" in err and f"--val-coco {tmp_path / 'coco'}" in err
    assert not (tmp_path / "run").exists()


def test_resume_after_the_classes_changed_says_so(tmp_path):
    folder = tmp_path / "coco"
    assert main(["shapes", "export", str(folder), "--num-images", "2", "--image-size", "64"]) == 0
    config = TrainConfig(iters=2, batch_size=1, coco=str(folder), val_coco=str(folder))
    Trainer(config, str(tmp_path / "run"), progress=False).save()
    annotations = json.load(open(folder / "annotations.json"))
    annotations["categories"].append({"id": 9, "name": "star"})
    json.dump(annotations, open(folder / "annotations.json", "w"))
    status, _, err = run_main(["train", "--resume", "--out", str(tmp_path / "run"), "--no-progress"])
    assert status == 2
    assert f"{tmp_path / 'run' / 'checkpoint.npz'} was trained on 3 classes (4 with the background)" in err
    assert f"the training folder {folder} now has 4 (5 with the background)" in err


# -- the progress bar ------------------------------------------------------------------------
def test_the_bar_counts_training_steps_only():
    bar = TrainBar(10, 0, enabled=True, file=io.StringIO())
    time.sleep(0.4)                         # the first step: Numba compiles
    bar.step({"loss": 1.0})
    assert bar.elapsed < 0.2
    time.sleep(0.05)
    bar.step({"loss": 1.0})
    time.sleep(0.4)                         # an evaluation
    bar.resume_clock()
    bar.step({"loss": 1.0})
    assert bar.elapsed < 0.3
    bar.close()


# -- eval ------------------------------------------------------------------------------------
def test_eval_says_what_it_used(finished, tmp_path, monkeypatch, capsys):
    import shutil

    os.makedirs(tmp_path / "run")
    shutil.copy(os.path.join(finished[0], "best.npz"), tmp_path / "run" / "best.npz")
    monkeypatch.chdir(tmp_path)
    status = main(["eval", "--weights", "run/best.npz", "--num-images", "2", "--out", "run/e.json"])
    assert status == 0
    captured = capsys.readouterr()
    assert "evaluating run/best.npz on 2 images (generated held-out shapes)" in captured.out
    assert "per-class AP (2 images)" in captured.out and "\n  run/e.json" in captured.out
    assert os.path.abspath("run") not in captured.out                  # paths inside cwd are relative
    assert "evaluate" in captured.err and "predict" not in captured.err   # the bar's label
    stats = json.load(open("run/e.json"))
    assert stats["num_images"] == 2 and set(stats["per_class"]["bbox"]) == {"square", "circle", "triangle"}


def test_ctrl_c_during_the_final_evaluation_says_the_training_is_complete(tmp_path, monkeypatch):
    import minimrcnn.train.run as run_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "predict_dataset", interrupted)
    folder = str(tmp_path / "run")
    status, _, err = run_main(["train", "--out", folder, "--iters", "1", "--eval-every", "0"] + TINY[2:])
    assert status == 130
    assert (f"stopped by SIGINT during the final evaluation, after training; the checkpoint of iteration 1 is "
            f"complete ({folder}/checkpoint.npz)") in err
    assert f"Resume with:\n  minimrcnn train --resume --out {folder}" in err
    assert not os.path.exists(os.path.join(folder, ".lock"))
