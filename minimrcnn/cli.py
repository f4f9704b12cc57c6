"""The ``minimrcnn`` command line: ``minimrcnn --help`` lists the subcommands."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import minimrcnn


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


# ----------------------------------------------------------------------------- info
def cmd_info(args) -> int:
    """Print versions, Numba's threading set-up, the JIT switch and the cache location."""
    import numba
    import numpy as np

    from minimrcnn import runtime as config

    try:
        num_threads = numba.get_num_threads()    # starts the thread pool, so the layer is known
        threading_layer = numba.threading_layer()
    except Exception as exc:  # pragma: no cover - depends on the install
        threading_layer, num_threads = f"unavailable ({exc})", "?"
    cache_dir = os.environ.get("NUMBA_CACHE_DIR") or "beside each module, in __pycache__ (NUMBA_CACHE_DIR unset)"
    print(f"minimrcnn {minimrcnn.__version__}")
    print(f"python {sys.version.split()[0]}")
    print(f"numpy {np.__version__}")
    print(f"numba {numba.__version__}")
    print(f"numba threading layer: {threading_layer}, threads: {num_threads}")
    print(f"numba JIT disabled (NUMBA_DISABLE_JIT): {config.jit_disabled()}")
    print(f"kernels: {'reference twins' if config.reference_kernels_enabled() else 'numba'} (MINIMRCNN_KERNELS)")
    print(f"numba cache: {cache_dir}")
    print(f"glibc keeps freed memory for reuse (MINIMRCNN_KEEP_FREED_MEMORY): {config.freed_memory_kept()}")
    return 0


# ----------------------------------------------------------------------------- helpers
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def _coco_dir(path: str | None) -> str | None:
    if path is None:
        return None
    if not os.path.isfile(os.path.join(path, "annotations.json")) or not os.path.isdir(os.path.join(path, "images")):
        raise CLIError(f"{path} is not a COCO-format folder: expected {path}/annotations.json and {path}/images/")
    return path


def _load_model(weights_path: str):
    """Build the shapes-preset model sized by the weights file and load it."""
    import numpy as np

    from minimrcnn.models import maskrcnn_shapes
    from minimrcnn.models.weights import load_weights

    if not os.path.isfile(weights_path):
        raise CLIError(f"weights file not found: {weights_path}")
    with np.load(weights_path, allow_pickle=False) as data:
        key = "roi_heads.box_predictor.cls_score.weight"
        if key not in data.files:
            raise CLIError(f"{weights_path} has no {key}: not minimrcnn/torchvision Mask R-CNN weights")
        num_classes = int(data[key].shape[0])
    model = maskrcnn_shapes(num_classes=num_classes)
    load_weights(model, weights_path)
    return model.eval()


def _print_stats(title: str, stats: dict) -> None:
    print(f"{title}: " + "  ".join(f"{k} {v:.3f}" for k, v in stats.items()))


# ----------------------------------------------------------------------------- train
def cmd_train(args) -> int:
    from minimrcnn.models.weights import save_weights
    from minimrcnn.train.config import TrainConfig
    from minimrcnn.train.evaluate import predict_dataset, validation_dataset
    from minimrcnn.train.trainer import NonFiniteLossError, Trainer
    from minimrcnn.viz.draw import save_prediction_grid, save_training_curves

    config = TrainConfig(preset=args.preset, batch_size=args.batch_size, seed=args.seed,
                         coco=_coco_dir(args.coco), val_coco=_coco_dir(args.val_coco))
    if args.quick:
        config.iters, config.num_val_images = 300, 50
    if args.iters is not None:
        config.iters = args.iters
    if args.lr is not None:
        config.lr = args.lr
    if args.eval_every is not None:
        config.eval_every = args.eval_every
    if args.num_val_images is not None:
        config.num_val_images = args.num_val_images
    out = args.out
    if os.path.exists(os.path.join(out, "checkpoint.npz")) and not args.resume:
        raise CLIError(f"{out} already holds a run (checkpoint.npz): pass --resume to continue it, "
                       "or choose another --out")
    trainer = Trainer(config, out, progress=not args.no_progress)
    if args.resume:
        if not os.path.exists(trainer.checkpoint_path):
            raise CLIError(f"--resume: no checkpoint at {trainer.checkpoint_path}")
        trainer.resume()
        print(f"resumed from {trainer.checkpoint_path} at iteration {trainer.iteration}")
    start = time.perf_counter()
    try:
        trainer.run()
    except NonFiniteLossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    train_seconds = time.perf_counter() - start
    model_path = os.path.join(out, "model.npz")
    save_weights(trainer.model, model_path)

    val = validation_dataset(config, config.num_val_images)
    t0 = time.perf_counter()
    stats = trainer.evaluate(config.num_val_images)
    eval_seconds = time.perf_counter() - t0
    trainer._log({"iter": trainer.iteration, "train_seconds": round(trainer.train_seconds, 2), "eval": stats})
    images, outputs = predict_dataset(trainer.model, _Subset(val, 8))
    class_names = getattr(val, "class_names", None)
    save_prediction_grid(os.path.join(out, "predictions.png"), images, outputs, class_names)
    save_training_curves(os.path.join(out, "curves.png"), trainer.metrics_path)
    summary = {"iterations": trainer.iteration, "train_seconds": round(train_seconds, 1),
               "eval_seconds": round(eval_seconds, 2), "num_val_images": len(val), **stats,
               "config": config.to_dict()}
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"trained {trainer.iteration} iterations in {train_seconds / 60:.1f} min")
    _print_stats(f"bbox ({len(val)} held-out images)", stats["bbox"])
    _print_stats(f"segm ({len(val)} held-out images)", stats["segm"])
    for name in ("model.npz", "checkpoint.npz", "metrics.jsonl", "curves.png", "predictions.png", "summary.json"):
        print(f"  {os.path.join(out, name)}")
    return 0


class _Subset:
    def __init__(self, dataset, n):
        self.dataset, self.n = dataset, min(n, len(dataset))

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.dataset[i]


# ----------------------------------------------------------------------------- eval
def cmd_eval(args) -> int:
    from minimrcnn.train.config import TrainConfig
    from minimrcnn.train.evaluate import evaluate_model, validation_dataset

    model = _load_model(args.weights)
    config = TrainConfig(val_coco=_coco_dir(args.coco))
    dataset = validation_dataset(config, args.num_images)
    stats = evaluate_model(model, dataset, progress=not args.no_progress)
    _print_stats("bbox", stats["bbox"])
    _print_stats("segm", stats["segm"])
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.weights)), "eval.json")
    with open(out, "w") as f:
        json.dump(stats, f, indent=2)
    print(f"  {out}")
    return 0


# ----------------------------------------------------------------------------- predict
def cmd_predict(args) -> int:
    import numpy as np
    from PIL import Image

    from minimrcnn.viz.draw import save_prediction_grid

    model = _load_model(args.weights)
    # results JSON: every detection above 0.05, as torchvision; overlays: only confident ones
    threshold = args.score_threshold if args.score_threshold is not None else (0.05 if args.coco else 0.5)
    model.roi_heads.score_thresh = threshold
    if args.coco:
        from minimrcnn.data.coco import CocoDataset
        from minimrcnn.eval.results import results_from_predictions
        from minimrcnn.train.evaluate import category_ids_of, predict_dataset

        folder = _coco_dir(args.coco)
        dataset = CocoDataset(os.path.join(folder, "images"), os.path.join(folder, "annotations.json"))
        _, outputs = predict_dataset(model, dataset, progress=not args.no_progress)
        label_to_category = {label: c for label, c in enumerate(category_ids_of(dataset), start=1)}
        results = results_from_predictions(outputs, list(dataset.image_ids), label_to_category)
        out = args.out or "results.json"
        with open(out, "w") as f:
            json.dump(results, f)
        print(f"{len(results)} detections -> {out}")
        return 0
    if not args.images:
        raise CLIError("predict: give IMAGE paths or --coco DIR")
    out_dir = args.out or "predictions"
    os.makedirs(out_dir, exist_ok=True)
    for path in args.images:
        try:
            image = np.asarray(Image.open(path).convert("RGB"))
        except Exception as exc:
            raise CLIError(f"cannot read image {path}: {exc}")
        output = model([np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / 255.0])[0]
        target = os.path.join(out_dir, os.path.splitext(os.path.basename(path))[0] + "_pred.png")
        from minimrcnn.data.shapes import CLASS_NAMES

        names = CLASS_NAMES if len(CLASS_NAMES) == model.num_classes else None
        save_prediction_grid(target, [image], [output], names, columns=1, score_threshold=threshold)
        shown = int((output["scores"] >= threshold).sum())
        print(f"{path}: {shown} instance{'' if shown == 1 else 's'} drawn (score >= {threshold:g}) -> {target}")
    return 0


# ----------------------------------------------------------------------------- shapes / convert
def cmd_shapes_export(args) -> int:
    from minimrcnn.data.coco import export_shapes_coco

    path = export_shapes_coco(args.dir, num_images=args.num_images, seed=args.seed, image_size=args.image_size)
    print(f"{args.num_images} images -> {os.path.join(args.dir, 'images')}, annotations -> {path}")
    return 0


def cmd_convert(args) -> int:
    from minimrcnn.models import weights

    src, dst = args.input, args.output
    if not os.path.isfile(src):
        raise CLIError(f"input not found: {src}")
    try:
        if src.endswith(".npz"):
            weights.convert_npz_to_torch(src, dst)
        else:
            weights.convert_torch_to_npz(src, dst)
    except ImportError as exc:
        raise CLIError(str(exc))
    print(f"{src} -> {dst}")
    return 0


# ----------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minimrcnn",
        description="Mask R-CNN from scratch in NumPy + Numba: train, evaluate and predict on a CPU.",
    )
    parser.add_argument("--version", action="version", version=f"minimrcnn {minimrcnn.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("info", help="versions, Numba threading and cache set-up")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("train", help="train Mask R-CNN (default: tiny shapes generated on the fly)",
                       description="Train, then evaluate on held-out images and draw predictions.")
    p.add_argument("--preset", default="shapes", choices=["shapes"], help="model preset (default: shapes)")
    p.add_argument("--iters", type=_positive_int, help="SGD iterations (default: the recipe's)")
    p.add_argument("--batch-size", type=_positive_int, default=4, help="images per iteration (default: 4)")
    p.add_argument("--lr", type=_positive_float, help="base learning rate (default: 0.02)")
    p.add_argument("--coco", metavar="DIR", help="train on a COCO-format folder (DIR/images, DIR/annotations.json)")
    p.add_argument("--val-coco", metavar="DIR", help="evaluate on a COCO-format folder")
    p.add_argument("--num-val-images", type=_positive_int, help="generated held-out images (default: 200)")
    p.add_argument("--eval-every", type=int, help="evaluate every N iterations (default: only at the end)")
    p.add_argument("--out", default="runs/shapes", metavar="RUN_DIR", help="output folder (default: runs/shapes)")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its checkpoint")
    p.add_argument("--seed", type=int, default=0, help="seed of everything random (default: 0)")
    p.add_argument("--quick", action="store_true", help="a short run: 300 iterations (~2.5 min on 2 cores), 50 validation images")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="COCO AP (bbox and segm) of a weights file")
    p.add_argument("--weights", required=True, help="model.npz written by train")
    p.add_argument("--coco", metavar="DIR", help="COCO-format folder (default: generated held-out shapes)")
    p.add_argument("--num-images", type=_positive_int, default=200, help="generated images (default: 200)")
    p.add_argument("--out", help="stats JSON (default: eval.json beside the weights)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="draw predictions on images, or write COCO results JSON")
    p.add_argument("--weights", required=True, help="model.npz written by train")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files")
    p.add_argument("--coco", metavar="DIR", help="predict a COCO folder into one results JSON")
    p.add_argument("--out", help="output folder for overlays / results JSON path")
    p.add_argument("--score-threshold", type=float, default=None,
                   help="keep detections scoring above this (default: 0.05 for --coco results, as torchvision; "
                        "0.5 for overlays)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("shapes", help="the tiny-shapes data set")
    shapes_sub = p.add_subparsers(dest="shapes_command", metavar="SUBCOMMAND", required=True)
    e = shapes_sub.add_parser("export", help="write generated shapes as a COCO-format folder")
    e.add_argument("dir", help="output folder (DIR/images/*.png, DIR/annotations.json)")
    e.add_argument("--num-images", type=_positive_int, default=100, help="number of images (default: 100)")
    e.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    e.add_argument("--image-size", type=_positive_int, default=128, help="image side in pixels (default: 128)")
    e.set_defaults(func=cmd_shapes_export)

    p = sub.add_parser("convert", help="convert weights between torchvision .pth and minimrcnn .npz")
    p.add_argument("input", help="in.pth (torchvision state_dict) or in.npz")
    p.add_argument("output", help="out.npz or out.pth")
    p.set_defaults(func=cmd_convert)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from minimrcnn import runtime as config

    config.keep_freed_memory()  # fewer page faults per step; this process only (config docstring)
    try:
        return int(args.func(args) or 0)
    except CLIError as exc:
        print(f"minimrcnn {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
