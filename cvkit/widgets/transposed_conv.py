"""Transposed convolution, one input pixel at a time: watch the kernel stamps add up.

    out[s i - p + u, s j - p + v] += x[i, j] w[u, v]

Each input pixel ``x[i, j]`` stamps a copy of the kernel, scaled by its value, onto the output, the
stamps ``s`` pixels apart; where stamps overlap they add. The step slider places the first ``step``
stamps (input pixels in reading order): the running output is :func:`cvkit.upsampling.conv_transpose2d`
of the input with every later pixel set to zero, and the overlap map counts, for every output pixel,
how many stamps have covered it (the same operator, applied to ones). With kernel 3 and stride 2 the
counts alternate 1, 2, 1, 2 along each axis (1, 2 and 4 in 2-D): the uneven overlap behind checkerboard
artefacts (Odena et al., 2016). Kernel 4 with stride 2 overlaps evenly.
"""
from __future__ import annotations

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure
from torch import Tensor

from cvkit.upsampling import conv_transpose2d
from cvkit.viz.upsampling import outline_cells, show_grid
from cvkit.widgets._figure import FigureOutput

__all__ = ["TransposedConvScatter"]

DEFAULT_INPUT = ((1.0, 2.0, 0.0), (3.0, 1.0, 2.0), (0.0, 1.0, 1.0))
DEFAULT_KERNEL = ((1.0, 1.0, 1.0), (1.0, 2.0, 1.0), (1.0, 1.0, 1.0))


class TransposedConvScatter:
    """Step through a single-channel transposed convolution's scatter, stamp by stamp.

    Args:
        input: ``[H, W]`` values (default a 3 x 3 of small integers).
        kernel: ``[k, k]`` weights (default 3 x 3, 2 in the middle and 1 around it).
        stride: starting stride (1 to 4).
        padding: starting padding (cropped from each side of the output, 0 to k - 1).

    Attributes:
        widget: the controls, a label and the figure, for ``display``.
        step: ``IntSlider`` 0 .. H W, the number of stamps placed.
        stride, padding: ``IntSlider`` controls.
        current: ``(i, j)`` of the input pixel stamped last, or None before the first.
        output: ``Tensor[H_out, W_out]``, the sum of the stamps placed so far.
        counts: ``Tensor[H_out, W_out]``, how many of those stamps cover each output pixel.
        result: ``Tensor[H_out, W_out]``, the complete transposed convolution.
        coverage: ``Tensor[H_out, W_out]``, how many stamps cover each output pixel once all are placed.
        figure: the :class:`FigureOutput`; ``figure.figure`` is the last figure drawn.
    """

    def __init__(self, input: Tensor | None = None, kernel: Tensor | None = None, stride: int = 2,
                 padding: int = 0) -> None:
        self.input = torch.as_tensor(DEFAULT_INPUT if input is None else input, dtype=torch.float64)
        self.kernel = torch.as_tensor(DEFAULT_KERNEL if kernel is None else kernel, dtype=torch.float64)
        if self.input.dim() != 2 or self.input.numel() == 0:
            raise ValueError(f"input must be a non-empty [H, W] grid, got shape {list(self.input.shape)}")
        if self.kernel.dim() != 2 or self.kernel.shape[0] != self.kernel.shape[1] or self.kernel.numel() == 0:
            raise ValueError(f"kernel must be a square [k, k] grid, got shape {list(self.kernel.shape)}")
        size = self.kernel.shape[0]
        if not 1 <= stride <= 4:
            raise ValueError(f"stride must be between 1 and 4, got {stride}")
        if not 0 <= padding < size:
            raise ValueError(f"padding must be between 0 and {size - 1} (the kernel size - 1), got {padding}")

        height, width = self.input.shape
        self.step = widgets.IntSlider(min=0, max=height * width, value=1, description="stamps",
                                      continuous_update=False, layout=widgets.Layout(width="420px"))
        self.stride = widgets.IntSlider(min=1, max=4, value=stride, description="stride", continuous_update=False)
        self.padding = widgets.IntSlider(min=0, max=size - 1, value=padding, description="padding",
                                         continuous_update=False)
        self.label = widgets.HTML()
        self.figure = FigureOutput(figsize=(13, 3.9))
        self.current: tuple[int, int] | None = None
        self.output = self.counts = self.result = self.coverage = torch.zeros(0, 0)
        for control in (self.step, self.stride, self.padding):
            control.observe(lambda _change: self.update(), names="value")
        self.widget = widgets.VBox([widgets.HBox([self.step, self.stride, self.padding]), self.label,
                                    self.figure.output])
        self.update()

    def _scatter(self, values: Tensor, kernel: Tensor) -> Tensor:
        return conv_transpose2d(values[None, None], kernel[None, None], stride=self.stride.value,
                                padding=self.padding.value)[0, 0]

    def update(self) -> None:
        """Recompute the running output, the overlap counts and the label for the sliders' values; redraw."""
        height, width = self.input.shape
        placed = (torch.arange(height * width) < self.step.value).reshape(height, width).double()
        self.output = self._scatter(self.input * placed, self.kernel)              # [H_out, W_out]
        self.counts = self._scatter(placed, torch.ones_like(self.kernel)).round()  # stamps covering each pixel
        self.result = self._scatter(self.input, self.kernel)
        self.coverage = self._scatter(torch.ones_like(self.input), torch.ones_like(self.kernel)).round()
        self.current = divmod(self.step.value - 1, width) if self.step.value else None
        h_out, w_out = self.result.shape
        s, p, k = self.stride.value, self.padding.value, self.kernel.shape[0]
        text = (f"input {height} x {width}, kernel {k} x {k}, stride {s}, padding {p}: output "
                f"({height} - 1) &middot; {s} - 2 &middot; {p} + {k} = {h_out} rows, {w_out} columns. ")
        if self.current is None:
            text += "No stamp placed yet."
        else:
            i, j = self.current
            text += (f"Stamp {self.step.value}: x[{i}, {j}] = {self.input[i, j]:g} times the kernel, its top-left "
                     f"corner at output ({s * i - p}, {s * j - p}).")
        text += (f" With every stamp placed, output pixels are covered {int(self.coverage.min())} to "
                 f"{int(self.coverage.max())} times.")
        self.label.value = text
        self.figure.redraw(self.draw)

    def draw(self, fig: Figure) -> None:
        """Input (the stamped pixel outlined), kernel, running output (the last stamp outlined), overlap counts."""
        axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 2, 2]})
        s, p, k = self.stride.value, self.padding.value, self.kernel.shape[0]
        show_grid(axes[0], self.input, "input x", cmap="Blues")
        show_grid(axes[1], self.kernel, "kernel w", cmap="Oranges")
        low = float(torch.minimum(self.result.min(), torch.zeros(())))
        high = float(torch.maximum(self.result.max(), torch.ones(())))
        show_grid(axes[2], self.output, f"running output ({self.step.value} stamps)", cmap="viridis",
                  vmin=low, vmax=high, fontsize=7)
        show_grid(axes[3], self.counts, "stamps covering each output pixel", cmap="magma",
                  vmin=0, vmax=max(1.0, float(self.coverage.max())), fontsize=7)
        if self.current is not None:
            i, j = self.current
            outline_cells(axes[0], i, j, 1, 1)
            for ax in axes[2:]:
                outline_cells(ax, s * i - p, s * j - p, k, k)
                ax.set_xlim(-0.5, self.result.shape[1] - 0.5)
                ax.set_ylim(self.result.shape[0] - 0.5, -0.5)
