"""The IoU explorer driven without a browser: move its sliders, and its numbers, label and figure follow."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from cvkit.datasets import load_photo, photo_names  # noqa: E402
from cvkit.widgets.iou import IoUExplorer  # noqa: E402

YELLOW = matplotlib.colors.to_rgba("#ffe119")[:3]   # the fill of the drawn intersection


def implied(x, y, w, h) -> torch.Tensor:
    """The xyxy box four sliders (top-left corner x, y and size w, h) describe."""
    return torch.tensor([[x.value, y.value, x.value + w.value, y.value + h.value]], dtype=torch.float32)


def boxes_from_sliders(explorer: IoUExplorer) -> tuple[torch.Tensor, torch.Tensor]:
    return (implied(explorer.a_x, explorer.a_y, explorer.a_w, explorer.a_h),
            implied(explorer.b_x, explorer.b_y, explorer.b_w, explorer.b_h))


def intersection_patches(fig) -> list[Rectangle]:
    ax = fig.axes[0]
    return [p for p in ax.patches if isinstance(p, Rectangle) and p.get_fill()
            and tuple(round(c, 3) for c in p.get_facecolor()[:3]) == tuple(round(c, 3) for c in YELLOW)]


@pytest.fixture
def explorer():
    e = IoUExplorer("astronaut")
    yield e
    plt.close("all")


def test_starts_on_a_photo_box_with_a_shifted_prediction(explorer):
    photo = load_photo("astronaut")
    a, b = boxes_from_sliders(explorer)
    assert torch.equal(a[0], photo.boxes[explorer.object.value])
    assert torch.equal(explorer.box_a, a[0]) and torch.equal(explorer.box_b, b[0])
    assert 0 < explorer.iou < 1                                     # B overlaps A, but not exactly
    assert isinstance(explorer.widget, widgets.VBox)
    assert explorer.figure.figure is not None


@pytest.mark.parametrize("b_slider_values, description", [
    ((172, 60, 110, 122), "B exactly on A"),
    ((190, 70, 60, 60), "B inside A"),
    ((200, 100, 150, 150), "B overlapping A"),
    ((282, 60, 50, 122), "B touching A's right edge"),
    ((400, 300, 80, 90), "B apart from A along both axes"),
    ((0, 0, 512, 512), "B the whole photo"),
])
def test_sliders_drive_iou_giou_and_the_label(explorer, b_slider_values, description):
    explorer.set_boxes(box_a=[172, 60, 282, 182])
    for slider, value in zip((explorer.b_x, explorer.b_y, explorer.b_w, explorer.b_h), b_slider_values):
        slider.value = value                                        # each change fires update() via observe
    a, b = boxes_from_sliders(explorer)
    expected_iou = float(torchvision.ops.box_iou(a, b)[0, 0])
    expected_giou = float(torchvision.ops.generalized_box_iou(a, b)[0, 0])
    assert explorer.iou == pytest.approx(expected_iou, abs=1e-6), description
    assert explorer.giou == pytest.approx(expected_giou, abs=1e-6), description
    assert f"IoU = {expected_iou:.3f}" in explorer.label.value
    assert f"GIoU = {expected_giou:.3f}" in explorer.label.value
    assert ("a true positive" in explorer.label.value and "not a true positive" not in explorer.label.value) \
        == (expected_iou >= 0.5)
    area_a = float(torchvision.ops.box_area(a)[0])
    area_b = float(torchvision.ops.box_area(b)[0])
    assert explorer.union == pytest.approx(area_a + area_b - explorer.intersection)
    assert explorer.intersection == pytest.approx(expected_iou * explorer.union, abs=1e-2)
    title = explorer.figure.figure.axes[0].get_title()
    assert f"IoU = {expected_iou:.3f}" in title


def test_each_slider_of_either_box_triggers_an_update(explorer):
    for slider in (explorer.a_x, explorer.a_y, explorer.a_w, explorer.a_h,
                   explorer.b_x, explorer.b_y, explorer.b_w, explorer.b_h):
        before = explorer.figure.figure
        slider.value = slider.value + 3 if slider.value + 3 <= slider.max else slider.value - 3
        a, b = boxes_from_sliders(explorer)
        assert explorer.figure.figure is not before                # a new figure was drawn
        assert explorer.iou == pytest.approx(float(torchvision.ops.box_iou(a, b)[0, 0]), abs=1e-6)


def test_update_called_directly_agrees_with_the_sliders(explorer):
    explorer._holding = True                                        # move sliders without callbacks...
    explorer.b_x.value, explorer.b_w.value = 150, 200
    explorer._holding = False
    explorer.update()                                               # ...then update by hand
    a, b = boxes_from_sliders(explorer)
    assert explorer.iou == pytest.approx(float(torchvision.ops.box_iou(a, b)[0, 0]), abs=1e-6)


def test_the_figure_shows_the_intersection_only_when_there_is_one(explorer):
    explorer.set_boxes(box_a=[100, 100, 200, 200], box_b=[150, 150, 250, 250])
    fig = explorer.figure.figure
    assert len(fig.axes) == 1 and fig.axes[0].images                # the photo is drawn
    (patch,) = intersection_patches(fig)
    assert (patch.get_x(), patch.get_y(), patch.get_width(), patch.get_height()) == (150, 150, 50, 50)
    explorer.set_boxes(box_b=[300, 300, 350, 350])
    assert intersection_patches(explorer.figure.figure) == []


def test_enclosing_box_is_drawn_when_ticked(explorer):
    def dashed(fig):
        return [p for p in fig.axes[0].patches if isinstance(p, Rectangle) and p.get_linestyle() == "--"]

    explorer.set_boxes(box_a=[100, 100, 200, 200], box_b=[300, 250, 350, 300])
    explorer.show_enclosing.value = True
    (c,) = dashed(explorer.figure.figure)
    assert (c.get_x(), c.get_y(), c.get_width(), c.get_height()) == (100, 100, 250, 200)
    assert explorer.enclosing_area == 250 * 200
    explorer.show_enclosing.value = False
    assert dashed(explorer.figure.figure) == []


def test_choosing_an_object_puts_box_a_on_it(explorer):
    photo = load_photo("astronaut")
    explorer.object.value = 2
    assert torch.equal(explorer.box_a, photo.boxes[2])
    a, b = boxes_from_sliders(explorer)
    assert explorer.iou == pytest.approx(float(torchvision.ops.box_iou(a, b)[0, 0]), abs=1e-6)


def test_set_boxes_rounds_and_keeps_boxes_inside_the_sliders(explorer):
    explorer.set_boxes(box_b=[10.4, 20.6, 60.4, 80.6])
    assert explorer.box_b.tolist() == [10, 21, 60, 81]
    explorer.set_boxes(box_b=[-50, -50, 30, 30])                    # x, y clipped to 0; w, h kept
    assert explorer.box_b.tolist() == [0, 0, 80, 80]


def test_draw_on_other_axes_for_a_static_picture(explorer):
    fig, ax = plt.subplots()
    assert explorer.draw(ax) is ax
    assert f"IoU = {explorer.iou:.3f}" in ax.get_title()
    assert len([p for p in ax.patches if isinstance(p, Rectangle)]) >= 4   # A, B (fill and outline)


@pytest.mark.parametrize("name", photo_names())
def test_every_photo_works(name):
    e = IoUExplorer(name)
    a, b = boxes_from_sliders(e)
    assert e.iou == pytest.approx(float(torchvision.ops.box_iou(a, b)[0, 0]), abs=1e-6)
    plt.close("all")


def test_bad_object_index_is_a_clear_error():
    with pytest.raises(ValueError, match="obj must index"):
        IoUExplorer("coffee", obj=10)
