"""Matcher: thresholds, argmax ties, low-quality restore (ties, own argmax), errors."""

import numpy as np
import pytest

from minimrcnn.ops.matcher import Matcher


def test_thresholds_and_ties_to_lowest_gt():
    quality = np.array([[0.9, 0.5, 0.1, 0.7, 0.3],
                        [0.9, 0.2, 0.2, 0.2, 0.0]])
    matches = Matcher(0.7, 0.3)(quality)
    assert matches.dtype == np.int64
    # col 0: tie 0.9 -> GT 0; col 1: 0.5 between; col 2: 0.2 below; col 3: 0.7 >= high; col 4: 0.3 == low -> between
    np.testing.assert_array_equal(matches, [0, -2, -1, 0, -2])


def test_low_quality_matches_restore_own_argmax_with_ties():
    # GT 1's best IoU is 0.4, reached by predictions 1 and 2 (a tie): both restored.
    # Prediction 2's own argmax is GT 0 (0.45 > 0.4), so it gets GT 0, not GT 1.
    quality = np.array([[0.1, 0.0, 0.45, 0.95],
                        [0.0, 0.4, 0.4, 0.0]])
    plain = Matcher(0.7, 0.3, allow_low_quality_matches=False)(quality)
    np.testing.assert_array_equal(plain, [-1, -2, -2, 0])
    low = Matcher(0.7, 0.3, allow_low_quality_matches=True)(quality)
    np.testing.assert_array_equal(low, [-1, 1, 0, 0])


def test_low_quality_zero_best_quirk():
    # A GT that overlaps nothing has best 0: every prediction with IoU 0 to it gets its own argmax.
    quality = np.array([[0.0, 0.1, 0.9],
                        [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(Matcher(0.7, 0.3, True)(quality), [0, 0, 0])


def test_roi_heads_setting_has_no_between_band():
    quality = np.array([[0.49, 0.5, 0.51]])
    np.testing.assert_array_equal(Matcher(0.5, 0.5, False)(quality), [-1, 0, 0])


def test_does_not_mutate_input():
    quality = np.array([[0.2, 0.8]])
    before = quality.copy()
    Matcher(0.7, 0.3, True)(quality)
    np.testing.assert_array_equal(quality, before)


def test_errors():
    with pytest.raises(ValueError, match="No ground-truth boxes"):
        Matcher(0.7, 0.3)(np.zeros((0, 5)))
    with pytest.raises(ValueError, match="No proposal boxes"):
        Matcher(0.7, 0.3)(np.zeros((2, 0)))
    with pytest.raises(ValueError, match=r"quality must have shape \[G, R\]"):
        Matcher(0.7, 0.3)(np.zeros(5))
    with pytest.raises(ValueError, match="quality must not contain NaN"):
        Matcher(0.7, 0.3)(np.array([[np.nan, 0.5]]))
    with pytest.raises(ValueError, match="low_threshold must be <= high_threshold"):
        Matcher(0.3, 0.7)
