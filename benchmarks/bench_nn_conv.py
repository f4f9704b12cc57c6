"""Benchmarks for the convolution family: conv2d, conv_transpose2d, max_pool2d, linear.

FLOP counts: a convolution pass is 2*N*C_out*Ho*Wo*C_in*kH*kW (a multiply and an
add per weight per output pixel); forward+backward is 3x (dx and dweight each cost
one forward). The reference is torch CPU when installed, each library timed in its
own blocks after its own warm-up, alternated (``common.timed_blocks``); otherwise our
reference twin (``with reference_kernels()``) where that is meaningful. run.py turns the
FLOP counts into fractions of NumPy's GEMM rate ("x GEMM").

Also two start-up rows: the first conv2d call with an empty Numba cache (compile
time) and with a warm cache (what a user sees on every later start).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from common import Context, Row, median_ms, one, shape_str, timed_blocks

from minimrcnn.runtime import reference_kernels
from minimrcnn.nn.functional.conv import conv2d_backward, conv2d_forward
from minimrcnn.nn.functional.conv_transpose import conv_transpose2d_backward, conv_transpose2d_forward
from minimrcnn.nn.functional.linear import linear_backward, linear_forward
from minimrcnn.nn.functional.pooling import max_pool2d_backward, max_pool2d_forward


def _pair_rows(ctx, name, shape, flops, ours_fwd, ours_fwdbwd, torch_fns, twin_fns, repeats, rounds):
    """Two rows (fwd, fwd+bwd). Against torch: ours and torch each in their own blocks,
    alternated ``rounds`` times. Without torch: against our readable twin (one block)."""
    rows = []
    for tag, ours, factor, index in (("fwd", ours_fwd, 1, 0), ("fwd+bwd", ours_fwdbwd, 3, 1)):
        ref_name, ref = "", None
        if torch_fns is not None:
            stats = timed_blocks({"ours": ours, "torch": torch_fns[index]}, rounds, repeats)
            ours_stats, ref_name, ref = stats["ours"], "torch", stats["torch"]
        else:
            ours_stats = timed_blocks({"ours": ours}, rounds, repeats)["ours"]
            if twin_fns is not None:
                with reference_kernels():
                    ref_name, ref = "twin", one(median_ms(twin_fns[index], repeats=max(2, repeats // 3), warmup=1))
        rows.append(Row(f"{name} {tag}", shape, ours_stats, None if flops is None else factor * flops,
                        ref_name, ref))
    return rows


def _conv_case(ctx, name, x_shape, w_shape, stride, padding, repeats, rounds, transpose=False, algorithm="auto",
               relu=False):
    """fwd and fwd+bwd rows of one conv2d or conv_transpose2d (``relu``: with the ReLU after
    it, fused in ours as the model runs it, torch's relu after its conv)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape, dtype=np.float32)
    w = (rng.standard_normal(w_shape, dtype=np.float32) * 0.1)
    forward, backward = (functools.partial(conv_transpose2d_forward, relu=relu), conv_transpose2d_backward) \
        if transpose else (functools.partial(conv2d_forward, algorithm=algorithm, relu=relu), conv2d_backward)
    out, _ = forward(x, w, None, stride, padding)
    dout = rng.standard_normal(out.shape, dtype=np.float32)
    if transpose:   # every input pixel meets every weight once
        flops = 2 * x_shape[0] * x_shape[2] * x_shape[3] * np.prod(w_shape)
    else:           # every output pixel meets every weight once
        flops = 2 * out.shape[0] * out.shape[2] * out.shape[3] * np.prod(w_shape)

    def fwd():
        forward(x, w, None, stride, padding)

    def fwdbwd():
        backward(dout, forward(x, w, None, stride, padding)[1])

    torch_fns = None
    if ctx.torch is not None:
        torch = ctx.torch
        conv = torch.nn.functional.conv_transpose2d if transpose else torch.nn.functional.conv2d

        def op(*args):
            out = conv(*args)
            return torch.nn.functional.relu(out) if relu else out
        tx, tw, tdout = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(dout)
        txg, twg = tx.clone().requires_grad_(), tw.clone().requires_grad_()

        def torch_fwd():
            with torch.no_grad():
                op(tx, tw, None, stride, padding)

        def torch_fwdbwd():
            txg.grad = twg.grad = None
            op(txg, twg, None, stride, padding).backward(tdout)
        torch_fns = (torch_fwd, torch_fwdbwd)
    twin_fns = (fwd, fwdbwd) if np.prod(x_shape) <= 300_000 else None
    return _pair_rows(ctx, name, shape_str(x_shape), flops, fwd, fwdbwd, torch_fns, twin_fns, repeats, rounds)


def _pool_case(ctx, repeats, rounds):
    x = np.random.default_rng(0).standard_normal((4, 16, 64, 64), dtype=np.float32)
    out, _ = max_pool2d_forward(x, 3, 2, 1)
    dout = np.ones_like(out)

    def fwd():
        max_pool2d_forward(x, 3, 2, 1)

    def fwdbwd():
        max_pool2d_backward(dout, max_pool2d_forward(x, 3, 2, 1)[1])
    torch_fns = None
    if ctx.torch is not None:
        torch = ctx.torch
        tx, tdout = torch.from_numpy(x), torch.from_numpy(dout)
        txg = tx.clone().requires_grad_()

        def torch_fwd():
            with torch.no_grad():
                torch.nn.functional.max_pool2d(tx, 3, 2, 1)

        def torch_fwdbwd():
            txg.grad = None
            torch.nn.functional.max_pool2d(txg, 3, 2, 1).backward(tdout)
        torch_fns = (torch_fwd, torch_fwdbwd)
    return _pair_rows(ctx, "max_pool2d 3x3 s2 p1", shape_str(x.shape), None, fwd, fwdbwd, torch_fns,
                      (fwd, fwdbwd), repeats, rounds)


def _linear_case(ctx, repeats, rounds):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 3136), dtype=np.float32)
    w = rng.standard_normal((256, 3136), dtype=np.float32) * 0.01
    b = np.zeros(256, np.float32)
    dout = rng.standard_normal((512, 256), dtype=np.float32)

    def fwd():
        linear_forward(x, w, b)

    def fwdbwd():
        linear_backward(dout, linear_forward(x, w, b)[1])
    torch_fns = None
    if ctx.torch is not None:
        torch = ctx.torch
        tx, tw, tb, tdout = (torch.from_numpy(a) for a in (x, w, b, dout))
        txg, twg, tbg = (a.clone().requires_grad_() for a in (tx, tw, tb))

        def torch_fwd():
            with torch.no_grad():
                torch.nn.functional.linear(tx, tw, tb)

        def torch_fwdbwd():
            txg.grad = twg.grad = tbg.grad = None
            torch.nn.functional.linear(txg, twg, tbg).backward(tdout)
        torch_fns = (torch_fwd, torch_fwdbwd)
    return _pair_rows(ctx, "linear 3136->256", "[512,3136]", 2 * 512 * 3136 * 256, fwd, fwdbwd,
                      torch_fns, None, repeats, rounds)


_STARTUP = """
import json, time
t0 = time.perf_counter()
import numpy as np
import minimrcnn
from minimrcnn.nn.functional.conv import conv2d_backward, conv2d_forward
t1 = time.perf_counter()
x = np.ones((1, 8, 16, 16), np.float32); w = np.ones((8, 8, 3, 3), np.float32)
out, cache = conv2d_forward(x, w, None, 1, 1)
conv2d_backward(out, cache)
t2 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "first_call_ms": (t2 - t1) * 1e3}))
"""


def _startup_rows():
    """Run the same script twice with a fresh NUMBA_CACHE_DIR: compile, then warm cache."""
    rows = []
    with tempfile.TemporaryDirectory() as cache_dir:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
        for label in ("conv2d first call, empty Numba cache (compile)", "import + conv2d first call, warm cache"):
            result = subprocess.run([sys.executable, "-c", _STARTUP], env=env, capture_output=True, text=True)
            if result.returncode != 0:
                rows.append(Row(label, "[1,8,16,16]", one(float("nan")), note="failed: " + result.stderr[-200:]))
                continue
            times = json.loads(result.stdout.strip().splitlines()[-1])
            ms = times["first_call_ms"] if "compile" in label else times["import_ms"] + times["first_call_ms"]
            rows.append(Row(label, "[1,8,16,16]", one(ms), note=f"fwd+bwd; import {times['import_ms']:.0f} ms"))
    return rows


def run(ctx: Context) -> list[Row]:
    repeats, rounds = (3, 1) if ctx.quick else (10, 3)
    rows = []
    # 3x3 pad 1 runs the shifted GEMMs (conv_shifted.py); the "im2col" rows force the
    # other path on the same shapes (FLOPs counted as direct convolution's, so
    # "x GEMM" compares them). [128,64,14,14] is the mask head at 128 positive RoIs.
    for shape in ((4, 64, 32, 32), (128, 64, 14, 14)):
        rows += _conv_case(ctx, "conv2d 3x3 64->64", shape, (64, 64, 3, 3), 1, 1, repeats, rounds)
        rows += _conv_case(ctx, "conv2d 3x3 64->64 im2col", shape, (64, 64, 3, 3), 1, 1, repeats, rounds, algorithm="im2col")
    rows += _conv_case(ctx, "conv2d 7x7 s2 p3 3->64", (4, 3, 128, 128), (64, 3, 7, 7), 2, 3, repeats, rounds)
    rows += _conv_case(ctx, "conv2d 1x1 256->64", (2, 256, 50, 68), (64, 256, 1, 1), 1, 0, repeats, rounds)
    rows += _conv_case(ctx, "conv_transpose2d 2x2 s2 64->64", (64, 64, 14, 14), (64, 64, 2, 2), 2, 0, repeats, rounds,
                       transpose=True)
    # the mask predictor's conv5_mask as the model runs it: the ReLU fused into the tile kernels
    rows += _conv_case(ctx, "conv_transpose2d 2x2 s2 64->64 +ReLU", (64, 64, 14, 14), (64, 64, 2, 2), 2, 0, repeats,
                       rounds, transpose=True, relu=True)
    rows += _pool_case(ctx, repeats, rounds)
    rows += _linear_case(ctx, repeats, rounds)
    rows += _startup_rows()
    return rows
