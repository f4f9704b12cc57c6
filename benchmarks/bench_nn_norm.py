"""Benchmarks for the foundation ops: GroupNorm (kernel vs twin vs torch), BCE with
logits (the mask loss), and the cached import time of ``minimrcnn.nn``.

GroupNorm is memory-bound: the figures that matter are the ratio to the twin (what the
Numba kernel buys) and to torch (how far from a tuned C++ implementation we are). torch
and ours are timed in their own blocks, alternated (``common.versus``).
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np

from common import Row, median_ms, one, versus
from minimrcnn.runtime import reference_kernels
from minimrcnn.nn.functional.loss import (
    binary_cross_entropy_with_logits_backward, binary_cross_entropy_with_logits_forward,
)
from minimrcnn.nn.functional.norm import group_norm_backward, group_norm_forward


def _group_norm_rows(ctx, x, groups, repeats, rounds) -> list[Row]:
    rng = np.random.default_rng(0)
    C = x.shape[1]
    w = rng.standard_normal(C).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32)
    dout = rng.standard_normal(x.shape).astype(np.float32)
    shape = "[" + ",".join(map(str, x.shape)) + "]"

    def fwd():
        return group_norm_forward(x, groups, w, b)

    def fwd_bwd():
        return group_norm_backward(dout, group_norm_forward(x, groups, w, b)[1])

    rows = []
    for label, fn in (("fwd", fwd), ("fwd+bwd", fwd_bwd)):
        ours = one(median_ms(fn, repeats=repeats))
        with reference_kernels():
            twin = one(median_ms(fn, repeats=max(2, repeats // 2)))
        op = f"group_norm G={groups} {label}"
        rows.append(Row(op, shape, ours, ref_name="NumPy twin", ref=twin))
        if ctx.torch is not None:
            torch = ctx.torch
            xt = torch.from_numpy(x).requires_grad_(label != "fwd")
            wt, bt = torch.from_numpy(w).requires_grad_(True), torch.from_numpy(b).requires_grad_(True)
            dt = torch.from_numpy(dout)

            def torch_fn():
                if label == "fwd":
                    with torch.no_grad():
                        return torch.nn.functional.group_norm(xt, groups, wt, bt)
                out = torch.nn.functional.group_norm(xt, groups, wt, bt)
                return torch.autograd.grad(out, (xt, wt, bt), dt)
            ours_block, theirs = versus(fn, torch_fn, rounds, repeats)
            rows.append(Row(op, shape, ours_block, ref_name="torch CPU", ref=theirs))
    return rows


def _bce_rows(ctx, repeats, rounds) -> list[Row]:
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((512, 28, 28)).astype(np.float32)
    target = (rng.random(logits.shape) > 0.5).astype(np.float32)

    def fwd_bwd():
        _, cache = binary_cross_entropy_with_logits_forward(logits, target)
        return binary_cross_entropy_with_logits_backward(1.0, cache)

    op, shape = "bce_with_logits mean fwd+bwd", "[512,28,28]"
    if ctx.torch is None:
        return [Row(op, shape, one(median_ms(fwd_bwd, repeats=repeats)), note="torch not installed")]
    torch = ctx.torch
    xt, tt = torch.from_numpy(logits).requires_grad_(True), torch.from_numpy(target)

    def torch_fn():
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xt, tt)
        return torch.autograd.grad(loss, xt)
    ours, theirs = versus(fwd_bwd, torch_fn, rounds, repeats)
    return [Row(op, shape, ours, ref_name="torch CPU", ref=theirs)]


def _import_time_row(repeats) -> Row:
    """Wall time of a fresh ``import minimrcnn.nn`` with Numba's on-disk cache warm."""
    def run():
        subprocess.run([sys.executable, "-c", "import minimrcnn.nn"], check=True)
    run()                                     # warm the file-system and Numba caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1e3)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    bare = (time.perf_counter() - start) * 1e3
    return Row("import minimrcnn.nn (cached)", "subprocess", one(float(np.median(times))), ref_name="bare python",
               ref=one(bare), note="an empty interpreter's start-up as the reference")


def run(ctx) -> list[Row]:
    repeats, rounds = (3, 1) if ctx.quick else (10, 3)
    x = np.random.default_rng(2).standard_normal((4, 64, 32, 32)).astype(np.float32)
    rows = []
    for groups in (32, 4):
        rows += _group_norm_rows(ctx, x, groups, repeats, rounds)
    rows += _bce_rows(ctx, repeats, rounds)
    rows.append(_import_time_row(2 if ctx.quick else 5))
    return rows
