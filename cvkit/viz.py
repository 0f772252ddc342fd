"""Plotting helpers the notebooks share: images with boxes, precision/recall curves."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45",
           "#fabed4", "#469990", "#dcbeff", "#9a6324", "#800000", "#aaffc3", "#808000", "#000075")


def color(i: int) -> str:
    """A distinct colour for index ``i`` (cycles after 16)."""
    return PALETTE[int(i) % len(PALETTE)]


def show_image(image: np.ndarray | torch.Tensor, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Show an image (``[H, W]``, ``[H, W, 3]`` or a ``[3, H, W]`` tensor) without axes ticks."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        image = (image.permute(1, 2, 0) if image.dim() == 3 and image.shape[0] in (1, 3) else image).numpy()
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def draw_boxes(ax: Axes, boxes: torch.Tensor | np.ndarray | Sequence, labels: Sequence[str] | None = None,
               scores: Sequence[float] | torch.Tensor | None = None, colors: Sequence[str] | str | None = None,
               linewidth: float = 2.0, linestyle: str = "-", alpha: float = 1.0) -> None:
    """Draw xyxy boxes on ``ax``, with an optional label and score above each."""
    boxes = torch.as_tensor(np.asarray(boxes.detach().cpu() if isinstance(boxes, torch.Tensor) else boxes,
                                       dtype=np.float64)).reshape(-1, 4)
    if scores is not None:
        scores = [float(s) for s in scores]
    for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        c = colors if isinstance(colors, str) else (colors[i] if colors is not None else color(i))
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=c, linewidth=linewidth,
                               linestyle=linestyle, alpha=alpha))
        text = " ".join(t for t in ((labels[i] if labels is not None else ""),
                                    (f"{scores[i]:.2f}" if scores is not None else "")) if t)
        if text:
            ax.text(x1, y1, text, color="white", fontsize=8, va="bottom",
                    bbox=dict(facecolor=c, edgecolor="none", alpha=0.8 * alpha, pad=1))


def show_boxes(image: np.ndarray | torch.Tensor, boxes, labels: Sequence[str] | None = None,
               scores=None, ax: Axes | None = None, title: str | None = None, **draw_kwargs) -> Axes:
    """An image with its boxes: ``show_image`` then ``draw_boxes``."""
    ax = show_image(image, ax=ax, title=title)
    draw_boxes(ax, boxes, labels=labels, scores=scores, **draw_kwargs)
    return ax


def plot_pr_curve(precision, recall, ax: Axes | None = None, label: str | None = None, **plot_kwargs) -> Axes:
    """A precision/recall curve: recall on x, precision on y, both in [0, 1]."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    ax.plot(np.asarray(recall), np.asarray(precision), label=label, **plot_kwargs)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    if label:
        ax.legend()
    return ax
