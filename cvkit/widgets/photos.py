"""A first widget: browse the kit's photos and their hand-drawn boxes."""
from __future__ import annotations

import ipywidgets as widgets

from cvkit.datasets import Photo, load_photo, photo_names
from cvkit.viz import show_boxes
from cvkit.widgets._figure import FigureOutput


class PhotoBrowser:
    """Pick a photo from a dropdown, toggle its labels; the boxes are redrawn on every change.

    Attributes:
        photo: the photo shown now.
        widget: the controls and the figure, for ``display``.
    """

    def __init__(self, name: str = "astronaut") -> None:
        self.choice = widgets.Dropdown(options=photo_names(), value=name, description="photo")
        self.show_labels = widgets.Checkbox(value=True, description="labels")
        self.figure = FigureOutput(figsize=(6, 5))
        self.photo: Photo = load_photo(name)
        for control in (self.choice, self.show_labels):
            control.observe(lambda _change: self.update(), names="value")
        self.widget = widgets.VBox([widgets.HBox([self.choice, self.show_labels]), self.figure.output])
        self.update()

    def update(self) -> None:
        self.photo = load_photo(self.choice.value)
        labels = self.photo.labels if self.show_labels.value else None
        title = f"{self.photo.name}: {len(self.photo.labels)} boxes"
        self.figure.redraw(lambda fig: show_boxes(self.photo.image, self.photo.boxes, labels,
                                                  ax=fig.add_subplot(1, 1, 1), title=title))
