"""A synthetic semantic-segmentation set: coloured shapes on crops of real photos, with per-pixel labels.

Each image is a crop of one of the bundled scikit-image photos (:func:`cvkit.datasets.shapes.photo_background`)
with one to a few shapes (:data:`cvkit.datasets.shapes.SHAPES`: circle, square, triangle, cross, ring,
star) painted on it in random colours, sizes, rotations and places. The label of a pixel is the kind of
the shape painted last over it, or background (0). The colour says nothing about the class: a network
has to tell a ring from a circle by its shape, and draw the boundary where it is, which is what the
skips of a U-Net are for. Rings, crosses and stars have parts a few pixels thin.

Image ``i`` of a set depends only on ``(seed, i)``: the same on every machine, and a set of ``n``
images is the first ``n`` of any larger set with the same seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from cvkit.datasets.shapes import SHAPES, paste, photo_background, shape_mask

__all__ = ["SegmentationSet", "draw_scene", "shapes_segmentation"]

_SEED_STRIDE = 1_000_003   # image i of seed s uses generator seed s * _SEED_STRIDE + i


@dataclass
class SegmentationSet:
    """Images and their label maps.

    Attributes:
        images: float32 Tensor[N, 3, H, W], values in [0, 1].
        masks: int64 Tensor[N, H, W]; 0 is background, ``k + 1`` the shape ``classes[k + 1]``.
        classes: the class names, ``classes[0] == "background"``.
    """

    images: Tensor
    masks: Tensor
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index], self.masks[index]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def loader(self, batch_size: int = 32, shuffle: bool = True, seed: int = 0) -> DataLoader:
        """A DataLoader of ``(images [B, 3, H, W], masks [B, H, W])`` batches, shuffled reproducibly by ``seed``."""
        generator = torch.Generator().manual_seed(seed)
        return DataLoader(TensorDataset(self.images, self.masks), batch_size=batch_size, shuffle=shuffle,
                          generator=generator)


def _check_range(value: Sequence[int], name: str, low: int) -> tuple[int, int]:
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            or not low <= value[0] <= value[1]):
        raise ValueError(f"{name} must be (smallest, largest) integers with {low} <= smallest <= largest, "
                         f"got {value!r}")
    return int(value[0]), int(value[1])


def draw_scene(generator: torch.Generator, image_size: int = 64, kinds: Sequence[str] = SHAPES,
               shapes_per_image: tuple[int, int] = (2, 4), shape_size: tuple[int, int] = (12, 30)) -> tuple[Tensor, Tensor]:
    """One image and its label map, every random choice drawn from ``generator``.

    Shapes may overlap and may be cut by the border (at least half of each lies inside); a later shape
    covers an earlier one, in the picture and in the labels.

    Returns:
        ``(image float32 [3, S, S], mask int64 [S, S])`` with ``S = image_size``; label ``k + 1`` for ``kinds[k]``.
    """
    image = photo_background(image_size, image_size, generator)
    mask = torch.zeros(image_size, image_size, dtype=torch.int64)
    count = int(torch.randint(shapes_per_image[0], shapes_per_image[1] + 1, (1,), generator=generator))
    for _ in range(count):
        kind = int(torch.randint(len(kinds), (1,), generator=generator))
        size = int(torch.randint(shape_size[0], shape_size[1] + 1, (1,), generator=generator))
        angle = float(torch.rand((), generator=generator)) * 360.0
        top, left = (torch.randint(-size // 4, image_size - size + size // 4 + 1, (2,), generator=generator)).tolist()
        color = torch.rand(3, generator=generator)
        shape = shape_mask(kinds[kind], size, angle)                                  # [size, size] bool
        paste(image, shape, top, left, color)
        paste(mask[None], shape, top, left, (kind + 1,))                             # same pixels, as labels
    return image, mask


def shapes_segmentation(n: int, image_size: int = 64, kinds: Sequence[str] = SHAPES,
                        shapes_per_image: tuple[int, int] = (2, 4), shape_size: tuple[int, int] = (12, 30),
                        seed: int = 0, progress: bool = False) -> SegmentationSet:
    """``n`` images of shapes on photo crops with their per-pixel class labels (see the module docstring).

    Args:
        n: number of images (>= 0).
        image_size: side of the square images, at least ``shape_size``'s largest value.
        kinds: the shape kinds used, each one of :data:`cvkit.datasets.shapes.SHAPES`; class ``k + 1`` is ``kinds[k]``.
        shapes_per_image: the fewest and most shapes in one image.
        shape_size: the smallest and largest side, in pixels, of a shape's square.
        seed: the same seed gives the same set.
        progress: show a tqdm bar.

    Returns:
        a :class:`SegmentationSet` with ``classes = ("background", *kinds)``.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    kinds = tuple(kinds)
    if not kinds or len(set(kinds)) != len(kinds) or any(k not in SHAPES for k in kinds):
        raise ValueError(f"kinds must be distinct names from {SHAPES}, got {kinds!r}")
    shapes_per_image = _check_range(shapes_per_image, "shapes_per_image", 0)
    shape_size = _check_range(shape_size, "shape_size", 3)
    if not isinstance(image_size, int) or image_size < shape_size[1]:
        raise ValueError(f"image_size must be an integer >= the largest shape_size {shape_size[1]}, got {image_size!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")

    images = torch.empty(n, 3, image_size, image_size)
    masks = torch.empty(n, image_size, image_size, dtype=torch.int64)
    for i in tqdm(range(n), desc="drawing shapes", disable=not progress, leave=False):
        generator = torch.Generator().manual_seed(seed * _SEED_STRIDE + i)
        images[i], masks[i] = draw_scene(generator, image_size, kinds, shapes_per_image, shape_size)
    return SegmentationSet(images, masks, ("background", *kinds))
