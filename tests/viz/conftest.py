"""Shared fixtures of the explain tests: the lesson asset model, one shapes page, a headless chromium.

The browser is Debian's chromium + chromedriver driven by selenium. Locally the browser
tests skip, saying why, when either is missing; with CI=true they fail instead (.ci/run
installs both).
"""

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASSET = os.path.join(ROOT, "lessons", "assets", "shapes_model.npz")
SHAPES_INDEX = 9          # a held-out image with 4 objects, 44 candidates and 11 recorded detections


@pytest.fixture(scope="session")
def shapes_model():
    from minimrcnn.models import maskrcnn_shapes
    from minimrcnn.models.weights import load_weights

    model = maskrcnn_shapes()
    load_weights(model, ASSET)
    return model.eval()


@pytest.fixture(scope="session")
def shapes_sample():
    from minimrcnn.data.shapes import ShapesDataset
    from minimrcnn.train.config import TrainConfig

    return ShapesDataset(SHAPES_INDEX + 1, seed=TrainConfig.val_seed)[SHAPES_INDEX]


@pytest.fixture(scope="session")
def shapes_page(shapes_model, shapes_sample, tmp_path_factory):
    """(path of the written page, its HTML, its data dict) for the held-out shapes image."""
    from minimrcnn.data.shapes import CLASS_NAMES
    from minimrcnn.viz import explain, write_explain_page
    from minimrcnn.viz.explain_page import read_explain_data

    image, target = shapes_sample
    page = explain(shapes_model, image, target, class_names=CLASS_NAMES)
    path = str(tmp_path_factory.mktemp("explain") / "shapes.html")
    write_explain_page(path, page)
    return path, page, read_explain_data(page)


@pytest.fixture(scope="session")
def empty_page(tmp_path_factory):
    """An untrained model whose score threshold nothing passes: a page with no detection at all."""
    from minimrcnn.data.shapes import ShapesDataset
    from minimrcnn.models import maskrcnn_shapes
    from minimrcnn.viz import explain
    from minimrcnn.viz.explain_page import read_explain_data

    model = maskrcnn_shapes().eval()
    model.roi_heads.score_thresh = 0.999
    image, target = ShapesDataset(1, seed=5)[0]
    page = explain(model, image, target)
    path = tmp_path_factory.mktemp("empty") / "empty.html"
    path.write_text(page, encoding="utf-8")
    return str(path), read_explain_data(page)


@pytest.fixture(scope="session")
def resnet50_page(tmp_path_factory):
    """The resnet50 preset with random weights on an 800 x 1216 image: (path, HTML, data). About a minute."""
    import numpy as np

    from minimrcnn.models import maskrcnn_resnet50_fpn
    from minimrcnn.viz import explain
    from minimrcnn.viz.explain_page import read_explain_data

    yy, xx = np.mgrid[0:800, 0:1216]
    image = np.stack([xx * 255 // 1216, yy * 255 // 800, (xx + yy) % 256], -1).astype(np.uint8)
    page = explain(maskrcnn_resnet50_fpn(num_classes=91), image)
    path = tmp_path_factory.mktemp("resnet50") / "resnet50.html"
    path.write_text(page, encoding="utf-8")
    return str(path), page, read_explain_data(page)


@pytest.fixture(scope="session")
def browser():
    """A headless chromium with the network switched off; its console log is kept."""
    from minimrcnn.viz.headless import browser_missing, chromium_driver

    missing = browser_missing()
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but the browser tests cannot run: {missing}")
        pytest.skip(missing)
    driver = chromium_driver()
    yield driver
    driver.quit()


def open_page(driver, path):
    """Load a page from disk and return the SEVERE console entries its load produced."""
    driver.get("file://" + os.path.abspath(path))
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
