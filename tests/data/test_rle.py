"""COCO RLE codec: known answers, round trips, and pycocotools as an optional oracle."""

import numpy as np
import pytest

from minimrcnn.data import rle


def random_masks(seed, count=60):
    rng = np.random.default_rng(seed)
    for k in range(count):
        H, W = (int(v) for v in rng.integers(1, 40, 2))
        m = (rng.random((H, W)) < rng.random()).astype(np.uint8)
        if k % 5 == 0:
            m[:] = k % 2  # all zeros / all ones
        yield m


def test_known_answer_from_module_docstring():
    m = np.array([[0, 1], [1, 1], [1, 0]], np.uint8)
    assert rle.mask_to_counts(m) == [1, 4, 1]
    # first pixel set -> leading zero-length run
    assert rle.mask_to_counts(np.ones((2, 2), np.uint8)) == [0, 4]
    enc = rle.encode(m)
    assert enc["size"] == [3, 2]
    assert rle.decode({"size": [3, 2], "counts": [1, 4, 1]}).tolist() == m.tolist()


def test_round_trip_and_area_bbox():
    for m in random_masks(0):
        enc = rle.encode(m)
        np.testing.assert_array_equal(rle.decode(enc), m)
        np.testing.assert_array_equal(rle.decode(dict(enc, counts=enc["counts"].encode())), m)
        np.testing.assert_array_equal(rle.decode({"size": enc["size"], "counts": rle.mask_to_counts(m)}), m)
        assert rle.area(enc) == int(m.sum())
        ys, xs = np.nonzero(m)
        expected = [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1] if len(xs) else [0] * 4
        assert rle.to_bbox(enc) == [float(v) for v in expected]


def test_large_counts_and_negative_deltas_round_trip():
    # counts far apart exercise multi-character values and negative differences
    m = np.zeros((300, 200), np.uint8)
    m[:, 150:] = 1
    m[10:12, 3] = 1
    enc = rle.encode(m)
    assert rle.string_to_counts(enc["counts"]) == rle.mask_to_counts(m)
    np.testing.assert_array_equal(rle.decode(enc), m)


def test_bad_inputs():
    with pytest.raises(ValueError, match="mask must be 2-D"):
        rle.encode(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="size"):
        rle.decode({"counts": "abc"})
    with pytest.raises(ValueError, match="H\\*W"):
        rle.decode({"size": [2, 2], "counts": [1, 2]})
    with pytest.raises(TypeError, match="counts"):
        rle.decode({"size": [2, 2], "counts": 5})
    with pytest.raises(ValueError, match="polygon"):
        rle.polygons_to_mask([[1, 2, 3, 4]], 5, 5)


def test_mask_iou_crowd_and_empty():
    a = np.zeros((1, 4, 4), np.uint8)
    a[0, :2, :2] = 1                    # 4 px
    b = np.zeros((3, 4, 4), np.uint8)
    b[0] = 1                            # 16 px
    b[1] = 1                            # same, as crowd
    # b[2] empty
    iou = rle.mask_iou(a, b, [0, 1, 0])
    np.testing.assert_allclose(iou, [[4 / 16, 4 / 4, 0.0]])
    assert rle.iou([], [rle.encode(b[0])], [0]).shape == (0, 1)
    # a detection of another size gets -1
    assert rle.iou([rle.encode(np.ones((3, 3), np.uint8))], [rle.encode(b[0])], [0])[0, 0] == -1


def test_mask_iou_with_no_detections_or_no_ground_truth():
    masks = np.zeros((2, 5, 6), np.uint8)
    assert rle.mask_iou(np.zeros((0, 5, 6), np.uint8), masks, [0, 0]).shape == (0, 2)
    assert rle.mask_iou(masks, np.zeros((0, 5, 6), np.uint8), []).shape == (2, 0)


def test_polygon_rectangle_and_trace_round_trip():
    m = np.zeros((30, 30), np.uint8)
    m[5:15, 8:20] = 1
    m[20:28, 3:6] = 1
    polys = rle.mask_to_polygons(m)
    assert len(polys) == 2
    np.testing.assert_array_equal(rle.polygons_to_mask(polys, 30, 30), m)


def test_traced_shapes_round_trip_approximately():
    from minimrcnn.data.shapes import ShapesDataset
    ds = ShapesDataset(6, seed=1)
    for i in range(6):
        _, t = ds[i]
        for mask in t["masks"]:
            back = rle.polygons_to_mask(rle.mask_to_polygons(mask), *mask.shape)
            iou = (back & mask).sum() / (back | mask).sum()
            assert iou > 0.8


# --- pycocotools oracle ---------------------------------------------------------------------
def test_encode_decode_equal_pycocotools():
    mask_utils = pytest.importorskip("pycocotools.mask")
    for m in random_masks(1, count=100):
        ref = mask_utils.encode(np.asfortranarray(m))
        ours = rle.encode(m)
        assert ours["counts"] == ref["counts"].decode("ascii")
        assert ours["size"] == list(ref["size"])
        np.testing.assert_array_equal(rle.decode(dict(ref)), mask_utils.decode(ref))
        assert rle.to_bbox(ours) == mask_utils.toBbox(ref).tolist()
    # uncompressed RLE as pycocotools reads it
    unc = {"size": [4, 3], "counts": [2, 5, 1, 4]}
    ref = mask_utils.frPyObjects(unc, 4, 3)
    np.testing.assert_array_equal(rle.decode(unc), mask_utils.decode(ref))


def test_polygon_rasterisation_agrees_with_pycocotools():
    mask_utils = pytest.importorskip("pycocotools.mask")
    rng = np.random.default_rng(2)
    agree = total = 0
    for _ in range(200):
        H, W = (int(v) for v in rng.integers(5, 60, 2))
        polys = []
        for _ in range(int(rng.integers(1, 3))):
            V = int(rng.integers(3, 9))
            # coordinates partly outside the image, fractional, some negative
            polys.append((rng.random(2 * V) * np.array([W + 6, H + 6] * V) - 3).tolist())
        ref = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polys, H, W)))
        ours = rle.polygons_to_mask(polys, H, W)
        agree += int((ref == ours).sum())
        total += ref.size
    assert agree / total == 1.0  # the port of rleFrPoly is exact on these cases


def test_traced_polygons_read_by_pycocotools():
    mask_utils = pytest.importorskip("pycocotools.mask")
    from minimrcnn.data.shapes import ShapesDataset
    _, t = ShapesDataset(1, seed=4)[0]
    for mask in t["masks"]:
        polys = rle.mask_to_polygons(mask)
        ref = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polys, *mask.shape)))
        np.testing.assert_array_equal(rle.polygons_to_mask(polys, *mask.shape), ref)
