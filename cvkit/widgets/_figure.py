"""A matplotlib figure shown inside a widget layout and redrawn on demand."""
from __future__ import annotations

import io
from contextlib import contextmanager
from typing import Callable, Iterator

import ipywidgets as widgets
import matplotlib.pyplot as plt
from matplotlib.figure import Figure


class FigureOutput:
    """Redraws a figure inside an ``ipywidgets.Image``: ``redraw(draw)`` calls ``draw(fig)`` on a fresh figure.

    The figure is rendered to PNG and shown as an image widget. (An ``ipywidgets.Output`` that captures
    ``display(fig)`` would also work in JupyterLab, but it intermittently stalls headless execution with
    nbclient, which ``cvkit run`` and the tests use.) The last figure stays available as ``.figure`` so
    tests can inspect what was drawn; figures are closed after rendering so none pile up.

    Attributes:
        output: the widget to place in a layout.
        figure: the last figure drawn.
    """

    def __init__(self, figsize: tuple[float, float] = (8, 5), dpi: int = 90) -> None:
        self.output = widgets.Image(format="png")
        self.figsize = figsize
        self.dpi = dpi
        self.figure: Figure | None = None

    def redraw(self, draw: Callable[[Figure], None]) -> Figure:
        fig = plt.figure(figsize=self.figsize, dpi=self.dpi)
        draw(fig)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", bbox_inches="tight")
        self.output.value = buffer.getvalue()
        self.figure = fig
        plt.close(fig)
        return fig


@contextmanager
def batch_update(explorer) -> Iterator[None]:
    """Change several controls of an explorer and redraw once at the end.

    Each control's observer calls ``explorer.update()``, which returns at once while
    ``explorer._holding`` is set; so the controls move without a redraw each, and one ``update()``
    follows (not after an exception, which propagates).
    """
    explorer._holding = True
    try:
        yield
    finally:
        explorer._holding = False
    explorer.update()
