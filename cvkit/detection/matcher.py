"""Matching proposals (or anchors) to ground-truth boxes by IoU, with Faster R-CNN's low-quality rule.

Each anchor takes the ground-truth box it overlaps most and is labelled by that IoU
(Faster R-CNN, section 3.1.2; RPN thresholds 0.7 and 0.3):

    IoU >= high_threshold                 -> matched to that box (positive)
    low_threshold <= IoU < high_threshold -> BETWEEN_THRESHOLDS (-2): ignored in the loss
    IoU < low_threshold                   -> BELOW_LOW_THRESHOLD (-1): negative

An object of unusual size or shape may reach 0.7 with no anchor. The paper's first positive rule
then makes *the anchor(s) of highest IoU with each ground-truth box* positive as well, whatever that
IoU: ``allow_low_quality_matches``. Every anchor tied for a box's highest IoU is promoted, and it
is matched to *its own* best box (the one it would have taken anyway), which may be another box.

Matches ``torchvision.models.detection._utils.Matcher``, including both quirks above.
"""
from __future__ import annotations

import torch
from torch import Tensor

from cvkit._checks import check_tensor

__all__ = ["Matcher"]


class Matcher:
    """Assign each prediction (column) the ground-truth element (row) of highest quality, or a negative code.

    Args:
        high_threshold: quality (IoU) at or above which a prediction is matched.
        low_threshold: quality below which a prediction is a negative; in between it is ignored.
        allow_low_quality_matches: also match, for every ground-truth element, the predictions of highest
            quality with it (ties included), even below ``high_threshold``.
    """

    BELOW_LOW_THRESHOLD = -1
    BETWEEN_THRESHOLDS = -2

    def __init__(self, high_threshold: float, low_threshold: float, allow_low_quality_matches: bool = False) -> None:
        if low_threshold > high_threshold:
            raise ValueError(f"low_threshold must be <= high_threshold, got {low_threshold} > {high_threshold}")
        self.high_threshold = high_threshold
        self.low_threshold = low_threshold
        self.allow_low_quality_matches = allow_low_quality_matches

    def __call__(self, match_quality_matrix: Tensor) -> Tensor:
        """Match.

        Args:
            match_quality_matrix: ``Tensor[M, N]``, the quality (IoU) of ground-truth element m with prediction n.

        Returns:
            ``Tensor[N]`` int64: the matched ground-truth index in ``[0, M)``, or ``BELOW_LOW_THRESHOLD`` (-1)
            or ``BETWEEN_THRESHOLDS`` (-2).
        """
        check_tensor(match_quality_matrix, "match_quality_matrix")
        if match_quality_matrix.dim() != 2:
            raise ValueError(f"match_quality_matrix must have shape [M ground truth, N predictions], got "
                             f"{list(match_quality_matrix.shape)}")
        if match_quality_matrix.numel() == 0:
            if match_quality_matrix.shape[0] == 0:     # as torchvision: callers handle images without objects
                raise ValueError("match_quality_matrix has no rows: no ground-truth boxes to match "
                                 "(label every prediction background instead)")
            raise ValueError("match_quality_matrix has no columns: no predictions to match")
        matched_vals, matches = match_quality_matrix.max(dim=0)             # best ground truth of each column
        best_matches = matches.clone() if self.allow_low_quality_matches else None
        below = matched_vals < self.low_threshold
        between = (matched_vals >= self.low_threshold) & (matched_vals < self.high_threshold)
        matches[below] = self.BELOW_LOW_THRESHOLD
        matches[between] = self.BETWEEN_THRESHOLDS
        if best_matches is not None:
            # for each ground-truth row, every column that reaches the row's maximum (ties included)
            highest_per_gt = match_quality_matrix.max(dim=1).values                       # [M]
            _, columns = torch.where(match_quality_matrix == highest_per_gt[:, None])
            matches[columns] = best_matches[columns]
        return matches
