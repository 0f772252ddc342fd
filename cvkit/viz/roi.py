"""Pictures for notebook 04: RoIPool's quantisation, RoIAlign's sampling points, SPP's bins, gradient maps,
and the RoIPool vs RoIAlign experiment.

The geometry drawn is the operators' own (``cvkit.roi._pool_bins`` and ``cvkit.roi._align_geometry``), so
a picture shows exactly which cells a bin reads. Coordinates are feature-map cells, with cell ``(i, j)``
drawn as the unit square centred on ``(j, i)`` (as ``imshow`` draws it); that is also where RoIAlign puts
the cell's value, so its sampling points can be drawn directly.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from cvkit.roi import _align_geometry, _pool_bins
from cvkit.viz import color

__all__ = ["draw_feature_grid", "draw_roi_pool_bins", "draw_roi_align_samples", "plot_roi_quantisation",
           "draw_pyramid_bins", "show_gradient_map", "plot_shift_response", "plot_pooling_comparison"]

POOL_COLOR, ALIGN_COLOR = "#e6194b", "#4363d8"


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def draw_feature_grid(ax: Axes, height: int, width: int, color: str = "0.6", linewidth: float = 0.5) -> None:
    """Thin lines between the cells of a ``height x width`` feature map."""
    for y in np.arange(-0.5, height, 1.0):
        ax.axhline(y, color=color, linewidth=linewidth)
    for x in np.arange(-0.5, width, 1.0):
        ax.axvline(x, color=color, linewidth=linewidth)


def draw_roi_pool_bins(ax: Axes, box: Sequence[float], spatial_scale: float, output_size: int | Sequence[int],
                       feature_size: tuple[int, int], alpha: float = 0.35) -> None:
    """RoIPool's bins for an xyxy image box: the integer cells each bin takes its max over, tinted bin by bin."""
    pooled_h, pooled_w = _pair(output_size)
    rois = torch.tensor([[0.0, *[float(v) for v in box]]], dtype=torch.float64)
    hs, he, ws, we = (t.reshape(-1).tolist() for t in _pool_bins(rois, *feature_size, pooled_h, pooled_w, spatial_scale))
    for i in range(pooled_h):
        for j in range(pooled_w):
            if he[i] <= hs[i] or we[j] <= ws[j]:
                continue
            c = color(i * pooled_w + j)
            ax.add_patch(Rectangle((ws[j] - 0.5, hs[i] - 0.5), we[j] - ws[j], he[i] - hs[i], facecolor=c,
                                   alpha=alpha, edgecolor=c, linewidth=1.5))


def draw_roi_align_samples(ax: Axes, box: Sequence[float], spatial_scale: float, output_size: int | Sequence[int],
                           sampling_ratio: int = 2, aligned: bool = True, shift: float = 0.0,
                           scale_to: float = 1.0, marker_size: float = 16) -> None:
    """RoIAlign's bins (lines) and sampling points (dots) for an xyxy image box.

    Drawn in feature cells; ``scale_to`` and ``shift`` map them to other coordinates, ``(f + shift) * scale_to``
    (``shift=0.5, scale_to=stride`` puts them on the image for ``aligned=True``).
    """
    pooled_h, pooled_w = _pair(output_size)
    rois = torch.tensor([[0.0, *[float(v) for v in box]]], dtype=torch.float64)
    y1, x1, bin_h, bin_w, grid_h, grid_w = (float(t[0]) for t in
                                            _align_geometry(rois, pooled_h, pooled_w, spatial_scale,
                                                            sampling_ratio, aligned))
    grid_h, grid_w = int(grid_h), int(grid_w)

    def place(v: float) -> float:
        return (v + shift) * scale_to

    for i in range(pooled_h + 1):
        ax.plot([place(x1), place(x1 + pooled_w * bin_w)], [place(y1 + i * bin_h)] * 2, color=ALIGN_COLOR, lw=1.5)
    for j in range(pooled_w + 1):
        ax.plot([place(x1 + j * bin_w)] * 2, [place(y1), place(y1 + pooled_h * bin_h)], color=ALIGN_COLOR, lw=1.5)
    ys = [y1 + i * bin_h + (iy + 0.5) * bin_h / grid_h for i in range(pooled_h) for iy in range(grid_h)]
    xs = [x1 + j * bin_w + (ix + 0.5) * bin_w / grid_w for j in range(pooled_w) for ix in range(grid_w)]
    yy, xx = np.meshgrid([place(v) for v in ys], [place(v) for v in xs], indexing="ij")
    ax.scatter(xx.ravel(), yy.ravel(), s=marker_size, color="#ffe119", edgecolor="black", linewidth=0.6, zorder=5)


def plot_roi_quantisation(box: Sequence[float], stride: int, image_size: tuple[int, int],
                          output_size: int | Sequence[int] = 2, ax: Axes | None = None) -> Axes:
    """The lecture's example in feature cells: the box divided by the stride (dashed), snapped to the grid
    (solid red), and RoIPool's bins of unequal size; corner coordinates written beside.

    Args:
        box: xyxy in image pixels.
        stride: the backbone's stride (``spatial_scale = 1 / stride``).
        image_size: ``(height, width)`` of the image in pixels.
    """
    height, width = image_size[0] // stride, image_size[1] // stride
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 6.5))
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.set_aspect("equal")
    draw_feature_grid(ax, height, width)
    draw_roi_pool_bins(ax, box, 1 / stride, output_size, (height, width))
    x1, y1, x2, y2 = (v / stride for v in box)
    ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor="black",
                           linestyle="--", linewidth=2))
    rx1, ry1 = (int(np.sign(v) * np.floor(abs(v) + 0.5)) for v in (x1, y1))
    rx2, ry2 = (int(np.sign(v) * np.floor(abs(v) + 0.5)) for v in (x2, y2))
    ax.add_patch(Rectangle((rx1 - 0.5, ry1 - 0.5), rx2 - rx1 + 1, ry2 - ry1 + 1, fill=False, edgecolor=POOL_COLOR,
                           linewidth=2.5))
    ax.text(x1 - 0.5, y1 - 0.7, f"({box[0]:g}, {box[1]:g}) / {stride} = ({x1:g}, {y1:g})", fontsize=9,
            ha="left", va="bottom", bbox=dict(facecolor="white", edgecolor="none", alpha=0.9))
    ax.text(rx2 + 0.5, ry2 + 0.7, f"RoIPool reads cells x {rx1}..{rx2}, y {ry1}..{ry2}", fontsize=9, color=POOL_COLOR,
            ha="right", va="top", bbox=dict(facecolor="white", edgecolor="none", alpha=0.9))
    ax.legend(handles=[Line2D([], [], color="black", linestyle="--", label="box / stride (exact)"),
                       Line2D([], [], color=POOL_COLOR, label="snapped to cells (rounded)")],
              loc="upper left", fontsize=8, framealpha=0.9)
    ax.set_title(f"{image_size[1]} x {image_size[0]} image at stride {stride}: a {width} x {height} feature map")
    ax.set_xlabel("feature column")
    ax.set_ylabel("feature row")
    return ax


def draw_pyramid_bins(ax: Axes, height: int, width: int, level: int, color_: str = "white") -> None:
    """The ``level x level`` bins of one SPP level on an ``height x width`` map (pixel coordinates)."""
    for i in range(level + 1):
        edge_y, edge_x = np.floor(i * height / level), np.floor(i * width / level)
        ax.axhline(edge_y - 0.5, color=color_, linewidth=1.5)
        ax.axvline(edge_x - 0.5, color=color_, linewidth=1.5)


def show_gradient_map(ax: Axes, gradient: torch.Tensor, box_cells: Sequence[float] | None = None,
                      title: str | None = None) -> Axes:
    """A ``[H, W]`` gradient as a heat map (white = 0), with an optional box in feature cells (xyxy)."""
    g = gradient.detach().cpu().double().numpy()
    limit = max(float(np.abs(g).max()), 1e-12)
    image = ax.imshow(g, cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if box_cells is not None:
        x1, y1, x2, y2 = box_cells
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="black", linestyle="--", lw=1.5))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def plot_shift_response(shifts, pool_values, align_values, current: float | None = None, ax: Axes | None = None,
                        unit: str = "pixels") -> Axes:
    """One pooled output as the RoI slides: RoIPool's steps against RoIAlign's smooth curve."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(np.asarray(shifts), np.asarray(pool_values), color=POOL_COLOR, drawstyle="steps-mid", lw=2,
            label="RoIPool")
    ax.plot(np.asarray(shifts), np.asarray(align_values), color=ALIGN_COLOR, lw=2, label="RoIAlign")
    if current is not None:
        ax.axvline(current, color="black", linestyle=":", lw=1.5)
    ax.set_xlabel(f"shift of the RoI ({unit})")
    ax.set_ylabel("pooled value")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_pooling_comparison(results: Mapping[tuple[str, int], float], ax: Axes | None = None) -> Axes:
    """Test keypoint error against feature stride, one line per RoI operator, the gap written at each stride."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    strides = sorted({stride for _, stride in results})
    for name, c, label in (("roi_pool", POOL_COLOR, "RoIPool"), ("roi_align", ALIGN_COLOR, "RoIAlign")):
        ax.plot(strides, [results[(name, s)] for s in strides], "o-", color=c, lw=2, label=label)
    for s in strides:
        gap = results[("roi_pool", s)] - results[("roi_align", s)]
        ax.annotate(f"gap {gap:.2f}", (s, (results[("roi_pool", s)] + results[("roi_align", s)]) / 2),
                    textcoords="offset points", xytext=(6, 0), fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(strides, [str(s) for s in strides])
    ax.set_xlabel("feature stride (pixels per cell)")
    ax.set_ylabel("keypoint error on test images (pixels)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax
