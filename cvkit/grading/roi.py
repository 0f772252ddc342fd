"""Checks for notebook 04 (RoI pooling and RoIAlign): bilinear interpolation and one RoIAlign bin.

Expected answers come from values worked out by hand (the case names give the arithmetic), from
``torch.nn.functional.grid_sample`` (bilinear with ``align_corners=True`` reads cell ``(i, j)`` at point
``(i, j)``, RoIAlign's convention) and from ``torchvision.ops.roi_align``; never from cvkit. The cases catch
the classic slips: weights swapped between the two neighbours, x and y swapped, reading past the last
row or column when the point lies exactly on it, samples at the bin's corners instead of the centres
of a regular grid, and a sum where a mean is due.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor

from cvkit.grading.core import Case, close, run_cases

__all__ = ["bilinear_interpolation", "roi_align_bin"]


def _ramp(height: int, width: int) -> Tensor:
    """``F[y, x] = 10 y + x``: bilinear interpolation reproduces it exactly, so answers are easy to work out."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                            indexing="ij")
    return 10 * ys + xs


def _grid_sample(feature: Tensor, y: float, x: float) -> Tensor:
    height, width = feature.shape
    gx = 2 * x / (width - 1) - 1 if width > 1 else 0.0
    gy = 2 * y / (height - 1) - 1 if height > 1 else 0.0
    grid = torch.tensor([[[[gx, gy]]]], dtype=torch.float64)
    return F.grid_sample(feature[None, None].double(), grid, mode="bilinear", align_corners=True)[0, 0, 0, 0]


def bilinear_interpolation(student_fn: Callable) -> None:
    """Check ``student_fn(feature [H, W], y, x) -> float``: the bilinear value at a point inside the map.

    Points satisfy ``0 <= y <= H - 1`` and ``0 <= x <= W - 1``. Oracles: hand-computed values and
    ``grid_sample`` with ``align_corners=True``.
    """
    square = torch.tensor([[0.0, 10.0], [20.0, 40.0]], dtype=torch.float64)
    ramp = _ramp(5, 7)
    g = torch.Generator().manual_seed(104)
    random_map = torch.randn(6, 9, generator=g, dtype=torch.float64)
    cases = [
        Case("on a cell: F[1, 0] = 20", (square, 1.0, 0.0), 20.0),
        Case("halfway along the top edge: (0 + 10) / 2", (square, 0.0, 0.5), 5.0),
        Case("halfway down the left edge: (0 + 20) / 2 (x and y swapped gives 5)", (square, 0.5, 0.0), 10.0),
        Case("(0.25, 0.5): 0.75 * (0 + 10) / 2 + 0.25 * (20 + 40) / 2 = 3.75 + 7.5", (square, 0.25, 0.5), 11.25),
        Case("(0.9, 0.2), weights 0.1 and 0.9 (swapping them gives 9.8): 0.1 * 2 + 0.9 * (20 * 0.8 + 40 * 0.2)",
             (square, 0.9, 0.2), 0.1 * 2.0 + 0.9 * 24.0),
        Case("on a ramp F[y, x] = 10 y + x the answer is 10 y + x: (2.3, 4.6) -> 27.6", (ramp, 2.3, 4.6), 27.6),
        Case("exactly on the last row and column, (4, 6) -> 46 (there is no row 5 to read)", (ramp, 4.0, 6.0), 46.0),
        Case("on the last row, between columns: (4, 2.5) -> 42.5", (ramp, 4.0, 2.5), 42.5),
    ]
    for y, x in torch.rand(4, 2, generator=g, dtype=torch.float64).mul(torch.tensor([5.0, 8.0])).tolist():
        cases.append(Case(f"a random 6 x 9 map at ({y:.3f}, {x:.3f}) (grid_sample's answer)", (random_map, y, x),
                          _grid_sample(random_map, y, x)))
    run_cases("bilinear_interpolation", student_fn, cases)


def roi_align_bin(student_fn: Callable) -> None:
    """Check ``student_fn(feature [H, W], box, sampling_ratio) -> float``: RoIAlign of the whole box as one bin.

    ``box = (x1, y1, x2, y2)`` in feature cells, at least one cell wide and high, with its samples inside the
    map; the answer is the mean of ``sampling_ratio x sampling_ratio`` bilinear samples at
    ``y1 + (i + 0.5) (y2 - y1) / s`` and likewise for x. Oracles: hand-computed values and
    ``torchvision.ops.roi_align(..., output_size=1, spatial_scale=1, sampling_ratio=s, aligned=False)``.
    """
    ramp = _ramp(8, 10)
    g = torch.Generator().manual_seed(204)
    random_map = torch.randn(9, 11, generator=g, dtype=torch.float64)

    def oracle(feature: Tensor, box: tuple[float, float, float, float], s: int) -> Tensor:
        rois = torch.tensor([[0.0, *box]], dtype=torch.float64)
        return torchvision.ops.roi_align(feature[None, None].double(), rois, 1, 1.0, s, False)[0, 0, 0, 0]

    cases = [
        Case("one sample at the centre of (2, 1) - (4, 3): F(2, 3) = 10 * 2 + 3", (ramp, (2.0, 1.0, 4.0, 3.0), 1),
             23.0),
        Case("on a ramp the mean of a regular grid is the value at the box centre: (1, 2) - (7, 6) -> 10 * 4 + 4",
             (ramp, (1.0, 2.0, 7.0, 6.0), 2), 44.0),
        Case("a 2 x 2 grid on [[0, 10], [20, 40]] over (0, 0) - (1, 1): samples at 0.25 and 0.75",
             (torch.tensor([[0.0, 10.0], [20.0, 40.0]], dtype=torch.float64), (0.0, 0.0, 1.0, 1.0), 2),
             oracle(torch.tensor([[0.0, 10.0], [20.0, 40.0]]), (0.0, 0.0, 1.0, 1.0), 2)),
    ]
    for s in (1, 2, 3):
        corner = torch.rand(2, generator=g, dtype=torch.float64) * torch.tensor([4.0, 3.0])
        size = 1 + torch.rand(2, generator=g, dtype=torch.float64) * torch.tensor([5.0, 4.5])
        box = tuple(round(v, 3) for v in torch.cat((corner, corner + size)).tolist())
        cases.append(Case(f"a random box {box} with sampling_ratio {s} (torchvision's answer)",
                          (random_map, box, s), oracle(random_map, box, s)))
    run_cases("roi_align_bin", student_fn, [Case(c.name, c.args, c.expected, close(rtol=1e-5, atol=1e-6))
                                            for c in cases])
