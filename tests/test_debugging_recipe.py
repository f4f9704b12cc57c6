"""The pdb recipe of docs/debugging.md works as written.

The session block of the doc is replayed in a real ``python -m pdb`` process (stdin
scripted), and every value pdb prints is checked twice: against numbers computed here from
the RoIAlign formulas (docs/roi_align.md), and against what the doc shows.
"""

import math
import os
import re
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "debugging.md")
SCRIPT = os.path.join(ROOT, "docs", "examples", "step_into_roi_align.py")
PROMPT = "(Pdb) "

# The example script's case: a 5 x 5 map holding 0..24, box (1, 3, 11, 13) in pixels,
# spatial_scale 0.25, 2 x 2 output, sampling_ratio 2, aligned=False.
H = W = 5
BOX, SCALE, OUT, GRID = (1.0, 3.0, 11.0, 13.0), 0.25, 2, 2


def samples():
    """Every sample of the box, in the kernel's loop order (bin row, bin col, iy, ix)."""
    x1, y1, x2, y2 = (v * SCALE for v in BOX)
    bin_h, bin_w = max(y2 - y1, 1) / OUT, max(x2 - x1, 1) / OUT
    for ph in range(OUT):
        for pw in range(OUT):
            for iy in range(GRID):
                for ix in range(GRID):
                    yield (ph, pw), (y1 + ph * bin_h + (iy + 0.5) * bin_h / GRID,
                                     x1 + pw * bin_w + (ix + 0.5) * bin_w / GRID)


def neighbours(y, x):
    """(y_low, y_high, x_low, x_high), (ly, lx, hy, hx), four weights, for an interior point."""
    y_low, x_low = math.floor(y), math.floor(x)
    assert 0 <= y_low < H - 1 and 0 <= x_low < W - 1      # the example has no border samples
    ly, lx = y - y_low, x - x_low
    hy, hx = 1 - ly, 1 - lx
    return (y_low, y_low + 1, x_low, x_low + 1), (ly, lx, hy, hx), [hy * hx, hy * lx, ly * hx, ly * lx]


def expected_output():
    feature = np.arange(H * W, dtype=np.float64).reshape(H, W)
    out = np.zeros((OUT, OUT))
    for (ph, pw), (y, x) in samples():
        (y0, y1, x0, x1), _, w = neighbours(y, x)
        out[ph, pw] += (w[0] * feature[y0, x0] + w[1] * feature[y0, x1]
                        + w[2] * feature[y1, x0] + w[3] * feature[y1, x1]) / GRID ** 2
    return out


def documented_session():
    """(shell command, [(pdb command, shown response)]) of the doc's ```console block."""
    text = open(DOC, encoding="utf-8").read()
    block = re.search(r"```console\n(.*?)```", text, re.S).group(1)
    lines = block.splitlines()
    assert lines[0].startswith("$ ")
    steps = []
    for line in lines[1:]:
        if line.startswith(PROMPT):
            steps.append([line[len(PROMPT):], []])
        elif steps:
            steps[-1][1].append(line)
    return lines[0][2:], [(cmd, "\n".join(shown)) for cmd, shown in steps]


def run_pdb(shell_command, commands, cwd, jit_disabled=True):
    """Run `VAR=value ... python -m pdb script` with the commands on stdin.

    Returns ([response to each command], stderr). A response is what pdb printed between
    the command's prompt and the next prompt.
    """
    words = shlex.split(shell_command)
    env = dict(os.environ)
    env.pop("MINIMRCNN_KERNELS", None)                    # the default: the Numba kernels
    while "=" in words[0]:
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    if not jit_disabled:
        env.pop("NUMBA_DISABLE_JIT", None)
    assert words[0] == "python"
    result = subprocess.run([sys.executable] + words[1:], input="\n".join(commands) + "\n",
                            cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    chunks = result.stdout.split(PROMPT)
    assert len(chunks) == len(commands) + 1, result.stdout
    return [c.rstrip("\n") for c in chunks[1:]], result.stderr


def value(printed):
    """The Python value of a `p` response such as `(np.float64(1.0625), np.float64(0.5625))`."""
    return eval(printed, {"np": np, "array": np.array})


@pytest.fixture(scope="module")
def session():
    command, steps = documented_session()
    responses, stderr = run_pdb(command, [cmd for cmd, _ in steps], ROOT)
    return steps, responses, stderr


def test_doc_commands_are_the_recipe():
    command, steps = documented_session()
    assert command == "NUMBA_DISABLE_JIT=1 python -m pdb docs/examples/step_into_roi_align.py"
    commands = [cmd for cmd, _ in steps]
    # The kernel is imported from its module (whichever ops module holds it), then named.
    assert re.fullmatch(r"from minimrcnn\.ops\.\w+ import _bilinear_entry", commands[0])
    assert commands[1:3] == ["b _bilinear_entry", "c"]
    assert commands[-1] == "q"
    assert not any(re.search(r"\.py:\d", cmd) for cmd in commands)     # no line numbers


def test_printed_values_follow_from_the_roialign_formulas(session):
    steps, responses, stderr = session
    got = {}
    for (cmd, _), response in zip(steps, responses):
        got.setdefault(cmd, []).append(response)          # "c" comes twice
    assert "warning" not in stderr
    assert "Breakpoint 1 at" in got["b _bilinear_entry"][0]
    assert "minimrcnn/ops/" in got["b _bilinear_entry"][0]
    first_c, last_c = got["c"]
    assert "_bilinear_entry()" in first_c                                    # the breakpoint was hit
    (_, (y, x)) = next(samples())
    (y_low, y_high, x_low, x_high), (ly, lx, hy, hx), weights = neighbours(y, x)
    assert value(got["p y, x"][0]) == (y, x) == (1.0625, 0.5625)
    assert value(got["p r, ph, pw, iy, ix"][0]) == (0, 0, 0, 0, 0)
    assert value(got["p y_low, y_high, x_low, x_high"][0]) == (y_low, y_high, x_low, x_high)
    assert value(got["p ly, lx, hy, hx"][0]) == (ly, lx, hy, hx)
    np.testing.assert_array_equal(value(got["p weight_row"][0]), weights)
    np.testing.assert_array_equal(value(got["p pos_row"][0]),
                                  [y_low * W + x_low, y_low * W + x_high, y_high * W + x_low,
                                   y_high * W + x_high])
    # After `cl 1` the last `c` runs to the end: the script prints the pooled [2, 2] output.
    assert "The program finished" in last_c
    printed = last_c.split("The program finished")[0]
    rows = re.findall(r"\[([^\[\]]+)\]", printed)
    np.testing.assert_array_equal([[float(v) for v in row.split()] for row in rows], expected_output())


def test_doc_shows_the_real_output(session):
    steps, responses, _ = session
    for (cmd, shown), response in zip(steps, responses):
        # Location lines carry machine paths and line numbers, which the doc shortens.
        real = re.sub(r"/\S*/(docs/examples|minimrcnn/ops)/", r".../\1/", response)
        real = re.sub(r"(minimrcnn/ops/\w+\.py)(:\d+|\(\d+\))", lambda m: m.group(1) + (
            ":NNN" if m.group(2).startswith(":") else "(NNN)"), real)
        assert real == shown, (cmd, real, shown)


def test_script_may_live_anywhere_and_conditional_breakpoint(tmp_path):
    shutil.copy(SCRIPT, tmp_path / "mine.py")
    _, steps = documented_session()
    responses, _ = run_pdb("NUMBA_DISABLE_JIT=1 python -m pdb mine.py",
                           [steps[0][0],                                  # the doc's import
                            "b _bilinear_entry, y > 2 and x > 2", "c", "p y, x", "q"], tmp_path)
    first = next((bin_, p) for bin_, p in samples() if p[0] > 2 and p[1] > 2)
    assert first == ((1, 1), (2.3125, 2.4375))                                # as the doc says
    assert value(responses[3]) == first[1]


def test_without_disable_jit_the_script_warns_and_the_breakpoint_is_never_hit():
    _, steps = documented_session()
    responses, stderr = run_pdb("python -m pdb docs/examples/step_into_roi_align.py",
                                [steps[0][0],                             # the doc's import
                                 "b _bilinear_entry", "c", "q"], ROOT, jit_disabled=False)
    assert "Breakpoint 1 at" in responses[1]                                  # accepted ...
    assert "_bilinear_entry()" not in responses[2]                            # ... never hit
    assert "The program finished" in responses[2]
    assert "NUMBA_DISABLE_JIT is not 1" in stderr


def test_with_reference_kernels_the_twin_breakpoint_is_hit_and_no_never_hit_warning():
    # MINIMRCNN_KERNELS=reference runs the plain-Python twin: a breakpoint on its bilinear_interpolate
    # is hit even with the JIT on, so the script must not claim that breakpoints are never hit.
    responses, stderr = run_pdb("MINIMRCNN_KERNELS=reference python -m pdb docs/examples/step_into_roi_align.py",
                                ["from minimrcnn.ops.roi_align import bilinear_interpolate",
                                 "b bilinear_interpolate", "c", "p y, x", "q"], ROOT, jit_disabled=False)
    assert "Breakpoint 1 at" in responses[1]
    assert "bilinear_interpolate()" in responses[2]                           # hit
    assert value(responses[3]) == next(samples())[1]                          # the first sample, as the kernel's
    assert "never hit" not in stderr and "bilinear_interpolate" in stderr
