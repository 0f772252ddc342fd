"""cvkit.nms against its oracles: torchvision.ops.nms / batched_nms (indices compared exactly), a per-class
loop of torchvision.ops.nms (the definition of batched NMS), hand-computed cases (arithmetic in the comments),
an independent plain-Python Soft-NMS written from the paper, and invariants (hypothesis).

torchvision's CPU kernel is the oracle on every device: it sorts scores with a stable descending sort, so ties
are broken by the lower index, and compares each float IoU with the threshold in double precision. Its CUDA
kernel orders ties differently, so cvkit on CUDA is compared with torchvision on CPU.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision.ops as tv
from hypothesis import given, settings
from hypothesis import strategies as st

import cvkit
from cvkit import batched_nms, nms, nms_reference, soft_nms

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
PROPERTY = settings(max_examples=80, deadline=None)


def tv_nms(boxes, scores, iou_threshold):
    """The oracle: torchvision's CPU kernel."""
    return tv.nms(boxes.cpu(), scores.cpu(), iou_threshold)


def assert_keep(actual, expected, device):
    assert actual.dtype == torch.int64
    assert actual.device.type == torch.device(device).type
    assert actual.dim() == 1
    assert torch.equal(actual.cpu(), expected.cpu()), f"kept {actual.tolist()}, expected {expected.tolist()}"


def uniform_boxes(n, seed, dtype=torch.float32, device="cpu", lo=0.0, span=1000.0, max_size=100.0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * span + lo
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * max_size + 1
    scores = torch.rand(n, generator=g, dtype=torch.float64)
    return torch.cat((xy, xy + wh), 1).to(dtype).to(device), scores.to(dtype).to(device)


def clustered_boxes(n, seed, clusters=10, dtype=torch.float32, device="cpu", lo=0.0):
    """Boxes jittered around a few objects: heavy overlap, long suppression lists, as a detector outputs."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(clusters, 2, generator=g, dtype=torch.float64) * 500 + lo
    members = torch.randint(0, clusters, (n,), generator=g)
    ctr = centres[members] + torch.randn(n, 2, generator=g, dtype=torch.float64) * 8
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * 40 + 10
    scores = torch.rand(n, generator=g, dtype=torch.float64)
    return torch.cat((ctr - wh / 2, ctr + wh / 2), 1).to(dtype).to(device), scores.to(dtype).to(device)


def chain_boxes(n, device="cpu", dtype=torch.float32):
    """Box i = (2i, 0, 2i + 3, 1): it overlaps box i+1 on [2i+2, 2i+3] (IoU 1 / (3 + 3 - 1) = 0.2) and no other."""
    x = torch.arange(n, dtype=dtype) * 2
    boxes = torch.stack((x, torch.zeros(n, dtype=dtype), x + 3, torch.ones(n, dtype=dtype)), 1)
    return boxes.to(device)


# --------------------------------------------------------------------------------------------------
# nms: hand-computed cases


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fn", [nms, nms_reference])
def test_nms_hand_computed(device, fn):
    boxes = torch.tensor([
        [0.0, 0.0, 10.0, 10.0],    # 0: score 0.9, kept
        [1.0, 0.0, 11.0, 10.0],    # 1: IoU with 0 = 90 / (100 + 100 - 90) = 0.818 > 0.5: suppressed
        [5.0, 0.0, 15.0, 10.0],    # 2: IoU with 0 = 50 / 150 = 1/3: kept (box 1, which overlaps it more, is gone)
        [20.0, 20.0, 30.0, 30.0],  # 3: disjoint: kept
    ], device=device)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95], device=device)
    assert_keep(fn(boxes, scores, 0.5), torch.tensor([3, 0, 2]), device)
    # threshold 0.3: 1/3 > 0.3, box 2 goes too
    assert_keep(fn(boxes, scores, 0.3), torch.tensor([3, 0]), device)
    # raise box 1 above box 0: 1 is kept and suppresses 0 (0.818) and 2 (IoU(1, 2) = 60 / 140 = 0.43 <= 0.5: kept)
    scores = torch.tensor([0.8, 0.9, 0.7, 0.95], device=device)
    assert_keep(fn(boxes, scores, 0.5), torch.tensor([3, 1, 2]), device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("fn", [nms, nms_reference])
def test_nms_iou_exactly_at_threshold(device, dtype, fn):
    """A box whose IoU equals the threshold is kept (the rule is IoU > threshold), where "equal" is decided as
    torchvision does: the IoU computed in the boxes' dtype, compared with the threshold as a double."""
    def run(boxes, threshold):
        b = torch.tensor(boxes, dtype=dtype, device=device)
        s = torch.tensor([0.9, 0.8], dtype=dtype, device=device)
        keep = fn(b, s, threshold)
        assert_keep(keep, tv_nms(b, s, threshold), device)
        return keep.tolist()

    # (0,0,2,1) and (0,0,1,1): inter 1, union 2 + 1 - 1 = 2, IoU 1/2 exactly in binary
    assert run([[0, 0, 2, 1], [0, 0, 1, 1]], 0.5) == [0, 1]
    assert run([[0, 0, 2, 1], [0, 0, 1, 1]], 0.4999) == [0]
    # (0,0,10,1) and (0,0,7,1): IoU 7/10. In float32 7/10 rounds to 0.699999988 < 0.7 (double), so both are kept
    # by torchvision; in float64 7/10 is the double nearest 0.7, equal to the threshold: kept too.
    assert run([[0, 0, 10, 1], [0, 0, 7, 1]], 0.7) == [0, 1]
    # (0,0,10,1) and (0,0,3,1): IoU 3/10. float32(0.3) = 0.300000012 > 0.3, so in float32 the IoU exceeds the
    # (double) threshold 0.3 and the box is suppressed; in float64 3/10 == 0.3 and it is kept.
    assert run([[0, 0, 10, 1], [0, 0, 3, 1]], 0.3) == ([0] if dtype == torch.float32 else [0, 1])
    # same with 1/10: float32(0.1) = 0.100000001 > 0.1
    assert run([[0, 0, 10, 1], [0, 0, 1, 1]], 0.1) == ([0] if dtype == torch.float32 else [0, 1])
    # and with the threshold given as the float32 value itself, IoU == threshold again: kept
    assert run([[0, 0, 10, 1], [0, 0, 3, 1]], float(np.float32(0.3))) == [0, 1]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", [5, 128, 129, 257, 1000])
def test_nms_long_suppression_chain(device, n):
    """Each box overlaps only the next, scores decreasing: greedy keeps 0, 2, 4, ... (1 is suppressed by 0, so 2
    survives, which suppresses 3, ...). Every decision depends on the previous one, across block boundaries."""
    boxes = chain_boxes(n, device)
    scores = torch.linspace(1, 0.1, n, device=device)
    assert_keep(nms(boxes, scores, 0.1), torch.arange(0, n, 2), device)
    assert_keep(nms(boxes, scores, 0.1), tv_nms(boxes, scores, 0.1), device)
    # reversed scores: the chain starts from the last box
    assert_keep(nms(boxes, scores.flip(0), 0.1), torch.arange(n - 1, -1, -2), device)
    # threshold 0.2: IoU 1/5 in float32 is 0.2f = 0.200000003 > 0.2 (double): still suppressed
    assert_keep(nms(boxes, scores, 0.2), torch.arange(0, n, 2), device)
    assert_keep(nms(boxes, scores, 0.2), tv_nms(boxes, scores, 0.2), device)
    assert_keep(nms(boxes, scores, 0.25), torch.arange(n), device)
    if n <= 257:
        assert_keep(nms_reference(boxes, scores, 0.1), torch.arange(0, n, 2), device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", [128, 300])
def test_nms_long_suppression_chain_across_blocks(device, n):
    """The chain after one isolated top box: in score order the suppressed boxes have even ranks, so a kept box
    ends each block of 128 and suppresses the first box of the next block."""
    boxes = torch.cat((torch.tensor([[-100.0, -100.0, -90.0, -90.0]]), chain_boxes(n))).to(device)
    scores = torch.linspace(1, 0.1, n + 1, device=device)
    expected = torch.cat((torch.tensor([0]), torch.arange(1, n + 1, 2)))   # the isolated box, chain 0, 2, ...
    for t in (0.1, 0.2):       # IoU 1/5 in float32 is 0.200000003 > 0.2: suppressed at 0.2 as well
        assert_keep(nms(boxes, scores, t), tv_nms(boxes, scores, t), device)
        assert_keep(nms(boxes, scores, t), expected, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nms_iou_at_threshold_across_blocks(device, dtype):
    """300 far-apart pairs (0,0,10,1) + (0,0,3,1), IoU 3/10; the 300 big boxes score above all small ones, so
    every suppression crosses from one block of 128 to a later one."""
    x = torch.arange(300, dtype=torch.float64) * 20
    zeros, ones = torch.zeros(300, dtype=torch.float64), torch.ones(300, dtype=torch.float64)
    big = torch.stack((x, zeros, x + 10, ones), 1)
    small = torch.stack((x, zeros, x + 3, ones), 1)
    boxes = torch.cat((big, small)).to(dtype).to(device)
    scores = torch.linspace(1, 0, 600, dtype=dtype, device=device)
    # float32: 3/10 -> 0.300000012 > 0.3, all small boxes go; exactly at float32(0.3) or in float64: all kept
    assert_keep(nms(boxes, scores, 0.3), torch.arange(300) if dtype == torch.float32 else torch.arange(600), device)
    assert_keep(nms(boxes, scores, float(np.float32(0.3))), torch.arange(600), device)
    assert_keep(nms(boxes, scores, 0.29), torch.arange(300), device)
    for t in (0.3, float(np.float32(0.3)), 0.29):
        assert_keep(nms(boxes, scores, t), tv_nms(boxes, scores, t), device)
    idxs = torch.zeros(600, dtype=torch.int64, device=device)
    assert_keep(batched_nms(boxes, scores, idxs, 0.29), torch.arange(300), device)


# --------------------------------------------------------------------------------------------------
# nms: equivalence with torchvision on random and adversarial inputs


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["uniform", "clustered"])
@pytest.mark.parametrize("n", [0, 1, 2, 7, 127, 128, 129, 255, 256, 257, 300, 600])
def test_nms_and_reference_equal_torchvision(device, kind, n):
    make = uniform_boxes if kind == "uniform" else clustered_boxes
    for seed in (0, 1):
        boxes, scores = make(n, seed + 10 * n, device=device)
        for t in (0.0, 0.3, 0.5, 0.7, 0.9) if n < 128 else (0.3, 0.7):
            expected = tv_nms(boxes, scores, t)
            assert_keep(nms(boxes, scores, t), expected, device)
            if seed == 0 or n <= 300:      # the plain loop is slow: fewer runs on the larger inputs
                assert_keep(nms_reference(boxes, scores, t), expected, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["uniform", "clustered"])
@pytest.mark.parametrize("n", [1500, 3000])
def test_nms_equal_torchvision_large(device, kind, n):
    make = uniform_boxes if kind == "uniform" else clustered_boxes
    boxes, scores = make(n, n, device=device)
    assert_keep(nms(boxes, scores, 0.5), tv_nms(boxes, scores, 0.5), device)


@pytest.mark.parametrize("device", DEVICES)
def test_nms_ten_thousand_clustered_boxes(device):
    boxes, scores = clustered_boxes(10_000, 7, clusters=30, device=device)
    keep = nms(boxes, scores, 0.5)
    assert 100 < len(keep) < 9000          # the input really has suppressions and survivors
    assert_keep(keep, tv_nms(boxes, scores, 0.5), device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [50, 300, 2000])
def test_nms_score_ties(device, dtype, n):
    """Ties are ordered by the lower index first (torchvision CPU's stable descending sort)."""
    boxes, _ = clustered_boxes(n, 3, clusters=4 if n < 1000 else 20, dtype=dtype, device=device)
    g = torch.Generator().manual_seed(n)
    for scores in (torch.randint(0, 4, (n,), generator=g).to(dtype) / 4,     # a small set of values
                   torch.ones(n, dtype=dtype),                                # all equal
                   torch.zeros(n, dtype=dtype)):
        scores = scores.to(device)
        for t in (0.3, 0.5):
            expected = tv_nms(boxes, scores, t)
            assert_keep(nms(boxes, scores, t), expected, device)
            if n <= 300:
                assert_keep(nms_reference(boxes, scores, t), expected, device)
    # all scores equal, no suppression: the identity order
    scores = torch.full((n,), 0.5, dtype=dtype, device=device)
    assert_keep(nms(boxes, scores, 1.0), torch.arange(n), device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("fn", [nms, nms_reference])
def test_nms_degenerate_boxes_and_extreme_thresholds(device, dtype, fn):
    base, scores = clustered_boxes(150, 5, clusters=3, dtype=dtype, device=device)
    boxes = torch.cat((base, base[:20],                                   # identical copies
                       torch.tensor([[5.0, 5.0, 5.0, 5.0], [5.0, 5.0, 5.0, 5.0],   # the same point twice
                                     [0.0, 3.0, 0.0, 9.0],                 # a zero-width line
                                     [-30.0, -20.0, -10.0, -5.0],          # negative coordinates
                                     [-10.0, -5.0, 10.0, 5.0]], dtype=dtype, device=device)))
    scores = torch.cat((scores, scores[:20] * 0.5, torch.tensor([0.3, 0.2, 0.1, 0.05, 0.01], dtype=dtype,
                                                                 device=device)))
    for t in (-0.5, 0.0, 1e-7, 0.1, 0.5, 0.7, 1.0, 1.5):
        assert_keep(fn(boxes, scores, t), tv_nms(boxes, scores, t), device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fn", [nms, nms_reference])
def test_nms_thresholds_zero_one_negative_hand_computed(device, fn):
    boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0],
                          [1.0, 1.0, 3.0, 3.0],      # IoU 1/7 with box 0
                          [0.0, 0.0, 2.0, 2.0],      # identical to box 0: IoU 1
                          [2.0, 0.0, 4.0, 2.0],      # touches box 0: IoU 0; IoU with 1 = 1 / (4 + 4 - 1) = 1/7
                          [9.0, 9.0, 9.0, 9.0],      # a point: IoU 0 with the others
                          [9.0, 9.0, 9.0, 9.0]],     # the same point: IoU 0/0 = NaN, never suppressed
                         device=device)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], device=device)
    # threshold 1: IoU > 1 never happens, everything is kept in score order
    assert_keep(fn(boxes, scores, 1.0), torch.arange(6), device)
    # threshold 0: any overlap suppresses: 0 removes 1 (1/7) and 2 (1); 3 touches 0 (IoU 0) and its only
    # overlapping neighbour, 1, is gone: kept. The points have IoU 0 with everything, NaN between themselves.
    assert_keep(fn(boxes, scores, 0.0), torch.tensor([0, 3, 4, 5]), device)
    # threshold -0.5: IoU 0 > -0.5, box 0 suppresses every box with a defined IoU with it, which is all
    assert_keep(fn(boxes, scores, -0.5), torch.tensor([0]), device)
    # threshold 0.5: only the identical copy goes
    assert_keep(fn(boxes, scores, 0.5), torch.tensor([0, 1, 3, 4, 5]), device)
    for t in (1.0, 0.0, -0.5, 0.5):
        assert_keep(fn(boxes, scores, t), tv_nms(boxes, scores, t), device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fn", [nms, nms_reference, batched_nms])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nms_empty_input(device, fn, dtype):
    boxes = torch.zeros(0, 4, dtype=dtype, device=device)
    scores = torch.zeros(0, dtype=dtype, device=device)
    args = (torch.zeros(0, dtype=torch.int64, device=device),) if fn is batched_nms else ()
    keep = fn(boxes, scores, *args, 0.5)
    assert keep.shape == (0,)
    assert_keep(keep, tv.nms(boxes.cpu(), scores.cpu(), 0.5), device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", [20, 300, 2000])
def test_nms_float64(device, n):
    boxes, scores = clustered_boxes(n, 11, dtype=torch.float64, device=device)
    for t in (0.3, 0.5, 0.7):
        assert_keep(nms(boxes, scores, t), tv_nms(boxes, scores, t), device)
        if n <= 300:
            assert_keep(nms_reference(boxes, scores, t), tv_nms(boxes, scores, t), device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_nms_half_precision_is_nms_of_the_float32_values(device, dtype):
    """torchvision's CPU kernel refuses float16/bfloat16; cvkit computes in float32, i.e. torchvision's nms of the
    same values upcast."""
    boxes, scores = clustered_boxes(300, 4, device=device)
    boxes, scores = boxes.to(dtype), scores.to(dtype)
    for t in (0.3, 0.5):
        expected = tv_nms(boxes.float(), scores.float(), t)
        assert_keep(nms(boxes, scores, t), expected, device)
        assert_keep(nms_reference(boxes, scores, t), expected, device)


@pytest.mark.parametrize("dtype, rows", [
    # bfloat16 (8 significant bits): areas 17 * 17 = 289 -> 288 and 17 * 8.5 = 144.5 -> 144; inter 144.5;
    # float32 IoU 144.5 / (289 + 144.5 - 144.5) = 0.5 exactly (kept), with the rounded areas 144.5 / 287.5 > 0.5
    (torch.bfloat16, [[0.0, 0.0, 17.0, 17.0], [0.0, 0.0, 17.0, 8.5]]),
    # float16 (11 bits): 65 * 65 = 4225 -> 4224, 65 * 32.5 = 2112.5 -> 2112; IoU 2112.5 / 4223.5 > 0.5
    (torch.float16, [[0.0, 0.0, 65.0, 65.0], [0.0, 0.0, 65.0, 32.5]]),
])
@pytest.mark.parametrize("device", DEVICES)
def test_nms_reference_half_precision_areas(device, dtype, rows):
    """Regression (fixed in a6b117a): nms_reference computed the areas in half precision, unlike nms."""
    boxes = torch.tensor(rows, dtype=dtype, device=device)
    scores = torch.tensor([0.9, 0.8], dtype=dtype, device=device)
    assert tv_nms(boxes.float(), scores.float(), 0.5).tolist() == [0, 1]
    assert_keep(nms(boxes, scores, 0.5), torch.tensor([0, 1]), device)
    assert_keep(nms_reference(boxes, scores, 0.5), torch.tensor([0, 1]), device)


@pytest.mark.parametrize("device", DEVICES)
def test_nms_non_contiguous_inputs(device):
    boxes, scores = clustered_boxes(600, 9, device=device)
    strided_boxes, strided_scores = boxes[::2], scores[::2]            # views with strides
    transposed = boxes.t().contiguous().t()                            # column-major
    assert not strided_boxes.is_contiguous() and not transposed.is_contiguous()
    assert_keep(nms(strided_boxes, strided_scores, 0.5), tv_nms(strided_boxes.contiguous(),
                                                                strided_scores.contiguous(), 0.5), device)
    assert_keep(nms(transposed, scores, 0.5), tv_nms(boxes, scores, 0.5), device)


# --------------------------------------------------------------------------------------------------
# batched_nms


def per_class_nms(boxes, scores, idxs, iou_threshold):
    """The definition: torchvision.ops.nms on each class separately, merged by decreasing score (ties: lower
    index first, as a stable sort)."""
    boxes, scores, idxs = boxes.cpu(), scores.cpu(), idxs.cpu()
    kept = []
    for c in torch.unique(idxs):
        members = torch.where(idxs == c)[0]
        kept += members[tv.nms(boxes[members], scores[members], iou_threshold)].tolist()
    kept.sort(key=lambda i: (-float(scores[i]), i))
    return torch.tensor(kept, dtype=torch.int64)


def distinct_scores(n, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randperm(n, generator=g).to(torch.float64) / n + 0.5 / n).to(dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", [1, 50, 700, 999, 1001, 2500])   # torchvision: offset trick up to 1000 boxes on CPU
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_batched_nms_equal_torchvision(device, n, dtype):
    for seed, classes in ((0, 3), (1, 20)):
        boxes, _ = clustered_boxes(n, seed + n, clusters=8, dtype=dtype, device=device)
        boxes = boxes.clamp(min=0)                              # positive coordinates: the offset trick holds
        scores = distinct_scores(n, seed, dtype).to(device)
        idxs = torch.randint(0, classes, (n,), generator=torch.Generator().manual_seed(seed)).to(device)
        for t in (0.3, 0.5):
            expected = tv.batched_nms(boxes.cpu(), scores.cpu(), idxs.cpu(), t)
            assert_keep(batched_nms(boxes, scores, idxs, t), expected, device)
            assert_keep(batched_nms(boxes, scores, idxs, t), per_class_nms(boxes, scores, idxs, t), device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", [60, 600, 1500])
def test_batched_nms_equal_per_class_loop_negative_coordinates_and_ties(device, n):
    boxes, scores = clustered_boxes(n, n, clusters=6, device=device, lo=-400.0)   # mostly negative corners
    idxs = torch.randint(-2, 4, (n,), generator=torch.Generator().manual_seed(n)).to(device)   # negative ids too
    for t in (0.0, 0.3, 0.5, 0.7):
        assert_keep(batched_nms(boxes, scores, idxs, t), per_class_nms(boxes, scores, idxs, t), device)
    tied = (torch.randint(0, 3, (n,), generator=torch.Generator().manual_seed(1)).float() / 3).to(device)
    assert_keep(batched_nms(boxes, tied, idxs, 0.5), per_class_nms(boxes, tied, idxs, 0.5), device)
    for dtype in (torch.int32, torch.int16, torch.uint8):                # other integer category dtypes
        small = (idxs + 2).to(dtype)
        assert_keep(batched_nms(boxes, scores, small, 0.5), per_class_nms(boxes, scores, small, 0.5), device)
    # one class for all: plain nms
    same = torch.zeros(n, dtype=torch.int64, device=device)
    assert_keep(batched_nms(boxes, scores, same, 0.5), tv_nms(boxes, scores, 0.5), device)
    # a class per box: nothing is suppressed
    assert_keep(batched_nms(boxes, scores, torch.arange(n, device=device), 0.5),
                torch.argsort(scores.cpu(), descending=True, stable=True), device)


@pytest.mark.parametrize("device", DEVICES)
def test_batched_nms_where_torchvision_offset_trick_is_wrong(device):
    """Documents two inputs on which torchvision.ops.batched_nms (coordinate-offset path, N <= 1000 on CPU)
    differs from its own definition, per-class NMS; cvkit follows the definition. If torchvision fixes these,
    the `tv.batched_nms` lines here fail and can be dropped."""
    # 1. Negative coordinates: max coordinate -1 makes the offset idxs * (max + 1) zero, so two identical boxes
    #    of different classes suppress each other.
    boxes = torch.tensor([[-4.0, -4.0, -1.0, -1.0], [-4.0, -4.0, -1.0, -1.0]], device=device)
    scores = torch.tensor([0.9, 0.8], device=device)
    idxs = torch.tensor([0, 1], device=device)
    assert tv.batched_nms(boxes.cpu(), scores.cpu(), idxs.cpu(), 0.5).tolist() == [0]      # torchvision: wrong
    assert_keep(per_class_nms(boxes, scores, idxs, 0.5), torch.tensor([0, 1]), "cpu")
    assert_keep(batched_nms(boxes, scores, idxs, 0.5), torch.tensor([0, 1]), device)
    # 2. Precision: one huge box makes the class offset 1e8 + 1, where float32 steps by 8; the two identical
    #    small boxes of class 1 collapse to zero area (IoU 0/0 = NaN) and no longer suppress each other.
    boxes = torch.tensor([[0.0, 0.0, 1e8, 1e8], [0.25, 0.25, 1.5, 1.5], [0.25, 0.25, 1.5, 1.5]], device=device)
    scores = torch.tensor([0.9, 0.8, 0.7], device=device)
    idxs = torch.tensor([0, 1, 1], device=device)
    assert tv.batched_nms(boxes.cpu(), scores.cpu(), idxs.cpu(), 0.5).tolist() == [0, 1, 2]   # wrong
    assert_keep(per_class_nms(boxes, scores, idxs, 0.5), torch.tensor([0, 1]), "cpu")
    assert_keep(batched_nms(boxes, scores, idxs, 0.5), torch.tensor([0, 1]), device)


# --------------------------------------------------------------------------------------------------
# soft_nms


def iou_py(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def soft_nms_oracle(boxes, scores, iou_threshold, sigma, score_threshold, method):
    """Bodla et al. 2017, Algorithm 1, in plain Python floats (double precision)."""
    boxes, s = boxes.tolist(), scores.tolist()
    alive = [i for i in range(len(s)) if s[i] >= score_threshold]
    keep, kept = [], []
    while alive:
        m = max(alive, key=lambda i: (s[i], -i))       # highest score, lower index first
        keep.append(m)
        kept.append(s[m])
        alive.remove(m)
        for i in alive:
            o = iou_py(boxes[m], boxes[i])
            if method == "linear":
                s[i] *= (1 - o) if o >= iou_threshold else 1.0
            else:
                s[i] *= math.exp(-o * o / sigma)
        alive = [i for i in alive if s[i] >= score_threshold]
    return keep, kept


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_soft_nms_hand_computed(device, dtype):
    tol = dict(rtol=1e-6, atol=1e-7) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-14)

    def run(boxes, scores, **kw):
        keep, new = soft_nms(torch.tensor(boxes, dtype=dtype, device=device),
                             torch.tensor(scores, dtype=dtype, device=device), **kw)
        assert keep.dtype == torch.int64 and new.dtype == dtype and new.device.type == torch.device(device).type
        return keep.tolist(), new.cpu()

    a, b, c = [0, 0, 2, 2], [1, 0, 3, 2], [10, 10, 11, 11]   # IoU(a, b) = 2 / (4 + 4 - 2) = 1/3, c disjoint
    # linear, N_t = 0.3: 1/3 >= 0.3 so b decays to 0.7 (1 - 1/3) = 0.4667 < 0.5, c (IoU 0) stays 0.5
    keep, new = run([a, b, c], [0.9, 0.7, 0.5], iou_threshold=0.3, method="linear")
    assert keep == [0, 2, 1]
    torch.testing.assert_close(new, torch.tensor([0.9, 0.5, 0.7 * 2 / 3], dtype=dtype), **tol)
    # linear, N_t = 0.5: 1/3 < 0.5, nothing decays
    keep, new = run([a, b, c], [0.9, 0.7, 0.5], iou_threshold=0.5, method="linear")
    assert keep == [0, 1, 2]
    torch.testing.assert_close(new, torch.tensor([0.9, 0.7, 0.5], dtype=dtype), **tol)
    # gaussian, sigma 0.5: b decays to 0.7 exp(-(1/9) / 0.5) = 0.7 exp(-2/9) = 0.5605 > 0.5
    keep, new = run([a, b, c], [0.9, 0.7, 0.5], sigma=0.5, method="gaussian")
    assert keep == [0, 1, 2]
    torch.testing.assert_close(new, torch.tensor([0.9, 0.7 * math.exp(-2 / 9), 0.5], dtype=dtype), **tol)
    # a chain a - b - d, d = (2, 0, 4, 2): IoU(a, d) = 0 (they touch), IoU(b, d) = 1/3. gaussian, sigma 0.5:
    # after a: b = 0.8 exp(-2/9) = 0.6406 < d = 0.7, so d is next; it decays b again: 0.8 exp(-4/9) = 0.5130
    d = [2, 0, 4, 2]
    keep, new = run([a, b, d], [0.9, 0.8, 0.7], sigma=0.5, method="gaussian")
    assert keep == [0, 2, 1]
    torch.testing.assert_close(new, torch.tensor([0.9, 0.7, 0.8 * math.exp(-4 / 9)], dtype=dtype), **tol)
    # linear rule at IoU == N_t exactly (paper eq. 2: decay when IoU >= N_t): (0,0,2,1), (0,0,1,1) have IoU 1/2
    keep, new = run([[0, 0, 2, 1], [0, 0, 1, 1]], [0.9, 0.8], iou_threshold=0.5, method="linear")
    assert keep == [0, 1]
    torch.testing.assert_close(new, torch.tensor([0.9, 0.4], dtype=dtype), **tol)
    # equal scores: the lower index is selected first
    keep, _ = run([c, a, b], [0.6, 0.6, 0.6], method="gaussian")
    assert keep[:2] == [0, 1]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_soft_nms_decay_hand_computed(device, dtype):
    iou = torch.tensor([0.0, 0.2, 0.5, 0.8, 1.0], dtype=dtype, device=device)
    # linear, N_t = 0.5: 1 below N_t, 1 - IoU from N_t on (eq. 2: IoU >= N_t)
    torch.testing.assert_close(cvkit.soft_nms_decay(iou, "linear", 0.5, 0.5).cpu(),
                               torch.tensor([1.0, 1.0, 0.5, 0.2, 0.0], dtype=dtype))
    # gaussian, sigma = 0.5: exp(-IoU^2 / 0.5), whatever N_t
    expected = torch.tensor([math.exp(-v * v / 0.5) for v in (0.0, 0.2, 0.5, 0.8, 1.0)], dtype=dtype)
    for n_t in (0.0, 0.5, 0.9):
        torch.testing.assert_close(cvkit.soft_nms_decay(iou, "gaussian", n_t, 0.5).cpu(), expected)


@pytest.mark.parametrize("device", DEVICES)
def test_soft_nms_score_threshold_removes_boxes(device):
    boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0], [10.0, 10.0, 11.0, 11.0]], device=device)
    scores = torch.tensor([0.9, 0.8, 0.0005], device=device)
    # box 2 starts below the default score_threshold 0.001: never selected.
    # linear: the identical box decays by 1 - IoU = 0 -> 0 < 0.001: removed
    keep, new = soft_nms(boxes, scores, method="linear")
    assert keep.tolist() == [0] and new.tolist() == [pytest.approx(0.9)]
    # gaussian, sigma 0.5: 0.8 exp(-1 / 0.5) = 0.8 e^-2 = 0.1083: kept above 0.1, removed above 0.2
    keep, new = soft_nms(boxes, scores, sigma=0.5, method="gaussian", score_threshold=0.1)
    assert keep.tolist() == [0, 1]
    torch.testing.assert_close(new.cpu(), torch.tensor([0.9, 0.8 * math.exp(-2)]))
    keep, _ = soft_nms(boxes, scores, sigma=0.5, method="gaussian", score_threshold=0.2)
    assert keep.tolist() == [0]
    keep, _ = soft_nms(boxes, scores, sigma=0.5, method="gaussian", score_threshold=0.0)
    assert keep.tolist() == [0, 1, 2]
    # a decayed score equal to score_threshold stays: (0,0,2,1), (0,0,1,1) have IoU 1/2, linear: 0.8 (1 - 1/2) = 0.4
    # (exact in binary, in float32 as well: halving 0.8f gives 0.4f)
    pair = torch.tensor([[0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 1.0, 1.0]], device=device)
    keep, new = soft_nms(pair, scores[:2], iou_threshold=0.5, method="linear", score_threshold=0.4)
    assert keep.tolist() == [0, 1] and new[1] == torch.tensor(0.4)
    keep, _ = soft_nms(pair, scores[:2], iou_threshold=0.5, method="linear", score_threshold=0.41)
    assert keep.tolist() == [0]
    keep, _ = soft_nms(pair, scores[:2], method="gaussian", score_threshold=float(scores[0]))   # 0.9 >= 0.9 kept
    assert keep.tolist() == [0]
    keep, new = soft_nms(boxes, scores, score_threshold=1.0)     # all below
    assert keep.shape == (0,) and keep.dtype == torch.int64 and new.shape == (0,) and new.dtype == scores.dtype


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_soft_nms_empty(device, dtype):
    keep, new = soft_nms(torch.zeros(0, 4, dtype=dtype, device=device), torch.zeros(0, dtype=dtype, device=device))
    assert keep.shape == new.shape == (0,)
    assert keep.dtype == torch.int64 and new.dtype == dtype
    assert keep.device.type == new.device.type == torch.device(device).type


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("method", ["linear", "gaussian"])
@pytest.mark.parametrize("n", [1, 40, 150])
def test_soft_nms_equal_plain_python_algorithm(device, method, n):
    boxes, scores = clustered_boxes(n, n, clusters=5, dtype=torch.float64, device=device)
    for iou_threshold, sigma, score_threshold in ((0.3, 0.5, 0.001), (0.5, 0.1, 0.05), (0.0, 2.0, 0.0)):
        keep, new = soft_nms(boxes, scores, iou_threshold, sigma, score_threshold, method)
        ref_keep, ref_new = soft_nms_oracle(boxes.cpu(), scores.cpu(), iou_threshold, sigma, score_threshold, method)
        assert keep.tolist() == ref_keep
        torch.testing.assert_close(new.cpu(), torch.tensor(ref_new, dtype=torch.float64))
        assert (new[1:] <= new[:-1]).all()                         # sorted by decreasing selected score
        assert (new <= scores[keep]).all() and (new >= score_threshold).all()
        assert len(set(keep.tolist())) == len(keep)


@pytest.mark.parametrize("device", DEVICES)
def test_soft_nms_gaussian_ignores_iou_threshold(device):
    boxes, scores = clustered_boxes(60, 2, clusters=3, device=device)
    k1, s1 = soft_nms(boxes, scores, iou_threshold=0.1, method="gaussian")
    k2, s2 = soft_nms(boxes, scores, iou_threshold=0.9, method="gaussian")
    assert torch.equal(k1, k2) and torch.equal(s1, s2)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_soft_nms_tiny_sigma_is_hard_nms_at_zero(device, dtype):
    """exp(-IoU^2 / sigma) -> 0 for any overlap as sigma -> 0: every overlapping box is dropped, as hard NMS at
    threshold 0. Integer corners in [0, 70] with sides >= 1 make any positive IoU >= 1/800, so
    IoU^2 / 1e-9 >= 1500 and the decayed score underflows to 0."""
    g = torch.Generator().manual_seed(8)
    corner = torch.randint(0, 50, (120, 2), generator=g)
    boxes = torch.cat((corner, corner + torch.randint(1, 20, (120, 2), generator=g)), 1).to(dtype).to(device)
    scores = distinct_scores(120, 8, dtype).to(device)
    keep, new = soft_nms(boxes, scores, sigma=1e-9, method="gaussian")
    assert_keep(keep, tv_nms(boxes, scores, 0.0), device)
    assert torch.equal(new, scores[keep])     # survivors never overlapped a selected box: decay exp(0) = 1
    assert 1 < len(keep) < 120


# --------------------------------------------------------------------------------------------------
# properties (hypothesis)


grid_box = st.tuples(st.integers(0, 12), st.integers(0, 12), st.integers(0, 6), st.integers(0, 6))
float_box = st.tuples(st.floats(0, 50, width=32), st.floats(0, 50, width=32),
                      st.floats(0, 20, width=32), st.floats(0, 20, width=32))


@st.composite
def nms_inputs(draw):
    n = draw(st.integers(0, 40))
    rows = draw(st.lists(st.one_of(grid_box, float_box) if draw(st.booleans()) else grid_box,
                         min_size=n, max_size=n))
    score_values = st.sampled_from([0.0, 0.25, 0.5, 1.0]) if draw(st.booleans()) else st.floats(0, 1, width=32)
    scores = draw(st.lists(score_values, min_size=n, max_size=n))
    threshold = draw(st.one_of(st.sampled_from([-0.1, 0.0, 0.1, 0.2, 0.25, 0.3, 0.5, 0.7, 0.9, 1.0]),
                               st.floats(0, 1)))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    xywh = torch.tensor(rows, dtype=torch.float64).reshape(-1, 4)
    boxes = torch.cat((xywh[:, :2], xywh[:, :2] + xywh[:, 2:]), 1).to(dtype)   # zero-area boxes included
    return boxes, torch.tensor(scores, dtype=dtype), threshold


@pytest.mark.parametrize("device", DEVICES)
@PROPERTY
@given(args=nms_inputs())
def test_property_nms(device, args):
    boxes, scores, t = args
    keep = nms(boxes.to(device), scores.to(device), t)
    assert_keep(keep, tv.nms(boxes, scores, t), device)
    assert_keep(nms_reference(boxes.to(device), scores.to(device), t), keep, device)
    keep = keep.cpu()
    kept = keep.tolist()
    assert len(set(kept)) == len(kept) and all(0 <= i < len(boxes) for i in kept)
    assert (scores[keep][1:] <= scores[keep][:-1]).all()                      # sorted by score
    assert_keep(nms(boxes[keep], scores[keep], t), torch.arange(len(keep)), "cpu")   # idempotent
    if len(boxes) == 0:
        return
    over = tv.box_iou(boxes, boxes).double() > t      # torchvision's float IoU, compared in double like its kernel
    assert not over[keep][:, keep].triu(1).any()      # no kept pair overlaps more than the threshold
    rank = torch.empty(len(boxes), dtype=torch.int64)
    rank[torch.sort(scores, descending=True, stable=True)[1]] = torch.arange(len(boxes))
    kept_mask = torch.zeros(len(boxes), dtype=torch.bool)
    kept_mask[keep] = True
    for j in torch.where(~kept_mask)[0].tolist():   # every suppressed box: by a kept box ranked before it
        assert (kept_mask & over[:, j] & (rank < rank[j])).any()


@PROPERTY
@given(nms_inputs(), st.integers(0, 3))
def test_property_batched_nms_is_per_class_nms(args, classes):
    boxes, scores, t = args
    idxs = (torch.arange(len(boxes)) * 7 % (classes + 1)) - 1
    assert_keep(batched_nms(boxes, scores, idxs, t), per_class_nms(boxes, scores, idxs, t), "cpu")


@settings(max_examples=40, deadline=None)
@given(nms_inputs(), st.sampled_from(["linear", "gaussian"]), st.floats(0.05, 2.0), st.floats(0, 0.5))
def test_property_soft_nms(args, method, sigma, score_threshold):
    boxes, scores, t = args
    keep, new = soft_nms(boxes, scores, t, sigma, score_threshold, method)
    kept = keep.tolist()
    assert len(set(kept)) == len(kept)
    assert (new[1:] <= new[:-1]).all()
    assert (new <= scores[keep]).all() and (new >= score_threshold).all()
    assert set(kept) <= set(torch.where(scores >= score_threshold)[0].tolist())
    if (scores >= score_threshold).any():      # the first pick is the best score (lower index among ties), undecayed
        best = int(torch.sort(scores, descending=True, stable=True)[1][0])
        assert kept[0] == best and new[0] == scores[best]
    else:
        assert not kept


# --------------------------------------------------------------------------------------------------
# bad input


NMS_FUNCTIONS = {
    "nms": lambda b, s, t=0.5: nms(b, s, t),
    "nms_reference": lambda b, s, t=0.5: nms_reference(b, s, t),
    "batched_nms": lambda b, s, t=0.5: batched_nms(b, s, torch.zeros(len(s), dtype=torch.int64,
                                                                       device=s.device), t),
    "soft_nms": lambda b, s, t=0.5: soft_nms(b, s, t),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(NMS_FUNCTIONS))
def test_bad_input_raises_naming_the_argument(device, name):
    fn = NMS_FUNCTIONS[name]
    boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]], device=device)
    scores = torch.tensor([0.9, 0.8], device=device)
    with pytest.raises(ValueError, match="boxes"):
        fn(boxes[:, :3], scores)                          # [N, 3]
    with pytest.raises(ValueError, match="boxes"):
        fn(boxes[0], scores[:1])                          # 1-D
    with pytest.raises(ValueError, match="scores"):
        fn(boxes, scores[:1])                             # lengths differ
    with pytest.raises(ValueError, match="scores"):
        fn(boxes, scores[:, None])
    with pytest.raises(TypeError, match="boxes"):
        fn(boxes.long(), scores.long())                   # integer boxes
    with pytest.raises(TypeError, match="scores"):
        fn(boxes, scores.double())                        # dtypes differ
    with pytest.raises(TypeError, match="boxes"):
        fn(boxes.tolist(), scores)
    with pytest.raises(TypeError, match="iou_threshold"):
        fn(boxes, scores, "0.5")
    with pytest.raises(TypeError, match="iou_threshold"):
        fn(boxes, scores, float("nan"))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(NMS_FUNCTIONS))
def test_nms_rejects_unordered_boxes(device, name):
    """x2 < x1 or y2 < y1 (or NaN) is an error naming the argument (DESIGN.md), though torchvision accepts it."""
    scores = torch.tensor([0.9, 0.8], device=device)
    for bad in ([2.0, 0.0, 0.0, 2.0], [0.0, 2.0, 2.0, 0.0], [0.0, 0.0, float("nan"), 2.0]):
        boxes = torch.tensor([[1.0, 1.0, 3.0, 3.0], bad], device=device)
        with pytest.raises(ValueError, match="boxes"):
            NMS_FUNCTIONS[name](boxes, scores)


@pytest.mark.parametrize("device", DEVICES)
def test_bad_input_batched_and_soft_nms(device):
    boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]], device=device)
    scores = torch.tensor([0.9, 0.8], device=device)
    for idxs in (torch.tensor([0.0, 1.0]), torch.tensor([True, False]), torch.tensor([0]),
                 torch.tensor([[0], [1]])):
        with pytest.raises(ValueError, match="idxs"):
            batched_nms(boxes, scores, idxs.to(device), 0.5)
    with pytest.raises(TypeError, match="idxs"):
        batched_nms(boxes, scores, [0, 1], 0.5)
    with pytest.raises(ValueError, match="method"):
        soft_nms(boxes, scores, method="hard")
    for sigma in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="sigma"):
            soft_nms(boxes, scores, sigma=sigma)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_mismatch_raises_naming_the_argument():
    boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]], device="cuda")
    scores = torch.tensor([0.9, 0.8], device="cuda")
    for fn in NMS_FUNCTIONS.values():
        with pytest.raises(ValueError, match="scores"):
            fn(boxes, scores.cpu())
    with pytest.raises(ValueError, match="idxs"):
        batched_nms(boxes, scores, torch.tensor([0, 1]), 0.5)
    with pytest.raises(ValueError, match="boxes1 and boxes2"):
        cvkit.box_iou(boxes, boxes.cpu())
    with pytest.raises(ValueError, match="boxes1 and boxes2"):
        cvkit.generalized_box_iou(boxes.cpu(), boxes)
