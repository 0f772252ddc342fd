"""The checks of notebook 02 (cvkit.grading.nms_map): right answers pass, classic slips fail on the input
that exposes them, and the report names that input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cvkit.grading import ExerciseFailed, check
from cvkit.grading import nms_map as checks


# --- implementations a student might hand in -------------------------------------------------------

def _iou_row(box, boxes):
    lt = torch.max(box[:2], boxes[:, :2])
    rb = torch.min(box[2:], boxes[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])   # noqa: E731
    return inter / (area(box) + area(boxes) - inter)


def nms_right(boxes, scores, iou_threshold):
    """Greedy NMS as the notebook's solution cell writes it."""
    order = torch.sort(scores, descending=True, stable=True).indices
    keep = []
    while order.numel() > 0:
        best = order[0]
        keep.append(int(best))
        rest = order[1:]
        order = rest[_iou_row(boxes[best], boxes[rest]) <= iou_threshold]
    return torch.tensor(keep, dtype=torch.int64)


def nms_greater_or_equal(boxes, scores, iou_threshold):
    """Suppresses a box whose IoU equals the threshold too."""
    order = torch.sort(scores, descending=True, stable=True).indices
    keep = []
    while order.numel() > 0:
        keep.append(int(order[0]))
        rest = order[1:]
        order = rest[_iou_row(boxes[order[0]], boxes[rest]) < iou_threshold]
    return torch.tensor(keep, dtype=torch.int64)


def nms_unsorted(boxes, scores, iou_threshold):
    """Forgets to sort by score: walks the boxes in index order."""
    order = torch.arange(len(scores))
    keep = []
    while order.numel() > 0:
        keep.append(int(order[0]))
        rest = order[1:]
        order = rest[_iou_row(boxes[order[0]], boxes[rest]) <= iou_threshold]
    return torch.tensor(keep, dtype=torch.int64)


def nms_suppressed_still_suppress(boxes, scores, iou_threshold):
    """Decides every box from all higher-scoring boxes, suppressed or not (no greedy bookkeeping)."""
    order = torch.sort(scores, descending=True, stable=True).indices
    keep = []
    for rank, i in enumerate(order.tolist()):
        higher = order[:rank]
        if rank == 0 or not (_iou_row(boxes[i], boxes[higher]) > iou_threshold).any():
            keep.append(i)
    return torch.tensor(keep, dtype=torch.int64)


def nms_raises(boxes, scores, iou_threshold):
    return [int(scores.argmax())]                                # argmax of an empty tensor raises


def not_done(*args):
    raise NotImplementedError()


def pr_right(scores, is_tp, num_gt):
    order = torch.sort(scores, descending=True, stable=True).indices
    tp = torch.cumsum(is_tp[order].double(), 0)
    fp = torch.cumsum((~is_tp[order]).double(), 0)
    return tp / (tp + fp), tp / num_gt


def pr_unsorted(scores, is_tp, num_gt):
    """Forgets to rank the detections by score."""
    tp = torch.cumsum(is_tp.double(), 0)
    return tp / torch.arange(1, len(scores) + 1), tp / num_gt


def pr_recall_over_detections(scores, is_tp, num_gt):
    """Divides recall by the number of correct detections instead of the number of objects."""
    precision, _ = pr_right(scores, is_tp, num_gt)
    order = torch.sort(scores, descending=True, stable=True).indices
    tp = torch.cumsum(is_tp[order].double(), 0)
    return precision, tp / max(int(is_tp.sum()), 1)


def ap11_right(precision, recall):
    levels = np.linspace(0, 1, 11)
    p, r = np.asarray(precision, dtype=np.float64), np.asarray(recall, dtype=np.float64)
    return float(np.mean([p[r >= t].max() if (r >= t).any() else 0.0 for t in levels]))


def ap11_no_interpolation(precision, recall):
    """Takes the precision at the first recall >= t instead of the best one at any recall >= t."""
    levels = np.linspace(0, 1, 11)
    p, r = np.asarray(precision, dtype=np.float64), np.asarray(recall, dtype=np.float64)
    return float(np.mean([p[np.argmax(r >= t)] if (r >= t).any() else 0.0 for t in levels]))


def ap11_ten_levels(precision, recall):
    """Averages over 0.1, ..., 1 only (forgets recall level 0)."""
    levels = np.linspace(0.1, 1, 10)
    p, r = np.asarray(precision, dtype=np.float64), np.asarray(recall, dtype=np.float64)
    return float(np.mean([p[r >= t].max() if (r >= t).any() else 0.0 for t in levels]))


def ap11_all_point(precision, recall):
    """VOC 2010's all-point AP handed in for VOC 2007's 11-point one."""
    r = np.concatenate(([0.0], np.asarray(recall, dtype=np.float64), [1.0]))
    p = np.concatenate(([0.0], np.asarray(precision, dtype=np.float64), [0.0]))
    p = np.maximum.accumulate(p[::-1])[::-1]
    return float(np.sum((r[1:] - r[:-1]) * p[1:]))


# --- the tests -----------------------------------------------------------------------------------

@pytest.mark.parametrize("check_fn, right", [
    (check.nms, nms_right), (check.precision_recall, pr_right), (check.ap_11_point, ap11_right),
])
def test_a_right_answer_passes(check_fn, right, capsys):
    check_fn(right)
    out = capsys.readouterr().out
    assert "passed" in out and "FAILED" not in out


@pytest.mark.parametrize("check_fn, wrong, failing_case", [
    (check.nms, nms_greater_or_equal, "IoU exactly 0.5 at threshold 0.5"),
    (check.nms, nms_unsorted, "the best box comes last"),
    (check.nms, nms_suppressed_still_suppress, "a suppressed B cannot suppress C"),
    (check.precision_recall, pr_unsorted, "sort by decreasing score first"),
    (check.precision_recall, pr_recall_over_detections, "4 detections sorted by score"),
    (check.ap_11_point, ap11_no_interpolation, "precision rises again"),
    (check.ap_11_point, ap11_ten_levels, "recall stops at 0.5"),
    (check.ap_11_point, ap11_all_point, "recall stops at 0.5"),
])
def test_a_classic_slip_fails_on_the_case_that_exposes_it(check_fn, wrong, failing_case, capsys):
    with pytest.raises(ExerciseFailed):
        check_fn(wrong)
    out = capsys.readouterr().out
    assert "FAILED" in out
    assert failing_case in out                                   # the report names the input
    assert "input:" in out and "expected" in out


def test_a_nms_report_shows_the_boxes_and_what_was_expected(capsys):
    with pytest.raises(ExerciseFailed):
        check.nms(nms_greater_or_equal)
    out = capsys.readouterr().out
    assert "boxes=[[0.0, 0.0, 30.0, 10.0], [10.0, 0.0, 40.0, 10.0]]" in out
    assert "expected [0, 1], got [0]" in out


@pytest.mark.parametrize("check_fn, args", [
    (check.nms, 3), (check.precision_recall, 3), (check.ap_11_point, 2),
])
def test_a_raising_function_is_reported_not_crashed(check_fn, args, capsys):
    def broken(*a):
        return [][len(a)]                                        # IndexError on every input

    assert broken.__code__.co_argcount == 0
    with pytest.raises(ExerciseFailed):
        check_fn(broken)
    out = capsys.readouterr().out
    assert "raised IndexError" in out


@pytest.mark.parametrize("check_fn", [check.nms, check.precision_recall, check.ap_11_point])
def test_not_implemented_yet_is_said_plainly(check_fn, capsys):
    with pytest.raises(ExerciseFailed):
        check_fn(not_done)
    out = capsys.readouterr().out
    assert "not implemented yet" in out


def test_a_specific_nms_error_is_shown(capsys):
    with pytest.raises(ExerciseFailed, match="no boxes at all"):
        check.nms(nms_raises)
    out = capsys.readouterr().out
    assert "no boxes at all" in out and "raised IndexError" in out


def test_the_oracles_are_not_cvkit(monkeypatch, capsys):
    """The checks must not call the cvkit function the exercise is about: break cvkit's, they still pass."""
    import sys

    import cvkit

    def broken(*args, **kwargs):
        raise AssertionError("a check used cvkit's own nms")

    monkeypatch.setattr(cvkit, "nms", broken)
    monkeypatch.setattr(sys.modules["cvkit.nms"], "nms", broken)
    check.nms(nms_right)
    assert "passed" in capsys.readouterr().out


def test_hand_made_answers_agree_with_the_oracles():
    import torchvision

    for name, boxes, scores, t, by_hand in checks._nms_inputs():
        if by_hand is not None:
            assert torchvision.ops.nms(boxes, scores, t).tolist() == by_hand, name
    for name, precision, recall, by_hand in checks._ap_inputs():
        if by_hand is not None:
            assert checks._ap_devkit(precision, recall) == pytest.approx(by_hand, abs=1e-12), name


def test_all_is_accurate():
    assert sorted(checks.__all__) == sorted(["nms", "precision_recall", "ap_11_point"])
    for name in checks.__all__:
        assert getattr(check, name) is getattr(checks, name)
