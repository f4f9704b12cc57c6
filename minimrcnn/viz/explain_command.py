"""``minimrcnn explain``: write the explain page (viz/explain_page.py) for one image.

    minimrcnn explain photo.jpg --weights model.npz --out explain.html
    minimrcnn explain --shapes-index 3                  # a held-out shapes image, with its ground truth
    minimrcnn explain --coco DIR --image-id 7           # an image of a COCO folder, with its ground truth

Without ``--weights`` it uses ``runs/shapes/model.npz`` (what ``minimrcnn train`` writes).
"""

from __future__ import annotations

import os

import numpy as np

from minimrcnn.data.images import read_image

DEFAULT_RUN_WEIGHTS = os.path.join("runs", "shapes", "model.npz")
PRESETS = ("shapes", "resnet50_fpn")


def add_explain_parser(sub, common) -> None:
    """Register ``explain`` on the CLI's subparsers (called by cli.build_parser)."""
    from minimrcnn.cli import _non_negative_int, _probability

    p = sub.add_parser("explain", parents=[common], help="one forward pass of an image as a single offline HTML page",
                       description="Run the model once on one image, recording every stage (model.inspect), and "
                                   "write one self-contained HTML page to click through: pipeline, feature maps, "
                                   "objectness, proposals, levels, RoIAlign grids, class probabilities, masks. "
                                   "The page needs no network and no install; open it in any browser.")
    p.add_argument("image", nargs="?", metavar="IMAGE", help="an image file (RGB, L or RGBA)")
    p.add_argument("--weights", help=f"model.npz (default: {DEFAULT_RUN_WEIGHTS}, the run of `minimrcnn train`)")
    p.add_argument("--preset", choices=PRESETS, default="shapes", help="the network the weights are for (default: shapes)")
    p.add_argument("--shapes-index", type=_non_negative_int, metavar="N",
                   help="explain held-out shapes image N (the set `minimrcnn eval` uses), with its ground truth")
    p.add_argument("--coco", metavar="DIR", help="take the image from a COCO-format folder, with its ground truth")
    p.add_argument("--image-id", type=int, metavar="N", help="with --coco: the image's id (default: the first)")
    p.add_argument("--out", default="explain.html", help="the HTML file to write (default: explain.html)")
    p.add_argument("--score-threshold", type=_probability, default=0.5,
                   help="where the page's score slider starts (default: 0.5)")
    p.set_defaults(func=cmd_explain)


def _load(weights: str, preset: str):
    """The preset's model with ``weights`` loaded; a file of the other preset is one short error."""
    from minimrcnn.cli import CLIError
    from minimrcnn.models import maskrcnn_resnet50_fpn, maskrcnn_shapes
    from minimrcnn.models.weights import load_weights, read_weights, remap_legacy_keys

    state = remap_legacy_keys(read_weights(weights))   # names the file if missing, truncated or pickled
    key = "roi_heads.box_predictor.cls_score.weight"
    if key not in state or state[key].ndim != 2:
        raise CLIError(f"{weights} has no 2-D {key}: not minimrcnn/torchvision Mask R-CNN weights")
    build = maskrcnn_shapes if preset == "shapes" else maskrcnn_resnet50_fpn
    model = build(num_classes=int(state[key].shape[0]))
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    reshaped = [k for k in own if k in state and tuple(np.shape(state[k])) != tuple(np.shape(own[k]))]
    if missing or reshaped:
        other = "resnet50_fpn" if preset == "shapes" else "shapes"
        example = (f"{reshaped[0]} is {tuple(np.shape(state[reshaped[0]]))}, the preset wants "
                   f"{tuple(np.shape(own[reshaped[0]]))}" if reshaped else f"no {missing[0]}")
        raise CLIError(f"--weights {weights} does not fit --preset {preset}: {len(missing)} keys missing, "
                       f"{len(reshaped)} of another shape (e.g. {example}); try --preset {other}")
    load_weights(model, weights)             # any remaining problem: ValueError naming the file and keys
    return model.eval()


def _input(args):
    """(image uint8[H, W, 3], target or None, class names or None, description) from the arguments."""

    from minimrcnn.cli import CLIError, _coco_dir

    sources = [name for name, given in (("IMAGE", args.image is not None), ("--shapes-index", args.shapes_index is not None),
                                        ("--coco", args.coco is not None)) if given]
    if len(sources) != 1:
        raise CLIError("explain: give exactly one of IMAGE, --shapes-index N or --coco DIR"
                       + (f", got {' and '.join(sources)}" if sources else ""))
    if args.image_id is not None and args.coco is None:
        raise CLIError("explain: --image-id needs --coco DIR")
    if args.image is not None:
        try:
            image = read_image(args.image)              # uint8[H, W, 3], upright; modes as data/images.py says
        except ValueError as exc:
            raise CLIError(str(exc))
        return image, None, None, args.image
    if args.shapes_index is not None:
        from minimrcnn.data.shapes import CLASS_NAMES, ShapesDataset
        from minimrcnn.train.config import TrainConfig

        dataset = ShapesDataset(args.shapes_index + 1, seed=TrainConfig.val_seed, image_size=TrainConfig.image_size)
        image, target = dataset[args.shapes_index]
        return image, target, CLASS_NAMES, f"held-out shapes image {args.shapes_index}"
    from minimrcnn.data.coco import CocoDataset

    folder = _coco_dir(args.coco)
    dataset = CocoDataset(os.path.join(folder, "images"), os.path.join(folder, "annotations.json"))
    ids = list(dataset.image_ids)
    if not ids:
        raise CLIError(f"--coco {folder}: the folder has no images")
    image_id = ids[0] if args.image_id is None else args.image_id
    if image_id not in ids:
        raise CLIError(f"--image-id {image_id}: not an image id of {folder}/annotations.json "
                       f"(it has {len(ids)} images, ids {ids[0]}..{ids[-1]})")
    image, target = dataset[ids.index(image_id)]
    return image, target, dataset.class_names, f"{folder} image id {image_id}"


def cmd_explain(args) -> int:
    from minimrcnn.cli import CLIError
    from minimrcnn.viz.explain_page import explain, write_explain_page

    if os.path.isdir(args.out):
        raise CLIError(f"--out {args.out} is a folder: give the path of the HTML file to write")
    weights = args.weights
    if weights is None:
        if not os.path.isfile(DEFAULT_RUN_WEIGHTS):
            raise CLIError(f"explain: no --weights given and no {DEFAULT_RUN_WEIGHTS} here: train one with "
                           "`minimrcnn train` (about 10 min on 2 cores) or pass --weights model.npz")
        weights = DEFAULT_RUN_WEIGHTS
    image, target, class_names, what = _input(args)      # bad input fails before the model loads
    model = _load(weights, args.preset)
    if class_names is None and args.preset == "shapes":
        from minimrcnn.data.shapes import CLASS_NAMES

        class_names = CLASS_NAMES if len(CLASS_NAMES) == model.num_classes else None
    elif class_names is not None and len(class_names) != model.num_classes:
        raise CLIError(f"{what} has {len(class_names)} classes (with background) but {weights} predicts "
                       f"{model.num_classes}: a model trained on another label set")
    page = explain(model, image, target, class_names=class_names, score_threshold=args.score_threshold,
                   title=f"minimrcnn explain: {os.path.basename(what)}")
    write_explain_page(args.out, page)
    print(f"{what} -> {args.out} ({len(page.encode()) / 1e6:.1f} MB); open it in a browser: "
          f"file://{os.path.abspath(args.out)}")
    return 0


__all__ = ["add_explain_parser", "cmd_explain"]
