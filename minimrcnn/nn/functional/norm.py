"""Normalisation layers: GroupNorm, BatchNorm (train and eval) and FrozenBatchNorm.

All three compute ``out = x_hat * weight[c] + bias[c]`` with ``x_hat = (x - mean) * rstd``
and ``rstd = 1 / sqrt(var + eps)``; they differ in which elements share a mean:

* GroupNorm (Wu & He, 2018): per image and per group of C/J channels, over the group's
  channels and all pixels. Independent of the batch, so it trains with N = 1 or 2.
* BatchNorm (Ioffe & Szegedy, 2015): per channel, over the batch and all pixels
  (training), or the running estimates (eval).
* FrozenBatchNorm2d (torchvision): BatchNorm in eval form with every array a buffer,
  folded into one per-channel scale and shift.

Variances are biased (divide by the element count), as torch does for normalising.

Shape shorthand (docs/shapes.md): N images, C channels, J groups, H, W; inputs are float[N, C, *]
(e.g. [N, C, H, W] or [N, C]). Inside GroupNorm the input is viewed as
[N, J, C/J, HW] with HW the pixels per channel (H * W; 1 for [N, C] inputs).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from minimrcnn.nn.functional._checks import came, check_dout, check_float, check_per_channel
from minimrcnn.runtime import reference_kernels_enabled


def _check_input(op: str, x) -> np.ndarray:
    """x float32/float64 of shape [N, C, *]."""
    check_float(op, "x", x)
    if x.ndim < 2:
        raise ValueError(f"{op}: x must have shape [N, C, *], got {came(x)}")
    return x


# =================================================================================
# GroupNorm
# =================================================================================
class GroupNormCache(NamedTuple):
    x: np.ndarray            # float[N, C, *]: the input (x_hat is recomputed, it is cheap)
    num_groups: int          # J
    weight: np.ndarray       # float[C]: the scale actually used (ones when None was given)
    mean: np.ndarray         # float64[N, J]
    rstd: np.ndarray         # float64[N, J]: 1 / sqrt(var + eps)
    has_affine: tuple        # (weight given, bias given): None gradients for missing ones


def group_norm_forward_reference(x, num_groups, weight, bias, eps):
    """Plain NumPy GroupNorm forward. x float[N, C, *], weight/bias float[C].

    Returns (out float[N, C, *] in x's dtype, mean float64[N, J], rstd float64[N, J]).
    """
    N, C = x.shape[:2]
    J = num_groups
    groups = x.reshape(N, J, -1).astype(np.float64)             # [N, J, C/J * HW]
    mean = groups.mean(axis=2)                                  # [N, J]
    var = ((groups - mean[:, :, None]) ** 2).mean(axis=2)       # biased, as torch
    rstd = 1.0 / np.sqrt(var + eps)
    x_hat = ((groups - mean[:, :, None]) * rstd[:, :, None]).reshape(x.shape)
    per_channel = (1, C) + (1,) * (x.ndim - 2)                  # broadcast [C] over [N, C, *]
    out = x_hat * weight.reshape(per_channel) + bias.reshape(per_channel)
    return out.astype(x.dtype), mean, rstd


def group_norm_backward_reference(dout, x, num_groups, weight, mean, rstd):
    """Plain NumPy GroupNorm backward; returns (dx, dweight, dbias) in x's dtype.

    With g = dout * weight (the gradient w.r.t. x_hat):
    dx = rstd * (g - mean(g) - x_hat * mean(g * x_hat)), means taken over the group.
    """
    N, C = x.shape[:2]
    J = num_groups
    per_channel = (1, C) + (1,) * (x.ndim - 2)
    groups = x.reshape(N, J, -1).astype(np.float64)
    x_hat = ((groups - mean[:, :, None]) * rstd[:, :, None]).reshape(x.shape)
    dout64 = dout.astype(np.float64)
    reduce_axes = (0,) + tuple(range(2, x.ndim))                # all but the channel axis
    dweight = (dout64 * x_hat).sum(axis=reduce_axes)
    dbias = dout64.sum(axis=reduce_axes)
    g = (dout64 * weight.reshape(per_channel)).reshape(N, J, -1)
    x_hat = x_hat.reshape(N, J, -1)
    dx = rstd[:, :, None] * (g - g.mean(axis=2, keepdims=True)
                             - x_hat * (g * x_hat).mean(axis=2, keepdims=True))
    return dx.reshape(x.shape).astype(x.dtype), dweight.astype(x.dtype), dbias.astype(x.dtype)


@numba.njit(cache=True, parallel=True)
def _group_norm_forward_kernel(out, mean, rstd, x, weight, bias, eps):
    """out[N, J, C/J, HW], mean/rstd float64[N, J] <- x[N, J, C/J, HW], weight/bias[J, C/J].

    Differs from the twin: one fused pass per (image, group), parallel over the N*J
    groups (each iteration owns its group's outputs); sums in float64 even for float32.
    """
    N, J, Cj, HW = x.shape
    count = Cj * HW
    for nj in numba.prange(N * J):                 # for each (image, group)
        n = nj // J
        j = nj % J
        # np.float64(0): a float64 accumulator also when NUMBA_DISABLE_JIT=1 runs this as
        # Python, where 0.0 + float32 would stay float32 under NumPy 2's promotion rules.
        total = np.float64(0.0)
        for c in range(Cj):
            for p in range(HW):
                total += x[n, j, c, p]
        m = total / count
        squares = np.float64(0.0)                  # two-pass variance: no cancellation
        for c in range(Cj):
            for p in range(HW):
                d = x[n, j, c, p] - m
                squares += d * d
        r = 1.0 / np.sqrt(squares / count + eps)
        mean[n, j] = m
        rstd[n, j] = r
        for c in range(Cj):                        # for each channel: out = x_hat * w + b
            scale = r * weight[j, c]
            shift = bias[j, c] - m * scale
            for p in range(HW):
                out[n, j, c, p] = x[n, j, c, p] * scale + shift


@numba.njit(cache=True, parallel=True)
def _group_norm_backward_kernel(dx, dweight_per_image, dbias_per_image, dout, x, weight, mean, rstd):
    """dx[N, J, C/J, HW] and per-image dweight/dbias float64[N, J, C/J].

    Differs from the twin: parallel over the N*J groups; the weight/bias gradients are
    summed over images afterwards (in fixed order, by the caller), so no two iterations
    ever write the same element.
    """
    N, J, Cj, HW = x.shape
    count = Cj * HW
    for nj in numba.prange(N * J):                 # for each (image, group)
        n = nj // J
        j = nj % J
        m = mean[n, j]
        r = rstd[n, j]
        sum_g = np.float64(0.0)                    # sum of dL/dx_hat over the group (float64, see forward)
        sum_g_xhat = np.float64(0.0)               # sum of dL/dx_hat * x_hat
        for c in range(Cj):                        # for each channel of the group
            dw = np.float64(0.0)
            db = np.float64(0.0)
            for p in range(HW):
                x_hat = (x[n, j, c, p] - m) * r
                dw += dout[n, j, c, p] * x_hat
                db += dout[n, j, c, p]
            dweight_per_image[n, j, c] = dw
            dbias_per_image[n, j, c] = db
            sum_g += weight[j, c] * db
            sum_g_xhat += weight[j, c] * dw
        mean_g = sum_g / count
        mean_g_xhat = sum_g_xhat / count
        for c in range(Cj):                        # dx = rstd * (j - mean(j) - x_hat * mean(j x_hat))
            for p in range(HW):
                x_hat = (x[n, j, c, p] - m) * r
                dx[n, j, c, p] = r * (dout[n, j, c, p] * weight[j, c] - mean_g - x_hat * mean_g_xhat)


def group_norm_forward(x, num_groups, weight=None, bias=None, eps=1e-5):
    """GroupNorm, as torch.nn.functional.group_norm.

    Args:
        x (float[N, C, *]): input, float32 or float64.
        num_groups (int): J, must divide C.
        weight (float[C] or None): per-channel scale (None: ones, no gradient).
        bias (float[C] or None): per-channel shift (None: zeros, no gradient).
        eps (float): added to the variance.

    Returns:
        out (float[N, C, *]): x's dtype.
        cache (GroupNormCache)
    """
    _check_input("group_norm", x)
    N, C = x.shape[:2]
    if not isinstance(num_groups, (int, np.integer)) or num_groups <= 0 or C % num_groups:
        raise ValueError(f"group_norm: num_groups must be a positive int dividing C = {C}, got {num_groups!r}")
    has_affine = (weight is not None, bias is not None)
    weight = check_per_channel("group_norm", "weight", weight, C, allow_none=True)
    bias = check_per_channel("group_norm", "bias", bias, C, allow_none=True)
    weight = np.ones(C, x.dtype) if weight is None else weight.astype(x.dtype)
    bias = np.zeros(C, x.dtype) if bias is None else bias.astype(x.dtype)
    J = int(num_groups)
    x = np.ascontiguousarray(x)
    if x.size == 0:
        out, mean, rstd = x.copy(), np.zeros((N, J)), np.zeros((N, J))
    elif reference_kernels_enabled():
        out, mean, rstd = group_norm_forward_reference(x, J, weight, bias, eps)
    else:
        x4 = x.reshape(N, J, C // J, -1)                         # [N, C, *] -> [N, J, C/J, HW]
        out4 = np.empty_like(x4)
        mean, rstd = np.empty((N, J)), np.empty((N, J))
        _group_norm_forward_kernel(out4, mean, rstd, x4, weight.reshape(J, -1), bias.reshape(J, -1), float(eps))
        out = out4.reshape(x.shape)
    return out, GroupNormCache(x, J, weight, mean, rstd, has_affine)


def group_norm_backward(dout, cache: GroupNormCache):
    """Gradients of :func:`group_norm_forward`.

    Returns:
        dx (float[N, C, *]), dweight (float[C] or None), dbias (float[C] or None)
    """
    x, J, weight, mean, rstd, has_affine = cache
    check_dout("group_norm_backward", dout, x.shape)
    dout = np.ascontiguousarray(dout, dtype=x.dtype)
    N, C = x.shape[:2]
    if x.size == 0:
        dx, dweight, dbias = np.zeros_like(x), np.zeros(C, x.dtype), np.zeros(C, x.dtype)
    elif reference_kernels_enabled():
        dx, dweight, dbias = group_norm_backward_reference(dout, x, J, weight, mean, rstd)
    else:
        shape4 = (N, J, C // J, -1)
        dx4 = np.empty(x.reshape(shape4).shape, x.dtype)
        dweight_per_image, dbias_per_image = np.empty((N, J, C // J)), np.empty((N, J, C // J))
        _group_norm_backward_kernel(dx4, dweight_per_image, dbias_per_image, dout.reshape(shape4),
                                    x.reshape(shape4), weight.reshape(J, -1), mean, rstd)
        dx = dx4.reshape(x.shape)
        # Sum over images in a fixed order: deterministic, whatever the thread count.
        dweight = dweight_per_image.sum(axis=0).reshape(C).astype(x.dtype)
        dbias = dbias_per_image.sum(axis=0).reshape(C).astype(x.dtype)
    return dx, (dweight if has_affine[0] else None), (dbias if has_affine[1] else None)


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    """GroupNorm output only; see :func:`group_norm_forward`."""
    return group_norm_forward(x, num_groups, weight, bias, eps)[0]


# =================================================================================
# BatchNorm
# =================================================================================
class BatchNormCache(NamedTuple):
    x: np.ndarray                 # float[N, C, *]
    mean: np.ndarray              # float[C]: batch mean (training) or running mean (eval)
    rstd: np.ndarray              # float[C]: 1 / sqrt(var + eps) of the statistics used
    weight: np.ndarray            # float[C]: the scale used (ones when None was given)
    training: bool                # True: the statistics depend on x, so dx has extra terms
    has_affine: tuple             # (weight given, bias given)
    new_running_mean: np.ndarray  # float[C]: the running mean after this call (eval: unchanged copy)
    new_running_var: np.ndarray   # float[C]: the running var after this call (unbiased update)


def batch_norm_forward(x, running_mean, running_var, weight=None, bias=None, training=False,
                       momentum=0.1, eps=1e-5):
    """BatchNorm, as torch.nn.functional.batch_norm (argument order too).

    Training: normalise with the batch mean and biased variance over (N, *) per channel,
    and return the updated running stats in the cache (never in place):
    new = (1 - momentum) * old + momentum * batch, with the UNBIASED batch variance.
    Eval: normalise with running_mean / running_var.

    Args:
        x (float[N, C, *]): input.
        running_mean, running_var (float[C]): running estimates (not modified).
        weight, bias (float[C] or None): affine scale and shift.

    Returns:
        out (float[N, C, *]): x's dtype.
        cache (BatchNormCache): also carries ``new_running_mean`` / ``new_running_var``.
    """
    _check_input("batch_norm", x)
    C = x.shape[1]
    check_per_channel("batch_norm", "running_mean", running_mean, C)
    check_per_channel("batch_norm", "running_var", running_var, C)
    has_affine = (weight is not None, bias is not None)
    weight = check_per_channel("batch_norm", "weight", weight, C, allow_none=True)
    bias = check_per_channel("batch_norm", "bias", bias, C, allow_none=True)
    weight = np.ones(C, x.dtype) if weight is None else weight.astype(x.dtype)
    bias = np.zeros(C, x.dtype) if bias is None else bias.astype(x.dtype)
    per_channel = (1, C) + (1,) * (x.ndim - 2)
    reduce_axes = (0,) + tuple(range(2, x.ndim))
    count = x.size // C                                          # elements per channel
    if training:
        if count <= 1:
            raise ValueError(f"batch_norm: training needs more than 1 value per channel, got x of shape {x.shape}")
        mean = x.mean(axis=reduce_axes, dtype=np.float64)
        var = ((x - mean.reshape(per_channel)) ** 2).mean(axis=reduce_axes, dtype=np.float64)
        new_running_mean = (1 - momentum) * running_mean + momentum * mean
        new_running_var = (1 - momentum) * running_var + momentum * var * count / (count - 1)
    else:
        mean, var = running_mean.astype(np.float64), running_var.astype(np.float64)
        new_running_mean, new_running_var = running_mean.copy(), running_var.copy()
    rstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    mean = mean.astype(x.dtype)
    x_hat = (x - mean.reshape(per_channel)) * rstd.reshape(per_channel)
    out = x_hat * weight.reshape(per_channel) + bias.reshape(per_channel)
    cache = BatchNormCache(x, mean, rstd, weight, bool(training), has_affine,
                           new_running_mean.astype(running_mean.dtype), new_running_var.astype(running_var.dtype))
    return out.astype(x.dtype, copy=False), cache


def batch_norm_backward(dout, cache: BatchNormCache):
    """Gradients of :func:`batch_norm_forward` (running stats get none).

    Eval: the statistics are constants, so dx = dout * weight * rstd.
    Training: with n elements per channel and g = dout * weight,
    dx = rstd * (g - mean(g) - x_hat * mean(g * x_hat)), means over (N, *).

    Returns:
        dx (float[N, C, *]), dweight (float[C] or None), dbias (float[C] or None)
    """
    x, mean, rstd, weight, training, has_affine = cache[:6]
    check_dout("batch_norm_backward", dout, x.shape)
    C = x.shape[1]
    per_channel = (1, C) + (1,) * (x.ndim - 2)
    reduce_axes = (0,) + tuple(range(2, x.ndim))
    x_hat = (x - mean.reshape(per_channel)) * rstd.reshape(per_channel)
    dweight = (dout * x_hat).sum(axis=reduce_axes).astype(x.dtype)
    dbias = dout.sum(axis=reduce_axes).astype(x.dtype)
    g = dout * weight.reshape(per_channel)
    if training:
        count = x.size // C
        mean_g = (dbias * weight / count).reshape(per_channel)
        mean_g_xhat = (dweight * weight / count).reshape(per_channel)
        dx = rstd.reshape(per_channel) * (g - mean_g - x_hat * mean_g_xhat)
    else:
        dx = g * rstd.reshape(per_channel)
    return dx.astype(x.dtype, copy=False), (dweight if has_affine[0] else None), (dbias if has_affine[1] else None)


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """BatchNorm output only; see :func:`batch_norm_forward`."""
    return batch_norm_forward(x, running_mean, running_var, weight, bias, training, momentum, eps)[0]


# =================================================================================
# FrozenBatchNorm2d
# =================================================================================
class FrozenBatchNormCache(NamedTuple):
    scale: np.ndarray    # float[1, C, 1, ...]: weight / sqrt(running_var + eps), broadcastable
    x_shape: tuple       # the input's shape, to check dout


def frozen_batch_norm_forward(x, weight, bias, running_mean, running_var, eps=1e-5):
    """torchvision.ops.FrozenBatchNorm2d: out = x * scale + shift per channel.

    scale = weight / sqrt(running_var + eps), shift = bias - running_mean * scale.
    The four arrays are buffers: they get no gradient.

    Args:
        x (float[N, C, *]): input.
        weight, bias, running_mean, running_var (float[C]): the frozen statistics.

    Returns:
        out (float[N, C, *]): x's dtype.
        cache (FrozenBatchNormCache)
    """
    _check_input("frozen_batch_norm", x)
    C = x.shape[1]
    for name, array in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                        ("running_var", running_var)):
        check_per_channel("frozen_batch_norm", name, array, C)
    per_channel = (1, C) + (1,) * (x.ndim - 2)
    scale = (weight / np.sqrt(running_var + eps)).astype(x.dtype)
    shift = (bias - running_mean * scale).astype(x.dtype)
    out = x * scale.reshape(per_channel) + shift.reshape(per_channel)
    return out, FrozenBatchNormCache(scale.reshape(per_channel), x.shape)


def frozen_batch_norm_backward(dout, cache: FrozenBatchNormCache):
    """dx = dout * scale (the only gradient: the statistics are buffers).

    Returns:
        dx (float[N, C, *])
    """
    check_dout("frozen_batch_norm_backward", dout, cache.x_shape)
    return dout * cache.scale


def frozen_batch_norm(x, weight, bias, running_mean, running_var, eps=1e-5):
    """FrozenBatchNorm output only; see :func:`frozen_batch_norm_forward`."""
    return frozen_batch_norm_forward(x, weight, bias, running_mean, running_var, eps)[0]
