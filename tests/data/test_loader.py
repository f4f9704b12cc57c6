"""Batching: which images each iteration reads, random horizontal flips."""

import numpy as np

from minimrcnn.data.loader import batch_indices, hflip, load_batch
from minimrcnn.data.shapes import ShapesDataset


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


class _Config:
    def __init__(self, batch_size, seed):
        self.batch_size, self.seed = batch_size, seed


def test_batch_indices_stream_is_consecutive():
    assert batch_indices(_Config(3, 0), 2, None) == [6, 7, 8]


def test_batch_indices_visit_every_image_once_per_epoch_and_depend_only_on_seed_and_iteration():
    config = _Config(batch_size=4, seed=5)
    run = [i for t in range(5) for i in batch_indices(config, t, 10)]   # 20 positions = 2 epochs
    assert sorted(run[:10]) == list(range(10)) and sorted(run[10:]) == list(range(10))
    assert run[:10] != run[10:]                                  # a new order each epoch
    assert batch_indices(config, 3, 10) == run[12:16]            # iteration 3 alone: same images
    assert [i for t in range(5) for i in batch_indices(_Config(4, 6), t, 10)] != run


def test_load_batch_passes_uint8_images_and_flips_from_the_generator():
    ds = ShapesDataset(6, seed=0, image_size=32, min_size=8, max_size=16)
    images, targets = load_batch(ds, [0, 1], np.random.default_rng(0), flip_prob=0.0)
    assert [im.dtype for im in images] == [np.uint8, np.uint8] and images[0].shape == (32, 32, 3)
    np.testing.assert_array_equal(images[1], ds[1][0])
    assert set(targets[0]) == {"boxes", "labels", "masks"}
    flipped, flipped_targets = load_batch(ds, [0, 1], np.random.default_rng(0), flip_prob=1.0)
    np.testing.assert_array_equal(flipped[0], images[0][:, ::-1])
    np.testing.assert_array_equal(flipped_targets[0]["masks"], targets[0]["masks"][..., ::-1])
    # one draw per image, in order: the same generator state gives the same flips
    draws = np.random.default_rng(3).random(6) < 0.5
    got, _ = load_batch(ds, range(6), np.random.default_rng(3), flip_prob=0.5)
    for k in range(6):
        np.testing.assert_array_equal(got[k], ds[k][0][:, ::-1] if draws[k] else ds[k][0])
