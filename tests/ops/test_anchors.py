"""AnchorGenerator: torchvision's known answers (cell anchors, 15x15 example, 242991 count)."""

import numpy as np
import pytest

from minimrcnn.ops.anchors import AnchorGenerator

# 800x1216 padded batch: FPN levels '0'..'3' at strides 4..32 and 'pool' = ceil(P5 / 2).
FEATURES_800x1216 = [(200, 304), (100, 152), (50, 76), (25, 38), (13, 19)]


def test_cell_anchor_table():
    expected = [
        [[-23, -11, 23, 11], [-16, -16, 16, 16], [-11, -23, 11, 23]],
        [[-45, -23, 45, 23], [-32, -32, 32, 32], [-23, -45, 23, 45]],
        [[-91, -45, 91, 45], [-64, -64, 64, 64], [-45, -91, 45, 91]],
        [[-181, -91, 181, 91], [-128, -128, 128, 128], [-91, -181, 91, 181]],
        [[-362, -181, 362, 181], [-256, -256, 256, 256], [-181, -362, 181, 362]],
    ]
    generator = AnchorGenerator()
    assert generator.num_anchors_per_location() == [3] * 5
    for cell, exp in zip(generator.cell_anchors, expected):
        assert cell.dtype == np.float32
        np.testing.assert_array_equal(cell, exp)


def test_15x15_image_3x3_feature_size_10():
    # torchvision test_anchor_generator: stride 5, centres at 0, 5, 10, (row, col) order.
    anchors = AnchorGenerator(sizes=((10,),), aspect_ratios=((1.0,),))((15, 15), [(3, 3)])
    expected = [[-5, -5, 5, 5], [0, -5, 10, 5], [5, -5, 15, 5],
                [-5, 0, 5, 10], [0, 0, 10, 10], [5, 0, 15, 10],
                [-5, 5, 5, 15], [0, 5, 10, 15], [5, 5, 15, 15]]
    assert anchors.dtype == np.float32
    np.testing.assert_array_equal(anchors, expected)


def test_800x1216_count_order_and_pool_stride():
    generator = AnchorGenerator()
    anchors = generator((800, 1216), FEATURES_800x1216)
    counts = generator.num_anchors_per_level(FEATURES_800x1216)
    assert counts == [182400, 45600, 11400, 2850, 741]
    assert anchors.shape == (242991, 4) and anchors.dtype == np.float32
    # Level 0 starts with its cell anchors at centre (0, 0); the next cell is 4 px right.
    np.testing.assert_array_equal(anchors[:3], generator.cell_anchors[0])
    np.testing.assert_array_equal(anchors[3:6], generator.cell_anchors[0] + [4, 0, 4, 0])
    # Row 1 of level 0: index (1 * 304 + 0) * 3.
    np.testing.assert_array_equal(anchors[912:915], generator.cell_anchors[0] + [0, 4, 0, 4])
    # 'pool': stride_h = 800 // 13 = 61 (not 64), stride_w = 1216 // 19 = 64.
    pool = generator.anchors_per_level((800, 1216), FEATURES_800x1216)[4]
    centres = (pool[:, :2] + pool[:, 2:]) / 2
    np.testing.assert_array_equal(np.unique(centres[:, 1]), 61 * np.arange(13))
    np.testing.assert_array_equal(np.unique(centres[:, 0]), 64 * np.arange(19))
    np.testing.assert_array_equal(np.concatenate(generator.anchors_per_level((800, 1216), FEATURES_800x1216)),
                                  anchors)


def test_several_sizes_ratio_major_order():
    generator = AnchorGenerator(sizes=((16, 32),), aspect_ratios=((0.5, 2.0),))
    # ratio-major then size: (0.5, 16), (0.5, 32), (2, 16), (2, 32); ratio = h / w.
    cell = generator.cell_anchors[0]
    widths, heights = cell[:, 2] - cell[:, 0], cell[:, 3] - cell[:, 1]
    np.testing.assert_array_equal(widths, [22, 46, 12, 22])
    np.testing.assert_array_equal(heights, [12, 22, 22, 46])
    assert generator.num_anchors_per_location() == [4]


def test_bad_inputs():
    with pytest.raises(ValueError, match="sizes and aspect_ratios"):
        AnchorGenerator(sizes=((32,), (64,)), aspect_ratios=((1.0,),))
    generator = AnchorGenerator()
    with pytest.raises(ValueError, match="feature_sizes must have one"):
        generator((800, 1216), FEATURES_800x1216[:4])
    with pytest.raises(ValueError, match="image_size must be"):
        generator((800,), FEATURES_800x1216)
