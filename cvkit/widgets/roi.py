"""RoI shift explorer: slide a RoI across a feature map by sub-pixel steps and watch one pooled output.

RoIPool rounds the box to the feature grid (Fast R-CNN), so as the box slides its output stays put and then
jumps when a rounded corner crosses to the next cell. RoIAlign (Mask R-CNN) samples the map bilinearly at
the box's exact position, so its output follows the box smoothly. The explorer computes both outputs for
every shift once (one call of :func:`cvkit.roi.roi_pool` and :func:`cvkit.roi.roi_align` with all the
shifted boxes), then draws the map with RoIPool's bins and RoIAlign's sampling points at the current shift,
and the two response curves.
"""
from __future__ import annotations

from typing import Sequence

import ipywidgets as widgets
import torch
from torch import Tensor

from cvkit.datasets.roi_targets import photo_features
from cvkit.roi import roi_align, roi_pool
from cvkit.viz import show_image
from cvkit.viz.roi import draw_roi_align_samples, draw_roi_pool_bins, plot_shift_response
from cvkit.widgets._figure import FigureOutput


class RoIShiftExplorer:
    """A RoI slid to the right over a feature map; RoIPool's and RoIAlign's output of one bin against the shift.

    Args:
        features: ``Tensor[1, 1, h, w]`` feature map, or ``None`` for the photo's (see ``photo_features``).
        box: the RoI in image pixels, xyxy, before any shift.
        stride: image pixels per feature cell (``spatial_scale = 1 / stride``).
        output_size: bins of both operators.
        sampling_ratio, aligned: RoIAlign's settings.
        max_shift: the slider's range in image pixels (default two cells); ``steps`` shifts are computed.
        photo: the photo whose features are used when ``features`` is None.

    Attributes:
        widget: the controls and the figure, for ``display``.
        shift: ``FloatSlider``, the shift in image pixels; ``bin_row``, ``bin_col``: ``IntSlider``, the bin plotted.
        shifts: ``Tensor[steps]`` the shifts computed; ``pooled``, ``aligned_out``: ``Tensor[steps, ph, pw]``
            the two operators' outputs at every shift.
        pool_value, align_value: the plotted bin's outputs at the current shift (floats).
        figure: the :class:`FigureOutput`.
    """

    def __init__(self, features: Tensor | None = None, box: Sequence[float] = (150.0, 70.0, 300.0, 200.0),
                 stride: int = 16, output_size: int = 4, sampling_ratio: int = 2, aligned: bool = True,
                 max_shift: float | None = None, steps: int = 129, photo: str = "astronaut") -> None:
        if features is None:
            features = photo_features(photo, stride)[1]
        if features.dim() != 4 or features.shape[:2] != (1, 1):
            raise ValueError(f"features must be a Tensor[1, 1, h, w], got shape {list(features.shape)}")
        self.features = features.float()
        self.box = torch.tensor([float(v) for v in box])
        self.stride, self.output_size = stride, output_size
        self.sampling_ratio, self.is_aligned = sampling_ratio, aligned
        max_shift = 2.0 * stride if max_shift is None else float(max_shift)
        self.shifts = torch.linspace(0.0, max_shift, steps)
        boxes = self.box[None].repeat(steps, 1)
        boxes[:, 0::2] += self.shifts[:, None]                                      # slide along x
        rois = torch.cat((torch.zeros(steps, 1), boxes), 1)                         # all on image 0
        self.pooled = roi_pool(self.features, rois, output_size, 1 / stride)[:, 0]  # [steps, ph, pw]
        self.aligned_out = roi_align(self.features, rois, output_size, 1 / stride, sampling_ratio, aligned)[:, 0]

        self.shift = widgets.FloatSlider(min=0.0, max=max_shift, step=float(self.shifts[1] - self.shifts[0]),
                                         value=0.0, description="shift (px)", continuous_update=False,
                                         readout_format=".2f", layout=widgets.Layout(width="420px"))
        self.bin_row = widgets.IntSlider(min=0, max=output_size - 1, value=output_size // 2, description="bin row",
                                         continuous_update=False)
        self.bin_col = widgets.IntSlider(min=0, max=output_size - 1, value=0, description="bin column",
                                         continuous_update=False)
        self.label = widgets.HTML()
        self.figure = FigureOutput(figsize=(12, 4.6))
        self.pool_value = self.align_value = float("nan")
        for control in (self.shift, self.bin_row, self.bin_col):
            control.observe(lambda _change: self.update(), names="value")
        self.widget = widgets.VBox([widgets.HBox([self.shift, self.bin_row, self.bin_col]), self.label,
                                    self.figure.output])
        self.update()

    @property
    def step(self) -> int:
        """Index of the computed shift nearest the slider."""
        return int((self.shifts - self.shift.value).abs().argmin())

    def current_box(self) -> Tensor:
        """The shifted RoI, xyxy in image pixels."""
        return self.box + torch.tensor([1.0, 0.0, 1.0, 0.0]) * self.shifts[self.step]

    def update(self) -> None:
        """Read the sliders, look up both outputs, rewrite the label and redraw."""
        i, j, k = self.bin_row.value, self.bin_col.value, self.step
        self.pool_value = float(self.pooled[k, i, j])
        self.align_value = float(self.aligned_out[k, i, j])
        moves = int((self.pooled[1:, i, j] != self.pooled[:-1, i, j]).sum())
        self.label.value = (f"shift {float(self.shifts[k]):.2f} px = {float(self.shifts[k]) / self.stride:.3f} cells"
                            f" &nbsp; bin ({i}, {j}): RoIPool {self.pool_value:.4f}, RoIAlign {self.align_value:.4f}"
                            f" &nbsp; (over the whole slide, RoIPool's value changes {moves} times in "
                            f"{len(self.shifts) - 1} steps)")
        self.figure.redraw(self.draw)

    def draw(self, fig) -> None:
        """Left: the map, RoIPool's bins and RoIAlign's points at this shift. Right: both outputs against the shift."""
        left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
        box = self.current_box().tolist()
        show_image(self.features[0, 0], ax=left, title="feature map: RoIPool bins, RoIAlign points")
        draw_roi_pool_bins(left, box, 1 / self.stride, self.output_size, tuple(self.features.shape[-2:]))
        draw_roi_align_samples(left, box, 1 / self.stride, self.output_size, self.sampling_ratio, self.is_aligned,
                               marker_size=10)
        i, j = self.bin_row.value, self.bin_col.value
        plot_shift_response(self.shifts, self.pooled[:, i, j], self.aligned_out[:, i, j],
                            current=float(self.shifts[self.step]), ax=right)
        right.set_title(f"bin ({i}, {j}) as the RoI slides right")
