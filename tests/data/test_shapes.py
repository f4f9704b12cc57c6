"""The tiny-shapes generator: determinism, target consistency, the preset's rules."""

import numpy as np
import pytest

from minimrcnn.data.shapes import CLASS_NAMES, ShapesDataset, generate_batch, masks_to_boxes, shape_mask


def test_deterministic_per_seed_and_index():
    a = ShapesDataset(20, seed=3)
    b = ShapesDataset(50, seed=3)
    # sample 7 does not depend on the dataset length, nor on what was generated before
    image_b, target_b = b[7]
    image_a, target_a = a[7]
    np.testing.assert_array_equal(image_a, image_b)
    for key in ("boxes", "labels", "masks", "area", "iscrowd"):
        np.testing.assert_array_equal(target_a[key], target_b[key])
    image_c, _ = ShapesDataset(20, seed=4)[7]
    assert not np.array_equal(image_a, image_c)
    assert not np.array_equal(a[7][0], a[8][0])
    batch = generate_batch(3, 7, 2)
    np.testing.assert_array_equal(batch[0][0], image_a)


def test_targets_are_consistent():
    ds = ShapesDataset(40, seed=0)
    seen = set()
    for i in range(len(ds)):
        image, t = ds[i]
        G = len(t["labels"])
        assert image.shape == (128, 128, 3) and image.dtype == np.uint8
        assert 1 <= G <= 4
        assert t["boxes"].dtype == np.float32 and t["boxes"].shape == (G, 4)
        assert t["labels"].dtype == np.int64 and set(t["labels"]) <= {1, 2, 3}
        assert t["masks"].dtype == np.uint8 and t["masks"].shape == (G, 128, 128)
        assert t["iscrowd"].dtype == np.int64 and not t["iscrowd"].any()
        assert t["image_id"] == i
        np.testing.assert_array_equal(t["area"], t["masks"].reshape(G, -1).sum(1))
        assert (t["area"] >= 20).all()
        # boxes equal the visible mask extents, x2 = last column + 1
        for box, mask in zip(t["boxes"], t["masks"]):
            ys, xs = np.nonzero(mask)
            assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        # occlusion: visible masks do not overlap
        assert t["masks"].sum(0).max() <= 1
        # every visible pixel of an instance has that instance's single colour
        for mask in t["masks"]:
            assert len(np.unique(image[mask.astype(bool)], axis=0)) == 1
        seen.update(t["labels"].tolist())
    assert seen == {1, 2, 3}
    assert CLASS_NAMES[1:] == ("square", "circle", "triangle")


def test_shape_sizes():
    c = np.arange(64) + 0.5
    px, py = np.meshgrid(c, c)
    # square of side 10 centred on a pixel corner covers exactly 10 x 10 pixels
    assert shape_mask(1, 32.0, 32.0, 10, 0.0, px, py).sum() == 100
    # circle of diameter 20: about pi * 10^2 pixels
    assert abs(shape_mask(2, 32.0, 32.0, 20, 0.0, px, py).sum() - np.pi * 100) < 10
    # equilateral triangle, circumcircle diameter 40 (R = 20): area 3 sqrt(3)/4 R^2
    tri = shape_mask(3, 32.0, 32.0, 40, 0.3, px, py)
    assert abs(tri.sum() - 3 * np.sqrt(3) / 4 * 400) < 20


def test_border_cut_objects_occur():
    ds = ShapesDataset(60, seed=1)
    boxes = np.concatenate([ds[i][1]["boxes"] for i in range(len(ds))])
    assert (boxes[:, 0] == 0).any() and (boxes[:, 2] == 128).any()


def test_masks_to_boxes_empty_and_bad_args():
    assert masks_to_boxes(np.zeros((1, 4, 4), np.uint8)).tolist() == [[0, 0, 0, 0]]
    with pytest.raises(ValueError, match="min_objects"):
        ShapesDataset(3, min_objects=0)
    with pytest.raises(IndexError):
        ShapesDataset(3)[3]
