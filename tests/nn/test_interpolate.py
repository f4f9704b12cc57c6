"""interpolate (nearest, bilinear): known answers, torch's index arithmetic, kernel == twin, gradients."""

import numpy as np
import pytest

from minimrcnn.runtime import reference_kernels
from minimrcnn.gradcheck import numerical_gradient, rel_error
from minimrcnn.nn.functional.interpolate import (
    axis_sources, bilinear_source, interpolate, interpolate_backward, interpolate_forward, nearest_source,
)

SIZES = [((2, 3, 4, 5), (8, 10)), ((1, 2, 3, 7), (5, 3)), ((2, 1, 6, 6), (4, 9)), ((1, 2, 5, 4), (5, 4))]


def test_nearest_known_answer():
    # in=3, out=5: scale 0.6, src = floor(dst * 0.6) = 0, 0, 1, 1, 2
    x = np.array([10.0, 20.0, 30.0]).reshape(1, 1, 1, 3)
    np.testing.assert_array_equal(interpolate(x, (1, 5))[0, 0, 0], [10, 10, 20, 20, 30])
    # exact 2x (the FPN top-down path): every pixel repeated twice per axis
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
    np.testing.assert_array_equal(interpolate(x, (4, 4))[0, 0], x[0, 0].repeat(2, 0).repeat(2, 1))


def test_nearest_uses_float32_scale():
    # The source index must be floor(float32(dst) * float32(in/out)), even for float64 input.
    H, Ho = 7, 800
    x = np.arange(H, dtype=np.float64).reshape(1, 1, H, 1)
    scale = np.float32(H) / np.float32(Ho)
    expected = np.minimum(np.floor(np.arange(Ho, dtype=np.float32) * scale), H - 1)
    np.testing.assert_array_equal(interpolate(x, (Ho, 1))[0, 0, :, 0], expected)


def test_bilinear_known_answer():
    # in=2, out=4: src = max((dst + 0.5) * 0.5 - 0.5, 0) = 0, 0.25, 0.75, 1.25 -> clamped at the edge
    x = np.array([0.0, 4.0]).reshape(1, 1, 1, 2)
    np.testing.assert_array_equal(interpolate(x, (1, 4), "bilinear")[0, 0, 0], [0, 1, 3, 4])
    # downsampling 4 -> 2 takes means of neighbour pairs: src = 0.5 and 2.5
    x = np.array([0.0, 2.0, 4.0, 8.0]).reshape(1, 1, 1, 4)
    np.testing.assert_array_equal(interpolate(x, (1, 2), "bilinear")[0, 0, 0], [1, 6])


def test_bilinear_backward_known_answer():
    x = np.zeros((1, 1, 1, 2))
    out, cache = interpolate_forward(x, (1, 4), "bilinear")
    dx = interpolate_backward(np.ones_like(out), cache)
    # weights on x[0]: 1, 0.75, 0.25, 0; on x[1]: 0, 0.25, 0.75, 1
    np.testing.assert_array_equal(dx[0, 0, 0], [2, 2])


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, size", SIZES)
def test_interpolate_kernel_equals_twin(x_shape, size, dtype, mode):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape[:2] + x_shape[2:][::-1]).astype(dtype).transpose(0, 1, 3, 2)
    out, cache = interpolate_forward(x, size, mode)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = interpolate_backward(dout, cache)
    with reference_kernels():
        out_twin, cache_twin = interpolate_forward(x, size, mode)
        dx_twin = interpolate_backward(dout, cache_twin)
    assert out.shape == x.shape[:2] + size and out.dtype == dx.dtype == dtype
    np.testing.assert_array_equal(out, out_twin)
    np.testing.assert_allclose(dx, dx_twin, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("x_shape, size", SIZES[:3])
def test_interpolate_gradients(x_shape, size, mode):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape)
    out, cache = interpolate_forward(x, size, mode)
    dout = rng.standard_normal(out.shape)
    dx = interpolate_backward(dout, cache)
    assert rel_error(dx, numerical_gradient(lambda v: interpolate(v, size, mode), x, dout)) < 1e-6


def test_interpolate_empty_batch_and_int_size():
    out, cache = interpolate_forward(np.zeros((0, 3, 4, 4), np.float32), 8)
    assert out.shape == (0, 3, 8, 8)
    assert interpolate_backward(out, cache).shape == (0, 3, 4, 4)


@pytest.mark.parametrize("x, size, mode, error, match", [
    (np.zeros((3, 4, 4)), (8, 8), "nearest", ValueError, r"x must be float\[N, C, H, W\]"),
    (np.zeros((1, 3, 4, 4), np.uint8), (8, 8), "nearest", TypeError, "float32 or float64"),
    (np.zeros((1, 3, 4, 4)), (8, 8), "bicubic", ValueError, "mode must be one of"),
    (np.zeros((1, 3, 4, 4)), (0, 8), "nearest", ValueError, "size must be"),
])
def test_interpolate_bad_inputs(x, size, mode, error, match):
    with pytest.raises(error, match=match):
        interpolate(x, size, mode)


# --- the shared formulas (also called by the image transform and mask pasting) -------------
def test_axis_sources_known_answers():
    # bilinear in=2, out=4: src = max((dst + 0.5) / 2 - 0.5, 0) = 0, 0.25, 0.75, 1.25; i0 clamps at in-1
    i0, i1, l0, l1 = axis_sources(2, 4, "bilinear", np.float64)
    np.testing.assert_array_equal(i0, [0, 0, 0, 1])
    np.testing.assert_array_equal(i1, [1, 1, 1, 1])
    np.testing.assert_array_equal(l1, [0, 0.25, 0.75, 0.25])
    np.testing.assert_array_equal(l0, [1, 0.75, 0.25, 0.75])
    # downsampling in=4, out=2: src = 0.5, 2.5
    i0, i1, l0, l1 = axis_sources(4, 2, "bilinear", np.float32)
    np.testing.assert_array_equal(i0, [0, 2]) and np.testing.assert_array_equal(i1, [1, 3])
    assert l0.dtype == l1.dtype == np.float32 and list(l1) == [0.5, 0.5]
    # nearest in=3, out=5: floor(dst * 0.6) = 0, 0, 1, 1, 2; one tap of weight 1
    i0, i1, l0, l1 = axis_sources(3, 5, "nearest")
    np.testing.assert_array_equal(i0, [0, 0, 1, 1, 2])
    np.testing.assert_array_equal(i1, i0)
    assert list(l0) == [1] * 5 and list(l1) == [0] * 5


def test_scalar_formulas_agree_with_the_tables():
    for in_len, out_len in [(7, 800), (800, 7), (28 + 2, 31), (5, 5), (1, 3)]:
        tables = axis_sources(in_len, out_len, "bilinear", np.float32)
        for dst in range(out_len):
            i0, i1, l0, l1 = bilinear_source(dst, in_len, out_len, np.float32)
            assert (i0, i1, np.float32(l0), np.float32(l1)) == tuple(table[dst] for table in tables)
            assert nearest_source(dst, in_len, out_len) == axis_sources(in_len, out_len, "nearest")[0][dst]


def test_bilinear_weights_use_the_data_dtype():
    # in=7 -> out=3: scale 7/3 is rounded differently in float32 and float64
    l1_32 = axis_sources(7, 3, "bilinear", np.float32)[3]
    l1_64 = axis_sources(7, 3, "bilinear", np.float64)[3]
    scale32 = np.float32(7) / np.float32(3)
    expected32 = (np.arange(3, dtype=np.float32) + np.float32(0.5)) * scale32 - np.float32(0.5)
    np.testing.assert_array_equal(l1_32, expected32 - np.floor(expected32))
    assert l1_64.dtype == np.float64 and not np.array_equal(l1_32.astype(np.float64), l1_64)
