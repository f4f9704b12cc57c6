"""The ``minimrcnn`` command line: ``minimrcnn --help`` lists the subcommands."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys

import minimrcnn
from minimrcnn.train.config import QUICK, TrainConfig


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


# ----------------------------------------------------------------------------- info
def cmd_info(args) -> int:
    """Print versions, Numba's threading set-up, the JIT switch and the cache location."""
    import numba
    import numpy as np

    from minimrcnn import runtime

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
    print(f"numba JIT disabled (NUMBA_DISABLE_JIT): {runtime.jit_disabled()}")
    print(f"kernels: {'reference twins' if runtime.reference_kernels_enabled() else 'numba'} (MINIMRCNN_KERNELS)")
    print(f"numba cache: {cache_dir}")
    print(f"glibc keeps freed memory for reuse (MINIMRCNN_KEEP_FREED_MEMORY): {runtime.freed_memory_kept()}")
    return 0


# ----------------------------------------------------------------------------- helpers
def _int_at_least(minimum: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value
    return parse


_positive_int = _int_at_least(1, "a positive integer")
_non_negative_int = _int_at_least(0, "an integer >= 0")


def _number(what: str, ok):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        if not ok(value):   # NaN fails every comparison
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value
    return parse


_probability = _number("a number in [0, 1]", lambda v: 0 <= v <= 1)
_positive_float = _number("a number > 0", lambda v: v > 0)


def _coco_dir(path: str | None, flag: str = "--coco") -> str | None:
    if path is None:
        return None
    from minimrcnn.data.coco import coco_folder_paths   # the layout's one home

    images_dir, annotations_json = coco_folder_paths(path)
    if not os.path.isfile(annotations_json) or not os.path.isdir(images_dir):
        raise CLIError(f"{flag} {path} is not a COCO-format folder: expected {annotations_json} "
                       f"and {images_dir}/")
    return path


def _load_model(weights_path: str):
    """Build the shapes-preset model sized by the weights file and load it."""
    from minimrcnn.models import maskrcnn_shapes
    from minimrcnn.models.weights import load_weights, read_weights

    state = read_weights(weights_path)       # names the file if missing, truncated, corrupt or pickled
    key = "roi_heads.box_predictor.cls_score.weight"
    if key not in state or state[key].ndim != 2:
        raise CLIError(f"{weights_path} has no 2-D {key}: not minimrcnn/torchvision Mask R-CNN weights")
    if state[key].shape[0] < 2:
        raise CLIError(f"{weights_path}: {key} has {state[key].shape[0]} rows, so the weights know no class but "
                       "background (a Mask R-CNN has at least 2: background and one class)")
    model = maskrcnn_shapes(num_classes=int(state[key].shape[0]))
    load_weights(model, weights_path)        # ValueError naming the file and every bad key
    return model.eval()


def _print_stats(title: str, stats: dict) -> None:
    print(f"{title}: " + "  ".join(f"{k} {v:.3f}" for k, v in stats.items()))


def _write_json(path: str, data, indent: int | None = 2) -> None:
    from minimrcnn.io import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=indent))


# ----------------------------------------------------------------------------- train / eval / predict
def cmd_train(args) -> int:
    """Flags -> TrainConfig -> ``minimrcnn.train.train``; prints the resume command when stopped."""
    from minimrcnn.train import config_for_resume, train
    from minimrcnn.train.trainer import TrainingInterrupted

    given = {f.name: getattr(args, f.name) for f in _config_fields() if getattr(args, f.name) is not None}
    if "milestones" in given:
        given["milestones"] = tuple(given["milestones"])
    if args.quick:
        for name, value in QUICK.items():
            given.setdefault(name, value)
    if args.extend and "iters" not in given:
        raise CLIError("--extend needs --iters N: the new, larger number of iterations")
    _coco_dir(given.get("coco"), "--coco")
    _coco_dir(given.get("val_coco"), "--val-coco")
    resume = args.resume or args.extend
    config = config_for_resume(args.out, **given) if resume else TrainConfig(**given)
    try:
        config.validate()
    except ValueError as exc:     # name the flag, not the field
        message = str(exc)
        for f in _config_fields():
            message = message.replace(f"TrainConfig.{f.name} ", f"{_flag(f)} ")
        raise CLIError(message) from None
    try:
        train(config, args.out, resume=resume, extend=args.extend, overwrite=args.overwrite,
              progress=not args.no_progress)
    except TrainingInterrupted as stop:
        print(f"minimrcnn train: {stop.describe(config.iters)}. Resume with:\n  {resume_command(args.out)}", file=sys.stderr)
        return 130
    return 0


def resume_command(out: str) -> str:
    return f"minimrcnn train --resume --out {shlex.quote(out)}"


def cmd_eval(args) -> int:
    from minimrcnn.train import report
    from minimrcnn.train.evaluate import evaluate_model, validation_dataset

    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.weights)), "eval.json")
    if os.path.isdir(out):
        raise CLIError(f"--out {out} is a folder: give the path of the stats JSON file")
    model = _load_model(args.weights)
    dataset = validation_dataset(TrainConfig(val_coco=_coco_dir(args.coco)), args.num_images)
    where = f"COCO folder {report.shown_path(args.coco)}" if args.coco else "generated held-out shapes"
    print(f"evaluating {report.shown_path(args.weights)} on {len(dataset)} images ({where})")
    stats = evaluate_model(model, dataset, progress=not args.no_progress, per_class=True)
    for line in report.stats_lines(stats, len(dataset)):
        print(line)
    print(f"per-class AP ({len(dataset)} images):")
    print(report.per_class_table(stats["per_class"]))
    _write_json(out, {**stats, "num_images": len(dataset)})
    print(f"  {report.shown_path(out)}")
    return 0


def cmd_predict(args) -> int:
    if not args.coco and not args.images:
        raise CLIError("predict: give IMAGE paths or --coco DIR")
    folder = _coco_dir(args.coco)
    model = _load_model(args.weights)
    # results JSON: every detection above 0.05, as torchvision; overlays: only confident ones
    threshold = args.score_threshold if args.score_threshold is not None else (0.05 if args.coco else 0.5)
    # overlays: the model keeps scores down to 0.05 so that the best one can be reported when none passes
    model.roi_heads.score_thresh = threshold if folder else min(threshold, 0.05)
    if folder:
        from minimrcnn.data.coco import CocoDataset
        from minimrcnn.eval.results import results_from_predictions
        from minimrcnn.data.datasets import category_ids_of
        from minimrcnn.train.evaluate import predict_dataset

        out = args.out or os.path.join("runs", "predict", "results.json")
        if os.path.isdir(out):
            raise CLIError(f"--out {out} is a folder: give the path of the results JSON file")
        dataset = CocoDataset.from_folder(folder)
        _, outputs = predict_dataset(model, dataset, progress=not args.no_progress)
        label_to_category = {label: c for label, c in enumerate(category_ids_of(dataset), start=1)}
        results = results_from_predictions(outputs, list(dataset.image_ids), label_to_category)
        _write_json(out, results, indent=None)
        print(f"{len(results)} detections -> {out}")
        return 0
    from minimrcnn.data.shapes import CLASS_NAMES
    from minimrcnn.predict_images import image_paths, predict_images

    out_dir = args.out or os.path.join("runs", "predict")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise CLIError(f"--out {out_dir} exists and is not a folder: overlays go into a folder")
    names = CLASS_NAMES if len(CLASS_NAMES) == model.num_classes else None
    summary = predict_images(model, image_paths(args.images), out_dir, threshold, names,
                             progress=not args.no_progress)
    print(f"{summary['detections']} detections -> {summary['detections_json']}")
    if summary["detections"] == 0:
        best = summary["best_score"]
        print(f"nothing scored >= --score-threshold {threshold:g}; " + (
            f"the model scored nothing above {min(threshold, 0.05):g}" if best is None else
            f"the best score seen was {best:.3f} ({summary['best_image']}): a lower --score-threshold shows it"))
    return 0


# ----------------------------------------------------------------------------- shapes / convert
def cmd_shapes_export(args) -> int:
    from minimrcnn.data.coco import coco_folder_paths, export_shapes_coco

    if args.layout == "torchvision-references":
        from minimrcnn.data.layouts import export_shapes_references

        train_dir, val_dir = export_shapes_references(args.dir, args.num_images, args.num_val_images, args.seed,
                                                      args.image_size)
        print(f"{args.num_images} + {args.num_val_images} images -> {train_dir}, {val_dir} "
              f"(torchvision references layout, polygon masks)")
        return 0
    # a non-empty DIR is refused unless --overwrite, which replaces DIR/images/ (stale images too)
    path = export_shapes_coco(args.dir, num_images=args.num_images, seed=args.seed, image_size=args.image_size,
                              overwrite=args.overwrite)
    print(f"{args.num_images} images -> {coco_folder_paths(args.dir)[0]}, annotations -> {path}")
    return 0


TORCH_SUFFIXES = (".pth", ".pt")


def cmd_convert(args) -> int:
    from minimrcnn import interop
    from minimrcnn.models import weights

    src, dst = args.input, args.output
    if not os.path.isfile(src):
        raise CLIError(f"input not found: {src}")
    to_torch = src.endswith(".npz")
    wanted = "a torch state_dict name ending in .pth or .pt" if to_torch else "a minimrcnn weights name ending in .npz"
    if not dst.endswith(TORCH_SUFFIXES if to_torch else (".npz",)):
        raise CLIError(f"the output {dst} must be {wanted}, since the input {src} is "
                       f"{'an .npz' if to_torch else 'read as a torch checkpoint (it does not end in .npz)'}; "
                       "convert goes .pth/.pt -> .npz or .npz -> .pth/.pt")
    if os.path.isdir(dst):
        raise CLIError(f"the output {dst} is a folder: give the path of the file to write")
    if args.for_references and not (src.endswith(".npz") and not dst.endswith(".npz")):
        raise CLIError(f"--for-references converts minimrcnn weights (.npz) to a .pth, got {src} -> {dst}")
    try:
        if args.for_references:
            done = interop.references_checkpoint(src, dst, lr=args.lr)
            print(f"{src} -> {dst}: the dict references/detection/train.py --resume reads (model, optimizer "
                  f"SGD lr {args.lr:g} over {done['trainable']} tensors, lr_scheduler MultiStepLR [16, 22], "
                  "epoch -1: training starts at epoch 0). --resume replaces train.py's --lr by this one; "
                  "see docs/graduate.md")
            return 0
        if src.endswith(".npz"):
            keys = weights.convert_npz_to_torch(src, dst)
            preset, kwargs = interop.preset_of_weights(weights.read_weights(src))
        else:
            keys = weights.convert_torch_to_npz(src, dst)
    except ImportError as exc:
        raise CLIError(str(exc))
    print(f"{src} -> {dst} ({len(keys)} tensors)")
    if src.endswith(".npz"):
        print("load it in torchvision with:")
        for line in interop.loading_lines(dst, preset, kwargs):
            print(f"    {line}")
    return 0


def cmd_import(args) -> int:
    from minimrcnn.data.importers import import_labelme, import_via

    categories = [c.strip() for c in args.categories.split(",")] if args.categories else None
    options = dict(categories=categories, val_fraction=args.val_fraction, seed=args.seed, layout=args.layout)
    if args.import_command == "labelme":
        summary = import_labelme(args.src, args.out, **options)
    else:
        summary = import_via(args.project, args.images, args.out, label_attribute=args.label_attribute, **options)
    suffix = "2017" if args.layout == "torchvision-references" else ""
    folders = ", ".join(f"{os.path.join(args.out, split + suffix)} ({n} images)" for split, n in summary["splits"].items())
    count = len(summary["categories"])
    print(f"{summary['instances']} instances of {count} categor{'y' if count == 1 else 'ies'} "
          f"({', '.join(summary['categories'])}) -> {folders}")
    return 0


# ----------------------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (no usage block): what is wrong, and where help is."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _config_fields():
    """The TrainConfig fields that are flags of ``minimrcnn train``, in declaration order."""
    return [f for f in dataclasses.fields(TrainConfig) if f.metadata["flag"]]


def _flag(field) -> str:
    return "--" + field.name.replace("_", "-")


def _field_parser(field):
    """argparse ``type=`` for one field: its type, then its range check (lists are checked whole later)."""
    kind, check = field.metadata["kind"], field.metadata["check"]
    per_item = isinstance(field.default, tuple)

    def parse(text: str):
        expected = check.expected if check and not per_item else f"a {'number' if kind is float else kind.__name__}"
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        if check is not None and not per_item and not check.ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value
    return parse


METAVARS = {int: "N", float: "X", str: "DIR"}
# The train flags that are not TrainConfig fields: where the run goes and how it starts.
RUN_FLAGS = ("--out", "--resume", "--extend", "--overwrite", "--quick", "--no-progress", "--debug")


def _train_parser(sub, common) -> None:
    p = sub.add_parser("train", parents=[common], help="train Mask R-CNN (default: tiny shapes generated on the fly)",
                       description="Train, evaluating a few times along the way, then evaluate on held-out images "
                                   "and draw predictions. Ctrl-C (or SIGTERM) finishes the current step, writes "
                                   "the checkpoint and prints the command that resumes. Every setting below is a "
                                   "field of minimrcnn.train.TrainConfig; `minimrcnn train` is "
                                   "minimrcnn.train.train(config, RUN_DIR).")
    for field in _config_fields():       # one flag per TrainConfig field: its help, its default, its range
        default = field.default
        shown = field.metadata["unset"] if default is None else " ".join(map(str, default)) if isinstance(
            default, tuple) else default
        p.add_argument(_flag(field), type=_field_parser(field), nargs="+" if isinstance(default, tuple) else None,
                       metavar="NAME" if field.name == "preset" else METAVARS[field.metadata["kind"]],
                       help=f"{field.metadata['help']} (default: {shown})")
    p.add_argument("--out", default="runs/shapes", metavar="RUN_DIR", help="output folder (default: runs/shapes)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in RUN_DIR from its checkpoint, with its settings")
    p.add_argument("--extend", action="store_true",
                   help="train a finished run further, to --iters N: its learning-rate milestones stay at "
                        "their iterations (implies --resume)")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in a RUN_DIR that holds a run (its run files are deleted)")
    p.add_argument("--quick", action="store_true",
                   help="a short run: " + ", ".join(f"{_flag(f)} {QUICK[f.name]}" for f in _config_fields()
                                                    if f.name in QUICK) + " (unless given)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


def _import_parser(sub, common) -> None:
    p = sub.add_parser("import", parents=[common], help="labelme or VIA annotations -> a COCO-format folder")
    tools = p.add_subparsers(dest="import_command", metavar="TOOL", required=True)
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--out", required=True, metavar="COCO_DIR",
                         help="new folder: COCO_DIR/images + annotations.json, or COCO_DIR/train and /val")
    options.add_argument("--categories", metavar="A,B,C", help="category names in id order (default: sorted labels)")
    options.add_argument("--val-fraction", type=_number("a number in [0, 1)", lambda v: 0 <= v < 1), default=0.0,
                         metavar="F", help="move this share of the images to COCO_DIR/val (default: 0, no split)")
    options.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the split (default: 0)")
    options.add_argument("--layout", choices=["minimrcnn", "torchvision-references"], default="minimrcnn",
                         help="torchvision-references: train2017/, val2017/, annotations/instances_*2017.json, "
                              "as torchvision's references/detection/train.py reads (needs --val-fraction)")
    t = tools.add_parser("labelme", parents=[common, options], help="labelme's per-image JSON files",
                         description="Import a folder of labelme JSON files (polygon, rectangle, circle shapes).")
    t.add_argument("src", help="folder of labelme .json files (or one file)")
    t = tools.add_parser("via", parents=[common, options], help="a VIA 2.x project or exported JSON",
                         description="Import a VGG Image Annotator project (polygon, rect, circle, ellipse regions).")
    t.add_argument("project", help="VIA project .json (or 'Export as JSON' output)")
    t.add_argument("--images", required=True, metavar="DIR", help="folder holding the project's images")
    t.add_argument("--label-attribute", metavar="NAME",
                   help="region attribute holding the class (default: the only one the regions carry)")
    p.set_defaults(func=cmd_import)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="minimrcnn",
        description="Mask R-CNN from scratch in NumPy + Numba: train, evaluate and predict on a CPU.",
    )
    parser.add_argument("--version", action="version", version=f"minimrcnn {minimrcnn.__version__}")
    parser.add_argument("--debug", action="store_true", help=f"show Python tracebacks (or set {DEBUG_ENV}=1)")
    # every subcommand takes --debug too; SUPPRESS keeps a top-level --debug from being reset
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help=f"show the Python traceback of an error (or set {DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("info", parents=[common], help="versions, Numba threading and cache set-up")
    p.set_defaults(func=cmd_info)

    _train_parser(sub, common)
    _import_parser(sub, common)

    p = sub.add_parser("eval", parents=[common], help="COCO AP (bbox and segm) of a weights file")
    p.add_argument("--weights", required=True, help="model.npz written by train")
    p.add_argument("--coco", metavar="DIR", help="COCO-format folder (default: generated held-out shapes)")
    p.add_argument("--num-images", type=_positive_int, default=200, help="generated images (default: 200)")
    p.add_argument("--out", help="stats JSON (default: eval.json beside the weights)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", parents=[common], help="draw predictions on images, or write COCO results JSON",
                       description="Predict images (files, folders, glob patterns): one overlay per image at its "
                                   "own resolution and detections.json (COCO results with file names) in --out; "
                                   "or a whole COCO folder (--coco) into one results JSON.")
    p.add_argument("--weights", required=True, help="model.npz written by train")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files, folders of images, or glob patterns")
    p.add_argument("--coco", metavar="DIR", help="predict a COCO folder into one results JSON")
    p.add_argument("--out", help="output folder for overlays and detections.json (default: runs/predict), "
                                 "or the results JSON path with --coco (default: runs/predict/results.json)")
    p.add_argument("--score-threshold", type=_probability, default=None,
                   help="keep detections scoring above this (default: 0.05 for --coco results, as torchvision; "
                        "0.5 for overlays)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_predict)

    from minimrcnn.viz.explain_command import add_explain_parser

    add_explain_parser(sub, common)

    p = sub.add_parser("shapes", parents=[common], help="the tiny-shapes data set")
    shapes_sub = p.add_subparsers(dest="shapes_command", metavar="SUBCOMMAND", required=True)
    e = shapes_sub.add_parser("export", parents=[common], help="write generated shapes as a COCO-format folder")
    e.add_argument("dir", help="output folder (DIR/images/*.png, DIR/annotations.json)")
    e.add_argument("--num-images", type=_positive_int, default=100, help="number of images (default: 100)")
    e.add_argument("--seed", type=_non_negative_int, default=0, help="seed (default: 0)")
    e.add_argument("--image-size", type=_int_at_least(32, "an integer >= 32"), default=128,
                   help="image side in pixels (default: 128)")
    e.add_argument("--overwrite", action="store_true",
                   help="DIR may hold files: replace DIR/images/ (stale images included) and DIR/annotations.json; "
                        "without it a non-empty DIR is refused")
    e.add_argument("--layout", choices=["minimrcnn", "torchvision-references"], default="minimrcnn",
                   help="torchvision-references: DIR/train2017, DIR/val2017, DIR/annotations/instances_*2017.json "
                        "with polygon masks, for torchvision's references/detection/train.py")
    e.add_argument("--num-val-images", type=_positive_int, default=32,
                   help="with --layout torchvision-references: images of val2017, generated with seed + 1 "
                        "(default: 32)")
    e.set_defaults(func=cmd_shapes_export)

    p = sub.add_parser("convert", parents=[common], help="convert weights between torchvision .pth and minimrcnn .npz")
    p.add_argument("input", help="in.pth (torchvision state_dict) or in.npz")
    p.add_argument("output", help="out.npz (from a torch file), or out.pth / out.pt (from an .npz); other names are refused")
    p.add_argument("--for-references", action="store_true",
                   help="write the checkpoint dict torchvision's references/detection/train.py --resume reads")
    p.add_argument("--lr", type=_positive_float, default=0.02,
                   help="with --for-references: the learning rate stored for train.py (default: 0.02, its "
                        "default for 8 GPUs x 2 images; scale it by GPUs / 8)")
    p.set_defaults(func=cmd_convert)
    return parser


# ----------------------------------------------------------------------------- errors
DEBUG_ENV = "MINIMRCNN_DEBUG"
# Errors a user can cause and fix: one paragraph, exit 2. Divergence: exit 1, its message says what to try.
USER_ERRORS = (CLIError, ValueError, TypeError, OSError)


def _error_paragraph(command: str, message: str) -> str:
    message = " ".join(str(message).split())      # one paragraph, whatever the message's own line breaks
    return f"minimrcnn {command}: error: {message} (Run with --debug or {DEBUG_ENV}=1 for the Python traceback.)"


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    debug = getattr(args, "debug", False) or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    from minimrcnn import runtime
    from minimrcnn.train.diverge import TrainingDiverged

    runtime.keep_freed_memory()  # fewer page faults per step; this process only (runtime docstring)
    command = " ".join([args.command] + [getattr(args, f"{args.command}_command", None) or ""]).strip()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"minimrcnn {command}: interrupted; no file was left half-written.", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        if isinstance(exc, TrainingDiverged):
            status, text = 1, str(exc)
        elif isinstance(exc, USER_ERRORS):
            status, text = 2, str(exc)
        else:
            status, text = 1, f"unexpected {type(exc).__name__}: {exc}. This is a bug in minimrcnn; please report it"
        if isinstance(exc, FileNotFoundError) and exc.filename and str(exc.filename) not in text:
            text = f"{text}: {exc.filename}"
        print(_error_paragraph(command, text), file=sys.stderr)
        return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
