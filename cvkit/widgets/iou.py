"""IoU explorer: move and resize two boxes over a photo and watch IoU and GIoU change.

    IoU(A, B)  = |A ∩ B| / |A ∪ B|
    GIoU(A, B) = IoU(A, B) - |C \\ (A ∪ B)| / |C|      C: the smallest box enclosing A and B

Box A starts on one of the photo's hand-drawn boxes (the "ground truth"), box B on a copy of it moved
right and down (a "prediction"). Each box has four sliders, ``x``, ``y`` (its top-left corner) and
``w``, ``h`` (its size, at least one pixel), so every position of the sliders is a valid box. IoU and
GIoU come from :func:`cvkit.box_iou` and :func:`cvkit.generalized_box_iou`; the label also says whether
B would count as a true positive under the VOC rule (IoU >= 0.5).
"""
from __future__ import annotations

from typing import Sequence

import ipywidgets as widgets
import torch
from matplotlib.axes import Axes
from torch import Tensor

from cvkit.boxes import _inter_union, box_area, box_iou, generalized_box_iou
from cvkit.datasets import Photo, load_photo
from cvkit.viz import draw_overlap, show_image
from cvkit.widgets._figure import FigureOutput, batch_update

VOC_THRESHOLD = 0.5   # a detection is a true positive when its IoU with a ground-truth box is >= 0.5


def _default_object(photo: Photo) -> int:
    """The first box covering at most a quarter of the photo (big boxes leave B no room to move)."""
    height, width = photo.size
    areas = box_area(photo.boxes)
    small = (areas <= height * width / 4).nonzero()
    return int(small[0]) if len(small) else 0


class IoUExplorer:
    """Two boxes over a photo, moved and resized with sliders; IoU, GIoU and the intersection drawn live.

    Args:
        photo: a photo name from :func:`cvkit.datasets.photo_names` or a loaded :class:`Photo`.
        obj: index of the photo's box that A starts on (default: its first box that is not too large).
        box_b: where B starts, xyxy (default: A moved right by 30 % of its width and down by 20 % of its height).
        enclosing: draw C, the smallest box enclosing A and B, from the start.

    Attributes:
        widget: the controls, the label and the figure, for ``display``.
        object: dropdown of the photo's boxes; choosing one puts A on it.
        a_x, a_y, a_w, a_h, b_x, b_y, b_w, b_h: the sliders (``IntSlider``) of boxes A and B.
        show_enclosing: checkbox that draws C.
        label: ``ipywidgets.HTML`` with the numbers.
        box_a, box_b: ``Tensor[4]`` float32, the boxes (xyxy) the sliders describe now.
        intersection, union, enclosing_area: ``|A ∩ B|``, ``|A ∪ B|``, ``|C|`` in square pixels.
        iou, giou: IoU and GIoU of A and B (floats).
        figure: the :class:`FigureOutput`; ``figure.figure`` is the last figure drawn.
    """

    def __init__(self, photo: str | Photo = "astronaut", obj: int | None = None,
                 box_b: Sequence[float] | Tensor | None = None, enclosing: bool = True) -> None:
        self.photo = load_photo(photo) if isinstance(photo, str) else photo
        height, width = self.photo.size
        n = self.photo.boxes.shape[0]
        if n == 0:
            raise ValueError(f"photo {self.photo.name!r} has no boxes to start box A on")
        obj = _default_object(self.photo) if obj is None else obj
        if not 0 <= obj < n:
            raise ValueError(f"obj must index one of the photo's {n} boxes, got {obj}")

        def slider(name: str, low: int, high: int) -> widgets.IntSlider:
            return widgets.IntSlider(min=low, max=high, value=low, description=name, continuous_update=False,
                                     layout=widgets.Layout(width="260px"))

        self.a_x, self.a_y = slider("x", 0, width - 1), slider("y", 0, height - 1)
        self.a_w, self.a_h = slider("w", 1, width), slider("h", 1, height)
        self.b_x, self.b_y = slider("x", 0, width - 1), slider("y", 0, height - 1)
        self.b_w, self.b_h = slider("w", 1, width), slider("h", 1, height)
        self.object = widgets.Dropdown(options=[(f"{i}: {label}", i) for i, label in enumerate(self.photo.labels)],
                                       value=obj, description="A is")
        self.show_enclosing = widgets.Checkbox(value=enclosing, description="draw C (GIoU)")
        self.label = widgets.HTML()
        self.figure = FigureOutput(figsize=(6, 6))

        self.box_a = self.box_b = torch.zeros(4)
        self.intersection = self.union = self.enclosing_area = self.iou = self.giou = float("nan")
        self._holding = False

        a = self.photo.boxes[obj]
        if box_b is None:
            size = a[2:] - a[:2]
            box_b = a + torch.cat((size * torch.tensor([0.3, 0.2]), size * torch.tensor([0.3, 0.2])))
        self.set_boxes(a, box_b)

        for control in (self.a_x, self.a_y, self.a_w, self.a_h, self.b_x, self.b_y, self.b_w, self.b_h,
                        self.show_enclosing):
            control.observe(lambda _change: self.update(), names="value")
        self.object.observe(lambda change: self.set_boxes(box_a=self.photo.boxes[change["new"]]), names="value")

        column = widgets.Layout(padding="0 12px 0 0")
        self.widget = widgets.VBox([
            widgets.HBox([self.object, self.show_enclosing]),
            widgets.HBox([
                widgets.VBox([widgets.HTML("<b style='color:#e6194b'>A</b> (ground truth)"),
                              self.a_x, self.a_y, self.a_w, self.a_h], layout=column),
                widgets.VBox([widgets.HTML("<b style='color:#4363d8'>B</b> (prediction)"),
                              self.b_x, self.b_y, self.b_w, self.b_h]),
            ]),
            self.label,
            self.figure.output,
        ])

    def set_boxes(self, box_a: Sequence[float] | Tensor | None = None,
                  box_b: Sequence[float] | Tensor | None = None) -> None:
        """Move A and/or B to xyxy boxes, rounded to whole pixels and clipped to the sliders' ranges; update once."""
        with batch_update(self):
            for box, (x, y, w, h) in ((box_a, (self.a_x, self.a_y, self.a_w, self.a_h)),
                                      (box_b, (self.b_x, self.b_y, self.b_w, self.b_h))):
                if box is None:
                    continue
                x1, y1, x2, y2 = torch.as_tensor(box, dtype=torch.float64).reshape(4).tolist()
                for control, value in ((x, x1), (y, y1), (w, x2 - x1), (h, y2 - y1)):
                    control.value = int(min(max(round(value), control.min), control.max))

    def _box(self, x: widgets.IntSlider, y: widgets.IntSlider, w: widgets.IntSlider, h: widgets.IntSlider) -> Tensor:
        return torch.tensor([x.value, y.value, x.value + w.value, y.value + h.value], dtype=torch.float32)

    def update(self) -> None:
        """Read the sliders, recompute IoU and GIoU, rewrite the label and redraw the figure."""
        if self._holding:
            return
        self.box_a = self._box(self.a_x, self.a_y, self.a_w, self.a_h)
        self.box_b = self._box(self.b_x, self.b_y, self.b_w, self.b_h)
        a, b = self.box_a[None], self.box_b[None]                                  # [1, 4] each
        self.iou = float(box_iou(a, b)[0, 0])
        self.giou = float(generalized_box_iou(a, b)[0, 0])
        inter, union = _inter_union(a, b)                                          # [1, 1] each, as box_iou's
        self.intersection, self.union = float(inter), float(union)
        c_lt, c_rb = torch.minimum(self.box_a[:2], self.box_b[:2]), torch.maximum(self.box_a[2:], self.box_b[2:])
        self.enclosing_area = float((c_rb - c_lt).prod())
        verdict = ("a true positive under the VOC rule (IoU &ge; 0.5)" if self.iou >= VOC_THRESHOLD
                   else "not a true positive under the VOC rule (IoU &lt; 0.5)")
        self.label.value = (
            f"<b>IoU = {self.iou:.3f}</b> &nbsp; <b>GIoU = {self.giou:.3f}</b> &nbsp;&nbsp; "
            f"|A &cap; B| = {self.intersection:.0f}, |A &cup; B| = {self.union:.0f}, |C| = {self.enclosing_area:.0f} "
            f"px&sup2; &nbsp;&nbsp; B is {verdict}")
        self.figure.redraw(lambda fig: self.draw(fig.add_subplot(1, 1, 1)))

    def draw(self, ax: Axes) -> Axes:
        """Draw the photo, A, B, their intersection (and C if ticked) on ``ax``, titled with IoU and GIoU."""
        height, width = self.photo.size
        show_image(self.photo.image, ax=ax, title=f"IoU = {self.iou:.3f}   GIoU = {self.giou:.3f}")
        draw_overlap(ax, self.box_a, self.box_b, labels=("A", "B"), enclosing=self.show_enclosing.value)
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
        return ax
