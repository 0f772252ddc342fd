"""Anchors: the reference boxes a region proposal network classifies and regresses from.

Faster R-CNN (Ren et al., NeurIPS 2015, section 3.1) places k anchors at every position of the
feature map, one per (size, aspect ratio) pair: 3 sizes (areas 128², 256², 512²) times 3 aspect
ratios (1:2, 1:1, 2:1) gives k = 9. An anchor of size s and aspect ratio a = h / w has

    w = s / sqrt(a)        h = s * sqrt(a)        (so w * h = s², whatever a)

and is centred on the image point that the feature-map position (i, j) maps to,
``(j * stride_x, i * stride_y)``, with ``stride = image size // feature-map size``. A feature map of
W x H positions thus carries W * H * k anchors, ordered position by position (row-major), and within
a position by aspect ratio, then size.

Matches ``torchvision.models.detection.anchor_utils.AnchorGenerator``: the same zero-centred cell
anchors, rounded to whole pixels, the same grid (anchors centred on ``j * stride``, not
``(j + 0.5) * stride``) and the same order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

__all__ = ["ImageList", "AnchorGenerator", "cell_anchors", "grid_anchors"]


@dataclass
class ImageList:
    """A batch of images padded to one size, and the size of each before padding.

    Duck-compatible with ``torchvision.models.detection.image_list.ImageList``.

    Attributes:
        tensors: ``Tensor[B, C, H, W]``.
        image_sizes: ``[(height, width)] * B``, the unpadded size of each image.
    """

    tensors: Tensor
    image_sizes: list[tuple[int, int]]

    @classmethod
    def from_tensor(cls, images: Tensor) -> "ImageList":
        """Wrap a batch of equally sized images ``Tensor[B, C, H, W]``."""
        if not isinstance(images, Tensor) or images.dim() != 4:
            raise ValueError(f"images must be a Tensor[B, C, H, W], got "
                             f"{list(images.shape) if isinstance(images, Tensor) else type(images).__name__}")
        return cls(images, [tuple(images.shape[-2:])] * images.shape[0])


def cell_anchors(sizes: Sequence[float], aspect_ratios: Sequence[float], dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu") -> Tensor:
    """The k = len(aspect_ratios) * len(sizes) anchors of one position, centred on (0, 0).

    Args:
        sizes: anchor sizes s (the square root of the area), in pixels.
        aspect_ratios: height / width of each anchor.

    Returns:
        ``Tensor[A * S, 4]`` xyxy, ordered by aspect ratio then size, rounded to whole pixels.
    """
    scales = torch.as_tensor(sizes, dtype=dtype, device=device)
    ratios = torch.as_tensor(aspect_ratios, dtype=dtype, device=device)
    if scales.dim() != 1 or ratios.dim() != 1 or scales.numel() == 0 or ratios.numel() == 0:
        raise ValueError(f"sizes and aspect_ratios must be non-empty sequences of numbers, got {sizes!r} and "
                         f"{aspect_ratios!r}")
    if not (scales > 0).all() or not (ratios > 0).all():
        raise ValueError(f"sizes and aspect_ratios must be positive, got {sizes!r} and {aspect_ratios!r}")
    h_ratios = torch.sqrt(ratios)                          # h = s * sqrt(a)
    w_ratios = 1 / h_ratios                                # w = s / sqrt(a)
    widths = (w_ratios[:, None] * scales[None, :]).reshape(-1)     # [A * S]
    heights = (h_ratios[:, None] * scales[None, :]).reshape(-1)
    return (torch.stack((-widths, -heights, widths, heights), dim=1) / 2).round()


def grid_anchors(base_anchors: Tensor, grid_size: tuple[int, int], stride: tuple[int, int]) -> Tensor:
    """Copies of ``base_anchors`` shifted to every position of a feature map.

    Args:
        base_anchors: ``Tensor[k, 4]`` anchors centred on (0, 0).
        grid_size: ``(height, width)`` of the feature map.
        stride: ``(stride_y, stride_x)`` in image pixels per feature-map position.

    Returns:
        ``Tensor[height * width * k, 4]``: position (i, j)'s k anchors centred on (j * stride_x, i * stride_y).
    """
    height, width = grid_size
    device = base_anchors.device
    shifts_x = torch.arange(0, width, dtype=torch.int32, device=device) * stride[1]
    shifts_y = torch.arange(0, height, dtype=torch.int32, device=device) * stride[0]
    shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
    shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
    shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)                # [H * W, 4]
    return (shifts.view(-1, 1, 4) + base_anchors.view(1, -1, 4)).reshape(-1, 4)     # [H * W * k, 4]


class AnchorGenerator(nn.Module):
    """Anchors for every image of a batch and every feature map, as torchvision's ``AnchorGenerator``.

    Args:
        sizes: one tuple of sizes per feature map (``((128, 256, 512),)`` for one map), or a flat tuple,
            which means one size per feature map.
        aspect_ratios: one tuple of height / width ratios per feature map, or one tuple for all.
    """

    def __init__(self, sizes: Sequence = ((128, 256, 512),), aspect_ratios: Sequence = ((0.5, 1.0, 2.0),)) -> None:
        super().__init__()
        if len(sizes) == 0:
            raise ValueError("sizes must name at least one size")
        if not isinstance(sizes[0], (list, tuple)):
            sizes = tuple((s,) for s in sizes)
        if len(aspect_ratios) == 0:
            raise ValueError("aspect_ratios must name at least one ratio")
        if not isinstance(aspect_ratios[0], (list, tuple)):
            aspect_ratios = (tuple(aspect_ratios),) * len(sizes)
        if len(sizes) != len(aspect_ratios):
            raise ValueError(f"sizes and aspect_ratios must have one entry per feature map, got {len(sizes)} "
                             f"and {len(aspect_ratios)}")
        self.sizes = tuple(tuple(s) for s in sizes)
        self.aspect_ratios = tuple(tuple(a) for a in aspect_ratios)
        self.cell_anchors = [cell_anchors(s, a) for s, a in zip(self.sizes, self.aspect_ratios)]

    def num_anchors_per_location(self) -> list[int]:
        """k for each feature map."""
        return [len(s) * len(a) for s, a in zip(self.sizes, self.aspect_ratios)]

    def forward(self, image_list: ImageList, feature_maps: list[Tensor]) -> list[Tensor]:
        """Anchors of each image.

        Args:
            image_list: the (padded) batch; its padded size sets the strides.
            feature_maps: ``[Tensor[B, C, H_l, W_l]]``, one per level, as many as ``sizes``.

        Returns:
            one ``Tensor[sum_l H_l * W_l * k_l, 4]`` per image (all images get the same anchors).
        """
        if len(feature_maps) != len(self.cell_anchors):
            raise ValueError(f"feature_maps must have one map per entry of sizes ({len(self.cell_anchors)}), "
                             f"got {len(feature_maps)}")
        image_size = image_list.tensors.shape[-2:]
        dtype, device = feature_maps[0].dtype, feature_maps[0].device
        per_level = []
        for feature_map, base in zip(feature_maps, self.cell_anchors):
            grid = tuple(feature_map.shape[-2:])
            stride = (image_size[0] // grid[0], image_size[1] // grid[1])
            per_level.append(grid_anchors(base.to(dtype=dtype, device=device), grid, stride))
        anchors = torch.cat(per_level)
        return [anchors for _ in range(len(image_list.image_sizes))]
