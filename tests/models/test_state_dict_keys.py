"""state_dict key layout of both presets against docs/torchvision-parity.md (sec. 13, appendices A, B).

The appendices list every key and shape in order, as torchvision names them; a model whose
keys drift from the doc (or a doc that drifts from the model) fails here.
"""

import os
import re

import numpy as np
import pytest

from minimrcnn.models import maskrcnn_resnet50_fpn, maskrcnn_shapes

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                   "docs", "torchvision-parity.md")


def doc_keys(appendix):
    """[(key, shape)] of the ```text block under '## Appendix <appendix>' of the parity doc."""
    text = open(DOC, encoding="utf-8").read()
    section = text.split(f"## Appendix {appendix}:", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    pairs = []
    for line in block.splitlines():
        key, shape = line.split(" ")
        pairs.append((key, tuple(int(v) for v in shape.strip("()").split(",") if v)))
    return pairs


def layout(state):
    return [(k, tuple(v.shape)) for k, v in state.items()]


def test_resnet50_frozen_bn_keys_equal_appendix_a():
    model = maskrcnn_resnet50_fpn(norm="frozen_bn")
    state = model.state_dict()
    expected = doc_keys("A")
    assert len(expected) == 307
    assert layout(state) == expected
    assert all(v.dtype == np.float32 for v in state.values())
    # FrozenBN arrays are buffers, as in torchvision: the parameters are the convs and heads.
    assert sum(p.data.size for p in model.parameters()) == 44_401_393


def test_resnet50_bn_keys_add_a_counter_after_each_running_var():
    model = maskrcnn_resnet50_fpn(norm="bn")
    state = model.state_dict()
    expected = []
    for key, shape in doc_keys("A"):
        expected.append((key, shape))
        if key.endswith(".running_var"):
            expected.append((key[:-len("running_var")] + "num_batches_tracked", ()))
    assert len(expected) == 360
    assert layout(state) == expected
    for key, value in state.items():
        assert value.dtype == (np.int64 if key.endswith("num_batches_tracked") else np.float32), key
    # plus BatchNorm2d's trainable weight and bias (53 norms)
    assert sum(p.data.size for p in model.parameters()) == 44_401_393 + 53_120


def test_shapes_preset_keys_equal_appendix_b():
    model = maskrcnn_shapes()
    state = model.state_dict()
    expected = doc_keys("B")
    assert len(expected) == 102
    assert layout(state) == expected
    assert all(v.dtype == np.float32 for v in state.values())
    assert sum(v.size for v in state.values()) == 1_941_751


@pytest.mark.parametrize("appendix", ["A", "B"])
def test_doc_keys_are_unique(appendix):
    keys = [k for k, _ in doc_keys(appendix)]
    assert len(set(keys)) == len(keys)
