"""Checks for notebook 02: greedy NMS, the precision/recall curve and VOC 2007 11-point average precision.

Expected answers come from ``torchvision.ops.nms``, from values worked out by hand (the case names say
how), and, for precision/recall and AP, from short loops written here the way the PASCAL VOC devkit
computes them; never from cvkit. The hand-made cases are the ones that catch the classic slips:

- NMS: a box whose IoU *equals* the threshold (kept: only IoU > threshold suppresses), scores that are not
  sorted, a chain where a suppressed box must not suppress anything itself, tied scores (the lower index
  first, as a stable sort gives), threshold 1.0, empty input and a single box;
- precision/recall: detections not sorted by score, tied scores, missed objects, no detections;
- 11-point AP: precision that rises again further down the ranking (the interpolation takes the best
  precision at *any* recall at least the level), recall that stops short of 1, a first detection that is wrong.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torchvision
from torch import Tensor

from cvkit.grading.core import Case, close, equal_sequence, run_cases

__all__ = ["nms", "precision_recall", "ap_11_point"]


# --- greedy NMS --------------------------------------------------------------------------------------

def _clustered(n_objects: int, per_object: int, g: torch.Generator, dtype: torch.dtype = torch.float32):
    """Detections as a detector outputs them: jittered copies of a few objects, random scores."""
    centres = 40 + torch.rand(n_objects, 2, generator=g, dtype=torch.float64) * 200
    sizes = 20 + torch.rand(n_objects, 2, generator=g, dtype=torch.float64) * 60
    centre = centres.repeat_interleave(per_object, 0) + torch.randn(n_objects * per_object, 2, generator=g,
                                                                    dtype=torch.float64) * 6
    size = sizes.repeat_interleave(per_object, 0) * (1 + 0.15 * torch.randn(n_objects * per_object, 2, generator=g,
                                                                           dtype=torch.float64)).clamp(min=0.5)
    boxes = torch.cat((centre - size / 2, centre + size / 2), dim=1).to(dtype)
    return boxes, torch.rand(len(boxes), generator=g, dtype=torch.float64).to(dtype)


def _nms_inputs() -> list[tuple[str, Tensor, Tensor, float, list[int] | None]]:
    """(name, boxes, scores, iou_threshold, kept indices by hand); None where torchvision answers alone."""
    g = torch.Generator().manual_seed(202)
    f = lambda rows: torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)   # noqa: E731
    s = lambda values: torch.tensor(values, dtype=torch.float32)              # noqa: E731
    half = f([[0, 0, 30, 10], [10, 0, 40, 10]])                               # IoU 200 / 400 = 0.5 exactly
    chain = f([[0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10]])               # IoU 0.43 next door, 0.11 two apart
    many, many_scores = _clustered(4, 10, g)
    tied, _ = _clustered(3, 10, g)
    tied_scores = torch.randint(1, 4, (len(tied),), generator=g).float() / 4   # only three different scores
    double, double_scores = _clustered(3, 8, g, torch.float64)
    return [
        ("a single box", f([[5, 5, 20, 30]]), s([0.7]), 0.5, [0]),
        ("no boxes at all (shape [0, 4]): return an empty tensor", f([]), s([]), 0.5, []),
        ("two disjoint boxes: both kept, the higher score first", f([[0, 0, 10, 10], [20, 20, 30, 30]]),
         s([0.3, 0.8]), 0.5, [1, 0]),
        ("IoU exactly 0.5 at threshold 0.5: kept (only IoU > threshold suppresses)", half, s([0.9, 0.8]), 0.5,
         [0, 1]),
        ("the same two boxes at threshold 0.45: suppressed", half, s([0.9, 0.8]), 0.45, [0]),
        ("the best box comes last: sort by score first", f([[0, 0, 10, 10], [1, 1, 11, 11], [0, 1, 10, 11]]),
         s([0.2, 0.5, 0.9]), 0.5, [2]),
        ("a chain A-B-C at threshold 0.3: A suppresses B, and a suppressed B cannot suppress C", chain,
         s([0.9, 0.8, 0.7]), 0.3, [0, 2]),
        ("the same chain with B best: B suppresses both A and C", chain, s([0.8, 0.9, 0.7]), 0.3, [1]),
        ("two identical boxes with equal scores: keep the lower index (a stable sort)",
         f([[3, 3, 13, 13], [3, 3, 13, 13]]), s([0.6, 0.6]), 0.5, [0]),
        ("threshold 1.0: nothing is suppressed, not even an identical box (IoU 1 is not > 1)",
         f([[3, 3, 13, 13], [3, 3, 13, 13], [5, 5, 15, 15]]), s([0.6, 0.9, 0.4]), 1.0, [1, 0, 2]),
        ("threshold 0.0: any overlap suppresses, boxes that only touch do not",
         f([[0, 0, 10, 10], [9, 9, 19, 19], [10, 0, 20, 10]]), s([0.9, 0.8, 0.7]), 0.0, [0, 2]),
        ("40 detections around 4 objects, threshold 0.3", many, many_scores, 0.3, None),
        ("the same 40 detections, threshold 0.5", many, many_scores, 0.5, None),
        ("the same 40 detections, threshold 0.7", many, many_scores, 0.7, None),
        ("30 detections with many tied scores (ties: the lower index first), threshold 0.5", tied, tied_scores,
         0.5, None),
        ("24 detections in float64, threshold 0.4", double, double_scores, 0.4, None),
    ]


def _show_nms(boxes: Tensor, scores: Tensor, t: float) -> str:
    if boxes.numel() == 0 or boxes.shape[0] > 4:
        return f"boxes of shape {list(boxes.shape)} ({boxes.dtype}), iou_threshold={t}"
    return f"boxes={boxes.tolist()}, scores={[round(v, 4) for v in scores.tolist()]}, iou_threshold={t}"


def nms(student_fn: Callable) -> None:
    """Check ``student_fn(boxes [N, 4], scores [N], iou_threshold) -> kept indices`` (greedy NMS).

    The kept indices must come in decreasing order of score, as ``torchvision.ops.nms`` returns them (the
    oracle, with values worked out by hand for the small cases).
    """
    cases = []
    for name, boxes, scores, t, by_hand in _nms_inputs():
        expected = torchvision.ops.nms(boxes, scores, t)
        if by_hand is not None and expected.tolist() != by_hand:     # two oracles must agree
            raise RuntimeError(f"check.nms: torchvision and the hand-made answer disagree on {name!r}")
        cases.append(Case(name, (boxes, scores, t), expected, compare=equal_sequence, show=_show_nms(boxes, scores, t)))
    run_cases("nms", student_fn, cases)


# --- precision and recall ---------------------------------------------------------------------------

def _pr_by_loop(scores: list[float], is_tp: list[bool], num_gt: int) -> tuple[list[float], list[float]]:
    """Precision and recall down the ranking, one detection at a time (stable sort by decreasing score)."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])               # Python's sort is stable
    tp = fp = 0
    precision, recall = [], []
    for i in order:
        tp, fp = tp + bool(is_tp[i]), fp + (not is_tp[i])
        precision.append(tp / (tp + fp))
        recall.append(tp / num_gt)
    return precision, recall


def _compare_pair(got: Any, expected: tuple[list[float], list[float]]) -> str | None:
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"expected a pair (precision, recall), got {type(got).__name__}"
    for name, g, e in zip(("precision", "recall"), got, expected):
        why = close()(g, torch.tensor(e, dtype=torch.float64))
        if why is not None:
            return f"{name}: {why}"
    return None


def _pr_inputs() -> list[tuple[str, Tensor, Tensor, int, tuple[list[float], list[float]] | None]]:
    """(name, scores, is_tp, num_gt, (precision, recall) by hand); None where the loop answers alone."""
    g = torch.Generator().manual_seed(203)
    s = lambda values: torch.tensor(values, dtype=torch.float32)              # noqa: E731
    b = lambda values: torch.tensor(values, dtype=torch.bool)                 # noqa: E731
    random_scores = torch.rand(30, generator=g)
    random_tp = torch.rand(30, generator=g) < 0.4
    return [
        ("4 detections sorted by score: right, wrong, right, right; 4 objects",
         s([0.9, 0.8, 0.7, 0.6]), b([1, 0, 1, 1]), 4, ([1, 1 / 2, 2 / 3, 3 / 4], [1 / 4, 1 / 4, 2 / 4, 3 / 4])),
        ("the same detections in another order: sort by decreasing score first",
         s([0.7, 0.9, 0.6, 0.8]), b([1, 1, 1, 0]), 4, ([1, 1 / 2, 2 / 3, 3 / 4], [1 / 4, 1 / 4, 2 / 4, 3 / 4])),
        ("tied scores: the lower index comes first (a stable sort)",
         s([0.5, 0.5, 0.9]), b([0, 1, 1]), 2, ([1, 1 / 2, 2 / 3], [1 / 2, 1 / 2, 1])),
        ("every detection wrong: precision and recall stay 0", s([0.3, 0.2]), b([0, 0]), 3, ([0, 0], [0, 0])),
        ("the first detection wrong, then all 3 objects found", s([0.95, 0.9, 0.5, 0.4]), b([0, 1, 1, 1]), 3,
         ([0, 1 / 2, 2 / 3, 3 / 4], [0, 1 / 3, 2 / 3, 1])),
        ("no detections at all: two empty tensors", s([]), b([]), 5, ([], [])),
        ("30 random detections, 15 objects", random_scores, random_tp, 15, None),
    ]


def precision_recall(student_fn: Callable) -> None:
    """Check ``student_fn(scores [N], is_tp [N] bool, num_gt) -> (precision [N], recall [N])``.

    Entry ``k`` of each is measured over the ``k + 1`` highest-scoring detections (ties: lower index first).
    Oracles: values worked out by hand and a loop over the ranking.
    """
    cases = []
    for name, scores, is_tp, num_gt, by_hand in _pr_inputs():
        expected = _pr_by_loop(scores.tolist(), is_tp.tolist(), num_gt)
        if by_hand is not None and not all(torch.allclose(torch.tensor(a, dtype=torch.float64),
                                                          torch.tensor(b, dtype=torch.float64))
                                           for a, b in zip(expected, by_hand)):
            raise RuntimeError(f"check.precision_recall: the loop and the hand-made answer disagree on {name!r}")
        show = (f"scores={[round(v, 4) for v in scores.tolist()]}, is_tp={is_tp.int().tolist()}, num_gt={num_gt}"
                if len(scores) <= 6 else f"{len(scores)} random scores and is_tp, num_gt={num_gt}")
        cases.append(Case(name, (scores, is_tp, num_gt), expected, compare=_compare_pair, show=show))
    run_cases("precision_recall", student_fn, cases)


# --- VOC 2007 11-point average precision ----------------------------------------------------------------

def _ap_devkit(precision: list[float], recall: list[float]) -> float:
    """VOC 2007 (VOCevaldet.m): mean over t = 0, 0.1, ..., 1 of the best precision at recall >= t, else 0."""
    ap = 0.0
    for k in range(11):
        at_least = [p for p, r in zip(precision, recall) if r >= k / 10]
        ap += (max(at_least) if at_least else 0.0) / 11
    return ap


def _ap_inputs() -> list[tuple[str, list[float], list[float], float | None]]:
    """(name, precision, recall, AP by hand); None where the devkit loop answers alone.

    Recall values are kept away from 0.3, 0.6 and 0.7, which ``numpy.arange(0, 1.1, 0.1)`` does not hit
    exactly (so implementations that build the levels differently agree on every case).
    """
    g = torch.Generator().manual_seed(204)
    random_cases = []
    for num_gt, n in ((8, 20), (7, 25)):
        flags = (torch.rand(n, generator=g) < 0.45).tolist()
        flags = [f and sum(flags[:i + 1]) <= num_gt for i, f in enumerate(flags)]   # at most num_gt found
        p, r = _pr_by_loop(list(range(n, 0, -1)), flags, num_gt)
        random_cases.append((f"{n} random detections, {num_gt} objects, {sum(flags)} found", p, r, None))
    return [
        ("every detection right, 4 objects, all found: AP 1", [1, 1, 1, 1], [0.25, 0.5, 0.75, 1], 1.0),
        ("right, wrong, right, right with 4 objects: precision rises again, take the best to the right "
         "(3 levels at 1, 5 at 0.75, 3 at 0): 6.75 / 11",
         [1, 1 / 2, 2 / 3, 3 / 4], [0.25, 0.25, 0.5, 0.75], 6.75 / 11),
        ("recall stops at 0.5: the 5 levels above it count 0; 6 / 11", [1, 1], [0.25, 0.5], 6 / 11),
        ("the first detection wrong, then both objects found: every level gets 2/3", [0, 1 / 2, 2 / 3],
         [0, 0.5, 1], 2 / 3),
        ("3 objects, right, right, wrong, wrong, right: 7 levels at 1, 4 at 0.6; 9.4 / 11",
         [1, 1, 2 / 3, 1 / 2, 3 / 5], [1 / 3, 2 / 3, 2 / 3, 2 / 3, 1], 9.4 / 11),
        ("every detection wrong: AP 0", [0, 0, 0], [0, 0, 0], 0.0),
        ("no detections at all (empty tensors): AP 0", [], [], 0.0),
        *random_cases,
    ]


def ap_11_point(student_fn: Callable) -> None:
    """Check ``student_fn(precision [N], recall [N]) -> AP`` with PASCAL VOC 2007's 11-point interpolation.

    ``AP = 1/11 * sum over t in {0, 0.1, ..., 1} of max(precision[recall >= t])`` (0 where no recall reaches t).
    Oracles: values worked out by hand and the devkit's loop.
    """
    cases = []
    for name, precision, recall, by_hand in _ap_inputs():
        expected = _ap_devkit(precision, recall)
        if by_hand is not None and abs(expected - by_hand) > 1e-12:
            raise RuntimeError(f"check.ap_11_point: the devkit loop and the hand-made answer disagree on {name!r}")
        p, r = torch.tensor(precision, dtype=torch.float64), torch.tensor(recall, dtype=torch.float64)
        show = (f"precision={[round(v, 4) for v in precision]}, recall={[round(v, 4) for v in recall]}"
                if len(precision) <= 6 else f"precision and recall of {len(precision)} detections")
        cases.append(Case(name, (p, r), expected, compare=close(rtol=1e-6, atol=1e-6), show=show))
    run_cases("ap_11_point", student_fn, cases)
