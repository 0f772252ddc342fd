"""Checks for notebook 09 (deformable convolution): the bilinear read at a fractional point, and the layout
of the offset tensor.

Expected answers come from values worked out by hand (the case names give the arithmetic) and from
``torchvision.ops.deform_conv2d``: a 1 x 1 kernel of weight 1 whose offset at output pixel (0, 0) is (y, x)
reads the input exactly at (y, x), so torchvision's kernel is the oracle for the bilinear read. The layout
is torchvision's documented one: channel ``2 * (g * kh * kw + i * kw + j)`` holds Δy of tap (i, j) in offset
group g, the next channel Δx. Never from cvkit.
"""
from __future__ import annotations

from typing import Callable

import torch
import torchvision
from torch import Tensor

from cvkit.grading.core import Case, close, run_cases

__all__ = ["deform_bilinear", "offset_layout"]


def _torchvision_read(image: Tensor, y: float, x: float) -> float:
    """torchvision's deform_conv2d with a 1 x 1 kernel of weight 1, its only tap moved to (y, x)."""
    offset = torch.zeros(1, 2, *image.shape, dtype=torch.float64)
    offset[0, :, 0, 0] = torch.tensor([y, x], dtype=torch.float64)             # output pixel (0, 0) reads (y, x)
    out = torchvision.ops.deform_conv2d(image[None, None].double(), offset, torch.ones(1, 1, 1, 1, dtype=torch.float64))
    return float(out[0, 0, 0, 0])


def deform_bilinear(student_fn: Callable[[Tensor, float, float], Tensor], verbose: bool = True) -> None:
    """Check ``student_fn(image [H, W], y, x)``: deformable convolution's bilinear read (zero outside the image)."""
    image = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], dtype=torch.float64)     # value = 3 y + x
    g = torch.Generator().manual_seed(9)
    noise = torch.randn(5, 6, generator=g, dtype=torch.float64)
    cases = [
        Case("on a pixel: (1, 2) reads 5", (image, 1.0, 2.0), 5.0),
        Case("halfway between four pixels: (0.5, 0.5) = (0 + 1 + 3 + 4) / 4 = 2", (image, 0.5, 0.5), 2.0),
        Case("a quarter down, between columns: (0.25, 1.5) = 0.75 * 1.5 + 0.25 * 4.5 = 2.25", (image, 0.25, 1.5), 2.25),
        Case("half a pixel above the image: (-0.5, 1) = 0.5 * 0 (outside) + 0.5 * 1 = 0.5", (image, -0.5, 1.0), 0.5),
        Case("half a pixel right of the image: (1, 2.5) = 0.5 * 5 + 0.5 * 0 (outside) = 2.5", (image, 1.0, 2.5), 2.5),
        Case("one whole pixel outside: (-1, 1) reads 0", (image, -1.0, 1.0), 0.0),
        Case("far outside: (10, -7) reads 0", (image, 10.0, -7.0), 0.0),
    ]
    for y, x in ((1.3, 2.7), (3.9, 0.2), (-0.6, 4.4), (4.5, 5.5), (2.0, 3.25)):
        cases.append(Case(f"a random 5 x 6 image at ({y}, {x}), as torchvision's deform_conv2d reads it",
                          (noise, y, x), _torchvision_read(noise, y, x), show=f"image of shape [5, 6], y={y}, x={x}"))
    run_cases("deform_bilinear", student_fn, cases, verbose)


def offset_layout(student_fn: Callable[[Tensor, int, int], Tensor], verbose: bool = True) -> None:
    """Check ``student_fn(shifts [G, kh, kw, 2], out_h, out_w)``: the offset tensor ``[1, 2 G kh kw, out_h, out_w]``
    that moves tap (i, j) of offset group g by ``shifts[g, i, j] = (Δy, Δx)`` at every output pixel."""
    g = torch.Generator().manual_seed(10)
    inputs = [
        ("one group, 3 x 3, only tap (0, 2) moves by (Δy, Δx) = (1, -2): channels 4 and 5", (1, 3, 3), [(0, 0, 2)]),
        ("one group, 2 x 3 kernel (non-square), tap (1, 0) moves: channels 6 and 7", (1, 2, 3), [(0, 1, 0)]),
        ("two groups, 3 x 3: group 1's tap (0, 0) moves: channels 18 and 19", (2, 3, 3), [(1, 0, 0)]),
        ("two groups, 1 x 2 kernel, random shifts everywhere", (2, 1, 2), None),
        ("one group, 3 x 3, random shifts everywhere", (1, 3, 3), None),
    ]
    cases = []
    for name, (groups, kh, kw), moved in inputs:
        shifts = torch.zeros(groups, kh, kw, 2, dtype=torch.float64)
        if moved is None:
            shifts = torch.randn(groups, kh, kw, 2, generator=g, dtype=torch.float64).round(decimals=2)
        for group, i, j in moved or []:
            shifts[group, i, j] = torch.tensor([1.0, -2.0])
        expected = torch.zeros(1, 2 * groups * kh * kw, 4, 5, dtype=torch.float64)
        for group in range(groups):
            for i in range(kh):
                for j in range(kw):
                    channel = 2 * (group * kh * kw + i * kw + j)
                    expected[0, channel] = shifts[group, i, j, 0]         # Δy
                    expected[0, channel + 1] = shifts[group, i, j, 1]     # Δx
        cases.append(Case(name, (shifts, 4, 5), expected, compare=close(rtol=0, atol=1e-12),
                          show=f"shifts of shape {list(shifts.shape)}, out_h=4, out_w=5"))
    run_cases("offset_layout", student_fn, cases, verbose)
