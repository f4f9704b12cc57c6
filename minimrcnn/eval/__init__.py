"""Evaluation: COCO AP/AR (a re-reading of pycocotools), the results list it reads, VOC-style AP.

``from minimrcnn.eval import evaluate_coco, results_from_predictions``.
"""

from minimrcnn.eval.coco_eval import accumulate, evaluate_coco, evaluate_image, summarize
from minimrcnn.eval.results import results_from_predictions
from minimrcnn.eval.voc import per_image_ap

__all__ = ["accumulate", "evaluate_coco", "evaluate_image", "per_image_ap", "results_from_predictions",
           "summarize"]
