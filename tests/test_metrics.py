"""cvkit.metrics against hand-worked cases, the VOC devkit's algorithm (written out below) and pycocotools."""
from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from cvkit.metrics import (average_precision, coco_map, coco_metrics, match_detections_coco, match_detections_voc,
                           mean_average_precision, precision_recall_curve)

# --------------------------------------------------------------------------------------------
# Oracles


def devkit_voc_ap(rec: np.ndarray, prec: np.ndarray, use_07_metric: bool) -> float:
    """``voc_ap`` of the PASCAL VOC Python devkit (py-faster-rcnn ``voc_eval.py``), as written there.

    One change: the 11 recall points are k / 10. The devkit writes ``np.arange(0., 1.1, 0.1)``, whose
    fourth point is 0.30000000000000004, so that a recall of exactly 3/10 misses it; cvkit follows
    the definition (see test_voc2007_counts_a_recall_of_exactly_three_tenths).
    """
    if use_07_metric:
        ap = 0.0
        for t in [k / 10 for k in range(11)]:
            if np.sum(rec >= t) == 0:
                p = 0
            else:
                p = np.max(prec[rec >= t])
            ap = ap + p / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def cocoeval_101_point(rc: np.ndarray, pr: np.ndarray) -> float:
    """The precision sampling of ``COCOeval.accumulate`` for one curve, as written there, averaged."""
    rec_thrs = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
    pr = pr.tolist()
    q = [0.0] * len(rec_thrs)
    for i in range(len(pr) - 1, 0, -1):
        if pr[i] > pr[i - 1]:
            pr[i - 1] = pr[i]
    inds = np.searchsorted(rc, rec_thrs, side="left")
    try:
        for ri, pi in enumerate(inds):
            q[ri] = pr[pi]
    except IndexError:
        pass
    return float(np.mean(q))


def devkit_voc_eval(predictions, targets, label: int, ovthresh: float, ap: str) -> float:
    """``voc_eval`` of the VOC Python devkit for one class, on torchvision-style dicts.

    Differences from py-faster-rcnn, all to follow VOCevaldet.m or cvkit's conventions: a stable sort
    of the confidences (MATLAB's ``sort`` is stable), ``ovmax >= ovthresh`` as in VOCevaldet.m, and
    continuous box coordinates (no "+1" pixel).
    """
    class_recs, npos = {}, 0
    for i, t in enumerate(targets):
        mask = (t["labels"] == label).numpy()
        difficult = t["difficult"].numpy()[mask].astype(bool) if "difficult" in t else np.zeros(mask.sum(), bool)
        class_recs[i] = {"bbox": t["boxes"].double().numpy()[mask], "difficult": difficult,
                         "det": [False] * int(mask.sum())}
        npos += int((~difficult).sum())
    image_ids, confidence, BB = [], [], []
    for i, p in enumerate(predictions):
        mask = (p["labels"] == label).numpy()
        image_ids += [i] * int(mask.sum())
        confidence += p["scores"].double().numpy()[mask].tolist()
        BB += p["boxes"].double().numpy()[mask].tolist()
    confidence, BB = np.array(confidence), np.array(BB).reshape(-1, 4)
    sorted_ind = np.argsort(-confidence, kind="stable")
    BB = BB[sorted_ind, :]
    image_ids = [image_ids[x] for x in sorted_ind]
    nd = len(image_ids)
    tp, fp = np.zeros(nd), np.zeros(nd)
    for d in range(nd):
        R = class_recs[image_ids[d]]
        bb = BB[d, :]
        ovmax = -np.inf
        BBGT = R["bbox"]
        if BBGT.size > 0:
            ixmin = np.maximum(BBGT[:, 0], bb[0])
            iymin = np.maximum(BBGT[:, 1], bb[1])
            ixmax = np.minimum(BBGT[:, 2], bb[2])
            iymax = np.minimum(BBGT[:, 3], bb[3])
            iw = np.maximum(ixmax - ixmin, 0.0)
            ih = np.maximum(iymax - iymin, 0.0)
            inters = iw * ih
            uni = ((bb[2] - bb[0]) * (bb[3] - bb[1]) + (BBGT[:, 2] - BBGT[:, 0]) * (BBGT[:, 3] - BBGT[:, 1]) - inters)
            overlaps = inters / uni
            ovmax = np.max(overlaps)
            jmax = np.argmax(overlaps)
        if ovmax >= ovthresh:
            if not R["difficult"][jmax]:
                if not R["det"][jmax]:
                    tp[d] = 1.0
                    R["det"][jmax] = 1
                else:
                    fp[d] = 1.0
        else:
            fp[d] = 1.0
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    if ap == "coco":
        return cocoeval_101_point(rec, prec)
    return devkit_voc_ap(rec, prec, use_07_metric=(ap == "voc2007"))


def coco_ground_truth_and_results(predictions, targets):
    """pycocotools' COCO objects for torchvision-style dicts: image ids 1, 2, ..., annotation ids from 1
    (COCOeval reads an id of 0 as "no match"), boxes as xywh with w = x2 - x1 in float64."""
    images = [{"id": i + 1} for i in range(len(targets))]
    labels = sorted({int(c) for d in (*predictions, *targets) for c in d["labels"].tolist()})
    categories = [{"id": c} for c in labels]
    annotations = []
    for i, t in enumerate(targets):
        for j, ((x1, y1, x2, y2), label) in enumerate(zip(t["boxes"].double().tolist(), t["labels"].tolist())):
            w, h = x2 - x1, y2 - y1
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": label,
                                "bbox": [x1, y1, w, h], "area": float(t["area"][j]) if "area" in t else w * h,
                                "iscrowd": int(t["iscrowd"][j]) if "iscrowd" in t else 0})
    results = []
    for i, p in enumerate(predictions):
        for (x1, y1, x2, y2), score, label in zip(p["boxes"].double().tolist(), p["scores"].tolist(),
                                                  p["labels"].tolist()):
            results.append({"image_id": i + 1, "category_id": label, "bbox": [x1, y1, x2 - x1, y2 - y1],
                            "score": score})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": annotations, "categories": categories}
        gt.createIndex()
        if results:
            dt = gt.loadRes(results)
        else:   # loadRes reads results[0] and fails on an empty list: an empty result set by hand
            dt = COCO()
            dt.dataset = {"images": images, "annotations": [], "categories": categories}
            dt.createIndex()
    return gt, dt


def pycocotools_stats(predictions, targets) -> np.ndarray:
    gt, dt = coco_ground_truth_and_results(predictions, targets)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(gt, dt, iouType="bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


def assert_equals_pycocotools(predictions, targets) -> torch.Tensor:
    ours = coco_map(predictions, targets)
    expected = pycocotools_stats(predictions, targets)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=0, atol=1e-6)
    return ours


# --------------------------------------------------------------------------------------------
# Data


def random_detection_data(seed: int, num_images: int = 20, num_classes: int = 3, tied_scores: bool = False,
                          crowd: bool = True, with_area: bool = True):
    """Ground truth of all sizes (some crowd, some with an 'area' smaller than the box, as a
    segmentation's), detections that are jittered copies (duplicates, wrong classes) plus clutter."""
    g = torch.Generator().manual_seed(seed)
    predictions, targets = [], []
    for i in range(num_images):
        num_gt = int(torch.randint(0, 7, (1,), generator=g))
        xy = torch.rand(num_gt, 2, generator=g) * 400
        wh = torch.exp(torch.empty(num_gt, 2).uniform_(math.log(4), math.log(250), generator=g))
        gt_boxes = torch.cat([xy, xy + wh], 1)
        gt_labels = torch.randint(1, num_classes + 1, (num_gt,), generator=g)
        target = {"boxes": gt_boxes, "labels": gt_labels}
        if crowd:
            target["iscrowd"] = (torch.rand(num_gt, generator=g) < 0.1).long()
        if with_area and i % 2 == 0:
            target["area"] = wh.prod(1) * torch.empty(num_gt).uniform_(0.4, 1.0, generator=g)
        copies = torch.randint(0, 3, (num_gt,), generator=g)
        source = torch.repeat_interleave(torch.arange(num_gt), copies)
        size = wh[source].repeat(1, 2)
        jittered = gt_boxes[source] + torch.randn(len(source), 4, generator=g) * 0.12 * size
        labels = gt_labels[source].clone()
        relabel = torch.rand(len(source), generator=g) < 0.1
        labels[relabel] = torch.randint(1, num_classes + 1, (int(relabel.sum()),), generator=g)
        num_clutter = int(torch.randint(0, 5, (1,), generator=g))
        cxy = torch.rand(num_clutter, 2, generator=g) * 400
        cwh = torch.exp(torch.empty(num_clutter, 2).uniform_(math.log(4), math.log(250), generator=g))
        boxes = torch.cat([jittered, torch.cat([cxy, cxy + cwh], 1)])
        boxes = torch.cat([torch.minimum(boxes[:, :2], boxes[:, 2:]), torch.maximum(boxes[:, :2], boxes[:, 2:])], 1)
        labels = torch.cat([labels, torch.randint(1, num_classes + 1, (num_clutter,), generator=g)])
        scores = torch.rand(len(boxes), generator=g)
        if tied_scores:
            scores = (scores * 4).round() / 4       # five distinct values over the whole data set
        order = torch.randperm(len(boxes), generator=g)
        predictions.append({"boxes": boxes[order], "scores": scores[order], "labels": labels[order]})
        targets.append(target)
    return predictions, targets


def image(boxes, labels, scores=None, **extra):
    entry = {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
             "labels": torch.tensor(labels, dtype=torch.int64)}
    if scores is not None:
        entry["scores"] = torch.tensor(scores, dtype=torch.float32)
    entry.update({k: torch.tensor(v) for k, v in extra.items()})
    return entry


# --------------------------------------------------------------------------------------------
# Precision/recall and AP by hand
#
# Five detections, three ground-truth boxes; ranked by score they are TP, FP, TP, FP, TP:
#   k          1     2     3     4     5
#   TP(k)      1     1     2     2     3
#   precision  1     1/2   2/3   1/2   3/5
#   recall     1/3   1/3   2/3   2/3   1
# Envelope p_interp at each k (max precision from k on): 1, 2/3, 2/3, 3/5, 3/5.
# - VOC 2007, r = 0, .1, ..., 1: r <= 1/3 (0, .1, .2, .3: 4 points) -> 1; 1/3 < r <= 2/3 (.4, .5, .6:
#   3 points) -> 2/3; r > 2/3 (.7, .8, .9, 1: 4 points) -> 3/5.  AP = (4 + 2 + 2.4) / 11 = 8.4 / 11.
# - all points: 1/3 * 1 + 1/3 * 2/3 + 1/3 * 3/5 = 15/45 + 10/45 + 9/45 = 34/45.
# - COCO, r = 0, .01, ..., 1: r <= .33 (34 points) -> 1; .34 .. .66 (33 points) -> 2/3; .67 .. 1
#   (34 points) -> 3/5.  AP = (34 + 22 + 20.4) / 101 = 76.4 / 101.

FIVE_SCORES = [0.7, 0.9, 0.5, 0.6, 0.8]          # shuffled: ranks 3, 1, 5, 4, 2
FIVE_HITS = [True, True, True, False, False]     # rank 1 TP, 2 FP, 3 TP, 4 FP, 5 TP
HAND_AP = {"voc2007": 8.4 / 11, "voc2010": 34 / 45, "all_point": 34 / 45, "coco": 76.4 / 101}


def test_precision_recall_curve_by_hand():
    precision, recall = precision_recall_curve(torch.tensor(FIVE_SCORES), torch.tensor(FIVE_HITS), 3)
    assert precision.dtype == recall.dtype == torch.float64
    assert precision.tolist() == pytest.approx([1, 1 / 2, 2 / 3, 1 / 2, 3 / 5], abs=1e-15)
    assert recall.tolist() == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3, 1], abs=1e-15)


def test_precision_recall_curve_keeps_input_order_among_equal_scores():
    # scores 0.5, 0.9, 0.5 -> ranking 1, 0, 2 (stable): hits T, F, T
    precision, recall = precision_recall_curve(np.array([0.5, 0.9, 0.5]), np.array([0, 1, 1]), 2)
    assert precision.tolist() == pytest.approx([1, 1 / 2, 2 / 3], abs=1e-15)
    assert recall.tolist() == pytest.approx([1 / 2, 1 / 2, 1], abs=1e-15)
    precision, _ = precision_recall_curve(np.array([0.5, 0.9, 0.5]), np.array([1, 1, 0]), 2)
    assert precision.tolist() == pytest.approx([1, 1, 2 / 3], abs=1e-15)


@pytest.mark.parametrize("method", sorted(HAND_AP))
def test_average_precision_by_hand(method):
    precision, recall = precision_recall_curve(FIVE_SCORES, FIVE_HITS, 3)
    assert average_precision(precision, recall, method) == pytest.approx(HAND_AP[method], abs=1e-12)
    assert average_precision(precision.numpy(), recall.numpy(), method) == pytest.approx(HAND_AP[method], abs=1e-12)


@pytest.mark.parametrize("method, expected", [("voc2007", 4 / 11), ("voc2010", 1 / 3), ("coco", 34 / 101)])
def test_average_precision_when_recall_stops_short(method, expected):
    # 3 ground-truth boxes, detections T, F, F: recall reaches 1/3 at precision 1 and no further.
    precision, recall = precision_recall_curve([0.9, 0.8, 0.7], [1, 0, 0], 3)
    assert average_precision(precision, recall, method) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("method", ["voc2007", "voc2010", "all_point", "coco"])
def test_average_precision_of_no_detections_is_zero(method):
    assert average_precision(torch.zeros(0), torch.zeros(0), method) == 0.0


def test_voc2007_counts_a_recall_of_exactly_three_tenths():
    # 10 boxes, 3 found at precision 1 then nothing: recall 0.3 reaches r = 0, .1, .2, .3 -> AP 4/11.
    # (np.arange(0, 1.1, 0.1)[3] is 0.30000000000000004 > 0.3: the Python devkit would say 3/11.)
    precision, recall = precision_recall_curve([3.0, 2.0, 1.0], [1, 1, 1], 10)
    assert average_precision(precision, recall, "voc2007") == pytest.approx(4 / 11, abs=1e-15)


@pytest.mark.parametrize("seed", range(6))
def test_average_precision_equals_the_devkit_and_cocoeval_loops_on_random_curves(seed):
    rng = np.random.default_rng(seed)
    for _ in range(25):
        n = int(rng.integers(0, 40))
        hits = rng.random(n) < rng.random()
        npos = max(int(hits.sum()) + int(rng.integers(0, 12)), 1)
        if rng.random() < 0.3:
            npos = 10 * math.ceil(npos / 10)        # recalls k / 10 land on the 11 points
        tp = np.cumsum(hits)
        rec, prec = tp / npos, tp / np.arange(1, n + 1)       # an already-ranked curve
        assert average_precision(prec, rec, "voc2007") == pytest.approx(devkit_voc_ap(rec, prec, True), abs=1e-12)
        assert average_precision(prec, rec, "voc2010") == pytest.approx(devkit_voc_ap(rec, prec, False), abs=1e-12)
        assert average_precision(prec, rec, "coco") == pytest.approx(cocoeval_101_point(rec, prec), abs=1e-12)


# --------------------------------------------------------------------------------------------
# Matching and mAP


def test_voc_and_coco_matching_differ_when_the_best_box_is_taken():
    # g0 = [0,0,10,10], g1 = [2,0,12,10]. d0 sits on g0; d1 = [0.5,0,10.5,10] overlaps g0 by
    # 95/105 = 0.905 and g1 by 85/115 = 0.739.
    gt = torch.tensor([[0, 0, 10, 10], [2, 0, 12, 10]], dtype=torch.float32)
    boxes = torch.tensor([[0, 0, 10, 10], [0.5, 0, 10.5, 10]])
    scores = torch.tensor([0.9, 0.8])
    is_tp, is_ignored = match_detections_voc(boxes, scores, gt, 0.5)
    assert is_tp.tolist() == [True, False]        # VOC: d1's best box g0 is taken -> duplicate
    assert is_ignored.tolist() == [False, False]
    order, matches, ignored = match_detections_coco(boxes, scores, gt, iou_thresholds=[0.5, 0.75])
    assert order.tolist() == [0, 1]
    assert matches.tolist() == [[0, 1], [0, -1]]  # COCO: d1 takes the free g1 at 0.5; 0.739 < 0.75
    assert not ignored.any()


def test_voc_matching_difficult_and_threshold():
    gt = torch.tensor([[0, 0, 10, 10], [20, 20, 30, 30]], dtype=torch.float32)
    boxes = torch.tensor([[20, 20, 30, 30], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 4.9]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    is_tp, is_ignored = match_detections_voc(boxes, scores, gt, 0.5, gt_difficult=torch.tensor([False, True]))
    # on the difficult box -> ignored; first on g0 -> TP; second on g0 -> FP; IoU 0.49 -> FP
    assert is_tp.tolist() == [False, True, False, False]
    assert is_ignored.tolist() == [True, False, False, False]
    # exactly at the threshold counts (VOCevaldet.m: ovmax >= minoverlap)
    is_tp, _ = match_detections_voc(torch.tensor([[0, 0, 10, 5.0]]), torch.tensor([1.0]), gt[:1], 0.5)
    assert is_tp.tolist() == [True]


def test_coco_matching_ties_crowd_and_max_detections_agree_with_pycocotools():
    # d0 = [1,0,11,10] has IoU 90/110 with both g0 and g1: pycocotools keeps the *last* of equal IoUs.
    # d1, d2 lie inside the crowd box g2: |d ∩ g| / |d| = 1, matched and ignored, both of them.
    gt = image([[0, 0, 10, 10], [2, 0, 12, 10], [100, 100, 200, 200]], [1, 1, 1], iscrowd=[0, 0, 1])
    pred = image([[1, 0, 11, 10], [110, 110, 120, 120], [150, 150, 170, 160]], [1, 1, 1], [0.9, 0.8, 0.7])
    order, matches, ignored = match_detections_coco(pred["boxes"], pred["scores"], gt["boxes"],
                                                    gt_iscrowd=gt["iscrowd"])
    d0 = [1] * 7 + [-1] * 3                                 # 90/110 = 0.818: matched at 0.50 .. 0.80
    assert matches.T.tolist() == [d0, [2] * 10, [2] * 10]
    assert ignored.T.tolist() == [[False] * 10, [True] * 10, [True] * 10]
    order, matches, _ = match_detections_coco(pred["boxes"], pred["scores"], gt["boxes"], max_detections=2)
    assert order.tolist() == [0, 1] and matches.shape == (10, 2)

    cocogt, cocodt = coco_ground_truth_and_results([pred], [gt])
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(cocogt, cocodt, iouType="bbox")
        evaluator.evaluate()
    record = evaluator.evalImgs[0]                          # class 1, area 'all', image 1
    assert record["gtIds"] == [1, 2, 3]
    assert record["dtMatches"].T.tolist() == [[2] * 7 + [0] * 3, [3] * 10, [3] * 10]
    assert record["dtIgnore"].T.tolist() == [[False] * 10, [True] * 10, [True] * 10]


@pytest.mark.parametrize("seed", [0, 1])
def test_coco_matching_equals_cocoeval_evaluate_img(seed):
    predictions, targets = random_detection_data(seed, num_images=8)
    gt, dt = coco_ground_truth_and_results(predictions, targets)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(gt, dt, iouType="bbox")
        evaluator.evaluate()
    p = evaluator.params
    checked = 0
    for record in evaluator.evalImgs:
        if record is None:
            continue
        i, label = record["image_id"] - 1, record["category_id"]
        pred, target = predictions[i], targets[i]
        mine, theirs = pred["labels"] == label, target["labels"] == label
        boxes = target["boxes"].double()
        area = target["area"].double() if "area" in target else (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        low, high = record["aRng"]
        outside = (area[theirs] < low) | (area[theirs] > high)
        order, matches, ignored = match_detections_coco(pred["boxes"][mine], pred["scores"][mine],
                                                        target["boxes"][theirs], p.iouThrs,
                                                        gt_iscrowd=target["iscrowd"][theirs], gt_ignore=outside)
        gt_ids = torch.where(theirs)[0]                     # this class's boxes, as indices in the image
        first_id = 1 + sum(len(t["labels"]) for t in targets[:i])
        ids = np.concatenate([[0], first_id + gt_ids.numpy()])     # annotation id of each box, 0 for "none"
        expected_ids = ids[matches.numpy() + 1]
        assert (record["dtMatches"] == expected_ids).all()
        matched = record["dtMatches"] > 0
        assert (record["dtIgnore"][matched] == ignored.numpy()[matched]).all()
        checked += 1
    assert checked > 40


def test_mean_average_precision_by_hand():
    # Class 1: the five detections of the hand-worked curve (TP, FP, TP, FP, TP over 3 boxes in 2 images).
    # Class 2: one box found exactly (AP 1), one difficult box with a detection on it (ignored).
    # Class 3: a detection but no ground truth: AP undefined (-1), left out of the mean.
    predictions = [
        image([[0, 0, 10, 10], [0, 0, 10, 9], [20, 20, 30, 31], [70, 70, 80, 80]], [1, 1, 1, 2], [0.9, 0.8, 0.5, 0.95]),
        image([[0, 0, 10, 10], [50, 50, 60, 60], [40, 40, 50, 50], [5, 5, 9, 9]], [1, 1, 2, 3], [0.7, 0.6, 0.3, 0.99]),
    ]
    targets = [image([[0, 0, 10, 10], [20, 20, 30, 30], [70, 70, 80, 80]], [1, 1, 2], difficult=[False, False, True]),
               image([[0, 0, 10, 10], [40, 40, 50, 50]], [1, 2], difficult=[False, False])]
    for method in ("voc2007", "voc2010", "coco"):
        mean, per_class = mean_average_precision(predictions, targets, 0.5, method)
        assert per_class[1] == pytest.approx(HAND_AP[method], abs=1e-12)
        assert per_class[2] == pytest.approx(1.0, abs=1e-12)
        assert per_class[3] == -1.0
        assert mean == pytest.approx((HAND_AP[method] + 1) / 2, abs=1e-12)
    # Image A alone: its only class-2 box is difficult, so class 2 has no box that counts (-1) and the
    # detection on it is no false positive; unflagged, that detection is a true positive (AP 1).
    # Class 1 there ranks TP, FP, TP over 2 boxes: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 ->
    # all-point AP = 1/2 * 1 + 1/2 * 2/3 = 5/6.
    mean, per_class = mean_average_precision(predictions[:1], targets[:1], 0.5, "voc2010")
    assert per_class == pytest.approx({1: 5 / 6, 2: -1.0}, abs=1e-12)
    assert mean == pytest.approx(5 / 6, abs=1e-12)
    unflagged = [dict(targets[0], difficult=torch.tensor([False, False, False]))]
    _, per_class = mean_average_precision(predictions[:1], unflagged, 0.5, "voc2010")
    assert per_class[2] == 1.0


def test_mean_average_precision_without_any_ground_truth_is_minus_one():
    predictions = [image([[0, 0, 5, 5]], [4], [0.5])]
    targets = [image([], [])]
    assert mean_average_precision(predictions, targets) == (-1.0, {4: -1.0})


@pytest.mark.parametrize("seed, iou_threshold", [(0, 0.5), (1, 0.5), (2, 0.7), (3, 0.3)])
def test_mean_average_precision_equals_the_devkit_loop(seed, iou_threshold):
    predictions, targets = random_detection_data(seed, num_images=15, crowd=False, with_area=False,
                                                 tied_scores=seed % 2 == 1)
    g = torch.Generator().manual_seed(100 + seed)
    for t in targets:
        t["difficult"] = torch.rand(len(t["labels"]), generator=g) < 0.15
    for method in ("voc2007", "voc2010", "coco"):
        mean, per_class = mean_average_precision(predictions, targets, iou_threshold, method)
        expected = {}
        for label in per_class:
            has_gt = any(((t["labels"] == label) & ~t["difficult"]).any() for t in targets)
            expected[label] = devkit_voc_eval(predictions, targets, label, iou_threshold, method) if has_gt else -1.0
        assert per_class == pytest.approx(expected, abs=1e-12)
        defined = [v for v in expected.values() if v != -1.0]
        assert mean == pytest.approx(sum(defined) / len(defined), abs=1e-12)


# --------------------------------------------------------------------------------------------
# COCO evaluation against pycocotools


@pytest.mark.parametrize("seed", range(4))
def test_coco_map_equals_pycocotools_on_random_detections(seed):
    predictions, targets = random_detection_data(seed)
    stats = assert_equals_pycocotools(predictions, targets)
    assert (stats[:6] > 0).all()         # the data exercise every AP, none of them trivial
    assert (stats[:6] < 1).all()


def test_coco_map_equals_pycocotools_with_tied_scores():
    predictions, targets = random_detection_data(7, tied_scores=True)
    assert_equals_pycocotools(predictions, targets)
    for p in predictions:          # every score equal: the order of the lists decides
        p["scores"] = torch.full_like(p["scores"], 0.5)
    assert_equals_pycocotools(predictions, targets)


def test_coco_map_without_detections():
    _, targets = random_detection_data(3)
    predictions = [image([], [], []) for _ in targets]
    stats = assert_equals_pycocotools(predictions, targets)
    assert stats.tolist() == [0.0] * 12


def test_coco_map_with_a_class_without_ground_truth():
    predictions, targets = random_detection_data(4)
    with_extra = [dict(p, boxes=torch.cat([p["boxes"], torch.tensor([[0.0, 0, 50, 50]])]),
                       scores=torch.cat([p["scores"], torch.tensor([0.99])]),
                       labels=torch.cat([p["labels"], torch.tensor([9])])) for p in predictions]
    stats = assert_equals_pycocotools(with_extra, targets)
    assert torch.allclose(stats, coco_map(predictions, targets), rtol=0, atol=1e-12)   # class 9 is left out
    # a class whose only boxes are crowd has no ground truth that counts either
    targets[0] = dict(targets[0], boxes=torch.cat([targets[0]["boxes"], torch.tensor([[0.0, 0, 300, 300]])]),
                      labels=torch.cat([targets[0]["labels"], torch.tensor([7])]),
                      iscrowd=torch.cat([targets[0]["iscrowd"], torch.tensor([1])]),
                      area=torch.cat([targets[0]["area"], torch.tensor([9e4])]))
    assert_equals_pycocotools(with_extra, targets)


def test_coco_map_without_any_ground_truth_is_minus_one():
    predictions = [image([[0, 0, 10, 10]], [1], [0.5])]
    targets = [image([], [])]
    # pycocotools needs at least one category to run; it then reports -1 everywhere as well
    stats = assert_equals_pycocotools(predictions, targets)
    assert stats.tolist() == [-1.0] * 12


def test_coco_map_with_duplicate_detections():
    predictions, targets = random_detection_data(5, crowd=False)
    duplicated = [dict(p, boxes=torch.cat([p["boxes"], p["boxes"], p["boxes"] + 0.5]),
                       scores=torch.cat([p["scores"], p["scores"] * 0.9, p["scores"] * 0.8]),
                       labels=torch.cat([p["labels"]] * 3)) for p in predictions]
    assert_equals_pycocotools(duplicated, targets)


def test_coco_map_with_perfect_detections():
    _, targets = random_detection_data(6, crowd=False, with_area=False)
    predictions = [{"boxes": t["boxes"].clone(), "labels": t["labels"].clone(),
                    "scores": torch.linspace(1, 0.5, len(t["labels"]))} for t in targets]
    stats = assert_equals_pycocotools(predictions, targets)
    assert stats[[0, 1, 2, 3, 4, 5, 8, 9, 10, 11]].tolist() == [1.0] * 10   # AR@1 and AR@10 may be < 1


def test_coco_map_object_sizes_and_area_boundaries():
    # boxes of exactly 32 x 32 and 96 x 96 are on the small/medium and medium/large boundaries (both
    # ranges include them); 'area' given apart from the box moves a box into another range.
    targets = [
        image([[0, 0, 32, 32], [100, 100, 196, 196], [300, 0, 310, 10], [0, 300, 200, 500]], [1, 1, 1, 2],
              area=[1024.0, 9216.0, 100.0, 5000.0]),
        image([[0, 0, 31, 33], [50, 50, 150, 150], [200, 200, 264, 264]], [1, 2, 2], area=[1023.0, 1e4, 4096.0]),
        image([[10, 10, 42, 42], [200, 0, 296, 96]], [2, 1]),
    ]
    predictions = [
        image([[0, 0, 32, 32], [100, 100, 190, 196], [302, 0, 310, 10], [0, 300, 200, 520], [400, 400, 420, 420]],
              [1, 1, 1, 2, 1], [0.9, 0.8, 0.7, 0.6, 0.95]),
        image([[1, 0, 31, 33], [60, 50, 150, 150], [200, 210, 264, 264], [0, 0, 200, 200]], [1, 2, 2, 2],
              [0.5, 0.9, 0.9, 0.95]),
        image([[10, 10, 42, 42], [200, 0, 296, 96], [0, 0, 5, 5]], [2, 1, 1], [0.4, 0.6, 0.99]),
    ]
    stats = assert_equals_pycocotools(predictions, targets)
    assert (stats[3:6] > -1).all()


def test_coco_map_with_ious_exactly_at_thresholds():
    # A 100 x 10 ground-truth box and a detection [0, 0, x, 10] inside it: IoU = x / 100 exactly,
    # for x = 50, 55, ..., 100, so every IoU sits on one of the thresholds 0.50:0.05:0.95 (on the
    # double nearest to it; COCOeval's np.linspace thresholds are not all that double: its 0.90 is
    # 0.8999999999999999). Both compare IoU >= t.
    targets = [image([[0, 0, 100, 10]], [1]) for _ in range(11)]
    predictions = [image([[0, 0, 50 + 5 * i, 10]], [1], [0.5 + i / 40]) for i in range(11)]
    assert_equals_pycocotools(predictions, targets)


def test_coco_map_with_more_than_100_detections_per_image():
    g = torch.Generator().manual_seed(11)
    predictions, targets = [], []
    for i in range(4):
        gt = torch.rand(30, 2, generator=g) * 500
        gt_boxes = torch.cat([gt, gt + 20 + torch.rand(30, 2, generator=g) * 80], 1)
        labels = torch.randint(1, 3, (30,), generator=g)
        clutter = torch.rand(170, 2, generator=g) * 500
        boxes = torch.cat([gt_boxes + torch.randn(30, 4, generator=g), torch.cat([clutter, clutter + 40], 1)])
        boxes = torch.cat([torch.minimum(boxes[:, :2], boxes[:, 2:]), torch.maximum(boxes[:, :2], boxes[:, 2:])], 1)
        det_labels = torch.cat([labels, torch.full((170,), 1 + i % 2)])     # one class far over 100 per image
        scores = torch.rand(200, generator=g)
        predictions.append({"boxes": boxes, "scores": scores, "labels": det_labels})
        targets.append({"boxes": gt_boxes, "labels": labels})
    stats = assert_equals_pycocotools(predictions, targets)
    # the limit is per image and class: keeping only the 100 best per image gives other numbers
    best = [dict((k, v[p["scores"].argsort(descending=True)[:100]]) for k, v in p.items()) for p in predictions]
    assert not torch.allclose(coco_map(best, targets), stats)


def test_coco_metrics_names():
    predictions, targets = random_detection_data(8, num_images=6)
    metrics = coco_metrics(predictions, targets)
    assert list(metrics) == ["map", "map_50", "map_75", "map_small", "map_medium", "map_large",
                             "mar_1", "mar_10", "mar_100", "mar_small", "mar_medium", "mar_large"]
    np.testing.assert_allclose(list(metrics.values()), pycocotools_stats(predictions, targets), rtol=0, atol=1e-6)
    assert all(isinstance(v, float) for v in metrics.values())


# --------------------------------------------------------------------------------------------
# Bad input


def test_bad_input_names_the_argument():
    good = image([[0, 0, 1, 1]], [1], [0.5])
    target = image([[0, 0, 1, 1]], [1])
    with pytest.raises(ValueError, match="method"):
        average_precision([1.0], [1.0], "voc2012")
    with pytest.raises(TypeError, match="precision"):
        average_precision("1.0", [1.0], "coco")
    with pytest.raises(ValueError, match="recall"):
        average_precision([1.0, 0.5], [0.5, 0.25], "coco")
    with pytest.raises(ValueError, match="precision and recall"):
        average_precision([1.0, 0.5], [0.5], "coco")
    with pytest.raises(ValueError, match="num_ground_truth"):
        precision_recall_curve([0.5], [1], 0)
    with pytest.raises(TypeError, match="num_ground_truth"):
        precision_recall_curve([0.5], [1], 1.5)
    with pytest.raises(ValueError, match="is_true_positive"):
        precision_recall_curve([0.5, 0.4], [1], 1)
    with pytest.raises(ValueError, match="is_true_positive"):
        precision_recall_curve([0.5], [2], 3)
    with pytest.raises(ValueError, match="scores"):
        precision_recall_curve([float("nan")], [1], 1)
    with pytest.raises(TypeError, match="predictions"):
        mean_average_precision(good, [target])
    with pytest.raises(ValueError, match="predictions and targets"):
        coco_map([good], [target, target])
    with pytest.raises(ValueError, match=r"predictions\[0\].*'scores'"):
        coco_map([{"boxes": good["boxes"], "labels": good["labels"]}], [target])
    with pytest.raises(TypeError, match=r"targets\[0\]"):
        coco_map([good], [[target]])
    with pytest.raises(ValueError, match=r"targets\[0\]\['boxes'\]"):
        coco_map([good], [image([[1, 1, 0, 2]], [1])])
    with pytest.raises(TypeError, match=r"predictions\[0\]\['labels'\]"):
        coco_map([dict(good, labels=torch.tensor([1.0]))], [target])
    with pytest.raises(ValueError, match=r"predictions\[0\]\['scores'\]"):
        coco_map([dict(good, scores=torch.tensor([0.5, 0.5]))], [target])
    with pytest.raises(ValueError, match=r"targets\[0\]\['iscrowd'\]"):
        coco_map([good], [dict(target, iscrowd=torch.tensor([1, 0]))])
    with pytest.raises(ValueError, match="iou_threshold"):
        mean_average_precision([good], [target], iou_threshold=1.5)
    with pytest.raises(ValueError, match="max_detections"):
        coco_map([good], [target], max_detections=(10, 1, 100))
    with pytest.raises(ValueError, match="gt_difficult"):
        match_detections_voc(good["boxes"], good["scores"], target["boxes"], gt_difficult=torch.tensor([True, False]))
    with pytest.raises(ValueError, match="iou_thresholds"):
        match_detections_coco(good["boxes"], good["scores"], target["boxes"], iou_thresholds=[0.5, 1.5])
