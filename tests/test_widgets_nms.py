"""The NMS explorer driven without a browser: its sliders set the threshold, the method and the iteration,
and its state (``kept``, ``removed``, ``pending``) and figure follow torchvision's NMS and cvkit's Soft-NMS."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

import cvkit  # noqa: E402
from cvkit.datasets import load_photo, noisy_detections, photo_names  # noqa: E402
from cvkit.widgets.nms import NMSExplorer, nms_state, nms_steps, soft_nms_steps  # noqa: E402

GREEN = matplotlib.colors.to_rgba("#3cb44b")[:3]     # the outline of a kept box


def detections(name: str = "astronaut", seed: int = 0):
    photo = load_photo(name)
    boxes, scores, _ = noisy_detections(photo.boxes, photo.size, per_object=8, false_positives=5, seed=seed)
    return photo, boxes, scores


def greedy_by_hand(boxes: torch.Tensor, scores: torch.Tensor, t: float, iterations: int):
    """The first ``iterations`` of greedy NMS written out, for the partial states: (kept, suppressed)."""
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    iou = torchvision.ops.box_iou(boxes, boxes)
    kept, suppressed = [], set()
    for i in order:
        if len(kept) == iterations:
            break
        if i in suppressed:
            continue
        kept.append(i)
        suppressed |= {j for j in order if j not in kept and j not in suppressed and float(iou[i, j]) > t}
    return kept, suppressed


def kept_rectangles(fig) -> list[tuple[float, float, float, float]]:
    ax = fig.axes[0]
    return [(p.get_x(), p.get_y(), p.get_x() + p.get_width(), p.get_y() + p.get_height()) for p in ax.patches
            if isinstance(p, Rectangle) and tuple(round(c, 3) for c in p.get_edgecolor()[:3])
            == tuple(round(c, 3) for c in GREEN)]


@pytest.fixture
def explorer():
    photo, boxes, scores = detections()
    e = NMSExplorer(photo, boxes, scores)
    yield e
    plt.close("all")


def test_starts_on_the_full_hard_nms_result(explorer):
    _, boxes, scores = detections()
    assert isinstance(explorer.widget, widgets.VBox)
    assert explorer.method.value == "hard" and explorer.step.value == explorer.step.max == len(explorer.steps)
    assert torch.equal(explorer.kept, torchvision.ops.nms(boxes, scores, 0.5))
    assert len(explorer.pending) == 0
    assert sorted(explorer.kept.tolist() + explorer.removed.tolist()) == list(range(len(scores)))
    assert explorer.figure.figure is not None and explorer.figure.figure.axes[0].images


@pytest.mark.parametrize("threshold", [0.0, 0.1, 0.3, 0.45, 0.5, 0.7, 0.9, 1.0])
def test_threshold_slider_gives_torchvision_nms(explorer, threshold):
    _, boxes, scores = detections()
    explorer.threshold.value = threshold                          # fires the observer, as a drag would
    expected = torchvision.ops.nms(boxes, scores, threshold)
    assert torch.equal(explorer.kept, expected), threshold
    assert explorer.step.max == len(expected) and explorer.step.value == explorer.step.max
    assert torch.equal(explorer.kept_scores, scores[expected])
    assert f"{len(expected)} kept" in explorer.figure.figure.axes[0].get_title()
    drawn = sorted(kept_rectangles(explorer.figure.figure))
    assert drawn == sorted(tuple(b) for b in boxes[expected].double().tolist())   # the kept boxes are drawn green


@pytest.mark.parametrize("iteration", [0, 1, 2, 3, 5])
def test_step_slider_shows_the_partial_state(explorer, iteration):
    _, boxes, scores = detections()
    explorer.threshold.value = 0.3
    explorer.step.value = iteration
    kept, suppressed = greedy_by_hand(boxes, scores, 0.3, iteration)
    assert explorer.kept.tolist() == kept
    assert set(explorer.removed.tolist()) == suppressed
    assert set(explorer.pending.tolist()) == set(range(len(scores))) - set(kept) - suppressed
    assert len(explorer.pending) > 0
    assert f"after {iteration} of {explorer.step.max} iterations" in explorer.figure.figure.axes[0].get_title()
    if iteration:
        last = explorer.steps[iteration - 1]
        assert last.selected == kept[-1]
        ious = torchvision.ops.box_iou(boxes[last.selected][None], boxes[last.removed])[0]
        assert torch.allclose(torch.tensor(last.ious, dtype=torch.float64), ious.double()) and (ious > 0.3).all()
        assert f"iteration {iteration} keeps box {kept[-1]}" in explorer.label.value


def test_a_threshold_change_in_the_middle_keeps_the_iteration(explorer):
    explorer.step.value = 2
    explorer.threshold.value = 0.7
    assert explorer.step.value == 2 and len(explorer.kept) == 2
    explorer.step.value = explorer.step.max
    explorer.threshold.value = 0.3                               # at the end: stays at the (new) end
    assert explorer.step.value == explorer.step.max == len(explorer.kept)


def test_the_step_slider_reaches_the_result(explorer):
    _, boxes, scores = detections()
    for k in range(explorer.step.max + 1):
        explorer.step.value = k
        assert torch.equal(explorer.kept, torchvision.ops.nms(boxes, scores, 0.5)[:k])


@pytest.mark.parametrize("method, threshold, sigma", [
    ("gaussian", 0.5, 0.5), ("gaussian", 0.5, 0.1), ("gaussian", 0.3, 1.5),
    ("linear", 0.3, 0.5), ("linear", 0.6, 0.5),
])
def test_soft_modes_give_cvkit_soft_nms(explorer, method, threshold, sigma):
    _, boxes, scores = detections()
    explorer.score_threshold.value = 0.1
    explorer.sigma.value = sigma
    explorer.threshold.value = threshold
    explorer.method.value = method
    keep, kept_scores = cvkit.soft_nms(boxes, scores, threshold, sigma, 0.1, method)
    assert explorer.step.value == explorer.step.max == len(keep)
    assert torch.equal(explorer.kept, keep)
    assert torch.allclose(explorer.kept_scores, kept_scores, atol=1e-6)
    assert explorer.threshold.disabled == (method == "gaussian") and explorer.sigma.disabled == (method != "gaussian")
    assert "Soft-NMS" in explorer.figure.figure.axes[0].get_title()
    explorer.step.value = 2                                       # partially: the first two selections
    assert torch.equal(explorer.kept, keep[:2])


def test_soft_steps_decay_the_scores_by_the_paper_rules():
    _, boxes, scores = detections("coffee")
    steps = soft_nms_steps(boxes, scores, 0.3, 0.5, 0.0, "gaussian")
    iou = torchvision.ops.box_iou(boxes, boxes)
    first = steps[0].selected
    assert first == int(torch.argmax(scores))
    others = torch.tensor([i for i in range(len(scores)) if i != first])
    expected = scores[others] * torch.exp(-iou[first, others] ** 2 / 0.5)       # Bodla et al., eq. 3
    assert torch.allclose(steps[0].scores[others], expected, atol=1e-6)
    linear = soft_nms_steps(boxes, scores, 0.3, 0.5, 0.0, "linear")
    lin_expected = torch.where(iou[first, others] >= 0.3, scores[others] * (1 - iou[first, others]), scores[others])
    assert torch.allclose(linear[0].scores[others], lin_expected, atol=1e-6)      # eq. 2


def test_score_threshold_drops_low_scores_before_hard_nms(explorer):
    _, boxes, scores = detections()
    explorer.score_threshold.value = 0.5
    high = torch.nonzero(scores >= 0.5).flatten()
    assert torch.equal(explorer.kept, high[torchvision.ops.nms(boxes[high], scores[high], 0.5)])
    assert set(torch.nonzero(scores < 0.5).flatten().tolist()) <= set(explorer.removed.tolist())


def test_nms_steps_cover_every_box_once():
    _, boxes, scores = detections("rocket", seed=3)
    for t in (0.2, 0.5, 0.8):
        steps = nms_steps(boxes, scores, t)
        seen = [s.selected for s in steps] + [j for s in steps for j in s.removed]
        assert sorted(seen) == list(range(len(scores)))
        assert [s.selected for s in steps] == torchvision.ops.nms(boxes, scores, t).tolist()


def test_iou_equal_to_the_threshold_is_kept():
    boxes = torch.tensor([[0.0, 0.0, 30.0, 10.0], [10.0, 0.0, 40.0, 10.0]])    # IoU 200 / 400 = 0.5 exactly
    scores = torch.tensor([0.9, 0.8])
    assert [s.selected for s in nms_steps(boxes, scores, 0.5)] == [0, 1]
    assert [s.selected for s in nms_steps(boxes, scores, 0.49)] == [0]


def test_state_bounds_and_empty_input():
    boxes, scores = torch.zeros(0, 4), torch.zeros(0)
    assert nms_steps(boxes, scores, 0.5) == []
    state = nms_state([], scores, 0)
    assert state.kept.numel() == 0 and state.pending.numel() == 0
    with pytest.raises(ValueError, match="iteration must be between 0 and 0"):
        nms_state([], scores, 1)


def test_draw_on_other_axes_for_a_static_picture(explorer):
    fig, ax = plt.subplots()
    explorer.threshold.value = 0.7
    assert explorer.draw(ax) is ax
    assert "IoU > 0.70" in ax.get_title()
    assert len(kept_rectangles(fig)) == len(explorer.kept)


@pytest.mark.parametrize("name", photo_names())
def test_every_photo_works(name):
    photo, boxes, scores = detections(name)
    e = NMSExplorer(name, boxes, scores, iou_threshold=0.3, method="linear")
    assert torch.equal(e.kept, cvkit.soft_nms(boxes, scores, 0.3, 0.5, 0.0, "linear")[0])
    plt.close("all")


def test_bad_arguments_are_clear_errors():
    photo, boxes, scores = detections()
    with pytest.raises(ValueError, match="method must be one of"):
        NMSExplorer(photo, boxes, scores, method="soft")
    with pytest.raises(ValueError, match="scores must be a Tensor"):
        NMSExplorer(photo, boxes, scores[:-1])
