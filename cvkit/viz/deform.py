"""Pictures for notebook 09: where a convolution samples (regular, dilated, deformable grids) and the
training curves of two models side by side."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes

from cvkit.deform import sampling_locations
from cvkit.viz import show_image

__all__ = ["grid_offsets", "draw_sampling_points", "plot_sampling_grids", "plot_learned_sampling",
           "plot_history_comparison"]


def grid_offsets(kernel_size: int = 3, dilation: float = 1.0, scale: float = 1.0, angle: float = 0.0,
                 shear: float = 0.0) -> torch.Tensor:
    """The offsets ``[2 * k * k]`` (torchvision's (Δy, Δx) layout) that turn a regular k x k grid into a scaled,
    rotated and sheared one: Δp_k = (A - I) p_k, with A = scale · R(angle) · Shear(shear) acting on the taps'
    positions p_k relative to the centre (Dai et al. 2017, Fig. 1 c-d: deformable convolution can express
    dilation, scaling and rotation as particular offsets)."""
    half = (kernel_size - 1) / 2
    taps = torch.stack(torch.meshgrid(torch.arange(kernel_size) - half, torch.arange(kernel_size) - half,
                                      indexing="ij"), -1).reshape(-1, 2).double() * dilation       # (y, x)
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    rotate = torch.tensor([[cos, -sin], [sin, cos]], dtype=torch.float64)          # acts on (y, x)
    shearing = torch.tensor([[1.0, 0.0], [shear, 1.0]], dtype=torch.float64)
    moved = taps @ (scale * rotate @ shearing).T
    return (moved - taps / dilation).reshape(-1)                                   # relative to the dilation-1 grid


def draw_sampling_points(ax: Axes, y: torch.Tensor, x: torch.Tensor, centre: tuple[float, float] | None = None,
                         color: str = "#e6194b", label: str | None = None, arrows_from: tuple | None = None) -> None:
    """Sampling points ``(y, x)`` (any shape) as dots; ``centre`` marked with a cross; optional arrows from the
    regular points ``arrows_from = (y0, x0)`` to where the offsets moved them."""
    y, x = np.asarray(y, dtype=float).ravel(), np.asarray(x, dtype=float).ravel()
    if arrows_from is not None:
        y0, x0 = np.asarray(arrows_from[0], dtype=float).ravel(), np.asarray(arrows_from[1], dtype=float).ravel()
        for a, b, c, d in zip(x0, y0, x, y):
            ax.annotate("", xy=(c, d), xytext=(a, b), arrowprops=dict(arrowstyle="->", color="#42d4f4", lw=1.3))
        ax.scatter(x0, y0, s=22, facecolors="none", edgecolors="white", linewidths=1.0)
    ax.scatter(x, y, s=40, color=color, edgecolors="black", linewidths=0.7, label=label, zorder=3)
    if centre is not None:
        ax.plot(centre[1], centre[0], marker="+", color="yellow", markersize=14, markeredgewidth=2.5, zorder=4)


def _tap_positions(offset: torch.Tensor, centre: tuple[int, int], kernel_size: int, dilation: int) -> tuple:
    """Where the taps of the output pixel ``centre`` read, for a single-tap-set offset ``[2 k k]``."""
    field = offset.reshape(1, -1, 1, 1).double()
    y, x = sampling_locations(field, (kernel_size, kernel_size), stride=1,
                              padding=dilation * (kernel_size - 1) // 2, dilation=dilation)
    return y.reshape(-1) + centre[0], x.reshape(-1) + centre[1]


def plot_sampling_grids(image, centre: tuple[int, int], kernel_size: int = 3, spacing: int = 12,
                        dilation: int = 2, deform: dict | None = None, axes: Sequence[Axes] | None = None):
    """Three panels over ``image``: the regular k x k grid, the dilated one, and a deformed one.

    To be visible on a photo, one grid step is drawn as ``spacing`` pixels. The deformed grid uses
    :func:`grid_offsets` with the settings in ``deform`` (default: scaled 1.6x and rotated 30 degrees) and
    shows the offsets as arrows from the regular grid.
    """
    deform = deform or dict(scale=1.6, angle=30.0)
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(15, 5))
    none = torch.zeros(2 * kernel_size * kernel_size)
    regular = _tap_positions(none, (0, 0), kernel_size, 1)
    dilated = _tap_positions(none, (0, 0), kernel_size, dilation)
    deformed = _tap_positions(grid_offsets(kernel_size, **deform), (0, 0), kernel_size, 1)
    cy, cx = centre
    panels = [("regular 3 x 3: y(p0) = Σ w_k x(p0 + p_k)", regular, None),
              (f"dilated (d = {dilation}): p_k spaced {dilation} apart", dilated, None),
              ("deformable: p0 + p_k + Δp_k (arrows: Δp_k)", deformed, regular)]
    for ax, (title, (y, x), start) in zip(axes, panels):
        show_image(image, ax=ax, title=title)
        arrows = None if start is None else (cy + spacing * start[0], cx + spacing * start[1])
        draw_sampling_points(ax, cy + spacing * y, cx + spacing * x, centre=(cy, cx), arrows_from=arrows)
    return axes


def plot_learned_sampling(images: torch.Tensor, offsets: torch.Tensor, units: Sequence[tuple[int, int, int]],
                          stride: int, kernel_size: int = 3, titles: Sequence[str] | None = None, axes=None):
    """Where a trained deformable layer samples, drawn on the input images.

    Args:
        images: ``[N, 1 or 3, H, W]`` the network's inputs.
        offsets: ``[N, 2 k k, h, w]`` the layer's offsets (its ``offsets_and_mask(features)[0]``); the layer runs
            on a feature map ``stride`` times smaller than the image, padding (k - 1) / 2, dilation 1.
        units: ``(image index, row, column)`` of the output units to show (in the layer's grid).
    Each unit's k x k taps are drawn regular (white rings) and learned (red), scaled by ``stride`` to pixels.
    """
    count = len(units)
    if axes is None:
        _, axes = plt.subplots(1, count, figsize=(3.6 * count, 3.8))
    axes = np.atleast_1d(axes)
    pad = (kernel_size - 1) // 2
    y, x = sampling_locations(offsets.detach().double().cpu(), (kernel_size, kernel_size), 1, pad, 1)
    zero = torch.zeros_like(offsets[:1]).double().cpu()
    y0, x0 = sampling_locations(zero, (kernel_size, kernel_size), 1, pad, 1)
    to_pixels = lambda t: (t + 0.5) * stride - 0.5                                          # noqa: E731
    for k, (ax, (n, row, col)) in enumerate(zip(axes, units)):
        image = images[n].detach().cpu()
        show_image(image[0] if image.shape[0] == 1 else image, ax=ax, title=titles[k] if titles else None)
        draw_sampling_points(ax, to_pixels(y[n, 0, :, row, col]), to_pixels(x[n, 0, :, row, col]),
                             centre=(to_pixels(torch.tensor(float(row))), to_pixels(torch.tensor(float(col)))),
                             arrows_from=(to_pixels(y0[0, 0, :, row, col]), to_pixels(x0[0, 0, :, row, col])))
        ax.set_xlim(-0.5, image.shape[-1] - 0.5)
        ax.set_ylim(image.shape[-2] - 0.5, -0.5)
    return axes


def plot_history_comparison(histories: Mapping[str, object], keys: Sequence[str] = ("val_loss", "recall", "f1"),
                            axes=None):
    """One panel per metric in ``keys`` plus one for seconds per epoch, each model (a ``cvkit.train.History``)
    a line."""
    if axes is None:
        _, axes = plt.subplots(1, len(keys) + 1, figsize=(4.2 * (len(keys) + 1), 3.4))
    for (name, history), color in zip(histories.items(), ("#4363d8", "#e6194b", "#3cb44b", "#f58231")):
        for ax, key in zip(axes, keys):
            values = history[key]
            ax.plot(range(1, len(values) + 1), values, marker="o", color=color, label=name)
            ax.set_title(key.replace("_", " "))
        seconds = history.epoch_seconds
        axes[-1].plot(range(1, len(seconds) + 1), seconds, marker="o", color=color, label=name)
        axes[-1].set_title("seconds per epoch")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return axes
