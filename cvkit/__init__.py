"""cvkit: the operators of object detection and segmentation, written from scratch and checked
against torchvision, for the notebooks in ``notebooks/``.

Operators are importable from here (``cvkit.nms``, ``cvkit.roi_align``, ``cvkit.deform_conv2d``, ...).
The models and data of a topic stay in their own namespace: ``cvkit.detection`` (a tiny Faster R-CNN),
``cvkit.segmentation`` (FCN and U-Net), ``cvkit.datasets``, ``cvkit.train``, ``cvkit.viz``,
``cvkit.widgets`` and ``cvkit.grading``.
"""
from cvkit import config
from cvkit.boxes import (BoxCoder, box_area, box_convert, box_iou, clip_boxes_to_image, decode_boxes,
                         encode_boxes, generalized_box_iou, remove_small_boxes, smooth_l1_loss)
from cvkit.deform import (DeformConv2d, DeformRoIPool, deform_conv2d, deform_conv2d_reference, deform_roi_pool,
                          deform_roi_pool_reference)
from cvkit.metrics import (average_precision, coco_map, coco_metrics, interpolated_precision, mabo,
                           match_detections_coco, match_detections_voc, mean_average_precision, precision_envelope,
                           precision_recall_curve, proposal_recall)
from cvkit.nms import batched_nms, nms, nms_reference, soft_nms, soft_nms_decay
from cvkit.receptive_field import empirical_receptive_field, receptive_field
from cvkit.roi import (RoIAlign, RoIPool, SpatialPyramidPool, bilinear_interpolate, convert_boxes_to_roi_format,
                       roi_align, roi_align_reference, roi_pool, roi_pool_reference, spatial_pyramid_pool)
from cvkit.selective_search import selective_search
from cvkit.upsampling import (ConvTranspose2d, MaxUnpool2d, bed_of_nails_upsample, bilinear_upsample, col2im,
                              conv2d_as_matmul, conv_as_matrix, conv_transpose2d, conv_transpose2d_as_matmul,
                              conv_transpose2d_reference, im2col, max_unpool2d, nearest_upsample)

__version__ = "0.1.0"

__all__ = [
    "config",
    # boxes
    "BoxCoder", "box_area", "box_convert", "box_iou", "clip_boxes_to_image", "decode_boxes",
    "encode_boxes", "generalized_box_iou", "remove_small_boxes", "smooth_l1_loss",
    # NMS
    "batched_nms", "nms", "nms_reference", "soft_nms", "soft_nms_decay",
    # metrics
    "average_precision", "coco_map", "coco_metrics", "match_detections_coco", "match_detections_voc",
    "mean_average_precision", "precision_recall_curve", "precision_envelope", "interpolated_precision",
    "proposal_recall", "mabo",
    # proposals
    "selective_search",
    # RoI operators
    "convert_boxes_to_roi_format", "bilinear_interpolate", "roi_align", "roi_align_reference", "RoIAlign",
    "roi_pool", "roi_pool_reference", "RoIPool", "spatial_pyramid_pool", "SpatialPyramidPool",
    # upsampling and transposed convolution
    "nearest_upsample", "bed_of_nails_upsample", "max_unpool2d", "MaxUnpool2d", "bilinear_upsample",
    "im2col", "col2im", "conv_as_matrix", "conv2d_as_matmul", "conv_transpose2d_as_matmul",
    "conv_transpose2d", "conv_transpose2d_reference", "ConvTranspose2d",
    # receptive fields
    "receptive_field", "empirical_receptive_field",
    # deformable convolution
    "deform_conv2d", "deform_conv2d_reference", "DeformConv2d", "deform_roi_pool", "deform_roi_pool_reference",
    "DeformRoIPool",
]
