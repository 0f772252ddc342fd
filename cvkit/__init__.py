"""cvkit: the operators of object detection and segmentation, written from scratch and checked
against torchvision, for the notebooks in ``notebooks/``."""
from cvkit import config
from cvkit.boxes import (BoxCoder, box_area, box_convert, box_iou, clip_boxes_to_image, decode_boxes,
                         encode_boxes, generalized_box_iou, remove_small_boxes, smooth_l1_loss)
from cvkit.metrics import (average_precision, coco_map, coco_metrics, interpolated_precision, match_detections_coco,
                           match_detections_voc, mean_average_precision, precision_envelope, precision_recall_curve)
from cvkit.nms import batched_nms, nms, nms_reference, soft_nms, soft_nms_decay

__version__ = "0.1.0"

__all__ = [
    "config",
    "BoxCoder", "box_area", "box_convert", "box_iou", "clip_boxes_to_image", "decode_boxes",
    "encode_boxes", "generalized_box_iou", "remove_small_boxes", "smooth_l1_loss",
    "batched_nms", "nms", "nms_reference", "soft_nms", "soft_nms_decay",
    "average_precision", "coco_map", "coco_metrics", "match_detections_coco", "match_detections_voc",
    "mean_average_precision", "precision_recall_curve", "precision_envelope", "interpolated_precision",
]
