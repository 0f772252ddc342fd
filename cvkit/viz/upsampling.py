"""Pictures for notebook 07: small matrices with their numbers, label maps, checkerboards and their spectra,
activation memory per layer."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.patches import Rectangle

from cvkit.viz import PALETTE, show_image

__all__ = ["show_grid", "outline_cells", "label_colormap", "show_labels", "show_segmentations",
           "show_checkerboards", "plot_activation_memory"]


def _numpy(values) -> np.ndarray:
    return np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float64)


def show_grid(ax: Axes, values, title: str | None = None, cmap: str = "viridis", fmt: str = "{:g}",
              vmin: float | None = None, vmax: float | None = None, fontsize: float = 9) -> Axes:
    """A small matrix ``[H, W]`` as coloured cells with each value written in its cell, one cell per unit."""
    grid = _numpy(values)
    if grid.ndim != 2:
        raise ValueError(f"values must have shape [H, W], got {list(grid.shape)}")
    low = np.nanmin(grid) if vmin is None and grid.size else (vmin if vmin is not None else 0.0)
    high = np.nanmax(grid) if vmax is None and grid.size else (vmax if vmax is not None else 1.0)
    image = ax.imshow(grid, cmap=cmap, vmin=low, vmax=high if high > low else low + 1)
    for (i, j), v in np.ndenumerate(grid):
        r, g, b, _ = image.cmap(image.norm(v))
        ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=fontsize,
                color="black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white")   # readable on the cell
    ax.set_xticks(range(grid.shape[1]))
    ax.set_yticks(range(grid.shape[0]))
    ax.tick_params(labelsize=7, length=0)
    ax.set_xticks(np.arange(-0.5, grid.shape[1]), minor=True)
    ax.set_yticks(np.arange(-0.5, grid.shape[0]), minor=True)
    ax.grid(which="minor", color="white", linewidth=0.8)
    ax.tick_params(which="minor", length=0)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def outline_cells(ax: Axes, top: int, left: int, height: int, width: int, color: str = "#e6194b",
                  linewidth: float = 2.5) -> None:
    """Outline the cells ``[top, top + height) x [left, left + width)`` of a :func:`show_grid` picture."""
    ax.add_patch(Rectangle((left - 0.5, top - 0.5), width, height, fill=False, edgecolor=color, linewidth=linewidth))


def label_colormap(num_classes: int) -> ListedColormap:
    """Class colours for label maps: background dark grey, then the kit's palette."""
    return ListedColormap(["#303030", *[PALETTE[i % len(PALETTE)] for i in range(num_classes - 1)]])


def show_labels(ax: Axes, labels, num_classes: int, title: str | None = None) -> Axes:
    """A label map ``[H, W]`` in :func:`label_colormap` colours, without ticks."""
    ax.imshow(_numpy(labels), cmap=label_colormap(num_classes), vmin=-0.5, vmax=num_classes - 0.5,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def show_segmentations(images, masks, predictions: Mapping[str, torch.Tensor], classes: Sequence[str],
                       scores: Mapping[str, float] | None = None, figsize_per_cell: float = 2.0):
    """One row per image: the image, its true labels, then each model's predicted labels.

    Args:
        images: ``[N, 3, H, W]``; masks: ``[N, H, W]``; predictions: model name -> ``[N, H, W]`` labels.
        classes: class names (background first), for the legend.
        scores: model name -> a number to put in its column title (e.g. mIoU on the whole set).

    Returns:
        the figure.
    """
    n, columns = len(images), 2 + len(predictions)
    fig, axes = plt.subplots(n, columns, figsize=(figsize_per_cell * columns, figsize_per_cell * n + 0.6),
                             squeeze=False)
    for row in range(n):
        show_image(images[row], ax=axes[row, 0], title="image" if row == 0 else None)
        show_labels(axes[row, 1], masks[row], len(classes), "truth" if row == 0 else None)
        for col, (name, labels) in enumerate(predictions.items(), start=2):
            title = None
            if row == 0:
                title = name if scores is None else f"{name}\nmIoU {scores[name]:.3f}"
            show_labels(axes[row, col], labels[row], len(classes), title)
    cmap = label_colormap(len(classes))
    handles = [Rectangle((0, 0), 1, 1, color=cmap(i)) for i in range(len(classes))]
    fig.legend(handles, classes, loc="lower center", ncol=len(classes), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def show_checkerboards(outputs: Mapping[str, torch.Tensor], energies: Mapping[str, float] | None = None,
                       stride: int = 2, zoom: int = 16):
    """For each named output ``[H, W]``: the output, a ``zoom`` x ``zoom`` corner of its interior, and the
    log power spectrum (centred; the stride frequencies ringed).

    Returns:
        the figure.
    """
    fig, axes = plt.subplots(len(outputs), 3, figsize=(11, 3.6 * len(outputs)), squeeze=False)
    for row, (name, output) in enumerate(outputs.items()):
        image = _numpy(output)
        height, width = image.shape
        title = name if energies is None else f"{name}: checkerboard energy {energies[name]:.3f}"
        axes[row, 0].imshow(image, cmap="gray")
        axes[row, 0].set_title(title, fontsize=10)
        top, left = height // 2 - zoom // 2, width // 2 - zoom // 2
        axes[row, 1].imshow(image[top:top + zoom, left:left + zoom], cmap="gray", interpolation="nearest",
                            vmin=image.min(), vmax=image.max())                   # the grey levels of the whole
        axes[row, 1].set_title(f"{zoom} x {zoom} pixels from the middle", fontsize=10)
        spectrum = np.abs(np.fft.fftshift(np.fft.fft2(image - image.mean()))) ** 2
        axes[row, 2].imshow(np.log10(spectrum + 1e-12 * spectrum.max() + 1e-30), cmap="magma",
                            extent=(-np.pi, np.pi, np.pi, -np.pi))
        wrapped = [((2 * np.pi * a / stride + np.pi) % (2 * np.pi)) - np.pi for a in range(stride)]  # in [-pi, pi)
        marks = [(fx, fy) for fy in wrapped for fx in wrapped if (fx, fy) != (0.0, 0.0)]
        axes[row, 2].scatter([m[0] for m in marks], [m[1] for m in marks], s=220, facecolors="none",
                             edgecolors="#42d4f4", linewidths=1.8, clip_on=False)
        axes[row, 2].set_title("log power spectrum; rings: stride frequencies", fontsize=10)
        axes[row, 2].set_xlabel("horizontal frequency")
        axes[row, 2].set_ylabel("vertical frequency")
        for ax in axes[row, :2]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_activation_memory(records, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Bytes of each layer's output (MiB), one bar per layer in forward order, coloured by layer kind.

    Args:
        records: :class:`cvkit.segmentation.ActivationRecord` list from ``record_activations``.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 3.5))
    kinds = sorted({r.kind for r in records})
    colors = {kind: PALETTE[i % len(PALETTE)] for i, kind in enumerate(kinds)}
    sizes = [r.bytes / 2**20 for r in records]
    ax.bar(range(len(records)), sizes, color=[colors[r.kind] for r in records])
    ax.set_xticks(range(len(records)), [r.name for r in records], rotation=90, fontsize=6)
    ax.set_ylabel("output size (MiB)")
    ax.legend(handles=[Rectangle((0, 0), 1, 1, color=colors[k]) for k in kinds], labels=kinds, fontsize=8,
              ncol=len(kinds))
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title)
    return ax
