"""`minimrcnn explain`: it writes the page for a shapes image, a photo and a COCO image with
ground truth; bad input gets one paragraph, exit status 2, and no file."""

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from minimrcnn.cli import main
from minimrcnn.viz.explain_page import read_explain_data
from tests.viz.conftest import ASSET


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    folder = tmp_path_factory.mktemp("coco") / "shapes"
    assert main(["shapes", "export", str(folder), "--num-images", "2", "--image-size", "96"]) == 0
    return str(folder)


def run(argv, capsys):
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def page_data(path):
    with open(path, encoding="utf-8") as f:
        return read_explain_data(f.read())


def test_shapes_index_page(tmp_path, capsys):
    out = str(tmp_path / "shapes.html")
    status, text, _ = run(["explain", "--shapes-index", "3", "--weights", ASSET, "--out", out], capsys)
    assert status == 0 and out in text
    data = page_data(out)
    assert data["ground_truth"] is not None and data["meta"]["class_names"][1] == "square"


def test_photo_in_any_mode_and_default_weights(tmp_path, capsys, monkeypatch):
    import matplotlib.cbook

    monkeypatch.chdir(tmp_path)
    os.makedirs("runs/shapes")
    shutil.copy(ASSET, "runs/shapes/model.npz")
    photo = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    Image.open(photo).convert("L").save("gray.png")
    status, text, _ = run(["explain", str(photo), "--out", "photo.html", "--score-threshold", "0.2"], capsys)
    assert status == 0, text
    data = page_data("photo.html")
    assert data["ground_truth"] is None and data["meta"]["score_threshold"] == 0.2
    assert data["meta"]["original_size"] == list(np.asarray(Image.open(photo)).shape[:2])
    rgba = np.zeros((40, 50, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    Image.fromarray(rgba).save("rgba.png")
    for name in ("gray.png", "rgba.png"):
        assert run(["explain", name, "--out", name + ".html"], capsys)[0] == 0


def test_coco_image_with_ground_truth(coco, tmp_path, capsys):
    out = str(tmp_path / "coco.html")
    status, _, _ = run(["explain", "--coco", coco, "--image-id", "1", "--weights", ASSET, "--out", out], capsys)
    assert status == 0
    data = page_data(out)
    assert data["ground_truth"]["labels"] and data["meta"]["original_size"] == [96, 96]


@pytest.mark.parametrize("argv, message", [
    (["--shapes-index", "0"], "no --weights given and no runs/shapes/model.npz"),
    (["missing.png", "--weights", ASSET], "cannot read image missing.png"),
    (["not_an_image.png", "--weights", ASSET], "cannot read image not_an_image.png"),
    (["--coco", "{coco}", "--image-id", "99", "--weights", ASSET], "--image-id 99: not an image id"),
    (["--shapes-index", "0", "--weights", ASSET, "--preset", "resnet50_fpn"], "does not fit --preset resnet50_fpn"),
    (["--shapes-index", "0", "--weights", "nothere.npz"], "nothere.npz"),
    (["x.png", "--shapes-index", "0", "--weights", ASSET], "exactly one of IMAGE, --shapes-index N or --coco DIR"),
    (["--shapes-index", "0", "--image-id", "3", "--weights", ASSET], "--image-id needs --coco"),
    (["--shapes-index", "0", "--weights", ASSET, "--out", "folder"], "--out folder is a folder"),
])
def test_bad_input_is_one_paragraph_and_writes_nothing(argv, message, coco, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "not_an_image.png").write_text("plain text")
    (tmp_path / "folder").mkdir()
    before = sorted(os.listdir(tmp_path))
    status, out, err = run(["explain", *[a.replace("{coco}", coco) for a in argv]], capsys)
    assert status == 2 and out == ""
    assert err.startswith("minimrcnn explain: error:") and err.count("\n") == 1, err
    assert message in err and len(err) < 600, err
    assert sorted(os.listdir(tmp_path)) == before


def test_help_and_argument_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["explain", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: minimrcnn explain" in out and "--shapes-index" in out and "runs/shapes/model.npz" in out
    with pytest.raises(SystemExit) as exc:
        main(["explain", "x.png", "--score-threshold", "2"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "expected a number in [0, 1]" in err and err.count("\n") == 1
