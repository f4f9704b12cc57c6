"""Every bad input to the `minimrcnn` command: one paragraph on stderr, a nonzero exit status, no
traceback, and nothing written (the folder it runs in is unchanged byte for byte).

The cases run the command's ``main`` in this process (``run_cli``); a sample of them also runs
``python -m minimrcnn`` in a subprocess and must print the same. The cases stop before any
training step.
"""

import contextlib
import hashlib
import io
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from minimrcnn.cli import main


def snapshot(folder) -> dict:
    """relative path -> sha256 of every file under ``folder``."""
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            files[os.path.relpath(path, folder)] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return files


def run_cli(argv, cwd, env_extra=None, in_subprocess=False) -> subprocess.CompletedProcess:
    """``minimrcnn *argv`` run in ``cwd``: its exit status, stdout and stderr.

    By default ``main(argv)`` runs in this process with its streams captured: it is what
    ``python -m minimrcnn`` calls, it catches every error itself, and a new interpreter
    per case (half a second of imports each) made these files a sixth of the suite's time.
    ``in_subprocess=True`` runs the real command; test_the_real_command_agrees checks
    that the two give the same answer, and the tracebacks of --debug need the real one.
    """
    env = dict(os.environ, **(env_extra or {}))
    if not env_extra or "MINIMRCNN_DEBUG" not in env_extra:
        env.pop("MINIMRCNN_DEBUG", None)
    if in_subprocess:
        return subprocess.run([sys.executable, "-m", "minimrcnn", *argv], cwd=cwd, capture_output=True, text=True,
                              env=env, timeout=120)
    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    try:
        os.environ.clear()
        os.environ.update(env)
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(list(argv))
            except SystemExit as exit_:   # argparse's usage errors
                status = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(["minimrcnn", *argv], status, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A folder with good and bad inputs: COCO folders, weights files, a checkpoint, a file named like a folder."""
    from minimrcnn.models import maskrcnn_shapes, save_weights
    from minimrcnn.train.config import TrainConfig
    from minimrcnn.train.trainer import Trainer

    w = tmp_path_factory.mktemp("world")
    assert main(["shapes", "export", str(w / "coco"), "--num-images", "3", "--image-size", "64"]) == 0
    shutil.copytree(w / "coco", w / "truncated_json")
    text = (w / "coco" / "annotations.json").read_text()
    (w / "truncated_json" / "annotations.json").write_text(text[: len(text) // 2])
    shutil.copytree(w / "coco", w / "missing_image")
    os.remove(w / "missing_image" / "images" / "000001.png")
    save_weights(maskrcnn_shapes(), str(w / "model.npz"))
    data = (w / "model.npz").read_bytes()
    (w / "truncated.npz").write_bytes(data[: len(data) // 2])
    np.savez(str(w / "pickled.npz"), **{"roi_heads.box_predictor.cls_score.weight": np.array([{"a": 1}], dtype=object)})
    np.savez(str(w / "other.npz"), x=np.zeros(3))
    (w / "a_file").write_text("not a folder")
    # a run stopped at iteration 0 of 4 (what --resume finds), and one with a corrupt checkpoint
    config = TrainConfig(iters=4, batch_size=1, image_size=64, lr=0.01, num_val_images=1)
    Trainer(config, str(w / "run"), progress=False).save()
    # a run on a COCO folder of 3 images, whose folder then shrinks to 2
    assert main(["shapes", "export", str(w / "changing"), "--num-images", "3", "--image-size", "64"]) == 0
    Trainer(TrainConfig(iters=4, batch_size=1, coco=str(w / "changing"), num_val_images=1), str(w / "coco_run"),
            progress=False).save()
    assert main(["shapes", "export", str(w / "changing"), "--num-images", "2", "--image-size", "64", "--overwrite"]) == 0
    os.makedirs(w / "broken_run")
    ckpt = (w / "run" / "checkpoint.npz").read_bytes()
    (w / "broken_run" / "checkpoint.npz").write_bytes(ckpt[: len(ckpt) // 3])
    os.makedirs(w / "empty")
    os.makedirs(w / "no_checkpoint")
    (w / "no_checkpoint" / "metrics.jsonl").write_text('{"type": "train", "iter": 1}\n')
    from PIL import Image
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(w / "image.png")
    return w


TINY = ["--iters", "2", "--batch-size", "1", "--image-size", "64", "--num-val-images", "1", "--no-progress"]

# (argv, exit status, fragments of the one-paragraph message); {w} is the world folder
CASES = {
    "negative seed": (["train", "--seed", "-1"], 2, ["argument --seed: expected an integer >= 0, got -1"]),
    "negative eval-every": (["train", "--eval-every", "-1"], 2, ["argument --eval-every: expected an integer >= 0"]),
    "zero iters": (["train", "--iters", "0"], 2, ["argument --iters: expected an integer >= 1, got 0"]),
    "nan lr": (["train", "--lr", "nan"], 2, ["argument --lr: expected a number > 0, got nan"]),
    "text lr": (["train", "--lr", "abc"], 2, ["argument --lr: expected a number > 0, got 'abc'"]),
    "zero checkpoint-every": (["train", "--checkpoint-every", "0"], 2, ["argument --checkpoint-every"]),
    "negative clip": (["train", "--clip-grad-norm", "-1"], 2, ["argument --clip-grad-norm: expected a number >= 0"]),
    "too few RoIs": (["train", "--box-batch-size-per-image", "3"], 2,
                     ["argument --box-batch-size-per-image: expected an integer >= 4, got 3"]),
    "tiny image size": (["train", "--image-size", "8"], 2, ["argument --image-size: expected an integer >= 32"]),
    "unknown command": (["frobnicate"], 2, ["invalid choice"]),
    "decreasing milestones": (["train", "--milestones", "0.9", "0.5", "--out", "{w}/new"] + TINY, 2,
                              ["--milestones must be increasing fractions in (0, 1], got (0.9, 0.5)"]),
    "--coco without --val-coco": (["train", "--coco", "{w}/coco", "--out", "{w}/new"] + TINY, 2,
                                  ["coco {w}/coco is given without val_coco", "--val-coco {w}/coco"]),
    "--resume with --overwrite": (["train", "--resume", "--overwrite", "--out", "{w}/run", "--no-progress"], 2,
                                  ["--resume and --overwrite contradict each other"]),
    "--resume of a run killed before its first checkpoint": (
        ["train", "--resume", "--out", "{w}/no_checkpoint", "--no-progress"], 2,
        ["--resume: no checkpoint at {w}/no_checkpoint/checkpoint.npz", "--overwrite"]),
    "missing --coco folder": (["train", "--coco", "{w}/nowhere", "--val-coco", "{w}/coco", "--out", "{w}/new"] + TINY, 2,
                              ["--coco {w}/nowhere is not a COCO-format folder", "{w}/nowhere/annotations.json"]),
    "truncated --val-coco json": (["train", "--val-coco", "{w}/truncated_json", "--out", "{w}/new"] + TINY, 2,
                                  ["{w}/truncated_json/annotations.json", "cannot read JSON"]),
    "--coco image file missing": (["train", "--coco", "{w}/missing_image", "--val-coco", "{w}/coco", "--out",
                                   "{w}/new"] + TINY, 2,
                                  ["image id 1: cannot read image {w}/missing_image/images/000001.png: no such file"]),
    "--out is a file": (["train", "--out", "{w}/a_file"] + TINY, 2, ["--out {w}/a_file exists and is not a folder"]),
    "--resume without a checkpoint": (["train", "--resume", "--out", "{w}/empty"] + TINY, 2,
                                      ["--resume: no checkpoint at {w}/empty/checkpoint.npz"]),
    "existing run without --resume": (["train", "--out", "{w}/run"] + TINY, 2,
                                      ["{w}/run already holds an unfinished run (checkpoint.npz): pass --resume",
                                       "--overwrite"]),
    "corrupt checkpoint": (["train", "--resume", "--out", "{w}/broken_run", "--no-progress"], 2,
                           ["{w}/broken_run/checkpoint.npz is not a readable .npz checkpoint"]),
    "--resume with another --iters": (["train", "--resume", "--out", "{w}/run", "--iters", "8", "--no-progress"], 2,
                                      ["iters: checkpoint 4 vs now 8", "milestones are fractions of iters",
                                       "extend"]),
    "--resume with another --lr": (["train", "--resume", "--out", "{w}/run", "--lr", "0.5", "--no-progress"], 2,
                                   ["lr: checkpoint 0.01 vs now 0.5"]),
    "--resume with another --batch-size": (["train", "--resume", "--out", "{w}/run", "--batch-size", "2",
                                            "--no-progress"], 2, ["batch_size: checkpoint 1 vs now 2"]),
    "--resume with another --seed": (["train", "--resume", "--out", "{w}/run", "--seed", "3", "--no-progress"], 2,
                                     ["seed: checkpoint 0 vs now 3"]),
    "--resume with another --coco": (["train", "--resume", "--out", "{w}/run", "--coco", "{w}/coco",
                                      "--no-progress"], 2, ["coco: checkpoint None vs now '{w}/coco'"]),
    "--resume after the training folder changed": (["train", "--resume", "--out", "{w}/coco_run", "--no-progress"],
                                                   2, ["coco: the checkpoint was trained on 3 images of {w}/changing, "
                                                       "the folder now holds 2"]),
    "--extend an unfinished run": (["train", "--extend", "--iters", "8", "--out", "{w}/run", "--no-progress"], 2,
                                   ["is at iteration 0 of 4, not finished"]),
    "--extend without --iters": (["train", "--extend", "--out", "{w}/run"], 2, ["--extend needs --iters N"]),
    "missing weights": (["eval", "--weights", "{w}/nope.npz"], 2, ["weights file not found: {w}/nope.npz"]),
    "truncated weights": (["eval", "--weights", "{w}/truncated.npz"], 2,
                          ["{w}/truncated.npz is not a readable .npz weights file"]),
    "pickled weights": (["predict", "--weights", "{w}/pickled.npz", "{w}/image.png", "--out", "{w}/new"], 2,
                        ["{w}/pickled.npz: entry 'roi_heads.box_predictor.cls_score.weight' is an object (pickled)"]),
    "not Mask R-CNN weights": (["eval", "--weights", "{w}/other.npz"], 2,
                               ["{w}/other.npz has no 2-D roi_heads.box_predictor.cls_score.weight"]),
    "eval --out is a folder": (["eval", "--weights", "{w}/model.npz", "--out", "{w}/empty"], 2,
                               ["--out {w}/empty is a folder"]),
    "missing image": (["predict", "--weights", "{w}/model.npz", "{w}/image.png", "{w}/nope.png",
                       "--out", "{w}/new"], 2, ["cannot read image {w}/nope.png"]),
    "predict with nothing to predict": (["predict", "--weights", "{w}/model.npz"], 2,
                                        ["give IMAGE paths or --coco DIR"]),
    "score threshold above 1": (["predict", "--weights", "{w}/model.npz", "--score-threshold", "2"], 2,
                                ["argument --score-threshold: expected a number in [0, 1], got 2.0"]),
    "predict --coco missing": (["predict", "--weights", "{w}/model.npz", "--coco", "{w}/nowhere"], 2,
                               ["{w}/nowhere is not a COCO-format folder"]),
    "convert missing input": (["convert", "{w}/nope.pth", "{w}/new.npz"], 2, ["input not found: {w}/nope.pth"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gives_one_paragraph_and_writes_nothing(world, case):
    argv, status, fragments = CASES[case]
    argv = [a.format(w=world) for a in argv]
    before = snapshot(world)
    result = run_cli(argv, cwd=world)
    assert result.returncode == status, (case, result.returncode, result.stderr)
    err = result.stderr.strip()
    assert "Traceback" not in err and err.count("\n") == 0, err      # one paragraph, no traceback
    assert err.startswith("minimrcnn"), err
    for fragment in fragments:
        assert fragment.format(w=world) in err, (fragment, err)
    if status == 2 and "argument" not in err and "invalid choice" not in err:
        assert "--debug or MINIMRCNN_DEBUG=1" in err
    assert snapshot(world) == before, "an error must write nothing"


# One case per exit path through ``python -m minimrcnn`` itself: a usage error, a user error, a bad file.
REAL_COMMAND_CASES = ["negative seed", "--out is a file", "truncated --val-coco json"]


@pytest.mark.parametrize("case", REAL_COMMAND_CASES)
def test_the_real_command_agrees(world, case):
    argv = [a.format(w=world) for a in CASES[case][0]]
    before = snapshot(world)
    real, in_process = run_cli(argv, cwd=world, in_subprocess=True), run_cli(argv, cwd=world)
    assert (real.returncode, real.stderr) == (in_process.returncode, in_process.stderr), case
    assert real.returncode == CASES[case][1] and "Traceback" not in real.stderr, real.stderr
    assert snapshot(world) == before, "an error must write nothing"


@pytest.mark.parametrize("how", [["--debug"], "env"])
def test_debug_shows_the_traceback(world, how):
    argv = ["train", "--coco", f"{world}/truncated_json", "--val-coco", f"{world}/coco", "--out", f"{world}/new"] + TINY
    if how == "env":
        result = run_cli(argv, cwd=world, env_extra={"MINIMRCNN_DEBUG": "1"}, in_subprocess=True)
    else:
        result = run_cli(argv[:1] + how + argv[1:], cwd=world, in_subprocess=True)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr and "cannot read JSON" in result.stderr
    assert not os.path.exists(f"{world}/new")


def test_divergence_is_said_plainly(tmp_path):
    # lr 1e4 (1e4 * warmup factor 0.001 = 10 at the first step) blows the weights up at once
    result = run_cli(["train", "--lr", "10000", "--out", str(tmp_path / "run"), "--log-every", "1"] + TINY[:-1]
                     + ["--iters", "10"], cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    err = result.stderr.strip()
    assert "Traceback" not in err and "the model diverged" in err, err
    assert "Try a lower --lr" in err and "--clip-grad-norm" in err
    assert "loss" in err      # names the loss (the largest one when the weights blew up)
    assert not os.path.exists(tmp_path / "run" / "checkpoint.npz")
    assert not os.path.exists(tmp_path / "run" / "model.npz")
