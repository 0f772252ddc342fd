"""cvkit.boxes against its oracles: torchvision.ops (box_convert, box_area, box_iou, generalized_box_iou,
clip_boxes_to_image, remove_small_boxes), torchvision's detection BoxCoder, F.smooth_l1_loss, hand-computed
cases (arithmetic in the comments) and invariants (hypothesis).

Forward results are compared exactly (zero tolerance, NaN == NaN, same dtype and device): cvkit performs the
same float operations as torchvision, so any difference is a bug. Gradients are compared with assert_close.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision.ops as tv
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.models.detection._utils import BoxCoder as TvBoxCoder
from torchvision.models.detection._utils import encode_boxes as tv_encode_boxes

import cvkit

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
FMTS = ["xyxy", "xywh", "cxcywh"]
PROPERTY = settings(max_examples=60, deadline=None)


def assert_same(actual, expected):
    """Bit-for-bit equal values (NaN equal to NaN), same shape, dtype and device."""
    torch.testing.assert_close(actual, expected, rtol=0, atol=0, equal_nan=True)


def random_boxes(*shape, seed, dtype=torch.float32, device="cpu", lo=-20.0, span=100.0, max_size=40.0):
    """``[*shape, 4]`` xyxy boxes with x2 >= x1, y2 >= y1 (corners may be negative)."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(*shape, 2, generator=g, dtype=torch.float64) * span + lo
    wh = torch.rand(*shape, 2, generator=g, dtype=torch.float64) * max_size
    return torch.cat((xy, xy + wh), dim=-1).to(dtype=dtype, device=device)


def adversarial_boxes(dtype=torch.float32, device="cpu"):
    """Boxes on an image border, zero-area (point and line), identical, negative, nested, touching."""
    return torch.tensor([
        [0, 0, 100, 60],        # the whole image (100 x 60)
        [0, 0, 100, 60],        # identical to the first
        [90, 50, 100, 60],      # in the bottom-right corner, on the border
        [5, 5, 5, 5],           # a point: zero area
        [5, 5, 5, 5],           # the same point again (IoU 0 / 0 = NaN with it)
        [10, 0, 10, 30],        # a vertical line: zero area
        [-30, -20, -10, -5],    # entirely negative
        [-10, -5, 10, 5],       # straddles the origin
        [10, 5, 20, 15],        # touches the previous one at a corner
        [20, 10, 40, 30],       # nested in the first
        [25, 15, 35, 25],       # nested in the previous
        [0.5, 0.25, 1.75, 3.125],
    ], dtype=dtype, device=device)


# --------------------------------------------------------------------------------------------------
# hand-computed cases


@pytest.mark.parametrize("device", DEVICES)
def test_box_convert_and_area_hand_computed(device):
    # xyxy (1, 2, 4, 6): w = 4 - 1 = 3, h = 6 - 2 = 4, centre ((1 + 4) / 2, (2 + 6) / 2) = (2.5, 4), area 12
    xyxy = torch.tensor([[1.0, 2.0, 4.0, 6.0]], device=device)
    xywh = torch.tensor([[1.0, 2.0, 3.0, 4.0]], device=device)
    cxcywh = torch.tensor([[2.5, 4.0, 3.0, 4.0]], device=device)
    forms = {"xyxy": xyxy, "xywh": xywh, "cxcywh": cxcywh}
    for i, a in forms.items():
        for o, b in forms.items():
            assert_same(cvkit.box_convert(a, i, o), b)
        assert_same(cvkit.box_area(a, fmt=i), torch.tensor([12.0], device=device))


@pytest.mark.parametrize("device", DEVICES)
def test_box_iou_and_giou_hand_computed(device):
    boxes1 = torch.tensor([[0.0, 0.0, 2.0, 2.0]], device=device)
    boxes2 = torch.tensor([
        [1.0, 1.0, 3.0, 3.0],   # inter 1 x 1 = 1, union 4 + 4 - 1 = 7: IoU 1/7; C = (0,0,3,3), |C| = 9:
                                #   GIoU = 1/7 - (9 - 7)/9 = -5/63
        [0.0, 0.0, 2.0, 2.0],   # itself: IoU 1, GIoU 1
        [3.0, 0.0, 4.0, 1.0],   # disjoint: inter 0, union 4 + 1 = 5, C = (0,0,4,2), |C| = 8: GIoU = -(8-5)/8 = -3/8
        [2.0, 0.0, 4.0, 2.0],   # touching edge: IoU 0, union 8, C = (0,0,4,2) = 8: GIoU 0
        [0.5, 0.5, 1.5, 1.5],   # nested: inter 1, union 4: IoU 1/4 = GIoU (C is boxes1)
    ], device=device)
    iou = torch.tensor([[1 / 7, 1.0, 0.0, 0.0, 0.25]], device=device)
    giou = torch.tensor([[1 / 7 - 2 / 9, 1.0, -3 / 8, 0.0, 0.25]], device=device)
    torch.testing.assert_close(cvkit.box_iou(boxes1, boxes2), iou)
    torch.testing.assert_close(cvkit.generalized_box_iou(boxes1, boxes2), giou)
    # the same pairs in the other two formats
    for fmt in ("xywh", "cxcywh"):
        torch.testing.assert_close(
            cvkit.box_iou(tv.box_convert(boxes1, "xyxy", fmt), tv.box_convert(boxes2, "xyxy", fmt), fmt=fmt), iou)


@pytest.mark.parametrize("device", DEVICES)
def test_clip_and_remove_small_hand_computed(device):
    # image of height 40 and width 100: x into [0, 100], y into [0, 40]
    boxes = torch.tensor([[-5.0, -5.0, 120.0, 50.0], [10.0, 20.0, 30.0, 35.0], [101.0, 41.0, 150.0, 60.0]],
                         device=device)
    expected = torch.tensor([[0.0, 0.0, 100.0, 40.0], [10.0, 20.0, 30.0, 35.0], [100.0, 40.0, 100.0, 40.0]],
                            device=device)
    assert_same(cvkit.clip_boxes_to_image(boxes, (40, 100)), expected)
    # sides: (3, 3) kept, (3, 2.9) dropped, (2, 5) dropped, (0, 0) dropped, (5, 3) kept (>= is kept)
    boxes = torch.tensor([[0, 0, 3, 3], [0, 0, 3, 2.9], [1, 1, 3, 6], [4, 4, 4, 4], [0, 0, 5, 3]], device=device)
    assert_same(cvkit.remove_small_boxes(boxes, 3.0), torch.tensor([0, 4], device=device))


# --------------------------------------------------------------------------------------------------
# forward equivalence with torchvision


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(0,), (1,), (37,), (3, 11), (2, 3, 5)])
def test_box_convert_and_area_equal_torchvision(device, dtype, shape):
    boxes = random_boxes(*shape, seed=len(shape) * 100 + shape[-1], dtype=dtype, device=device)
    for in_fmt in FMTS:
        for out_fmt in FMTS:
            assert_same(cvkit.box_convert(boxes, in_fmt, out_fmt), tv.box_convert(boxes, in_fmt, out_fmt))
        assert_same(cvkit.box_area(boxes, fmt=in_fmt), tv.box_area(boxes, fmt=in_fmt))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.int16, torch.uint8, torch.float16])
def test_box_convert_and_area_other_dtypes_equal_torchvision(device, dtype):
    g = torch.Generator().manual_seed(1)
    corner = torch.randint(0, 100, (2, 20, 2), generator=g)
    boxes = torch.cat((corner, corner + torch.randint(0, 50, (2, 20, 2), generator=g)), -1).to(dtype).to(device)
    for in_fmt in FMTS:
        for out_fmt in FMTS:
            assert_same(cvkit.box_convert(boxes, in_fmt, out_fmt), tv.box_convert(boxes, in_fmt, out_fmt))
        assert_same(cvkit.box_area(boxes, fmt=in_fmt), tv.box_area(boxes, fmt=in_fmt))   # int32/int64/float32


def test_box_convert_returns_a_copy():
    boxes = random_boxes(5, seed=3)
    before = boxes.clone()
    for fmt in FMTS:
        out = cvkit.box_convert(boxes, fmt, fmt)
        assert_same(out, before)
        out.add_(1)
        assert_same(boxes, before)


def _iou_pair_inputs(seed, dtype, device, batch=()):
    boxes1 = random_boxes(*batch, 13, seed=seed, dtype=dtype, device=device)
    boxes2 = torch.cat((random_boxes(*batch, 17, seed=seed + 1, dtype=dtype, device=device),
                        boxes1[..., :4, :]), dim=-2)   # some identical boxes
    return boxes1, boxes2


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch", [(), (3,), (2, 4)])
@pytest.mark.parametrize("fmt", FMTS)
def test_box_iou_equal_torchvision(device, dtype, batch, fmt):
    boxes1, boxes2 = _iou_pair_inputs(7, dtype, device, batch)
    boxes1, boxes2 = tv.box_convert(boxes1, "xyxy", fmt), tv.box_convert(boxes2, "xyxy", fmt)
    out = cvkit.box_iou(boxes1, boxes2, fmt=fmt)
    assert out.shape == (*batch, 13, 21)
    assert_same(out, tv.box_iou(boxes1, boxes2, fmt=fmt))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch", [(), (3,), (2, 4)])
def test_generalized_box_iou_equal_torchvision(device, dtype, batch):
    boxes1, boxes2 = _iou_pair_inputs(11, dtype, device, batch)
    out = cvkit.generalized_box_iou(boxes1, boxes2)
    assert out.shape == (*batch, 13, 21)
    assert_same(out, tv.generalized_box_iou(boxes1, boxes2))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_iou_adversarial_equal_torchvision(device, dtype):
    """Border, zero-area, identical, negative, nested and touching boxes, all against all (incl. NaN of 0/0)."""
    boxes = adversarial_boxes(dtype, device)
    for fmt in FMTS:
        b = tv.box_convert(boxes, "xyxy", fmt)
        assert_same(cvkit.box_iou(b, b, fmt=fmt), tv.box_iou(b, b, fmt=fmt))
        assert_same(cvkit.box_area(b, fmt=fmt), tv.box_area(b, fmt=fmt))
    assert_same(cvkit.generalized_box_iou(boxes, boxes), tv.generalized_box_iou(boxes, boxes))
    iou = cvkit.box_iou(boxes, boxes)
    assert torch.isnan(iou[3, 4]) and iou[0, 1] == 1 and iou[7, 8] == 0   # 0/0, identical, corner contact


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8])
@pytest.mark.parametrize("fmt", FMTS)
def test_box_iou_integer_boxes_equal_torchvision(device, dtype, fmt):
    g = torch.Generator().manual_seed(5)
    corner = torch.randint(0, 60, (2, 9, 2), generator=g)
    boxes = torch.cat((corner, corner + torch.randint(0, 30, (2, 9, 2), generator=g)), -1)   # some zero sides
    if fmt != "xyxy":
        boxes = torch.cat((corner, torch.randint(0, 30, (2, 9, 2), generator=g)), -1)        # (x, y, w, h) ints
    boxes = boxes.to(dtype).to(device)
    out = cvkit.box_iou(boxes[0], boxes[1], fmt=fmt)
    assert out.dtype == torch.float32
    assert_same(out, tv.box_iou(boxes[0], boxes[1], fmt=fmt))
    assert_same(cvkit.box_iou(boxes, boxes, fmt=fmt), tv.box_iou(boxes, boxes, fmt=fmt))   # batched
    if fmt == "xyxy":
        assert_same(cvkit.generalized_box_iou(boxes[0], boxes[1]), tv.generalized_box_iou(boxes[0], boxes[1]))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.int32])
def test_empty_inputs(device, dtype):
    empty = torch.zeros(0, 4, dtype=dtype, device=device)
    some = torch.tensor([[0, 0, 4, 4], [1, 1, 2, 3]], dtype=dtype, device=device)
    for a, b in ((empty, empty), (empty, some), (some, empty)):
        for fmt in FMTS:
            assert_same(cvkit.box_iou(a, b, fmt=fmt), tv.box_iou(a, b, fmt=fmt))
            assert cvkit.box_iou(a, b, fmt=fmt).shape == (len(a), len(b))
        assert_same(cvkit.generalized_box_iou(a, b), tv.generalized_box_iou(a, b))
    batched_empty = torch.zeros(3, 0, 4, dtype=dtype, device=device)
    assert_same(cvkit.box_iou(batched_empty, batched_empty), tv.box_iou(batched_empty, batched_empty))
    assert cvkit.box_iou(batched_empty, batched_empty).shape == (3, 0, 0)
    for fmt in FMTS:
        assert_same(cvkit.box_area(empty, fmt=fmt), tv.box_area(empty, fmt=fmt))
        for out_fmt in FMTS:
            assert_same(cvkit.box_convert(empty, fmt, out_fmt), tv.box_convert(empty, fmt, out_fmt))
    assert_same(cvkit.clip_boxes_to_image(empty, (10, 20)), tv.clip_boxes_to_image(empty, (10, 20)))
    assert_same(cvkit.remove_small_boxes(empty, 1.0), tv.remove_small_boxes(empty, 1.0))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64])
@pytest.mark.parametrize("shape", [(50,), (3, 7)])
def test_clip_boxes_to_image_equal_torchvision(device, dtype, shape):
    boxes = random_boxes(*shape, seed=21, lo=-60.0, span=200.0, max_size=80.0).to(dtype).to(device)
    for size in ((40, 100), (100, 40), (0, 0), (1, 1)):
        assert_same(cvkit.clip_boxes_to_image(boxes, size), tv.clip_boxes_to_image(boxes, size))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64])
def test_remove_small_boxes_equal_torchvision(device, dtype):
    boxes = torch.cat((random_boxes(200, seed=4, max_size=6.0), adversarial_boxes())).to(dtype).to(device)
    for min_size in (0.0, 1e-3, 1.0, 2.5, 3.0, 5.0, 100.0):
        assert_same(cvkit.remove_small_boxes(boxes, min_size), tv.remove_small_boxes(boxes, min_size))


# --------------------------------------------------------------------------------------------------
# backward


def _grads(fn, *inputs):
    leaves = [x.detach().clone().requires_grad_(True) for x in inputs]
    out = fn(*leaves)
    g = torch.Generator().manual_seed(99)
    weight = torch.randn(out.shape, generator=g, dtype=out.dtype).to(out.device)   # a generic upstream gradient
    (out * weight).sum().backward()
    return out, [x.grad for x in leaves]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_iou_and_giou_gradients_equal_torchvision(device, dtype):
    boxes1, boxes2 = _iou_pair_inputs(31, dtype, device, batch=(2,))
    for fmt in FMTS:
        a, b = tv.box_convert(boxes1, "xyxy", fmt), tv.box_convert(boxes2, "xyxy", fmt)
        out, grads = _grads(lambda x, y: cvkit.box_iou(x, y, fmt=fmt), a, b)
        ref, ref_grads = _grads(lambda x, y: tv.box_iou(x, y, fmt=fmt), a, b)
        assert_same(out.detach(), ref.detach())
        for g, r in zip(grads, ref_grads):
            torch.testing.assert_close(g, r)
    out, grads = _grads(cvkit.generalized_box_iou, boxes1, boxes2)
    ref, ref_grads = _grads(tv.generalized_box_iou, boxes1, boxes2)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r)


def _smooth_boxes(n, seed, device):
    """float64 boxes whose coordinates are pairwise >= 0.05 apart: no min/max/clamp kink within gradcheck's eps."""
    g = torch.Generator().manual_seed(seed)
    while True:
        xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * 6
        wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * 4 + 1
        boxes = torch.cat((xy, xy + wh), 1)
        xs, ys = boxes[:, 0::2].flatten(), boxes[:, 1::2].flatten()
        gap = min((xs[:, None] - xs[None]).abs().add(torch.eye(2 * n, dtype=torch.float64)).min(),
                  (ys[:, None] - ys[None]).abs().add(torch.eye(2 * n, dtype=torch.float64)).min())
        if gap > 0.05:
            return boxes.to(device)


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck_box_iou_and_giou(device):
    boxes1, boxes2 = _smooth_boxes(3, 0, device), _smooth_boxes(4, 1, device)
    assert (cvkit.box_iou(boxes1, boxes2) > 0).any()   # some pairs overlap: the intersection term is exercised
    for fmt in FMTS:
        a = tv.box_convert(boxes1, "xyxy", fmt).requires_grad_()
        b = tv.box_convert(boxes2, "xyxy", fmt).requires_grad_()
        assert torch.autograd.gradcheck(lambda x, y: cvkit.box_iou(x, y, fmt=fmt), (a, b))
    a, b = boxes1.clone().requires_grad_(), boxes2.clone().requires_grad_()
    assert torch.autograd.gradcheck(cvkit.generalized_box_iou, (a, b))


# --------------------------------------------------------------------------------------------------
# box coder


WEIGHTS = [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)]


def _positive_boxes(n, seed, dtype=torch.float32, device="cpu"):
    return random_boxes(n, seed=seed, dtype=dtype, device=device, lo=-10.0, max_size=60.0) + torch.tensor(
        [0.0, 0.0, 1.0, 1.0], dtype=dtype, device=device)   # sides >= 1


def test_encode_hand_computed():
    # P = (0, 0, 10, 20): centre (5, 10), size 10 x 20.  G = (2, 4, 12, 34): centre (7, 19), size 10 x 30.
    # t = ((7 - 5)/10, (19 - 10)/20, log(10/10), log(30/20)) = (0.2, 0.45, 0, log 1.5)
    proposals = torch.tensor([[0.0, 0.0, 10.0, 20.0]], dtype=torch.float64)
    gt = torch.tensor([[2.0, 4.0, 12.0, 34.0]], dtype=torch.float64)
    t = torch.tensor([[0.2, 0.45, 0.0, math.log(1.5)]], dtype=torch.float64)
    torch.testing.assert_close(cvkit.encode_boxes(gt, proposals, (1.0, 1.0, 1.0, 1.0)), t)
    # weights (10, 10, 5, 5) multiply the four targets
    weighted = t * torch.tensor([10.0, 10.0, 5.0, 5.0], dtype=torch.float64)
    torch.testing.assert_close(cvkit.BoxCoder((10.0, 10.0, 5.0, 5.0)).encode_single(gt, proposals), weighted)
    torch.testing.assert_close(cvkit.decode_boxes(weighted, proposals, (10.0, 10.0, 5.0, 5.0)), gt)


def test_decode_clamps_huge_deltas_hand_computed():
    # box (0, 0, 16, 16): centre (8, 8), size 16.  t_w = t_h = 1000 is clamped to log(1000/16), so the new
    # size is 16 * 1000/16 = 1000 and the box is (8 - 500, 8 - 500, 8 + 500, 8 + 500) = (-492, -492, 508, 508).
    # t_x = 2 moves the centre by 2 * 16 = 32 -> x in (40 - 500, 40 + 500).
    box = torch.tensor([[0.0, 0.0, 16.0, 16.0]], dtype=torch.float64)
    deltas = torch.tensor([[0.0, 0.0, 1000.0, 1000.0, 2.0, 0.0, 1e30, -1.0]], dtype=torch.float64)
    expected = torch.tensor([[-492.0, -492.0, 508.0, 508.0,
                              40.0 - 500.0, -492.0, 40.0 + 500.0, 508.0]], dtype=torch.float64)
    # the last set: t_h = -1 is not clamped (only from above): height 16 / e, centred on 8
    expected[0, 5], expected[0, 7] = 8 - 8 / math.e, 8 + 8 / math.e
    out = cvkit.decode_boxes(deltas, box, (1.0, 1.0, 1.0, 1.0))
    torch.testing.assert_close(out, expected)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("weights", WEIGHTS)
def test_box_coder_equal_torchvision(device, dtype, weights):
    gt, proposals = _positive_boxes(40, 1, dtype, device), _positive_boxes(40, 2, dtype, device)
    ours, theirs = cvkit.BoxCoder(weights), TvBoxCoder(weights)
    assert_same(ours.encode_single(gt, proposals), theirs.encode_single(gt, proposals))
    assert_same(cvkit.encode_boxes(gt, proposals, weights),
                tv_encode_boxes(gt, proposals, torch.tensor(weights, dtype=dtype, device=device)))
    split = [15, 0, 25]
    enc, ref = ours.encode(list(gt.split(split)), list(proposals.split(split))), \
        theirs.encode(list(gt.split(split)), list(proposals.split(split)))
    assert len(enc) == len(ref) == 3
    for e, r in zip(enc, ref):
        assert_same(e, r)
    g = torch.Generator().manual_seed(3)
    for k in (1, 3):
        deltas = (torch.randn(40, 4 * k, generator=g, dtype=torch.float64) * 3).to(dtype).to(device)
        deltas[::7, 2::4] = 1e4     # far beyond the clamp at log(1000/16), times the weight
        deltas[::5, 3::4] = 50.0
        deltas[1::6, 2::4] = -30.0  # shrinks, not clamped from below
        assert_same(ours.decode_single(deltas, proposals), theirs.decode_single(deltas, proposals))
        decoded = ours.decode(deltas, list(proposals.split(split)))
        assert decoded.shape == (40, k, 4)
        assert_same(decoded, theirs.decode(deltas, list(proposals.split(split))))
        assert torch.isfinite(decoded).all()
    # a custom clamp
    ours, theirs = cvkit.BoxCoder(weights, bbox_xform_clip=0.5), TvBoxCoder(weights, bbox_xform_clip=0.5)
    assert_same(ours.decode_single(deltas, proposals), theirs.decode_single(deltas, proposals))
    # empty input
    empty = torch.zeros(0, 4, dtype=dtype, device=device)
    assert_same(cvkit.BoxCoder(weights).encode_single(empty, empty), TvBoxCoder(weights).encode_single(empty, empty))
    assert_same(cvkit.BoxCoder(weights).decode(empty, [empty]), TvBoxCoder(weights).decode(empty, [empty]))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("weights", WEIGHTS)
def test_box_coder_round_trip(device, weights):
    gt, proposals = _positive_boxes(100, 5, torch.float64, device), _positive_boxes(100, 6, torch.float64, device)
    coder = cvkit.BoxCoder(weights)
    targets = coder.encode_single(gt, proposals)
    # round trip holds while |t_w|/w_w, |t_h|/w_h stay under the clamp
    assert (targets[:, 2:] / torch.tensor(weights[2:], dtype=torch.float64, device=device)).max() < math.log(1000 / 16)
    torch.testing.assert_close(coder.decode_single(targets, proposals), gt)
    torch.testing.assert_close(coder.decode(targets, [proposals[:30], proposals[30:]])[:, 0], gt)
    gt32, p32 = gt.float(), proposals.float()
    torch.testing.assert_close(coder.decode_single(coder.encode_single(gt32, p32), p32), gt32, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("weights", WEIGHTS)
def test_box_coder_gradients_equal_torchvision(device, weights):
    gt, proposals = _positive_boxes(20, 7, torch.float32, device), _positive_boxes(20, 8, torch.float32, device)
    weights_t = torch.tensor(weights, device=device)
    out, grads = _grads(lambda g, p: cvkit.encode_boxes(g, p, weights), gt, proposals)
    ref, ref_grads = _grads(lambda g, p: tv_encode_boxes(g, p, weights_t), gt, proposals)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r)
    deltas = torch.randn(20, 8, generator=torch.Generator().manual_seed(2)).to(device)
    deltas[::3, 2] = 100.0    # clamped: no gradient reaches it
    out, grads = _grads(lambda d, b: cvkit.decode_boxes(d, b, weights), deltas, proposals)
    ref, ref_grads = _grads(lambda d, b: TvBoxCoder(weights).decode_single(d, b), deltas, proposals)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r)
    assert (grads[0][::3, 2] == 0).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("weights", WEIGHTS)
def test_gradcheck_decode_and_encode(device, weights):
    boxes = _smooth_boxes(4, 2, device).requires_grad_()
    deltas = (torch.rand(4, 8, generator=torch.Generator().manual_seed(4), dtype=torch.float64) - 0.5)
    deltas = (deltas * torch.tensor(weights * 2, dtype=torch.float64)).to(device).requires_grad_()   # far from clamp
    assert torch.autograd.gradcheck(lambda d, b: cvkit.decode_boxes(d, b, weights), (deltas, boxes))
    gt = _smooth_boxes(4, 3, device).requires_grad_()
    assert torch.autograd.gradcheck(lambda g, p: cvkit.encode_boxes(g, p, weights), (gt, boxes))


# --------------------------------------------------------------------------------------------------
# smooth L1


def test_smooth_l1_hand_computed():
    # beta = 1: |d| = 0.5 < 1 -> 0.5 * 0.25 / 1 = 0.125;  |d| = 2 -> 2 - 0.5 = 1.5;  |d| = 1 (not < 1) -> 0.5
    # beta = 0.5: |d| = 0.5 -> 0.5 - 0.25 = 0.25;  |d| = 0.25 -> 0.5 * 0.0625 / 0.5 = 0.0625
    x = torch.tensor([0.5, -2.0, 1.0, 0.0])
    y = torch.zeros(4)
    torch.testing.assert_close(cvkit.smooth_l1_loss(x, y, beta=1.0, reduction="none"),
                               torch.tensor([0.125, 1.5, 0.5, 0.0]))
    torch.testing.assert_close(cvkit.smooth_l1_loss(x, y, beta=1.0, reduction="sum"), torch.tensor(2.125))
    torch.testing.assert_close(cvkit.smooth_l1_loss(x, y, beta=1.0), torch.tensor(2.125 / 4))
    torch.testing.assert_close(cvkit.smooth_l1_loss(torch.tensor([0.5, 0.25]), torch.zeros(2), beta=0.5,
                                                    reduction="none"), torch.tensor([0.25, 0.0625]))
    # beta = 0 is L1
    torch.testing.assert_close(cvkit.smooth_l1_loss(x, y, beta=0.0, reduction="none"), x.abs())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("beta", [0.0, 1 / 9, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_smooth_l1_equal_torch(device, dtype, beta, reduction):
    g = torch.Generator().manual_seed(13)
    x = (torch.randn(7, 9, generator=g, dtype=torch.float64) * 2).to(dtype).to(device)
    y = (torch.randn(7, 9, generator=g, dtype=torch.float64) * 2).to(dtype).to(device)
    y[0] = x[0]                                          # d = 0
    y[1, :3] = x[1, :3] + beta                           # |d| = beta (up to rounding), the kink
    out, grads = _grads(lambda a, b: cvkit.smooth_l1_loss(a, b, beta=beta, reduction=reduction), x, y)
    ref, ref_grads = _grads(lambda a, b: F.smooth_l1_loss(a, b, beta=beta, reduction=reduction), x, y)
    assert_same(out.detach(), ref.detach())
    for g_, r in zip(grads, ref_grads):
        torch.testing.assert_close(g_, r)
    empty = torch.zeros(0, dtype=dtype, device=device)
    assert_same(cvkit.smooth_l1_loss(empty, empty, beta, reduction), F.smooth_l1_loss(empty, empty, beta=beta,
                                                                                        reduction=reduction))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("beta", [0.0, 1 / 9, 1.0])
def test_gradcheck_smooth_l1(device, beta):
    # |d| in {0.3, 0.6, 1.7, 2.5, ...}: away from 0 and from beta, where the loss has kinks
    d = torch.tensor([0.3, -0.6, 1.7, -2.5, 0.05, -0.08, 0.5, 3.0], dtype=torch.float64, device=device)
    keep = ((d.abs() - beta).abs() > 0.01) & (d.abs() > 0.01)
    d = d[keep]
    target = torch.linspace(-1, 1, len(d), dtype=torch.float64, device=device).requires_grad_()
    x = (target.detach() + d).requires_grad_()
    for reduction in ("none", "mean", "sum"):
        assert torch.autograd.gradcheck(lambda a, b: cvkit.smooth_l1_loss(a, b, beta, reduction), (x, target))


# --------------------------------------------------------------------------------------------------
# properties (hypothesis)


def _boxes_from(rows, dtype=torch.float64):
    """(x, y, w, h) rows -> xyxy tensor [N, 4]."""
    t = torch.tensor(rows, dtype=dtype).reshape(-1, 4)
    return torch.cat((t[:, :2], t[:, :2] + t[:, 2:]), 1)


coordinate = st.floats(min_value=-100, max_value=100, allow_nan=False, width=32)
size = st.floats(min_value=0.125, max_value=100, allow_nan=False, width=32)
positive_box_rows = st.lists(st.tuples(coordinate, coordinate, size, size), min_size=1, max_size=12)
any_box_rows = st.lists(st.tuples(coordinate, coordinate, st.floats(0, 100, width=32), st.floats(0, 100, width=32)),
                        min_size=0, max_size=12)


@PROPERTY
@given(rows1=positive_box_rows, rows2=positive_box_rows, dtype=st.sampled_from([torch.float32, torch.float64]))
def test_property_iou_giou(rows1, rows2, dtype):
    boxes1, boxes2 = _boxes_from(rows1, dtype), _boxes_from(rows2, dtype)
    iou = cvkit.box_iou(boxes1, boxes2)
    assert_same(iou, tv.box_iou(boxes1, boxes2))
    assert not iou.isnan().any()
    assert ((iou >= 0) & (iou <= 1)).all()
    assert_same(cvkit.box_iou(boxes2, boxes1), iou.T)                       # symmetric, bit for bit
    self_iou = cvkit.box_iou(boxes1, boxes1).diagonal()
    torch.testing.assert_close(self_iou, torch.ones_like(self_iou))     # a box with itself
    giou = cvkit.generalized_box_iou(boxes1, boxes2)
    assert_same(giou, tv.generalized_box_iou(boxes1, boxes2))
    eps = 1e-6 if dtype == torch.float32 else 1e-12
    assert (giou <= iou + eps).all()
    assert ((giou >= -1 - eps) & (giou <= 1 + eps)).all()
    for fmt in FMTS:                                                     # the same IoU from any format
        a, b = cvkit.box_convert(boxes1, "xyxy", fmt), cvkit.box_convert(boxes2, "xyxy", fmt)
        torch.testing.assert_close(cvkit.box_iou(a, b, fmt=fmt), iou, rtol=1e-4, atol=1e-4)


@PROPERTY
@given(rows=any_box_rows, dtype=st.sampled_from([torch.float32, torch.float64]),
       fmts=st.tuples(st.sampled_from(FMTS), st.sampled_from(FMTS)))
def test_property_box_convert_round_trip(rows, dtype, fmts):
    boxes = _boxes_from(rows, dtype)
    a, b = fmts
    x = cvkit.box_convert(boxes, "xyxy", a)
    assert_same(x, tv.box_convert(boxes, "xyxy", a))
    y = cvkit.box_convert(x, a, b)
    assert_same(y, tv.box_convert(x, a, b))
    tol = dict(rtol=1e-5, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(cvkit.box_convert(y, b, "xyxy"), boxes, **tol)
    torch.testing.assert_close(cvkit.box_area(y, fmt=b), cvkit.box_area(boxes), rtol=1e-4, atol=1e-2)


# --------------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("device", DEVICES)
def test_bad_input_raises_naming_the_argument(device):
    boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]], device=device)
    flipped = torch.tensor([[2.0, 0.0, 0.0, 2.0]], device=device)      # x2 < x1
    flipped_y = torch.tensor([[0.0, 2.0, 2.0, 0.0]], device=device)    # y2 < y1
    nan_box = torch.tensor([[0.0, 0.0, float("nan"), 1.0]], device=device)
    barely = torch.tensor([[1.0, 0.0, 0.5, 1.0]], device=device)       # x2 < x1 by 0.5
    with pytest.raises(ValueError, match="boxes1"):
        cvkit.box_iou(boxes[:, :3], boxes)
    with pytest.raises(ValueError, match="boxes2"):
        cvkit.box_iou(boxes, boxes[:, :3])
    with pytest.raises(ValueError, match="boxes1"):
        cvkit.box_iou(boxes[0], boxes)                                  # 1-D where [N, 4] is needed
    with pytest.raises(ValueError, match="boxes2"):
        cvkit.generalized_box_iou(boxes, boxes[0])
    for fn in (cvkit.box_iou, cvkit.generalized_box_iou):
        for bad in (flipped, flipped_y, nan_box, barely):
            with pytest.raises(ValueError, match="boxes1"):
                fn(bad, boxes)
            with pytest.raises(ValueError, match="boxes2"):
                fn(boxes, bad)
    with pytest.raises(ValueError, match="boxes2"):                     # negative width in xywh
        cvkit.box_iou(boxes, torch.tensor([[0.0, 0.0, -1.0, 1.0]], device=device), fmt="xywh")
    with pytest.raises(ValueError, match="boxes1"):
        cvkit.box_iou(torch.tensor([[0.0, 0.0, 1.0, -1.0]], device=device), boxes, fmt="cxcywh")
    with pytest.raises(ValueError, match="batch"):
        cvkit.box_iou(boxes.expand(2, 2, 4), boxes.expand(3, 2, 4))
    with pytest.raises(TypeError, match="boxes1"):
        cvkit.box_iou(boxes.tolist(), boxes)
    with pytest.raises(ValueError, match="fmt"):
        cvkit.box_iou(boxes, boxes, fmt="xyxyr")
    with pytest.raises(ValueError, match="fmt"):
        cvkit.box_area(boxes, fmt="yxyx")
    with pytest.raises(ValueError, match="boxes"):
        cvkit.box_area(boxes[:, :3])
    with pytest.raises(ValueError, match="in_fmt"):
        cvkit.box_convert(boxes, "xyx", "xyxy")
    with pytest.raises(ValueError, match="out_fmt"):
        cvkit.box_convert(boxes, "xyxy", "xywhr")
    with pytest.raises(ValueError, match="boxes"):
        cvkit.box_convert(boxes[:, :3], "xyxy", "xywh")
    with pytest.raises(TypeError, match="boxes"):
        cvkit.box_area(boxes.bool())
    with pytest.raises(ValueError, match="size"):
        cvkit.clip_boxes_to_image(boxes, (1, 2, 3))
    with pytest.raises(ValueError, match="boxes"):
        cvkit.remove_small_boxes(boxes[:, :3], 1.0)


@pytest.mark.parametrize("fn", [cvkit.box_iou, cvkit.generalized_box_iou])
def test_order_check_in_small_integer_types(fn):
    """Regression (fixed in a6b117a): the order check subtracted x2 - x1 in the boxes' own dtype."""
    ok = torch.tensor([[0, 0, 2, 2]], dtype=torch.uint8)
    flipped = torch.tensor([[2, 0, 0, 2]], dtype=torch.uint8)           # x2 < x1; 0 - 2 wraps to 254 in uint8
    with pytest.raises(ValueError, match="boxes1"):
        fn(flipped, ok)                                                  # was accepted, box_iou returned -1
    # a valid int8 box (x2 >= x1) whose width 200 does not fit in int8 was rejected as unordered. It is not
    # invalid, so no error. (torchvision accepts it but its intersection also overflows in int8: box_iou = 0 and
    # generalized_box_iou = inf for this box with itself, so there is no right value to compare with.)
    wide = torch.tensor([[-100, 0, 100, 1]], dtype=torch.int8)
    fn(wide, wide)


@pytest.mark.parametrize("device", DEVICES)
def test_bad_input_box_coder_and_smooth_l1(device):
    boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]], device=device)
    with pytest.raises(ValueError, match="reference_boxes and proposals"):
        cvkit.encode_boxes(boxes, boxes[:1], (1.0, 1.0, 1.0, 1.0))
    with pytest.raises(TypeError, match="reference_boxes"):
        cvkit.encode_boxes(boxes.long(), boxes, (1.0, 1.0, 1.0, 1.0))
    with pytest.raises(TypeError, match="proposals"):
        cvkit.encode_boxes(boxes, boxes.long(), (1.0, 1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="proposals"):
        cvkit.encode_boxes(boxes, boxes[:, :3], (1.0, 1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="rel_codes"):
        cvkit.decode_boxes(torch.zeros(2, 5, device=device), boxes, (1.0, 1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="rel_codes"):
        cvkit.decode_boxes(torch.zeros(3, 4, device=device), boxes, (1.0, 1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="weights"):
        cvkit.BoxCoder((1.0, 1.0, 1.0))
    with pytest.raises(TypeError, match="boxes"):
        cvkit.BoxCoder((1.0, 1.0, 1.0, 1.0)).decode(torch.zeros(2, 4, device=device), boxes)
    x = torch.zeros(3, device=device)
    with pytest.raises(ValueError, match="reduction"):
        cvkit.smooth_l1_loss(x, x, reduction="avg")
    with pytest.raises(ValueError, match="beta"):
        cvkit.smooth_l1_loss(x, x, beta=-0.5)
    with pytest.raises(ValueError, match="target"):
        cvkit.smooth_l1_loss(x, x[:2])
    with pytest.raises(TypeError, match="input"):
        cvkit.smooth_l1_loss(x.tolist(), x)
