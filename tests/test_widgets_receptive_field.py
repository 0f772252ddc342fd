"""The receptive field explorer driven without a browser: its controls set the stack, the numbers follow the
formula and the measurement, and the square it draws frames the measured gradient."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from cvkit.widgets.receptive_field import MAX_LAYERS, PRESETS, ReceptiveFieldExplorer  # noqa: E402


def formula(layers):
    """R = 1 + sum (F - 1) D prod_{i<j} S_i, written out here for the test."""
    size, jump = 1, 1
    for kernel, stride, dilation in layers:
        size += (kernel - 1) * dilation * jump
        jump *= stride
    return size, jump


def measured_support(layers, size):
    """Gradient of the middle output of an all-ones F.conv2d chain, independent of cvkit."""
    x = torch.zeros(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    y = x
    for kernel, stride, dilation in layers:
        y = F.conv2d(y, torch.ones(1, 1, kernel, kernel, dtype=torch.float64), stride=stride,
                     padding=dilation * (kernel - 1) // 2, dilation=dilation)
    y[0, 0, y.shape[-2] // 2, y.shape[-1] // 2].backward()
    return x.grad[0, 0] != 0


def squares(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle) and not p.get_fill()]


@pytest.fixture
def explorer():
    e = ReceptiveFieldExplorer("astronaut", image_size=64)
    yield e
    plt.close("all")


def test_starts_on_the_course_example(explorer):
    assert isinstance(explorer.widget, widgets.VBox)
    assert explorer.depth.value == 4
    assert explorer.field.size == (31, 31) and explorer.measured.size == (31, 31)
    assert "R = 31" in explorer.label.value and "3 &rarr; 7 &rarr; 15 &rarr; 31" in explorer.label.value
    assert explorer.image.shape == (3, 64, 64)
    assert [row.layout.display for row in explorer.rows] == ["flex"] * 4 + ["none"] * (MAX_LAYERS - 4)


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_matches_formula_and_gradient(explorer, name):
    explorer.preset.value = name if explorer.preset.value != name else explorer.preset.value
    explorer.apply_preset(name)
    layers = PRESETS[name]
    size, jump = formula(layers)
    assert explorer.field.size == (size, size) and explorer.field.jump == (jump, jump)
    assert torch.equal(explorer.measured.support, measured_support(layers, 64))
    assert explorer.measured.size == (size, size)
    holes = "gridding" in name
    assert ("100% of it reached" in explorer.label.value) != holes


def test_each_control_changes_the_stack(explorer):
    explorer.set_layers([(3, 1, 1), (3, 1, 1)])
    explorer.dilations[1].value = 4                         # fires update()
    assert explorer.field.size == (1 + 2 + 8,) * 2
    explorer.kernels[0].value = 5
    assert explorer.field.size == (1 + 4 + 8,) * 2
    explorer.strides[0].value = 2                           # the second layer now steps 2 input pixels per tap
    assert explorer.field.size == (1 + 4 + 2 * 4 * 2,) * 2 and explorer.field.jump == (2, 2)
    assert torch.equal(explorer.measured.support, measured_support([(5, 2, 1), (3, 1, 4)], 64))
    explorer.dilations[2].value = 1                         # a hidden row keeps its values: set them...
    explorer.depth.value = 3                                # ...and it joins in
    assert explorer.layers[-1] == (3, 1, 1, 1) and explorer.rows[2].layout.display == "flex"
    assert explorer.field.size == (21 + 2 * 1 * 2,) * 2               # (F - 1) D times the jump 2


def test_the_square_frames_the_measured_gradient(explorer):
    explorer.apply_preset("strided: (3x3, 2x2 pool) x 3")
    left, right = explorer.figure.figure.axes[:2]
    r0, c0, r1, c1 = explorer.measured.bbox
    for ax in (left, right):
        (square,) = squares(ax)
        assert (square.get_x(), square.get_y()) == (c0 - 0.5, r0 - 0.5)        # edges of the first pixel...
        assert (square.get_width(), square.get_height()) == (c1 - c0 + 1, r1 - r0 + 1)   # ...R pixels wide
    assert right.images[0].get_array().shape == (64, 64)


def test_zoom_and_log_scale(explorer):
    explorer.zoom.value = False
    assert explorer.figure.figure.axes[1].get_xlim() == (-0.5, 63.5)
    explorer.zoom.value = True
    low, high = explorer.figure.figure.axes[1].get_xlim()
    assert -0.5 <= low and high <= 63.5 and high - low < 64
    explorer.log_scale.value = False
    assert type(explorer.figure.figure.axes[1].images[0].norm).__name__ == "Normalize"


def test_photo_choice_reloads_the_image(explorer):
    before = explorer.image.clone()
    explorer.photo_choice.value = "coffee"
    assert not torch.equal(before[:, :10, :10], explorer.image[:, :10, :10]) or before.shape != explorer.image.shape
    assert max(explorer.image.shape[-2:]) == 64


def test_a_stack_too_deep_for_the_photo_says_so(explorer):
    explorer.set_layers([(2, 3, 1)] * 6)
    assert explorer.measured is None and "does not fit the photo" in explorer.label.value
    explorer.apply_preset("four 3x3 layers")
    assert explorer.measured is not None and explorer.field.size == (9, 9)


def test_bad_arguments():
    with pytest.raises(ValueError, match="preset must be one of"):
        ReceptiveFieldExplorer(preset="nope")
    e = ReceptiveFieldExplorer(image_size=32)
    with pytest.raises(ValueError, match="layers must hold 1 to 6"):
        e.set_layers([])
    plt.close("all")
