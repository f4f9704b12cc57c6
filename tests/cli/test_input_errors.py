"""Bad inputs of the second round, through the `minimrcnn` command (run_cli of test_errors.py): COCO fields of the wrong type,
duplicate ids, truncated and refused images, weights of another architecture or with a string array,
`convert` to a name of no known format, `shapes export` into a folder that holds files. Each gives one
paragraph, exit status 2, no traceback, and writes nothing (the folder is unchanged byte for byte)."""

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from minimrcnn.cli import main
from tests.cli.test_errors import TINY, run_cli, snapshot


def edit_json(folder, mutate):
    path = folder / "annotations.json"
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))


def cut(path, keep_fraction=0.6):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from minimrcnn.models import maskrcnn_shapes, save_weights

    w = tmp_path_factory.mktemp("inputs")
    assert main(["shapes", "export", str(w / "coco"), "--num-images", "3", "--image-size", "64"]) == 0
    cases = {
        "width_str": lambda d: d["images"][1].update(width="64", height="64"),
        "category_str": lambda d: d["annotations"][0].update(category_id=str(d["annotations"][0]["category_id"])),
        "duplicate_ids": lambda d: d["images"][2].update(id=d["images"][1]["id"]),
        "bbox_str": lambda d: d["annotations"][1].update(bbox="1 2 3 4"),
        "duplicate_categories": lambda d: d["categories"].append({"id": 2, "name": "disc"}),
        "no_images": lambda d: d.update(images=[], annotations=[]),
    }
    for name, mutate in cases.items():
        shutil.copytree(w / "coco", w / name)
        edit_json(w / name, mutate)
    shutil.copytree(w / "coco", w / "truncated_png")
    cut(w / "truncated_png" / "images" / "000002.png")
    shutil.copytree(w / "coco", w / "float_image")
    grey = np.asarray(Image.open(w / "coco" / "images" / "000000.png").convert("L"), np.float32)
    Image.fromarray(grey).save(w / "float_image" / "images" / "000000.tif")
    edit_json(w / "float_image", lambda d: d["images"][0].update(file_name="000000.tif"))

    model = maskrcnn_shapes()
    save_weights(model, str(w / "model.npz"))
    state = model.state_dict()
    keys = list(state)
    strings = dict(state)
    strings[keys[50]] = np.array(["not", "a", "number"])
    np.savez(str(w / "strings.npz"), **strings)
    nan = dict(state)
    nan[keys[10]] = np.full(state[keys[10]].shape, np.nan, np.float32)
    np.savez(str(w / "nan.npz"), **nan)
    background_only = dict(state)
    background_only["roi_heads.box_predictor.cls_score.weight"] = np.zeros((1, 256), np.float32)
    np.savez(str(w / "background_only.npz"), **background_only)
    other = {k.replace("layer", "stage"): v for k, v in state.items()}          # another architecture's names
    other.update({f"backbone.body.stage4.{i}.conv2.weight": np.zeros(1, np.float32) for i in range(300)})
    other["roi_heads.box_predictor.cls_score.weight"] = np.zeros((91, 1024), np.float32)
    np.savez(str(w / "other_arch.npz"), **other)

    rgb = np.asarray(Image.open(w / "coco" / "images" / "000001.png"))
    Image.fromarray(rgb).save(w / "photo.png")
    Image.fromarray(rgb[:, :, 0].astype(np.float32)).save(w / "float.tif")
    Image.fromarray(rgb).save(w / "cut.png")
    cut(w / "cut.png")
    (w / "not_empty").mkdir()
    (w / "not_empty" / "notes.txt").write_text("mine")
    (w / "a_folder").mkdir()
    return w


COCO = ["train", "--out", "{w}/new", "--val-coco", "{w}/coco"] + TINY   # --coco needs --val-coco (docs/custom-data.md)
CASES = {
    # COCO folders
    "width and height as strings": (COCO + ["--coco", "{w}/width_str"],
                                    ["{w}/width_str/annotations.json: image id 1: field 'width' must be a positive "
                                     "integer (pixels), got '64' (str)"]),
    "category_id as a string": (COCO + ["--coco", "{w}/category_str"],
                                ["{w}/category_str/annotations.json: annotation id 1: field 'category_id' must be an "
                                 "integer, got '"]),
    "duplicate image ids": (COCO + ["--coco", "{w}/duplicate_ids"],
                            ["{w}/duplicate_ids/annotations.json: images '000001.png' and '000002.png' share id 1"]),
    "bbox as a string": (COCO + ["--val-coco", "{w}/bbox_str"], ["field 'bbox' must be [x, y, w, h]", "'1 2 3 4'"]),
    "duplicate category ids": (COCO + ["--coco", "{w}/duplicate_categories"],
                               ["categories 'circle' and 'disc' share id 2"]),
    "a COCO folder without images": (COCO + ["--coco", "{w}/no_images"],
                                     ["{w}/no_images/annotations.json: 'images' is empty"]),
    "truncated PNG in a COCO folder": (COCO + ["--coco", "{w}/truncated_png"],
                                       ["image id 2: cannot read image {w}/truncated_png/images/000002.png: OSError"]),
    "float image in a COCO folder": (COCO + ["--coco", "{w}/float_image"],
                                     ["image id 0: cannot read image {w}/float_image/images/000000.tif: "
                                      "Pillow mode 'F'"]),
    "predict --coco with a truncated PNG": (["predict", "--weights", "{w}/model.npz", "--coco", "{w}/truncated_png",
                                             "--out", "{w}/r.json"], ["truncated_png/images/000002.png"]),
    # images given to predict
    "predict a float image": (["predict", "--weights", "{w}/model.npz", "{w}/photo.png", "{w}/float.tif",
                               "--out", "{w}/new"], ["cannot read image {w}/float.tif: Pillow mode 'F'"]),
    "predict a truncated image": (["predict", "--weights", "{w}/model.npz", "{w}/cut.png", "--out", "{w}/new"],
                                  ["cannot read image {w}/cut.png: OSError"]),
    # weights
    "weights with a string array": (["eval", "--weights", "{w}/strings.npz", "--num-images", "1"],
                                    ["{w}/strings.npz", "expected real numbers, got dtype <U6", "nothing was loaded"]),
    "weights of another architecture": (["eval", "--weights", "{w}/other_arch.npz", "--num-images", "1"],
                                        ["{w}/other_arch.npz", "missing keys (", "more", "unexpected keys (3"]),
    "weights holding NaN": (["predict", "--weights", "{w}/nan.npz", "{w}/photo.png", "--out", "{w}/new"],
                            ["{w}/nan.npz", "non-finite arrays (1): ", "NaN or infinite"]),
    "weights of background only": (["eval", "--weights", "{w}/background_only.npz", "--num-images", "1"],
                                   ["{w}/background_only.npz: roi_heads.box_predictor.cls_score.weight has 1 rows",
                                    "know no class but background"]),
    # convert
    "convert .npz to .txt": (["convert", "{w}/model.npz", "{w}/out.txt"],
                             ["the output {w}/out.txt must be a torch state_dict name ending in .pth or .pt"]),
    "convert .pth to .txt": (["convert", "{w}/photo.png", "{w}/out.txt"],
                             ["the output {w}/out.txt must be a minimrcnn weights name ending in .npz",
                              "read as a torch checkpoint"]),
    "convert .npz to .npz": (["convert", "{w}/model.npz", "{w}/copy.npz"], ["must be a torch state_dict name"]),
    "convert into a folder": (["convert", "{w}/model.npz", "{w}/a_folder"], ["must be a torch state_dict name"]),
    # shapes export
    "shapes export into a folder with files": (["shapes", "export", "{w}/not_empty", "--num-images", "1"],
                                               ["{w}/not_empty is not empty (it holds notes.txt)", "--overwrite"]),
    "shapes export over an existing COCO folder": (["shapes", "export", "{w}/coco", "--num-images", "1"],
                                                   ["{w}/coco is not empty (it holds annotations.json, images)"]),
    "shapes export onto a file": (["shapes", "export", "{w}/photo.png"], ["{w}/photo.png exists and is not a folder"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gives_one_paragraph_and_writes_nothing(world, case):
    argv, fragments = CASES[case]
    before = snapshot(world)
    result = run_cli([a.format(w=world) for a in argv], cwd=world)
    err = result.stderr.strip()
    assert result.returncode == 2, (case, result.returncode, err)
    assert "Traceback" not in err and err.count("\n") == 0 and err.startswith("minimrcnn"), err
    assert "--debug or MINIMRCNN_DEBUG=1" in err
    for fragment in fragments:
        assert fragment.format(w=world) in err, (fragment, err)
    assert len(err) < 1200, (len(err), err)            # long key lists are summarised
    assert snapshot(world) == before, "an error must write nothing"
    assert not [n for n in os.listdir(world) if n.startswith(".tmp")]


def test_convert_into_a_folder_named_pth_is_refused(tmp_path, world):
    (tmp_path / "w.pth").mkdir()
    result = run_cli(["convert", f"{world}/model.npz", f"{tmp_path}/w.pth"], cwd=tmp_path)
    assert result.returncode == 2 and f"the output {tmp_path}/w.pth is a folder" in result.stderr, result.stderr


def test_shapes_export_overwrite_replaces_images_and_keeps_other_files(tmp_path):
    folder = tmp_path / "data"
    assert main(["shapes", "export", str(folder), "--num-images", "4", "--image-size", "64"]) == 0
    (folder / "README.txt").write_text("mine")
    assert main(["shapes", "export", str(folder), "--num-images", "2", "--image-size", "64", "--seed", "3",
                 "--overwrite"]) == 0
    assert sorted(os.listdir(folder / "images")) == ["000000.png", "000001.png"]       # stale 2 and 3 gone
    assert (folder / "README.txt").read_text() == "mine"
    assert len(json.loads((folder / "annotations.json").read_text())["images"]) == 2
    assert sorted(os.listdir(tmp_path)) == ["data"]                                     # no staging folder left
    # an empty existing folder needs no --overwrite
    (tmp_path / "empty").mkdir()
    assert main(["shapes", "export", str(tmp_path / "empty"), "--num-images", "1", "--image-size", "64"]) == 0


def test_predict_reads_sixteen_bit_and_exif_rotated_images_as_their_plain_twins(world, tmp_path):
    """A 16-bit PNG was read as white (Pillow clips I;16 to 255); a rotated photo is read upright. The overlays
    of each file and of its plain 8-bit upright twin are identical."""
    rgb = np.asarray(Image.open(world / "photo.png"))
    grey = rgb.max(axis=2)                                       # an 8-bit grey image with the shapes on it
    Image.fromarray(grey).save(tmp_path / "eight.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "sixteen.png")
    assert Image.open(tmp_path / "sixteen.png").mode == "I;16"
    Image.fromarray(rgb).save(tmp_path / "upright.png")
    stored = Image.fromarray(np.rot90(rgb, 1))                   # stored turned a quarter counter-clockwise
    exif = stored.getexif()
    exif[0x0112] = 6                                             # "rotate 90 clockwise to view"
    stored.save(tmp_path / "rotated.png", exif=exif)
    names = ["eight", "sixteen", "upright", "rotated"]
    result = run_cli(["predict", "--weights", f"{world}/model.npz", "--score-threshold", "0",
                      *[str(tmp_path / f"{n}.png") for n in names], "--out", str(tmp_path / "out")], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    detections = json.loads((tmp_path / "out" / "detections.json").read_text())
    drawn = [sum(1 for d in detections if d["file_name"].endswith(f"{n}.png")) for n in names]
    assert drawn[0] == drawn[1] > 0 and drawn[2] == drawn[3] > 0, drawn
    overlay = {n: np.asarray(Image.open(tmp_path / "out" / f"{n}_pred.png")) for n in names}
    np.testing.assert_array_equal(overlay["eight"], overlay["sixteen"])
    np.testing.assert_array_equal(overlay["upright"], overlay["rotated"])
