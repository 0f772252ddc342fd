"""Pictures for notebook 05 (Faster R-CNN): anchors, anchor labels, proposals, detections, recall curves."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from torch import Tensor

from cvkit.viz import color, draw_boxes, show_image

__all__ = ["draw_anchors", "draw_anchor_labels", "draw_position_anchors", "show_detections", "plot_recall_curves",
           "plot_timings", "ANCHOR_LABEL_COLORS"]

# positive, negative, ignored: the RPN's three anchor labels (1, 0, -1)
ANCHOR_LABEL_COLORS = {1: "#3cb44b", 0: "#e6194b", -1: "#a9a9a9"}


def draw_anchors(ax: Axes, image: Tensor, anchors: Tensor, num_anchors: int, positions: Sequence[int],
                 stride: int, grid_size: tuple[int, int], title: str | None = None) -> None:
    """The feature-map grid as dots, and all ``num_anchors`` anchors of a few positions (one colour per position).

    Args:
        anchors: ``Tensor[H * W * k, 4]`` in the generator's order (position-major).
        positions: flat indices ``i * W + j`` of the positions to draw.
        stride: image pixels per position; ``grid_size``: ``(H, W)`` of the feature map.
    """
    show_image(image, ax=ax, title=title)
    rows, cols = np.meshgrid(np.arange(grid_size[0]), np.arange(grid_size[1]), indexing="ij")
    ax.scatter(cols.ravel() * stride, rows.ravel() * stride, s=3, c="white", alpha=0.7)
    for n, position in enumerate(positions):
        boxes = anchors[position * num_anchors:(position + 1) * num_anchors]
        draw_boxes(ax, boxes, colors=color(n), linewidth=1.5)
        ax.scatter([float(boxes[0, 0] + boxes[0, 2]) / 2], [float(boxes[0, 1] + boxes[0, 3]) / 2], s=40,
                   c=color(n), edgecolors="white", zorder=3)
    height, width = image.shape[-2:]
    ax.set_xlim(-0.5 * width, 1.5 * width)                    # anchors reach beyond the image
    ax.set_ylim(1.5 * height, -0.5 * height)


def draw_anchor_labels(ax: Axes, image: Tensor, anchors: Tensor, labels: Tensor, gt_boxes: Tensor,
                       sampled: Tensor | None = None, title: str | None = None) -> None:
    """Positive anchors (green), ignored ones (grey, dashed), the ground truth (white, thick).

    ``labels``: 1 positive, 0 negative, -1 ignored. With ``sampled`` (bool ``[N]``), only sampled positives
    are drawn solid and the sampled negatives' centres are marked with small red dots.
    """
    show_image(image, ax=ax, title=title)
    positive = labels == 1
    ignored = labels == -1
    if sampled is not None:
        negatives = anchors[(labels == 0) & sampled]
        centres = (negatives[:, :2] + negatives[:, 2:]) / 2
        ax.scatter(centres[:, 0], centres[:, 1], s=6, c="#e6194b", label="sampled negatives (centres)")
        positive = positive & sampled
    draw_boxes(ax, anchors[ignored][:60], colors="#bbbbbb", linewidth=0.6, linestyle="--", alpha=0.7)
    draw_boxes(ax, anchors[positive], colors="#3cb44b", linewidth=1.2)
    draw_boxes(ax, gt_boxes, colors="white", linewidth=2.5)
    height, width = image.shape[-2:]
    ax.set_xlim(-0.25 * width, 1.25 * width)
    ax.set_ylim(1.25 * height, -0.25 * height)


def draw_position_anchors(ax: Axes, image: Tensor, gt_boxes: Tensor, anchors: Tensor, labels: Tensor, ious: Tensor,
                          centre: tuple[float, float], other_positives: Tensor | None = None,
                          title: str | None = None) -> None:
    """The k anchors of one feature-map position coloured by label, each with its best IoU, over the objects.

    Args:
        gt_boxes: ``Tensor[G, 4]`` the objects (white).
        anchors: ``Tensor[k, 4]`` the position's anchors; ``labels``: ``Tensor[k]`` 1 positive (green),
            0 negative (red), -1 ignored (grey, dashed); ``ious``: ``Tensor[k]`` each anchor's best IoU with an object.
        centre: ``(x, y)`` of the position in the image.
        other_positives: ``Tensor[P, 4]`` the positive anchors of all other positions, drawn faint.
    """
    show_image(image, ax=ax, title=title)
    if other_positives is not None and len(other_positives):
        draw_boxes(ax, other_positives, colors=ANCHOR_LABEL_COLORS[1], linewidth=0.8, alpha=0.35)
    draw_boxes(ax, gt_boxes, colors="white", linewidth=2.5)
    styles = {1: "-", 0: "-", -1: "--"}
    for box, label, iou in zip(anchors, labels.tolist(), ious.tolist()):
        draw_boxes(ax, box, labels=[f"{iou:.2f}"], colors=ANCHOR_LABEL_COLORS[label], linewidth=1.8,
                   linestyle=styles[label])
    ax.scatter([centre[0]], [centre[1]], s=50, c="#ffe119", edgecolors="black", zorder=3)
    handles = [Line2D([], [], color="white", linewidth=2.5, label="object"),
               Line2D([], [], color=ANCHOR_LABEL_COLORS[1], linewidth=1.8, label="positive (IoU)"),
               Line2D([], [], color=ANCHOR_LABEL_COLORS[-1], linewidth=1.8, linestyle="--", label="ignored (IoU)"),
               Line2D([], [], color=ANCHOR_LABEL_COLORS[0], linewidth=1.8, label="negative (IoU)")]
    if other_positives is not None and len(other_positives):
        handles.append(Line2D([], [], color=ANCHOR_LABEL_COLORS[1], linewidth=0.8, alpha=0.5,
                              label="positives elsewhere"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    height, width = image.shape[-2:]
    ax.set_xlim(-0.25 * width, 1.25 * width)
    ax.set_ylim(1.25 * height, -0.25 * height)


def show_detections(ax: Axes, image: Tensor, detection: dict[str, Tensor], class_names: Sequence[str],
                    target: dict[str, Tensor] | None = None, score_min: float = 0.5, title: str | None = None) -> None:
    """Detections scoring at least ``score_min``, coloured by class and labelled, over dashed ground truth."""
    show_image(image, ax=ax, title=title)
    if target is not None:
        draw_boxes(ax, target["boxes"], colors="white", linewidth=1.2, linestyle="--")
    keep = detection["scores"] >= score_min
    labels = detection["labels"][keep].tolist()
    draw_boxes(ax, detection["boxes"][keep], labels=[class_names[k] for k in labels],
               scores=detection["scores"][keep], colors=[color(k) for k in labels], linewidth=2)


def plot_recall_curves(curves: dict[str, tuple[Sequence[int], Sequence[float]]], ax: Axes | None = None,
                       marks: dict[str, int] | None = None, title: str | None = None) -> Axes:
    """Recall against the number of proposals per image (log x axis), one curve per method.

    Args:
        curves: ``{name: (numbers of proposals, recalls)}``.
        marks: ``{name: n}``: a dot at n proposals on that method's curve (300 RPN, 2000 selective search).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for i, (name, (counts, recalls)) in enumerate(curves.items()):
        ax.plot(counts, recalls, "-", color=color(i), label=name, linewidth=2)
        if marks and name in marks:
            n = marks[name]
            at = min(range(len(counts)), key=lambda j: abs(counts[j] - n))
            ax.plot([counts[at]], [recalls[at]], "o", color=color(i), markersize=8)
            ax.annotate(f"{recalls[at]:.2f} at {counts[at]}", (counts[at], recalls[at]), textcoords="offset points",
                        xytext=(5, -14), color=color(i))
    ax.set(xscale="log", xlabel="proposals per image", ylabel="recall", ylim=(0, 1.02), title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return ax


def plot_timings(seconds: dict[str, dict[str, float]], ax: Axes | None = None, title: str | None = None) -> Axes:
    """Stacked horizontal bars of milliseconds per image: ``{pipeline: {stage: seconds}}``."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 2.8))
    stages = list(dict.fromkeys(stage for parts in seconds.values() for stage in parts))
    names = list(seconds)
    left = np.zeros(len(names))
    for i, stage in enumerate(stages):
        widths = np.array([1000 * seconds[name].get(stage, 0.0) for name in names])
        ax.barh(names, widths, left=left, color=color(i), label=stage)
        left += widths
    for y, total in enumerate(left):
        ax.text(total, y, f"  {total:.0f} ms", va="center")
    ax.set(xlabel="milliseconds per image", title=title, xlim=(0, left.max() * 1.25))
    ax.invert_yaxis()
    ax.legend(loc="lower right", fontsize="small")
    return ax
