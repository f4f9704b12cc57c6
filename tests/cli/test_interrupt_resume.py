"""A real Ctrl-C: SIGINT to a real `minimrcnn train` process, then the resume command it prints.

The interrupted-then-resumed run must equal an uninterrupted run with the same flags, bit for
bit: every array of checkpoint.npz (weights, optimizer state, iteration, config), every array
of model.npz, and every logged loss, with each iteration logged once.
"""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import numpy as np

FLAGS = ["--iters", "5", "--batch-size", "1", "--image-size", "64", "--num-val-images", "1", "--eval-every", "0",
         "--log-every", "1", "--no-progress"]
TIMING_KEYS = {"s_per_iter", "train_seconds", "eval_seconds"}
TIMING_ARRAYS = {"meta/train_seconds"}


def minimrcnn(argv, **kw):
    return subprocess.Popen([sys.executable, "-m", "minimrcnn", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def records(path):
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS} for line in open(path)]


def assert_same_npz(a, b):
    with np.load(a, allow_pickle=False) as x, np.load(b, allow_pickle=False) as y:
        assert sorted(x.files) == sorted(y.files)
        for key in set(x.files) - TIMING_ARRAYS:
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)
            assert x[key].dtype == y[key].dtype, key


def test_sigint_checkpoints_and_the_printed_command_resumes_bit_for_bit(tmp_path):
    straight = minimrcnn(["train", "--out", str(tmp_path / "straight")] + FLAGS, cwd=tmp_path)
    stopped_dir = tmp_path / "stopped"
    stopped = minimrcnn(["train", "--out", str(stopped_dir)] + FLAGS, cwd=tmp_path)
    metrics = stopped_dir / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2):
        assert stopped.poll() is None and time.monotonic() < deadline, stopped.communicate()
        time.sleep(0.05)
    stopped.send_signal(signal.SIGINT)
    out, err = stopped.communicate(timeout=300)
    assert stopped.returncode == 130, err
    assert "Traceback" not in err
    m = re.search(r"stopped by SIGINT after iteration (\d+) of 5; checkpoint written to (\S+)\. "
                  r"Resume with:\n  (minimrcnn train .*)", err)
    assert m, err
    iteration, command = int(m.group(1)), m.group(3)
    assert 2 <= iteration < 5 and m.group(2) == str(stopped_dir / "checkpoint.npz")
    assert command == f"minimrcnn train --resume --out {shlex.quote(str(stopped_dir))}"
    assert not os.path.exists(stopped_dir / "model.npz")       # the run is not finished
    assert not [f for f in os.listdir(stopped_dir) if f.startswith(".tmp-")]

    resumed = minimrcnn(shlex.split(command)[1:] + ["--no-progress"], cwd=tmp_path)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert f"resumed from {stopped_dir / 'checkpoint.npz'} at iteration {iteration} of 5" in out
    out, err = straight.communicate(timeout=300)
    assert straight.returncode == 0, err

    for name in ("checkpoint.npz", "model.npz"):
        assert_same_npz(tmp_path / "straight" / name, stopped_dir / name)
    logged = records(stopped_dir / "metrics.jsonl")
    assert [r["iter"] for r in logged if "loss" in r] == [1, 2, 3, 4, 5]     # each iteration once
    assert logged == records(tmp_path / "straight" / "metrics.jsonl")         # every loss, lr and AP

    # a finished run: --resume with another --iters is refused, --extend says what it keeps
    refused = subprocess.run([sys.executable, "-m", "minimrcnn", "train", "--resume", "--iters", "6", "--out",
                              str(stopped_dir)], capture_output=True, text=True, cwd=tmp_path)
    assert refused.returncode == 2 and "iters: checkpoint 5 vs now 6" in refused.stderr
    assert "--extend" in refused.stderr
    extended = minimrcnn(["train", "--extend", "--iters", "6", "--out", str(stopped_dir), "--no-progress"],
                         cwd=tmp_path)
    out, err = extended.communicate(timeout=300)
    assert extended.returncode == 0, err
    assert "extended to 6 iterations: the learning-rate milestones stay at iterations [4, 4] (absolute)" in out
    logged = records(stopped_dir / "metrics.jsonl")
    assert [r["iter"] for r in logged if "loss" in r] == [1, 2, 3, 4, 5, 6]
