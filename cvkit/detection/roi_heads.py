"""The Fast R-CNN head: RoI pooling, two fully connected layers, class scores and per-class box deltas.

Fast R-CNN (Girshick, ICCV 2015) pools each region of interest (RoI) out of the shared feature map
into a fixed H x W grid (RoI max pooling, section 2.1; or RoIAlign, He et al. 2017), passes it through
two fully connected layers, and predicts with two sibling layers:

- K + 1 class scores (softmax; class 0 is background),
- 4 box deltas for each of the K classes, ``(t_x, t_y, t_w, t_h)`` relative to the RoI, scaled by the
  weights (10, 10, 5, 5) as in torchvision and Detectron.

Training samples per image (section 2.3): up to 25 % foreground RoIs (IoU >= 0.5 with a ground-truth box,
labelled with its class), the rest background (IoU in [0.1, 0.5)); RoIs below 0.1 are not used, a
heuristic for hard examples. The ground-truth boxes are added to the RoIs, as torchvision does. The
multi-task loss (eq. 1) over the S sampled RoIs:

    L(p, u, t^u, v) = L_cls(p, u) + λ [u >= 1] Σ_{i ∈ {x, y, w, h}} smooth_L1(t^u_i - v_i)

with L_cls = -log p_u; as in torchvision, the classification term is averaged over the S RoIs, the
regression term summed over the foreground ones and divided by S, smooth L1 with beta = 1/9.

At test time: softmax, decode each class's box, clip, drop background, scores below 0.05 and tiny boxes,
per-class NMS at 0.5, keep the 100 best. Matches ``torchvision.models.detection.roi_heads.RoIHeads``
(box branch) except for the [0.1, 0.5) background band (torchvision takes [0, 0.5)).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cvkit.boxes import BoxCoder, box_iou, clip_boxes_to_image, remove_small_boxes, smooth_l1_loss
from cvkit.detection.matcher import Matcher
from cvkit.detection.sampler import BalancedPositiveNegativeSampler
from cvkit.nms import batched_nms
from cvkit.roi import roi_align, roi_pool

__all__ = ["RoIPooler", "FastRCNNHead", "RoIHeads", "fastrcnn_loss"]


class RoIPooler(nn.Module):
    """Pool every box of every image out of one feature map: ``Tensor[sum K_i, C, size, size]``.

    Args:
        output_size: side of the pooled grid (7 in Fast R-CNN).
        spatial_scale: feature-map pixels per image pixel, 1 / stride.
        method: ``'align'`` (RoIAlign, bilinear, no rounding) or ``'pool'`` (Fast R-CNN's RoI max pooling).
        sampling_ratio: RoIAlign's samples per bin side (``-1``: adaptive).
        aligned: RoIAlign's half-pixel shift (``True``: Detectron2; ``False``: torchvision's detectors).
    """

    def __init__(self, output_size: int, spatial_scale: float, method: str = "align", sampling_ratio: int = 2,
                 aligned: bool = True) -> None:
        super().__init__()
        if method not in ("align", "pool"):
            raise ValueError(f"method must be 'align' or 'pool', got {method!r}")
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.method = method
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, features: Tensor, boxes: list[Tensor]) -> Tensor:
        boxes = [b.to(features.dtype) for b in boxes]
        if self.method == "pool":
            return roi_pool(features, boxes, self.output_size, self.spatial_scale)
        return roi_align(features, boxes, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned)


class FastRCNNHead(nn.Module):
    """Two fully connected layers (``TwoMLPHead``), then class logits and per-class deltas (``FastRCNNPredictor``).

    Args:
        in_features: C * size * size of a pooled RoI.
        representation_size: width of the two hidden layers.
        num_classes: K + 1, background included.
    """

    def __init__(self, in_features: int, representation_size: int, num_classes: int) -> None:
        super().__init__()
        self.fc6 = nn.Linear(in_features, representation_size)
        self.fc7 = nn.Linear(representation_size, representation_size)
        self.cls_score = nn.Linear(representation_size, num_classes)
        self.bbox_pred = nn.Linear(representation_size, num_classes * 4)

    def forward(self, pooled: Tensor) -> tuple[Tensor, Tensor]:
        """``pooled [R, C, s, s]`` -> class logits ``[R, K + 1]`` and deltas ``[R, 4 (K + 1)]``."""
        x = F.relu(self.fc7(F.relu(self.fc6(pooled.flatten(1)))))
        return self.cls_score(x), self.bbox_pred(x)


def fastrcnn_loss(class_logits: Tensor, box_regression: Tensor, labels: list[Tensor],
                  regression_targets: list[Tensor], box_loss_weight: float = 1.0) -> tuple[Tensor, Tensor]:
    """Fast R-CNN's multi-task loss (eq. 1) over the sampled RoIs.

    Args:
        class_logits: ``Tensor[S, K + 1]``.
        box_regression: ``Tensor[S, 4 (K + 1)]``.
        labels: per image ``Tensor[S_i]`` int64, 0 for background.
        regression_targets: per image ``Tensor[S_i, 4]``, the encoded matched ground truth.
        box_loss_weight: λ.

    Returns:
        ``(classification_loss, box_loss)``: mean cross-entropy, and λ times the smooth-L1 (beta = 1/9) of the
        true class's deltas summed over foreground RoIs, divided by S.
    """
    labels_all = torch.cat(labels)
    targets_all = torch.cat(regression_targets)
    classification_loss = F.cross_entropy(class_logits, labels_all)
    foreground = torch.where(labels_all > 0)[0]
    per_class = box_regression.reshape(box_regression.shape[0], -1, 4)        # [S, K + 1, 4]
    box_loss = smooth_l1_loss(per_class[foreground, labels_all[foreground]], targets_all[foreground],
                              beta=1 / 9, reduction="sum") / max(labels_all.numel(), 1)
    return classification_loss, box_loss_weight * box_loss


class RoIHeads(nn.Module):
    """Sampling, pooling, head, loss and post-processing of the second stage.

    Args:
        box_roi_pool: pools RoIs out of the feature map (:class:`RoIPooler`).
        box_head: maps pooled RoIs to ``(class_logits, box_regression)`` (:class:`FastRCNNHead`).
        fg_iou_thresh: a RoI with IoU >= this (0.5) is foreground.
        bg_iou_low: background RoIs have IoU in ``[bg_iou_low, fg_iou_thresh)``; lower ones are not sampled
            (0.1 in Fast R-CNN; 0 uses every RoI, as torchvision).
        batch_size_per_image, positive_fraction: RoIs per image in the loss, and the largest foreground share.
        bbox_reg_weights: the box coder's weights (10, 10, 5, 5).
        score_thresh, nms_thresh, detections_per_img: post-processing.
        box_loss_weight: λ of the multi-task loss.
    """

    def __init__(self, box_roi_pool: nn.Module, box_head: nn.Module, fg_iou_thresh: float = 0.5,
                 bg_iou_low: float = 0.1, batch_size_per_image: int = 64, positive_fraction: float = 0.25,
                 bbox_reg_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0),
                 score_thresh: float = 0.05, nms_thresh: float = 0.5, detections_per_img: int = 100,
                 box_loss_weight: float = 1.0) -> None:
        super().__init__()
        self.box_roi_pool = box_roi_pool
        self.box_head = box_head
        # IoU >= fg: foreground; [bg_iou_low, fg): "between" = background; < bg_iou_low: "below" = not used
        self.proposal_matcher = Matcher(fg_iou_thresh, bg_iou_low, allow_low_quality_matches=False)
        self.fg_bg_sampler = BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction)
        self.box_coder = BoxCoder(bbox_reg_weights)
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img
        self.box_loss_weight = box_loss_weight

    def assign_targets_to_proposals(self, proposals: list[Tensor], gt_boxes: list[Tensor], gt_labels: list[Tensor]
                                    ) -> tuple[list[Tensor], list[Tensor]]:
        """Per image: the matched ground-truth index (clamped to >= 0) and the label (class, 0 background, -1 unused)."""
        matched_idxs, labels = [], []
        for proposals_i, boxes_i, labels_i in zip(proposals, gt_boxes, gt_labels):
            if boxes_i.numel() == 0:         # an image without objects: every RoI is background
                matched_idxs.append(torch.zeros(proposals_i.shape[0], dtype=torch.int64, device=proposals_i.device))
                labels.append(torch.zeros(proposals_i.shape[0], dtype=torch.int64, device=proposals_i.device))
                continue
            matched = self.proposal_matcher(box_iou(boxes_i, proposals_i))
            label = labels_i[matched.clamp(min=0)].to(torch.int64)
            label[matched == Matcher.BETWEEN_THRESHOLDS] = 0          # IoU in [bg_iou_low, fg): background
            label[matched == Matcher.BELOW_LOW_THRESHOLD] = -1        # IoU < bg_iou_low: not sampled
            matched_idxs.append(matched.clamp(min=0))
            labels.append(label)
        return matched_idxs, labels

    def select_training_samples(self, proposals: list[Tensor], targets: list[dict[str, Tensor]]
                                ) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """Add the ground truth to the RoIs, label them, sample, and encode targets.

        Returns:
            per image: sampled RoIs ``[S_i, 4]``, their labels ``[S_i]`` and regression targets ``[S_i, 4]``.
        """
        dtype = proposals[0].dtype
        gt_boxes = [t["boxes"].to(dtype) for t in targets]
        gt_labels = [t["labels"] for t in targets]
        proposals = [torch.cat((p, g)) for p, g in zip(proposals, gt_boxes)]
        matched_idxs, labels = self.assign_targets_to_proposals(proposals, gt_boxes, gt_labels)
        pos_masks, neg_masks = self.fg_bg_sampler(labels)
        sampled_rois, sampled_labels, matched_boxes = [], [], []
        for i, (pos, neg) in enumerate(zip(pos_masks, neg_masks)):
            keep = torch.where(pos | neg)[0]
            sampled_rois.append(proposals[i][keep])
            sampled_labels.append(labels[i][keep])
            boxes_i = gt_boxes[i] if gt_boxes[i].numel() else torch.zeros(1, 4, dtype=dtype, device=keep.device)
            matched_boxes.append(boxes_i[matched_idxs[i][keep]])
        regression_targets = self.box_coder.encode(matched_boxes, sampled_rois)
        return sampled_rois, sampled_labels, list(regression_targets)

    def postprocess_detections(self, class_logits: Tensor, box_regression: Tensor, proposals: list[Tensor],
                               image_shapes: list[tuple[int, int]]) -> list[dict[str, Tensor]]:
        """Scores, per-class decoded boxes, thresholds and per-class NMS: one dict per image."""
        num_classes = class_logits.shape[-1]
        per_image = [p.shape[0] for p in proposals]
        pred_boxes = self.box_coder.decode(box_regression, proposals).reshape(-1, num_classes, 4)  # [R, K + 1, 4]
        pred_scores = F.softmax(class_logits, dim=-1)
        detections = []
        for boxes, scores, shape in zip(pred_boxes.split(per_image), pred_scores.split(per_image), image_shapes):
            boxes = clip_boxes_to_image(boxes, shape)
            labels = torch.arange(num_classes, device=boxes.device).view(1, -1).expand_as(scores)
            boxes, scores, labels = boxes[:, 1:].reshape(-1, 4), scores[:, 1:].reshape(-1), labels[:, 1:].reshape(-1)
            keep = torch.where(scores > self.score_thresh)[0]
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = remove_small_boxes(boxes, 1e-2)
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = batched_nms(boxes, scores, labels, self.nms_thresh)[: self.detections_per_img]
            detections.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
        return detections

    def forward(self, features: Tensor, proposals: list[Tensor], image_shapes: list[tuple[int, int]],
                targets: list[dict[str, Tensor]] | None = None) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        """Detections per image (evaluation) or the losses ``loss_classifier`` and ``loss_box_reg`` (training).

        Args:
            features: ``Tensor[B, C, H, W]``, the shared feature map.
            proposals: per image ``Tensor[P_i, 4]`` RoIs in image coordinates.
            image_shapes: ``(height, width)`` of each image, to clip the boxes.
            targets: in training, per image ``'boxes'`` ``[G, 4]`` and ``'labels'`` ``[G]`` (classes from 1).
        """
        if self.training:
            if targets is None:
                raise ValueError("targets must be given in training mode (one dict with 'boxes' and 'labels' per image)")
            proposals, labels, regression_targets = self.select_training_samples(proposals, targets)
        class_logits, box_regression = self.box_head(self.box_roi_pool(features, proposals))
        if self.training:
            loss_classifier, loss_box_reg = fastrcnn_loss(class_logits, box_regression, labels, regression_targets,
                                                          self.box_loss_weight)
            return [], {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}
        return self.postprocess_detections(class_logits, box_regression, proposals, image_shapes), {}
