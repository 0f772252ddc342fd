"""Checks for notebook 08 (dilated convolution and receptive fields).

Expected answers are worked out by hand (the course notes' 31 for 3 x 3 layers dilated 1, 2, 4, 8; ResNet's
stem; VGG's blocks) or measured: a unit gradient backpropagated from the middle output of a one-dimensional
chain of all-ones ``F.conv1d`` layers reaches exactly the receptive field, whose extent is the answer. None
comes from :mod:`cvkit.receptive_field`. The hand cases catch the usual slips: multiplying by the layer's own
stride instead of the product of the *earlier* strides, forgetting the dilation, and ``F D`` in place of
``(F - 1) D``.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from cvkit.grading.core import Case, run_cases

__all__ = ["receptive_field_size"]


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
