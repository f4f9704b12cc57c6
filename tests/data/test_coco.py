"""COCO export and loading: round trip, other image modes, and one test per malformed-file error."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from minimrcnn.data import rle
from minimrcnn.data.coco import CocoDataset, export_shapes_coco
from minimrcnn.data.shapes import ShapesDataset


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes_coco")
    return str(out), export_shapes_coco(str(out), num_images=5, seed=11, image_size=64)


def test_export_round_trip_equals_generator(exported):
    out, path = exported
    ds = CocoDataset(os.path.join(out, "images"), path)
    gen = ShapesDataset(5, seed=11, image_size=64)
    assert len(ds) == 5 and ds.num_classes == 4
    assert ds.class_names == ("__background__", "square", "circle", "triangle")
    assert ds.category_ids == [0, 1, 2, 3]
    for i in range(5):
        image, target = ds[i]
        image_g, target_g = gen[i]
        np.testing.assert_array_equal(image, image_g)
        for key in ("boxes", "labels", "masks", "area", "iscrowd"):
            np.testing.assert_array_equal(target[key], target_g[key])
            assert target[key].dtype == target_g[key].dtype
        assert target["image_id"] == i
        assert target["crowd_boxes"].shape == (0, 4)


def test_export_readable_by_pycocotools(tmp_path):
    coco = pytest.importorskip("pycocotools.coco")
    path = export_shapes_coco(str(tmp_path), num_images=3, seed=2, image_size=64, segmentation="mixed")
    api = coco.COCO(path)
    gen = ShapesDataset(3, seed=2, image_size=64)
    anns = api.loadAnns(api.getAnnIds(imgIds=[0]))
    _, target = gen[0]
    for ann, mask in zip(anns, target["masks"]):
        m = api.annToMask(ann)
        assert (m & mask).sum() / (m | mask).sum() > 0.8  # polygons are traced, RLEs exact
        assert api.annToRLE(ann)["size"] == [64, 64]


def test_mixed_and_polygon_exports_load(tmp_path):
    path = export_shapes_coco(str(tmp_path), num_images=2, seed=5, image_size=64, segmentation="polygon")
    ds = CocoDataset(str(tmp_path / "images"), path)
    _, target = ds[0]
    _, target_g = ShapesDataset(2, seed=5, image_size=64)[0]
    for m, g in zip(target["masks"], target_g["masks"]):
        assert (m & g).sum() / (m | g).sum() > 0.8


def write_case(tmp_path, mutate=None, image_mode="RGB"):
    """A valid two-annotation file (category ids 5 and 9, a crowd region) that `mutate` may break."""
    images_dir = tmp_path / "imgs"
    images_dir.mkdir(exist_ok=True)
    Image.new(image_mode, (20, 10)).save(images_dir / "a.png")
    mask = np.zeros((10, 20), np.uint8)
    mask[2:6, 3:9] = 1
    counts = rle.mask_to_counts(mask)
    data = {
        "images": [{"id": 4, "file_name": "a.png", "height": 10, "width": 20}],
        "annotations": [
            {"id": 1, "image_id": 4, "category_id": 9, "bbox": [3, 2, 6, 4], "area": 24.0, "iscrowd": 0,
             "segmentation": [[3, 2, 8, 2, 8, 5, 3, 5]]},
            {"id": 2, "image_id": 4, "category_id": 5, "bbox": [3, 2, 6, 4], "area": 24.0, "iscrowd": 1,
             "segmentation": {"size": [10, 20], "counts": counts}},
            {"id": 3, "image_id": 4, "category_id": 5, "bbox": [3, 2, 6, 4], "area": 24.0, "iscrowd": 0,
             "segmentation": rle.encode(mask)},
        ],
        "categories": [{"id": 9, "name": "nine"}, {"id": 5, "name": "five"}],
    }
    if mutate:
        mutate(data)
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return str(images_dir), str(path)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P"])
def test_loads_remaps_categories_and_keeps_crowd_apart(tmp_path, mode):
    ds = CocoDataset(*write_case(tmp_path, image_mode=mode))
    assert ds.class_names == ("__background__", "five", "nine")
    assert ds.category_ids == [0, 5, 9]
    image, target = ds[0]
    assert image.shape == (10, 20, 3) and image.dtype == np.uint8
    assert target["labels"].tolist() == [2, 1]             # category 9 -> 2, 5 -> 1
    assert target["boxes"].tolist()[0] == [3, 2, 9, 6]     # xywh -> xyxy
    assert target["crowd_boxes"].shape == (1, 4) and target["crowd_masks"].shape == (1, 10, 20)
    assert target["masks"][1].sum() == 24 and target["image_id"] == 4


def drop_key(key):
    return lambda d: d["annotations"][0].pop(key)


ERRORS = {
    "missing key": (drop_key("bbox"), r"ann\.json: annotation id 1: missing key 'bbox'"),
    "unknown category": (lambda d: d["annotations"][0].update(category_id=77),
                         r"ann\.json: annotation id 1: unknown category_id 77"),
    "unknown image": (lambda d: d["annotations"][1].update(image_id=99), r"annotation id 2: unknown image_id 99"),
    "bbox outside": (lambda d: d["annotations"][2].update(bbox=[15, 2, 10, 4]), r"annotation id 3: bbox .* outside"),
    "bbox negative": (lambda d: d["annotations"][2].update(bbox=[1, 2, -3, 4]), r"annotation id 3: bbox .*negative"),
    "bad polygon": (lambda d: d["annotations"][0].update(segmentation=[[1, 2, 3]]),
                    r"annotation id 1: field 'segmentation' must be polygons of at least 3 points"),
    "bad rle": (lambda d: d["annotations"][1]["segmentation"].update(counts=[1, 2]),
                r"annotation id 2: segmentation malformed"),
    "rle size": (lambda d: d["annotations"][2]["segmentation"].update(size=[5, 5]),
                 r"annotation id 3: segmentation malformed: RLE size"),
    "missing image file": (lambda d: d["images"][0].update(file_name="nope.png"), r"image id 4: cannot read image .*nope.png: no such file"),
    "image size": (lambda d: d["images"][0].update(width=21), r"image id 4: .* says 21x10"),
    "no categories": (lambda d: d.pop("categories"), r"ann\.json: missing top-level key 'categories'"),
}


@pytest.mark.parametrize("kind", list(ERRORS))
def test_malformed_file_errors(tmp_path, kind):
    mutate, pattern = ERRORS[kind]
    with pytest.raises(ValueError, match=pattern):
        CocoDataset(*write_case(tmp_path, mutate))


def test_not_json(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: cannot read JSON"):
        CocoDataset(str(tmp_path), str(tmp_path / "bad.json"))


def test_bad_export_flag(tmp_path):
    with pytest.raises(ValueError, match="segmentation"):
        export_shapes_coco(str(tmp_path), 1, 0, segmentation="mask")
