"""Detection ops with torchvision.ops names and semantics (boxes are xyxy float pixels)."""

from minimrcnn.ops.anchors import AnchorGenerator
from minimrcnn.ops.box_coder import BoxCoder
from minimrcnn.ops.boxes import (
    box_area, box_convert, box_iou, clip_boxes_to_image, masks_to_boxes, remove_small_boxes,
)
from minimrcnn.ops.crop_and_resize import crop_and_resize
from minimrcnn.ops.masks import paste_masks_in_image, project_masks_on_boxes
from minimrcnn.ops.matcher import Matcher
from minimrcnn.ops.nms import batched_nms, nms
from minimrcnn.ops.poolers import LevelMapper, MultiScaleRoIAlign
from minimrcnn.ops.roi_align import roi_align, roi_align_backward, roi_align_forward
from minimrcnn.ops.roi_pool import roi_pool, roi_pool_backward, roi_pool_forward
from minimrcnn.ops.sampler import BalancedPositiveNegativeSampler

__all__ = [name for name in dir() if not name.startswith("_")]
