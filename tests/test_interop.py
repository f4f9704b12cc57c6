"""minimrcnn.interop without torch: which preset a weights dict is, the printed lines, a clear ImportError."""

import importlib.util

import numpy as np
import pytest

from minimrcnn.interop import loading_lines, preset_of_weights, torchvision_model
from minimrcnn.models import maskrcnn_resnet50_fpn, maskrcnn_shapes


def test_preset_of_weights():
    assert preset_of_weights(maskrcnn_shapes(num_classes=6).state_dict()) == ("shapes", {"num_classes": 6})
    for norm, extra in (("frozen_bn", {}), ("bn", {"norm": "bn"}), ("gn", {"norm": "gn"})):
        state = maskrcnn_resnet50_fpn(num_classes=3, norm=norm).state_dict()
        assert preset_of_weights(state) == ("resnet50_fpn", {"num_classes": 3, **extra})
    with pytest.raises(ValueError, match="no 2-D roi_heads.box_predictor.cls_score.weight"):
        preset_of_weights({"x": np.zeros(3)})


def test_loading_lines():
    assert loading_lines("out/m.pth", "resnet50_fpn", {"num_classes": 3, "norm": "bn"}) == [
        "import torch; from minimrcnn.interop import torchvision_model",
        "model = torchvision_model('resnet50_fpn', num_classes=3, norm='bn'); "
        "model.load_state_dict(torch.load('out/m.pth', weights_only=True))"]


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed here")
def test_without_torch_the_error_says_what_to_install():
    with pytest.raises(ImportError, match="needs PyTorch and torchvision .* minimrcnn itself never needs them"):
        torchvision_model("shapes", num_classes=4)
