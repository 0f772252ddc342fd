"""Argument checks shared by the operators: each error names the argument and what was expected."""
from __future__ import annotations

import torch
from torch import Tensor


def check_tensor(value: object, name: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_boxes(boxes: object, name: str = "boxes", *, batched: bool = False, floating: bool = False,
                ordered: bool = False, fmt: str = "xyxy") -> Tensor:
    """Check a box tensor: shape ``[N, 4]`` (any ``[..., 4]`` when ``batched``), a real dtype.

    Args:
        floating: require a floating-point dtype (else integers are accepted too, as torchvision does).
        ordered: require ``x2 >= x1`` and ``y2 >= y1`` (``w >= 0`` and ``h >= 0`` when ``fmt`` stores
            the size); fails on NaN as well. Compares, never subtracts: ``x2 - x1`` wraps around or
            overflows in small integer types.
    """
    boxes = check_tensor(boxes, name)
    ok_rank = boxes.dim() >= 1 if batched else boxes.dim() == 2
    if not ok_rank or boxes.shape[-1] != 4:
        expected = "[..., 4]" if batched else "[N, 4]"
        raise ValueError(f"{name} must have shape {expected}, got {list(boxes.shape)}")
    if boxes.dtype == torch.bool or boxes.is_complex():
        raise TypeError(f"{name} must hold real numbers, got dtype {boxes.dtype}")
    if floating and not boxes.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {boxes.dtype}")
    if ordered and boxes.numel() > 0:
        bad = ~(boxes[..., 2:] >= (boxes[..., :2] if fmt == "xyxy" else 0)).all(dim=-1)
        if bad.any():
            i = int(bad.reshape(-1).nonzero()[0])
            row = boxes.reshape(-1, 4)[i].tolist()
            rule = "(x1, y1, x2, y2) with x2 >= x1 and y2 >= y1" if fmt == "xyxy" else f"{fmt} with w >= 0 and h >= 0"
            raise ValueError(f"{name} must be {rule}; box {i} is {row}")
    return boxes


def check_scores(scores: object, count: int, name: str = "scores", like: Tensor | None = None) -> Tensor:
    """Check a score vector of length ``count``, on the device (and dtype) of ``like``."""
    scores = check_tensor(scores, name)
    if scores.dim() != 1 or scores.shape[0] != count:
        raise ValueError(f"{name} must have shape [{count}] (one per box), got {list(scores.shape)}")
    if like is not None:
        if scores.device != like.device:
            raise ValueError(f"{name} must be on the device of the boxes ({like.device}), got {scores.device}")
        if scores.dtype != like.dtype:
            raise TypeError(f"{name} must have the dtype of the boxes ({like.dtype}), got {scores.dtype}")
    return scores
