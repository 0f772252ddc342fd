"""Detection metrics: precision and recall, average precision (VOC 2007, VOC 2010+, COCO), mAP.

A detector returns scored boxes. Ranked by descending score, its first k detections give

    precision(k) = TP(k) / k                recall(k) = TP(k) / N_gt

with TP(k) the true positives among them (detections matched to a ground-truth box of their class,
each ground-truth box at most once) and N_gt the number of ground-truth boxes. Average precision
summarises the curve through the *interpolated* precision, the best precision at recall r or above
(the precision "envelope", non-increasing in r):

    p_interp(r) = max { precision(k) : recall(k) >= r }        (0 when no k reaches r)

    VOC 2007, 11 points (Everingham et al., IJCV 2010, eq. 1):  AP = 1/11 Σ_{r ∈ {0, 0.1, ..., 1}} p_interp(r)
    VOC 2010+, all points (area under the envelope):             AP = Σ_k (recall(k) - recall(k-1)) p_interp(recall(k))
    COCO, 101 points (COCOeval):                                 AP = 1/101 Σ_{r ∈ {0, 0.01, ..., 1}} p_interp(r)

mAP is the mean of the per-class APs. COCO's headline "AP" also averages over the ten IoU thresholds
0.50, 0.55, ..., 0.95, and its "AR" is the recall reached with at most 1, 10 or 100 detections per
image, averaged over the same thresholds and the classes.

Which ground-truth box a detection claims differs between the two benchmarks (detections taken one
at a time by descending score):

- VOC (devkit ``VOCevaldet.m``): the ground-truth box of highest IoU. It is a true positive if that
  IoU is at least the threshold and the box was not claimed before, else a false positive, even when
  another free box overlaps it enough. A detection whose box is "difficult" counts neither way, and
  difficult boxes are not in N_gt.
- COCO (``COCOeval.evaluateImg``): the still-unclaimed ground-truth box of highest IoU, among those
  with IoU at least the threshold. Crowd boxes and boxes outside the evaluated area range are
  "ignored": they are not in N_gt, a detection on them counts neither way, and a crowd box may be
  claimed any number of times, with IoU measured as |d ∩ g| / |d|.

:func:`coco_map` reproduces pycocotools' ``COCOeval`` for boxes (``iouType='bbox'``) to floating-point
precision; the comments say where its rules are less obvious than the equations above.

Evaluation is bookkeeping: inputs may live on any device, the work is done on the CPU in float64
and the results are CPU tensors or Python floats.
"""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch
from torch import Tensor

from cvkit._checks import check_boxes, check_scores, check_tensor
from cvkit.boxes import _inter_union, box_convert, box_iou

ArrayLike = Union[Tensor, np.ndarray, Sequence[float]]

AP_METHODS = ("voc2007", "voc2010", "all_point", "coco")

# The recall grids. VOC 2007's is r = k / 10, each the double nearest to k / 10. The Python devkit
# writes np.arange(0., 1.1, 0.1), whose 0.30000000000000004 (and 0.6000000000000001,
# 0.7000000000000001) a recall of exactly 3/10 (6/10, 7/10) does not reach; cvkit follows the
# equation there. COCO's grid is pycocotools' own np.linspace (k * 0.01, not always the double
# nearest to k / 100): numpy computes it here exactly as COCOeval does, so that the thresholds agree
# to the last bit.
VOC2007_RECALL_THRESHOLDS = torch.arange(11, dtype=torch.float64) / 10
COCO_RECALL_THRESHOLDS = torch.from_numpy(np.linspace(0.0, 1.0, 101))
COCO_IOU_THRESHOLDS = torch.from_numpy(np.linspace(0.5, 0.95, 10))       # 0.50, 0.55, ..., 0.95
# Object sizes by area in pixels, both ends included (an area of exactly 32² is small *and* medium).
COCO_AREA_RANGES = {"all": (0.0, 1e10), "small": (0.0, 32.0 ** 2), "medium": (32.0 ** 2, 96.0 ** 2),
                    "large": (96.0 ** 2, 1e10)}
COCO_MAX_DETECTIONS = (1, 10, 100)


# --------------------------------------------------------------------------------------------
# Argument checks


def _as_vector(value: object, name: str) -> Tensor:
    """A one-dimensional CPU tensor from a tensor, a numpy array or a list of numbers."""
    if isinstance(value, Tensor):
        vector = value.detach().cpu()
    elif isinstance(value, (np.ndarray, list, tuple)):
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers, got numpy dtype {array.dtype}")
        vector = torch.from_numpy(array.copy())
    else:
        raise TypeError(f"{name} must be a torch.Tensor or a numpy array, got {type(value).__name__}")
    if vector.is_complex():
        raise TypeError(f"{name} must hold real numbers, got dtype {vector.dtype}")
    if vector.dim() != 1:
        raise ValueError(f"{name} must be one-dimensional [N], got shape {list(vector.shape)}")
    return vector


def _check_flags(flags: object, count: int, name: str) -> Tensor:
    """A boolean vector of ``count`` flags (bool, or integers 0 / 1 as in COCO's ``iscrowd``)."""
    flags = _as_vector(flags, name)
    if flags.shape[0] != count:
        raise ValueError(f"{name} must have shape [{count}] (one per box), got {list(flags.shape)}")
    if flags.dtype != torch.bool:
        if not ((flags == 0) | (flags == 1)).all():
            raise ValueError(f"{name} must be booleans or 0/1, got values {sorted(set(flags.tolist()))}")
        flags = flags != 0
    return flags


def _check_threshold(value: object, name: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


def _descending(scores: Tensor) -> Tensor:
    """Indices that rank ``scores`` highest first; equal scores keep their input order.

    This is pycocotools' ``np.argsort(-scores, kind='mergesort')`` (and MATLAB's stable ``sort`` in
    the VOC devkit): ties between detections decide the curve, so the order among them is defined.
    """
    return torch.sort(scores, descending=True, stable=True).indices


# --------------------------------------------------------------------------------------------
# Precision, recall and average precision


def precision_recall_curve(scores: ArrayLike, is_true_positive: ArrayLike,
                           num_ground_truth: int) -> tuple[Tensor, Tensor]:
    """Precision and recall of the first k detections, for every k, detections ranked by score.

        precision(k) = TP(k) / k        recall(k) = TP(k) / N_gt

    Detections are ranked by descending score with a stable sort: equal scores keep their input
    order, as pycocotools' mergesort does.

    Args:
        scores: ``[N]`` the detections' scores (tensor, numpy array or list).
        is_true_positive: ``[N]`` bool (or 0/1): whether each detection was matched to a ground-truth
            box (see :func:`match_detections_voc`). Leave out ignored detections (on difficult or
            crowd boxes) beforehand: they change neither TP nor k.
        num_ground_truth: N_gt >= 1, the number of ground-truth boxes that count.

    Returns:
        ``(precision, recall)``, each a float64 ``Tensor[N]`` in ranked order; ``recall`` is
        non-decreasing.
    """
    scores = _as_vector(scores, "scores")
    is_true_positive = _check_flags(is_true_positive, scores.shape[0], "is_true_positive")
    if scores.is_floating_point() and scores.isnan().any():
        raise ValueError("scores must not contain NaN")
    if not isinstance(num_ground_truth, (int, np.integer)) or isinstance(num_ground_truth, bool):
        raise TypeError(f"num_ground_truth must be an int, got {num_ground_truth!r}")
    if num_ground_truth < 1:
        raise ValueError(f"num_ground_truth must be >= 1 (recall is undefined without ground truth), "
                         f"got {num_ground_truth}")
    if int(is_true_positive.sum()) > num_ground_truth:
        raise ValueError(f"num_ground_truth ({num_ground_truth}) must be at least the number of true "
                         f"positives ({int(is_true_positive.sum())}): each ground-truth box is found once")

    hits = is_true_positive[_descending(scores)].to(torch.float64)
    tp = torch.cumsum(hits, 0)                       # TP(k)
    fp = torch.cumsum(1.0 - hits, 0)                 # FP(k) = k - TP(k)
    precision = tp / (tp + fp)                       # TP(k) / k
    recall = tp / num_ground_truth                   # TP(k) / N_gt
    return precision, recall


def average_precision(precision: ArrayLike, recall: ArrayLike, method: str) -> float:
    """Average precision of one precision/recall curve.

    With the envelope ``p_interp(r) = max {precision(k) : recall(k) >= r}`` (0 if no k reaches r):

    - ``'voc2007'``: 11-point interpolation, ``1/11 Σ_{r ∈ {0, 0.1, ..., 1}} p_interp(r)``
      (VOC devkit 2007, Everingham et al. 2010, eq. 1);
    - ``'voc2010'`` or ``'all_point'``: the area under the envelope,
      ``Σ_k (recall(k) - recall(k-1)) p_interp(recall(k))`` with recall(0) = 0 (VOC devkit 2010-2012);
    - ``'coco'``: 101-point interpolation, ``1/101 Σ_{r ∈ {0, 0.01, ..., 1}} p_interp(r)``, the
      thresholds of COCOeval (``recThrs``) and its ``np.searchsorted(recall, r, side='left')``.

    Args:
        precision: ``[N]`` precision(k), as from :func:`precision_recall_curve`.
        recall: ``[N]`` recall(k), non-decreasing, in [0, 1].
        method: ``'voc2007'``, ``'voc2010'``, ``'all_point'`` or ``'coco'``.

    Returns:
        AP in [0, 1]; 0 for an empty curve (no detections).
    """
    if method not in AP_METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, AP_METHODS))}, got {method!r}")
    precision = _as_vector(precision, "precision").to(torch.float64)
    recall = _as_vector(recall, "recall").to(torch.float64)
    if precision.shape != recall.shape:
        raise ValueError(f"precision and recall must have one shape (one point per detection), "
                         f"got {list(precision.shape)} and {list(recall.shape)}")
    if not ((precision >= 0) & (precision <= 1)).all():
        raise ValueError("precision must hold values in [0, 1] (and no NaN)")
    if not ((recall >= 0) & (recall <= 1)).all() or (torch.diff(recall) < 0).any():
        raise ValueError("recall must be non-decreasing values in [0, 1], the curve of detections "
                         "ranked by descending score")
    if precision.numel() == 0:
        return 0.0

    if method in ("voc2010", "all_point"):
        widths = torch.diff(recall, prepend=recall.new_zeros(1))      # recall(k) - recall(k-1)
        return float((widths * precision_envelope(precision)).sum())  # area under the envelope
    grid = VOC2007_RECALL_THRESHOLDS if method == "voc2007" else COCO_RECALL_THRESHOLDS
    return float(interpolated_precision(precision, recall, grid).mean())   # 1/11 or 1/101 Σ_r p_interp(r)


def precision_envelope(precision: Tensor) -> Tensor:
    """``max_{j >= k} precision(j)`` for each k: the precision curve made non-increasing. ``[N] -> [N]``."""
    return precision.flip(0).cummax(0).values.flip(0)


def interpolated_precision(precision: Tensor, recall: Tensor, recall_levels: Tensor) -> Tensor:
    """``p_interp(r) = max {precision(k) : recall(k) >= r}`` at each level r (0 where no k reaches r).

    Args:
        precision, recall: ``[N]`` float64 curve, recall non-decreasing (as from :func:`precision_recall_curve`).
        recall_levels: ``[L]`` float64 levels, e.g. ``VOC2007_RECALL_THRESHOLDS``.

    Returns:
        ``[L]`` float64.
    """
    if recall.numel() == 0:
        return torch.zeros_like(recall_levels)
    first = torch.searchsorted(recall, recall_levels, side="left")   # first k with recall(k) >= r
    envelope = precision_envelope(precision)
    return torch.where(first < recall.shape[0], envelope[first.clamp(max=recall.shape[0] - 1)], 0.0)


# --------------------------------------------------------------------------------------------
# Matching detections to ground truth in one image


def match_detections_voc(boxes: Tensor, scores: Tensor, gt_boxes: Tensor, iou_threshold: float = 0.5,
                         gt_difficult: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """PASCAL VOC matching of one image's detections of one class (devkit ``VOCevaldet.m``).

    Taking detections by descending score (stable), each one looks at the ground-truth box g of
    highest IoU (the first such box on ties):

    - IoU(d, g) < ``iou_threshold``: false positive;
    - g difficult: ignored (neither true nor false positive);
    - g not claimed yet: true positive, and g is claimed;
    - g already claimed: false positive (a duplicate), even if another box would have been free.

    The devkit compares ``IoU >= threshold`` (py-faster-rcnn's ``voc_eval.py`` writes ``>``) and
    measures boxes with "+1" pixels; here boxes are continuous, as everywhere in cvkit.

    Args:
        boxes: ``Tensor[N, 4]`` detections (xyxy).
        scores: ``Tensor[N]`` their scores.
        gt_boxes: ``Tensor[G, 4]`` ground truth of the same class (xyxy).
        iou_threshold: the IoU a true positive needs, 0.5 in VOC.
        gt_difficult: ``Tensor[G]`` bool, the boxes marked difficult (none if ``None``).

    Returns:
        ``(is_true_positive, is_ignored)``: two bool ``Tensor[N]`` in the order of ``boxes``;
        a detection that is neither is a false positive.
    """
    check_boxes(boxes, ordered=True)
    check_scores(scores, boxes.shape[0])
    check_boxes(gt_boxes, "gt_boxes", ordered=True)
    iou_threshold = _check_threshold(iou_threshold, "iou_threshold")
    num_gt = gt_boxes.shape[0]
    difficult = (torch.zeros(num_gt, dtype=torch.bool) if gt_difficult is None
                 else _check_flags(gt_difficult, num_gt, "gt_difficult"))

    is_true_positive = torch.zeros(boxes.shape[0], dtype=torch.bool)
    is_ignored = torch.zeros(boxes.shape[0], dtype=torch.bool)
    if num_gt == 0 or boxes.shape[0] == 0:
        return is_true_positive, is_ignored
    iou = box_iou(boxes.detach().cpu().double(), gt_boxes.detach().cpu().double())  # [N, G]
    iou = iou.nan_to_num(0.0)                           # two empty boxes: 0 / 0
    best_iou, best_gt = iou.max(1).values.tolist(), iou.argmax(1).tolist()   # argmax: first on ties
    claimed = [False] * num_gt
    for d in _descending(scores.detach().cpu()).tolist():
        g = best_gt[d]
        if best_iou[d] < iou_threshold:
            continue                                    # false positive: no box overlaps enough
        if difficult[g]:
            is_ignored[d] = True
        elif not claimed[g]:
            is_true_positive[d], claimed[g] = True, True
    return is_true_positive, is_ignored


def _coco_iou(detections: Tensor, ground_truth: Tensor, iscrowd: Tensor) -> Tensor:
    """IoU ``[D, G]`` of xywh float64 boxes with the arithmetic of pycocotools (``maskApi.c``, ``bbIou``).

    pycocotools measures boxes as (x, y, w, h) without "+1": the intersection's width is
    ``min(x_d + w_d, x_g + w_g) - max(x_d, x_g)`` and the union ``w_d h_d + w_g h_g - |d ∩ g|``. These
    are the very operations of ``box_iou(..., fmt='xywh')`` (from :func:`cvkit.boxes._inter_union`),
    so in float64 the two agree to the last bit, which matters when an IoU equals a threshold. Two
    differences with :func:`cvkit.boxes.box_iou`: a crowd box g is compared by ``|d ∩ g| / |d|``, the
    share of the detection inside the crowd, and boxes that do not overlap get 0 even when both are
    empty (where ``box_iou`` gives 0 / 0 = NaN).
    """
    inter, union = _inter_union(detections, ground_truth, fmt="xywh")          # [D, G] each
    detection_area = detections[:, 2] * detections[:, 3]
    union = torch.where(iscrowd[None, :], detection_area[:, None], union)      # crowd: |d ∩ g| / |d|
    return torch.where(inter > 0, inter / union, 0.0)


def _match_coco(iou: Tensor, gt_ignore: Tensor, gt_iscrowd: Tensor,
                iou_thresholds: Tensor) -> tuple[Tensor, Tensor]:
    """COCOeval.evaluateImg's greedy matching, for all IoU thresholds at once.

    Args:
        iou: ``[D, G]``, detections ranked by descending score.
        gt_ignore: ``[G]`` bool, ignored ground truth (crowd, or outside the area range).
        gt_iscrowd: ``[G]`` bool, crowd boxes (may be claimed any number of times).
        iou_thresholds: ``[T]``.

    Returns:
        ``matches [T, D]`` int64, the ground-truth index each detection claims (-1 for none), and
        ``claims_ignored [T, D]`` bool, whether that box is an ignored one.
    """
    num_thresholds, (num_dt, num_gt) = iou_thresholds.shape[0], iou.shape
    matches = torch.full((num_thresholds, num_dt), -1, dtype=torch.int64)
    claims_ignored = torch.zeros((num_thresholds, num_dt), dtype=torch.bool)
    if num_gt == 0:
        return matches, claims_ignored
    # COCOeval visits the ground truth with the regular boxes first and the ignored ones last (a
    # stable sort), and leaves an ignored box alone once a regular one is matched.
    order = torch.sort(gt_ignore.to(torch.uint8), stable=True).indices
    iou, ignore, crowd = iou[:, order], gt_ignore[order], gt_iscrowd[order]
    # min(t, 1 - 1e-10): a threshold of 1 still matches a perfect box despite rounding.
    thresholds = iou_thresholds.to(torch.float64).clamp(max=1 - 1e-10)[:, None]      # [T, 1]
    rows = torch.arange(num_thresholds)
    claimed = torch.zeros((num_thresholds, num_gt), dtype=torch.bool)
    for d in range(num_dt):
        candidates = (~claimed | crowd) & (iou[d] >= thresholds)                 # [T, G] free and IoU >= t
        regular = candidates & ~ignore
        candidates = torch.where(regular.any(1, keepdim=True), regular, candidates)   # regular boxes first
        # the highest IoU, and among equal IoUs the last box (COCOeval replaces its match on >=)
        ranked = torch.where(candidates, iou[d], -1.0).flip(1)
        best = num_gt - 1 - ranked.argmax(1)                                     # [T]
        found = candidates.any(1)                                                # [T]
        t, g = rows[found], best[found]
        claimed[t, g] = True
        matches[t, d] = order[g]
        claims_ignored[t, d] = ignore[g]
    return matches, claims_ignored


def match_detections_coco(boxes: Tensor, scores: Tensor, gt_boxes: Tensor,
                          iou_thresholds: Sequence[float] | Tensor | None = None,
                          gt_iscrowd: Tensor | None = None, gt_ignore: Tensor | None = None,
                          max_detections: int = 100) -> tuple[Tensor, Tensor, Tensor]:
    """COCO matching of one image's detections of one class (pycocotools ``COCOeval.evaluateImg``).

    The ``max_detections`` highest-scoring detections (stable order on ties) are taken by descending
    score; at each IoU threshold t, a detection claims, among the ground-truth boxes not claimed yet
    (crowd boxes stay available) with IoU >= t, the one of highest IoU (the last one on ties), a
    regular box before any ignored one. Ignored boxes are crowd boxes and those in ``gt_ignore``
    (COCOeval: outside the evaluated area range); a detection that claims one counts neither way.
    IoU is pycocotools' (see ``_coco_iou``), with ``|d ∩ g| / |d|`` for crowd boxes.

    Args:
        boxes: ``Tensor[N, 4]`` detections (xyxy).
        scores: ``Tensor[N]`` their scores.
        gt_boxes: ``Tensor[G, 4]`` ground truth of the same class (xyxy).
        iou_thresholds: ``[T]`` thresholds; COCO's 0.50, 0.55, ..., 0.95 by default.
        gt_iscrowd: ``Tensor[G]`` bool (or 0/1), crowd boxes.
        gt_ignore: ``Tensor[G]`` bool, further boxes to ignore.
        max_detections: how many detections are evaluated, 100 in COCO.

    Returns:
        ``(order, matches, is_ignored)``: ``order`` ``Tensor[D]`` int64, the indices of the evaluated
        detections in ``boxes`` ranked by score (D = min(N, max_detections)); ``matches``
        ``Tensor[T, D]`` int64, the index in ``gt_boxes`` that detection ``order[j]`` claims at
        threshold t, or -1 (a false positive unless ignored); ``is_ignored`` ``Tensor[T, D]`` bool,
        the detections that claimed an ignored box.
    """
    check_boxes(boxes, ordered=True)
    check_scores(scores, boxes.shape[0])
    check_boxes(gt_boxes, "gt_boxes", ordered=True)
    num_gt = gt_boxes.shape[0]
    thresholds = COCO_IOU_THRESHOLDS if iou_thresholds is None else _as_vector(iou_thresholds, "iou_thresholds")
    if not ((thresholds >= 0) & (thresholds <= 1)).all():
        raise ValueError(f"iou_thresholds must lie in [0, 1], got {thresholds.tolist()}")
    crowd = (torch.zeros(num_gt, dtype=torch.bool) if gt_iscrowd is None
             else _check_flags(gt_iscrowd, num_gt, "gt_iscrowd"))
    ignore = (torch.zeros(num_gt, dtype=torch.bool) if gt_ignore is None
              else _check_flags(gt_ignore, num_gt, "gt_ignore"))
    if not isinstance(max_detections, int) or isinstance(max_detections, bool):
        raise TypeError(f"max_detections must be an int, got {max_detections!r}")
    if max_detections < 1:
        raise ValueError(f"max_detections must be >= 1, got {max_detections}")

    order = _descending(scores.detach().cpu())[:max_detections]
    iou = _coco_iou(_xywh(boxes[order.to(boxes.device)]), _xywh(gt_boxes), crowd)   # [D, G]
    matches, is_ignored = _match_coco(iou, crowd | ignore, crowd, thresholds)
    return order, matches, is_ignored


def _xywh(boxes: Tensor) -> Tensor:
    """xyxy -> xywh in float64 on the CPU: ``w = x2 - x1`` as the boxes handed to pycocotools are made."""
    return box_convert(boxes.detach().cpu().double(), "xyxy", "xywh")


# --------------------------------------------------------------------------------------------
# Data sets: lists of per-image dicts in torchvision's detection format


def _check_image(entry: object, name: str, required: tuple[str, ...]) -> dict[str, Tensor]:
    """One image's predictions or targets, checked, as CPU tensors (boxes in float64)."""
    if not isinstance(entry, dict):
        raise TypeError(f"{name} must be a dict with keys {', '.join(map(repr, required))}, "
                        f"got {type(entry).__name__}")
    missing = [key for key in required if key not in entry]
    if missing:
        raise ValueError(f"{name} must have the keys {', '.join(map(repr, required))}; "
                         f"missing {', '.join(map(repr, missing))}")
    boxes = check_boxes(entry["boxes"], f"{name}['boxes']", ordered=True)
    count = boxes.shape[0]
    labels = check_tensor(entry["labels"], f"{name}['labels']")
    if labels.shape != (count,):
        raise ValueError(f"{name}['labels'] must have shape [{count}] (one per box), got {list(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"{name}['labels'] must be an integer tensor, got dtype {labels.dtype}")
    image = {"boxes": boxes.detach().cpu().double(), "labels": labels.detach().cpu().long()}
    if "scores" in required:
        scores = check_scores(entry["scores"], count, f"{name}['scores']").detach().cpu()
        if scores.is_floating_point() and scores.isnan().any():
            raise ValueError(f"{name}['scores'] must not contain NaN")
        image["scores"] = scores.double()
    else:
        for key in ("iscrowd", "difficult"):
            if key in entry:
                image[key] = _check_flags(check_tensor(entry[key], f"{name}[{key!r}]"), count, f"{name}[{key!r}]")
        if "area" in entry:
            area = _as_vector(check_tensor(entry["area"], f"{name}['area']"), f"{name}['area']")
            if area.shape[0] != count or not (area.double() >= 0).all():
                raise ValueError(f"{name}['area'] must have shape [{count}] (one per box) and hold areas >= 0")
            image["area"] = area.double()
    return image


def _check_data(predictions: object, targets: object) -> list[tuple[dict[str, Tensor], dict[str, Tensor]]]:
    for name, value in (("predictions", predictions), ("targets", targets)):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be a list with one dict per image, got {type(value).__name__}")
    if len(predictions) != len(targets):
        raise ValueError(f"predictions and targets must have one entry per image, got {len(predictions)} "
                         f"and {len(targets)}")
    return [(_check_image(p, f"predictions[{i}]", ("boxes", "scores", "labels")),
             _check_image(t, f"targets[{i}]", ("boxes", "labels")))
            for i, (p, t) in enumerate(zip(predictions, targets))]


def _classes(images: list[tuple[dict[str, Tensor], dict[str, Tensor]]]) -> list[int]:
    """Every label that occurs in the predictions or the targets, ascending."""
    labels = [t for p, g in images for t in (p["labels"], g["labels"])]
    return torch.cat(labels).unique().tolist() if labels else []


def _mean_defined(values: Tensor) -> float:
    """Mean over the entries that are defined (not -1), or -1 when none is: COCOeval's ``summarize``."""
    defined = values[values > -1]
    return float(defined.mean()) if defined.numel() else -1.0


def mean_average_precision(predictions: Sequence[dict[str, Tensor]], targets: Sequence[dict[str, Tensor]],
                           iou_threshold: float = 0.5, method: str = "voc2007") -> tuple[float, dict[int, float]]:
    """PASCAL VOC mean average precision: per-class AP after VOC matching, and their mean.

    Per class, each image's detections are matched with :func:`match_detections_voc`, the detections
    of all images are ranked together by score (equal scores: images in list order, then each image's
    order), and :func:`average_precision` summarises the curve with ``method``.

    Ground-truth boxes flagged ``difficult`` (VOC) or ``iscrowd`` (COCO) are ignored: they do not
    count in N_gt, and a detection that picks one counts neither way. A class with no ground truth
    that counts (it occurs only in the predictions) has an undefined AP, reported as -1 and left out
    of the mean, as COCOeval and torchmetrics do; the VOC classes always have ground truth.

    Args:
        predictions: one dict per image, torchvision's detector output: ``'boxes'`` ``Tensor[N, 4]``
            (xyxy), ``'scores'`` ``Tensor[N]``, ``'labels'`` ``Tensor[N]`` int64.
        targets: one dict per image: ``'boxes'`` ``Tensor[G, 4]``, ``'labels'`` ``Tensor[G]``, and
            optionally ``'difficult'`` or ``'iscrowd'`` ``Tensor[G]`` (bool or 0/1).
        iou_threshold: the IoU a true positive needs (0.5 in VOC).
        method: the AP, as in :func:`average_precision` (``'voc2007'``: 11 points, the VOC 2007 test set).

    Returns:
        ``(mAP, ap_per_class)``: the mean over classes with ground truth (-1 if none has), and
        ``{label: AP}`` for every label in ``predictions`` or ``targets``.
    """
    if method not in AP_METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, AP_METHODS))}, got {method!r}")
    iou_threshold = _check_threshold(iou_threshold, "iou_threshold")
    images = _check_data(predictions, targets)

    ap_per_class: dict[int, float] = {}
    for label in _classes(images):
        scores, hits, num_gt = [], [], 0
        for pred, target in images:
            mine, theirs = pred["labels"] == label, target["labels"] == label
            no_flags = torch.zeros_like(target["labels"], dtype=torch.bool)
            ignored_gt = target.get("difficult", no_flags) | target.get("iscrowd", no_flags)
            is_tp, is_ignored = match_detections_voc(pred["boxes"][mine], pred["scores"][mine],
                                                     target["boxes"][theirs], iou_threshold, ignored_gt[theirs])
            scores.append(pred["scores"][mine][~is_ignored])
            hits.append(is_tp[~is_ignored])
            num_gt += int((~ignored_gt[theirs]).sum())
        if num_gt == 0:
            ap_per_class[label] = -1.0                   # AP undefined without ground truth
            continue
        precision, recall = precision_recall_curve(torch.cat(scores), torch.cat(hits), num_gt)
        ap_per_class[label] = average_precision(precision, recall, method)
    return _mean_defined(torch.tensor(list(ap_per_class.values()), dtype=torch.float64)), ap_per_class


# --------------------------------------------------------------------------------------------
# COCO evaluation (pycocotools' COCOeval for boxes)


def _coco_evaluate(images: list[tuple[dict[str, Tensor], dict[str, Tensor]]],
                   max_detections: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """COCOeval's ``evaluate`` and ``accumulate``.

    Returns:
        ``(ap, recall)``, each ``[T, K, A, M]`` float64 (IoU thresholds, classes, area ranges,
        detection limits): the 101-point AP and the recall of the whole ranking, -1 where the class
        has no ground truth that counts in that area range.
    """
    labels = _classes(images)
    area_ranges = list(COCO_AREA_RANGES.values())
    num_t, num_k, num_a, num_m = COCO_IOU_THRESHOLDS.shape[0], len(labels), len(area_ranges), len(max_detections)
    # evaluated[k][a]: per image holding class k, (scores [D], is_matched [T, D], is_ignored [T, D], N_gt)
    evaluated: list[list[list[tuple[Tensor, Tensor, Tensor, int]]]] = [[[] for _ in area_ranges] for _ in labels]
    for pred, target in images:
        dt_boxes, gt_boxes = _xywh(pred["boxes"]), _xywh(target["boxes"])
        dt_area = dt_boxes[:, 2] * dt_boxes[:, 3]                   # loadRes: a result's area is w * h
        gt_area = target.get("area", gt_boxes[:, 2] * gt_boxes[:, 3])   # an annotation's own 'area' first
        gt_crowd = target.get("iscrowd", torch.zeros(gt_boxes.shape[0], dtype=torch.bool))
        for k, label in enumerate(labels):
            dt = torch.where(pred["labels"] == label)[0]
            gt = torch.where(target["labels"] == label)[0]
            if dt.numel() == 0 and gt.numel() == 0:
                continue                                             # COCOeval keeps no record
            dt = dt[_descending(pred["scores"][dt])][:max_detections[-1]]     # maxDets per image *and class*
            crowd = gt_crowd[gt]
            iou = _coco_iou(dt_boxes[dt], gt_boxes[gt], crowd)                  # [D, G]
            for a, (low, high) in enumerate(area_ranges):
                outside_gt = (gt_area[gt] < low) | (gt_area[gt] > high)
                gt_ignore = crowd | outside_gt            # COCOeval drops an annotation's own 'ignore' for iscrowd
                matches, is_ignored = _match_coco(iou, gt_ignore, crowd, COCO_IOU_THRESHOLDS)
                # an unmatched detection of a size outside the range is not held against the detector
                outside_dt = (dt_area[dt] < low) | (dt_area[dt] > high)
                is_ignored = is_ignored | ((matches < 0) & outside_dt)
                evaluated[k][a].append((pred["scores"][dt], matches >= 0, is_ignored, int((~gt_ignore).sum())))

    ap = -torch.ones(num_t, num_k, num_a, num_m, dtype=torch.float64)
    recall = -torch.ones(num_t, num_k, num_a, num_m, dtype=torch.float64)
    for k in range(num_k):
        for a in range(num_a):
            records = evaluated[k][a]
            num_gt = sum(record[3] for record in records)
            if num_gt == 0:
                continue                                             # undefined: stays -1
            for m, max_det in enumerate(max_detections):
                scores = torch.cat([s[:max_det] for s, _, _, _ in records])                 # [D]
                is_matched = torch.cat([hit[:, :max_det] for _, hit, _, _ in records], 1)   # [T, D]
                is_ignored = torch.cat([ign[:, :max_det] for _, _, ign, _ in records], 1)   # [T, D]
                for t in range(num_t):
                    counted = ~is_ignored[t]
                    precision, rec = precision_recall_curve(scores[counted], is_matched[t, counted], num_gt)
                    ap[t, k, a, m] = average_precision(precision, rec, "coco")
                    recall[t, k, a, m] = float(rec[-1]) if rec.numel() else 0.0
    return ap, recall


def _check_max_detections(max_detections: object) -> tuple[int, int, int]:
    if (not isinstance(max_detections, (tuple, list)) or len(max_detections) != 3
            or not all(isinstance(m, int) and not isinstance(m, bool) and m >= 1 for m in max_detections)
            or not max_detections[0] < max_detections[1] < max_detections[2]):
        raise ValueError(f"max_detections must be three increasing positive ints such as (1, 10, 100), "
                         f"got {max_detections!r}")
    return tuple(max_detections)  # type: ignore[return-value]


def coco_map(predictions: Sequence[dict[str, Tensor]], targets: Sequence[dict[str, Tensor]],
             max_detections: tuple[int, int, int] = COCO_MAX_DETECTIONS) -> Tensor:
    """The twelve numbers of pycocotools' ``COCOeval(...).summarize()`` for boxes, ``COCOeval.stats``.

    In order: AP@[.50:.95], AP@.50, AP@.75, AP small, AP medium, AP large (at most 100 detections),
    AR with at most 1, 10, 100 detections, AR small, medium, large (at most 100). AP is the 101-point
    AP (:func:`average_precision` ``'coco'``) averaged over the IoU thresholds 0.50:0.05:0.95 and the
    classes; AR the recall of the whole ranking averaged the same way. An entry is -1 when no class
    has ground truth in its area range (pycocotools' value for "undefined"); classes without ground
    truth are left out of the averages.

    The rules, those of COCOeval for ``iouType='bbox'``:

    - images are taken in list order (image ids 1, 2, ... in pycocotools), classes are the labels;
    - per image and class, detections are ranked by descending score (stable on ties) and only the
      first 100 are evaluated (the limit is per image *and class*);
    - matching is :func:`match_detections_coco` with pycocotools' IoU on xywh boxes;
    - crowd boxes (``'iscrowd'``) are ignored; so, per area range (all, small: area <= 32²,
      medium: 32² to 96², large: >= 96², both ends included), are ground-truth boxes whose
      ``'area'`` (the annotation's area if given, else the box's w * h) lies outside it, and unmatched
      detections whose box area lies outside it;
    - the ranking over all images is a stable sort of the per-image rankings concatenated in image order.

    Args:
        predictions: one dict per image: ``'boxes'`` ``Tensor[N, 4]`` (xyxy), ``'scores'`` ``Tensor[N]``,
            ``'labels'`` ``Tensor[N]`` int64 (torchvision's detector output).
        targets: one dict per image: ``'boxes'`` ``Tensor[G, 4]``, ``'labels'`` ``Tensor[G]``, and
            optionally ``'iscrowd'`` ``Tensor[G]`` (0/1) and ``'area'`` ``Tensor[G]``.
        max_detections: COCOeval's ``maxDets``, three increasing limits; AR is reported for each and
            everything else uses the last.

    Returns:
        ``Tensor[12]`` float64, the numbers of ``COCOeval.stats``.
    """
    max_detections = _check_max_detections(max_detections)
    ap, recall = _coco_evaluate(_check_data(predictions, targets), max_detections)
    all_, small, medium, large = range(4)               # the order of COCO_AREA_RANGES
    at_50, at_75 = 0, 5                                 # COCO_IOU_THRESHOLDS[0] == 0.5, [5] == 0.75
    most = len(max_detections) - 1
    stats = [
        _mean_defined(ap[:, :, all_, most]),            # AP @[.50:.95]
        _mean_defined(ap[at_50, :, all_, most]),        # AP @.50
        _mean_defined(ap[at_75, :, all_, most]),        # AP @.75
        _mean_defined(ap[:, :, small, most]),
        _mean_defined(ap[:, :, medium, most]),
        _mean_defined(ap[:, :, large, most]),
        _mean_defined(recall[:, :, all_, 0]),           # AR with 1, 10, 100 detections per image
        _mean_defined(recall[:, :, all_, 1]),
        _mean_defined(recall[:, :, all_, 2]),
        _mean_defined(recall[:, :, small, most]),
        _mean_defined(recall[:, :, medium, most]),
        _mean_defined(recall[:, :, large, most]),
    ]
    return torch.tensor(stats, dtype=torch.float64)


def coco_metrics(predictions: Sequence[dict[str, Tensor]], targets: Sequence[dict[str, Tensor]],
                 max_detections: tuple[int, int, int] = COCO_MAX_DETECTIONS) -> dict[str, float]:
    """:func:`coco_map` with names: ``map``, ``map_50``, ``map_75``, ``map_small``, ``map_medium``,
    ``map_large``, ``mar_1``, ``mar_10``, ``mar_100`` (one per ``max_detections``), ``mar_small``,
    ``mar_medium``, ``mar_large`` (the names torchmetrics uses); -1 where undefined.

    Args:
        predictions, targets, max_detections: as for :func:`coco_map`.

    Returns:
        ``{name: value}`` as Python floats.
    """
    max_detections = _check_max_detections(max_detections)
    names = (["map", "map_50", "map_75", "map_small", "map_medium", "map_large"]
             + [f"mar_{m}" for m in max_detections] + ["mar_small", "mar_medium", "mar_large"])
    return dict(zip(names, coco_map(predictions, targets, max_detections).tolist()))



# --------------------------------------------------------------------------------------------
# Object proposals (Uijlings et al., IJCV 2013, section 5.1)


def _per_image(value: object, name: str) -> list[Tensor]:
    """A list of ``[N, 4]`` box tensors from one tensor (one image) or a sequence of them (several)."""
    images = [value] if isinstance(value, Tensor) else value
    if not isinstance(images, (list, tuple)):
        raise TypeError(f"{name} must be a Tensor[N, 4] or a list of them (one per image), got {type(value).__name__}")
    return [check_boxes(boxes, f"{name}[{i}]" if len(images) > 1 else name).detach().cpu().double()
            for i, boxes in enumerate(images)]


def _best_overlaps(proposals: object, gt_boxes: object) -> Tensor:
    """For every ground-truth box of every image, the best IoU any proposal of that image reaches: ``[G]``."""
    proposals, gt_boxes = _per_image(proposals, "proposals"), _per_image(gt_boxes, "gt_boxes")
    if len(proposals) != len(gt_boxes):
        raise ValueError(f"proposals and gt_boxes must cover the same images, got {len(proposals)} and {len(gt_boxes)}")
    best = [box_iou(gt, boxes).amax(dim=1) if len(boxes) else torch.zeros(len(gt), dtype=torch.float64)
            for boxes, gt in zip(proposals, gt_boxes)]
    best = torch.cat(best) if best else torch.zeros(0, dtype=torch.float64)
    if best.numel() == 0:
        raise ValueError("gt_boxes must hold at least one box: recall and MABO are undefined without objects")
    return best


def proposal_recall(proposals: Tensor | Sequence[Tensor], gt_boxes: Tensor | Sequence[Tensor],
                    iou_threshold: float = 0.5) -> float:
    """The fraction of ground-truth boxes that some proposal of their image overlaps by IoU >= the threshold.

        recall = |{ g : max_{l in L} IoU(g, l) >= t }| / |G|

    No one-to-one matching: one proposal may cover several objects (the recall of a proposal set,
    as selective search and RPN papers report it).

    Args:
        proposals: ``Tensor[N, 4]`` xyxy for one image, or a list with one such tensor per image
            (take the first n rows of each to get recall at n proposals).
        gt_boxes: ``Tensor[G, 4]`` xyxy for one image, or a list like ``proposals``.
        iou_threshold: t in [0, 1].

    Returns:
        The recall as a Python float.
    """
    threshold = _check_threshold(iou_threshold, "iou_threshold")
    return float((_best_overlaps(proposals, gt_boxes) >= threshold).double().mean())


def mabo(proposals: Tensor | Sequence[Tensor], gt_boxes: Tensor | Sequence[Tensor],
         gt_labels: Sequence | Sequence[Sequence] | None = None) -> float:
    """Mean average best overlap (Uijlings et al. 2013, eq. 9 and the text after it).

        ABO(c) = 1 / |G^c| sum_{g in G^c} max_{l in L} IoU(g, l)        MABO = mean over classes c of ABO(c)

    Args:
        proposals: ``Tensor[N, 4]`` xyxy for one image, or a list with one such tensor per image.
        gt_boxes: ``Tensor[G, 4]`` xyxy for one image, or a list like ``proposals``.
        gt_labels: the class of every ground-truth box (a sequence of G labels for one image, or one such
            sequence per image; any hashable labels). ``None``: all boxes are one class, MABO = ABO.

    Returns:
        MABO as a Python float.
    """
    best = _best_overlaps(proposals, gt_boxes)
    if gt_labels is None:
        return float(best.mean())
    per_image = [gt_labels] if isinstance(gt_boxes, Tensor) else list(gt_labels)
    labels = [label.item() if isinstance(label, Tensor) else label for image in per_image for label in image]
    if len(labels) != len(best):
        raise ValueError(f"gt_labels must give one label per ground-truth box ({len(best)}), got {len(labels)}")
    classes: dict[object, list[float]] = {}
    for label, overlap in zip(labels, best.tolist()):
        classes.setdefault(label, []).append(overlap)
    return float(np.mean([np.mean(overlaps) for overlaps in classes.values()]))

__all__ = ["precision_recall_curve", "average_precision", "precision_envelope", "interpolated_precision",
           "match_detections_voc", "match_detections_coco",
           "mean_average_precision", "coco_map", "coco_metrics",
           "AP_METHODS", "VOC2007_RECALL_THRESHOLDS", "COCO_RECALL_THRESHOLDS", "COCO_IOU_THRESHOLDS",
           "COCO_AREA_RANGES", "COCO_MAX_DETECTIONS", "proposal_recall", "mabo"]
