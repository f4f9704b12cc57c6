"""Detection ops with torchvision.ops names and semantics (boxes are xyxy float pixels).

Every name this package shares with ``torchvision.ops`` is what torchvision's is: a
function, a class or a module. As in torchvision, the four functions named like their
module shadow it, so ``ops.nms(boxes, scores, 0.7)`` and ``ops.roi_align(x, rois, 7)``
work as they do there::

    from minimrcnn import ops
    keep = ops.nms(boxes, scores, 0.7)          # the function, defined in minimrcnn/ops/nms.py

The file behind a function is named by its ``__module__`` (``ops.nms.__module__ ==
"minimrcnn.ops.nms"``); ``importlib.import_module("minimrcnn.ops.nms")`` and ``from
minimrcnn.ops.nms import nms_reference`` reach the module itself.
"""

from minimrcnn.ops.anchors import AnchorGenerator
from minimrcnn.ops.box_coder import BoxCoder
from minimrcnn.ops.boxes import (
    box_area, box_convert, box_iou, clip_boxes_to_image, masks_to_boxes, remove_small_boxes,
)
from minimrcnn.ops.masks import paste_masks_in_image, project_masks_on_boxes
from minimrcnn.ops.matcher import Matcher
from minimrcnn.ops.nms import batched_nms
from minimrcnn.ops.poolers import LevelMapper, MultiScaleRoIAlign
from minimrcnn.ops.roi_align import roi_align_backward, roi_align_forward
from minimrcnn.ops.roi_pool import roi_pool_backward, roi_pool_forward
from minimrcnn.ops.sampler import BalancedPositiveNegativeSampler

# Last, after every submodule is loaded (loading a submodule binds its module to this
# package's attribute of the same name): the functions shadow their modules, as in torchvision.
from minimrcnn.ops.crop_and_resize import crop_and_resize  # noqa: E402
from minimrcnn.ops.nms import nms  # noqa: E402
from minimrcnn.ops.roi_align import roi_align  # noqa: E402
from minimrcnn.ops.roi_pool import roi_pool  # noqa: E402

__all__ = [
    "AnchorGenerator", "BalancedPositiveNegativeSampler", "BoxCoder", "LevelMapper", "Matcher",
    "MultiScaleRoIAlign", "batched_nms", "box_area", "box_convert", "box_iou", "clip_boxes_to_image",
    "crop_and_resize", "masks_to_boxes", "nms", "paste_masks_in_image", "project_masks_on_boxes",
    "remove_small_boxes", "roi_align", "roi_align_backward", "roi_align_forward", "roi_pool",
    "roi_pool_backward", "roi_pool_forward",
]
