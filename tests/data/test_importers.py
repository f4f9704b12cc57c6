"""labelme / VIA import: the same masks as pycocotools' rasterisation of the tools' shapes, and clear errors."""

import json
import math
import os

import numpy as np
import pytest

from minimrcnn.cli import main
from minimrcnn.data.coco import CocoDataset
from minimrcnn.data.importers import AnnotationError, import_labelme, import_via
from minimrcnn.data.importers.common import ellipse_polygon, split_indices
from tests.data.annotator_files import (labelme_document, labelme_shape, noise_image, write_labelme_folder,
                                        write_via_project)

mask_utils = pytest.importorskip("pycocotools.mask")


def coco_masks(polygons_per_instance, height, width):
    """pycocotools' annToMask for polygon annotations: frPyObjects, merge, decode."""
    return [mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polys, height, width)))
            for polys in polygons_per_instance]


def expected_labelme_instances(document):
    """The tool's shapes as COCO polygons, written independently of the importer (labelme2coco's rules)."""
    groups = {}
    for index, shape in enumerate(document["shapes"]):
        pts = np.asarray(shape["points"], dtype=np.float64)
        if shape["shape_type"] == "rectangle":
            (x1, y1), (x2, y2) = np.sort(pts, axis=0)
            poly = [x1, y1, x2, y1, x2, y2, x1, y2]
        elif shape["shape_type"] == "circle":
            (cx, cy), (px, py) = pts
            r = math.hypot(px - cx, py - cy)
            n = max(int(math.pi / math.acos(1 - 1 / r)), 12)
            t = 2 * np.pi * np.arange(n) / n
            poly = np.stack([cx + r * np.sin(t), cy + r * np.cos(t)], 1).ravel().tolist()
        else:
            poly = pts.ravel().tolist()
        key = (shape["label"], shape["group_id"]) if shape["group_id"] is not None else index
        groups.setdefault(key, (shape["label"], []))[1].append(poly)
    return list(groups.values())


def load(folder):
    return CocoDataset(os.path.join(folder, "images"), os.path.join(folder, "annotations.json"))


def test_labelme_folder_imports_to_pycocotools_masks(tmp_path):
    src = write_labelme_folder(str(tmp_path / "labelme"), seed=3, count=5)
    summary = import_labelme(src, str(tmp_path / "coco"))
    assert summary["categories"] == ["ball", "box", "cat", "dog", "strip"]
    dataset = load(str(tmp_path / "coco"))
    assert len(dataset) == 5 and dataset.class_names[1:] == tuple(summary["categories"])
    for i in range(len(dataset)):
        image, target = dataset[i]
        with open(os.path.join(src, f"photo_{i:02d}.json")) as f:
            document = json.load(f)
        assert image.shape[:2] == (document["imageHeight"], document["imageWidth"])
        instances = expected_labelme_instances(document)
        assert len(target["masks"]) == len(instances) == 8      # 9 shapes, two of them one dog
        expected = coco_masks([polys for _, polys in instances], *image.shape[:2])
        for label, mask, ref, (name, _) in zip(target["labels"], target["masks"], expected, instances):
            assert dataset.class_names[label] == name
            np.testing.assert_array_equal(mask, ref)
            assert ref.sum() > 0
        # bbox and area are pycocotools' toBbox / area of the same mask
        with open(tmp_path / "coco" / "annotations.json") as f:
            anns = [a for a in json.load(f)["annotations"] if a["image_id"] == dataset.image_ids[i]]
        for ann, ref in zip(anns, expected):
            rle = mask_utils.encode(np.asfortranarray(ref))
            assert ann["area"] == float(mask_utils.area(rle))
            assert ann["bbox"] == mask_utils.toBbox(rle).tolist()


def test_embedded_image_data_is_written_as_the_image(tmp_path):
    src = write_labelme_folder(str(tmp_path / "labelme"), seed=1, count=4)
    assert not os.path.exists(os.path.join(src, "photo_01.jpg"))      # only inside the JSON
    import_labelme(src, str(tmp_path / "coco"))
    with open(os.path.join(src, "photo_01.json")) as f:
        import base64
        data = base64.b64decode(json.load(f)["imageData"])
    assert (tmp_path / "coco" / "images" / "photo_01.jpg").read_bytes() == data


@pytest.mark.parametrize("export_only", [False, True])
def test_via_project_imports_to_pycocotools_masks(tmp_path, export_only):
    project = write_via_project(str(tmp_path / "via.json"), str(tmp_path / "images"), seed=2, export_only=export_only)
    summary = import_via(project, str(tmp_path / "images"), str(tmp_path / "coco"))
    assert summary["categories"] == ["balloon", "box", "string"]
    dataset = load(str(tmp_path / "coco"))
    with open(project) as f:
        data = json.load(f)
    entries = list((data if export_only else data["_via_img_metadata"]).values())
    for i, entry in enumerate(entries):
        image, target = dataset[i]
        polys = []
        for region in entry["regions"]:
            s = region["shape_attributes"]
            if s["name"] == "polygon":
                polys.append([[float(v) for xy in zip(s["all_points_x"], s["all_points_y"]) for v in xy]])
            elif s["name"] == "rect":
                x, y, w, h = s["x"], s["y"], s["width"], s["height"]
                polys.append([[x, y, x + w, y, x + w, y + h, x, y + h]])
            elif s["name"] == "circle":
                polys.append([ellipse_polygon(s["cx"], s["cy"], s["r"], s["r"])])
            else:
                polys.append([ellipse_polygon(s["cx"], s["cy"], s["rx"], s["ry"], s["theta"])])
        for mask, ref in zip(target["masks"], coco_masks(polys, *image.shape[:2])):
            np.testing.assert_array_equal(mask, ref)
        names = [dataset.class_names[k] for k in target["labels"]]
        assert names == [r["region_attributes"]["type"] for r in entry["regions"]]


def test_ellipse_polygon_lies_on_the_rotated_ellipse():
    poly = np.asarray(ellipse_polygon(10.0, 20.0, 6.0, 3.0, theta=0.5)).reshape(-1, 2)
    x, y = poly[:, 0] - 10, poly[:, 1] - 20
    u, v = np.cos(0.5) * x + np.sin(0.5) * y, -np.sin(0.5) * x + np.cos(0.5) * y    # undo the rotation
    np.testing.assert_allclose((u / 6) ** 2 + (v / 3) ** 2, 1.0)
    assert len(poly) == max(int(math.pi / math.acos(1 - 1 / 6)), 12)


def test_split_is_seeded_and_keeps_the_categories(tmp_path):
    src = write_labelme_folder(str(tmp_path / "labelme"), seed=0, count=5)
    a = import_labelme(src, str(tmp_path / "a"), val_fraction=0.4, seed=7, categories=["strip", "dog", "cat", "box", "ball"])
    import_labelme(src, str(tmp_path / "b"), val_fraction=0.4, seed=7)
    assert a["splits"] == {"train": 3, "val": 2}
    train, val = load(str(tmp_path / "a" / "train")), load(str(tmp_path / "a" / "val"))
    assert train.class_names == val.class_names == ("__background__", "strip", "dog", "cat", "box", "ball")
    names = lambda folder: sorted(os.listdir(folder / "images"))  # noqa: E731
    assert names(tmp_path / "a" / "val") == names(tmp_path / "b" / "val")
    assert set(names(tmp_path / "a" / "val")).isdisjoint(names(tmp_path / "a" / "train"))
    assert split_indices(10, 0.2, 0) == split_indices(10, 0.2, 0) != split_indices(10, 0.2, 1)
    assert len(split_indices(10, 0.2, 0)[1]) == 2


def _one_labelme(folder, shapes, width=40, height=30, write_image=True, image_size=None):
    os.makedirs(folder, exist_ok=True)
    if write_image:
        w, h = image_size or (width, height)
        with open(os.path.join(folder, "a.png"), "wb") as f:
            f.write(noise_image(np.random.default_rng(0), w, h))
    with open(os.path.join(folder, "a.json"), "w") as f:
        json.dump(labelme_document(shapes, "a.png", width, height), f)
    return folder


SQUARE = [(2, 2), (10, 2), (10, 10), (2, 10)]


@pytest.mark.parametrize("shapes, kwargs, message", [
    ([labelme_shape("a", [(1, 1), (5, 5)], "line")], {}, "shape 0 (line 'a'): unknown shape type 'line'"),
    ([labelme_shape("a", SQUARE), labelme_shape("b", [(1, 1), (5, 5)])], {},
     "shape 1 (polygon 'b'): needs at least 3 points, got 2"),
    ([labelme_shape("a", [(2, 2), (80, 2), (10, 10)])], {}, "point (80, 2) is far outside the 40x30"),
    ([labelme_shape("a", SQUARE)], {"write_image": False}, "image"),
    ([labelme_shape("a", SQUARE)], {"image_size": (41, 30)}, "the file says the image is 40x30 (W x H)"),
    ([labelme_shape("a", [(1, 1), (5, 1), (5, 1.2)])], {}, "covers no pixel centre"),
    ([labelme_shape("", SQUARE)], {}, "needs a non-empty 'label'"),
])
def test_bad_labelme_files_name_the_file_and_shape(tmp_path, shapes, kwargs, message):
    src = _one_labelme(str(tmp_path / "src"), shapes, **kwargs)
    with pytest.raises(ValueError) as info:
        import_labelme(src, str(tmp_path / "out"))
    assert message in str(info.value) and os.path.join(src, "a.json") in str(info.value)
    assert not os.path.exists(tmp_path / "out")                          # nothing half-written
    assert [p for p in os.listdir(tmp_path) if p.startswith(".tmp")] == []


def test_missing_image_is_named(tmp_path):
    src = _one_labelme(str(tmp_path / "src"), [labelme_shape("a", SQUARE)], write_image=False)
    with pytest.raises(ValueError, match=r"a\.json: image .*a\.png is missing"):
        import_labelme(src, str(tmp_path / "out"))


def test_other_bad_inputs(tmp_path):
    src = _one_labelme(str(tmp_path / "src"), [labelme_shape("a", SQUARE)])
    with pytest.raises(AnnotationError, match="label 'a' is not one of the categories"):
        import_labelme(src, str(tmp_path / "out"), categories=["b"])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(ValueError, match="exists and is not an empty folder"):
        import_labelme(src, str(tmp_path / "full"))
    with pytest.raises(ValueError, match="needs at least 2 images"):
        import_labelme(src, str(tmp_path / "out"), val_fraction=0.5)
    (tmp_path / "src" / "coco.json").write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(AnnotationError, match="coco.json: not a labelme file"):
        import_labelme(src, str(tmp_path / "out"))


def test_via_attribute_choice_and_errors(tmp_path):
    images = str(tmp_path / "images")
    project = write_via_project(str(tmp_path / "via.json"), images, seed=0, count=2)
    with open(project) as f:
        data = json.load(f)
    first = next(iter(data["_via_img_metadata"].values()))
    first["regions"][0]["region_attributes"]["note"] = "x"
    (tmp_path / "two.json").write_text(json.dumps(data))
    with pytest.raises(AnnotationError, match=r"several attributes \['note', 'type'\].*--label-attribute"):
        import_via(str(tmp_path / "two.json"), images, str(tmp_path / "out"))
    with pytest.raises(AnnotationError, match="region 1 .*has no attribute 'note'"):
        import_via(str(tmp_path / "two.json"), images, str(tmp_path / "out"), label_attribute="note")
    assert import_via(str(tmp_path / "two.json"), images, str(tmp_path / "ok"), label_attribute="type")["instances"] == 10
    first["regions"][1]["shape_attributes"] = {"name": "polyline", "all_points_x": [1, 2], "all_points_y": [1, 2]}
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(AnnotationError, match="region 1 \\(polyline\\): unknown shape type 'polyline'"):
        import_via(str(tmp_path / "bad.json"), images, str(tmp_path / "out"), label_attribute="type")
    # no attribute at all (matterport's balloon file): one category, "object"
    for entry in data["_via_img_metadata"].values():
        for region in entry["regions"]:
            region["region_attributes"] = {}
        entry["regions"] = entry["regions"][2:]
    (tmp_path / "plain.json").write_text(json.dumps(data))
    assert import_via(str(tmp_path / "plain.json"), images, str(tmp_path / "plain"))["categories"] == ["object"]


def test_cli_import_and_its_errors(tmp_path, capsys):
    src = write_labelme_folder(str(tmp_path / "labelme"), seed=0, count=4)
    out = str(tmp_path / "coco")
    assert main(["import", "labelme", src, "--out", out, "--val-fraction", "0.25", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "32 instances of 5 categories (ball, box, cat, dog, strip)" in printed and "(3 images)" in printed
    assert main(["import", "labelme", src, "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minimrcnn import labelme: error: --out") and err.count("\n") == 1
    project = write_via_project(str(tmp_path / "via.json"), str(tmp_path / "img"), seed=0, count=2)
    assert main(["import", "via", project, "--images", str(tmp_path / "img"), "--out", str(tmp_path / "v"),
                 "--label-attribute", "type"]) == 0
    assert main(["import", "via", project, "--images", str(tmp_path / "nope"), "--out", str(tmp_path / "w")]) == 2
    assert "--images" in capsys.readouterr().err


def test_references_layout_from_import_and_from_shapes_export(tmp_path):
    from minimrcnn.data.layouts import references_paths

    src = write_labelme_folder(str(tmp_path / "labelme"), seed=0, count=5)
    import_labelme(src, str(tmp_path / "ref"), val_fraction=0.4, seed=3, layout="torchvision-references")
    import_labelme(src, str(tmp_path / "own"), val_fraction=0.4, seed=3)
    assert sorted(os.listdir(tmp_path / "ref")) == ["annotations", "train2017", "val2017"]
    for split in ("train", "val"):
        images, annotations = references_paths(str(tmp_path / "ref"), split)
        # the same split, the same file, as the minimrcnn layout with the same seed
        assert sorted(os.listdir(images)) == sorted(os.listdir(tmp_path / "own" / split / "images"))
        assert open(annotations).read() == open(tmp_path / "own" / split / "annotations.json").read()
    with pytest.raises(ValueError, match="give a val_fraction"):
        import_labelme(src, str(tmp_path / "nosplit"), layout="torchvision-references")

    assert main(["shapes", "export", str(tmp_path / "shapes"), "--layout", "torchvision-references",
                 "--num-images", "3", "--num-val-images", "2", "--seed", "4"]) == 0
    assert main(["shapes", "export", str(tmp_path / "val"), "--num-images", "2", "--seed", "5"]) == 0
    images, annotations = references_paths(str(tmp_path / "shapes"), "val")
    from pycocotools.coco import COCO

    coco = COCO(annotations)                      # as the references' script reads it: polygons
    ours = load(str(tmp_path / "val"))            # the same images, exported with seed + 1 as RLE
    for k, image_id in enumerate(sorted(coco.imgs)):
        assert open(os.path.join(images, coco.imgs[image_id]["file_name"]), "rb").read() == \
            open(os.path.join(tmp_path / "val" / "images", coco.imgs[image_id]["file_name"]), "rb").read()
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        assert all(isinstance(a["segmentation"], list) for a in anns)
        traced = np.stack([coco.annToMask(a) for a in anns])
        exact = ours[k][1]["masks"]
        inter, union = (traced & exact).sum((1, 2)), (traced | exact).sum((1, 2))
        assert (inter / union > 0.8).all()        # traced outlines: close to the exact masks
    assert main(["shapes", "export", str(tmp_path / "shapes"), "--layout", "torchvision-references"]) == 2


def test_convert_for_references_refuses_a_pth_input(tmp_path, capsys):
    (tmp_path / "a.pth").write_bytes(b"x")
    assert main(["convert", str(tmp_path / "a.pth"), str(tmp_path / "b.npz"), "--for-references"]) == 2
    assert "--for-references converts minimrcnn weights (.npz) to a .pth" in capsys.readouterr().err


def test_via_checkbox_attribute_and_via1_regions(tmp_path):
    images = str(tmp_path / "images")
    project = write_via_project(str(tmp_path / "via.json"), images, seed=1, count=1, export_only=True)
    with open(project) as f:
        data = json.load(f)
    entry = next(iter(data.values()))
    for region in entry["regions"]:                       # checkbox attributes: {option: ticked}
        region["region_attributes"]["type"] = {region["region_attributes"]["type"]: True, "other": False}
    entry["regions"] = {str(k): r for k, r in enumerate(entry["regions"])}    # VIA 1.x regions object
    (tmp_path / "v1.json").write_text(json.dumps(data))
    assert import_via(str(tmp_path / "v1.json"), images, str(tmp_path / "out"))["categories"] == \
        ["balloon", "box", "string"]
    entry["regions"]["0"]["region_attributes"]["type"] = {"balloon": True, "box": True}
    (tmp_path / "v2.json").write_text(json.dumps(data))
    with pytest.raises(AnnotationError, match=r"region 0 \(polygon\): attribute 'type' must have one option ticked"):
        import_via(str(tmp_path / "v2.json"), images, str(tmp_path / "out2"))
