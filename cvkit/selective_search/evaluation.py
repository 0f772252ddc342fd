"""Proposal quality against the number of proposals, and the two peers selective search is measured
beside: OpenCV's implementation (``cv2.ximgproc.segmentation``) and uninformed sliding windows.

For the first n proposals of every image, recall at an IoU threshold and MABO (Uijlings et al. 2013,
section 5.1; :func:`cvkit.metrics.proposal_recall`, :func:`cvkit.metrics.mabo`).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from cvkit.metrics import mabo, proposal_recall

__all__ = ["opencv_selective_search", "sliding_windows", "proposal_curves"]


def opencv_selective_search(image: np.ndarray, mode: str = "fast") -> Tensor:
    """OpenCV's selective search (``switchToSelectiveSearchFast`` / ``Single`` / ``Quality``) as xyxy boxes.

    Args:
        image: ``[H, W, 3]`` uint8 RGB.
        mode: ``'single'``, ``'fast'`` or ``'quality'``.

    Returns:
        ``Tensor[N, 4]`` float32 xyxy, in OpenCV's ranking (OpenCV's ``(x, y, w, h)`` spans w pixels,
        so x2 = x + w, the convention of :func:`cvkit.selective_search.selective_search`).
    """
    import cv2

    switch = {"single": "switchToSingleStrategy", "fast": "switchToSelectiveSearchFast",
              "quality": "switchToSelectiveSearchQuality"}
    if mode not in switch:
        raise ValueError(f"mode must be one of {', '.join(switch)}, got {mode!r}")
    search = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    search.setBaseImage(np.ascontiguousarray(image[:, :, ::-1]))            # OpenCV wants BGR
    getattr(search, switch[mode])()
    boxes = torch.as_tensor(np.asarray(search.process(), dtype=np.float32).reshape(-1, 4))
    return torch.cat((boxes[:, :2], boxes[:, :2] + boxes[:, 2:]), dim=1)


def sliding_windows(height: int, width: int, count: int | None = None, min_side: float = 24.0,
                    scale_step: float = 2 ** 0.5, aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
                    overlap: float = 0.5, seed: int = 0) -> Tensor:
    """Windows of every size, shape and place, in random order: what a detector without proposals scans.

    Square sides grow geometrically from ``min_side`` by ``scale_step`` up to the image; each is
    stretched to every aspect ratio (height / width) and slid with a stride of (1 - overlap) of its side.

    Args:
        height, width: the image size.
        count: keep the first ``count`` windows of the shuffled set (``None``: all).
        min_side, scale_step, aspect_ratios, overlap: the grid.
        seed: the shuffle.

    Returns:
        ``Tensor[N, 4]`` float32 xyxy, clipped to the image.
    """
    windows = []
    side = float(min_side)
    while side <= max(height, width) * 1.001:
        for ratio in aspect_ratios:
            w, h = side / ratio ** 0.5, side * ratio ** 0.5
            if w > width * 1.001 or h > height * 1.001:
                continue
            xs = np.arange(0, max(width - w, 0) + 1e-6, max(w * (1 - overlap), 1))
            ys = np.arange(0, max(height - h, 0) + 1e-6, max(h * (1 - overlap), 1))
            x, y = np.meshgrid(xs, ys)
            windows.append(np.stack((x.ravel(), y.ravel(), x.ravel() + w, y.ravel() + h), axis=1))
        side *= scale_step
    boxes = torch.from_numpy(np.concatenate(windows)).float() if windows else torch.zeros(0, 4)
    boxes = boxes[torch.randperm(len(boxes), generator=torch.Generator().manual_seed(seed))]
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    return boxes if count is None else boxes[:count]


def proposal_curves(proposals: Sequence[Tensor], gt_boxes: Sequence[Tensor], gt_labels: Sequence[Sequence] | None,
                    counts: Sequence[int], iou_thresholds: Sequence[float] = (0.5, 0.7)) -> dict[str, list[float]]:
    """Recall and MABO over several images when each keeps only its first n proposals, for every n.

    Args:
        proposals: one ``Tensor[N_i, 4]`` per image, best ranked first.
        gt_boxes: one ``Tensor[G_i, 4]`` per image.
        gt_labels: one sequence of G_i class labels per image (MABO averages per class), or ``None``.
        counts: the values of n.
        iou_thresholds: thresholds for recall.

    Returns:
        ``{'count': n values, 'boxes': mean proposals per image actually kept, 'recall@0.5': ..., 'mabo': ...}``.
    """
    curves: dict[str, list[float]] = {"count": [float(n) for n in counts], "boxes": []}
    for t in iou_thresholds:
        curves[f"recall@{t:g}"] = []
    curves["mabo"] = []
    for n in counts:
        kept = [p[:n] for p in proposals]
        curves["boxes"].append(float(np.mean([len(p) for p in kept])))
        for t in iou_thresholds:
            curves[f"recall@{t:g}"].append(proposal_recall(kept, list(gt_boxes), t))
        curves["mabo"].append(mabo(kept, list(gt_boxes), gt_labels))
    return curves
