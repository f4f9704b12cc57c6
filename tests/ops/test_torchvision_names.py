"""Every name ``minimrcnn.ops`` shares with ``torchvision.ops`` is what torchvision's is.

``SHARED`` was read off torchvision 0.29.1: the kind of each name (function, class or
module) and, for functions and classes, the parameter names and defaults of its signature.
The first test holds without torch; the second (skipped without torchvision) checks that the
table still says what torchvision says, and that no shared name is missing from it.
"""

import importlib
import inspect
import types

import numpy as np
import pytest

from minimrcnn import ops

# name -> (kind, [(parameter, default or inspect.Parameter.empty), ...]) of torchvision 0.29.1
_ = inspect.Parameter.empty
SHARED = {
    "MultiScaleRoIAlign": ("class", [("featmap_names", _), ("output_size", _), ("sampling_ratio", _),
                                     ("canonical_scale", 224), ("canonical_level", 4)]),
    "batched_nms": ("function", [("boxes", _), ("scores", _), ("idxs", _), ("iou_threshold", _)]),
    "box_area": ("function", [("boxes", _), ("fmt", "xyxy")]),
    "box_convert": ("function", [("boxes", _), ("in_fmt", _), ("out_fmt", _)]),
    "box_iou": ("function", [("boxes1", _), ("boxes2", _), ("fmt", "xyxy")]),
    "boxes": ("module", None),
    "clip_boxes_to_image": ("function", [("boxes", _), ("size", _)]),
    "masks_to_boxes": ("function", [("masks", _)]),
    "nms": ("function", [("boxes", _), ("scores", _), ("iou_threshold", _)]),
    "poolers": ("module", None),
    "remove_small_boxes": ("function", [("boxes", _), ("min_size", _)]),
    "roi_align": ("function", [("input", _), ("boxes", _), ("output_size", _), ("spatial_scale", 1.0),
                               ("sampling_ratio", -1), ("aligned", False)]),
    "roi_pool": ("function", [("input", _), ("boxes", _), ("output_size", _), ("spatial_scale", 1.0)]),
}


def _kind(obj) -> str:
    if isinstance(obj, types.ModuleType):
        return "module"
    return "class" if isinstance(obj, type) else "function" if callable(obj) else type(obj).__name__


def _parameters(obj) -> list:
    return [(p.name, p.default) for p in inspect.signature(obj).parameters.values()]


@pytest.mark.parametrize("name", sorted(SHARED))
def test_shared_names_are_what_torchvision_has(name):
    kind, parameters = SHARED[name]
    ours = getattr(ops, name)
    assert _kind(ours) == kind, f"minimrcnn.ops.{name} is a {_kind(ours)}; torchvision.ops.{name} is a {kind}"
    if parameters is not None:
        assert _parameters(ours) == parameters, f"minimrcnn.ops.{name}{inspect.signature(ours)}"


def test_the_functions_keep_their_files_reachable():
    """A reader finds the file behind a shadowed module through ``__module__`` or importlib."""
    for name in ("nms", "roi_align", "roi_pool", "crop_and_resize"):
        function = getattr(ops, name)
        assert function.__module__ == f"minimrcnn.ops.{name}"
        module = importlib.import_module(function.__module__)
        assert isinstance(module, types.ModuleType) and getattr(module, name) is function


def test_torchvision_spelling_runs():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    np.testing.assert_array_equal(ops.nms(boxes, scores, 0.5), [0, 2])
    features = np.arange(2 * 8 * 8, dtype=np.float32).reshape(1, 2, 8, 8)
    rois = np.array([[0, 0, 0, 4, 4]], np.float32)
    assert ops.roi_align(features, rois, 2).shape == (1, 2, 2, 2)
    assert ops.roi_pool(features, rois, (2, 2)).shape == (1, 2, 2, 2)


@pytest.mark.parametrize("fmt", ["xywh", "cxcywh"])
def test_box_area_and_iou_read_the_other_formats(fmt):
    xyxy = np.array([[0, 0, 2, 2], [1, 1, 3, 3]], np.float64)
    boxes = ops.box_convert(xyxy, "xyxy", fmt)
    np.testing.assert_allclose(ops.box_area(boxes, fmt=fmt), [4, 4])
    np.testing.assert_allclose(ops.box_iou(boxes, boxes, fmt=fmt), [[1, 1 / 7], [1 / 7, 1]])
    with pytest.raises(ValueError, match="fmt must be one of"):
        ops.box_area(xyxy, fmt="xyxyxyxy")


@pytest.mark.torch
def test_the_table_matches_torchvision():
    torchvision_ops = pytest.importorskip("torchvision.ops")
    public = {n for n in dir(ops) if not n.startswith("_")} & {n for n in dir(torchvision_ops) if not n.startswith("_")}
    assert public == set(SHARED), f"shared with torchvision.ops but not in SHARED: {sorted(public ^ set(SHARED))}"
    for name, (kind, parameters) in SHARED.items():
        theirs = getattr(torchvision_ops, name)
        assert _kind(theirs) == kind, f"torchvision.ops.{name} is a {_kind(theirs)}"
        if parameters is not None:
            assert _parameters(theirs) == parameters, f"torchvision.ops.{name}{inspect.signature(theirs)}"
