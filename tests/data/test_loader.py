"""Batching: collate, horizontal flip, and a resumable deterministic iterator."""

import numpy as np
import pytest

from minimrcnn.data.loader import BatchIterator, collate, hflip
from minimrcnn.data.shapes import ShapesDataset


def test_collate_converts_to_float_chw():
    image = np.zeros((4, 5, 3), np.uint8)
    image[1, 2] = (255, 0, 51)
    images, targets = collate([(image, {"a": 1})])
    assert images[0].dtype == np.float32 and images[0].shape == (3, 4, 5)
    np.testing.assert_allclose(images[0][:, 1, 2], [1.0, 0.0, 0.2])
    assert targets == [{"a": 1}]
    with pytest.raises(ValueError, match="uint8\\[H, W, 3\\]"):
        collate([(np.zeros((4, 5), np.uint8), {})])


def test_hflip_known_answer_and_twice_is_identity():
    image, target = ShapesDataset(1, seed=2)[0]
    flipped_image, flipped = hflip(image, target)
    W = image.shape[1]
    np.testing.assert_array_equal(flipped_image, image[:, ::-1])
    np.testing.assert_array_equal(flipped["boxes"][:, 0], W - target["boxes"][:, 2])
    np.testing.assert_array_equal(flipped["boxes"][:, 2], W - target["boxes"][:, 0])
    # flipped boxes are still the extents of the flipped masks
    for box, mask in zip(flipped["boxes"], flipped["masks"]):
        xs = np.nonzero(mask.any(0))[0]
        assert (box[0], box[2]) == (xs[0], xs[-1] + 1)
    back_image, back = hflip(flipped_image, flipped)
    np.testing.assert_array_equal(back_image, image)
    for key in ("boxes", "masks", "labels", "area"):
        np.testing.assert_array_equal(back[key], target[key])
    assert flipped["image_id"] == target["image_id"]


def test_hflip_does_not_mutate_inputs():
    image, target = ShapesDataset(1, seed=2)[0]
    boxes = target["boxes"].copy()
    hflip(image, target)
    np.testing.assert_array_equal(target["boxes"], boxes)


def first_boxes(batch):
    return [t["boxes"].tolist() for t in batch[1]]


def test_batch_iterator_is_deterministic_and_resumable():
    ds = ShapesDataset(10, seed=0, image_size=32, min_size=8, max_size=16)
    it = BatchIterator(ds, batch_size=4, shuffle=True, seed=5)
    assert len(it) == 3
    sizes = [len(next(it)[0]) for _ in range(3)]
    assert sizes == [4, 4, 2]  # a batch never spans two epochs
    state = it.state_dict()
    assert state == {"seed": 5, "epoch": 1, "position": 0}
    ahead = [first_boxes(next(it)) for _ in range(4)]
    resumed = BatchIterator(ds, batch_size=4, shuffle=True, seed=5)
    resumed.load_state_dict(state)
    assert [first_boxes(next(resumed)) for _ in range(4)] == ahead
    # a different seed draws a different order
    other = BatchIterator(ds, batch_size=4, shuffle=True, seed=6)
    other.load_state_dict(dict(state, seed=6))
    assert [first_boxes(next(other)) for _ in range(4)] != ahead


def test_batch_iterator_flips_and_order():
    ds = ShapesDataset(6, seed=0, image_size=32, min_size=8, max_size=16)
    plain = BatchIterator(ds, batch_size=6, shuffle=False, flip_prob=0.0)
    images, targets = next(plain)
    assert [t["image_id"] for t in targets] == list(range(6))
    always = BatchIterator(ds, batch_size=6, shuffle=False, flip_prob=1.0)
    flipped, _ = next(always)
    for a, b in zip(images, flipped):
        np.testing.assert_array_equal(a[:, :, ::-1], b)
    with pytest.raises(ValueError, match="batch_size"):
        BatchIterator(ds, batch_size=0)
    with pytest.raises(ValueError, match="seed"):
        plain.load_state_dict({"seed": 1, "epoch": 0, "position": 0})
