"""Running a detector over a data set, and the COCO evaluation through pycocotools as a cross-check.

:func:`predict` collects torchvision-format predictions and targets, which ``cvkit.metrics``
(``mean_average_precision`` for VOC AP@0.5, ``coco_metrics`` for COCO mAP) evaluate directly;
:func:`pycocotools_stats` hands the same predictions to pycocotools' ``COCOeval`` with the data set's
COCO annotations, so that the two evaluations can be compared number by number.
"""
from __future__ import annotations

import contextlib
import io
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

__all__ = ["predict", "pycocotools_stats"]


@torch.no_grad()
def predict(model: nn.Module, dataset: Sequence, batch_size: int = 16, device: torch.device | str = "cpu",
            progress: bool = False) -> tuple[list[dict[str, Tensor]], list[dict[str, Tensor]]]:
    """The model's detections on every image of ``dataset`` and the matching targets, on the CPU.

    Args:
        model: a detector returning ``[{'boxes', 'scores', 'labels'}]`` in eval mode (it is put in eval mode).
        dataset: items ``(image [3, H, W], target dict)``.
        batch_size: images per forward pass.
        progress: show a tqdm bar.

    Returns:
        ``(predictions, targets)``, one dict per image, in data set order.
    """
    model.eval()
    predictions, targets = [], []
    starts = range(0, len(dataset), batch_size)
    for start in tqdm(starts, desc="detect", disable=not progress, leave=False):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        images = torch.stack([image for image, _ in items]).to(device)
        for detection, (_, target) in zip(model(images), items):
            predictions.append({key: value.cpu() for key, value in detection.items()})
            targets.append(target)
    return predictions, targets


def pycocotools_stats(coco_annotations: dict, predictions: Sequence[dict[str, Tensor]]) -> np.ndarray:
    """pycocotools' ``COCOeval(...).stats`` for boxes: the twelve numbers of ``cvkit.metrics.coco_map``.

    Args:
        coco_annotations: the ground truth as a COCO ``instances`` dict (image ids 1, 2, ... in the order of
            ``predictions``), e.g. ``ShapesDetection.to_coco()``.
        predictions: one dict per image with ``'boxes'`` (xyxy), ``'scores'`` and ``'labels'`` (category ids).

    Returns:
        ``float64`` array of 12: AP@[.5:.95], AP@.5, AP@.75, AP S/M/L, AR@1, AR@10, AR@100, AR S/M/L.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    results = []
    for image_id, prediction in enumerate(predictions, start=1):
        boxes = prediction["boxes"].detach().cpu().double()
        for (x1, y1, x2, y2), score, label in zip(boxes.tolist(), prediction["scores"].tolist(),
                                                  prediction["labels"].tolist()):
            results.append({"image_id": image_id, "category_id": int(label), "bbox": [x1, y1, x2 - x1, y2 - y1],
                            "score": float(score)})
    with contextlib.redirect_stdout(io.StringIO()):          # pycocotools prints its progress
        ground_truth = COCO()
        ground_truth.dataset = coco_annotations
        ground_truth.createIndex()
        if not results:
            raise ValueError("predictions hold no detection: pycocotools cannot evaluate an empty result list")
        evaluation = COCOeval(ground_truth, ground_truth.loadRes(results), iouType="bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return np.asarray(evaluation.stats, dtype=np.float64)
