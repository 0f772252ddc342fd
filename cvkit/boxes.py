"""Boxes: formats, area, IoU and GIoU, R-CNN box regression, smooth L1.

A box is four numbers. cvkit, like torchvision, works in ``xyxy``: the top-left corner
``(x1, y1)`` and the bottom-right corner ``(x2, y2)`` in continuous pixel coordinates, so a box
covering pixels 0..9 is ``(0, 0, 10, 10)`` with width ``x2 - x1 = 10`` (no "+1").

Intersection over union (Jaccard index) of boxes A and B:

    IoU(A, B) = |A ∩ B| / |A ∪ B| = |A ∩ B| / (|A| + |B| - |A ∩ B|)

Generalized IoU (Rezatofighi et al., CVPR 2019, eq. 1), with C the smallest box enclosing both:

    GIoU(A, B) = IoU(A, B) - |C \\ (A ∪ B)| / |C|

Box regression (R-CNN, Girshick et al. 2014, appendix C, eq. 6-9): a proposal P is moved onto a
ground-truth box G by predicting

    t_x = (G_x - P_x) / P_w    t_y = (G_y - P_y) / P_h    t_w = log(G_w / P_w)    t_h = log(G_h / P_h)

with (x, y) the centre. Fast/Faster R-CNN multiply the targets by weights (10, 10, 5, 5 in the box
head) and clamp t_w, t_h at log(1000/16) before exponentiating when decoding.

Every function matches its namesake in ``torchvision.ops`` (or ``torchvision.models.detection._utils``
for the box coder) in arguments, layout and result.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from cvkit._checks import check_boxes, check_tensor

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")
BBOX_XFORM_CLIP = math.log(1000.0 / 16)


def _check_fmt(fmt: str, name: str = "fmt") -> None:
    if fmt not in BOX_FORMATS:
        raise ValueError(f"{name} must be one of {', '.join(BOX_FORMATS)} (rotated boxes are not supported), "
                         f"got {fmt!r}")


def _upcast(t: Tensor) -> Tensor:
    """Half precision and small integers overflow in the products below: compute in float32 / int32."""
    if t.is_floating_point():
        return t if t.dtype in (torch.float32, torch.float64) else t.float()
    return t if t.dtype in (torch.int32, torch.int64) else t.int()


def _to_xyxy(boxes: Tensor, fmt: str) -> Tensor:
    a, b, c, d = boxes.unbind(-1)
    if fmt == "xywh":        # (x, y, w, h): corner and size
        return torch.stack((a, b, a + c, b + d), dim=-1)
    if fmt == "cxcywh":      # (cx, cy, w, h): centre and size
        return torch.stack((a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d), dim=-1)
    return boxes


def _from_xyxy(boxes: Tensor, fmt: str) -> Tensor:
    x1, y1, x2, y2 = boxes.unbind(-1)
    if fmt == "xywh":
        return torch.stack((x1, y1, x2 - x1, y2 - y1), dim=-1)
    if fmt == "cxcywh":
        return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)
    return boxes


def box_convert(boxes: Tensor, in_fmt: str, out_fmt: str) -> Tensor:
    """Convert boxes between ``'xyxy'``, ``'xywh'`` and ``'cxcywh'``.

    Args:
        boxes: ``Tensor[..., 4]`` in ``in_fmt``.
        in_fmt, out_fmt: one of ``'xyxy'`` (corners), ``'xywh'`` (top-left corner and size),
            ``'cxcywh'`` (centre and size).

    Returns:
        ``Tensor[..., 4]`` in ``out_fmt`` (a copy, also when the formats are equal).
    """
    check_boxes(boxes, batched=True)
    _check_fmt(in_fmt, "in_fmt")
    _check_fmt(out_fmt, "out_fmt")
    if in_fmt == out_fmt:
        return boxes.clone()
    return _from_xyxy(_to_xyxy(boxes, in_fmt), out_fmt)


def box_area(boxes: Tensor, fmt: str = "xyxy") -> Tensor:
    """Area of each box: ``(x2 - x1) * (y2 - y1)``, or ``w * h`` for the formats that store the size.

    Args:
        boxes: ``Tensor[..., N, 4]``.
        fmt: the format of ``boxes``.

    Returns:
        ``Tensor[..., N]``, in float32/float64 (or int32/int64 for integer boxes).
    """
    check_boxes(boxes, batched=True)
    _check_fmt(fmt)
    boxes = _upcast(boxes)
    if fmt == "xyxy":
        return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    return boxes[..., 2] * boxes[..., 3]


def _check_pair(boxes1: Tensor, boxes2: Tensor, fmt: str) -> None:
    for name, boxes in (("boxes1", boxes1), ("boxes2", boxes2)):
        check_boxes(boxes, name, batched=True, ordered=True, fmt=fmt)
        if boxes.dim() < 2:
            raise ValueError(f"{name} must have shape [..., N, 4], got {list(boxes.shape)}")
    if boxes1.shape[:-2] != boxes2.shape[:-2]:
        raise ValueError(f"boxes1 and boxes2 must have the same leading (batch) dimensions, "
                         f"got {list(boxes1.shape)} and {list(boxes2.shape)}")
    if boxes1.device != boxes2.device:
        raise ValueError(f"boxes1 and boxes2 must be on one device, got {boxes1.device} and {boxes2.device}")


def _inter_union(boxes1: Tensor, boxes2: Tensor, fmt: str = "xyxy") -> tuple[Tensor, Tensor]:
    """Pairwise |A ∩ B| and |A ∪ B|: ``[..., N, M]`` each."""
    area1 = box_area(boxes1, fmt)
    area2 = box_area(boxes2, fmt)
    if fmt == "cxcywh":   # corners from the centre, as (c - wh/2, c + wh/2)
        lt1, rb1 = boxes1[..., :2] - boxes1[..., 2:] / 2, boxes1[..., :2] + boxes1[..., 2:] / 2
        lt2, rb2 = boxes2[..., :2] - boxes2[..., 2:] / 2, boxes2[..., :2] + boxes2[..., 2:] / 2
    elif fmt == "xywh":
        lt1, rb1 = boxes1[..., :2], boxes1[..., :2] + boxes1[..., 2:]
        lt2, rb2 = boxes2[..., :2], boxes2[..., :2] + boxes2[..., 2:]
    else:
        lt1, rb1 = boxes1[..., :2], boxes1[..., 2:]
        lt2, rb2 = boxes2[..., :2], boxes2[..., 2:]
    lt = torch.max(lt1[..., :, None, :], lt2[..., None, :, :])        # [..., N, M, 2] top-left of A ∩ B
    rb = torch.min(rb1[..., :, None, :], rb2[..., None, :, :])        # [..., N, M, 2] bottom-right
    wh = _upcast(rb - lt).clamp(min=0)                                # empty intersection -> 0
    inter = wh[..., 0] * wh[..., 1]
    union = area1[..., :, None] + area2[..., None, :] - inter        # |A| + |B| - |A ∩ B|
    return inter, union


def box_iou(boxes1: Tensor, boxes2: Tensor, fmt: str = "xyxy") -> Tensor:
    """Pairwise intersection over union.

    Args:
        boxes1: ``Tensor[..., N, 4]``.
        boxes2: ``Tensor[..., M, 4]`` with the same leading dimensions.
        fmt: the format of both, ``'xyxy'`` (default), ``'xywh'`` or ``'cxcywh'``.

    Returns:
        ``Tensor[..., N, M]``: ``IoU(boxes1[i], boxes2[j])`` in [0, 1] (NaN for two empty boxes).
    """
    _check_fmt(fmt)
    _check_pair(boxes1, boxes2, fmt)
    inter, union = _inter_union(boxes1, boxes2, fmt)
    return inter / union


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise generalized IoU (Rezatofighi et al. 2019): ``IoU - |C minus (A ∪ B)| / |C|``, in [-1, 1].

    Args:
        boxes1: ``Tensor[..., N, 4]`` in xyxy.
        boxes2: ``Tensor[..., M, 4]`` in xyxy.

    Returns:
        ``Tensor[..., N, M]``.
    """
    _check_pair(boxes1, boxes2, "xyxy")
    inter, union = _inter_union(boxes1, boxes2)
    iou = inter / union
    lt = torch.min(boxes1[..., :, None, :2], boxes2[..., None, :, :2])   # C, the enclosing box
    rb = torch.max(boxes1[..., :, None, 2:], boxes2[..., None, :, 2:])
    wh = _upcast(rb - lt).clamp(min=0)
    area_c = wh[..., 0] * wh[..., 1]
    return iou - (area_c - union) / area_c


def clip_boxes_to_image(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Clip xyxy boxes to an image: x into [0, width], y into [0, height].

    Args:
        boxes: ``Tensor[..., 4]``.
        size: ``(height, width)`` of the image.

    Returns:
        ``Tensor[..., 4]``, clipped.
    """
    check_boxes(boxes, batched=True)
    if len(size) != 2:
        raise ValueError(f"size must be (height, width), got {size!r}")
    height, width = size
    x = boxes[..., 0::2].clamp(min=0, max=width)
    y = boxes[..., 1::2].clamp(min=0, max=height)
    return torch.stack((x, y), dim=-1).reshape(boxes.shape)   # interleave back to x1, y1, x2, y2


def remove_small_boxes(boxes: Tensor, min_size: float) -> Tensor:
    """Indices of the boxes whose width and height are both at least ``min_size``.

    Args:
        boxes: ``Tensor[N, 4]`` in xyxy.
        min_size: the smallest side to keep.

    Returns:
        ``Tensor[K]`` int64 indices into ``boxes``, ascending.
    """
    check_boxes(boxes)
    widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return torch.where((widths >= min_size) & (heights >= min_size))[0]


# --------------------------------------------------------------------------------------------
# Box regression (R-CNN appendix C; the parametrisation of Fast and Faster R-CNN)


def encode_boxes(reference_boxes: Tensor, proposals: Tensor, weights: Tensor | tuple[float, ...]) -> Tensor:
    """Regression targets ``(t_x, t_y, t_w, t_h)`` that move each proposal onto its reference box.

    Args:
        reference_boxes: ``Tensor[N, 4]`` ground-truth boxes G (xyxy).
        proposals: ``Tensor[N, 4]`` proposals or anchors P (xyxy), matched row by row.
        weights: ``(w_x, w_y, w_w, w_h)`` that scale the four targets.

    Returns:
        ``Tensor[N, 4]``: ``w_x (G_x - P_x) / P_w, w_y (G_y - P_y) / P_h, w_w log(G_w / P_w), w_h log(G_h / P_h)``.
    """
    check_boxes(reference_boxes, "reference_boxes", floating=True)
    check_boxes(proposals, "proposals", floating=True)
    if reference_boxes.shape[0] != proposals.shape[0]:
        raise ValueError(f"reference_boxes and proposals must be matched row by row, got "
                         f"{reference_boxes.shape[0]} and {proposals.shape[0]} rows")
    wx, wy, ww, wh = torch.as_tensor(weights, dtype=reference_boxes.dtype, device=reference_boxes.device)
    p_w = proposals[:, 2:3] - proposals[:, 0:1]
    p_h = proposals[:, 3:4] - proposals[:, 1:2]
    p_x = proposals[:, 0:1] + 0.5 * p_w
    p_y = proposals[:, 1:2] + 0.5 * p_h
    g_w = reference_boxes[:, 2:3] - reference_boxes[:, 0:1]
    g_h = reference_boxes[:, 3:4] - reference_boxes[:, 1:2]
    g_x = reference_boxes[:, 0:1] + 0.5 * g_w
    g_y = reference_boxes[:, 1:2] + 0.5 * g_h
    t_x = wx * (g_x - p_x) / p_w              # eq. 6
    t_y = wy * (g_y - p_y) / p_h              # eq. 7
    t_w = ww * torch.log(g_w / p_w)           # eq. 8
    t_h = wh * torch.log(g_h / p_h)           # eq. 9
    return torch.cat((t_x, t_y, t_w, t_h), dim=1)


def decode_boxes(rel_codes: Tensor, boxes: Tensor, weights: tuple[float, float, float, float],
                 bbox_xform_clip: float = BBOX_XFORM_CLIP) -> Tensor:
    """Apply regression deltas to boxes: the inverse of :func:`encode_boxes`.

    Args:
        rel_codes: ``Tensor[N, 4 * K]`` deltas, K sets per box (one per class in Fast R-CNN).
        boxes: ``Tensor[N, 4]`` the boxes the deltas are relative to (xyxy).
        weights: the ``(w_x, w_y, w_w, w_h)`` the targets were scaled by.
        bbox_xform_clip: largest ``t_w``, ``t_h`` passed to ``exp`` (default ``log(1000 / 16)``).

    Returns:
        ``Tensor[N, 4 * K]`` decoded xyxy boxes.
    """
    check_tensor(rel_codes, "rel_codes")
    check_boxes(boxes)
    if rel_codes.dim() != 2 or rel_codes.shape[1] % 4 != 0 or rel_codes.shape[0] != boxes.shape[0]:
        raise ValueError(f"rel_codes must have shape [N, 4 * K] with N = {boxes.shape[0]} boxes, "
                         f"got {list(rel_codes.shape)}")
    boxes = boxes.to(rel_codes.dtype)
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    ctr_x = boxes[:, 0] + 0.5 * widths
    ctr_y = boxes[:, 1] + 0.5 * heights
    wx, wy, ww, wh = weights
    dx = rel_codes[:, 0::4] / wx                                     # [N, K]
    dy = rel_codes[:, 1::4] / wy
    dw = torch.clamp(rel_codes[:, 2::4] / ww, max=bbox_xform_clip)  # keep exp() finite
    dh = torch.clamp(rel_codes[:, 3::4] / wh, max=bbox_xform_clip)
    pred_x = dx * widths[:, None] + ctr_x[:, None]                   # G_x = P_w t_x + P_x
    pred_y = dy * heights[:, None] + ctr_y[:, None]
    pred_w = torch.exp(dw) * widths[:, None]                         # G_w = P_w exp(t_w)
    pred_h = torch.exp(dh) * heights[:, None]
    half_w, half_h = 0.5 * pred_w, 0.5 * pred_h
    corners = (pred_x - half_w, pred_y - half_h, pred_x + half_w, pred_y + half_h)
    return torch.stack(corners, dim=2).flatten(1)                    # [N, K, 4] -> [N, 4K]


class BoxCoder:
    """Encodes boxes into regression targets and back, as ``torchvision.models.detection._utils.BoxCoder``.

    Args:
        weights: ``(w_x, w_y, w_w, w_h)``: (1, 1, 1, 1) for the RPN, (10, 10, 5, 5) for the box head.
        bbox_xform_clip: the clamp on ``t_w``, ``t_h`` when decoding.
    """

    def __init__(self, weights: tuple[float, float, float, float],
                 bbox_xform_clip: float = BBOX_XFORM_CLIP) -> None:
        if len(weights) != 4:
            raise ValueError(f"weights must be four numbers (w_x, w_y, w_w, w_h), got {weights!r}")
        self.weights = tuple(weights)
        self.bbox_xform_clip = bbox_xform_clip

    def encode_single(self, reference_boxes: Tensor, proposals: Tensor) -> Tensor:
        return encode_boxes(reference_boxes, proposals, self.weights)

    def decode_single(self, rel_codes: Tensor, boxes: Tensor) -> Tensor:
        return decode_boxes(rel_codes, boxes, self.weights, self.bbox_xform_clip)

    def encode(self, reference_boxes: list[Tensor], proposals: list[Tensor]) -> tuple[Tensor, ...]:
        """Per-image lists of boxes in, per-image targets out."""
        per_image = [len(b) for b in reference_boxes]
        targets = self.encode_single(torch.cat(reference_boxes), torch.cat(proposals))
        return targets.split(per_image, 0)

    def decode(self, rel_codes: Tensor, boxes: list[Tensor]) -> Tensor:
        """Deltas for all images stacked, boxes as a per-image list: ``Tensor[sum N, K, 4]``."""
        if not isinstance(boxes, (list, tuple)):
            raise TypeError(f"boxes must be a list of per-image Tensor[N_i, 4], got {type(boxes).__name__}")
        total = sum(b.shape[0] for b in boxes)
        if total > 0:
            rel_codes = rel_codes.reshape(total, -1)
        decoded = self.decode_single(rel_codes, torch.cat(boxes))
        return decoded.reshape(total, -1, 4) if total > 0 else decoded


def smooth_l1_loss(input: Tensor, target: Tensor, beta: float = 1.0, reduction: str = "mean") -> Tensor:
    """Smooth L1 (Huber-like) loss of Fast R-CNN (Girshick 2015, eq. 3), with a transition point ``beta``.

        smooth_L1(x) = 0.5 x² / beta   if |x| < beta
                       |x| - 0.5 beta  otherwise

    ``beta = 1`` is the paper's loss; torchvision's detection heads use ``beta = 1/9``; ``beta = 0`` is L1.
    Equal to ``torch.nn.functional.smooth_l1_loss``.

    Args:
        input, target: tensors of one shape.
        beta: the transition point, >= 0.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
    """
    check_tensor(input, "input")
    check_tensor(target, "target")
    if input.shape != target.shape:
        raise ValueError(f"target must have the shape of input {list(input.shape)}, got {list(target.shape)}")
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    x = torch.abs(input - target)
    if beta == 0:
        loss = x
    else:
        loss = torch.where(x < beta, 0.5 * x * x / beta, x - 0.5 * beta)
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


__all__ = ["box_convert", "box_area", "box_iou", "generalized_box_iou", "clip_boxes_to_image",
           "remove_small_boxes", "encode_boxes", "decode_boxes", "BoxCoder", "smooth_l1_loss",
           "BOX_FORMATS"]
