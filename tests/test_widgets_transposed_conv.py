"""The transposed-convolution scatter explorer driven without a browser."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from cvkit.widgets.transposed_conv import TransposedConvScatter  # noqa: E402

X = torch.tensor([[1.0, 2.0, 0.0], [3.0, 1.0, 2.0], [0.0, 1.0, 1.0]], dtype=torch.float64)
W = torch.tensor([[1.0, 1.0, 1.0], [1.0, 2.0, 1.0], [1.0, 1.0, 1.0]], dtype=torch.float64)


@pytest.fixture
def explorer():
    e = TransposedConvScatter(X, W, stride=2, padding=0)
    yield e
    plt.close("all")


def test_the_first_stamp_is_the_kernel_times_the_first_pixel(explorer):
    assert explorer.step.value == 1 and explorer.current == (0, 0)
    expected = torch.zeros(7, 7, dtype=torch.float64)
    expected[:3, :3] = X[0, 0] * W
    assert torch.equal(explorer.output, expected)
    assert isinstance(explorer.widget, widgets.VBox)
    assert len(explorer.figure.figure.axes) == 4


def test_each_step_adds_one_stamp_at_stride_offsets(explorer):
    previous = explorer.output.clone()
    for step in range(2, 10):
        explorer.step.value = step
        i, j = divmod(step - 1, 3)
        stamp = torch.zeros(7, 7, dtype=torch.float64)
        stamp[2 * i:2 * i + 3, 2 * j:2 * j + 3] = X[i, j] * W                      # rows 2i .. 2i + 2
        assert explorer.current == (i, j)
        assert torch.allclose(explorer.output - previous, stamp)
        previous = explorer.output.clone()


def test_all_stamps_give_torchs_transposed_convolution(explorer):
    for stride, padding in ((2, 0), (1, 0), (2, 1), (3, 2)):
        explorer.stride.value, explorer.padding.value = stride, padding
        explorer.step.value = 9
        expected = F.conv_transpose2d(X[None, None], W[None, None], stride=stride, padding=padding)[0, 0]
        assert torch.allclose(explorer.output, expected) and torch.allclose(explorer.result, expected)
        assert f"{expected.shape[0]} rows" in explorer.label.value


def test_overlap_counts_alternate_for_kernel_3_stride_2(explorer):
    explorer.step.value = 9
    per_axis = torch.tensor([1.0, 1.0, 2.0, 1.0, 2.0, 1.0, 1.0], dtype=torch.float64)  # stamps at 0-2, 2-4, 4-6
    assert torch.equal(explorer.counts, per_axis[:, None] * per_axis[None, :])
    assert torch.equal(explorer.coverage, explorer.counts)
    assert "covered 1 to 4 times" in explorer.label.value
    explorer.step.value = 0
    assert explorer.current is None and not explorer.counts.any() and not explorer.output.any()
    assert "No stamp placed yet" in explorer.label.value


def test_kernel_4_stride_2_overlaps_evenly_inside():
    e = TransposedConvScatter(torch.ones(4, 4), torch.ones(4, 4), stride=2, padding=1)
    e.step.value = 16
    assert torch.equal(e.counts[1:-1, 1:-1], torch.full((6, 6), 4.0, dtype=torch.float64))
    plt.close("all")


def test_the_stamped_cells_are_outlined(explorer):
    explorer.step.value = 5                                                         # pixel (1, 1)
    output_ax = explorer.figure.figure.axes[2]
    outlines = [p for p in output_ax.patches if isinstance(p, Rectangle) and not p.get_fill()]
    assert [(r.get_x(), r.get_y(), r.get_width(), r.get_height()) for r in outlines] == [(1.5, 1.5, 3, 3)]


@pytest.mark.parametrize("kwargs, match", [
    (dict(input=torch.zeros(3)), "input must be a non-empty"),
    (dict(kernel=torch.zeros(2, 3)), "kernel must be a square"),
    (dict(stride=0), "stride must be between 1 and 4"),
    (dict(padding=3), "padding must be between 0 and 2"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TransposedConvScatter(**kwargs)
