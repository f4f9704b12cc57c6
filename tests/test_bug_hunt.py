"""lessons/bug_hunt.py: lesson 02's planted RoIAlign backward bug is caught by a gradient check,
and the solution's fix (lessons/solutions/02_bilinear_sampling.py, exercise 3) passes it.

tests/test_lessons.py runs the same thing through the notebook: the lesson's exercise-3 check
accepts the solution and rejects the unfixed ``spread_buggy`` (tests/lesson_wrong_answers/).
"""

import importlib.util
import pathlib
import sys

import numpy as np
import pytest

from minimrcnn.gradcheck import numerical_gradient, rel_error
from minimrcnn.ops.roi_align import bilinear_interpolate, roi_align, roi_align_backward, roi_align_forward

LESSONS = pathlib.Path(__file__).resolve().parent.parent / "lessons"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, LESSONS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


bug_hunt = _load("bug_hunt")
checking = _load("checking")


def _case(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, 6, 7))
    rois = np.array([[0, 0.4, 1.1, 5.3, 4.9], [1, -1.5, 2.0, 3.0, 7.5], [0, 2.2, 0.3, 6.8, 3.3]])
    out, cache = roi_align_forward(x, rois, 2, 1.0, -1)
    dout = rng.standard_normal(out.shape)
    numeric = numerical_gradient(lambda v: roi_align(v, rois, 2, 1.0, -1), x, dout)
    return dout, cache, numeric


@pytest.mark.parametrize("seed", [1, 2])
def test_the_planted_bug_fails_the_gradient_check_and_the_fix_passes(seed):
    dout, cache, numeric = _case(seed)
    buggy = bug_hunt.roi_align_backward_hunt(dout, cache)
    assert rel_error(buggy, numeric) > 1e-3
    assert np.isclose(buggy.sum(), numeric.sum())          # the bug hides from a sum check
    fixed_spread = checking.solution("02_bilinear_sampling", 3, {"np": np})["my_spread"]
    fixed = bug_hunt.roi_align_backward_hunt(dout, cache, spread=fixed_spread)
    assert rel_error(fixed, numeric) < 1e-6
    np.testing.assert_allclose(fixed, roi_align_backward(dout, cache), rtol=0, atol=1e-12)


def test_the_bug_is_the_swap_of_w2_and_w3():
    neighbours = bilinear_interpolate(3, 3, 0.25, 0.375)
    y_low, y_high, x_low, x_high, w1, w2, w3, w4 = neighbours
    plane = np.zeros((1, 3, 3))
    bug_hunt.spread_buggy(plane, np.ones(1), neighbours, 1)
    assert plane[0, y_low, x_high] == w3 and plane[0, y_high, x_low] == w2 and w2 != w3
    assert plane[0, y_low, x_low] == w1 and plane[0, y_high, x_high] == w4
