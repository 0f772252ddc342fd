"""Checks for notebook 08 (dilated convolution and receptive fields).

Expected answers are worked out by hand (the course notes' 31 for 3 x 3 layers dilated 1, 2, 4, 8; ResNet's
stem; VGG's blocks) or measured: a unit gradient backpropagated from the middle output of a one-dimensional
chain of all-ones ``F.conv1d`` layers reaches exactly the receptive field, whose extent is the answer. None
comes from :mod:`cvkit.receptive_field`. The hand cases catch the usual slips: multiplying by the layer's own
stride instead of the product of the *earlier* strides, forgetting the dilation, and ``F D`` in place of
``(F - 1) D``. For gridding, the answer is whether that same measured support has holes.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from cvkit.grading.core import Case, run_cases

__all__ = ["receptive_field_size", "dilations_cover"]


def _measured_size(layers: Sequence[tuple[int, int, int]]) -> int:
    """Extent of the gradient support of the middle output of a 1-D chain of all-ones convolutions."""
    length = 1
    for kernel, stride, dilation in reversed(layers):              # an input long enough for one output and more
        length = (length - 1) * stride + dilation * (kernel - 1) + 1
    length = 3 * length
    signal = torch.zeros(1, 1, length, dtype=torch.float64, requires_grad=True)
    out = signal
    for kernel, stride, dilation in layers:
        out = F.conv1d(out, torch.ones(1, 1, kernel, dtype=torch.float64), stride=stride, dilation=dilation)
    out[0, 0, out.shape[-1] // 2].backward()
    reached = signal.grad[0, 0].nonzero().flatten()
    return int(reached[-1] - reached[0] + 1)


def _hand_cases() -> list[tuple[str, list[tuple[int, int, int]], int]]:
    return [
        ("four 3 x 3 layers, stride 1: 1 + 4 * 2", [(3, 1, 1)] * 4, 9),
        ("3 x 3 layers dilated 1, 2, 4, 8 (the notes): 1 + 2 (1 + 2 + 4 + 8)", [(3, 1, 1), (3, 1, 2), (3, 1, 4), (3, 1, 8)],
         31),
        ("ResNet's stem: 7 x 7 stride 2, then 3 x 3 max pool stride 2: 1 + 6 + 2 * 2", [(7, 2, 1), (3, 2, 1)], 11),
        ("three 2 x 2 poolings with stride 2: 1 + 1 + 2 + 4", [(2, 2, 1)] * 3, 8),
        ("a VGG block then a pool then a conv: 1 + 2 + 2 + 1 + 2 * 2", [(3, 1, 1), (3, 1, 1), (2, 2, 1), (3, 1, 1)], 10),
        ("one 1 x 1 layer: the pixel itself", [(1, 1, 1)], 1),
        ("no layers at all: the input pixel itself", [], 1),
    ]


def _measured_cases() -> list[tuple[str, list[tuple[int, int, int]], int]]:
    g = torch.Generator().manual_seed(108)
    measured = []
    for i in range(4):
        depth = int(torch.randint(2, 6, (1,), generator=g))
        layers = [(int(torch.randint(1, 6, (1,), generator=g)), int(torch.randint(1, 4, (1,), generator=g)),
                   int(torch.randint(1, 4, (1,), generator=g))) for _ in range(depth)]
        measured.append((f"random stack {i + 1} of {depth} layers (measured with gradients)", layers,
                         _measured_size(layers)))
    return measured


def receptive_field_size(student_fn: Callable) -> None:
    """Check ``student_fn(layers) -> int``: the receptive field size of a stack of layers.

    ``layers`` is a list of ``(kernel, stride, dilation)`` tuples, first layer first (padding does not change
    the size). Oracles: values by hand and the gradient support of a chain of all-ones convolutions.
    """
    cases = [Case(name, (layers,), size, show=f"layers={layers}") for name, layers, size in _hand_cases() + _measured_cases()]
    run_cases("receptive_field_size", student_fn, cases)


def _reached_offsets(dilations: Sequence[int], kernel: int) -> torch.Tensor:
    """Bool mask of the input offsets the middle output of a 1-D chain of all-ones dilated convolutions
    reaches (a square kernel's 2-D field is this mask times itself, so 1-D decides holes)."""
    half = sum(d * (kernel - 1) // 2 for d in dilations)
    signal = torch.zeros(1, 1, 4 * half + 1, dtype=torch.float64, requires_grad=True)
    out = signal
    for d in dilations:
        out = F.conv1d(out, torch.ones(1, 1, kernel, dtype=torch.float64), padding=d * (kernel - 1) // 2, dilation=d)
    out[0, 0, 2 * half].backward()
    return signal.grad[0, 0, half: 3 * half + 1] != 0


def _cover_cases() -> list[tuple[str, tuple[list[int], int], bool]]:
    by_hand = [
        ("dilations 1, 2, 4, 8 (the notes' stack): solid", ([1, 2, 4, 8], 3), True),
        ("dilations 2, 2, 2: only even offsets are reached", ([2, 2, 2], 3), False),
        ("dilations 1, 2, 5 (HDC): solid", ([1, 2, 5], 3), True),
        ("dilations 1, 2, 9: 1 and 2 reach offsets -3..3, a jump of 9 leaves 4..5 out", ([1, 2, 9], 3), False),
        ("dilations 2, 4, 8: a common factor 2", ([2, 4, 8], 3), False),
        ("one layer dilated 1: solid", ([1], 3), True),
        ("one layer dilated 3: taps at -3, 0, 3 only", ([3], 3), False),
        ("5 x 5 kernels dilated 1, 3: -2..2 plus steps of 3 fill -8..8", ([1, 3], 5), True),
    ]
    measured = [(f"dilations {tuple(d)}, {k} x {k} kernels (measured with gradients)", (list(d), k),
                 bool(_reached_offsets(d, k).all()))
                for d, k in (([1, 2, 3], 3), ([3, 2, 1], 3), ([1, 3, 9], 3), ([1, 4], 3), ([2, 3], 3), ([1, 1, 4], 3),
                             ([1, 5], 3))]
    return by_hand + measured


def dilations_cover(student_fn: Callable) -> None:
    """Check ``student_fn(dilations, kernel) -> bool``: does a stride-1 stack of ``kernel x kernel`` convolutions with
    these dilations reach *every* pixel of its receptive field (no gridding holes)?

    Oracles: cases by hand and the gradient support of a 1-D chain of all-ones dilated convolutions.
    """
    cases = [Case(name, args, answer, compare=_same_truth, show=f"dilations={args[0]}, kernel={args[1]}")
             for name, args, answer in _cover_cases()]
    run_cases("dilations_cover", student_fn, cases)


def _same_truth(got: object, expected: bool) -> str | None:
    if not isinstance(got, (bool, np.bool_)) and not (isinstance(got, torch.Tensor) and got.numel() == 1):
        return f"expected True or False, got {type(got).__name__}"
    return None if bool(got) == expected else f"expected {expected}, got {bool(got)}"
