"""minimrcnn.eval exports its public functions at the package level."""

import minimrcnn.eval as package
from minimrcnn.eval import coco_eval, evaluate_coco, per_image_ap, results, results_from_predictions, voc


def test_package_exports_the_evaluation_functions():
    assert evaluate_coco is coco_eval.evaluate_coco
    assert results_from_predictions is results.results_from_predictions
    assert per_image_ap is voc.per_image_ap
    for name in package.__all__:
        assert callable(getattr(package, name)), name
