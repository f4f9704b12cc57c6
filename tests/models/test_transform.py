"""GeneralizedRCNNTransform: sizes, resize kernels, normalisation, padding, targets, errors."""

import numpy as np
import pytest

from minimrcnn.models import maskrcnn_shapes
from minimrcnn.models.transform import GeneralizedRCNNTransform, nearest_resize_masks, resize_boxes, to_float_chw
from minimrcnn.nn import Module
from minimrcnn.nn.functional.interpolate import interpolate


@pytest.mark.parametrize("hw, expected", [((480, 640), (800, 1066)), ((427, 640), (800, 1199)),
                                          ((333, 500), (800, 1201)), ((100, 3000), (44, 1333)),
                                          ((512, 683), (800, 1067))])
def test_resized_sizes_match_torchvision(hw, expected):
    assert GeneralizedRCNNTransform(800, 1333).get_size(*hw) == expected


def test_resize_is_interpolate_bilinear():
    # The transform resizes with the one bilinear implementation (nn.functional.interpolate).
    transform = GeneralizedRCNNTransform(40, 100, image_mean=(0, 0, 0), image_std=(1, 1, 1), size_divisible=1)
    x = np.random.default_rng(0).random((3, 20, 30)).astype(np.float32)
    batch, _, _ = transform([x])
    assert batch.image_sizes == [(40, 60)]
    np.testing.assert_array_equal(batch.tensors[0], interpolate(x[None], (40, 60), "bilinear")[0])


def test_to_float_chw_is_the_trainers_conversion():
    image = np.arange(256 * 3, dtype=np.int64).reshape(16, 16, 3).astype(np.uint8)
    out = to_float_chw(image)
    assert out.dtype == np.float32 and out.shape == (3, 16, 16) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / 255.0)
    assert out[0, 0, 1] == np.float32(3) / np.float32(255)


def test_nearest_masks_and_box_scaling():
    m = np.array([[[1, 0], [0, 1]]], dtype=np.uint8)
    out = nearest_resize_masks(m, (4, 4))
    np.testing.assert_array_equal(out[0], np.kron(m[0], np.ones((2, 2), np.uint8)))
    # 3 -> 2 rows: src = floor(dst * 1.5) = 0, 1
    column = np.arange(3, dtype=np.uint8).reshape(1, 3, 1)
    np.testing.assert_array_equal(nearest_resize_masks(column, (2, 1))[0, :, 0], [0, 1])
    boxes = np.array([[10, 20, 30, 40]], dtype=np.float32)
    np.testing.assert_allclose(resize_boxes(boxes, (100, 200), (50, 400)), [[20, 10, 60, 20]])


def test_forward_normalises_pads_and_keeps_targets():
    transform = GeneralizedRCNNTransform(64, 128, num_classes=3)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)  # s = 1: not resized
    b = rng.random((3, 32, 64)).astype(np.float32)           # resized to 64 x 128
    masks = np.zeros((1, 32, 64), np.uint8)
    masks[0, 4:10, 8:20] = 1
    targets = [{"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64),
                "masks": np.zeros((0, 64, 96), np.uint8)},
               {"boxes": np.array([[8, 4, 20, 10]], np.float32), "labels": np.array([2]), "masks": masks}]
    batch, new_targets, original = transform([a, b], targets)
    assert batch.tensors.shape == (2, 3, 64, 128) and batch.tensors.dtype == np.float32
    assert batch.image_sizes == [(64, 96), (64, 128)] and original == [(64, 96), (32, 64)]
    expected = (a.transpose(2, 0, 1) / np.float32(255) - np.array(transform.image_mean)[:, None, None]) / \
        np.array(transform.image_std)[:, None, None]
    np.testing.assert_allclose(batch.tensors[0, :, :, :96], expected, rtol=1e-5, atol=1e-6)
    assert np.all(batch.tensors[0, :, :, 96:] == 0)       # zero padding = the mean colour
    np.testing.assert_allclose(new_targets[1]["boxes"], [[16, 8, 40, 20]])
    assert new_targets[1]["masks"].shape == (1, 64, 128) and new_targets[1]["masks"].sum() == 4 * 6 * 12
    assert targets[1]["boxes"][0, 0] == 8 and targets[1]["masks"].shape == (1, 32, 64)  # caller's not mutated


@pytest.mark.parametrize("image, err, match", [
    (np.zeros((3, 8, 8), np.int32), TypeError, r"images\[0\].*dtype int32"),
    (np.zeros((8, 8, 3), np.float32), ValueError, r"images\[0\].*\[3, H, W\]"),
    (np.zeros((8, 8), np.uint8), ValueError, r"images\[0\].*\[H, W, 3\]"),
    (np.zeros((0, 8, 3), np.uint8), ValueError, r"images\[0\] must be a non-empty uint8 \[H, W, 3\] image, got shape \(0, 8, 3\)"),
    (np.zeros((3, 0, 8), np.float32), ValueError, r"images\[0\] must be a non-empty float \[3, H, W\] image, got shape \(3, 0, 8\)"),
    (np.full((3, 8, 8), 2.0, np.float32), ValueError, r"images\[0\].*\[0, 1\]"),
    (np.full((3, 8, 8), np.nan, np.float32), ValueError, r"images\[0\].*finite"),
    ([[0.5]], TypeError, r"images\[0\].*numpy"),
])
def test_bad_images(image, err, match):
    with pytest.raises(err, match=match):
        GeneralizedRCNNTransform(32, 32)([image])


def good_target():
    return {"boxes": np.array([[1, 1, 5, 5]], np.float32), "labels": np.array([1]),
            "masks": np.ones((1, 16, 16), np.uint8)}


@pytest.mark.parametrize("field, value, match", [
    ("boxes", np.array([[5, 1, 5, 6]], np.float32), r"targets\[1\]\['boxes'\].*degenerate.*index 0"),
    ("boxes", np.array([1, 1, 5, 5], np.float32), r"targets\[1\]\['boxes'\].*float\[G, 4\]"),
    ("labels", np.array([4]), r"targets\[1\]\['labels'\].*\[1, 3\]"),
    ("labels", np.array([0]), r"targets\[1\]\['labels'\]"),
    ("labels", np.array([1.0]), r"targets\[1\]\['labels'\].*int64"),
    ("masks", np.ones((1, 8, 16), np.uint8), r"targets\[1\]\['masks'\].*\(1, 16, 16\)"),
])
def test_bad_targets(field, value, match):
    bad = good_target()
    bad[field] = value
    image = np.zeros((3, 16, 16), np.float32)
    with pytest.raises(ValueError, match=match):
        GeneralizedRCNNTransform(16, 16, num_classes=4)([image, image], [good_target(), bad])


def test_target_list_length_and_missing_field():
    image = np.zeros((3, 16, 16), np.float32)
    transform = GeneralizedRCNNTransform(16, 16)
    with pytest.raises(ValueError, match="targets"):
        transform([image, image], [good_target()])
    with pytest.raises(ValueError, match=r"targets\[0\].*'labels'"):
        transform([image], [{"boxes": np.zeros((0, 4), np.float32)}])
    with pytest.raises(ValueError, match="images"):
        transform([])


def test_postprocess_rescales_boxes_and_pastes_masks():
    transform = GeneralizedRCNNTransform(64, 64)
    det = {"boxes": np.array([[16, 16, 48, 48]], np.float32), "scores": np.array([0.9], np.float32),
           "labels": np.array([1]), "masks": np.ones((1, 1, 28, 28), np.float32)}
    out = transform.postprocess([det], [(64, 64)], [(32, 32)])[0]
    np.testing.assert_allclose(out["boxes"], [[8, 8, 24, 24]])
    assert out["masks"].shape == (1, 1, 32, 32)
    assert out["masks"][0, 0, 16, 16] == pytest.approx(1.0) and out["masks"][0, 0, 0, 0] == 0


def test_bilinear_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).random((3, 37, 53)).astype(np.float32)
    for size in [(80, 107), (20, 31)]:
        ours = interpolate(x[None], size, "bilinear")[0]   # what the transform calls
        ref = torch.nn.functional.interpolate(torch.from_numpy(x)[None], size=size, mode="bilinear",
                                              align_corners=False)[0].numpy()
        np.testing.assert_allclose(ours, ref, atol=1e-5)  # summation order differs
    m = (np.random.default_rng(2).random((2, 37, 53)) > 0.5).astype(np.uint8)
    ref = torch.nn.functional.interpolate(torch.from_numpy(m)[:, None].float(), size=(80, 107))[:, 0].byte().numpy()
    np.testing.assert_array_equal(nearest_resize_masks(m, (80, 107)), ref)


def test_transform_is_a_module_without_state_or_backward():
    # torchvision's transform is an nn.Module too: a child named 'transform', no state_dict keys.
    model = maskrcnn_shapes()
    assert isinstance(model.transform, Module)
    assert [name for name, _ in model.named_modules()][1] == "transform"
    assert not any(key.startswith("transform.") for key in model.state_dict())
    assert repr(model).startswith("MaskRCNN(\n  (transform): GeneralizedRCNNTransform(min_size=")
    model.eval()
    assert not model.transform.training
    x = np.zeros((3, 8, 8), np.float32)
    batch, targets, original_sizes = model.transform([x])          # __call__ is forward
    assert targets is None and original_sizes == [(8, 8)]
    with pytest.raises(NotImplementedError, match="no gradient is taken at the input images"):
        model.transform.backward(None, None)
