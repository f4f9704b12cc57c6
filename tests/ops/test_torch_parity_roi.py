"""Optional cross-checks against torchvision's RoI ops (skipped when torchvision is absent)."""

from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
from torchvision.models.detection import roi_heads as tv_roi_heads  # noqa: E402

from minimrcnn.ops.masks import paste_masks_in_image, project_masks_on_boxes  # noqa: E402
from minimrcnn.ops.poolers import MultiScaleRoIAlign  # noqa: E402
from minimrcnn.ops.roi_align import roi_align_backward, roi_align_forward  # noqa: E402
from minimrcnn.ops.roi_pool import roi_pool_backward, roi_pool_forward  # noqa: E402

from tests.conftest import random_mask_targets, random_rois  # noqa: E402


def torch_roi_align(x, rois, *args):
    tx = torch.from_numpy(x).requires_grad_()
    out = torchvision.ops.roi_align(tx, torch.from_numpy(rois), *args)
    return tx, out


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 1, 2, 3])
def test_roi_align_matches_torchvision(dtype, aligned, sampling_ratio):
    rng = np.random.default_rng(sampling_ratio + 10)
    x = rng.standard_normal((2, 3, 13, 11)).astype(dtype)
    # aligned + adaptive + an inverted box crashes torchvision's CPU kernel: avoid it there.
    # torchvision's aligned=True with an adaptive ratio is undefined for inverted boxes
    rois = random_rois(rng, 300, 2, 13, 11, dtype, spread=8, inverted=not (aligned and sampling_ratio <= 0))
    out, cache = roi_align_forward(x, rois, (3, 4), 1 / 3, sampling_ratio, aligned)
    tx, tout = torch_roi_align(x, rois, (3, 4), 1 / 3, sampling_ratio, aligned)
    dout = rng.standard_normal(out.shape).astype(dtype)
    tout.backward(torch.from_numpy(dout))
    tol = 1e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(roi_align_backward(dout, cache), tx.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_roi_pool_matches_torchvision(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 13, 11)).astype(dtype)
    rois = random_rois(rng, 300, 2, 13, 11, dtype, spread=8)
    for scale in (1.0, 1 / 3):
        out, cache = roi_pool_forward(x, rois, (3, 2), scale)
        tx = torch.from_numpy(x).requires_grad_()
        tout = torchvision.ops.roi_pool(tx, torch.from_numpy(rois), (3, 2), scale)
        dout = rng.standard_normal(out.shape).astype(dtype)
        tout.backward(torch.from_numpy(dout))
        np.testing.assert_array_equal(out, tout.detach().numpy())
        np.testing.assert_allclose(roi_pool_backward(dout, cache), tx.grad.numpy(), rtol=1e-6,
                                   atol=1e-6)


def test_multiscale_roi_align_matches_torchvision():
    rng = np.random.default_rng(1)
    shapes = [(250, 230), (256, 200)]
    feats = OrderedDict((name, rng.standard_normal((2, 4, 64 >> i, 64 >> i)))
                        for i, name in enumerate(["0", "1", "2", "3"]))
    feats["pool"] = rng.standard_normal((2, 4, 4, 4))
    boxes = []
    for _ in shapes:
        xy = rng.uniform(0, 200, (60, 2))
        boxes.append(np.c_[xy, xy + np.exp(rng.uniform(np.log(2), np.log(250), (60, 2)))])
    ours = MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2, canonical_scale=56)
    theirs = torchvision.ops.MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2, canonical_scale=56)
    out, cache = ours.forward(feats, boxes, shapes)
    tfeats = OrderedDict((k, torch.from_numpy(v).requires_grad_()) for k, v in feats.items())
    tout = theirs(tfeats, [torch.from_numpy(b) for b in boxes], shapes)
    assert ours.scales == theirs.scales
    assert len(np.unique(ours.map_levels(boxes))) == 4
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-10, atol=1e-10)
    dout = rng.standard_normal(out.shape)
    tout.backward(torch.from_numpy(dout))
    grads = ours.backward(dout, cache)
    for name in ["0", "1", "2", "3"]:
        np.testing.assert_allclose(grads[name], tfeats[name].grad.numpy(), rtol=1e-10, atol=1e-10)


def test_project_masks_matches_torchvision():
    rng = np.random.default_rng(2)
    gt, boxes, matched = random_mask_targets(rng, 3, 60, 50, 40)
    ours = project_masks_on_boxes(gt, boxes, matched, 28)
    theirs = tv_roi_heads.project_masks_on_boxes(torch.from_numpy(gt), torch.from_numpy(boxes),
                                                 torch.from_numpy(matched), 28).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_paste_masks_matches_torchvision():
    rng = np.random.default_rng(3)
    D = 40
    masks = rng.uniform(size=(D, 1, 28, 28)).astype(np.float32)
    xy = rng.uniform(-10, 100, (D, 2))
    # torchvision errors on a box that misses the image entirely; stay overlapping.
    boxes = np.c_[xy, xy + rng.uniform(12, 80, (D, 2))].astype(np.float32)
    ours = paste_masks_in_image(masks, boxes, (120, 110))
    theirs = tv_roi_heads.paste_masks_in_image(torch.from_numpy(masks), torch.from_numpy(boxes),
                                               (120, 110)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)
