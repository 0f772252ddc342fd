"""The mask branch of Mask R-CNN (He, Gkioxari, Dollar and Girshick, ICCV 2017), from cvkit's parts.

For every positive RoI the branch predicts one M x M mask *per class* from the RoI's RoIAlign features
(14 x 14): four 3 x 3 convolutions (:class:`MaskRCNNHeads`), a 2x transposed convolution and a 1 x 1
convolution to K mask logits (:class:`MaskRCNNPredictor`), so M = 28.

Training (section 3, "Mask Representation" and "Multi-task Loss"):

    target_i  = the ground-truth mask of RoI i's matched object, cut out by the RoI and resampled to
                M x M with RoIAlign (values in [0, 1])                         project_masks_on_boxes
    L_mask    = mean over RoIs and pixels of BCE(sigmoid(logits_i[k_i]), target_i), k_i the RoI's
                ground-truth class: only that class's mask is trained, so classes do not compete
                (a per-pixel sigmoid, not a softmax over classes)              maskrcnn_loss

Inference: the mask of each detection's predicted class, through a sigmoid (:func:`maskrcnn_inference`),
pasted back into the image (:func:`paste_masks_in_image`): the M x M mask, padded by one zero pixel on each
side, is resized to the box grown by the same factor (bilinear, ``align_corners=False``) and written into
an image of zeros; thresholding at 0.5 gives the binary mask.

Names, arguments and outputs follow ``torchvision.models.detection.roi_heads`` and ``mask_rcnn``; the tests
compare them. :func:`paste_masks_in_image` resizes every mask at once as two batched matrix products
(bilinear resizing is separable: ``R_y @ mask @ R_x^T``, with the resizing rows of
:func:`cvkit.upsampling.bilinear_upsample` placed at each box), where torchvision interpolates mask by mask:
0.70x its time for 100 masks in a 480 x 640 image (``benchmarks/bench_mask_head.py``, one thread). The
targets are slow: cvkit's RoIAlign on one-channel masks with many samples per bin takes about 30x
torchvision's (213 vs 7 ms for 128 RoIs), which makes :func:`maskrcnn_loss` about 23x slower; RoIAlign's
gather pays per sample, not per channel.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cvkit.roi import roi_align
from cvkit.upsampling import ConvTranspose2d, _linear_weights

__all__ = ["project_masks_on_boxes", "maskrcnn_loss", "maskrcnn_inference", "paste_masks_in_image",
           "MaskRCNNHeads", "MaskRCNNPredictor"]


def project_masks_on_boxes(gt_masks: Tensor, boxes: Tensor, matched_idxs: Tensor, M: int) -> Tensor:
    """Mask targets: each RoI's matched ground-truth mask, cut out by the RoI and resampled to ``M x M``.

    Args:
        gt_masks: ``[G, H, W]`` masks of one image's objects (binary, any dtype).
        boxes: ``[P, 4]`` float RoIs (xyxy, image pixels).
        matched_idxs: ``[P]`` index of each RoI's object in ``gt_masks``.
        M: side of the targets.

    Returns:
        ``[P, M, M]`` in the dtype of ``boxes``, values in [0, 1] (RoIAlign, ``aligned=False``, as torchvision).
    """
    if gt_masks.dim() != 3:
        raise ValueError(f"gt_masks must be [G, H, W], got shape {list(gt_masks.shape)}")
    if boxes.dim() != 2 or boxes.shape[-1] != 4 or matched_idxs.shape != boxes.shape[:1]:
        raise ValueError(f"boxes must be [P, 4] and matched_idxs [P], got {list(boxes.shape)} and "
                         f"{list(matched_idxs.shape)}")
    rois = torch.cat([matched_idxs.to(boxes)[:, None], boxes], dim=1)              # [P, 5]: object index, box
    return roi_align(gt_masks[:, None].to(rois), rois, (M, M), 1.0)[:, 0]


def maskrcnn_loss(mask_logits: Tensor, proposals: Sequence[Tensor], gt_masks: Sequence[Tensor],
                  gt_labels: Sequence[Tensor], mask_matched_idxs: Sequence[Tensor]) -> Tensor:
    """L_mask: binary cross-entropy of each positive RoI's mask for its ground-truth class only.

    Args:
        mask_logits: ``[P, K, M, M]`` for the positive RoIs of all images, in image order.
        proposals: per image ``[P_i, 4]`` positive RoIs.
        gt_masks: per image ``[G_i, H, W]`` object masks.
        gt_labels: per image ``[G_i]`` int64 classes.
        mask_matched_idxs: per image ``[P_i]`` the object each RoI is matched to.

    Returns:
        Scalar tensor (0, still attached to ``mask_logits``, when there is no positive RoI).
    """
    size = mask_logits.shape[-1]
    labels = torch.cat([gt_label[idxs] for gt_label, idxs in zip(gt_labels, mask_matched_idxs)])
    targets = torch.cat([project_masks_on_boxes(m, p, i, size)
                         for m, p, i in zip(gt_masks, proposals, mask_matched_idxs)])
    if targets.numel() == 0:
        return mask_logits.sum() * 0
    own_class = mask_logits[torch.arange(len(labels), device=labels.device), labels]     # [P, M, M]
    return F.binary_cross_entropy_with_logits(own_class, targets)


def maskrcnn_inference(x: Tensor, labels: Sequence[Tensor]) -> list[Tensor]:
    """Mask probabilities of each detection's class: ``sigmoid(x[i, label_i])``.

    Args:
        x: ``[D, K, M, M]`` mask logits of all images' detections.
        labels: per image ``[D_i]`` predicted classes.

    Returns:
        Per image ``[D_i, 1, M, M]`` probabilities.
    """
    counts = [len(label) for label in labels]
    labels = torch.cat(list(labels))
    probability = x.sigmoid()[torch.arange(x.shape[0], device=labels.device), labels][:, None]
    return list(probability.split(counts, dim=0))


def _placed_weights(length: int, start: int, size: int, mask_size: int, dtype: torch.dtype,
                    device: torch.device) -> Tensor:
    """``[length, mask_size]``: bilinear resizing of ``mask_size`` values to ``size`` (``align_corners=False``,
    :func:`cvkit.upsampling._linear_weights`), its row ``r`` placed at image pixel ``start + r``; rows of
    pixels outside the resized mask are 0."""
    weights = torch.zeros(length, mask_size, dtype=dtype, device=device)
    low, high = max(start, 0), min(start + size, length)
    if high > low:
        weights[low:high] = _linear_weights(mask_size, size, None, False, dtype, device)[low - start:high - start]
    return weights


def paste_masks_in_image(masks: Tensor, boxes: Tensor, img_shape: tuple[int, int], padding: int = 1) -> Tensor:
    """Paste ``M x M`` masks into ``H x W`` images at their boxes, as torchvision does.

    Each mask is padded by ``padding`` zero pixels (``M' = M + 2 padding``), its box grown about its centre by
    ``M' / M`` and truncated to integers ``(x1, y1, x2, y2)``; the mask is resized (bilinear,
    ``align_corners=False``) to ``(y2 - y1 + 1) x (x2 - x1 + 1)`` pixels, placed with its top-left at
    ``(x1, y1)``, and cut by the image. A box outside the image gives an empty mask (torchvision's loop
    fails on boxes entirely above or left of the image).

    Args:
        masks: ``[N, 1, M, M]`` float mask probabilities.
        boxes: ``[N, 4]`` float xyxy boxes in image pixels, ``x2 >= x1`` and ``y2 >= y1``.
        img_shape: ``(H, W)``.
        padding: zero pixels added around each mask before resizing.

    Returns:
        ``[N, 1, H, W]`` in the dtype of ``masks``.
    """
    if masks.dim() != 4 or masks.shape[1] != 1 or masks.shape[2] != masks.shape[3]:
        raise ValueError(f"masks must be [N, 1, M, M], got shape {list(masks.shape)}")
    if boxes.shape != (masks.shape[0], 4):
        raise ValueError(f"boxes must be [N, 4] with N = {masks.shape[0]} (one per mask), got {list(boxes.shape)}")
    if not (boxes[:, 2:] >= boxes[:, :2]).all():
        raise ValueError("boxes must have x2 >= x1 and y2 >= y1")
    height, width = int(img_shape[0]), int(img_shape[1])
    if len(masks) == 0:
        return masks.new_zeros((0, 1, height, width))
    size = masks.shape[-1]
    masks = F.pad(masks, (padding,) * 4)[:, 0]                                       # [N, M', M']
    scale = float(size + 2 * padding) / size
    # grow the box by M'/M about its centre, in torchvision's arithmetic, then truncate to integers
    half = (boxes[:, 2:] - boxes[:, :2]) * 0.5 * scale
    centre = (boxes[:, 2:] + boxes[:, :2]) * 0.5
    grown = torch.cat((centre - half, centre + half), dim=1).to(torch.int64)         # [N, 4]
    padded_size = masks.shape[-1]
    rows, columns = [], []
    for x1, y1, x2, y2 in grown.tolist():
        rows.append(_placed_weights(height, y1, max(y2 - y1 + 1, 1), padded_size, masks.dtype, masks.device))
        columns.append(_placed_weights(width, x1, max(x2 - x1 + 1, 1), padded_size, masks.dtype, masks.device))
    return (torch.stack(rows) @ masks @ torch.stack(columns).transpose(1, 2))[:, None]  # [N, 1, H, W]


class MaskRCNNHeads(nn.Sequential):
    """The mask branch's FCN: 3 x 3 convolutions (padding = dilation) with ReLU, one block per entry of
    ``layers``. Same layers, parameter names and initialisation (Kaiming normal, fan out) as torchvision's
    without a norm layer, so its ``state_dict`` loads here."""

    def __init__(self, in_channels: int, layers: Sequence[int], dilation: int = 1) -> None:
        blocks, channels = [], in_channels
        for features in layers:
            blocks.append(nn.Sequential(nn.Conv2d(channels, features, 3, padding=dilation, dilation=dilation),
                                        nn.ReLU(inplace=True)))
            channels = features
        super().__init__(*blocks)
        for layer in self.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(layer.bias)


class MaskRCNNPredictor(nn.Sequential):
    """Mask logits from the FCN's features: a 2 x 2 stride-2 transposed convolution (cvkit's, 14 -> 28), ReLU,
    and a 1 x 1 convolution to one mask per class. As torchvision's (same parameter names)."""

    def __init__(self, in_channels: int, dim_reduced: int, num_classes: int) -> None:
        super().__init__(OrderedDict([
            ("conv5_mask", ConvTranspose2d(in_channels, dim_reduced, 2, 2, 0)),
            ("relu", nn.ReLU(inplace=True)),
            ("mask_fcn_logits", nn.Conv2d(dim_reduced, num_classes, 1, 1, 0)),
        ]))
        for name, parameter in self.named_parameters():
            if "weight" in name:
                nn.init.kaiming_normal_(parameter, mode="fan_out", nonlinearity="relu")
