"""Region proposal network (Faster R-CNN, Ren et al., NeurIPS 2015, section 3.1).

A small network slides over the backbone's feature map: a 3 x 3 convolution, then two sibling
1 x 1 convolutions that give, for each of the k anchors at every position, an objectness logit and
four box deltas ``(t_x, t_y, t_w, t_h)`` relative to the anchor (the R-CNN parametrisation,
:func:`cvkit.boxes.encode_boxes`, with weights (1, 1, 1, 1)).

Training (eq. 1): anchors are labelled by :class:`~cvkit.detection.Matcher` (IoU >= 0.7 positive,
< 0.3 negative, plus each object's best anchor), 256 per image are drawn by
:class:`~cvkit.detection.BalancedPositiveNegativeSampler` (up to half positive), and

    L({p_i}, {t_i}) = 1/N_cls Σ_i L_cls(p_i, p_i*) + λ 1/N_reg Σ_i p_i* smooth_L1(t_i - t_i*)

with L_cls the binary log loss. The paper takes N_cls = 256 (the mini-batch), N_reg ≈ 2400 (anchor
positions) and λ = 10, which weighs the two terms about equally. torchvision, and cvkit, divide both
sums by the number of sampled anchors instead, so their weight ``box_loss_weight = 1`` is the
paper's λ ≈ 10 (10 / 2400 ≈ 1 / 256); the paper's λ ∈ {0.1, 1, 10, 100} are
``box_loss_weight`` ≈ {0.01, 0.1, 1, 10}. The regression uses smooth L1 with beta = 1/9, as torchvision.

Proposals: decode every anchor's deltas, keep the ``pre_nms_top_n`` highest objectness per level,
clip to the image, drop boxes smaller than 1e-3 px, NMS at 0.7, keep the best ``post_nms_top_n``.
No gradient flows through the proposals into the deltas ("approximate joint training").

Matches ``torchvision.models.detection.rpn.RegionProposalNetwork`` and ``RPNHead`` (one conv layer).
Like torchvision, and unlike the paper, anchors that cross the image border are not ignored in training.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cvkit.boxes import BoxCoder, box_iou, clip_boxes_to_image, remove_small_boxes, smooth_l1_loss
from cvkit.detection.anchors import AnchorGenerator, ImageList
from cvkit.detection.matcher import Matcher
from cvkit.detection.sampler import BalancedPositiveNegativeSampler
from cvkit.nms import batched_nms

__all__ = ["RPNHead", "RegionProposalNetwork", "rpn_loss", "concat_box_prediction_layers"]


class RPNHead(nn.Module):
    """The sliding network: 3 x 3 conv + ReLU, then 1 x 1 convs to k logits and 4k deltas per position.

    Args:
        in_channels: channels of the feature map.
        num_anchors: k, anchors per position.
    """

    def __init__(self, in_channels: int, num_anchors: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=1, padding=1)
        self.cls_logits = nn.Conv2d(in_channels, num_anchors, kernel_size=1, stride=1)
        self.bbox_pred = nn.Conv2d(in_channels, num_anchors * 4, kernel_size=1, stride=1)
        for layer in (self.conv, self.cls_logits, self.bbox_pred):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.constant_(layer.bias, 0)

    def forward(self, features: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Per level: logits ``[B, k, H, W]`` and deltas ``[B, 4k, H, W]``."""
        logits, deltas = [], []
        for feature in features:
            t = F.relu(self.conv(feature))
            logits.append(self.cls_logits(t))
            deltas.append(self.bbox_pred(t))
        return logits, deltas


def concat_box_prediction_layers(box_cls: list[Tensor], box_regression: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Flatten per-level predictions in the anchors' order (position-major, then anchor).

    Returns:
        ``(objectness [B * sum HWk, 1], deltas [B * sum HWk, 4])``.
    """
    flat_cls, flat_reg = [], []
    for cls, reg in zip(box_cls, box_regression):
        b, k, h, w = cls.shape
        flat_cls.append(cls.permute(0, 2, 3, 1).reshape(b, -1, 1))                           # [B, HWk, 1]
        flat_reg.append(reg.view(b, k, 4, h, w).permute(0, 3, 4, 1, 2).reshape(b, -1, 4))    # [B, HWk, 4]
    return torch.cat(flat_cls, dim=1).flatten(0, -2), torch.cat(flat_reg, dim=1).reshape(-1, 4)


def rpn_loss(objectness: Tensor, pred_bbox_deltas: Tensor, labels: list[Tensor], regression_targets: list[Tensor],
             sampler: BalancedPositiveNegativeSampler, box_loss_weight: float = 1.0) -> tuple[Tensor, Tensor]:
    """The RPN's two loss terms over a sampled mini-batch of anchors (eq. 1 of the paper).

    Args:
        objectness: ``Tensor[sum N_i]`` or ``[sum N_i, 1]`` logits of all anchors of all images.
        pred_bbox_deltas: ``Tensor[sum N_i, 4]``.
        labels: per image ``Tensor[N_i]``: 1 object, 0 background, -1 ignored.
        regression_targets: per image ``Tensor[N_i, 4]``, the encoded matched ground truth.
        sampler: draws the anchors that enter the loss.
        box_loss_weight: λ on the regression term.

    Returns:
        ``(objectness_loss, box_loss)``: the mean binary log loss over the S sampled anchors, and
        ``box_loss_weight * Σ_positives smooth_L1(t - t*) / S`` (smooth L1 with beta = 1/9).
    """
    pos_masks, neg_masks = sampler(labels)
    sampled_pos = torch.where(torch.cat(pos_masks))[0]
    sampled_neg = torch.where(torch.cat(neg_masks))[0]
    sampled = torch.cat((sampled_pos, sampled_neg))
    objectness = objectness.flatten()
    labels_all = torch.cat(labels)
    targets_all = torch.cat(regression_targets)
    box_loss = smooth_l1_loss(pred_bbox_deltas[sampled_pos], targets_all[sampled_pos], beta=1 / 9,
                              reduction="sum") / max(sampled.numel(), 1)
    objectness_loss = F.binary_cross_entropy_with_logits(objectness[sampled], labels_all[sampled])
    return objectness_loss, box_loss_weight * box_loss


class RegionProposalNetwork(nn.Module):
    """Anchors, head, matching, sampling, loss and proposal filtering, as torchvision's ``RegionProposalNetwork``.

    Args:
        anchor_generator: the anchors, k per position.
        head: an :class:`RPNHead` with the same k.
        fg_iou_thresh, bg_iou_thresh: anchors with IoU >= 0.7 are positive, < 0.3 negative.
        batch_size_per_image, positive_fraction: 256 anchors per image, up to half positive.
        pre_nms_top_n, post_nms_top_n: ``{"training": n, "testing": n}``: proposals kept per level before
            NMS, and per image after it.
        nms_thresh: IoU threshold of the NMS over proposals (0.7).
        score_thresh: proposals whose objectness probability is below this are dropped.
        box_loss_weight: λ on the regression loss (see the module docstring for the paper's scale).
    """

    def __init__(self, anchor_generator: AnchorGenerator, head: nn.Module, fg_iou_thresh: float = 0.7,
                 bg_iou_thresh: float = 0.3, batch_size_per_image: int = 256, positive_fraction: float = 0.5,
                 pre_nms_top_n: dict[str, int] | None = None, post_nms_top_n: dict[str, int] | None = None,
                 nms_thresh: float = 0.7, score_thresh: float = 0.0, box_loss_weight: float = 1.0) -> None:
        super().__init__()
        self.anchor_generator = anchor_generator
        self.head = head
        self.box_coder = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
        self.proposal_matcher = Matcher(fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=True)
        self.fg_bg_sampler = BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction)
        self._pre_nms_top_n = pre_nms_top_n or {"training": 2000, "testing": 1000}
        self._post_nms_top_n = post_nms_top_n or {"training": 2000, "testing": 1000}
        self.nms_thresh = nms_thresh
        self.score_thresh = score_thresh
        self.box_loss_weight = box_loss_weight
        self.min_size = 1e-3

    def pre_nms_top_n(self) -> int:
        return self._pre_nms_top_n["training" if self.training else "testing"]

    def post_nms_top_n(self) -> int:
        return self._post_nms_top_n["training" if self.training else "testing"]

    def assign_targets_to_anchors(self, anchors: list[Tensor], targets: list[dict[str, Tensor]]
                                  ) -> tuple[list[Tensor], list[Tensor]]:
        """Per image: labels ``[N]`` (1, 0, -1) and the matched ground-truth box ``[N, 4]`` of every anchor."""
        labels, matched_boxes = [], []
        for anchors_i, target in zip(anchors, targets):
            gt_boxes = target["boxes"]
            if gt_boxes.numel() == 0:        # an image without objects: every anchor is background
                matched_boxes.append(torch.zeros_like(anchors_i))
                labels.append(torch.zeros(anchors_i.shape[0], dtype=anchors_i.dtype, device=anchors_i.device))
                continue
            matched = self.proposal_matcher(box_iou(gt_boxes, anchors_i))           # [N]
            matched_boxes.append(gt_boxes[matched.clamp(min=0)])
            label = (matched >= 0).to(anchors_i.dtype)
            label[matched == Matcher.BETWEEN_THRESHOLDS] = -1.0                      # ignored
            labels.append(label)
        return labels, matched_boxes

    def filter_proposals(self, proposals: Tensor, objectness: Tensor, image_shapes: list[tuple[int, int]],
                         num_anchors_per_level: list[int], apply_nms: bool = True
                         ) -> tuple[list[Tensor], list[Tensor]]:
        """Top-n per level, clip, drop tiny boxes and low scores, NMS per level, top-n per image.

        Args:
            proposals: ``Tensor[B, N, 4]`` decoded anchors.
            objectness: logits, ``B * N`` of them.
            apply_nms: ``False`` skips the NMS (and the post-NMS cap), to show what NMS removes.

        Returns:
            per image, boxes ``[P, 4]`` and objectness probabilities ``[P]``, best first.
        """
        num_images = proposals.shape[0]
        device = proposals.device
        objectness = objectness.detach().reshape(num_images, -1)
        levels = torch.cat([torch.full((n,), i, dtype=torch.int64, device=device)
                            for i, n in enumerate(num_anchors_per_level)]).reshape(1, -1).expand_as(objectness)
        top_idx, offset = [], 0
        for level_scores in objectness.split(num_anchors_per_level, dim=1):
            k = min(self.pre_nms_top_n(), level_scores.shape[1])
            top_idx.append(level_scores.topk(k, dim=1).indices + offset)
            offset += level_scores.shape[1]
        top_idx = torch.cat(top_idx, dim=1)                                         # [B, n]
        batch_idx = torch.arange(num_images, device=device)[:, None]
        scores_all = torch.sigmoid(objectness[batch_idx, top_idx])
        levels, proposals = levels[batch_idx, top_idx], proposals[batch_idx, top_idx]
        final_boxes, final_scores = [], []
        for boxes, scores, level, shape in zip(proposals, scores_all, levels, image_shapes):
            boxes = clip_boxes_to_image(boxes, shape)
            keep = remove_small_boxes(boxes, self.min_size)
            boxes, scores, level = boxes[keep], scores[keep], level[keep]
            keep = torch.where(scores >= self.score_thresh)[0]
            boxes, scores, level = boxes[keep], scores[keep], level[keep]
            if apply_nms:
                keep = batched_nms(boxes, scores, level, self.nms_thresh)[: self.post_nms_top_n()]
                boxes, scores = boxes[keep], scores[keep]
            final_boxes.append(boxes)
            final_scores.append(scores)
        return final_boxes, final_scores

    def _predict(self, images: ImageList, features: list[Tensor]
                 ) -> tuple[Tensor, Tensor, list[Tensor], list[int]]:
        logits, deltas = self.head(features)
        anchors = self.anchor_generator(images, features)
        num_anchors_per_level = [o[0].numel() for o in logits]                    # H * W * k per level
        objectness, pred_bbox_deltas = concat_box_prediction_layers(logits, deltas)
        return objectness, pred_bbox_deltas, anchors, num_anchors_per_level

    def propose(self, images: ImageList, features: list[Tensor] | dict[str, Tensor], apply_nms: bool = True
                ) -> tuple[list[Tensor], list[Tensor]]:
        """Proposals and their objectness probabilities per image, with or without the NMS step."""
        features = list(features.values()) if isinstance(features, dict) else list(features)
        objectness, deltas, anchors, per_level = self._predict(images, features)
        proposals = self.box_coder.decode(deltas.detach(), anchors).view(len(anchors), -1, 4)
        return self.filter_proposals(proposals, objectness, images.image_sizes, per_level, apply_nms)

    def forward(self, images: ImageList, features: list[Tensor] | dict[str, Tensor],
                targets: list[dict[str, Tensor]] | None = None) -> tuple[list[Tensor], dict[str, Tensor]]:
        """Proposals per image (``[P_i, 4]``) and, in training, the losses ``loss_objectness`` and ``loss_rpn_box_reg``.

        Args:
            images: the batch (its padded size sets the anchor strides; each image's size clips its proposals).
            features: the feature maps, a list or a dict of ``Tensor[B, C, H, W]``.
            targets: in training, one dict per image with ``'boxes'`` ``Tensor[G, 4]`` (G may be 0).
        """
        features = list(features.values()) if isinstance(features, dict) else list(features)
        objectness, pred_bbox_deltas, anchors, per_level = self._predict(images, features)
        proposals = self.box_coder.decode(pred_bbox_deltas.detach(), anchors).view(len(anchors), -1, 4)
        boxes, _ = self.filter_proposals(proposals, objectness, images.image_sizes, per_level)
        losses: dict[str, Tensor] = {}
        if self.training:
            if targets is None:
                raise ValueError("targets must be given in training mode (one dict with 'boxes' per image)")
            labels, matched_boxes = self.assign_targets_to_anchors(anchors, targets)
            regression_targets = self.box_coder.encode(matched_boxes, anchors)
            loss_objectness, loss_box = rpn_loss(objectness, pred_bbox_deltas, labels, list(regression_targets),
                                                 self.fg_bg_sampler, self.box_loss_weight)
            losses = {"loss_objectness": loss_objectness, "loss_rpn_box_reg": loss_box}
        return boxes, losses
