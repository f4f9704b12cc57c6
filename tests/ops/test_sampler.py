"""BalancedPositiveNegativeSampler: counts, index ranges, reproducibility, uniformity."""

import numpy as np
import pytest

from minimrcnn.ops.sampler import BalancedPositiveNegativeSampler


def test_torchvision_counts_and_ranges():
    # torchvision test: 4 samples at 25% -> 1 positive (from 0..2), 3 negatives (from 3..9).
    labels = np.array([1, 1, 1] + [0] * 7)
    pos, neg = BalancedPositiveNegativeSampler(4, 0.25)([labels], np.random.default_rng(0))
    assert pos[0].dtype == np.uint8 and neg[0].dtype == np.uint8
    assert pos[0].sum() == 1 and pos[0][3:].sum() == 0
    assert neg[0].sum() == 3 and neg[0][:3].sum() == 0


def test_fills_with_negatives_and_ignores_minus_one():
    labels = np.array([2, -1, -1, 0, 0, 0, 0, 0, 0, 0, 1])   # 2 positives, 7 negatives
    pos, neg = BalancedPositiveNegativeSampler(6, 0.5)([labels, np.zeros(3, np.int64)], np.random.default_rng(1))
    np.testing.assert_array_equal(pos[0], labels >= 1)          # both positives taken
    assert neg[0].sum() == 4 and np.all(labels[neg[0] == 1] == 0)
    assert pos[1].sum() == 0 and neg[1].sum() == 3              # fewer negatives than asked
    assert not np.any(pos[0] & neg[0])


def test_float_labels_and_reproducible():
    labels = np.array([1.0, 0.0, -1.0, 0.0, 1.0, 0.0])
    sampler = BalancedPositiveNegativeSampler(2, 0.5)
    a = sampler([labels], np.random.default_rng(7))
    b = sampler([labels], np.random.default_rng(7))
    np.testing.assert_array_equal(a[0][0], b[0][0])
    np.testing.assert_array_equal(a[1][0], b[1][0])
    assert a[0][0].sum() == 1 and a[1][0].sum() == 1


def test_selection_is_roughly_uniform():
    labels = np.zeros(10, np.int64)
    sampler = BalancedPositiveNegativeSampler(2, 0.5)
    rng = np.random.default_rng(0)
    counts = sum(sampler([labels], rng)[1][0].astype(int) for _ in range(2000))
    assert counts.sum() == 4000
    np.testing.assert_allclose(counts / 2000, 0.2, atol=0.05)   # each picked with p = 2/10


def test_errors():
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        BalancedPositiveNegativeSampler(4, 0.25)([np.zeros(3)], 0)
    with pytest.raises(ValueError, match=r"matched_labels\[0\] must have shape \[R_i\]"):
        BalancedPositiveNegativeSampler(4, 0.25)([np.zeros((2, 2))], np.random.default_rng(0))
    with pytest.raises(ValueError, match="positive_fraction"):
        BalancedPositiveNegativeSampler(4, 1.5)
