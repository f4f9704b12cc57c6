"""LevelMapper and MultiScaleRoIAlign (docs/torchvision-parity.md sec. 9)."""

import numpy as np
import pytest

from minimrcnn.ops.poolers import LevelMapper, MultiScaleRoIAlign, MultiScaleRoIAlignCache
from minimrcnn.ops.roi_align import roi_align

NAMES = ["0", "1", "2", "3"]


def square(side):
    return [0.0, 0.0, side, side]


def test_level_mapper_table():
    sides = [10, 111.99, 112, 224, 447.9, 448, 2000, 0]
    expected_k = [2, 2, 3, 4, 4, 5, 5, 2]
    levels = LevelMapper(2, 5)([np.array([square(s) for s in sides], np.float32)])
    assert levels.dtype == np.int64
    np.testing.assert_array_equal(levels, np.array(expected_k) - 2)


def test_level_mapper_eps_keeps_float32_sides_just_under_a_power_of_two_up():
    """torchvision adds eps = 1e-6 before the floor: in float32, sides 223.9999 and 447.9998
    have log2(side / 224) a hair under 0 and 1, and land on levels 4 and 5 (torchvision 0.29.1
    gives [2, 3, 1] for these three). Without eps they would drop one level."""
    sides = np.array([square(s) for s in (223.9999, 447.9998, 111.99995)], np.float32)
    np.testing.assert_array_equal(LevelMapper(2, 5)([sides]), [2, 3, 1])


def test_multiscale_roi_align_defaults_are_torchvisions():
    """Both presets rely on the defaults: canonical_scale 224 maps to canonical_level 4."""
    pooler = MultiScaleRoIAlign(NAMES, 7, 2)
    feats = pyramid(np.random.default_rng(0), 1, 1, 512, 512)
    boxes = np.array([square(s) for s in (32, 112, 224, 448)], np.float32)
    pooler(feats, [boxes], [(512, 512)])
    np.testing.assert_array_equal(pooler.map_levels([boxes]), [0, 1, 2, 3])


def pyramid(rng, N, C, padded_h, padded_w, dtype=np.float64):
    feats = {name: rng.standard_normal((N, C, padded_h >> (2 + i), padded_w >> (2 + i))).astype(dtype)
             for i, name in enumerate(NAMES)}
    feats["pool"] = rng.standard_normal((N, C, padded_h >> 6, padded_w >> 6)).astype(dtype)
    return feats


def boxes_in_image(rng, n, h, w):
    """float32[n, 4] inside an h x w image, sides log-uniform from 4 to the image size (every level)."""
    xy = rng.uniform(0, [w * 0.8, h * 0.8], (n, 2))
    wh = np.exp(rng.uniform(np.log(4), np.log(max(h, w)), (n, 2)))
    return np.concatenate([xy, np.minimum(xy + wh, [w, h])], axis=1).astype(np.float32)


def test_scales_inferred_from_height_and_cached():
    rng = np.random.default_rng(0)
    feats = pyramid(rng, 1, 1, 768, 1344)                 # a 750x1333 image padded to 32
    pooler = MultiScaleRoIAlign(NAMES, 7, 2)
    pooler(feats, [boxes_in_image(rng, 3, 750, 1333)], [(750, 1333)])
    assert pooler.scales == [1 / 4, 1 / 8, 1 / 16, 1 / 32]
    assert (pooler.map_levels.k_min, pooler.map_levels.k_max) == (2, 5)
    pooler(feats, [boxes_in_image(rng, 3, 100, 100)], [(100, 100)])   # other size: cached
    assert pooler.scales == [1 / 4, 1 / 8, 1 / 16, 1 / 32]


def test_each_box_pooled_from_its_level_in_original_order():
    rng = np.random.default_rng(1)
    feats = pyramid(rng, 2, 3, 256, 256)
    boxes = [boxes_in_image(rng, 30, 250, 240), boxes_in_image(rng, 20, 256, 256)]
    pooler = MultiScaleRoIAlign(NAMES, 5, 2, canonical_scale=56)     # small image: spread levels
    out, _ = pooler(feats, boxes, [(250, 240), (256, 256)])
    levels = pooler.map_levels(boxes)
    assert len(np.unique(levels)) >= 3
    rois = np.concatenate([np.r_[[0] * 30, [1] * 20][:, None], np.concatenate(boxes)], 1)
    for r in range(50):
        level = levels[r]
        expected = roi_align(feats[NAMES[level]], rois[r:r + 1], 5, 0.25 / 2 ** level, 2)
        np.testing.assert_array_equal(out[r:r + 1], expected)


def test_call_keeps_the_module_contract():
    # Like every Module, calling the pooler is its forward: (out, cache), never out alone.
    rng = np.random.default_rng(6)
    feats = pyramid(rng, 1, 2, 64, 64)
    boxes = [np.array([square(8.0), square(40.0)])]
    pooler = MultiScaleRoIAlign(NAMES, 3, 2, canonical_scale=56)
    out, cache = pooler(feats, boxes, [(64, 64)])
    again, _ = pooler.forward(feats, boxes, [(64, 64)])
    np.testing.assert_array_equal(out, again)
    assert isinstance(cache, MultiScaleRoIAlignCache) and cache.num_rois == 2
    assert sorted(pooler.backward(np.ones_like(out), cache)) == NAMES


def test_single_feature_map_has_no_level_mapping():
    rng = np.random.default_rng(2)
    feats = {"feat": rng.standard_normal((1, 2, 16, 16))}
    boxes = [boxes_in_image(rng, 6, 64, 64) * np.float32(4)]
    pooler = MultiScaleRoIAlign(["feat"], 3, 2)
    out, _ = pooler(feats, boxes, [(64, 64)])
    assert pooler.scales == [0.25]
    np.testing.assert_array_equal(out, roi_align(feats["feat"], boxes, 3, 0.25, 2))


def test_gradient_check_and_backward_keys(one_numba_thread):   # hundreds of tiny calls
    rng = np.random.default_rng(3)
    feats = pyramid(rng, 1, 2, 64, 64)
    boxes = [np.array([square(6.3), [3.1, 2.2, 30.7, 40.9], [1.3, 0.4, 60.2, 62.9]], np.float64)]
    pooler = MultiScaleRoIAlign(NAMES, 2, 2, canonical_scale=56)   # spread 3 boxes over levels
    out, cache = pooler.forward(feats, boxes, [(64, 64)])
    weights = rng.standard_normal(out.shape)
    grads = pooler.backward(weights, cache)
    assert sorted(grads) == NAMES                         # 'pool' is not pooled from
    used = set(pooler.map_levels(boxes).tolist())
    for level, name in enumerate(NAMES):
        assert grads[name].shape == feats[name].shape
        if level not in used:
            assert not grads[name].any()                  # zeros where no RoI landed
        x = feats[name]
        for i in list(np.ndindex(x.shape))[::13]:          # a sample of entries
            old = x[i]
            x[i] = old + 1e-6
            plus = np.sum(pooler(feats, boxes, [(64, 64)])[0] * weights)
            x[i] = old - 1e-6
            minus = np.sum(pooler(feats, boxes, [(64, 64)])[0] * weights)
            x[i] = old
            assert grads[name][i] == pytest.approx((plus - minus) / 2e-6, rel=1e-6, abs=1e-8)


def test_empty_boxes():
    rng = np.random.default_rng(4)
    feats = pyramid(rng, 2, 3, 64, 64, np.float32)
    pooler = MultiScaleRoIAlign(NAMES, 7, 2)
    out, cache = pooler.forward(feats, [np.zeros((0, 4)), np.zeros((0, 4))], [(64, 64)] * 2)
    assert out.shape == (0, 3, 7, 7) and out.dtype == np.float32
    grads = pooler.backward(out, cache)
    assert all(not g.any() for g in grads.values())


def test_missing_feature_raises():
    pooler = MultiScaleRoIAlign(NAMES, 7, 2)
    with pytest.raises(ValueError, match="features"):
        pooler({"0": np.zeros((1, 1, 8, 8))}, [np.zeros((0, 4))], [(32, 32)])
