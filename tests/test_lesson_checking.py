"""lessons/checking.py: the helpers every exercise check uses."""

import importlib.util
import pathlib
import sys

import numpy as np
import pytest

from minimrcnn import ops
from minimrcnn.ops import nms as nms_function

_spec = importlib.util.spec_from_file_location(
    "checking", pathlib.Path(__file__).resolve().parent.parent / "lessons" / "checking.py")
checking = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("checking", checking)   # dataclasses look their module up
_spec.loader.exec_module(checking)


def test_hidden_trips_every_binding_and_restores_them():
    namespace = {"nms": nms_function}
    boxes, scores = np.array([[0, 0, 1, 1]], np.float32), np.array([1.0], np.float32)
    with checking.hidden("minimrcnn.ops.nms.nms", exercise=3, namespace=namespace):
        for call in (namespace["nms"], ops.nms):
            with pytest.raises(checking.LibraryShortcut, match=r"Exercise 3: your code called minimrcnn\.ops\.nms\.nms"):
                call(boxes, scores, 0.5)
        assert ops.batched_nms is not None   # other names are untouched
    assert namespace["nms"] is nms_function and ops.nms is nms_function
    np.testing.assert_array_equal(ops.nms(boxes, scores, 0.5), [0])


def test_smallest_disagreement_names_the_smallest_case_in_plain_numbers():
    cases = [(np.arange(5.0),), (np.arange(2.0),), (np.arange(3.0),)]
    found = checking.smallest_disagreement(cases, lambda x: x[::-1] if len(x) > 1 else x, lambda x: x)
    assert found is not None and len(found.args[0]) == 2
    message = found.message("Exercise 1", ("x",), hint="Reverse nothing.")
    assert "x=[0.0, 1.0]" in message and "[1.0, 0.0]" in message and "np." not in message
    assert message.endswith("Reverse nothing.")
    assert checking.smallest_disagreement(cases, lambda x: x + 1e-7, lambda x: x) is None


def test_plain_turns_numpy_into_python():
    assert checking.plain([np.int64(3), np.float32(0.1)]) == [3, 0.1]
    assert checking.plain(np.array([[1, 2]])) == [[1, 2]]


def test_hidden_trips_a_method_on_every_instance():
    from minimrcnn.ops.anchors import AnchorGenerator

    generator = AnchorGenerator(((8,),), ((1.0,),))
    original = AnchorGenerator.__call__
    with checking.hidden("minimrcnn.ops.anchors.AnchorGenerator.__call__", exercise=1, namespace={}):
        with pytest.raises(checking.LibraryShortcut, match="AnchorGenerator.__call__"):
            generator((8, 8), [(2, 2)])
    assert AnchorGenerator.__call__ is original
    assert len(generator((8, 8), [(2, 2)])) == 4


def test_solution_runs_a_block_in_a_copy_of_the_namespace():
    namespace = {"np": np, "nms": nms_function, "box_iou": ops.box_iou}
    defined = checking.solution("04_nms", 1, namespace)
    assert set(defined) == {"my_nms"} and "my_nms" not in namespace
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11]], np.float32)
    np.testing.assert_array_equal(defined["my_nms"](boxes, np.array([0.9, 0.8], np.float32), 0.5), [0])
