"""GroupNorm, BatchNorm, FrozenBatchNorm: known answers, twin == kernel, gradients, errors."""

import numpy as np
import pytest

from minimrcnn.runtime import reference_kernels
from minimrcnn.gradcheck import numerical_gradient, rel_error
from minimrcnn.nn.functional.norm import (
    _group_norm_backward_kernel, _group_norm_forward_kernel, batch_norm, batch_norm_backward,
    batch_norm_forward, frozen_batch_norm, frozen_batch_norm_backward, frozen_batch_norm_forward,
    group_norm, group_norm_backward, group_norm_backward_reference, group_norm_forward,
    group_norm_forward_reference,
)

from tests.conftest import randn, run_without_jit


# -- GroupNorm --------------------------------------------------------------------
def test_group_norm_known_answer():
    # One image, 2 channels, 1 group, pixels [1, 3] and [5, 7]: mean 4, biased var 5.
    x = np.array([[[1.0, 3.0], [5.0, 7.0]]])                    # [1, 2, 2]
    out = group_norm(x, 1, np.array([1.0, 2.0]), np.array([0.0, 1.0]), eps=0.0)
    x_hat = (x - 4) / np.sqrt(5)
    expected = x_hat * np.array([1.0, 2.0])[None, :, None] + np.array([0.0, 1.0])[None, :, None]
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    np.testing.assert_allclose(out[0, 0], [-3 / np.sqrt(5), -1 / np.sqrt(5)], rtol=1e-12)


def test_group_norm_groups_are_independent_and_normalised():
    rng = np.random.default_rng(0)
    x = randn(rng, (2, 8, 5, 5)) * 3 + 7
    out = group_norm(x, 4)
    groups = out.reshape(2, 4, -1)
    np.testing.assert_allclose(groups.mean(axis=2), 0, atol=1e-10)
    np.testing.assert_allclose(groups.var(axis=2), 1, rtol=1e-4)   # eps makes it slightly < 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,groups", [((2, 8, 5, 6), 4), ((3, 6), 3), ((1, 4, 3, 2, 2), 1), ((2, 6, 4, 4), 6)])
def test_group_norm_kernel_matches_twin(dtype, shape, groups):
    rng = np.random.default_rng(1)
    # A non-contiguous input: every other column of a wider array.
    wide = randn(rng, shape[:-1] + (2 * shape[-1],), dtype)
    x = wide[..., ::2]
    assert not x.flags.c_contiguous
    C = shape[1]
    w, b = randn(rng, C, dtype), randn(rng, C, dtype)
    out, cache = group_norm_forward(x, groups, w, b)
    dout = randn(rng, shape, dtype)
    grads = group_norm_backward(dout, cache)
    with reference_kernels():
        out_ref, cache_ref = group_norm_forward(x, groups, w, b)
        grads_ref = group_norm_backward(dout, cache_ref)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert out.dtype == dtype and out_ref.dtype == dtype
    np.testing.assert_allclose(out, out_ref, rtol=tol, atol=tol)
    for g, g_ref in zip(grads, grads_ref):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, g_ref, rtol=tol, atol=tol * 10)


def test_group_norm_twin_and_kernel_callable_directly():
    rng = np.random.default_rng(2)
    x = randn(rng, (2, 4, 3, 3))
    w, b = randn(rng, 4), randn(rng, 4)
    out_ref, mean_ref, rstd_ref = group_norm_forward_reference(x, 2, w, b, 1e-5)
    out, mean, rstd = np.empty((2, 2, 2, 9)), np.empty((2, 2)), np.empty((2, 2))
    _group_norm_forward_kernel(out, mean, rstd, x.reshape(2, 2, 2, 9), w.reshape(2, 2), b.reshape(2, 2), 1e-5)
    np.testing.assert_allclose(out.reshape(x.shape), out_ref, rtol=1e-12)
    np.testing.assert_allclose(mean, mean_ref, rtol=1e-12)
    dout = randn(rng, x.shape)
    dx_ref, dw_ref, db_ref = group_norm_backward_reference(dout, x, 2, w, mean, rstd)
    dx, dw_n, db_n = np.empty((2, 2, 2, 9)), np.empty((2, 2, 2)), np.empty((2, 2, 2))
    _group_norm_backward_kernel(dx, dw_n, db_n, dout.reshape(2, 2, 2, 9), x.reshape(2, 2, 2, 9),
                                w.reshape(2, 2), mean, rstd)
    np.testing.assert_allclose(dx.reshape(x.shape), dx_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dw_n.sum(0).ravel(), dw_ref, rtol=1e-10)
    np.testing.assert_allclose(db_n.sum(0).ravel(), db_ref, rtol=1e-10)


@pytest.mark.parametrize("use_reference", [False, True])
@pytest.mark.parametrize("seed,shape,groups", [(0, (2, 4, 3, 3), 2), (1, (1, 6, 2, 3), 3), (2, (3, 4), 1)])
def test_group_norm_gradients(use_reference, seed, shape, groups):
    rng = np.random.default_rng(seed)
    x = randn(rng, shape)
    C = shape[1]
    w, b = randn(rng, C), randn(rng, C)
    dout = randn(rng, shape)
    with reference_kernels(use_reference):
        _, cache = group_norm_forward(x, groups, w, b)
        dx, dw, db = group_norm_backward(dout, cache)
        assert rel_error(dx, numerical_gradient(lambda z: group_norm(z, groups, w, b), x, dout)) < 1e-6
        assert rel_error(dw, numerical_gradient(lambda z: group_norm(x, groups, z, b), w, dout)) < 1e-6
        assert rel_error(db, numerical_gradient(lambda z: group_norm(x, groups, w, z), b, dout)) < 1e-6


def test_group_norm_without_affine_gives_none_grads_and_no_mutation():
    rng = np.random.default_rng(3)
    x = randn(rng, (2, 4, 2, 2))
    x_before = x.copy()
    out, cache = group_norm_forward(x, 2)
    dx, dw, db = group_norm_backward(np.ones_like(out), cache)
    assert dw is None and db is None
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_allclose(dx, 0, atol=1e-12)   # a constant upstream gradient is normalised away


def test_group_norm_float32_large_offset_is_accurate():
    # Float64 accumulators: a large mean does not destroy the variance of a float32 input.
    rng = np.random.default_rng(4)
    x64 = rng.standard_normal((1, 4, 16, 16)) + 1000.0
    out32 = group_norm(x64.astype(np.float32), 2)
    out64 = group_norm(x64.astype(np.float32).astype(np.float64), 2)
    np.testing.assert_allclose(out32, out64, atol=1e-4)


def test_group_norm_empty_batch():
    x = np.zeros((0, 4, 3, 3), np.float32)
    out, cache = group_norm_forward(x, 2, np.ones(4, np.float32), np.zeros(4, np.float32))
    assert out.shape == x.shape
    dx, dw, db = group_norm_backward(out, cache)
    assert dx.shape == x.shape and np.all(dw == 0) and np.all(db == 0)


def test_group_norm_bad_inputs():
    x = np.zeros((2, 6, 3, 3), np.float32)
    w = np.ones(6, np.float32)
    with pytest.raises(ValueError, match="num_groups"):
        group_norm(x, 4, w, w)
    with pytest.raises(ValueError, match="weight.*shape"):
        group_norm(x, 3, np.ones(5, np.float32), w)
    with pytest.raises(ValueError, match="bias.*shape"):
        group_norm(x, 3, w, np.ones((6, 1), np.float32))
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        group_norm(x.astype(np.int64), 3, w, w)
    with pytest.raises(ValueError, match=r"x must have shape \[N, C, \*\]"):
        group_norm(np.zeros(6), 3)
    _, cache = group_norm_forward(x, 3, w, w)
    with pytest.raises(ValueError, match="dout"):
        group_norm_backward(np.zeros((2, 6, 3, 4), np.float32), cache)


def test_group_norm_runs_with_jit_disabled():
    stdout = run_without_jit("""
        import numpy as np
        from minimrcnn.runtime import reference_kernels
        from minimrcnn.nn.functional.norm import group_norm_forward, group_norm_backward
        rng = np.random.default_rng(0)
        # float32 with a large offset: the kernel must still accumulate in float64 as Python.
        for dtype, offset, tol in ((np.float64, 0.0, 1e-10), (np.float32, 1000.0, 1e-4)):
            x = (rng.standard_normal((2, 4, 3, 3)) + offset).astype(dtype)
            w, b = rng.standard_normal(4).astype(dtype), rng.standard_normal(4).astype(dtype)
            out, cache = group_norm_forward(x, 2, w, b)
            grads = group_norm_backward(out, cache)
            with reference_kernels():
                out_ref, cache_ref = group_norm_forward(x, 2, w, b)
                grads_ref = group_norm_backward(out, cache_ref)
            assert np.allclose(out, out_ref, atol=tol, rtol=tol)
            assert all(np.allclose(g, r, atol=tol, rtol=tol) for g, r in zip(grads, grads_ref))
        print("ok")
    """)
    assert stdout.strip().endswith("ok")


# -- BatchNorm --------------------------------------------------------------------
def test_batch_norm_train_known_answer_and_running_stats():
    # Over the batch, channel 0 is [1, 3]: mean 2, biased var 1, unbiased var 2;
    # channel 1 is [10, 14]: mean 12, biased var 4, unbiased var 8.
    x = np.array([[[1.0], [10.0]], [[3.0], [14.0]]])           # [N=2, C=2, 1]
    rm, rv = np.array([0.5, 0.0]), np.array([1.0, 4.0])
    rm_before, rv_before = rm.copy(), rv.copy()
    out, cache = batch_norm_forward(x, rm, rv, None, None, training=True, momentum=0.1, eps=0.0)
    np.testing.assert_allclose(out[:, 0, 0], [-1.0, 1.0])
    np.testing.assert_allclose(out[:, 1, 0], [-1.0, 1.0])
    np.testing.assert_allclose(cache.new_running_mean, [0.9 * 0.5 + 0.1 * 2, 0.1 * 12])
    np.testing.assert_allclose(cache.new_running_var, [0.9 * 1 + 0.1 * 2, 0.9 * 4 + 0.1 * 8])
    np.testing.assert_array_equal(rm, rm_before)                # never mutated
    np.testing.assert_array_equal(rv, rv_before)


def test_batch_norm_eval_uses_running_stats():
    rng = np.random.default_rng(5)
    x = randn(rng, (2, 3, 4, 4))
    rm, rv = randn(rng, 3), rng.random(3) + 0.5
    w, b = randn(rng, 3), randn(rng, 3)
    out = batch_norm(x, rm, rv, w, b, training=False, eps=1e-5)
    expected = (x - rm[:, None, None]) / np.sqrt(rv[:, None, None] + 1e-5) * w[:, None, None] + b[:, None, None]
    np.testing.assert_allclose(out, expected, rtol=1e-12)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("seed,shape", [(0, (3, 2, 2, 3)), (1, (4, 3)), (2, (2, 2, 5))])
def test_batch_norm_gradients(training, seed, shape):
    rng = np.random.default_rng(seed)
    x = randn(rng, shape)
    C = shape[1]
    rm, rv, w, b = randn(rng, C), rng.random(C) + 0.5, randn(rng, C), randn(rng, C)
    dout = randn(rng, shape)
    _, cache = batch_norm_forward(x, rm, rv, w, b, training=training)
    dx, dw, db = batch_norm_backward(dout, cache)

    def f(x_=x, w_=w, b_=b):
        return batch_norm(x_, rm, rv, w_, b_, training=training)
    assert rel_error(dx, numerical_gradient(lambda z: f(x_=z), x, dout)) < 1e-6
    assert rel_error(dw, numerical_gradient(lambda z: f(w_=z), w, dout)) < 1e-6
    assert rel_error(db, numerical_gradient(lambda z: f(b_=z), b, dout)) < 1e-6


def test_batch_norm_float32_stays_float32():
    rng = np.random.default_rng(6)
    x = randn(rng, (2, 3, 2, 2), np.float32)
    ones, zeros = np.ones(3, np.float32), np.zeros(3, np.float32)
    out, cache = batch_norm_forward(x, zeros, ones, ones, zeros, training=True)
    assert out.dtype == np.float32 and cache.new_running_var.dtype == np.float32
    assert all(g.dtype == np.float32 for g in batch_norm_backward(out, cache))


def test_batch_norm_bad_inputs():
    x = np.zeros((2, 3, 2, 2))
    ones = np.ones(3)
    with pytest.raises(ValueError, match="running_mean.*shape"):
        batch_norm(x, np.zeros(4), ones, ones, ones)
    with pytest.raises(ValueError, match="weight.*shape"):
        batch_norm(x, ones, ones, np.ones(2), ones)
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        batch_norm(x.astype(np.int32), ones, ones, ones, ones)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        batch_norm(np.zeros((1, 3)), ones, ones, ones, ones, training=True)


# -- FrozenBatchNorm --------------------------------------------------------------
def test_frozen_batch_norm_known_answer_and_equals_batch_norm_eval():
    rng = np.random.default_rng(7)
    x = randn(rng, (2, 3, 4, 4))
    w, b, rm, rv = randn(rng, 3), randn(rng, 3), randn(rng, 3), rng.random(3) + 0.5
    out = frozen_batch_norm(x, w, b, rm, rv, eps=1e-5)
    np.testing.assert_allclose(out, batch_norm(x, rm, rv, w, b, training=False, eps=1e-5), rtol=1e-10, atol=1e-12)
    # scale = 2 / sqrt(4) = 1, shift = 1 - 3 * 1 = -2: out = x - 2.
    one = frozen_batch_norm(np.array([[[[5.0]]]]), np.array([2.0]), np.array([1.0]), np.array([3.0]),
                            np.array([4.0]), eps=0.0)
    np.testing.assert_allclose(one, [[[[3.0]]]])


@pytest.mark.parametrize("seed", [0, 1])
def test_frozen_batch_norm_gradient(seed):
    rng = np.random.default_rng(seed)
    x = randn(rng, (2, 3, 3, 2))
    w, b, rm, rv = randn(rng, 3), randn(rng, 3), randn(rng, 3), rng.random(3) + 0.5
    dout = randn(rng, x.shape)
    _, cache = frozen_batch_norm_forward(x, w, b, rm, rv)
    dx = frozen_batch_norm_backward(dout, cache)
    assert rel_error(dx, numerical_gradient(lambda z: frozen_batch_norm(z, w, b, rm, rv), x, dout)) < 1e-6


def test_frozen_batch_norm_dtype_and_errors():
    x = np.zeros((1, 2, 2, 2), np.float32)
    ones = np.ones(2, np.float32)
    assert frozen_batch_norm(x, ones, ones, ones, ones).dtype == np.float32
    with pytest.raises(ValueError, match="running_var.*shape"):
        frozen_batch_norm(x, ones, ones, ones, np.ones(3, np.float32))
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        frozen_batch_norm(x.astype(np.int64), ones, ones, ones, ones)


def test_group_norm_parallel_equals_serial():
    # Each prange iteration owns its group and the weight/bias sums are reduced afterwards
    # in a fixed order, so the thread count cannot change a single bit.
    import numba
    rng = np.random.default_rng(8)
    x = randn(rng, (3, 8, 6, 6), np.float32)
    w, b, dout = randn(rng, 8, np.float32), randn(rng, 8, np.float32), randn(rng, x.shape, np.float32)
    previous = numba.get_num_threads()
    results = []
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            out, cache = group_norm_forward(x, 4, w, b)
            results.append((out, *group_norm_backward(dout, cache)))
    finally:
        numba.set_num_threads(previous)
    for serial, parallel in zip(*results):
        np.testing.assert_array_equal(serial, parallel)
