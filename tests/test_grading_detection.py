"""The checks of notebook 05 (cvkit.grading.detection): right answers pass, classic slips fail."""
from __future__ import annotations

import math

import pytest
import torch
import torchvision

from cvkit.grading import ExerciseFailed, check


def decode_right(deltas, anchors, weights):
    wx, wy, ww, wh = weights
    w, h = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    cx, cy = anchors[:, 0] + 0.5 * w, anchors[:, 1] + 0.5 * h
    x, y = deltas[:, 0] / wx * w + cx, deltas[:, 1] / wy * h + cy
    clip = math.log(1000 / 16)
    bw, bh = torch.exp((deltas[:, 2] / ww).clamp(max=clip)) * w, torch.exp((deltas[:, 3] / wh).clamp(max=clip)) * h
    return torch.stack((x - bw / 2, y - bh / 2, x + bw / 2, y + bh / 2), dim=1)


def decode_about_corner(deltas, anchors, weights):
    """Scales the size about the top-left corner instead of the centre."""
    boxes = decode_right(deltas, anchors, weights)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    x1 = anchors[:, 0] + deltas[:, 0] / weights[0] * (anchors[:, 2] - anchors[:, 0])
    y1 = anchors[:, 1] + deltas[:, 1] / weights[1] * (anchors[:, 3] - anchors[:, 1])
    return torch.stack((x1, y1, x1 + w, y1 + h), dim=1)


def decode_no_weights(deltas, anchors, weights):
    return decode_right(deltas, anchors, (1.0, 1.0, 1.0, 1.0))


def decode_no_clamp(deltas, anchors, weights):
    w, h = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    cx, cy = anchors[:, 0] + 0.5 * w, anchors[:, 1] + 0.5 * h
    x, y = deltas[:, 0] / weights[0] * w + cx, deltas[:, 1] / weights[1] * h + cy
    bw, bh = torch.exp(deltas[:, 2] / weights[2]) * w, torch.exp(deltas[:, 3] / weights[3]) * h
    return torch.stack((x - bw / 2, y - bh / 2, x + bw / 2, y + bh / 2), dim=1)


def labels_right(anchors, gt_boxes, high, low):
    if len(gt_boxes) == 0:
        return torch.zeros(len(anchors), dtype=torch.int64)
    iou = torchvision.ops.box_iou(gt_boxes, anchors)             # [G, N]
    best = iou.max(dim=0).values
    labels = torch.full((len(anchors),), -1, dtype=torch.int64)
    labels[best < low] = 0
    labels[best >= high] = 1
    labels[(iou == iou.max(dim=1, keepdim=True).values).any(dim=0)] = 1    # each object's best anchors, ties too
    return labels


def labels_strict(anchors, gt_boxes, high, low):
    """Reads 'IoU at least 0.7' as '> 0.7'."""
    if len(gt_boxes) == 0:
        return torch.zeros(len(anchors), dtype=torch.int64)
    iou = torchvision.ops.box_iou(gt_boxes, anchors)
    best = iou.max(dim=0).values
    labels = torch.full((len(anchors),), -1, dtype=torch.int64)
    labels[best < low] = 0
    labels[best > high] = 1
    labels[(iou == iou.max(dim=1, keepdim=True).values).any(dim=0)] = 1
    return labels


def labels_no_best_anchor(anchors, gt_boxes, high, low):
    if len(gt_boxes) == 0:
        return torch.zeros(len(anchors), dtype=torch.int64)
    best = torchvision.ops.box_iou(gt_boxes, anchors).max(dim=0).values
    labels = torch.full((len(anchors),), -1, dtype=torch.int64)
    labels[best < low] = 0
    labels[best >= high] = 1
    return labels


def labels_argmax_only(anchors, gt_boxes, high, low):
    """Promotes one best anchor per object with argmax, dropping tied ones."""
    labels = labels_no_best_anchor(anchors, gt_boxes, high, low)
    if len(gt_boxes):
        labels[torchvision.ops.box_iou(gt_boxes, anchors).argmax(dim=1)] = 1
    return labels


def labels_crash_on_empty(anchors, gt_boxes, high, low):
    iou = torchvision.ops.box_iou(gt_boxes, anchors)
    return labels_right(anchors, gt_boxes, high, low) if iou.numel() else iou.max(dim=0).values


def test_right_answers_pass(capsys):
    check.decode_boxes(decode_right)
    check.label_anchors(labels_right)
    out = capsys.readouterr().out
    assert "decode_boxes: 8/8 cases passed" in out and "label_anchors: 8/8 cases passed" in out


@pytest.mark.parametrize("wrong, case", [(decode_about_corner, "about the centre"),
                                         (decode_no_weights, "weights (10, 10, 5, 5)"),
                                         (decode_no_clamp, "clamped")])
def test_decode_slips_fail(capsys, wrong, case):
    with pytest.raises(ExerciseFailed):
        check.decode_boxes(wrong)
    assert case in capsys.readouterr().out


@pytest.mark.parametrize("wrong, case", [(labels_strict, "exactly 0.75 is positive"),
                                         (labels_no_best_anchor, "the best one (IoU 0.5) is positive"),
                                         (labels_argmax_only, "tie"),
                                         (labels_crash_on_empty, "without objects")])
def test_label_slips_fail(capsys, wrong, case):
    with pytest.raises(ExerciseFailed):
        check.label_anchors(wrong)
    assert case in capsys.readouterr().out


def test_not_implemented_is_reported_once(capsys):
    def todo(*args):
        raise NotImplementedError()
    with pytest.raises(ExerciseFailed, match="not implemented"):
        check.label_anchors(todo)
    assert capsys.readouterr().out.count("not implemented") == 1
