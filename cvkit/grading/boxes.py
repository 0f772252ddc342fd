"""Checks for notebook 01: pairwise IoU, generalized IoU and R-CNN box regression targets.

Expected answers come from torchvision (``torchvision.ops.box_iou``, ``torchvision.ops.generalized_box_iou``,
``torchvision.models.detection._utils.encode_boxes``) and from values worked out by hand, which the case
names describe; never from cvkit. The hand-made cases are the ones that catch the classic slips: boxes
apart along both axes (a forgotten ``clamp(min=0)`` turns two negative sides into a positive area),
touching edges, one box inside the other, zero-area boxes, and empty inputs of shape ``[0, 4]``.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torchvision
from torch import Tensor
from torchvision.models.detection._utils import encode_boxes as _tv_encode_boxes

from cvkit.grading.core import Case, run_cases

__all__ = ["iou", "generalized_iou", "encode_boxes"]


def _boxes(rows: list[list[float]], dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.tensor(rows, dtype=dtype).reshape(-1, 4)


def _random_boxes(n: int, g: torch.Generator, offset: float = 0.0, dtype: torch.dtype = torch.float32) -> Tensor:
    """``n`` random boxes on a quarter-pixel grid (exact in binary, short to print), at least 1 pixel wide."""
    corners = offset + torch.round(torch.rand(n, 2, generator=g, dtype=torch.float64) * 240) / 4
    sizes = 1 + torch.round(torch.rand(n, 2, generator=g, dtype=torch.float64) * 160) / 4
    return torch.cat((corners, corners + sizes), dim=1).to(dtype)


def _pair_inputs() -> list[tuple[str, Tensor, Tensor, list[list[float]] | None, list[list[float]] | None]]:
    """(name, boxes1, boxes2, IoU by hand, GIoU by hand); None where torchvision answers instead."""
    g = torch.Generator().manual_seed(101)
    unit = [[0.0, 0.0, 10.0, 10.0]]
    return [
        ("two identical boxes", _boxes(unit), _boxes(unit), [[1.0]], [[1.0]]),
        ("side by side, sharing half their width: 50 / 150", _boxes(unit), _boxes([[5, 0, 15, 10]]),
         [[1 / 3]], [[1 / 3]]),
        ("overlapping at a corner: 1 / 7, enclosing box of area 9", _boxes([[0, 0, 2, 2]]), _boxes([[1, 1, 3, 3]]),
         [[1 / 7]], [[1 / 7 - 2 / 9]]),
        ("one box inside the other: 16 / 100", _boxes(unit), _boxes([[2, 2, 6, 6]]), [[0.16]], [[0.16]]),
        ("touching edges (x2 of one is x1 of the other)", _boxes(unit), _boxes([[10, 0, 20, 10]]),
         [[0.0]], [[0.0]]),
        ("apart along x only", _boxes(unit), _boxes([[20, 0, 30, 10]]), [[0.0]], [[-1 / 3]]),
        ("apart along both x and y (negative width times negative height is positive: clamp them)",
         _boxes(unit), _boxes([[20, 20, 30, 30]]), [[0.0]], [[-7 / 9]]),
        ("a zero-area box (a vertical line) inside the other box", _boxes([[4, 0, 4, 10]]), _boxes(unit),
         [[0.0]], [[0.0]]),
        ("a zero-area box (a vertical line) outside the other box", _boxes([[20, 0, 20, 10]]), _boxes(unit),
         [[0.0]], [[-0.5]]),
        ("2 boxes against 3 (the answer is [2, 3]: rows follow boxes1)",
         _boxes([[0, 0, 10, 10], [5, 0, 15, 10]]), _boxes([[0, 0, 10, 10], [20, 0, 30, 10], [2, 2, 6, 6]]),
         [[1.0, 0.0, 0.16], [1 / 3, 0.0, 1 / 28]], None),
        ("7 random boxes against 5", _random_boxes(7, g), _random_boxes(5, g), None, None),
        ("6 random boxes against 4, far from the origin, in float64",
         _random_boxes(6, g, offset=1000.0, dtype=torch.float64),
         _random_boxes(4, g, offset=1000.0, dtype=torch.float64), None, None),
        ("boxes1 empty (shape [0, 4]): the answer has shape [0, 3]", torch.zeros(0, 4), _random_boxes(3, g),
         None, None),
        ("boxes2 empty (shape [0, 4]): the answer has shape [2, 0]", _random_boxes(2, g), torch.zeros(0, 4),
         None, None),
    ]


def _show(boxes1: Tensor, boxes2: Tensor) -> str:
    def one(name: str, boxes: Tensor) -> str:
        if boxes.numel() == 0 or boxes.numel() > 16:
            return f"{name} of shape {list(boxes.shape)}"
        return f"{name}={boxes.tolist()}"
    return f"{one('boxes1', boxes1)}, {one('boxes2', boxes2)}"


def _pair_cases(oracle: Callable[[Tensor, Tensor], Tensor], hand_column: int) -> list[Case]:
    """Cases from ``_pair_inputs``: the hand-worked answer where there is one (column 0 IoU, 1 GIoU), else the oracle's."""
    cases = []
    for name, b1, b2, *by_hand in _pair_inputs():
        answer = by_hand[hand_column]
        expected = torch.tensor(answer, dtype=torch.float64) if answer is not None else oracle(b1, b2)
        cases.append(Case(name, (b1, b2), expected, show=_show(b1, b2)))
    return cases


def iou(student_fn: Callable) -> None:
    """Check ``student_fn(boxes1 [N, 4], boxes2 [M, 4]) -> [N, M]`` pairwise IoU of xyxy boxes.

    Oracles: ``torchvision.ops.box_iou`` and values worked out by hand.
    """
    run_cases("iou", student_fn, _pair_cases(torchvision.ops.box_iou, 0))


def generalized_iou(student_fn: Callable) -> None:
    """Check ``student_fn(boxes1 [N, 4], boxes2 [M, 4]) -> [N, M]`` pairwise generalized IoU of xyxy boxes.

    Oracles: ``torchvision.ops.generalized_box_iou`` and values worked out by hand.
    """
    run_cases("generalized_iou", student_fn, _pair_cases(torchvision.ops.generalized_box_iou, 1))


def _encode_inputs() -> list[tuple[str, Tensor, Tensor, list[list[float]] | None]]:
    """(name, reference_boxes G, proposals P, (t_x, t_y, t_w, t_h) by hand); None where torchvision answers."""
    g = torch.Generator().manual_seed(102)
    ln2 = math.log(2.0)
    return [
        ("G equal to P: nothing to move", _boxes([[10, 20, 50, 80]]), _boxes([[10, 20, 50, 80]]), [[0, 0, 0, 0]]),
        ("G moved right by half of P's width", _boxes([[5, 0, 15, 20]]), _boxes([[0, 0, 10, 20]]),
         [[0.5, 0, 0, 0]]),
        ("G moved left and up: centres (10, 20) and (20, 30), P is 20 x 40", _boxes([[0, 0, 20, 40]]),
         _boxes([[10, 10, 30, 50]]), [[-0.5, -0.25, 0, 0]]),
        ("same top-left corner, G twice as large (the centres differ, the corners do not)",
         _boxes([[0, 0, 20, 20]]), _boxes([[0, 0, 10, 10]]), [[0.5, 0.5, ln2, ln2]]),
        ("same centre, G half of P's width and height", _boxes([[10, 5, 30, 15]]), _boxes([[0, 0, 40, 20]]),
         [[0, 0, -ln2, -ln2]]),
        ("3 pairs at once, matched row by row", _boxes([[0, 0, 20, 20], [5, 0, 15, 20], [10, 5, 30, 15]]),
         _boxes([[0, 0, 10, 10], [0, 0, 10, 20], [0, 0, 40, 20]]), None),
        ("6 random pairs", _random_boxes(6, g), _random_boxes(6, g), None),
        ("4 random pairs far from the origin, in float64", _random_boxes(4, g, offset=1000.0, dtype=torch.float64),
         _random_boxes(4, g, offset=1000.0, dtype=torch.float64), None),
        ("no boxes at all (shape [0, 4]): the answer has shape [0, 4]", torch.zeros(0, 4), torch.zeros(0, 4), None),
    ]


def encode_boxes(student_fn: Callable) -> None:
    """Check ``student_fn(reference_boxes [N, 4], proposals [N, 4]) -> [N, 4]`` R-CNN regression targets.

    The targets are R-CNN's eq. 6-9 without weights: ``t_x = (G_x - P_x) / P_w``, ``t_y = (G_y - P_y) / P_h``,
    ``t_w = log(G_w / P_w)``, ``t_h = log(G_h / P_h)`` with centres and sizes, G the reference (ground-truth)
    box and P the proposal. Oracles: torchvision's detection ``encode_boxes`` with weights (1, 1, 1, 1) and
    values worked out by hand.
    """
    def show(g: Tensor, p: Tensor) -> str:
        return _show(g, p).replace("boxes1", "reference_boxes").replace("boxes2", "proposals")

    cases = [Case(name, (g, p),
                  torch.tensor(by_hand, dtype=torch.float64) if by_hand is not None
                  else _tv_encode_boxes(g, p, torch.ones(4, dtype=g.dtype)),
                  show=show(g, p))
             for name, g, p, by_hand in _encode_inputs()]
    run_cases("encode_boxes", student_fn, cases)
