"""Checks for notebook 00: the warm-up exercises on boxes."""
from __future__ import annotations

from typing import Callable

import torch
import torchvision

from cvkit.grading.core import Case, run_cases

__all__ = ["box_area", "box_centers"]


def _cases_boxes() -> list[tuple[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(100)
    corners = torch.rand(6, 2, generator=g) * 50
    random_boxes = torch.cat((corners, corners + 1 + torch.rand(6, 2, generator=g) * 30), dim=1)
    return [
        ("one 10 x 5 box", torch.tensor([[0.0, 0.0, 10.0, 5.0]])),
        ("a box away from the origin", torch.tensor([[3.0, 4.0, 7.0, 10.0]])),
        ("a zero-width box", torch.tensor([[2.0, 2.0, 2.0, 9.0]])),
        ("six random boxes", random_boxes),
        ("no boxes at all (shape [0, 4])", torch.zeros(0, 4)),
    ]


def box_area(student_fn: Callable) -> None:
    """Check ``student_fn(boxes [N, 4] xyxy) -> [N]`` areas against torchvision.ops.box_area."""
    cases = [Case(name, (boxes,), torchvision.ops.box_area(boxes)) for name, boxes in _cases_boxes()]
    run_cases("box_area", student_fn, cases)


def box_centers(student_fn: Callable) -> None:
    """Check ``student_fn(boxes [N, 4] xyxy) -> [N, 2]`` centres against torchvision's cxcywh conversion."""
    cases = [Case(name, (boxes,), torchvision.ops.box_convert(boxes, "xyxy", "cxcywh")[:, :2])
             for name, boxes in _cases_boxes()]
    run_cases("box_centers", student_fn, cases)
