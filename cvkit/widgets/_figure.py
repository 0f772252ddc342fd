"""A matplotlib figure that lives in an ipywidgets Output and is redrawn on demand."""
from __future__ import annotations

from typing import Callable

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display
from matplotlib.figure import Figure


class FigureOutput:
    """Redraws a figure inside an ``ipywidgets.Output``: ``redraw(draw)`` calls ``draw(fig)`` on a fresh figure.

    The last figure stays available as ``.figure`` (tests inspect it); figures are closed after display
    so that a session with many redraws does not pile up open figures.
    """

    def __init__(self, figsize: tuple[float, float] = (8, 5)) -> None:
        self.output = widgets.Output()
        self.figsize = figsize
        self.figure: Figure | None = None

    def redraw(self, draw: Callable[[Figure], None]) -> Figure:
        fig = plt.figure(figsize=self.figsize)
        draw(fig)
        self.figure = fig
        with self.output:
            self.output.clear_output(wait=True)
            display(fig)
        plt.close(fig)
        return fig
