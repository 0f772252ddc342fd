"""Balanced sampling of positive and negative examples for the detection losses.

An image has thousands of anchors (or proposals) but only a handful of objects: a loss over all of
them would be dominated by easy negatives. Both stages of Faster R-CNN therefore train on a random
mini-batch per image with a capped share of positives:

    RPN (Faster R-CNN, section 3.1.3):   256 anchors per image, up to half positive
    Fast R-CNN head (Fast R-CNN, 2.3):    64 (or 128, 512) RoIs per image, up to 25 % foreground

    num_pos = min(#positives, int(batch_size_per_image * positive_fraction))
    num_neg = min(#negatives, batch_size_per_image - num_pos)

so that an image with few positives is padded with negatives. Labels follow the matcher's output:
``>= 1`` positive, ``0`` negative, ``-1`` ignored (never sampled).

Matches ``torchvision.models.detection._utils.BalancedPositiveNegativeSampler`` in counts and output
format; which elements are drawn depends on the random generator.
"""
from __future__ import annotations

import torch
from torch import Tensor

from cvkit._checks import check_tensor

__all__ = ["BalancedPositiveNegativeSampler"]


class BalancedPositiveNegativeSampler:
    """Draw ``batch_size_per_image`` elements per image, at most ``positive_fraction`` of them positive.

    Args:
        batch_size_per_image: elements sampled per image (fewer when the image has fewer labelled ones).
        positive_fraction: the largest share of positives, in [0, 1].
        generator: optional ``torch.Generator`` for the draws (the global one by default).
    """

    def __init__(self, batch_size_per_image: int, positive_fraction: float,
                 generator: torch.Generator | None = None) -> None:
        if not isinstance(batch_size_per_image, int) or batch_size_per_image < 0:
            raise ValueError(f"batch_size_per_image must be a non-negative int, got {batch_size_per_image!r}")
        if not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(f"positive_fraction must be in [0, 1], got {positive_fraction!r}")
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction
        self.generator = generator

    def _draw(self, candidates: Tensor, count: int) -> Tensor:
        if self.generator is None:
            order = torch.randperm(candidates.numel(), device=candidates.device)
        else:
            order = torch.randperm(candidates.numel(), generator=self.generator).to(candidates.device)
        return candidates[order[:count]]

    def __call__(self, matched_idxs: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Sample.

        Args:
            matched_idxs: one ``Tensor[N_i]`` of labels per image: ``>= 1`` positive, ``0`` negative,
                ``-1`` ignored.

        Returns:
            ``(pos_masks, neg_masks)``: per image, ``uint8`` masks ``[N_i]`` of the sampled positives and negatives.
        """
        if not isinstance(matched_idxs, (list, tuple)):
            raise TypeError(f"matched_idxs must be a list with one Tensor[N] per image, got {type(matched_idxs).__name__}")
        pos_masks, neg_masks = [], []
        for i, labels in enumerate(matched_idxs):
            check_tensor(labels, f"matched_idxs[{i}]")
            positive = torch.where(labels >= 1)[0]
            negative = torch.where(labels == 0)[0]
            num_pos = min(positive.numel(), int(self.batch_size_per_image * self.positive_fraction))
            num_neg = min(negative.numel(), self.batch_size_per_image - num_pos)
            pos_mask = torch.zeros_like(labels, dtype=torch.uint8)
            neg_mask = torch.zeros_like(labels, dtype=torch.uint8)
            pos_mask[self._draw(positive, num_pos)] = 1
            neg_mask[self._draw(negative, num_neg)] = 1
            pos_masks.append(pos_mask)
            neg_masks.append(neg_mask)
        return pos_masks, neg_masks
