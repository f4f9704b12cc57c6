"""COCO files with a field of the wrong type or value, duplicate ids, and images that are not what the
file says (truncated, rotated by EXIF): one ValueError naming the file, the record, the field and the value."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from minimrcnn.data.coco import CocoDataset
from tests.data.test_coco import write_case


def set_field(kind, index, key, value):
    def mutate(data):
        data[kind][index][key] = value
    return mutate


def set_segm(index, key, value):
    def mutate(data):
        data["annotations"][index]["segmentation"][key] = value
    return mutate


# (mutation, fragments the message must hold); write_case's file is ann.json: image 4 (a.png, 20 x 10),
# annotations 1 (polygon), 2 (crowd, uncompressed RLE), 3 (compressed RLE), categories 9 and 5
TYPE_ERRORS = {
    "width as a string": (set_field("images", 0, "width", "20"), ["image id 4", "'width'", "'20' (str)"]),
    "height as a string": (set_field("images", 0, "height", "10"), ["image id 4", "'height'", "'10' (str)"]),
    "width as a float": (set_field("images", 0, "width", 20.0), ["image id 4", "'width'", "20.0 (float)"]),
    "width zero": (set_field("images", 0, "width", 0), ["'width'", "a positive integer", "0 (int)"]),
    "height negative": (set_field("images", 0, "height", -10), ["'height'", "-10 (int)"]),
    "width null": (set_field("images", 0, "width", None), ["'width'", "None (NoneType)"]),
    "width true": (set_field("images", 0, "width", True), ["'width'", "True (bool)"]),
    "image id as a string": (set_field("images", 0, "id", "4"), ["images[0]", "'id'", "'4' (str)"]),
    "image id as a float": (set_field("images", 0, "id", 4.5), ["images[0]", "'id'", "4.5 (float)"]),
    "file_name as a number": (set_field("images", 0, "file_name", 7), ["image id 4", "'file_name'", "7 (int)"]),
    "file_name empty": (set_field("images", 0, "file_name", ""), ["'file_name'", "a non-empty string"]),
    "image not an object": (lambda d: d["images"].__setitem__(0, "a.png"), ["images[0] must be a JSON object",
                                                                            "'a.png' (str)"]),
    "category_id as a string": (set_field("annotations", 0, "category_id", "9"),
                                ["annotation id 1", "'category_id'", "'9' (str)"]),
    "category_id as a float": (set_field("annotations", 0, "category_id", 9.0), ["'category_id'", "9.0 (float)"]),
    "category_id null": (set_field("annotations", 0, "category_id", None), ["'category_id'", "None"]),
    "image_id as a string": (set_field("annotations", 1, "image_id", "4"),
                             ["annotation id 2", "'image_id'", "'4' (str)"]),
    "annotation id as a string": (set_field("annotations", 2, "id", "3"), ["annotations[2]", "'id'", "'3' (str)"]),
    "annotation not an object": (lambda d: d["annotations"].__setitem__(1, [1, 2]),
                                 ["annotations[1] must be a JSON object", "[1, 2] (list)"]),
    "bbox as a string": (set_field("annotations", 0, "bbox", "3,2,6,4"), ["annotation id 1", "'bbox'",
                                                                          "'3,2,6,4' (str)"]),
    "bbox of strings": (set_field("annotations", 0, "bbox", ["3", "2", "6", "4"]), ["'bbox'", "four finite numbers"]),
    "bbox of three": (set_field("annotations", 0, "bbox", [3, 2, 6]), ["'bbox'", "[3, 2, 6] (list)"]),
    "bbox as an object": (set_field("annotations", 0, "bbox", {"x": 3}), ["'bbox'", "{'x': 3} (dict)"]),
    "bbox with NaN": (set_field("annotations", 0, "bbox", [3, 2, float("nan"), 4]), ["'bbox'", "nan"]),
    "bbox with a boolean": (set_field("annotations", 0, "bbox", [3, 2, True, 4]), ["'bbox'", "True"]),
    "area as a string": (set_field("annotations", 0, "area", "24"), ["'area'", "'24' (str)"]),
    "area negative": (set_field("annotations", 0, "area", -1), ["'area'", "a finite number >= 0", "-1 (int)"]),
    "iscrowd 2": (set_field("annotations", 0, "iscrowd", 2), ["'iscrowd'", "0 or 1", "2 (int)"]),
    "iscrowd as a string": (set_field("annotations", 0, "iscrowd", "0"), ["'iscrowd'", "'0' (str)"]),
    "segmentation as a string": (set_field("annotations", 0, "segmentation", "abc"),
                                 ["annotation id 1", "'segmentation'", "'abc' (str)"]),
    "segmentation a number": (set_field("annotations", 0, "segmentation", 5), ["'segmentation'", "5 (int)"]),
    "segmentation empty": (set_field("annotations", 0, "segmentation", []), ["'segmentation'", "non-empty"]),
    "polygon flat, not nested": (set_field("annotations", 0, "segmentation", [3, 2, 8, 2, 8, 5]),
                                 ["'segmentation'", "each a flat list of numbers"]),
    "polygon of strings": (set_field("annotations", 0, "segmentation", [["3", "2", "8", "2", "8", "5"]]),
                           ["'segmentation'", "each a flat list of numbers"]),
    "polygon of two points": (set_field("annotations", 0, "segmentation", [[3, 2, 8, 2]]),
                              ["'segmentation'", "at least 3 points", "[3, 2, 8, 2] (list)"]),
    "polygon odd count": (set_field("annotations", 0, "segmentation", [[3, 2, 8, 2, 8, 5, 3]]),
                          ["'segmentation'", "an even count"]),
    "RLE size as strings": (set_segm(1, "size", ["10", "20"]), ["annotation id 2", "'segmentation.size'",
                                                                "['10', '20'] (list)"]),
    "RLE size of one": (set_segm(2, "size", [10]), ["'segmentation.size'", "[10] (list)"]),
    "RLE counts negative": (set_segm(1, "counts", [3, -1, 196]), ["'segmentation.counts'", "integers >= 0"]),
    "RLE counts a number": (set_segm(1, "counts", 200), ["'segmentation.counts'", "200 (int)"]),
    "RLE without counts": (lambda d: d["annotations"][2]["segmentation"].pop("counts"),
                           ["annotation id 3: segmentation: missing key 'counts'"]),
    "category id as a string": (set_field("categories", 0, "id", "9"), ["categories[0]", "'id'", "'9' (str)"]),
    "category name as a number": (set_field("categories", 1, "name", 5), ["categories[1]", "'name'", "5 (int)"]),
    "category not an object": (lambda d: d["categories"].__setitem__(0, "nine"),
                               ["categories[0] must be a JSON object"]),
    "images not a list": (lambda d: d.__setitem__("images", {"id": 4}), ["field 'images' must be a list"]),
    "annotations null": (lambda d: d.__setitem__("annotations", None), ["field 'annotations' must be a list",
                                                                        "None"]),
    "no images": (lambda d: d.update(images=[], annotations=[]), ["'images' is empty", "at least one image"]),
    "no categories": (lambda d: d.update(categories=[], annotations=[]),
                      ["'categories' is empty", "at least one category"]),
    # duplicates
    "duplicate image id": (lambda d: d["images"].append(dict(d["images"][0], file_name="b.png")),
                           ["images 'a.png' and 'b.png' share id 4", "image ids must be unique"]),
    "duplicate category id": (lambda d: d["categories"].append({"id": 5, "name": "cinq"}),
                              ["categories 'five' and 'cinq' share id 5"]),
    "duplicate annotation id": (lambda d: d["annotations"].append(dict(d["annotations"][0])),
                                ["annotation id 1: another annotation has the same id"]),
}


@pytest.mark.parametrize("kind", list(TYPE_ERRORS))
def test_wrong_field_is_named_with_its_value_and_file(tmp_path, kind):
    mutate, fragments = TYPE_ERRORS[kind]
    images_dir, path = write_case(tmp_path, mutate)
    with pytest.raises(ValueError) as err:
        CocoDataset(images_dir, path)
    message = str(err.value)
    assert message.startswith(path), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_top_level_not_an_object(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match=r"a\.json: the file must hold one JSON object .* got \[1, 2\] \(list\)"):
        CocoDataset(str(tmp_path), str(tmp_path / "a.json"))


def test_integral_ids_of_any_value_still_load(tmp_path):
    """The checks refuse types, not values: negative and large ids, int areas, boolean iscrowd load."""
    def mutate(d):
        d["images"][0]["id"] = -3
        for ann in d["annotations"]:
            ann["image_id"] = -3
        d["categories"][0]["id"] = 10 ** 12
        d["annotations"][0]["category_id"] = 10 ** 12
        d["annotations"][0]["area"] = 24
        d["annotations"][2]["iscrowd"] = False
    dataset = CocoDataset(*write_case(tmp_path, mutate))
    assert dataset.image_ids == [-3] and dataset.category_ids == [0, 5, 10 ** 12]
    assert dataset[0][1]["labels"].tolist() == [2, 1]


def write_png(path, array):
    Image.fromarray(array).save(path)


def test_truncated_png_is_named_up_front(tmp_path):
    images_dir, path = write_case(tmp_path)
    png = os.path.join(images_dir, "a.png")
    write_png(png, np.random.default_rng(0).integers(0, 256, (10, 20, 3), dtype=np.uint8))
    data = open(png, "rb").read()
    open(png, "wb").write(data[: len(data) - 30])         # the header is intact, the pixel data cut off
    with pytest.raises(ValueError, match=r"ann\.json: image id 4: cannot read image .*a\.png: OSError"):
        CocoDataset(images_dir, path)
    # above the pixel budget only headers are read up front, and the first read names the file
    dataset = CocoDataset(images_dir, path, decode_up_front=False)
    with pytest.raises(ValueError, match=r"ann\.json: image id 4: cannot read image .*a\.png: OSError"):
        dataset[0]


def test_decode_budget_decides_what_is_read_up_front(tmp_path, monkeypatch):
    import minimrcnn.data.coco as coco
    read = []
    monkeypatch.setattr(coco, "read_image", lambda p: read.append(p) or np.zeros((10, 20, 3), np.uint8))
    CocoDataset(*write_case(tmp_path))
    assert len(read) == 1                                 # 200 pixels: within the budget, decoded
    monkeypatch.setattr(CocoDataset, "DECODE_UP_FRONT_PIXELS", 199)
    CocoDataset(*write_case(tmp_path))
    assert len(read) == 1                                 # above it: headers only


def test_exif_rotated_image_is_read_upright_and_sized_so(tmp_path):
    def upright_size(d):
        d["images"][0].update(width=10, height=20)
        for ann in d["annotations"]:
            ann["bbox"] = [2, 3, 4, 6]
            if isinstance(ann["segmentation"], dict):
                ann["segmentation"]["size"] = [20, 10]
    images_dir, path = write_case(tmp_path, upright_size)
    stored = np.random.default_rng(1).integers(0, 256, (10, 20, 3), dtype=np.uint8)
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 8                                       # stored 20 x 10, viewed turned: 10 x 20
    image.save(os.path.join(images_dir, "a.png"), exif=exif)
    from minimrcnn.data import rle
    mask = np.zeros((20, 10), np.uint8)
    mask[3:9, 2:6] = 1
    data = json.loads(open(path).read())
    data["annotations"][1]["segmentation"]["counts"] = rle.mask_to_counts(mask)
    data["annotations"][2]["segmentation"] = rle.encode(mask)
    open(path, "w").write(json.dumps(data))
    got, target = CocoDataset(images_dir, path)[0]
    np.testing.assert_array_equal(got, np.rot90(stored, 1))              # counter-clockwise
    assert target["masks"].shape == (2, 20, 10)
    # the stored size in the file: the error says the EXIF tag turned it
    data["images"][0].update(width=20, height=10)
    open(path, "w").write(json.dumps(data))
    with pytest.raises(ValueError, match=r"a\.png is 10x20 upright \(stored 20x10, turned by its EXIF orientation\), "
                                         r"the file says 20x10"):
        CocoDataset(images_dir, path)


@pytest.mark.parametrize("mode", ["I;16", "F"])
def test_image_modes_reach_the_dataset(tmp_path, mode):
    images_dir, path = write_case(tmp_path)
    grey = np.random.default_rng(2).integers(0, 256, (10, 20), dtype=np.uint8)
    if mode == "I;16":
        Image.fromarray(grey.astype(np.uint16) * 257).save(os.path.join(images_dir, "a.png"))
        image, _ = CocoDataset(images_dir, path)[0]
        np.testing.assert_array_equal(image[:, :, 0], grey)
    else:
        Image.fromarray(grey.astype(np.float32)).save(os.path.join(images_dir, "a.tif"))
        data = json.loads(open(path).read())
        data["images"][0]["file_name"] = "a.tif"
        open(path, "w").write(json.dumps(data))
        with pytest.raises(ValueError, match=r"image id 4: cannot read image .*a\.tif: Pillow mode 'F'"):
            CocoDataset(images_dir, path)


def test_an_image_that_decodes_to_another_shape_is_named(tmp_path, monkeypatch):
    """A PNG whose EXIF chunk sits behind the pixels is seen only when decoded: its shape is checked then."""
    import minimrcnn.data.coco as coco
    images_dir, path = write_case(tmp_path)
    dataset = CocoDataset(images_dir, path, decode_up_front=False)
    monkeypatch.setattr(coco, "read_image", lambda p: np.zeros((20, 10, 3), np.uint8))     # turned upright
    with pytest.raises(ValueError, match=r"ann\.json: image id 4: .*a\.png decodes to 10x20 upright, the file says "
                                         r"20x10"):
        dataset[0]
