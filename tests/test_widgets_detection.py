"""The anchor explorer driven without a browser: its anchors are torchvision's, its labels torchvision's
Matcher on torchvision's IoU, and moving the controls moves the position, the anchors and the figure."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from torchvision.models.detection._utils import Matcher as TVMatcher  # noqa: E402
from torchvision.models.detection.anchor_utils import AnchorGenerator as TVAnchorGenerator  # noqa: E402
from torchvision.models.detection.image_list import ImageList as TVImageList  # noqa: E402

from cvkit.widgets.detection import AnchorExplorer  # noqa: E402

GT = torch.tensor([[20.0, 24.0, 52.0, 56.0], [70.0, 60.0, 86.0, 78.0], [30.0, 90.0, 75.0, 125.0]])


def tv_anchors(sizes, ratios, grid=16, image=128):
    generator = TVAnchorGenerator((tuple(sizes),), (tuple(ratios),))
    return generator(TVImageList(torch.zeros(1, 3, image, image), [(image, image)]),
                     [torch.zeros(1, 1, grid, grid)])[0]


def tv_labels(anchors, gt, high=0.7, low=0.3):
    matches = TVMatcher(high, low, True)(torchvision.ops.box_iou(gt, anchors))
    labels = (matches >= 0).long()
    labels[matches == TVMatcher.BETWEEN_THRESHOLDS] = -1
    return labels


@pytest.fixture()
def explorer():
    e = AnchorExplorer(torch.rand(3, 128, 128, generator=torch.Generator().manual_seed(0)), GT, stride=8)
    yield e
    plt.close("all")


def test_anchors_and_labels_are_torchvisions(explorer):
    assert torch.equal(explorer.anchors, tv_anchors((16, 32, 64), (0.5, 1.0, 2.0)))
    assert torch.equal(explorer.labels, tv_labels(explorer.anchors, GT))
    explorer.show(sizes=(16, 20, 24, 32, 40, 48), aspect_ratios=(1.0,))
    expected = tv_anchors((16, 20, 24, 32, 40, 48), (1.0,))
    assert torch.equal(explorer.anchors, expected)
    assert torch.equal(explorer.labels, tv_labels(expected, GT))
    explorer.high.value, explorer.low.value = 0.5, 0.2
    assert torch.equal(explorer.labels, tv_labels(expected, GT, 0.5, 0.2))
    best = torchvision.ops.box_iou(GT, expected).max(dim=1).values
    torch.testing.assert_close(explorer.best_iou_per_object, best)


def test_position_anchors_are_centred_on_the_position(explorer):
    explorer.show(row=5, col=9, sizes=(16, 32), aspect_ratios=(0.5, 1.0, 2.0))
    assert explorer.num_anchors == 6 and len(explorer.position_anchors) == 6
    centres = (explorer.position_anchors[:, :2] + explorer.position_anchors[:, 2:]) / 2
    assert torch.equal(centres, torch.tensor([[72.0, 40.0]]).expand(6, 2))          # (j * 8, i * 8)
    # an anchor of size 32 and ratio 1 at (72, 40): the hand-made box [56, 24, 88, 56]
    assert [56.0, 24.0, 88.0, 56.0] in explorer.position_anchors.tolist()
    iou = torchvision.ops.box_iou(GT, explorer.position_anchors).max(dim=0).values
    torch.testing.assert_close(explorer.position_ious, iou)


def test_an_exact_anchor_is_positive_and_a_far_one_negative(explorer):
    # the first object [20, 24, 52, 56] is a 32 x 32 square centred on (36, 40), not on the grid;
    # a square of side 32 at (40, 40) (row 5, column 5) overlaps it by 28 x 32: IoU 896 / 1152 = 0.78
    explorer.show(row=5, col=5, sizes=(32,), aspect_ratios=(1.0,))
    assert explorer.position_anchors.tolist() == [[24.0, 24.0, 56.0, 56.0]]
    assert explorer.position_ious.tolist() == pytest.approx([896 / 1152])
    assert explorer.position_labels.tolist() == [1]
    explorer.show(row=0, col=15)
    assert explorer.position_labels.tolist() == [0]


def test_controls_drive_label_and_figure(explorer):
    explorer.row.value = 3
    assert "position (3," in explorer.label.value
    assert f"{len(explorer.anchors)}" in explorer.label.value
    fig = explorer.figure.figure
    assert len(fig.axes) == 1
    assert "position (3," in fig.axes[0].get_title()
    # k anchors of the position + positives elsewhere + the objects are drawn as rectangles
    positives_elsewhere = int((explorer.labels == 1).sum()) - int((explorer.position_labels == 1).sum())
    assert len(fig.axes[0].patches) == explorer.num_anchors + positives_elsewhere + len(GT)


def test_an_image_without_objects_has_only_negatives():
    e = AnchorExplorer(torch.zeros(3, 64, 64), torch.zeros(0, 4), stride=8)
    assert e.labels.unique().tolist() == [0]
    assert e.best_iou_per_object.shape == (0,)
    assert "no objects" in e.label.value
    plt.close("all")


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="image must be"):
        AnchorExplorer(torch.zeros(128, 128), GT)
    with pytest.raises(ValueError, match="gt_boxes must be"):
        AnchorExplorer(torch.zeros(3, 128, 128), torch.zeros(3, 5))
    with pytest.raises(ValueError, match="stride must be"):
        AnchorExplorer(torch.zeros(3, 128, 128), GT, stride=7)
    with pytest.raises(ValueError, match="sizes must come from"):
        AnchorExplorer(torch.zeros(3, 128, 128), GT, sizes=(17,))
