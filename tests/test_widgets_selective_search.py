"""The grouping explorer driven without a browser: its slider steps through the hierarchy that
strategy_hierarchy computes, and the regions it shows are the starting regions joined by those merges."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from cvkit.datasets import load_photo  # noqa: E402
from cvkit.selective_search import felzenszwalb, convert_colour  # noqa: E402
from cvkit.widgets.selective_search import GroupingExplorer  # noqa: E402

YELLOW = matplotlib.colors.to_rgba("#ffe119")[:3]


@pytest.fixture(scope="module")
def explorer():
    e = GroupingExplorer("chelsea", k=150, downscale=3)
    yield e
    plt.close("all")


def test_starts_on_the_starting_regions(explorer):
    assert isinstance(explorer.widget, widgets.VBox)
    expected = felzenszwalb(convert_colour(explorer.image, "hsv"), 150, 0.8, 150)
    assert np.array_equal(explorer.labels, expected)
    assert explorer.step.value == 0 and explorer.step.max == expected.max()      # n - 1 merges
    assert np.array_equal(explorer.regions, expected)
    assert explorer.figure.figure.axes[0].images


def test_step_slider_joins_the_merged_regions(explorer):
    n = explorer.hierarchy.num_initial
    for t in (1, 5, n // 2, n - 1):
        explorer.step.value = t                                                   # fires the observer
        assert len(np.unique(explorer.regions)) == n - t
        i, j = explorer.hierarchy.merges[t - 1]
        new_region = explorer.regions == n + t - 1
        assert new_region.any()
        rows, cols = np.nonzero(new_region)                                       # the yellow box is its box
        box = (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
        yellow = [(p.get_x(), p.get_y(), p.get_x() + p.get_width(), p.get_y() + p.get_height())
                  for p in explorer.figure.figure.axes[0].patches if isinstance(p, Rectangle)
                  and tuple(round(c, 3) for c in p.get_edgecolor()[:3]) == tuple(round(c, 3) for c in YELLOW)]
        assert yellow == [tuple(float(v) for v in box)]
        assert f"merge {t} joins regions {i} and {j}" in explorer.label.value
    assert (explorer.regions == 2 * n - 2).all()                                  # the whole image at the end


def test_changing_k_recomputes(explorer):
    before = explorer.hierarchy.num_initial
    explorer.k.value = 60
    assert explorer.hierarchy.num_initial > before
    assert explorer.step.max == explorer.hierarchy.num_initial - 1
    explorer.similarities.value = "F"
    assert len(explorer.hierarchy) == explorer.step.max


def test_bad_arguments():
    with pytest.raises(ValueError, match="colour_space"):
        GroupingExplorer("coffee", colour_space="xyz")
    with pytest.raises(ValueError, match="similarities"):
        GroupingExplorer("coffee", similarities="Q")

