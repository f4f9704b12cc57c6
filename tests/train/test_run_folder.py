"""What a run folder holds: figures (ground truth beside predictions, smoothed losses, AP curve),
the file list in summary.json / README.txt, the output-folder checks and the cold-cache probe."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from minimrcnn.data.shapes import CLASS_NAMES, ShapesDataset
from minimrcnn.runtime import kernel_cache_is_cold
from minimrcnn.train.run_folder import FILES, check_out_dir, write_summary
from minimrcnn.train.trainer import STAT_NAMES, eval_record
from minimrcnn.viz.draw import save_prediction_grid, save_training_curves, smooth


def test_predictions_png_puts_ground_truth_beside_predictions(tmp_path):
    ds = ShapesDataset(3, seed=0, image_size=64)
    images = [ds[i][0] for i in range(3)]
    targets = [ds[i][1] for i in range(3)]
    outputs = [{"boxes": t["boxes"], "labels": t["labels"], "scores": np.full(len(t["labels"]), 0.9, np.float32),
                "masks": t["masks"][:, None].astype(np.float32)} for t in targets]
    save_prediction_grid(str(tmp_path / "pairs.png"), images, outputs, CLASS_NAMES, targets=targets)
    save_prediction_grid(str(tmp_path / "grid.png"), images, outputs, CLASS_NAMES)
    w, h = Image.open(tmp_path / "pairs.png").size
    assert h > w            # one row per image, two columns: ground truth | predictions
    assert Image.open(tmp_path / "grid.png").size[0] > Image.open(tmp_path / "grid.png").size[1]
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]


def test_smooth_is_a_centred_moving_median():
    np.testing.assert_array_equal(smooth([1, 1, 100, 1, 1], window=3), [1, 1, 1, 1, 1])
    np.testing.assert_array_equal(smooth([1, 2, 3], window=9), [2, 2, 2])


def test_curves_draw_losses_and_the_ap_of_every_evaluation(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    stats = dict.fromkeys(STAT_NAMES, 0.1)
    with open(metrics, "w") as f:
        for t in range(1, 31):
            f.write(json.dumps({"type": "train", "iter": t, "loss_mask": 1.0 / t, "loss_classifier": 0.5,
                                "loss": 0.5 + 1.0 / t}) + "\n")
            if t % 10 == 0:
                f.write(json.dumps(eval_record(t, 1.0, 5, 1.0, {"bbox": stats, "segm": stats}, final=t == 30)) + "\n")
            if t == 20:   # a line of the layout before "type" existed is still drawn
                f.write(json.dumps({"iter": t, "eval": {"bbox": stats, "segm": stats}}) + "\n")
    save_training_curves(str(tmp_path / "curves.png"), str(metrics))
    assert Image.open(tmp_path / "curves.png").size[0] > 0


def test_summary_and_readme_list_every_file(tmp_path):
    write_summary(str(tmp_path), {"iterations": 5})
    summary = json.load(open(tmp_path / "summary.json"))
    assert summary["files"] == FILES and summary["iterations"] == 5
    readme = (tmp_path / "README.txt").read_text()
    for name in ("model.npz", "checkpoint.npz", "metrics.jsonl", "curves.png", "predictions.png", "summary.json"):
        assert name in FILES and name in readme


def test_out_dir_checks(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        check_out_dir(str(tmp_path / "file"), resume=False)
    assert check_out_dir(str(tmp_path / "new" / "run"), resume=False) == str(tmp_path / "new" / "run" / "checkpoint.npz")
    assert not (tmp_path / "new").exists()
    with pytest.raises(ValueError, match="no checkpoint at"):
        check_out_dir(str(tmp_path), resume=True)


def test_cold_cache_probe(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMBA_DISABLE_JIT", raising=False)
    from minimrcnn import runtime

    if runtime.jit_disabled():
        pytest.skip("JIT disabled: nothing is compiled")
    assert kernel_cache_is_cold([str(tmp_path)])
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "boxes.box_iou-12.py312.nbi").write_bytes(b"")
    assert not kernel_cache_is_cold([str(tmp_path)])
