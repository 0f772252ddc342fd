"""Checks for notebook 03 (selective search): the fill similarity and the merge of two regions' histograms.

Expected answers come from values worked out by hand (the case names give the arithmetic) and, for the
merge, from histograms counted directly from the pixels of the union with ``numpy.histogram``; never
from cvkit's selective search.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from cvkit.grading.core import Case, close, run_cases

__all__ = ["fill_similarity", "merge_histograms"]


def _box(x1: float, y1: float, x2: float, y2: float) -> Tensor:
    return torch.tensor([x1, y1, x2, y2], dtype=torch.float64)


def fill_similarity(student_fn) -> None:
    """Check ``student_fn(size_i, box_i, size_j, box_j, image_size)`` against
    s_fill = 1 - (size(BB_ij) - size_i - size_j) / size(im), with BB_ij the box around both boxes."""
    cases = [
        Case("two 10x10 squares side by side fill their joint box exactly: 1 - (200 - 200) / 10000",
             (100.0, _box(0, 0, 10, 10), 100.0, _box(10, 0, 20, 10), 10000.0), 1.0),
        Case("two 10x10 squares touching at a corner: joint box 20x20 = 400, 200 of it empty: 1 - 200 / 10000",
             (100.0, _box(0, 0, 10, 10), 100.0, _box(10, 10, 20, 20), 10000.0), 0.98),
        Case("the same two squares in a 40x40 image (1600 pixels): 1 - 200 / 1600",
             (100.0, _box(0, 0, 10, 10), 100.0, _box(10, 10, 20, 20), 1600.0), 0.875),
        Case("a region of 50 pixels in box [0, 0, 10, 10] and a full 10x10 square far right: "
             "joint box 30x10 = 300, 300 - 150 empty, image 600: 1 - 150 / 600",
             (50.0, _box(0, 0, 10, 10), 100.0, _box(20, 0, 30, 10), 600.0), 0.75),
        Case("the same pair given in the other order (s_fill is symmetric)",
             (100.0, _box(20, 0, 30, 10), 50.0, _box(0, 0, 10, 10), 600.0), 0.75),
        Case("a small region inside the box of a large one: the joint box is the large box, 1 - (400 - 300 - 4) / 1000",
             (300.0, _box(0, 0, 20, 20), 4.0, _box(5, 5, 7, 7), 1000.0), 0.904),
        Case("boxes with fractional corners: joint box [0.5, 0, 4.5, 2] = 8, 1 - (8 - 3 - 3) / 20",
             (3.0, _box(0.5, 0, 2.5, 2), 3.0, _box(2.5, 0, 4.5, 2), 20.0), 0.9),
    ]
    run_cases("fill_similarity", student_fn, cases)


def _pixels(count: int, channels: int, g: torch.Generator) -> np.ndarray:
    return torch.rand(count, channels, generator=g, dtype=torch.float64).numpy()


def _histogram(pixels: np.ndarray, bins: int) -> Tensor:
    """The L1-normalised histogram of ``pixels`` [P, C] in [0, 1], ``bins`` per channel, channels concatenated."""
    counts = [np.histogram(pixels[:, c], bins=bins, range=(0.0, 1.0))[0] for c in range(pixels.shape[1])]
    joined = np.concatenate(counts).astype(np.float64)
    return torch.from_numpy(joined / joined.sum())


def merge_histograms(student_fn) -> None:
    """Check ``student_fn(size_i, hist_i, size_j, hist_j)``, the histogram of r_i u r_j from those of r_i and
    r_j: C_t = (size_i C_i + size_j C_j) / (size_i + size_j). The expected answer is counted from the
    pixels of the union."""
    g = torch.Generator().manual_seed(303)
    cases = []
    for name, n_i, n_j, channels, bins in (("two regions of 40 and 120 pixels, 3 channels, 25 bins", 40, 120, 3, 25),
                                           ("a 1-pixel region joining a 500-pixel one", 1, 500, 3, 25),
                                           ("equal sizes, one channel, 10 bins", 64, 64, 1, 10)):
        p_i, p_j = _pixels(n_i, channels, g), _pixels(n_j, channels, g)
        cases.append(Case(name + " (answer: the histogram of all their pixels together)",
                          (float(n_i), _histogram(p_i, bins), float(n_j), _histogram(p_j, bins)),
                          _histogram(np.concatenate((p_i, p_j)), bins), close(rtol=1e-9, atol=1e-12)))
    same = _histogram(_pixels(30, 3, g), 25)
    cases.append(Case("a region merged with one of the same histogram keeps that histogram",
                      (30.0, same, 90.0, same.clone()), same, close(rtol=1e-9, atol=1e-12)))
    cases.append(Case("by hand: [1, 0] with size 3 and [0, 1] with size 1 give [3/4, 1/4]",
                      (3.0, torch.tensor([1.0, 0.0], dtype=torch.float64), 1.0,
                       torch.tensor([0.0, 1.0], dtype=torch.float64)),
                      torch.tensor([0.75, 0.25], dtype=torch.float64)))
    run_cases("merge_histograms", student_fn, cases)
