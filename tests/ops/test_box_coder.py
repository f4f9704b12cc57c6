"""BoxCoder: hand-computed encode/decode, inverse property, clamp, dtypes, bad inputs."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minimrcnn.ops.box_coder import BoxCoder


def test_encode_known_answer():
    # proposal [0,0,10,10]: centre (5,5), size 10; GT [2,4,22,14]: centre (12,9), size (20,10).
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    deltas = coder.encode(np.array([[2.0, 4, 22, 14]]), np.array([[0.0, 0, 10, 10]]))
    np.testing.assert_allclose(deltas, [[10 * 7 / 10, 10 * 4 / 10, 5 * math.log(2), 0.0]], rtol=1e-15)


def test_decode_known_answer_and_shape():
    coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
    deltas = np.array([[0.0, 0, 0, 0, 0.5, -0.5, math.log(2), 0]])       # K = 2 classes
    out = coder.decode(deltas, np.array([[0.0, 0, 10, 20]]))
    assert out.shape == (1, 2, 4)
    np.testing.assert_allclose(out[0, 0], [0, 0, 10, 20])
    # centre (5,10) moves by (0.5*10, -0.5*20) -> (10, 0); width doubles to 20.
    np.testing.assert_allclose(out[0, 1], [0, -10, 20, 10], atol=1e-12)


def test_decode_clamps_dw_dh_from_above_only():
    coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
    out = coder.decode(np.array([[0.0, 0, 100.0, -100.0]]), np.array([[0.0, 0, 16, 16]]))[0, 0]
    # dw clamped to log(1000/16) -> width 1000; dh = -100 not clamped -> height ~0.
    np.testing.assert_allclose(out[2] - out[0], 1000.0, rtol=1e-12)
    assert 0 <= out[3] - out[1] < 1e-30


def test_dtypes_follow_deltas():
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    proposals = np.array([[0.0, 0, 10, 10]])                              # float64
    assert coder.decode(np.zeros((1, 4), np.float32), proposals).dtype == np.float32
    assert coder.encode(proposals.astype(np.float32), proposals.astype(np.float32)).dtype == np.float32
    assert coder.decode(np.zeros((0, 8)), np.zeros((0, 4))).shape == (0, 2, 4)
    assert coder.encode(np.zeros((0, 4)), np.zeros((0, 4))).shape == (0, 4)


# Sides within a factor 50 of each other: below the decode clamp (1000 / 16 = 62.5x).
box = st.tuples(st.floats(-100, 100), st.floats(-100, 100), st.floats(2, 100), st.floats(2, 100)).map(
    lambda b: [b[0], b[1], b[0] + b[2], b[1] + b[3]])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(box, box), min_size=1, max_size=10),
       st.sampled_from([(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)]))
def test_decode_inverts_encode(pairs, weights):
    gt = np.array([g for g, _ in pairs])
    proposals = np.array([p for _, p in pairs])
    coder = BoxCoder(weights)
    decoded = coder.decode(coder.encode(gt, proposals), proposals)[:, 0]
    np.testing.assert_allclose(decoded, gt, rtol=1e-9, atol=1e-9)


def test_bad_inputs():
    coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="weights must be 4"):
        BoxCoder((1.0, 1.0))
    with pytest.raises(ValueError, match=r"deltas must have shape \[R, 4\*K\]"):
        coder.decode(np.zeros((2, 6)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"proposals must have shape \[R, 4\] = \[2, 4\]"):
        coder.decode(np.zeros((2, 4)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="gt_boxes and proposals must have the same R"):
        coder.encode(np.zeros((2, 4)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="deltas must have finite coordinates"):
        coder.decode(np.array([[0.0, np.nan, 0, 0]]), np.zeros((1, 4)))
    with pytest.raises(TypeError, match="gt_boxes must be float"):
        coder.encode(np.zeros((1, 4), np.int64), np.zeros((1, 4)))
