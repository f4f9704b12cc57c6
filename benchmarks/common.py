"""Shared benchmark plumbing: timing, the NumPy GEMM reference, torch, the shapes model's step.

How things are timed (docs/benchmarks.md, "How the harness measures"):

* ``timed_blocks`` times each contender **alone in its own block** after its own warm-up,
  and repeats the blocks alternately (A, B, A, B), so that a busy spell of a shared
  machine shows up as a spread between blocks instead of hiding in one median.
* ``alternate_processes`` runs each contender in **fresh processes**, alternated
  (A, B, A, B), each timing its work alone after its own warm-up.
* Nothing is ever interleaved call by call: a torch op run right after a NumPy/Numba
  call is much slower than when it runs alone (``benchmarks/experiments/interleaving.py``).

Suites (``bench_*.py``) import from this module only, never from each other.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time

import numpy as np

# torch's OpenMP threads spin-wait after each op and take the cores from whatever runs next
# in the process; passive waiting is set before torch is imported anywhere in the harness.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


# -- results -------------------------------------------------------------------------------

@dataclasses.dataclass
class Stats:
    """Median of a contender's block (or process) medians, and their spread."""
    median: float           # ms
    low: float              # smallest block median, ms
    high: float             # largest block median, ms
    blocks: int = 1

    @classmethod
    def of(cls, block_medians) -> "Stats":
        values = [float(v) for v in block_medians]
        return cls(float(np.median(values)), min(values), max(values), len(values))

    def scaled(self, factor: float) -> "Stats":
        return Stats(self.median * factor, self.low * factor, self.high * factor, self.blocks)


@dataclasses.dataclass
class Row:
    op: str                   # e.g. "conv2d 3x3 64->64 fwd+bwd"
    shape: str                # input description, e.g. "[4,64,32,32]"
    ours: Stats               # our time, ms
    flops: float | None = None          # FLOPs of one call, where a count applies
    ref_name: str = ""                  # what the time ratio is against
    ref: Stats | None = None            # the reference's time, ms (same run)
    note: str = ""

    @property
    def ms(self) -> float:
        return self.ours.median

    @property
    def time_ratio(self) -> float | None:
        """our time / the reference's time: below 1, minimrcnn is faster."""
        if self.ref is None or self.ref.median <= 0:
            return None
        return self.ours.median / self.ref.median


def one(ms: float) -> Stats:
    """Stats of a single measurement (no spread)."""
    return Stats(float(ms), float(ms), float(ms), 1)


# -- timing ----------------------------------------------------------------------------------

def sample_ms(fn, repeats: int = 10, warmup: int = 2) -> list[float]:
    """Wall times of ``repeats`` calls of ``fn()`` in ms, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def median_ms(fn, repeats: int = 10, warmup: int = 2) -> float:
    """Median wall time of ``fn()`` in ms after ``warmup`` untimed calls (one block)."""
    return float(np.median(sample_ms(fn, repeats, warmup)))


def timed_blocks(contenders: dict, rounds: int = 2, repeats: int = 10, warmup: int = 2) -> dict:
    """name -> Stats. Each contender runs alone in its own block (``warmup`` untimed calls,
    then ``repeats`` timed ones); the blocks alternate A, B, A, B for ``rounds`` rounds."""
    medians = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            medians[name].append(median_ms(fn, repeats, warmup))
    return {name: Stats.of(m) for name, m in medians.items()}


def versus(ours, ref, rounds: int, repeats: int, warmup: int = 2) -> tuple:
    """(our Stats, the reference's Stats): each timed alone in its own blocks, alternated."""
    stats = timed_blocks({"ours": ours, "ref": ref}, rounds, repeats, warmup)
    return stats["ours"], stats["ref"]


def alternate_processes(commands: dict, rounds: int, env: dict | None = None, timeout: float = 900) -> dict:
    """name -> list of the JSON dicts printed (last stdout line) by fresh processes
    ``commands[name]`` (an argv), run alternately A, B, A, B for ``rounds`` rounds."""
    results = {name: [] for name in commands}
    for _ in range(rounds):
        for name, argv in commands.items():
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  env={**os.environ, **(env or {})}, cwd=ROOT)
            if done.returncode != 0:
                raise RuntimeError(f"benchmark process {name!r} failed:\n{done.stderr[-2000:]}")
            results[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results


def numpy_matmul_gflops(n: int = 1024, repeats: int = 10) -> float:
    """float32 GEMM throughput of NumPy's BLAS on this machine, in GFLOP/s."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    ms = median_ms(lambda: a @ b, repeats=repeats)
    return 2.0 * n ** 3 / (ms * 1e-3) / 1e9


def peak_rss_mb() -> float:
    """VmHWM of this process in MB. (ru_maxrss would do, but Linux carries it over from
    the parent through fork + exec, so a child of a big parent reports the parent's peak.)"""
    import resource
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # kilobytes on Linux


def shape_str(shape) -> str:
    return "[" + ",".join(str(s) for s in shape) + "]"


# -- torch -----------------------------------------------------------------------------------

def try_import_torch():
    """(torch, torchvision) or (None, None). Uses the machine's cores, like NumPy, or
    OMP_NUM_THREADS of them when set (e.g. 1 for a single-core comparison)."""
    try:
        import torch
        import torchvision
    except Exception:
        return None, None
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", 0)) or os.cpu_count() or 1)
    return torch, torchvision


@dataclasses.dataclass
class Context:
    matmul_gflops: float
    torch: object = None
    torchvision: object = None
    quick: bool = False            # fewer repeats and smaller cases, for smoke runs
    weights: str | None = None     # trained shapes model.npz for bench_trained (None: its default)


# -- the shapes preset, in minimrcnn and in torchvision -----------------------------------------

def shapes_batch(num: int, seed: int = 0) -> list:
    """``num`` (image uint8[128,128,3], target dict) pairs of the shapes data."""
    from minimrcnn.data.shapes import ShapesDataset
    data = ShapesDataset(num, seed=seed)
    return [data[i] for i in range(num)]


def torchvision_shapes(torch, torchvision, box_batch_size_per_image: int = 128):
    """torchvision's MaskRCNN with exactly the shapes preset's architecture (same state_dict keys)."""
    from torch import nn
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.models.resnet import BasicBlock

    class Body(nn.Module):
        def __init__(self):
            super().__init__()
            norm = lambda c: nn.GroupNorm(4, c)  # noqa: E731
            self.conv1, self.bn1 = nn.Conv2d(3, 16, 7, 2, 3, bias=False), norm(16)
            self.relu, self.maxpool = nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
            inplanes = 16
            for i, (w, s) in enumerate(zip((16, 32, 64, 128), (1, 2, 2, 2))):
                down = None if (s == 1 and inplanes == w) else nn.Sequential(
                    nn.Conv2d(inplanes, w, 1, s, bias=False), norm(w))
                setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(inplanes, w, s, down, norm_layer=norm),
                                                             BasicBlock(w, w, norm_layer=norm)))
                inplanes = w

    backbone = BackboneWithFPN(Body(), {f"layer{i + 1}": str(i) for i in range(4)}, [16, 32, 64, 128], 64)
    return MaskRCNN(backbone, num_classes=None, min_size=128, max_size=128,
                    rpn_anchor_generator=AnchorGenerator(((8,), (16,), (32,), (64,), (128,)), ((0.5, 1.0, 2.0),) * 5),
                    rpn_pre_nms_top_n_train=1000, rpn_pre_nms_top_n_test=500, rpn_post_nms_top_n_train=500,
                    rpn_post_nms_top_n_test=250, box_batch_size_per_image=box_batch_size_per_image,
                    box_head=TwoMLPHead(64 * 49, 256), box_predictor=FastRCNNPredictor(256, 4),
                    mask_head=MaskRCNNHeads(64, (64,) * 4, 1), mask_predictor=MaskRCNNPredictor(64, 64, 4))


def torch_inputs(torch, samples):
    """The shapes samples as torchvision's inputs: float images [3,H,W] in [0, 1] and target dicts."""
    images = [torch.from_numpy(im.transpose(2, 0, 1) / np.float32(255)) for im, _ in samples]
    targets = [{"boxes": torch.from_numpy(t["boxes"]), "labels": torch.from_numpy(t["labels"]),
                "masks": torch.from_numpy(t["masks"])} for _, t in samples]
    return images, targets


def our_step(model, images, targets, fixed_sampling: bool = True):
    """A training step of minimrcnn (forward, losses, backward) as a closure. With
    ``fixed_sampling`` every call samples the same RoIs, so every call times the same work."""
    def step():
        rng = np.random.default_rng(0) if fixed_sampling else None
        losses, cache = model(images, targets, rng=rng)
        model.zero_grad()
        model.backward(cache)
    return step


def their_step(torch, model, images, targets, fixed_sampling: bool = True):
    """The same training step of torchvision."""
    def step():
        if fixed_sampling:
            torch.manual_seed(0)
        losses = model(images, targets)
        model.zero_grad()
        sum(losses.values()).backward()
    return step


class StageTimer:
    """Wraps bound methods of a model's stages in place and sums their wall time (seconds)."""

    def __init__(self):
        self.totals = {}

    def wrap(self, obj, method, label):
        original = getattr(obj, method)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.totals[label] = self.totals.get(label, 0.0) + time.perf_counter() - t0
        setattr(obj, method, timed)


def wrap_stages(model, training: bool) -> StageTimer:
    """A StageTimer on the stages of a MaskRCNN (forward stages plus backward add up to a step)."""
    timer = StageTimer()
    heads = model.roi_heads
    timer.wrap(model.backbone.body, "forward", "backbone body fwd")
    timer.wrap(model.backbone.fpn, "forward", "FPN fwd")
    timer.wrap(model.rpn, "forward", "RPN fwd" + (" (head, proposals, targets, losses)" if training else ""))
    timer.wrap(heads, "forward", "RoI heads fwd (box + mask)")
    for module in (heads.mask_roi_pool, heads.mask_head, heads.mask_predictor):
        timer.wrap(module, "forward", "  of which mask branch fwd")
    timer.wrap(heads.mask_head, "forward", "    of which mask head (4 convs 3x3)")
    if training:
        timer.wrap(heads, "backward_mask", "mask branch bwd")
        timer.wrap(heads.mask_head, "backward", "  of which mask head bwd (4 convs 3x3)")
        timer.wrap(heads, "backward_box", "box branch bwd")
        timer.wrap(model.rpn, "backward", "RPN bwd")
        timer.wrap(model.backbone.fpn, "backward", "FPN bwd")
        timer.wrap(model.backbone.body, "backward", "backbone body bwd")
    else:
        timer.wrap(model.transform, "postprocess", "postprocess (resize boxes, paste masks)")
    return timer


def stage_rows(model, fn, training: bool, repeats: int, shape: str, tag: str) -> list:
    """Per-stage time (ms) of ``fn`` (a step or an inference of ``model``), averaged over
    ``repeats`` calls after one warm-up. Wraps the model's methods in place: time the
    whole-step rows before calling this."""
    timer = wrap_stages(model, training)
    fn()
    timer.totals.clear()
    for _ in range(repeats):
        fn()
    return [Row(f"  stage ({tag}): {label}", shape, one(1e3 * total / repeats))
            for label, total in timer.totals.items()]


def python_argv(script: str, *args) -> list:
    """argv running ``benchmarks/<script>`` with this interpreter."""
    return [sys.executable, os.path.join(HERE, script), *map(str, args)]
