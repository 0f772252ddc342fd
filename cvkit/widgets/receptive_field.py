"""Receptive field explorer: build a stack of convolutions layer by layer and watch its field grow on a photo.

    R_k = 1 + sum_j (F_j - 1) D_j prod_{i<j} S_i

Each layer has a kernel size F, a stride S and a dilation D (its padding is ``D (F - 1) // 2``, which keeps
the resolution at stride 1). On the left, the photo with the receptive field of the middle output drawn as a
square (:func:`cvkit.receptive_field.receptive_field`); on the right, the field measured by backpropagating
from that output through the same stack with all weights 1
(:func:`cvkit.receptive_field.empirical_receptive_field`): the square must frame the gradient exactly, and
dilations with a common factor leave holes in it.
"""
from __future__ import annotations

import ipywidgets as widgets
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cvkit.datasets import load_photo, photo_names
from cvkit.receptive_field import (EmpiricalReceptiveField, ReceptiveField, coverage, empirical_receptive_field,
                                   receptive_field)
from cvkit.viz import show_image
from cvkit.viz.receptive_field import draw_field, resize_longer_side, show_gradient
from cvkit.widgets._figure import FigureOutput, batch_update

MAX_LAYERS = 6
KERNELS = (1, 2, 3, 5, 7)
STRIDES = (1, 2, 3)
DILATIONS = (1, 2, 3, 4, 5, 8)

# name -> [(kernel, stride, dilation), ...]
PRESETS: dict[str, list[tuple[int, int, int]]] = {
    "four 3x3 layers": [(3, 1, 1)] * 4,
    "3x3 dilated 1-2-4-8": [(3, 1, 1), (3, 1, 2), (3, 1, 4), (3, 1, 8)],
    "gridding: 3x3 dilated 2-2-2": [(3, 1, 2)] * 3,
    "HDC: 3x3 dilated 1-2-5": [(3, 1, 1), (3, 1, 2), (3, 1, 5)],
    "strided: (3x3, 2x2 pool) x 3": [(3, 1, 1), (2, 2, 1), (3, 1, 1), (2, 2, 1), (3, 1, 1), (2, 2, 1)],
}


class ReceptiveFieldExplorer:
    """Per-layer kernel, stride and dilation controls; the field drawn on a photo and measured beside it.

    Args:
        photo: a photo name from :func:`cvkit.datasets.photo_names`.
        preset: a key of :data:`PRESETS` to start from.
        image_size: the photo is shrunk so that its longer side has this many pixels (the stack's input).

    Attributes:
        widget: the controls, the label and the figure, for ``display``.
        preset, photo_choice, depth, log_scale, zoom: the dropdowns, the number-of-layers slider, the checkboxes.
        kernels, strides, dilations: one ``Dropdown`` per possible layer (``MAX_LAYERS``); the first
            ``depth.value`` are used.
        layers: the stack now, ``(kernel, stride, padding, dilation)`` tuples.
        field: its :class:`ReceptiveField`; measured: the :class:`EmpiricalReceptiveField` of the middle output.
        label: ``ipywidgets.HTML`` with the numbers; figure: the :class:`FigureOutput`.
    """

    def __init__(self, photo: str = "astronaut", preset: str = "3x3 dilated 1-2-4-8", image_size: int = 96) -> None:
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        self.image_size = image_size
        self.preset = widgets.Dropdown(options=list(PRESETS), value=preset, description="preset",
                                       layout=widgets.Layout(width="330px"))
        self.photo_choice = widgets.Dropdown(options=photo_names(), value=photo, description="photo")
        self.depth = widgets.IntSlider(min=1, max=MAX_LAYERS, value=1, description="layers", continuous_update=False)
        self.log_scale = widgets.Checkbox(value=True, description="log colour scale")
        self.zoom = widgets.Checkbox(value=True, description="zoom on the field")
        small = widgets.Layout(width="150px")
        self.kernels = [widgets.Dropdown(options=KERNELS, value=3, description="kernel", layout=small)
                        for _ in range(MAX_LAYERS)]
        self.strides = [widgets.Dropdown(options=STRIDES, value=1, description="stride", layout=small)
                        for _ in range(MAX_LAYERS)]
        self.dilations = [widgets.Dropdown(options=DILATIONS, value=1, description="dilation", layout=small)
                          for _ in range(MAX_LAYERS)]
        self.rows = [widgets.HBox([widgets.HTML(f"<b>layer {i + 1}</b>", layout=widgets.Layout(width="60px")),
                                   self.kernels[i], self.strides[i], self.dilations[i]]) for i in range(MAX_LAYERS)]
        self.label = widgets.HTML()
        self.figure = FigureOutput(figsize=(11, 5))
        self.layers: list[tuple[int, int, int, int]] = []
        self.field: ReceptiveField | None = None
        self.measured: EmpiricalReceptiveField | None = None
        self._holding = False
        self._load_photo(photo)

        for control in (self.depth, self.log_scale, self.zoom, *self.kernels, *self.strides, *self.dilations):
            control.observe(lambda _change: self.update(), names="value")
        self.preset.observe(lambda change: self.apply_preset(change["new"]), names="value")
        self.photo_choice.observe(lambda change: (self._load_photo(change["new"]), self.update()), names="value")
        self.widget = widgets.VBox([widgets.HBox([self.preset, self.photo_choice]),
                                    widgets.HBox([self.depth, self.log_scale, self.zoom]), *self.rows, self.label,
                                    self.figure.output])
        self.apply_preset(preset)

    def _load_photo(self, name: str) -> None:
        self.image = resize_longer_side(load_photo(name).tensor(), self.image_size)          # [3, H, W]

    def set_layers(self, layers: list[tuple[int, int, int]]) -> None:
        """Set the controls to ``(kernel, stride, dilation)`` per layer (at most ``MAX_LAYERS``); update once."""
        if not 1 <= len(layers) <= MAX_LAYERS:
            raise ValueError(f"layers must hold 1 to {MAX_LAYERS} (kernel, stride, dilation) tuples, got {len(layers)}")
        with batch_update(self):
            self.depth.value = len(layers)
            for i, (kernel, stride, dilation) in enumerate(layers):
                self.kernels[i].value, self.strides[i].value, self.dilations[i].value = kernel, stride, dilation

    def apply_preset(self, name: str) -> None:
        self.set_layers(PRESETS[name])

    def update(self) -> None:
        """Read the controls, compute the field by formula and by gradient, rewrite the label, redraw."""
        if self._holding:
            return
        depth = self.depth.value
        for i, row in enumerate(self.rows):
            row.layout.display = "flex" if i < depth else "none"
        self.layers = [(k.value, s.value, d.value * (k.value - 1) // 2, d.value)
                       for k, s, d in zip(self.kernels[:depth], self.strides[:depth], self.dilations[:depth])]
        self.field = receptive_field(self.layers)
        try:
            self.measured = empirical_receptive_field(self.layers, tuple(self.image.shape[-2:]))
        except ValueError as err:                   # the strides shrank the image below a kernel's span
            self.measured = None
            self.label.value = f"<b>R = {self.field.size[0]}</b>, but this stack does not fit the photo: {err}"
            self.figure.redraw(lambda fig: show_image(self.image, ax=fig.add_subplot(1, 2, 1), title="no output"))
            return
        sizes = " &rarr; ".join(str(f.size[0]) for f in self.field.layers)
        inside = self.measured.size == self.field.size
        self.label.value = (
            f"<b>R = {self.field.size[0]}</b> (after each layer: {sizes}) &nbsp; jump = {self.field.jump[0]} px "
            f"&nbsp; output {self.measured.output_size[0]} x {self.measured.output_size[1]} &nbsp; "
            f"measured: {self.measured.size[0]} x {self.measured.size[1]}"
            f"{'' if inside else ' (cut by the border)'}, {coverage(self.measured):.0%} of it reached")
        self.figure.redraw(self.draw)

    def draw(self, fig: Figure) -> tuple[Axes, Axes]:
        """The photo with the field of the middle output (left) and the measured gradient (right)."""
        left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        show_image(self.image, ax=left, title=f"R = {self.field.size[0]} on a {self.image.shape[-1]} px photo")
        draw_field(left, self.field, self.measured.output)
        show_gradient(right, self.measured, log=self.log_scale.value,
                      title=f"gradient of the middle output ({coverage(self.measured):.0%} of the field reached)")
        draw_field(right, self.field, self.measured.output, edgecolor="#42d4f4", linewidth=1.5, linestyle="--")
        height, width = self.image.shape[-2:]
        left.set_xlim(-0.5, width - 0.5)
        left.set_ylim(height - 0.5, -0.5)
        if self.zoom.value:                          # the field and a quarter of its size around it
            x1, y1, x2, y2 = self.field.box(*self.measured.output)
            margin = max(2.0, 0.25 * (x2 - x1))
            right.set_xlim(max(-0.5, x1 - margin), min(width - 0.5, x2 + margin))
            right.set_ylim(min(height - 0.5, y2 + margin), max(-0.5, y1 - margin))
        else:
            right.set_xlim(-0.5, width - 0.5)
            right.set_ylim(height - 0.5, -0.5)
        return left, right
