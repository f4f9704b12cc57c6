"""minimrcnn predict on folders and globs: overlays at each image's size, detections.json, the best score."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from minimrcnn.cli import main
from minimrcnn.models import maskrcnn_shapes, save_weights
from minimrcnn.predict_images import image_paths, predict_images
from minimrcnn.viz.overlay import draw_overlay

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSET = os.path.join(ROOT, "lessons", "assets", "shapes_model.npz")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Shapes images of three sizes (one not square, one larger than the model's 128) in two folders."""
    from minimrcnn.data.shapes import ShapesDataset

    root = tmp_path_factory.mktemp("photos")
    (root / "a").mkdir()
    (root / "b").mkdir()
    for i, size in enumerate((128, 96, 200)):
        image, _ = ShapesDataset(1, seed=i, image_size=size)[0]
        if i == 1:
            image = image[:, :80]                                  # 96 x 80: not square
        Image.fromarray(image).save(root / ("a" if i < 2 else "b") / f"img{i}.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "b" / "img0.png")   # same name, other folder
    (root / "a" / "notes.txt").write_text("not an image")
    return root


def test_image_paths_expand_folders_and_globs(photos):
    a, b = str(photos / "a"), str(photos / "b")
    assert image_paths([a]) == [os.path.join(a, "img0.png"), os.path.join(a, "img1.png")]
    assert image_paths([os.path.join(b, "*.png"), a, os.path.join(a, "img0.png")]) == [
        os.path.join(b, "img0.png"), os.path.join(b, "img2.png"), os.path.join(a, "img0.png"),
        os.path.join(a, "img1.png")]
    with pytest.raises(FileNotFoundError, match="no file matches the pattern .*nothing"):
        image_paths([str(photos / "nothing*.jpg")])
    (photos / "empty").mkdir(exist_ok=True)
    with pytest.raises(ValueError, match="holds no image file"):
        image_paths([str(photos / "empty")])


def test_predict_folder_and_glob_writes_overlays_and_detections(photos, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["predict", "--weights", ASSET, str(photos / "a"), str(photos / "b" / "*.png"), "--no-progress"]) == 0
    out = tmp_path / "runs" / "predict"                            # the default, not the current folder
    names = sorted(os.listdir(out))
    assert names == ["detections.json", "img0_2_pred.png", "img0_pred.png", "img1_pred.png", "img2_pred.png"]
    for overlay, source in (("img0_pred.png", "a/img0.png"), ("img1_pred.png", "a/img1.png"),
                            ("img2_pred.png", "b/img2.png"), ("img0_2_pred.png", "b/img0.png")):
        assert Image.open(out / overlay).size == Image.open(photos / source).size
    detections = json.load(open(out / "detections.json"))
    assert detections, "the trained model finds shapes"
    files = {d["file_name"] for d in detections}
    assert str(photos / "a" / "img1.png") in files and str(photos / "b" / "img2.png") in files
    for d in detections:
        assert set(d) == {"file_name", "image_id", "category_id", "category_name", "bbox", "score", "segmentation"}
        assert d["score"] >= 0.5 and d["category_name"] in ("square", "circle", "triangle")
        height, width = np.asarray(Image.open(d["file_name"])).shape[:2]
        assert d["segmentation"]["size"] == [height, width]
    printed = capsys.readouterr().out
    assert f"{len(detections)} detections ->" in printed


def test_nothing_above_the_threshold_reports_the_best_score(tmp_path, capsys):
    weights = str(tmp_path / "untrained.npz")
    save_weights(maskrcnn_shapes(), weights)                      # untrained: class scores near 1/4
    image = np.random.default_rng(0).integers(0, 255, (64, 90, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "noise.png")
    out = tmp_path / "pred"
    assert main(["predict", "--weights", weights, str(tmp_path / "noise.png"), "--out", str(out),
                 "--score-threshold", "0.99", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "0 instances drawn (score >= 0.99), best score 0." in printed
    assert "nothing scored >= --score-threshold 0.99; the best score seen was 0." in printed
    assert json.load(open(out / "detections.json")) == []
    assert Image.open(out / "noise_pred.png").size == (90, 64)


def test_a_bad_image_writes_nothing(tmp_path, capsys):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "fine.png")
    out = tmp_path / "pred"
    assert main(["predict", "--weights", ASSET, str(tmp_path), "--out", str(out)]) == 2
    assert f"cannot read image {tmp_path / 'broken.png'}" in capsys.readouterr().err
    assert not out.exists()


def test_draw_overlay_keeps_the_size_and_draws_only_passing_detections():
    image = np.full((50, 70, 3), 100, np.uint8)
    masks = np.zeros((2, 1, 50, 70), np.float32)
    masks[0, 0, 10:20, 10:30] = 1
    masks[1, 0, 30:40, 40:60] = 1
    output = {"boxes": np.array([[10, 10, 30, 20], [40, 30, 60, 40]], np.float32), "labels": np.array([1, 2]),
              "scores": np.array([0.9, 0.2]), "masks": masks}
    drawn = draw_overlay(image, output, None, score_threshold=0.5)
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    assert (drawn[14, 20] != 100).any()                  # the first mask is blended in
    np.testing.assert_array_equal(drawn[35, 50], [100, 100, 100])   # the second one scored 0.2: not drawn
