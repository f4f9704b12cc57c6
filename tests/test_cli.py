import json
import os
import subprocess
import sys

import pytest

import minimrcnn
from minimrcnn.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"minimrcnn {minimrcnn.__version__}"


def test_info_reports_setup(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for field in ("numpy", "numba", "threading layer", "JIT disabled", "numba cache", "keeps freed memory"):
        assert field in out


def test_info_names_the_threading_layer_in_a_fresh_process():
    # A fresh process has not started Numba's thread pool yet; info starts it, so it names
    # the layer minimrcnn selects (workqueue) rather than "unavailable"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    out = subprocess.run([sys.executable, "-m", "minimrcnn.cli", "info"], capture_output=True, text=True,
                         check=True, env=env).stdout
    assert "numba threading layer: workqueue, threads: " in out, out


@pytest.mark.parametrize("command", [[], ["train"], ["eval"], ["predict"], ["shapes", "export"], ["convert"], ["info"]])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main(command + ["--help"])
    assert exc.value.code == 0
    assert "usage: minimrcnn" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["train", "--iters", "0"], "expected an integer >= 1"),
    (["train", "--lr", "abc"], "expected a number > 0"),
    (["eval"], "--weights"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_give_one_line_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["eval", "--weights", str(tmp_path / "missing.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"minimrcnn eval: error: weights file not found: {tmp_path / 'missing.npz'} "
                   "(Run with --debug or MINIMRCNN_DEBUG=1 for the Python traceback.)")
    assert main(["train", "--coco", str(tmp_path)]) == 2
    assert "not a COCO-format folder" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["minimrcnn.cli", "minimrcnn"])
def test_console_script_entry_point(module):
    out = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "minimrcnn" in out.stdout


def test_predict_and_eval_on_saved_weights(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from minimrcnn.data.shapes import ShapesDataset
    from minimrcnn.models import maskrcnn_shapes, save_weights

    weights = str(tmp_path / "model.npz")
    save_weights(maskrcnn_shapes(), weights)           # untrained: the plumbing is what is tested
    image, _ = ShapesDataset(num_images=1, seed=3)[0]
    Image.fromarray(image).save(tmp_path / "shape.png")
    out_dir = tmp_path / "pred"
    assert main(["predict", "--weights", weights, str(tmp_path / "shape.png"), "--out", str(out_dir)]) == 0
    assert (out_dir / "shape_pred.png").stat().st_size > 0
    assert main(["eval", "--weights", weights, "--num-images", "2", "--out", str(tmp_path / "e.json"),
                 "--no-progress"]) == 0
    import json
    stats = json.load(open(tmp_path / "e.json"))
    assert set(stats) == {"bbox", "segm", "per_class", "num_images"} and len(stats["bbox"]) == 12
    assert stats["num_images"] == 2 and set(stats["per_class"]["segm"]) == {"square", "circle", "triangle"}
    assert np.isfinite(list(stats["segm"].values())).all()
    assert main(["predict", "--weights", weights, str(tmp_path / "missing.png")]) == 2
    assert "cannot read image" in capsys.readouterr().err


def test_predict_score_thresholds(tmp_path, capsys):
    # Results JSON keeps every detection above 0.05 (torchvision's default) unless told
    # otherwise; overlays draw only scores >= 0.5 by default.
    from minimrcnn import save_weights
    from minimrcnn.models import maskrcnn_shapes

    weights, folder = str(tmp_path / "model.npz"), str(tmp_path / "coco")
    save_weights(maskrcnn_shapes(), weights)        # untrained: class scores near 1/4
    assert main(["shapes", "export", folder, "--num-images", "2", "--seed", "0"]) == 0
    scores = {}
    for threshold in (None, 0.3):
        out = str(tmp_path / f"results_{threshold}.json")
        extra = [] if threshold is None else ["--score-threshold", str(threshold)]
        assert main(["predict", "--weights", weights, "--coco", folder, "--out", out, "--no-progress"] + extra) == 0
        scores[threshold] = [r["score"] for r in json.load(open(out))]
    assert scores[None] and min(scores[None]) > 0.05
    assert all(s > 0.3 for s in scores[0.3]) and len(scores[0.3]) < len(scores[None])
    image = os.path.join(folder, "images", sorted(os.listdir(os.path.join(folder, "images")))[0])
    capsys.readouterr()
    assert main(["predict", "--weights", weights, image, "--out", str(tmp_path / "overlays")]) == 0
    assert "drawn (score >= 0.5)" in capsys.readouterr().out
