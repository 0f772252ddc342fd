"""Checks for notebook 07 (upsampling and transposed convolution).

Expected answers come from ``torch.nn.functional`` (``conv_transpose2d``, ``conv1d``) and from small cases
worked out by hand, which the case names describe; never from :mod:`cvkit.upsampling`. The hand cases catch
the usual slips: forgetting that overlapping stamps *add* (stride smaller than the kernel), dropping the gaps
of zeros when the stride is larger than the kernel, an output size off by one, and a flipped kernel
(a transposed convolution stamps the kernel as it is; it does not flip it).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from cvkit.grading.core import Case, run_cases

__all__ = ["conv_transpose2d", "conv_as_matrix"]


def _conv_transpose_oracle(x: Tensor, kernel: Tensor, stride: int) -> Tensor:
    return F.conv_transpose2d(x[None, None], kernel[None, None], stride=stride)[0, 0]


def _show(x: Tensor, kernel: Tensor, stride: int) -> str:
    def one(name: str, t: Tensor) -> str:
        return f"{name}={t.tolist()}" if t.numel() <= 16 else f"{name} of shape {list(t.shape)}"
    return f"{one('input', x)}, {one('kernel', kernel)}, stride={stride}"


def _conv_transpose_cases() -> list[tuple[str, tuple[Tensor, Tensor, int], Tensor]]:
    """(name, (input, kernel, stride), expected): by hand first, then random inputs answered by torch."""
    g = torch.Generator().manual_seed(107)
    two_by_two = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    cases = [
        # each value stamps a 3 x 3 block of itself at (2i, 2j); row and column 2 are shared, so they add:
        # the centre is 1 + 2 + 3 + 4 = 10, the middle of the top row 1 + 2 = 3
        ("2 x 2 input, 3 x 3 kernel of ones, stride 2 (the notes' example before cropping): overlaps add",
         (two_by_two, torch.ones(3, 3), 2),
         torch.tensor([[1.0, 1, 3, 2, 2], [1, 1, 3, 2, 2], [4, 4, 10, 6, 6], [3, 3, 7, 4, 4], [3, 3, 7, 4, 4]])),
        ("one pixel: the output is the kernel times the pixel", (torch.tensor([[2.0]]), torch.tensor([[1.0, 2], [3, 4]]), 1),
         torch.tensor([[2.0, 4], [6, 8]])),
        ("1 x 2 input, kernel (1, 2, 3), stride 2: 1 -> (1, 2, 3) and 10 -> (10, 20, 30) overlap in one column",
         (torch.tensor([[1.0, 10.0]]), torch.tensor([[1.0, 2.0, 3.0]]), 2), torch.tensor([[1.0, 2, 13, 20, 30]])),
        ("stride 3 with a 2 x 2 kernel: gaps of zeros between the stamps",
         (torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 1], [1, 1]]), 3), torch.tensor([[1.0, 1, 0, 2, 2], [1, 1, 0, 2, 2]])),
        ("stride 1: every neighbouring pair of stamps overlaps (a kernel that is not symmetric: no flipping)",
         (torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0, 2.0]]), 1), torch.tensor([[1.0, 3.0, 2.0]])),
    ]
    for name, shape, kernel_shape, stride, dtype in [
            ("random 3 x 4 input, 3 x 3 kernel, stride 2", (3, 4), (3, 3), 2, torch.float32),
            ("random 4 x 3 input, 2 x 4 kernel, stride 1", (4, 3), (2, 4), 1, torch.float32),
            ("random 2 x 5 input, 4 x 4 kernel, stride 2, in float64", (2, 5), (4, 4), 2, torch.float64)]:
        x = torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)
        kernel = torch.randn(*kernel_shape, generator=g, dtype=torch.float64).to(dtype)
        cases.append((name, (x, kernel, stride), _conv_transpose_oracle(x, kernel, stride)))
    return cases


def conv_transpose2d(student_fn: Callable) -> None:
    """Check ``student_fn(input [H, W], kernel [kh, kw], stride) -> [(H - 1) stride + kh, (W - 1) stride + kw]``.

    One channel, no padding: every input pixel ``(i, j)`` adds ``input[i, j] * kernel`` to the output block
    whose top-left corner is ``(stride i, stride j)``. Oracles: ``F.conv_transpose2d`` and cases by hand.
    """
    run_cases("conv_transpose2d", student_fn, [Case(name, args, expected, show=_show(*args))
                                               for name, args, expected in _conv_transpose_cases()])


def _conv1d_matrix_oracle(kernel: Tensor, length: int, stride: int, padding: int) -> Tensor:
    """Column j is the 1-D convolution of the j-th unit vector: the matrix of a linear map, read off its columns."""
    basis = torch.eye(length, dtype=kernel.dtype)[:, None, :]                       # [n, 1, n]
    return F.conv1d(basis, kernel[None, None], stride=stride, padding=padding)[:, 0, :].T


def _conv_matrix_cases() -> list[tuple[str, tuple[Tensor, int, int, int], Tensor]]:
    """(name, (kernel, length, stride, padding), expected matrix): by hand, or read off F.conv1d."""
    xyz = torch.tensor([1.0, 2.0, 3.0])
    return [
        ("the notes' example: kernel (x, y, z) = (1, 2, 3), input of 4, stride 2, padding 1: row 0 sees "
         "(pad, a0, a1), row 1 sees (a1, a2, a3)", (xyz, 4, 2, 1), torch.tensor([[2.0, 3, 0, 0], [0, 1, 2, 3]])),
        ("kernel (1, 2, 3), input of 5, stride 1, no padding: a band of 3 diagonals", (xyz, 5, 1, 0),
         torch.tensor([[1.0, 2, 3, 0, 0], [0, 1, 2, 3, 0], [0, 0, 1, 2, 3]])),
        ("kernel (1, 2, 3), input of 4, stride 3, padding 2", (xyz, 4, 3, 2), _conv1d_matrix_oracle(xyz, 4, 3, 2)),
        ("kernel of 1 tap, input of 3, stride 2", (torch.tensor([5.0]), 3, 2, 0), torch.tensor([[5.0, 0, 0], [0, 0, 5]])),
        ("kernel (1, -1), input of 6, stride 2, padding 1", (torch.tensor([1.0, -1.0]), 6, 2, 1),
         _conv1d_matrix_oracle(torch.tensor([1.0, -1.0]), 6, 2, 1)),
    ]


def conv_as_matrix(student_fn: Callable) -> None:
    """Check ``student_fn(kernel [k], length, stride, padding) -> [n_out, length]``, the matrix of a 1-D convolution.

    ``n_out = (length + 2 padding - k) // stride + 1``; row ``i`` holds the kernel at input positions
    ``stride i - padding + t`` (taps that fall in the padding are dropped), so that
    ``matrix @ x == F.conv1d(x, kernel, stride, padding)``. Oracles: ``F.conv1d`` on unit vectors and the
    notes' example worked by hand.
    """
    run_cases("conv_as_matrix", student_fn, [Case(name, args, expected) for name, args, expected in _conv_matrix_cases()])
