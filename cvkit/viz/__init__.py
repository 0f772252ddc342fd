"""Plotting helpers the notebooks share: images with boxes, precision/recall curves.

The pictures of one topic (RoI bins, receptive fields, ...) live in a submodule of their own,
``cvkit.viz.<topic>``, built on the helpers here."""
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


# --- boxes and IoU (notebook 01)

from matplotlib import patheffects  # noqa: E402  (kept with the functions below that use them)
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

_OUTLINED = [patheffects.withStroke(linewidth=4, foreground="black")]   # a light line readable on any photo


def _box_list(box) -> list[float]:
    """One xyxy box as four Python floats (from a tensor ``[4]`` or ``[1, 4]``, an array or a sequence)."""
    if isinstance(box, torch.Tensor):
        box = box.detach().cpu()
    values = np.asarray(box, dtype=np.float64).reshape(-1).tolist()
    if len(values) != 4:
        raise ValueError(f"box must hold four numbers (x1, y1, x2, y2), got {len(values)}")
    return [float(v) for v in values]


def draw_overlap(ax: Axes, box_a, box_b, labels: Sequence[str] = ("A", "B"),
                 colors: Sequence[str] = ("#e6194b", "#4363d8"), enclosing: bool = False,
                 enclosing_color: str = "white", legend: bool = True) -> None:
    """Draw two xyxy boxes, their intersection filled, and optionally C, the smallest box enclosing both.

    The boxes are outlined and lightly tinted (the tinted area is the union A ∪ B), the intersection
    A ∩ B is hatched yellow, and C (the box GIoU compares the union with) is dashed.
    """
    a, b = _box_list(box_a), _box_list(box_b)
    handles = []
    for (x1, y1, x2, y2), name, c in zip((a, b), labels, colors):
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, facecolor=c, alpha=0.18, edgecolor="none"))
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=c, linewidth=2.5))
        handles.append(Patch(facecolor=c, edgecolor=c, alpha=0.6, label=name))
    ix1, iy1, ix2, iy2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    if ix2 > ix1 and iy2 > iy1:
        ax.add_patch(Rectangle((ix1, iy1), ix2 - ix1, iy2 - iy1, facecolor="#ffe119", alpha=0.35,
                               edgecolor="black", linewidth=0.8, hatch="//"))
    handles.append(Patch(facecolor="#ffe119", alpha=0.6, edgecolor="black", hatch="//", label="A ∩ B"))
    if enclosing:
        cx1, cy1, cx2, cy2 = min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])
        outline = _OUTLINED if enclosing_color == "white" else None
        ax.add_patch(Rectangle((cx1, cy1), cx2 - cx1, cy2 - cy1, fill=False, edgecolor=enclosing_color,
                               linestyle="--", linewidth=1.8, path_effects=outline))
        handles.append(Line2D([], [], color=enclosing_color, linestyle="--", linewidth=1.8, path_effects=outline,
                              label="C (encloses both)"))
    if legend:
        ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.85)


def show_iou_matrix(matrix, row_labels: Sequence[str] | None = None, col_labels: Sequence[str] | None = None,
                    ax: Axes | None = None, title: str | None = None, vmin: float = 0.0, vmax: float = 1.0) -> Axes:
    """A pairwise IoU (or GIoU, with ``vmin=-1``) matrix ``[N, M]`` as a heat map, each value written in its cell."""
    values = np.asarray(matrix.detach().cpu() if isinstance(matrix, torch.Tensor) else matrix, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"matrix must have shape [N, M], got {list(values.shape)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.5 + 0.7 * values.shape[1], 1 + 0.6 * values.shape[0]))
    image = ax.imshow(values, cmap="viridis", vmin=vmin, vmax=vmax)
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                color="black" if v > vmin + 0.6 * (vmax - vmin) else "white")
    ax.set_xticks(range(values.shape[1]), col_labels if col_labels is not None else range(values.shape[1]),
                  rotation=45, ha="right")
    ax.set_yticks(range(values.shape[0]), row_labels if row_labels is not None else range(values.shape[0]))
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if title:
        ax.set_title(title)
    return ax


def draw_box_formats(ax: Axes, box, box_color: str = "#e6194b") -> None:
    """Annotate one xyxy box with what each format stores: its corners (xyxy), its top-left corner and size
    (xywh), its centre and size (cxcywh)."""
    x1, y1, x2, y2 = _box_list(box)
    w, h, cx, cy = x2 - x1, y2 - y1, (x1 + x2) / 2, (y1 + y2) / 2
    label = dict(fontsize=9, color="black", bbox=dict(facecolor="white", edgecolor="none", alpha=0.85, pad=1.5))
    arrow = dict(arrowstyle="<->", color="white", linewidth=1.8)
    ax.add_patch(Rectangle((x1, y1), w, h, fill=False, edgecolor=box_color, linewidth=2.5))
    ax.plot([x1, x2], [y1, y2], "o", color=box_color, markeredgecolor="white", markersize=8)
    ax.plot([cx], [cy], "P", color="#ffe119", markeredgecolor="black", markersize=11)
    ax.annotate("", xy=(x2, y2 + 0.1 * h), xytext=(x1, y2 + 0.1 * h), arrowprops=arrow)   # w, below the box
    ax.annotate("", xy=(x1 - 0.1 * w, y2), xytext=(x1 - 0.1 * w, y1), arrowprops=arrow)   # h, left of the box
    ax.text(x1, y1 - 0.03 * h, f"(x1, y1) = ({x1:g}, {y1:g})", ha="left", va="bottom", **label)
    ax.text(x2 + 0.04 * w, y2, f"(x2, y2) = ({x2:g}, {y2:g})", ha="left", va="center", **label)
    ax.text(cx, cy + 0.06 * h, f"centre (cx, cy) = ({cx:g}, {cy:g})", ha="center", va="top", **label)
    ax.text(cx, y2 + 0.14 * h, f"w = {w:g}", ha="center", va="top", **label)
    ax.text(x1 - 0.14 * w, cy, f"h = {h:g}", ha="right", va="center", **label)


def draw_regression(ax: Axes, proposal, target, decoded=None,
                    labels: Sequence[str] = ("proposal P", "ground truth G", "decoded")) -> None:
    """A proposal (dashed), the ground-truth box it should move to (solid), an arrow between their centres,
    and optionally the box decoded from the regression targets (dotted)."""
    p, g = _box_list(proposal), _box_list(target)
    styles = [(p, "#f58231", "--", labels[0]), (g, "#3cb44b", "-", labels[1])]
    if decoded is not None:
        styles.append((_box_list(decoded), "#42d4f4", ":", labels[2]))
    handles = []
    for (x1, y1, x2, y2), c, style, name in styles:
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=c, linestyle=style,
                               linewidth=2.5 if style != ":" else 3.0))
        handles.append(Line2D([], [], color=c, linestyle=style, linewidth=2.5, label=name))
    (px, py), (gx, gy) = ((p[0] + p[2]) / 2, (p[1] + p[3]) / 2), ((g[0] + g[2]) / 2, (g[1] + g[3]) / 2)
    ax.plot([px], [py], "o", color="#f58231", markeredgecolor="black")
    ax.plot([gx], [gy], "o", color="#3cb44b", markeredgecolor="black")
    ax.annotate("", xy=(gx, gy), xytext=(px, py),
                arrowprops=dict(arrowstyle="->", color="white", linewidth=2, path_effects=_OUTLINED))
    ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.85)


# --- NMS and mAP (notebook 02)



def keep_labels_inside(ax: Axes, margin: float = 0.04) -> None:
    """Move the labels :func:`draw_boxes` writes above boxes that touch the top of the picture to just inside
    those boxes (they would cover the title), and clip every label to the axes."""
    bottom, top = ax.get_ylim()
    for text in ax.texts:
        x, y = text.get_position()
        if text.get_va() == "bottom" and abs(y - top) < margin * abs(bottom - top):
            text.set_va("top")
        text.set_clip_on(True)


def draw_detection_matches(ax: Axes, boxes, scores, is_true_positive, gt_boxes, duplicate=None) -> None:
    """Detections judged against the ground truth: true positives green, false positives red (dashed),
    duplicates (false positives on an object found already, when ``duplicate`` is given) orange (dashed),
    each with its score; the ground-truth boxes white."""
    hits = torch.as_tensor(is_true_positive, dtype=torch.bool)
    twice = torch.zeros_like(hits) if duplicate is None else torch.as_tensor(duplicate, dtype=torch.bool)
    scores = torch.as_tensor(scores)
    draw_boxes(ax, gt_boxes, colors="white", linewidth=3.5)
    kinds = [(~hits & ~twice, "#e6194b", "--", "false positive"), (twice & ~hits, "#f58231", "--", "duplicate"),
             (hits, "#3cb44b", "-", "true positive")]
    handles = [Line2D([], [], color="white", linewidth=3.5, path_effects=_OUTLINED, label="ground truth")]
    for mask, c, style, name in kinds:
        if mask.any():
            draw_boxes(ax, torch.as_tensor(boxes)[mask], scores=scores[mask], colors=c, linestyle=style)
            handles.append(Line2D([], [], color=c, linestyle=style, linewidth=2, label=f"{name}: {int(mask.sum())}"))
    ax.legend(handles=handles, loc="lower left", fontsize=8, framealpha=0.85)
    keep_labels_inside(ax)


def plot_ap_interpolation(precision, recall, method: str, ax: Axes | None = None) -> Axes:
    """A precision/recall curve with the interpolated precision an AP ``method`` averages, titled with the AP.

    The envelope ``p_interp(r) = max {precision(k) : recall(k) >= r}`` is drawn as a step line; for
    ``'voc2007'`` and ``'coco'`` the 11 or 101 values it is read at are drawn as bars, for ``'voc2010'``
    (all points) the area under it is shaded. The AP is :func:`cvkit.metrics.average_precision`.
    """
    from cvkit.metrics import (COCO_RECALL_THRESHOLDS, VOC2007_RECALL_THRESHOLDS, average_precision,
                               interpolated_precision, precision_envelope)

    p = torch.as_tensor(np.asarray(precision.detach().cpu() if isinstance(precision, torch.Tensor) else precision,
                                   dtype=np.float64))
    r = torch.as_tensor(np.asarray(recall.detach().cpu() if isinstance(recall, torch.Tensor) else recall,
                                   dtype=np.float64))
    ap = average_precision(p, r, method)
    ax = plot_pr_curve(p, r, ax=ax, color="#4363d8", marker="o", markersize=3, linewidth=1, label="precision(k)")
    envelope = precision_envelope(p).numpy()
    steps_r = np.concatenate(([0.0], r.numpy(), [1.0]))                   # and 0 beyond the last recall
    steps_p = np.concatenate((envelope[:1], envelope, [0.0])) if len(p) else np.zeros(2)
    ax.step(steps_r, steps_p, where="pre", color="black", linewidth=1.5, label="interpolated precision")
    name = {"voc2007": "VOC 2007, 11 points", "voc2010": "VOC 2010+, all points", "all_point": "all points",
            "coco": "COCO, 101 points"}[method]
    grids = {"voc2007": VOC2007_RECALL_THRESHOLDS, "coco": COCO_RECALL_THRESHOLDS}
    if method in grids:
        levels = grids[method]
        values = interpolated_precision(p, r, levels)
        ax.bar(levels.numpy(), values.numpy(), width=0.6 / (len(levels) - 1), color="#f58231", alpha=0.7,
               label=f"the {len(levels)} values averaged")
    else:
        ax.fill_between(steps_r, steps_p, step="pre", color="#f58231", alpha=0.35, label="area = AP")
    ax.set_title(f"{name}: AP = {ap:.4f}")
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    return ax
