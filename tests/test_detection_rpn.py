"""The RPN and the Fast R-CNN head against torchvision's (same weights, same random draws), and hand-built losses."""
import math

import pytest
import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator as TVAnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.image_list import ImageList as TVImageList
from torchvision.models.detection.roi_heads import RoIHeads as TVRoIHeads
from torchvision.models.detection.roi_heads import fastrcnn_loss as tv_fastrcnn_loss
from torchvision.models.detection.rpn import RegionProposalNetwork as TVRegionProposalNetwork
from torchvision.models.detection.rpn import RPNHead as TVRPNHead
from torchvision.ops import MultiScaleRoIAlign

from cvkit.detection import (AnchorGenerator, BalancedPositiveNegativeSampler, FastRCNNHead, ImageList, RegionProposalNetwork,
                             RoIHeads, RoIPooler, RPNHead, fastrcnn_loss, rpn_loss)

SIZES, RATIOS = ((16, 32, 64),), ((0.5, 1.0, 2.0),)


def _targets(g: torch.Generator, counts: list[int], size: int = 128, num_classes: int = 4) -> list[dict]:
    targets = []
    for n in counts:
        corner = torch.rand(n, 2, generator=g) * (size - 40)
        boxes = torch.cat((corner, corner + 8 + torch.rand(n, 2, generator=g) * 50), 1).clamp(max=size)
        targets.append({"boxes": boxes, "labels": torch.randint(1, num_classes + 1, (n,), generator=g)})
    return targets


def _rpn_pair(channels: int = 8, **kwargs):
    tv = TVRegionProposalNetwork(TVAnchorGenerator(SIZES, RATIOS), TVRPNHead(channels, 9), 0.7, 0.3, 256, 0.5,
                                 dict(training=300, testing=200), dict(training=150, testing=100), 0.7, **kwargs)
    ours = RegionProposalNetwork(AnchorGenerator(SIZES, RATIOS), RPNHead(channels, 9), 0.7, 0.3, 256, 0.5,
                                 dict(training=300, testing=200), dict(training=150, testing=100), 0.7, **kwargs)
    with torch.no_grad():
        for name in ("weight", "bias"):
            getattr(ours.head.conv, name).copy_(getattr(tv.head.conv[0][0], name))
            getattr(ours.head.cls_logits, name).copy_(getattr(tv.head.cls_logits, name))
            getattr(ours.head.bbox_pred, name).copy_(getattr(tv.head.bbox_pred, name))
    return tv, ours


@pytest.mark.parametrize("training", [False, True])
def test_rpn_equal_torchvision(training):
    g = torch.Generator().manual_seed(0)
    tv, ours = _rpn_pair()
    with torch.no_grad():           # objectness with a spread, so that top-k and NMS matter
        ours.head.cls_logits.weight.normal_(0, 1, generator=g)
        tv.head.cls_logits.weight.copy_(ours.head.cls_logits.weight)
        ours.head.bbox_pred.weight.normal_(0, 0.1, generator=g)
        tv.head.bbox_pred.weight.copy_(ours.head.bbox_pred.weight)
    images = torch.rand(3, 3, 128, 128, generator=g)
    features = torch.randn(3, 8, 16, 16, generator=g)
    targets = _targets(g, [3, 0, 1])                       # the second image has no objects
    tv.train(training)
    ours.train(training)
    torch.manual_seed(5)
    expected_boxes, expected_losses = tv(TVImageList(images, [(128, 128)] * 3), {"0": features}, targets)
    torch.manual_seed(5)                                   # the same random draws for the sampler
    boxes, losses = ours(ImageList(images, [(128, 128)] * 3), [features], targets)
    for b, e in zip(boxes, expected_boxes):
        torch.testing.assert_close(b, e)
    assert losses.keys() == expected_losses.keys()
    for key in losses:
        torch.testing.assert_close(losses[key], expected_losses[key])


def test_rpn_gradients_equal_torchvision():
    g = torch.Generator().manual_seed(1)
    tv, ours = _rpn_pair()
    images = torch.rand(2, 3, 64, 96, generator=g)
    features = torch.randn(2, 8, 8, 12, generator=g)
    targets = _targets(g, [2, 4], size=64)
    torch.manual_seed(0)
    _, expected = tv(TVImageList(images, [(64, 96)] * 2), {"0": features}, targets)
    torch.manual_seed(0)
    _, got = ours(ImageList(images, [(64, 96)] * 2), [features], targets)
    sum(expected.values()).backward()
    sum(got.values()).backward()
    torch.testing.assert_close(ours.head.bbox_pred.weight.grad, tv.head.bbox_pred.weight.grad)
    torch.testing.assert_close(ours.head.conv.weight.grad, tv.head.conv[0][0].weight.grad)


def test_rpn_propose_without_nms_keeps_more():
    torch.manual_seed(0)
    _, ours = _rpn_pair()
    ours.eval()
    batch = ImageList.from_tensor(torch.rand(1, 3, 128, 128))
    features = [torch.randn(1, 8, 16, 16)]
    before, scores_before = ours.propose(batch, features, apply_nms=False)
    after, scores_after = ours.propose(batch, features)
    assert before[0].shape == (200, 4) and scores_before[0].shape == (200,)     # pre_nms_top_n testing
    assert after[0].shape[0] <= 100 and after[0].shape[0] < before[0].shape[0]
    assert bool((scores_after[0][:-1] >= scores_after[0][1:]).all())


def test_rpn_loss_by_hand():
    # anchors: positive, negative, negative, ignored; a sampler of 4 with half positives takes 1 + 2
    objectness = torch.tensor([2.0, -1.0, 0.0, 5.0])
    deltas = torch.tensor([[0.1, 0.0, 0.0, 0.0], [3.0, 3.0, 3.0, 3.0], [1.0, 0.0, 0.0, 0.0], [9.0, 9.0, 9.0, 9.0]])
    labels = [torch.tensor([1.0, 0.0, 0.0, -1.0])]
    targets = [torch.zeros(4, 4)]
    cls, box = rpn_loss(objectness, deltas, labels, targets, BalancedPositiveNegativeSampler(4, 0.5), box_loss_weight=10.0)
    expected_cls = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1)) + math.log(2)) / 3
    # |0.1| < beta = 1/9: 0.5 * 0.1² / (1/9) = 0.045; only the positive anchor regresses; divided by 3 samples
    assert cls.item() == pytest.approx(expected_cls, rel=1e-6)
    assert box.item() == pytest.approx(10.0 * 0.045 / 3, rel=1e-5)


def test_fastrcnn_loss_by_hand_and_equal_torchvision():
    # RoI 0: class 2, uniform logits over 3 classes -> ln 3; deltas of class 2 off by 1 in t_x -> 1 - 0.5 / 9
    # RoI 1: background, p_0 = 4 / 6 -> ln 1.5; its deltas do not count
    logits = torch.tensor([[0.0, 0.0, 0.0], [math.log(4.0), 0.0, 0.0]])
    deltas = torch.zeros(2, 12)
    deltas[0, 8] = 1.0                     # class 2, t_x
    deltas[0, 4:8] = 7.0                   # class 1: not the true class, must not count
    deltas[1] = 5.0
    labels = [torch.tensor([2, 0])]
    targets = [torch.zeros(2, 4)]
    cls, box = fastrcnn_loss(logits, deltas, labels, targets)
    assert cls.item() == pytest.approx((math.log(3) + math.log(1.5)) / 2, rel=1e-6)
    assert box.item() == pytest.approx((1 - 0.5 / 9) / 2, rel=1e-6)
    g = torch.Generator().manual_seed(0)
    logits, deltas = torch.randn(30, 5, generator=g), torch.randn(30, 20, generator=g)
    labels = [torch.randint(0, 5, (12,), generator=g), torch.randint(0, 5, (18,), generator=g)]
    targets = [torch.randn(12, 4, generator=g), torch.randn(18, 4, generator=g)]
    for got, expected in zip(fastrcnn_loss(logits, deltas, labels, targets), tv_fastrcnn_loss(logits, deltas, labels, targets)):
        torch.testing.assert_close(got, expected)


def _heads_pair(channels: int = 8, rep: int = 32, num_classes: int = 5):
    tv = TVRoIHeads(MultiScaleRoIAlign(["0"], 7, 2), TwoMLPHead(channels * 49, rep), FastRCNNPredictor(rep, num_classes),
                    0.5, 0.5, 64, 0.25, None, 0.05, 0.5, 100)
    head = FastRCNNHead(channels * 49, rep, num_classes)
    with torch.no_grad():
        for ours_layer, tv_layer in ((head.fc6, tv.box_head.fc6), (head.fc7, tv.box_head.fc7),
                                     (head.cls_score, tv.box_predictor.cls_score),
                                     (head.bbox_pred, tv.box_predictor.bbox_pred)):
            ours_layer.weight.copy_(tv_layer.weight)
            ours_layer.bias.copy_(tv_layer.bias)
    # torchvision's detectors pool with aligned=False; bg_iou_low=0 is torchvision's background band [0, 0.5)
    ours = RoIHeads(RoIPooler(7, 1 / 8, "align", 2, aligned=False), head, 0.5, 0.0, 64, 0.25)
    return tv, ours


@pytest.mark.parametrize("training", [False, True])
def test_roi_heads_equal_torchvision(training):
    g = torch.Generator().manual_seed(2)
    tv, ours = _heads_pair()
    features = torch.randn(2, 8, 16, 16, generator=g)
    targets = _targets(g, [3, 0])
    proposals = [t["boxes"] for t in _targets(g, [40, 25])]
    tv.train(training)
    ours.train(training)
    torch.manual_seed(3)
    expected, expected_losses = tv({"0": features}, [p.clone() for p in proposals], [(128, 128)] * 2,
                                   targets if training else None)
    torch.manual_seed(3)
    got, losses = ours(features, [p.clone() for p in proposals], [(128, 128)] * 2, targets if training else None)
    assert losses.keys() == expected_losses.keys()
    for key in losses:
        torch.testing.assert_close(losses[key], expected_losses[key])
    assert len(got) == (0 if training else 2)
    for d, e in zip(got, expected):
        assert d["labels"].dtype == torch.int64
        for key in ("boxes", "scores", "labels"):
            torch.testing.assert_close(d[key], e[key])


def test_roi_heads_background_band():
    # IoU >= 0.5: class; [0.1, 0.5): background; < 0.1: never sampled
    _, ours = _heads_pair()
    ours.proposal_matcher.low_threshold = 0.1
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    proposals = torch.tensor([[0.0, 0.0, 10.0, 10.0],     # IoU 1
                              [0.0, 0.0, 10.0, 5.0],      # 0.5
                              [0.0, 0.0, 10.0, 4.0],      # 0.4
                              [0.0, 0.0, 10.0, 0.5],      # 0.05
                              [50.0, 50.0, 60.0, 60.0]])  # 0
    _, labels = ours.assign_targets_to_proposals([proposals], [gt], [torch.tensor([3])])
    assert labels[0].tolist() == [3, 3, 0, -1, -1]
