"""Checks for notebook 05 (Faster R-CNN): decoding RPN deltas into boxes, and labelling anchors.

Expected answers come from torchvision (``BoxCoder.decode_single`` of ``torchvision.models.detection._utils``,
and ``Matcher`` with ``torchvision.ops.box_iou`` for the anchor labels) and from cases worked out by hand,
never from ``cvkit.detection`` or ``cvkit.boxes``. The hand-made cases catch the classic slips: decoding
around the corner instead of the centre, forgetting the weights or the clamp of t_w and t_h, a positive
threshold read as ``>`` instead of ``>=``, and forgetting the anchor of highest IoU with each object
(with ties) or the images without objects.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torchvision
from torch import Tensor
from torchvision.models.detection._utils import BoxCoder as _TVBoxCoder
from torchvision.models.detection._utils import Matcher as _TVMatcher

from cvkit.grading.boxes import _boxes, _random_boxes
from cvkit.grading.core import Case, equal_sequence, run_cases

__all__ = ["decode_boxes", "label_anchors"]


def decode_boxes(student_fn: Callable) -> None:
    """Check ``student_fn(deltas [N, 4], anchors [N, 4], weights) -> [N, 4]`` xyxy boxes.

    With (P_x, P_y, P_w, P_h) the anchor's centre and size and ``weights = (w_x, w_y, w_w, w_h)``:
    ``G_x = P_w t_x / w_x + P_x``, ``G_y = P_h t_y / w_y + P_y``, ``G_w = P_w exp(min(t_w / w_w, log(1000/16)))``,
    ``G_h`` likewise. Oracles: torchvision's ``BoxCoder(weights).decode_single`` and values worked out by hand.
    """
    g = torch.Generator().manual_seed(205)
    ln2 = math.log(2.0)
    ones, head = (1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)
    inputs = [
        ("zero deltas give the anchor back", _boxes([[0, 0, 0, 0]]), _boxes([[10, 20, 50, 80]]), ones,
         [[10, 20, 50, 80]]),
        ("t_x = 0.5 moves the centre by half the anchor's width", _boxes([[0.5, 0, 0, 0]]), _boxes([[0, 0, 10, 20]]),
         ones, [[5, 0, 15, 20]]),
        ("t_w = t_h = log 2 doubles the size about the centre (not about the corner)", _boxes([[0, 0, ln2, ln2]]),
         _boxes([[10, 10, 20, 20]]), ones, [[5, 5, 25, 25]]),
        ("the box head's weights (10, 10, 5, 5): t_x = 10 is one anchor width", _boxes([[10, 0, 0, 0]]),
         _boxes([[0, 0, 10, 10]]), head, [[10, 0, 20, 10]]),
        ("a huge t_w is clamped at log(1000 / 16) before exp", _boxes([[0, 0, 20, 0]]), _boxes([[0, 0, 16, 16]]),
         ones, None),
        ("8 random anchors and deltas, weights (1, 1, 1, 1)", torch.randn(8, 4, generator=g) * 0.3,
         _random_boxes(8, g), ones, None),
        ("6 random anchors and deltas, weights (10, 10, 5, 5), float64",
         torch.randn(6, 4, generator=g, dtype=torch.float64), _random_boxes(6, g, dtype=torch.float64), head, None),
        ("no anchors (shape [0, 4]): the answer has shape [0, 4]", torch.zeros(0, 4), torch.zeros(0, 4), ones, None),
    ]
    cases = []
    for name, deltas, anchors, weights, by_hand in inputs:
        expected = (torch.tensor(by_hand, dtype=torch.float64) if by_hand is not None
                    else _TVBoxCoder(weights).decode_single(deltas, anchors).reshape(-1, 4))
        shown = f"deltas={deltas.tolist() if deltas.numel() <= 8 else list(deltas.shape)}, anchors=" \
                f"{anchors.tolist() if anchors.numel() <= 8 else list(anchors.shape)}, weights={weights}"
        cases.append(Case(name, (deltas, anchors, weights), expected, show=shown))
    run_cases("decode_boxes", student_fn, cases)


def _tv_labels(anchors: Tensor, gt_boxes: Tensor, high: float, low: float) -> Tensor:
    """Faster R-CNN's anchor labels the way torchvision's RPN computes them: 1, 0, or -1 (ignored)."""
    if gt_boxes.numel() == 0:
        return torch.zeros(anchors.shape[0], dtype=torch.int64)
    matches = _TVMatcher(high, low, allow_low_quality_matches=True)(torchvision.ops.box_iou(gt_boxes, anchors))
    labels = (matches >= 0).to(torch.int64)
    labels[matches == _TVMatcher.BETWEEN_THRESHOLDS] = -1
    return labels


def _labels_compare(got: object, expected: Tensor) -> str | None:
    return equal_sequence(got, expected)


def label_anchors(student_fn: Callable) -> None:
    """Check ``student_fn(anchors [N, 4], gt_boxes [G, 4], high=0.7, low=0.3) -> [N]`` anchor labels.

    Faster R-CNN's rule: 1 (object) if the anchor's highest IoU with a ground-truth box is >= ``high``, or if
    it is the anchor (or one of the tied anchors) of highest IoU with some ground-truth box; 0 (background)
    if its highest IoU is < ``low``; -1 (ignored) otherwise. No ground-truth boxes: every anchor is 0.
    Oracles: torchvision's ``Matcher(high, low, allow_low_quality_matches=True)`` on ``torchvision.ops.box_iou``,
    and values worked out by hand.
    """
    g = torch.Generator().manual_seed(206)
    square = [[0.0, 0.0, 10.0, 10.0]]
    inputs = [
        ("an exact anchor, a half-overlapping one (1/3), one far away", _boxes([[0, 0, 10, 10], [5, 0, 15, 10],
                                                                               [50, 50, 60, 60]]),
         _boxes(square), 0.7, 0.3, [1, -1, 0]),
        ("high=0.75, low=0.25: IoU exactly 0.75 is positive (>=), exactly 0.25 is ignored, not background",
         _boxes([[0, 0, 10, 10], [0, 0, 10, 7.5], [0, 0, 10, 2.5], [0, 0, 10, 2]]), _boxes(square), 0.75, 0.25,
         [1, 1, -1, 0]),
        ("no anchor reaches 0.7: the best one (IoU 0.5) is positive anyway", _boxes([[0, 0, 10, 5], [0, 0, 10, 2]]),
         _boxes(square), 0.7, 0.3, [1, 0]),
        ("two anchors tie for an object's best IoU (0.5): both are positive",
         _boxes([[0, 0, 10, 5], [0, 5, 10, 10], [0, 0, 10, 2]]), _boxes(square), 0.7, 0.3, [1, 1, 0]),
        ("two objects: each keeps its best anchor", _boxes([[0, 0, 10, 5], [30, 30, 40, 35], [100, 0, 110, 10]]),
         _boxes([[0, 0, 10, 10], [30, 30, 40, 40]]), 0.7, 0.3, [1, 1, 0]),
        ("an image without objects: every anchor is background", _boxes([[0, 0, 10, 10], [5, 5, 20, 20]]),
         torch.zeros(0, 4), 0.7, 0.3, [0, 0]),
        ("Fast R-CNN-like thresholds 0.5 and 0.5: nothing is ignored", _random_boxes(40, g), _random_boxes(3, g),
         0.5, 0.5, None),
        ("60 random anchors, 4 objects", _random_boxes(60, g), _random_boxes(4, g), 0.7, 0.3, None),
    ]
    cases = []
    for name, anchors, gt, high, low, by_hand in inputs:
        expected = torch.tensor(by_hand) if by_hand is not None else _tv_labels(anchors, gt, high, low)
        shown = f"{len(anchors)} anchors, {len(gt)} ground-truth boxes, high={high}, low={low}"
        if anchors.numel() <= 12:
            shown = f"anchors={anchors.tolist()}, gt_boxes={gt.tolist()}, high={high}, low={low}"
        cases.append(Case(name, (anchors, gt, high, low), expected, compare=_labels_compare, show=shown))
    run_cases("label_anchors", student_fn, cases)
