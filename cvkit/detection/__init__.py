"""Faster R-CNN from cvkit's parts: anchors, matching, sampling, the RPN, the Fast R-CNN head, a tiny detector;
and Mask R-CNN's mask branch (its targets, loss, heads and pasting masks into images)."""
from cvkit.detection.anchors import AnchorGenerator, ImageList, cell_anchors, grid_anchors
from cvkit.detection.evaluation import predict, pycocotools_stats
from cvkit.detection.faster_rcnn import TinyBackbone, TinyFasterRCNN, collate, detection_loss
from cvkit.detection.mask_head import (MaskRCNNHeads, MaskRCNNPredictor, maskrcnn_inference, maskrcnn_loss,
                                       paste_masks_in_image, project_masks_on_boxes)
from cvkit.detection.matcher import Matcher
from cvkit.detection.roi_heads import FastRCNNHead, RoIHeads, RoIPooler, fastrcnn_loss
from cvkit.detection.rpn import RegionProposalNetwork, RPNHead, concat_box_prediction_layers, rpn_loss
from cvkit.detection.sampler import BalancedPositiveNegativeSampler

__all__ = ["AnchorGenerator", "ImageList", "cell_anchors", "grid_anchors", "Matcher",
           "BalancedPositiveNegativeSampler", "RPNHead", "RegionProposalNetwork", "rpn_loss",
           "concat_box_prediction_layers", "RoIPooler", "FastRCNNHead", "RoIHeads", "fastrcnn_loss",
           "TinyBackbone", "TinyFasterRCNN", "collate", "detection_loss", "predict", "pycocotools_stats",
           "project_masks_on_boxes", "maskrcnn_loss", "maskrcnn_inference", "paste_masks_in_image", "MaskRCNNHeads",
           "MaskRCNNPredictor"]
