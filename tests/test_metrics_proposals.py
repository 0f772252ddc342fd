"""proposal_recall and mabo: hand-computed cases, per-class averaging, several images, bad input;
the best overlaps come from torchvision's box_iou in the cross-check."""
from __future__ import annotations

import pytest
import torch
from torchvision.ops import box_iou

from cvkit.metrics import mabo, proposal_recall

GT = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0], [0.0, 20.0, 4.0, 24.0]])
PROPOSALS = torch.tensor([[0.0, 0.0, 10.0, 5.0],       # IoU 0.5 with gt 0
                          [20.0, 20.0, 30.0, 30.0],     # IoU 1 with gt 1
                          [0.0, 0.0, 10.0, 8.0],        # IoU 0.8 with gt 0
                          [50.0, 50.0, 60.0, 60.0]])    # nothing


def test_recall_by_hand():
    assert proposal_recall(PROPOSALS, GT, 0.5) == pytest.approx(2 / 3)
    assert proposal_recall(PROPOSALS, GT, 0.9) == pytest.approx(1 / 3)
    assert proposal_recall(PROPOSALS[:1], GT, 0.5) == pytest.approx(1 / 3)     # IoU exactly 0.5 counts
    assert proposal_recall(PROPOSALS[:1], GT, 0.51) == 0.0
    assert proposal_recall(torch.zeros(0, 4), GT, 0.5) == 0.0


def test_mabo_by_hand():
    # best overlaps 0.8, 1, 0 -> ABO over one class 0.6
    assert mabo(PROPOSALS, GT) == pytest.approx(0.6)
    # classes: {0, 2} "a" (0.8, 0) -> 0.4, {1} "b" -> 1; MABO averages the classes, not the boxes
    assert mabo(PROPOSALS, GT, ["a", "b", "a"]) == pytest.approx(0.7)
    assert mabo(PROPOSALS, GT, torch.tensor([1, 2, 1])) == pytest.approx(0.7)


def test_several_images_match_torchvision():
    g = torch.Generator().manual_seed(0)

    def boxes(n):
        xy = torch.rand(n, 2, generator=g) * 80
        return torch.cat((xy, xy + 1 + torch.rand(n, 2, generator=g) * 40), 1)
    proposals, gts, labels = [boxes(30), boxes(5)], [boxes(4), boxes(3)], [[0, 1, 0, 2], [2, 2, 1]]
    best = torch.cat([box_iou(gt, p).max(dim=1).values for p, gt in zip(proposals, gts)]).double()
    for t in (0.3, 0.5, 0.7):
        assert proposal_recall(proposals, gts, t) == pytest.approx(float((best >= t).double().mean()))
    flat = [c for image in labels for c in image]
    per_class = [best[[i for i, c in enumerate(flat) if c == k]].mean() for k in (0, 1, 2)]
    assert mabo(proposals, gts, labels) == pytest.approx(float(torch.stack(per_class).mean()))
    assert mabo(proposals, gts) == pytest.approx(float(best.mean()))


def test_bad_input():
    with pytest.raises(ValueError, match="gt_boxes"):
        proposal_recall(PROPOSALS, torch.zeros(0, 4), 0.5)
    with pytest.raises(ValueError, match="iou_threshold"):
        proposal_recall(PROPOSALS, GT, 1.5)
    with pytest.raises(ValueError, match="same images"):
        mabo([PROPOSALS], [GT, GT])
    with pytest.raises(ValueError, match="gt_labels"):
        mabo(PROPOSALS, GT, ["a"])
    with pytest.raises(ValueError, match="proposals"):
        mabo(torch.zeros(3, 3), GT)
    with pytest.raises(TypeError, match="proposals"):
        proposal_recall("boxes", GT, 0.5)
