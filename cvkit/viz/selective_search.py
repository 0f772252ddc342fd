"""Pictures for notebook 03: graph segmentations, the grouping hierarchy at a given step, proposals over
a photo, recall and MABO against the number of proposals, warped R-CNN inputs."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from skimage.segmentation import find_boundaries

from cvkit.boxes import box_iou
from cvkit.selective_search.grouping import Hierarchy
from cvkit.viz import draw_boxes, show_image

__all__ = ["mean_colour_image", "show_regions", "draw_grouping_step", "show_proposals", "plot_proposal_curves",
           "show_warped"]


def mean_colour_image(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Every region painted in its mean colour: ``[H, W, 3]`` uint8."""
    counts = np.bincount(labels.ravel()).astype(np.float64)                             # [R]
    means = np.stack([np.bincount(labels.ravel(), image[:, :, c].ravel().astype(np.float64)) / counts
                      for c in range(3)], axis=1)                                        # [R, 3]
    return means[labels].round().astype(np.uint8)


def show_regions(image: np.ndarray, labels: np.ndarray, ax: Axes | None = None, title: str | None = None,
                 boundaries: bool = True) -> Axes:
    """The regions ``labels`` over ``image``: mean colours, with their boundaries in white."""
    painted = mean_colour_image(image, labels)
    if boundaries:
        painted[find_boundaries(labels, mode="inner")] = 255
    return show_image(painted, ax=ax, title=title)


def draw_grouping_step(ax: Axes, image: np.ndarray, labels: np.ndarray, hierarchy: Hierarchy, step: int) -> Axes:
    """The regions after ``step`` merges; the region made by the last of them outlined with its box (yellow),
    its two parts' boxes dashed."""
    owner = hierarchy.region_of(step)[labels]                                            # [H, W] current region ids
    _, current = np.unique(owner, return_inverse=True)
    show_regions(image, current.reshape(labels.shape), ax=ax,
                 title=f"step {step} / {len(hierarchy)}: {hierarchy.num_initial - step} regions")
    if step > 0:
        i, j = hierarchy.merges[step - 1]
        new = hierarchy.num_initial + step - 1
        draw_boxes(ax, torch.from_numpy(hierarchy.boxes[[i, j]]), colors="#42d4f4", linewidth=1.5, linestyle="--")
        draw_boxes(ax, torch.from_numpy(hierarchy.boxes[new]), colors="#ffe119", linewidth=3,
                   labels=[f"s = {hierarchy.similarities[step - 1]:.2f}"])
    return ax


def show_proposals(image: np.ndarray, proposals: torch.Tensor, gt_boxes: torch.Tensor, count: int,
                   ax: Axes | None = None, title: str | None = None) -> Axes:
    """The first ``count`` proposals (thin), the ground truth (green) and, for each object, the best of those
    proposals (dashed red, with its IoU)."""
    ax = show_image(image, ax=ax, title=title)
    shown = proposals[:count]
    draw_boxes(ax, shown, colors="#4363d8", linewidth=0.5, alpha=0.35)
    draw_boxes(ax, gt_boxes, colors="#3cb44b", linewidth=2.5)
    if len(shown):
        iou, best = box_iou(gt_boxes, shown).max(dim=1)
        draw_boxes(ax, shown[best], colors="#e6194b", linewidth=1.5, linestyle="--",
                   labels=[f"{v:.2f}" for v in iou.tolist()])
    return ax


def plot_proposal_curves(curves: Mapping[str, Mapping[str, Sequence[float]]],
                         keys: Sequence[str] = ("recall@0.5", "recall@0.7", "mabo")) -> Figure:
    """One panel per key (from :func:`cvkit.selective_search.evaluation.proposal_curves`), one line per method,
    against the mean number of proposals kept per image (log scale)."""
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.8), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for name, c in curves.items():
            ax.plot(c["boxes"], c[key], marker="o", markersize=3, label=name)
        ax.set_xscale("log")
        ax.set_xlabel("proposals per image")
        ax.set_ylabel(key.replace("mabo", "MABO"))
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def show_warped(crops: torch.Tensor, mean: Sequence[float] | torch.Tensor = (0.0, 0.0, 0.0),
                columns: int = 8, titles: Sequence[str] | None = None) -> Figure:
    """Warped proposals ``[N, 3, S, S]`` (mean-subtracted images in [0, 1]) in a grid."""
    rows = (len(crops) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.7 * rows), squeeze=False)
    mean = torch.as_tensor(mean, dtype=crops.dtype).view(3, 1, 1)
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k < len(crops):
            ax.imshow((crops[k] + mean).clamp(0, 1).permute(1, 2, 0).numpy())
            if titles is not None:
                ax.set_title(titles[k], fontsize=7)
    fig.tight_layout()
    return fig
