"""Non-maximum suppression: greedy NMS, class-aware (batched) NMS and Soft-NMS.

A detector fires many overlapping boxes on one object. Greedy NMS keeps the best of them:

    1. sort the boxes by score, highest first;
    2. keep the first box that is still alive;
    3. suppress every later box whose IoU with it is *strictly greater* than the threshold;
    4. repeat 2-3 until no box is left.

``nms_reference`` is exactly that loop. ``nms``, the one to call, computes the same thing in
blocks of boxes so that the IoUs are computed by whole-tensor operations (see ``_greedy_nms``).
Both return torchvision's indices: the same sort (so the same order among equal scores), the same
float arithmetic for the IoU, and a box whose IoU equals the threshold is kept.

Soft-NMS (Bodla et al., ICCV 2017, eq. 2 and 3) decays the scores of overlapping boxes instead of
removing them, with M the box just selected:

    linear:    s_i <- s_i (1 - IoU(M, b_i))    if IoU(M, b_i) >= N_t
    gaussian:  s_i <- s_i exp(-IoU(M, b_i)^2 / sigma)
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from cvkit._checks import check_boxes, check_scores, check_tensor

# Boxes compared against each other in one step of the fast NMS: a block of B boxes against at
# most this many elements of IoU matrix at a time (bounds memory to a few tens of MB).
_BLOCK = 128
_MAX_PAIRS = 1 << 21


def _check_nms_args(boxes: Tensor, scores: Tensor, iou_threshold: float) -> None:
    check_boxes(boxes, floating=True, ordered=True)
    check_scores(scores, boxes.shape[0], like=boxes)
    if not isinstance(iou_threshold, (int, float)) or isinstance(iou_threshold, bool) or math.isnan(iou_threshold):
        raise TypeError(f"iou_threshold must be a number, got {iou_threshold!r}")


def _threshold_for(dtype: torch.dtype, iou_threshold: float) -> float:
    """The float of ``dtype`` to compare against so that ``iou > t`` decides as in double precision.

    torchvision compares each float32 IoU with the threshold as a C++ double. torch would round the
    threshold to float32 first, which flips the decision when the IoU is exactly that rounded value.
    The largest float32 not above the threshold gives the double-precision answer for every float32 IoU.
    """
    if dtype != torch.float32:
        return iou_threshold
    rounded = np.float32(iou_threshold)
    if float(rounded) > iou_threshold:
        rounded = np.nextafter(rounded, np.float32(-np.inf))
    return float(rounded)


def _pairwise_iou(a: Tensor, area_a: Tensor, b: Tensor, area_b: Tensor) -> Tensor:
    """IoU ``[len(a), len(b)]`` with torchvision's NMS arithmetic: inter / (area_i + area_j - inter)."""
    w = (torch.min(a[:, None, 2], b[None, :, 2]) - torch.max(a[:, None, 0], b[None, :, 0])).clamp_(min=0)
    h = (torch.min(a[:, None, 3], b[None, :, 3]) - torch.max(a[:, None, 1], b[None, :, 1])).clamp_(min=0)
    inter = w.mul_(h)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def nms_reference(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy NMS as a plain loop over boxes, the way the algorithm is written down. Slow; for reading.

    Same arguments and result as :func:`nms`.
    """
    _check_nms_args(boxes, scores, iou_threshold)
    order = scores.sort(dim=0, descending=True, stable=True)[1].tolist()
    if boxes.dtype not in (torch.float32, torch.float64):    # half precision: computed in float32, as nms does
        boxes = boxes.float()
    x1, y1, x2, y2 = boxes.t().tolist()
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).tolist()
    f = np.float64 if boxes.dtype == torch.float64 else np.float32   # float32 arithmetic as torchvision's
    suppressed = [False] * len(order)
    keep = []
    for rank, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)                                      # the best box still alive
        for j in order[rank + 1:]:                          # suppress the later ones it overlaps
            if suppressed[j]:
                continue
            w = max(f(0), f(min(f(x2[i]), f(x2[j]))) - f(max(f(x1[i]), f(x1[j]))))
            h = max(f(0), f(min(f(y2[i]), f(y2[j]))) - f(max(f(y1[i]), f(y1[j]))))
            inter = w * h
            with np.errstate(invalid="ignore", divide="ignore"):
                iou = inter / (f(area[i]) + f(area[j]) - inter)
            if float(iou) > iou_threshold:
                suppressed[j] = True
    return torch.tensor(keep, dtype=torch.int64, device=boxes.device)


def _greedy_nms(boxes: Tensor, threshold: float, same_group: Tensor | None = None) -> Tensor:
    """Greedy NMS over boxes already sorted by score; returns a keep mask ``[N]`` (bool).

    The boxes are walked in blocks of ``_BLOCK``. Within a block the greedy rule is solved as a fixed
    point: ``alive[j] = not any(alive[i] and IoU(i, j) > t for earlier i)``; starting from all alive,
    iterating this settles one more link of every chain of suppressions per step, and stops at the
    greedy answer. The kept boxes of the block then suppress all later boxes in one tensor operation,
    and suppressed boxes leave the computation, so a box that is suppressed costs nothing more.
    ``same_group`` (optional, ``[N]`` class ids) limits suppression to boxes of one class.
    """
    n = boxes.shape[0]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    kept_mask = torch.zeros(n, dtype=torch.bool, device=boxes.device)
    rest = torch.arange(n, device=boxes.device)      # indices of the boxes still alive and not yet walked
    while rest.numel() > 0:
        block, rest = rest[:_BLOCK], rest[_BLOCK:]
        b, a = boxes[block], area[block]
        over = _pairwise_iou(b, a, b, a) > threshold                            # [B, B]
        over = torch.triu(over, diagonal=1)                                     # only earlier suppresses later
        if same_group is not None:
            over &= same_group[block][:, None] == same_group[block][None, :]
        keep = torch.ones(len(block), dtype=torch.bool, device=boxes.device)
        while True:
            new_keep = ~(over & keep[:, None]).any(0)
            if torch.equal(new_keep, keep):
                break
            keep = new_keep
        kept = block[keep]
        kept_mask[kept] = True
        if rest.numel() == 0 or kept.numel() == 0:
            continue
        # the block's kept boxes suppress the later boxes they overlap, a chunk of later boxes at a time
        chunk = max(1, _MAX_PAIRS // kept.numel())
        survivors = []
        for start in range(0, rest.numel(), chunk):
            later = rest[start:start + chunk]
            over = _pairwise_iou(boxes[kept], area[kept], boxes[later], area[later]) > threshold
            if same_group is not None:
                over &= same_group[kept][:, None] == same_group[later][None, :]
            survivors.append(later[~over.any(0)])
        rest = torch.cat(survivors)
    return kept_mask


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression, equal to ``torchvision.ops.nms``.

    Args:
        boxes: ``Tensor[N, 4]`` float boxes in ``(x1, y1, x2, y2)``.
        scores: ``Tensor[N]`` their scores, same dtype and device.
        iou_threshold: a box is suppressed by a higher-scoring kept box if their IoU is > this.

    Returns:
        ``Tensor[K]`` int64 indices of the kept boxes, in decreasing order of score.
    """
    _check_nms_args(boxes, scores, iou_threshold)
    return _nms_by_score(boxes, scores, iou_threshold)


def _nms_by_score(boxes: Tensor, scores: Tensor, iou_threshold: float, groups: Tensor | None = None) -> Tensor:
    """Sort by score as torchvision does (stable, descending), run the greedy walk, return kept indices."""
    if boxes.shape[0] == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    order = scores.sort(dim=0, descending=True, stable=True)[1]
    work = boxes if boxes.dtype in (torch.float32, torch.float64) else boxes.float()   # half: in float32
    keep = _greedy_nms(work[order], _threshold_for(work.dtype, iou_threshold),
                       same_group=None if groups is None else groups[order])
    return order[keep]


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """Class-aware NMS: boxes suppress each other only within the same category. As ``torchvision.ops.batched_nms``.

    torchvision shifts each class's boxes by ``class * (max coordinate + 1)`` for small inputs, which
    lets classes overlap when coordinates are negative and changes the IoUs' rounding; here the IoU
    test is simply restricted to pairs of one class, which is per-class NMS for any coordinates.

    Args:
        boxes: ``Tensor[N, 4]`` float boxes in ``(x1, y1, x2, y2)``.
        scores: ``Tensor[N]`` their scores.
        idxs: ``Tensor[N]`` integer category of each box.
        iou_threshold: suppress when IoU > this, within a category.

    Returns:
        ``Tensor[K]`` int64 indices of the kept boxes, in decreasing order of score.
    """
    _check_nms_args(boxes, scores, iou_threshold)
    check_tensor(idxs, "idxs")
    if idxs.shape != scores.shape or idxs.is_floating_point() or idxs.is_complex() or idxs.dtype == torch.bool:
        raise ValueError(f"idxs must be an integer Tensor[{boxes.shape[0]}] of categories, "
                         f"got {idxs.dtype} of shape {list(idxs.shape)}")
    if idxs.device != boxes.device:
        raise ValueError(f"idxs must be on the device of the boxes ({boxes.device}), got {idxs.device}")
    return _nms_by_score(boxes, scores, iou_threshold, groups=idxs)


def soft_nms_decay(iou: Tensor, method: str, iou_threshold: float, sigma: float) -> Tensor:
    """The factor Soft-NMS multiplies a score by, given its box's IoU with the box just selected."""
    if method == "linear":
        return torch.where(iou >= iou_threshold, 1 - iou, torch.ones_like(iou))   # eq. 2
    return torch.exp(-(iou * iou) / sigma)                                        # eq. 3


def soft_nms(boxes: Tensor, scores: Tensor, iou_threshold: float = 0.3, sigma: float = 0.5,
             score_threshold: float = 0.001, method: str = "gaussian") -> tuple[Tensor, Tensor]:
    """Soft-NMS (Bodla et al. 2017, Algorithm 1): decay the scores of boxes that overlap a selected box.

    Repeatedly select the box M of highest current score, then rescale every remaining box b_i:
    ``linear``: by ``1 - IoU(M, b_i)`` where ``IoU >= iou_threshold`` (eq. 2);
    ``gaussian``: by ``exp(-IoU(M, b_i)^2 / sigma)`` (eq. 3; ``iou_threshold`` is not used).
    Boxes whose score falls below ``score_threshold`` are dropped. Among equal scores the lower index
    is selected first.

    Args:
        boxes: ``Tensor[N, 4]`` float boxes in ``(x1, y1, x2, y2)``.
        scores: ``Tensor[N]`` their scores.
        iou_threshold: the overlap N_t from which the linear rule decays a score.
        sigma: the width of the Gaussian penalty, > 0.
        score_threshold: boxes whose decayed score is below this are removed.
        method: ``'linear'`` or ``'gaussian'``.

    Returns:
        ``(keep, new_scores)``: ``Tensor[K]`` int64 indices in the order selected (decreasing
        decayed score) and ``Tensor[K]`` their scores at selection.
    """
    _check_nms_args(boxes, scores, iou_threshold)
    if method not in ("linear", "gaussian"):
        raise ValueError(f"method must be 'linear' or 'gaussian', got {method!r}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    current = scores.clone()
    remaining = torch.nonzero(current >= score_threshold).flatten()
    keep, kept_scores = [], []
    while remaining.numel() > 0:
        best = int(torch.argmax(current[remaining]))              # first of equal maxima
        m = remaining[best]
        keep.append(m)
        kept_scores.append(current[m])
        remaining = torch.cat((remaining[:best], remaining[best + 1:]))
        if remaining.numel() == 0:
            break
        iou = _pairwise_iou(boxes[m][None], area[m][None], boxes[remaining], area[remaining])[0]
        current[remaining] = current[remaining] * soft_nms_decay(iou, method, iou_threshold, sigma)
        remaining = remaining[current[remaining] >= score_threshold]
    if not keep:
        return (torch.empty(0, dtype=torch.int64, device=boxes.device),
                torch.empty(0, dtype=scores.dtype, device=boxes.device))
    return torch.stack(keep), torch.stack(kept_scores)


__all__ = ["nms", "nms_reference", "batched_nms", "soft_nms", "soft_nms_decay"]
