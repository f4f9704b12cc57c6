"""The explain page in a real browser (headless chromium, network off, loaded from disk).

What a learner does, checked against the library: every panel opens and draws something;
a clicked detection shows the levels, RoIAlign grid, class probabilities and mask of
``model.inspect``; a hovered bin shows ``roi_align``'s bilinear weights; the sliders give
exactly the detections ``batched_nms`` + the score filter give; the page's NMS equals the
library's on random boxes. Runs in about half a minute.
"""

import io

import numpy as np
import pytest

from minimrcnn.nn import functional as F
from minimrcnn.ops import batched_nms, box_iou
from minimrcnn.ops.nms import nms
from minimrcnn.ops.roi_align import bilinear_interpolate
from minimrcnn.viz.explain_data import decode_array
from tests.viz.conftest import open_page

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def page(browser, shapes_page):
    path, _, data = shapes_page
    errors = open_page(browser, path)
    assert errors == [], errors
    return browser, data


def console_errors(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def non_blank(png: bytes) -> bool:
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    return len(np.unique(pixels, axis=0)) > 20 and pixels.std() > 10


def set_control(driver, name, value):
    """Move a slider the way a user does: set its value and fire 'input'."""
    driver.execute_script(
        "const el = document.querySelector(`[data-control='${arguments[0]}']`);"
        "el.value = arguments[1]; el.dispatchEvent(new Event('input', {bubbles: true}));", name, str(value))


def click(driver, element):
    driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", element)


def visible_candidates(driver):
    return [int(e.get_attribute("data-candidate"))
            for e in driver.find_elements("css selector", '[data-role="detection"]')]


def library_selection(data, score, iou, top_n=None):
    """What minimrcnn's own postprocessing keeps: score > threshold (float32 compare), per-class NMS, top 100."""
    c = data["candidates"]
    boxes, scores = decode_array(c["boxes"]), decode_array(c["scores"])
    labels, proposal = decode_array(c["labels"]), decode_array(c["proposal"])
    top_n = data["meta"]["rpn_post_nms_top_n"] if top_n is None else top_n
    members = np.where((scores > score) & (proposal < top_n))[0]
    keep = batched_nms(boxes[members], scores[members], labels[members].astype(np.int64), iou)
    return members[keep[: data["meta"]["detections_per_img"]]].tolist()


def test_every_stage_panel_opens_and_draws(page):
    driver, data = page
    for stage in data["stages"]:
        panel = driver.find_element("css selector", f'[data-stage="{stage["name"]}"]')
        assert not panel.is_displayed()
        button = driver.find_element("css selector", f'[data-open-stage="{stage["name"]}"]')
        click(driver, button)
        assert panel.is_displayed(), stage["name"]
        assert stage["shapes"] in panel.text
        assert non_blank(panel.screenshot_as_png), f"panel {stage['name']} is blank"
    assert non_blank(driver.find_element("id", "scene").screenshot_as_png)
    assert console_errors(driver) == []


def test_clicked_detection_shows_the_recorded_numbers(page, shapes_model, shapes_sample):
    driver, data = page
    set_control(driver, "score-threshold", data["meta"]["recorded_score_thresh"])
    set_control(driver, "nms-iou", data["meta"]["box_nms_thresh"])
    trace = shapes_model.inspect([shapes_sample[0]])
    heads = shapes_model.roi_heads
    proposals = trace["rpn_proposals"][0]
    recorded = data["candidates"]["recorded_keep"]
    assert sorted(visible_candidates(driver)) == sorted(recorded)    # the sliders at the model's values
    box_levels = heads.box_roi_pool.map_levels([proposals])
    mask_levels = heads.mask_roi_pool.map_levels([trace["detections_before_nms"][0]["boxes"][recorded]])
    for d in [0, len(recorded) // 2, len(recorded) - 1]:
        det = data["detections"][d]
        click(driver, driver.find_element("css selector", f'[data-role="detection"][data-candidate="{recorded[d]}"]'))
        detail = driver.find_element("css selector", '[data-role="detail"]')
        assert detail.is_displayed()
        level = int(detail.find_element("css selector", '[data-role="proposal-level"]').get_attribute("data-value"))
        assert level == box_levels[det["proposal"]]
        level = int(detail.find_element("css selector", '[data-role="mask-level"]').get_attribute("data-value"))
        assert level == mask_levels[d]
        probs = [np.float32(float(e.get_attribute("data-value")))
                 for e in detail.find_elements("css selector", '[data-role="class-prob"]')]
        np.testing.assert_array_equal(probs, trace["class_probs"][det["proposal"]])
        bins = detail.find_elements("css selector", '[data-role="roi-bin"][data-grid="box"]')
        assert len(bins) == 7 * 7
        assert len(detail.find_elements("css selector", '[data-role="roi-bin"][data-grid="mask"]')) == 14 * 14
        mask = driver.execute_script("const d = minimrcnnExplain.DATA.detections[arguments[0]];"
                                     "return Array.from(minimrcnnExplain.decode(d.mask_probs));", d)
        expected = F.sigmoid(trace["mask_logits"][d, det["label"]]).reshape(-1)
        np.testing.assert_array_equal(np.float32(mask), expected)
        assert non_blank(detail.screenshot_as_png)
    assert console_errors(driver) == []


def test_hovered_bin_shows_roi_align_bilinear_weights(page):
    from selenium.webdriver import ActionChains

    driver, data = page
    set_control(driver, "score-threshold", data["meta"]["recorded_score_thresh"])
    det = data["detections"][0]
    click(driver, driver.find_element("css selector", f'[data-role="detection"][data-candidate="{det["candidate"]}"]'))
    checked = 0
    for kind, grid in (("box", det["box_grid"]), ("mask", det["mask_grid"])):
        _, H, W = data["levels"][grid["level"]]["shape"]
        P = grid["output_size"][0]
        for ph, pw in [(0, 0), (P // 2, P // 3), (P - 1, P - 1)]:
            selector = f'[data-role="roi-bin"][data-grid="{kind}"][data-ph="{ph}"][data-pw="{pw}"]'
            cell = driver.find_element("css selector", selector)
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", cell)
            ActionChains(driver).move_to_element(cell).perform()
            block = driver.find_element("css selector", f'.grid-block[data-grid="{kind}"] [data-role="bin-weights"]')
            rows = block.find_elements("css selector", '[data-role="sample-weights"]')
            assert len(rows) == grid["gh"] * grid["gw"]
            for row in rows:
                y, x = np.float32(float(row.get_attribute("data-y"))), np.float32(float(row.get_attribute("data-x")))
                assert y in np.float32(grid["ys"][ph]) and x in np.float32(grid["xs"][pw])
                expected = bilinear_interpolate(H, W, y, x)
                if expected is None:
                    assert row.get_attribute("data-weights") == ""
                    continue
                neighbours = [int(v) for v in row.get_attribute("data-neighbours").split(",")]
                weights = [np.float32(float(v)) for v in row.get_attribute("data-weights").split(",")]
                assert neighbours == list(expected[:4])
                assert weights == list(expected[4:])
                checked += 1
    assert checked >= 12
    assert console_errors(driver) == []


def test_sliders_give_exactly_the_library_detections(page):
    driver, data = page
    scores = decode_array(data["candidates"]["scores"])
    boxes = decode_array(data["candidates"]["boxes"])
    ious = box_iou(boxes, boxes)[np.triu_indices(len(boxes), 1)]
    ious = np.unique(ious[(ious > 0.05) & (ious < 0.95)])
    # ties: thresholds equal to a candidate's score (strict >) and to an IoU between two candidates (strict >)
    score_values = [0.05, 0.3, 0.5, 0.9, float(np.sort(scores)[len(scores) // 2]), float(scores.max())]
    iou_values = [0.0, 0.3, 0.5, 0.7, 1.0, float(ious[len(ious) // 2]), float(ious[-1])]
    counts = set()
    for score in score_values:
        for iou in iou_values:
            set_control(driver, "score-threshold", repr(score))
            set_control(driver, "nms-iou", repr(iou))
            expected = library_selection(data, score, iou)
            assert visible_candidates(driver) == expected, (score, iou)
            shown = driver.find_element("css selector", '[data-role="detection-count"]')
            assert shown.is_displayed() and int(shown.text) == len(expected)
            counts.add(len(expected))
    assert len(counts) > 4                                      # the values above did move the count
    set_control(driver, "score-threshold", "0.05")
    set_control(driver, "nms-iou", "0.5")
    for top_n in [1, 5, 40, data["meta"]["rpn_post_nms_top_n"]]:
        set_control(driver, "rpn-post-nms-top-n", top_n)
        assert visible_candidates(driver) == library_selection(data, 0.05, 0.5, top_n)
        rpn = decode_array(data["proposals"]["before_nms"]), decode_array(data["proposals"]["scores"])
        keep = batched_nms(*rpn, decode_array(data["proposals"]["levels"]).astype(np.int64),
                           data["meta"]["rpn_nms_thresh"])[:top_n]
        assert int(driver.find_element("css selector", '[data-role="proposal-count"]').text) == len(keep)
    assert console_errors(driver) == []


def test_a_detection_only_the_sliders_let_through_says_so(page):
    driver, data = page
    set_control(driver, "rpn-post-nms-top-n", data["meta"]["rpn_post_nms_top_n"])
    set_control(driver, "score-threshold", "0.05")
    set_control(driver, "nms-iou", "0.95")
    extra = [c for c in visible_candidates(driver) if c not in data["candidates"]["recorded_keep"]]
    assert extra, "a looser NMS should let through candidates the recorded pass suppressed"
    click(driver, driver.find_element("css selector", f'[data-role="detection"][data-candidate="{extra[0]}"]'))
    detail = driver.find_element("css selector", '[data-role="detail"]')
    assert "Not a detection of the recorded pass" in detail.text
    assert detail.find_elements("css selector", '[data-role="mask-level"]') == []
    assert len(detail.find_elements("css selector", '[data-role="class-prob"]')) == data["meta"]["num_classes"]
    assert console_errors(driver) == []


def greedy_matches(candidates, labels, ious, gt_labels, threshold):
    """docs/explain.md's rule: by decreasing score, each detection takes the unmatched GT of
    its class with the highest IoU >= threshold."""
    used, marks = set(), []
    for c in candidates:
        best, best_iou = -1, threshold
        for g, gt_label in enumerate(gt_labels):
            if g not in used and gt_label == labels[c] and ious[c, g] >= best_iou:
                best, best_iou = g, ious[c, g]
        if best >= 0:
            used.add(best)
        marks.append("TP" if best >= 0 else "FP")
    return marks, len(gt_labels) - len(used)


def test_true_and_false_positives_follow_the_documented_matching(page):
    driver, data = page
    gt = data["ground_truth"]
    labels = decode_array(data["candidates"]["labels"])
    box_ious = decode_array(gt["box_iou"])
    for score, iou in [(0.05, 0.5), (0.5, 0.5), (0.05, 0.9)]:
        set_control(driver, "score-threshold", score)
        set_control(driver, "nms-iou", iou)
        shown = visible_candidates(driver)
        rows = driver.find_elements("css selector", '[data-role="detection-row"]')
        assert [int(r.get_attribute("data-candidate")) for r in rows] == shown
        cells = [[td.text for td in r.find_elements("css selector", "td")] for r in rows]
        for column, threshold in [(4, 0.5), (5, 0.75)]:
            marks, missed = greedy_matches(shown, labels, box_ious, gt["labels"], threshold)
            assert [c[column] for c in cells] == marks, (score, iou, threshold)
            if threshold == 0.5:
                text = driver.find_element("css selector", '[data-role="missed-count"]').text
                assert text.startswith(f"{missed} of {len(gt['labels'])} ground-truth objects missed")
        recorded = data["candidates"]["recorded_keep"]
        mask_ious = np.array(gt["mask_iou"])
        for column, threshold in [(6, 0.5), (7, 0.75)]:
            if all(c in recorded for c in shown):
                ious = np.zeros((len(labels), len(gt["labels"])))
                ious[recorded] = mask_ious
                marks, _ = greedy_matches(shown, labels, ious, gt["labels"], threshold)
                assert [c[column] for c in cells] == marks
            else:
                assert "n/a" in [c[column] for c in cells]
    assert console_errors(driver) == []


def test_clicked_proposal_shows_its_level_and_class_probabilities(page, shapes_model, shapes_sample):
    driver, data = page
    trace = shapes_model.inspect([shapes_sample[0]])
    set_control(driver, "rpn-post-nms-top-n", 20)
    driver.execute_script("const t = document.querySelector('[data-toggle=\"proposals\"]');"
                          "t.checked = true; t.dispatchEvent(new Event('change'));")
    shapes = driver.find_elements("css selector", '[data-role="proposal"]')
    assert len(shapes) == 20
    index = int(shapes[3].get_attribute("data-index"))
    click(driver, shapes[3])
    p = data["proposals"]["recorded_keep"].index(index)
    detail = driver.find_element("css selector", '[data-role="detail"]')
    assert int(detail.find_element("css selector", '[data-role="proposal-level"]').get_attribute("data-value")) \
        == shapes_model.roi_heads.box_roi_pool.map_levels([trace["rpn_proposals"][0]])[p]
    probs = [np.float32(float(e.get_attribute("data-value")))
             for e in detail.find_elements("css selector", '[data-role="class-prob"]')]
    np.testing.assert_array_equal(probs, trace["class_probs"][p])
    set_control(driver, "rpn-post-nms-top-n", data["meta"]["rpn_post_nms_top_n"])
    assert console_errors(driver) == []


def random_nms_inputs(rng, n, ties):
    xy = rng.uniform(0, 100, (n, 2))
    wh = rng.uniform(1, 40, (n, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores = rng.random(n).astype(np.float32)
    if ties:
        scores = np.round(scores * 8).astype(np.float32) / 8       # many equal scores
        boxes[n // 2:] = np.round(boxes[n // 2:])                  # and some equal IoUs
    return boxes, scores, rng.integers(0, 5, n)


def test_page_nms_equals_the_library_on_random_boxes(page):
    driver, _ = page
    rng = np.random.default_rng(0)
    for n, ties in [(0, False), (1, False), (60, True), (300, False), (1100, True)]:   # 1100: per-class path
        boxes, scores, labels = random_nms_inputs(rng, n, ties)
        for thr in [0.0, 0.3, 0.5, 0.7]:
            args = boxes.astype(float).tolist(), scores.astype(float).tolist(), labels.tolist(), thr
            got = driver.execute_script("return minimrcnnExplain.batchedNms(...arguments)", *args)
            assert got == batched_nms(boxes, scores, labels, thr).tolist(), (n, thr)
            got = driver.execute_script("return minimrcnnExplain.nms(...arguments)", *args[:2], thr)
            assert got == nms(boxes, scores, thr).tolist(), (n, thr)
    assert console_errors(driver) == []


def test_clicked_objectness_cell_shows_the_recorded_anchors(page, shapes_model, shapes_sample):
    driver, data = page
    trace = shapes_model.inspect([shapes_sample[0]])
    panel = driver.find_element("css selector", '[data-stage="rpn"]')
    if not panel.is_displayed():
        click(driver, driver.find_element("css selector", '[data-open-stage="rpn"]'))
    level, (y, x) = 1, (5, 9)
    driver.execute_script("const sel = document.querySelector('[data-stage=\"rpn\"] [data-role=\"level-select\"]');"
                          "sel.value = arguments[0]; sel.dispatchEvent(new Event('change'));", level)
    canvas = driver.find_element("css selector", '[data-stage="rpn"] [data-role="objectness-map"]')
    A, H, W = data["objectness"][level]["shape"]
    driver.execute_script(
        "const c = arguments[0], r = c.getBoundingClientRect();"
        "c.dispatchEvent(new MouseEvent('click', {bubbles: true, clientX: r.left + (arguments[2] + 0.5) * r.width / arguments[4],"
        " clientY: r.top + (arguments[1] + 0.5) * r.height / arguments[3]}));", canvas, y, x, H, W)
    rows = driver.find_elements("css selector", '[data-stage="rpn"] [data-role="anchor-row"]')
    start = sum(trace["num_anchors_per_level"][:level]) + (y * W + x) * A
    assert len(rows) == A
    for a, row in enumerate(rows):
        cells = row.find_elements("css selector", "td")
        box = [float(v) for v in cells[1].get_attribute("textContent").split(", ")]
        np.testing.assert_allclose(box, trace["anchors"][start + a], rtol=1e-3)
        assert float(cells[2].get_attribute("textContent")) == pytest.approx(float(trace["objectness"][0, start + a]), rel=1e-3)
    assert console_errors(driver) == []


def test_a_page_without_detections_works(browser, empty_page):
    path, data = empty_page
    assert open_page(browser, path) == []
    assert browser.find_element("css selector", '[data-role="detection-count"]').text == "0"
    for stage in data["stages"]:
        click(browser, browser.find_element("css selector", f'[data-open-stage="{stage["name"]}"]'))
    set_control(browser, "score-threshold", "0")
    set_control(browser, "nms-iou", "0.9")
    assert console_errors(browser) == []


@pytest.mark.slow
def test_the_resnet50_page_works_too(browser, resnet50_page):
    path, _, data = resnet50_page
    assert open_page(browser, path) == []
    set_control(browser, "nms-iou", "0.7")
    assert visible_candidates(browser) == library_selection(data, data["meta"]["score_threshold"], 0.7)
    for stage in data["stages"]:
        click(browser, browser.find_element("css selector", f'[data-open-stage="{stage["name"]}"]'))
    click(browser, browser.find_element("css selector", '[data-role="detection"]'))
    assert browser.find_element("css selector", '[data-role="detail"]').is_displayed()
    assert console_errors(browser) == []
