"""Grouping explorer: step through selective search's hierarchical grouping (Uijlings et al. 2013,
Algorithm 1) on a photo, one merge at a time.

The hierarchy comes from :func:`cvkit.selective_search.strategy_hierarchy`, so the explorer shows what the
package computes: at step t the regions are the starting regions joined by the first t merges, and the
region made by merge t is outlined with its box, the proposal it adds.
"""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from cvkit.datasets import Photo, load_photo
from cvkit.selective_search import COLOUR_SPACES, SIMILARITIES, strategy_hierarchy
from cvkit.viz.selective_search import draw_grouping_step
from cvkit.widgets._figure import FigureOutput, batch_update

__all__ = ["GroupingExplorer"]


class GroupingExplorer:
    """A photo, its starting regions, and a slider over the merges of the hierarchical grouping.

    Args:
        photo: a photo name from :func:`cvkit.datasets.photo_names` or a loaded :class:`Photo`.
        colour_space: where the dropdown starts (one of :data:`cvkit.selective_search.COLOUR_SPACES`).
        k: where the k slider starts (graph segmentation threshold; min_size = k).
        similarities: where the similarity dropdown starts (a key of ``SIMILARITIES``).
        downscale: take every ``downscale``-th pixel first, so each setting recomputes quickly.

    Attributes:
        widget: controls, label and figure, for ``display``.
        colour_space, similarities: ``Dropdown``; k: ``IntSlider``; step: ``IntSlider`` over the merges.
        labels: ``[H, W]`` the starting regions; hierarchy: the :class:`Hierarchy` for the current settings.
        regions: ``[H, W]`` the region id (in the hierarchy) of every pixel after ``step`` merges.
        figure: the :class:`FigureOutput`; ``figure.figure`` is the last figure drawn.
    """

    def __init__(self, photo: str | Photo = "coffee", colour_space: str = "hsv", k: int = 100,
                 similarities: str = "CTSF", downscale: int = 2) -> None:
        if colour_space not in COLOUR_SPACES:
            raise ValueError(f"colour_space must be one of {', '.join(COLOUR_SPACES)}, got {colour_space!r}")
        if similarities not in SIMILARITIES:
            raise ValueError(f"similarities must be one of {', '.join(SIMILARITIES)}, got {similarities!r}")
        if not isinstance(downscale, int) or downscale < 1:
            raise ValueError(f"downscale must be a positive int, got {downscale!r}")
        self.photo = load_photo(photo) if isinstance(photo, str) else photo
        self.image = np.ascontiguousarray(self.photo.image[::downscale, ::downscale])
        self.colour_space = widgets.Dropdown(options=list(COLOUR_SPACES), value=colour_space, description="colours")
        self.similarities = widgets.Dropdown(options=list(SIMILARITIES), value=similarities, description="similarity")
        self.k = widgets.IntSlider(value=k, min=10, max=500, step=10, description="k", continuous_update=False)
        self.step = widgets.IntSlider(value=0, min=0, max=0, description="merge", continuous_update=False,
                                      layout=widgets.Layout(width="500px"))
        self.label = widgets.HTML()
        self.figure = FigureOutput(figsize=(7, 5.5))
        self._holding = False
        self._recompute()
        for control in (self.colour_space, self.similarities, self.k):
            control.observe(lambda _change: self._recompute(), names="value")
        self.step.observe(lambda _change: self.update(), names="value")
        self.widget = widgets.VBox([widgets.HBox([self.colour_space, self.similarities, self.k]), self.step,
                                    self.label, self.figure.output])

    def _recompute(self) -> None:
        """Segment and group for the current settings; keep the same fraction of the merges done."""
        fraction = self.step.value / self.step.max if self.step.max else 0.0
        self.labels, self.hierarchy = strategy_hierarchy(self.image, self.colour_space.value, self.k.value,
                                                         self.similarities.value)
        with batch_update(self):
            self.step.max = len(self.hierarchy)
            self.step.value = int(round(fraction * self.step.max))

    def update(self) -> None:
        """Read the step slider, set ``regions``, rewrite the label and redraw."""
        if self._holding:
            return
        t, h = self.step.value, self.hierarchy
        self.regions = h.region_of(t)[self.labels]
        text = (f"<b>{h.num_initial}</b> starting regions ({self.colour_space.value}, k = {self.k.value}); "
                f"after merge {t} of {len(h)}: {h.num_initial - t} regions, {h.num_initial + t} proposals so far")
        if t > 0:
            i, j = h.merges[t - 1]
            text += f"<br>merge {t} joins regions {i} and {j} (similarity {h.similarities[t - 1]:.3f})"
        self.label.value = text
        self.figure.redraw(lambda fig: draw_grouping_step(fig.add_subplot(1, 1, 1), self.image, self.labels, h, t))
