"""Pictures of receptive fields (notebook 08): the field as a square on a photo, the measured gradient map,
how the field grows layer by layer, and the holes gridding leaves in a dilated stack."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.patches import Rectangle
from matplotlib.ticker import NullFormatter, ScalarFormatter

from cvkit.receptive_field import (EmpiricalReceptiveField, ReceptiveField, coverage, dilated_stack,
                                   empirical_receptive_field, receptive_field)
from cvkit.viz import color, show_image


def resize_longer_side(image: torch.Tensor, size: int) -> torch.Tensor:
    """A float ``[3, H, W]`` image (e.g. ``Photo.tensor()``) resized so that its longer side is ``size``
    (area averaging, so small sizes stay smooth)."""
    scale = size / max(image.shape[-2:])
    out_hw = (max(1, round(image.shape[-2] * scale)), max(1, round(image.shape[-1] * scale)))
    return F.interpolate(image[None], size=out_hw, mode="area")[0]


def draw_field(ax: Axes, field: ReceptiveField, output: tuple[int, int], edgecolor: str = "#ffe119",
               label: str | None = None, linewidth: float = 2.5, linestyle: str = "-") -> Rectangle:
    """Outline the receptive field of ``output`` (row, col) on an image drawn in pixel coordinates."""
    x1, y1, x2, y2 = field.box(*output)
    square = Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=edgecolor,
                       linewidth=linewidth, linestyle=linestyle, label=label)
    ax.add_patch(square)
    cy, cx = field.start[0] + output[0] * field.jump[0], field.start[1] + output[1] * field.jump[1]
    ax.plot([cx], [cy], "+", color=edgecolor, markersize=10, markeredgewidth=2)
    return square


def show_gradient(ax: Axes, measured: EmpiricalReceptiveField, title: str | None = None, log: bool = True,
                  cmap: str = "viridis", colorbar: bool = True) -> Axes:
    """The gradient map of one output (path counts for a linearised stack); zero shown black.

    With ``log`` the colours follow the logarithm of the count, so that the faint edges of the field, reached
    by a single path, show next to its centre, reached by thousands."""
    values = measured.gradient.detach().cpu().double().numpy()
    positive = values[values > 0]
    if log and positive.size:
        masked = np.ma.masked_less_equal(values, 0)
        vmax = max(float(positive.max()), float(positive.min()) * 1.0001)
        image = ax.imshow(masked, cmap=cmap, norm=LogNorm(vmin=float(positive.min()), vmax=vmax),
                          interpolation="nearest")
    else:
        image = ax.imshow(np.ma.masked_equal(values, 0), cmap=cmap, vmin=0, interpolation="nearest")
    ax.set_facecolor("black")
    ax.set_xticks([])
    ax.set_yticks([])
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.03, label="d output / d input")
    if title:
        ax.set_title(title)
    return ax


def plot_field_growth(stacks: Mapping[str, Sequence], ax: Axes | None = None) -> Axes:
    """Receptive field size after each layer, one line per stack (e.g. plain, strided, dilated)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for i, (name, layers) in enumerate(stacks.items()):
        sizes = [1] + [f.size[0] for f in receptive_field(layers).layers]
        ax.plot(range(len(sizes)), sizes, "o-", color=color(i), label=f"{name} (R = {sizes[-1]})")
    ax.set_xlabel("layers")
    ax.set_ylabel("receptive field R (pixels)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def show_gridding(dilation_sets: Sequence[Sequence[int]], axes: Sequence[Axes] | None = None,
                  kernel: int = 3) -> list[EmpiricalReceptiveField]:
    """The measured field of a stride-1 dilated stack for each set of dilations, cropped to the field,
    titled with its coverage: holes where no path from the input reaches the output (gridding)."""
    if axes is None:
        _, axes = plt.subplots(1, len(dilation_sets), figsize=(3.2 * len(dilation_sets), 3.4))
    axes = np.atleast_1d(axes)
    results = []
    for ax, dilations in zip(axes, dilation_sets):
        layers = dilated_stack(list(dilations), kernel)
        size = receptive_field(layers).size[0]
        measured = empirical_receptive_field(layers, size + 4)
        r0, c0, r1, c1 = measured.bbox
        crop = measured.gradient[r0: r1 + 1, c0: c1 + 1]
        ax.imshow(crop.numpy() > 0, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"dilations {tuple(dilations)}\nR = {size}, covered {coverage(measured):.0%}", fontsize=10)
        results.append(measured)
    return results


def plot_effective_width(depths: Sequence[int], sizes: Sequence[int], widths: Sequence[int],
                         ax: Axes | None = None, share: float = 0.95) -> Axes:
    """Receptive field size and the width that holds ``share`` of the gradient, against depth, on log-log axes
    (a slope of 1 for R, about 1/2 for the effective field)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(depths, sizes, "o-", color=color(0), label="receptive field R")
    ax.plot(depths, widths, "s-", color=color(2), label=f"width holding {share:.0%} of the gradient")
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis, ticks in ((ax.xaxis, depths), (ax.yaxis, sizes)):
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(NullFormatter())
        axis.set_ticks(list(ticks))
    ax.set_xlabel("layers")
    ax.set_ylabel("pixels")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax
