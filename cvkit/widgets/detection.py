"""Anchor explorer: pick a feature-map position, anchor sizes and aspect ratios, and see how the RPN labels them.

Faster R-CNN (Ren et al., NeurIPS 2015, section 3.1) puts k = sizes x ratios anchors at every position
of the feature map and labels each by its highest IoU with an object: positive if IoU >= 0.7 (or if it
is some object's best anchor), negative if IoU < 0.3, ignored in between. Whether an object gets a
positive anchor at all depends on the sizes, the ratios and the stride: the explorer recomputes every
anchor of the image with :class:`cvkit.detection.AnchorGenerator`, labels them with
:class:`cvkit.detection.Matcher` (the best-anchor rule needs all anchors, not just those of one
position) and draws the chosen position's anchors with their IoU and label.
"""
from __future__ import annotations

from typing import Sequence

import ipywidgets as widgets
import torch
from matplotlib.axes import Axes
from torch import Tensor

from cvkit.boxes import box_iou
from cvkit.detection import AnchorGenerator, ImageList, Matcher
from cvkit.viz.detection import draw_position_anchors
from cvkit.widgets._figure import FigureOutput, batch_update

__all__ = ["AnchorExplorer", "label_anchors"]

SIZE_OPTIONS = (8, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128)
RATIO_OPTIONS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0)


def label_anchors(anchors: Tensor, gt_boxes: Tensor, high: float = 0.7, low: float = 0.3) -> tuple[Tensor, Tensor, Tensor]:
    """The RPN's anchor labels, each anchor's best IoU and each object's best IoU.

    Args:
        anchors: ``Tensor[N, 4]`` xyxy; ``gt_boxes``: ``Tensor[G, 4]`` xyxy (G may be 0).
        high, low: IoU >= ``high`` positive, < ``low`` negative (each object's best anchors are positive too).

    Returns:
        ``(labels [N] int64: 1 / 0 / -1, best_iou [N], best_iou_per_object [G])``.
    """
    if len(gt_boxes) == 0:
        return (torch.zeros(len(anchors), dtype=torch.int64), torch.zeros(len(anchors)),
                torch.zeros(0))
    iou = box_iou(gt_boxes, anchors)                                               # [G, N]
    matches = Matcher(high, low, allow_low_quality_matches=True)(iou)
    labels = (matches >= 0).to(torch.int64)
    labels[matches == Matcher.BETWEEN_THRESHOLDS] = -1
    return labels, iou.max(dim=0).values, iou.max(dim=1).values


class AnchorExplorer:
    """An image with its objects; sliders for a feature-map position, choices of sizes and ratios, the thresholds.

    Args:
        image: ``Tensor[3, H, W]`` in [0, 1].
        gt_boxes: ``Tensor[G, 4]`` the objects, xyxy.
        stride: image pixels per feature-map position (the backbone's stride; must divide H and W).
        sizes, aspect_ratios: where the choices start (sizes in pixels, ratios height / width).
        row, col: the position shown first.
        high, low: where the RPN's IoU thresholds start (0.7, 0.3).

    Attributes:
        widget: the controls, the label and the figure, for ``display``.
        row, col: ``IntSlider``, the feature-map position; ``sizes``, ``ratios``: ``SelectMultiple``;
        high, low: ``FloatSlider``, the thresholds.
        anchors: ``Tensor[H/stride * W/stride * k, 4]`` all anchors of the image, in the generator's order.
        labels: ``Tensor[N]`` their labels (1 positive, 0 negative, -1 ignored); ``best_iou``: ``Tensor[N]``.
        best_iou_per_object: ``Tensor[G]`` the highest IoU any anchor reaches with each object.
        position_anchors, position_labels, position_ious: the same for the k anchors of the chosen position.
        label: ``ipywidgets.HTML`` with the counts; figure: the :class:`FigureOutput`.
    """

    def __init__(self, image: Tensor, gt_boxes: Tensor, stride: int = 8, sizes: Sequence[int] = (16, 32, 64),
                 aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0), row: int | None = None, col: int | None = None,
                 high: float = 0.7, low: float = 0.3) -> None:
        if not isinstance(image, Tensor) or image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"image must be a Tensor[3, H, W], got {getattr(image, 'shape', type(image).__name__)}")
        if not isinstance(gt_boxes, Tensor) or gt_boxes.dim() != 2 or gt_boxes.shape[1] != 4:
            raise ValueError(f"gt_boxes must be a Tensor[G, 4], got {getattr(gt_boxes, 'shape', type(gt_boxes).__name__)}")
        height, width = image.shape[-2:]
        if not isinstance(stride, int) or stride < 1 or height % stride or width % stride:
            raise ValueError(f"stride must be a positive int dividing the image size {height} x {width}, got {stride!r}")
        unknown = [s for s in sizes if s not in SIZE_OPTIONS] + [r for r in aspect_ratios if r not in RATIO_OPTIONS]
        if not sizes or not aspect_ratios or unknown:
            raise ValueError(f"sizes must come from {SIZE_OPTIONS} and aspect_ratios from {RATIO_OPTIONS}, "
                             f"got {tuple(sizes)} and {tuple(aspect_ratios)}")
        if not 0 <= low <= high <= 1:
            raise ValueError(f"need 0 <= low <= high <= 1, got low={low} and high={high}")
        self.image, self.gt_boxes, self.stride = image.detach().cpu().float(), gt_boxes.detach().cpu().float(), stride
        self.grid_size = (height // stride, width // stride)
        if row is None or col is None:                     # start on the first object's centre
            centre = ((self.gt_boxes[0, :2] + self.gt_boxes[0, 2:]) / 2 / stride).round().int().tolist() \
                if len(self.gt_boxes) else [self.grid_size[1] // 2, self.grid_size[0] // 2]
            col, row = (min(max(v, 0), n - 1) for v, n in zip(centre, self.grid_size[::-1]))

        def threshold(description: str, value: float) -> widgets.FloatSlider:
            return widgets.FloatSlider(value=value, min=0.0, max=1.0, step=0.05, description=description,
                                       continuous_update=False, readout_format=".2f")

        self.row = widgets.IntSlider(value=row, min=0, max=self.grid_size[0] - 1, description="row i",
                                     continuous_update=False)
        self.col = widgets.IntSlider(value=col, min=0, max=self.grid_size[1] - 1, description="column j",
                                     continuous_update=False)
        self.sizes = widgets.SelectMultiple(options=SIZE_OPTIONS, value=tuple(sizes), description="sizes",
                                            rows=len(SIZE_OPTIONS))
        self.ratios = widgets.SelectMultiple(options=RATIO_OPTIONS, value=tuple(aspect_ratios),
                                             description="ratios h/w", rows=len(RATIO_OPTIONS))
        self.high = threshold("positive ≥", high)
        self.low = threshold("negative <", low)
        self.label = widgets.HTML()
        self.figure = FigureOutput(figsize=(8, 6))
        self._holding = False
        self.update()
        for control in (self.row, self.col, self.sizes, self.ratios, self.high, self.low):
            control.observe(lambda _change: self.update(), names="value")
        self.widget = widgets.VBox([
            widgets.HBox([widgets.VBox([self.row, self.col, self.high, self.low]), self.sizes, self.ratios]),
            self.label,
            self.figure.output,
        ])

    def show(self, row: int | None = None, col: int | None = None, sizes: Sequence[int] | None = None,
             aspect_ratios: Sequence[float] | None = None) -> None:
        """Move several controls and redraw once."""
        with batch_update(self):
            if sizes is not None:
                self.sizes.value = tuple(sizes)
            if aspect_ratios is not None:
                self.ratios.value = tuple(aspect_ratios)
            if row is not None:
                self.row.value = row
            if col is not None:
                self.col.value = col

    @property
    def num_anchors(self) -> int:
        """k, the anchors per position."""
        return len(self.sizes.value) * len(self.ratios.value)

    def update(self) -> None:
        """Recompute every anchor and its label for the current choices, rewrite the label and redraw."""
        if self._holding:
            return
        if not self.sizes.value or not self.ratios.value:
            self.label.value = "<b>choose at least one size and one ratio</b>"
            return
        generator = AnchorGenerator((tuple(sorted(self.sizes.value)),), (tuple(sorted(self.ratios.value)),))
        feature_map = torch.zeros(1, 1, *self.grid_size)
        self.anchors = generator(ImageList.from_tensor(self.image[None]), [feature_map])[0]
        low = min(self.low.value, self.high.value)
        self.labels, self.best_iou, self.best_iou_per_object = label_anchors(self.anchors, self.gt_boxes,
                                                                             self.high.value, low)
        k = self.num_anchors
        first = (self.row.value * self.grid_size[1] + self.col.value) * k
        self.position_anchors = self.anchors[first:first + k]
        self.position_labels = self.labels[first:first + k]
        self.position_ious = self.best_iou[first:first + k]
        counts = {name: int((self.labels == value).sum()) for name, value in (("positive", 1), ("ignored", -1),
                                                                               ("negative", 0))}
        at_position = ", ".join(f"{int((self.position_labels == v).sum())} {n}" for n, v in
                                (("positive", 1), ("ignored", -1), ("negative", 0)))
        reach = (self.best_iou_per_object >= self.high.value).sum()
        self.label.value = (
            f"<b>{k} anchors per position x {self.grid_size[0]} x {self.grid_size[1]} positions = {len(self.anchors)}"
            f"</b>: {counts['positive']} positive, {counts['ignored']} ignored, {counts['negative']} negative.<br>"
            f"position ({self.row.value}, {self.col.value}) at pixel ({self.col.value * self.stride}, "
            f"{self.row.value * self.stride}): {at_position}.<br>"
            f"best IoU of any anchor with each object: "
            f"{', '.join(f'{v:.2f}' for v in self.best_iou_per_object.tolist()) or 'no objects'} "
            f"({int(reach)} of {len(self.gt_boxes)} reach {self.high.value:.2f}; the others get a positive only by "
            f"the best-anchor rule)")
        self.figure.redraw(lambda fig: self.draw(fig.add_subplot(1, 1, 1)))

    def draw(self, ax: Axes, title: str | None = None) -> Axes:
        """Draw the chosen position's anchors (see :func:`cvkit.viz.detection.draw_position_anchors`)."""
        k = self.num_anchors
        first = (self.row.value * self.grid_size[1] + self.col.value) * k
        elsewhere = torch.ones(len(self.anchors), dtype=torch.bool)
        elsewhere[first:first + k] = False
        if title is None:
            title = (f"position ({self.row.value}, {self.col.value}): sizes {sorted(self.sizes.value)}, "
                     f"ratios {sorted(self.ratios.value)}")
        draw_position_anchors(ax, self.image, self.gt_boxes, self.position_anchors, self.position_labels,
                              self.position_ious, (self.col.value * self.stride, self.row.value * self.stride),
                              other_positives=self.anchors[elsewhere & (self.labels == 1)], title=title)
        return ax
