"""Detection ops with torchvision.ops names and semantics (boxes are xyxy float pixels).

``minimrcnn.ops.<name>`` is always the module ``minimrcnn/ops/<name>.py``: the package
does not re-export a function under its module's name, so ``import
minimrcnn.ops.roi_align as m`` gives the file a reader looks for. The four functions
named like their module are imported from it::

    from minimrcnn.ops.nms import nms
    from minimrcnn.ops.roi_align import roi_align
    from minimrcnn.ops.roi_pool import roi_pool
    from minimrcnn.ops.crop_and_resize import crop_and_resize

Everything else is also importable from the package, e.g. ``from minimrcnn.ops import
box_iou, batched_nms``.
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

__all__ = [
    "AnchorGenerator", "BalancedPositiveNegativeSampler", "BoxCoder", "LevelMapper", "Matcher",
    "MultiScaleRoIAlign", "batched_nms", "box_area", "box_convert", "box_iou", "clip_boxes_to_image",
    "masks_to_boxes", "paste_masks_in_image", "project_masks_on_boxes", "remove_small_boxes",
    "roi_align_backward", "roi_align_forward", "roi_pool_backward", "roi_pool_forward",
]
