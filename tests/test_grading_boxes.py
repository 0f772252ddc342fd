"""The checks of notebook 01 (cvkit.grading.boxes): right answers pass, classic slips fail on the input
that exposes them, and the report names that input."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torchvision.models.detection._utils import encode_boxes as tv_encode_boxes

import cvkit.boxes
from cvkit.grading import ExerciseFailed, check
from cvkit.grading import boxes as checks


# --- implementations a student might hand in -------------------------------------------------------

def iou_plain(boxes1, boxes2):
    """A correct IoU in plain torch, as the notebook's solution cell writes it."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area1[:, None] + area2[None, :] - inter)


def iou_plus_one(boxes1, boxes2):
    """The legacy inclusive-pixel IoU: widths are x2 - x1 + 1."""
    return iou_plain(boxes1 + torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=boxes1.dtype),
                     boxes2 + torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=boxes2.dtype))


def iou_no_clamp(boxes1, boxes2):
    """Forgets clamp(min=0): two negative sides multiply into a positive 'intersection'."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    wh = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:]) - torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area1[:, None] + area2[None, :] - inter)


def iou_transposed(boxes1, boxes2):
    return iou_plain(boxes2, boxes1)


def iou_diagonal_only(boxes1, boxes2):
    """Pairs boxes1[i] with boxes2[i] instead of every pair (a very common misreading)."""
    n = min(len(boxes1), len(boxes2))
    return torchvision.ops.box_iou(boxes1[:n], boxes2[:n]).diagonal()[:, None]


def _enclosing_area(boxes1, boxes2):
    size = torch.max(boxes1[:, None, 2:], boxes2[None, :, 2:]) - torch.min(boxes1[:, None, :2], boxes2[None, :, :2])
    return size[..., 0] * size[..., 1]


def giou_penalty_on_intersection(boxes1, boxes2):
    """Subtracts |C minus (A ∩ B)| / |C| instead of |C minus (A ∪ B)| / |C|."""
    iou = torchvision.ops.box_iou(boxes1, boxes2)
    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    c = _enclosing_area(boxes1, boxes2)
    return iou - (c - inter) / c


def giou_from_no_clamp_iou(boxes1, boxes2):
    """The right GIoU formula on top of an intersection that forgot clamp(min=0)."""
    area1 = (boxes1[:, 2:] - boxes1[:, :2]).prod(-1)
    area2 = (boxes2[:, 2:] - boxes2[:, :2]).prod(-1)
    wh = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:]) - torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - inter
    c = _enclosing_area(boxes1, boxes2)
    return inter / union - (c - union) / c


def encode_tv(reference_boxes, proposals):
    return tv_encode_boxes(reference_boxes, proposals, torch.ones(4, dtype=reference_boxes.dtype))


def encode_plain(reference_boxes, proposals):
    p_wh = proposals[:, 2:] - proposals[:, :2]
    g_wh = reference_boxes[:, 2:] - reference_boxes[:, :2]
    p_c = proposals[:, :2] + 0.5 * p_wh
    g_c = reference_boxes[:, :2] + 0.5 * g_wh
    return torch.cat(((g_c - p_c) / p_wh, torch.log(g_wh / p_wh)), dim=1)


def encode_corners(reference_boxes, proposals):
    """Measures the shift between top-left corners instead of centres."""
    p_wh = proposals[:, 2:] - proposals[:, :2]
    g_wh = reference_boxes[:, 2:] - reference_boxes[:, :2]
    return torch.cat(((reference_boxes[:, :2] - proposals[:, :2]) / p_wh, torch.log(g_wh / p_wh)), dim=1)


def encode_swapped(reference_boxes, proposals):
    return encode_plain(proposals, reference_boxes)


def encode_no_log(reference_boxes, proposals):
    out = encode_plain(reference_boxes, proposals)
    return torch.cat((out[:, :2], out[:, 2:].exp()), dim=1)


def raises_value_error(*args):
    raise ValueError("boom")


def not_implemented(*args):
    raise NotImplementedError()


CHECKS = {"iou": check.iou, "generalized_iou": check.generalized_iou, "encode_boxes": check.encode_boxes}


# --- the checks pass right answers ----------------------------------------------------------------

@pytest.mark.parametrize("name, fn", [
    ("iou", torchvision.ops.box_iou),
    ("iou", iou_plain),
    ("generalized_iou", torchvision.ops.generalized_box_iou),
    ("encode_boxes", encode_tv),
    ("encode_boxes", encode_plain),
])
def test_check_passes_a_correct_implementation(name, fn, capsys):
    CHECKS[name](fn)                                    # returns quietly...
    out = capsys.readouterr().out
    total = len(checks._pair_inputs()) if name != "encode_boxes" else len(checks._encode_inputs())
    assert f"{name}: {total}/{total} cases passed -- passed" in out   # ...after saying so


def test_checks_do_not_ask_cvkit_for_the_answers(monkeypatch, capsys):
    """The oracles are torchvision and hand-computed values: breaking cvkit's operators changes nothing."""
    def broken(*args, **kwargs):
        raise RuntimeError("cvkit must not be the oracle")

    for name in ("box_iou", "generalized_box_iou", "encode_boxes", "box_area"):
        monkeypatch.setattr(cvkit.boxes, name, broken)
        monkeypatch.setattr(cvkit, name, broken)
    check.iou(torchvision.ops.box_iou)
    check.generalized_iou(torchvision.ops.generalized_box_iou)
    check.encode_boxes(encode_tv)


def test_the_hand_computed_answers_agree_with_torchvision():
    """Guard against a typo in a hand-made expected value (the check would then fail a right answer)."""
    for name, b1, b2, iou_by_hand, giou_by_hand in checks._pair_inputs():
        if iou_by_hand is not None:
            torch.testing.assert_close(torchvision.ops.box_iou(b1, b2).double(),
                                       torch.tensor(iou_by_hand, dtype=torch.float64), msg=name)
        if giou_by_hand is not None:
            torch.testing.assert_close(torchvision.ops.generalized_box_iou(b1, b2).double(),
                                       torch.tensor(giou_by_hand, dtype=torch.float64), msg=name)
    for name, g, p, t_by_hand in checks._encode_inputs():
        if t_by_hand is not None:
            torch.testing.assert_close(encode_tv(g, p).double(), torch.tensor(t_by_hand, dtype=torch.float64),
                                       msg=name)


def test_the_cases_cover_the_awkward_inputs():
    names = " | ".join(name for name, *_ in checks._pair_inputs())
    for needed in ("identical", "touching", "inside", "apart along both", "zero-area", "empty"):
        assert needed in names
    assert any(b1.numel() == 0 for _, b1, *_ in checks._pair_inputs())
    assert any(b2.numel() == 0 for _, _, b2, *_ in checks._pair_inputs())
    assert any(g.numel() == 0 for _, g, *_ in checks._encode_inputs())


def test_all_names_the_checks_and_check_exposes_them():
    assert sorted(checks.__all__) == sorted(CHECKS)
    for name in checks.__all__:
        assert callable(getattr(checks, name))
        assert getattr(check, name) is getattr(checks, name)


# --- and fail wrong ones, naming the input ---------------------------------------------------------

@pytest.mark.parametrize("name, fn, failing_case", [
    ("iou", iou_plus_one, "side by side, sharing half their width"),
    ("iou", iou_no_clamp, "apart along both x and y"),
    ("iou", iou_transposed, "2 boxes against 3"),
    ("iou", iou_diagonal_only, "2 boxes against 3"),
    ("generalized_iou", giou_penalty_on_intersection, "side by side, sharing half their width"),
    ("generalized_iou", giou_from_no_clamp_iou, "apart along both x and y"),
    ("generalized_iou", torchvision.ops.box_iou, "apart along x only"),
    ("encode_boxes", encode_corners, "same top-left corner, G twice as large"),
    ("encode_boxes", encode_swapped, "same top-left corner, G twice as large"),
    ("encode_boxes", encode_no_log, "G equal to P"),
])
def test_check_fails_a_wrong_implementation_and_names_the_input(name, fn, failing_case, capsys):
    with pytest.raises(ExerciseFailed) as info:
        CHECKS[name](fn)
    out = capsys.readouterr().out
    assert isinstance(info.value, AssertionError)       # what nbgrader counts as a failed test
    assert "FAILED" in out
    assert f"  x {failing_case}" in out                 # the failing case by name...
    block = out.split(f"  x {failing_case}", 1)[1]
    assert "input:" in block.splitlines()[1]            # ...then the input it was given
    assert "expected" in block


def test_failing_report_shows_the_boxes_of_the_failing_input(capsys):
    with pytest.raises(ExerciseFailed):
        check.iou(iou_no_clamp)
    out = capsys.readouterr().out
    report = out.split("  x apart along both x and y", 1)[1].split("  x ", 1)[0]
    assert "boxes1=[[0.0, 0.0, 10.0, 10.0]], boxes2=[[20.0, 20.0, 30.0, 30.0]]" in report
    assert "expected" in report and "1.0" in report  # the phantom 100 px² overlap: 100 / (200 - 100)


def test_empty_inputs_are_reported_with_their_shape(capsys):
    def no_empty(boxes1, boxes2):
        if len(boxes1) == 0 or len(boxes2) == 0:
            raise IndexError("empty")
        return torchvision.ops.box_iou(boxes1, boxes2)

    with pytest.raises(ExerciseFailed):
        check.iou(no_empty)
    out = capsys.readouterr().out
    assert "boxes1 of shape [0, 4]" in out
    assert "boxes2 of shape [0, 4]" in out
    assert "12/14 cases passed" in out


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_check_reports_an_exception_without_crashing(name, capsys):
    with pytest.raises(ExerciseFailed):
        CHECKS[name](raises_value_error)
    out = capsys.readouterr().out
    assert "raised ValueError: boom" in out
    assert f"{name}: 0/" in out


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_check_reports_not_implemented(name, capsys):
    with pytest.raises(ExerciseFailed) as info:
        CHECKS[name](not_implemented)
    out = capsys.readouterr().out
    assert "not implemented yet" in out
    assert "not implemented yet" in str(info.value)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_check_rejects_something_that_is_not_a_function(name):
    with pytest.raises(ExerciseFailed, match="expected your function"):
        CHECKS[name](None)


def test_check_does_not_let_the_student_change_its_cases(capsys):
    """A function that writes into its inputs must not corrupt later cases (run_cases passes copies)."""
    def vandal(boxes1, boxes2):
        out = torchvision.ops.box_iou(boxes1, boxes2)
        boxes1.zero_()
        boxes2.fill_(float("nan"))
        return out

    check.iou(vandal)
    check.iou(torchvision.ops.box_iou)
    assert capsys.readouterr().out.count("iou: 14/14 cases passed -- passed") == 2
