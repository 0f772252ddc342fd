"""Glyphs under strong geometric variation: a deterministic multi-label data set for notebook 09.

Each image holds one to ``max_glyphs`` capital letters, each drawn at its own scale (a factor of about
three between the smallest and the largest), aspect ratio, rotation and shear, and bent by a smooth
random elastic warp. The label of an image says which letters it contains (multi-label: several
may be present, each at most counted once). What tells the letters apart is the arrangement of their
strokes, and that arrangement is exactly what the warps move around: the setting where a network
that can move its sampling points (deformable convolution) should have an edge over a fixed grid.

Letters are rasterised once from matplotlib's bundled DejaVu Sans outline (no download, the same on
every machine), then warped with ``grid_sample``; every random choice comes from a ``torch.Generator``.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["GLYPHS", "glyph_template", "GlyphImages", "make_glyph_images"]

GLYPHS: tuple[str, ...] = ("E", "F", "H", "K", "L", "N", "T", "X", "Y", "Z")
_TEMPLATE = 48                                   # side of the rasterised letter, pixels


@lru_cache(maxsize=None)
def _template(letter: str, size: int) -> np.ndarray:
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    path = TextPath((0, 0), letter, size=1.0, prop=FontProperties(family="DejaVu Sans", weight="bold"))
    vertices = path.vertices
    low, high = vertices.min(0), vertices.max(0)
    scale = 0.84 / (high - low).max()                                         # the letter fills 84 % of the square
    centre = (low + high) / 2
    supersample = 4
    coords = (np.arange(size * supersample) + 0.5) / (size * supersample) - 0.5
    x, y = np.meshgrid(coords, -coords)                                        # y up in font units
    points = np.stack((x.ravel() / scale + centre[0], y.ravel() / scale + centre[1]), 1)
    inside = path.contains_points(points).reshape(size * supersample, size * supersample)
    return inside.reshape(size, supersample, size, supersample).mean((1, 3)).astype(np.float32)


def glyph_template(letter: str, size: int = _TEMPLATE) -> Tensor:
    """One upright letter as a float image ``[size, size]`` in [0, 1] (anti-aliased coverage)."""
    if letter not in GLYPHS:
        raise ValueError(f"letter must be one of {', '.join(GLYPHS)}, got {letter!r}")
    return torch.from_numpy(_template(letter, size).copy())


class GlyphImages(torch.utils.data.Dataset):
    """Images ``[N, 1, H, W]`` and multi-hot labels ``[N, len(GLYPHS)]`` held in memory."""

    def __init__(self, images: Tensor, labels: Tensor):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index], self.labels[index]

    def batches(self, batch_size: int, shuffle: bool = False, seed: int = 0) -> list[tuple[Tensor, Tensor]]:
        """The data set cut into ``(images, labels)`` batches (shuffled once with ``seed`` if asked)."""
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed)) if shuffle \
            else torch.arange(len(self))
        return [(self.images[chunk], self.labels[chunk]) for chunk in order.split(batch_size)]


def make_glyph_images(count: int, image_size: int = 48, max_glyphs: int = 3, seed: int = 0,
                      scale_range: tuple[float, float] = (0.3, 0.85), max_rotation: float = 45.0,
                      max_shear: float = 0.35, elastic: float = 0.08, noise: float = 0.08) -> GlyphImages:
    """Draw ``count`` images of warped letters.

    Every letter is mapped by ``u = c + s · R(θ) · Shear(k) · diag(a, 1/a) · t`` from its template coordinates
    ``t`` to the image (``c`` its centre, ``s`` its size as a fraction of the image, drawn log-uniformly from
    ``scale_range``; ``θ`` up to ``max_rotation`` degrees either way; shear ``k`` up to ``max_shear``; aspect
    ``a`` in [0.7, 1.4]), then displaced by a smooth random field of amplitude ``elastic`` (in units of the
    letter's size). Letters are white strokes on a dark, noisy background; overlapping letters take the
    brighter value. The centre is drawn at most ``1 - s / 2`` from the middle (image coordinates in [-1, 1]),
    so a letter near the border can be cut by the frame; its label stays.

    Args:
        count: number of images.
        image_size: side in pixels.
        max_glyphs: each image holds 1 to ``max_glyphs`` letters (uniformly).
        seed: the same seed gives the same images on every machine.

    Returns:
        :class:`GlyphImages` with images ``[count, 1, S, S]`` (float32 in about [0, 1]) and labels
        ``[count, len(GLYPHS)]`` (float32 0/1, which letters are present).
    """
    if count < 0 or max_glyphs < 1 or image_size < 8:
        raise ValueError(f"need count >= 0, max_glyphs >= 1 and image_size >= 8, got {count}, {max_glyphs}, {image_size}")
    g = torch.Generator().manual_seed(seed)
    templates = torch.stack([glyph_template(letter) for letter in GLYPHS])[:, None]   # [K, 1, T, T]
    slots = count * max_glyphs
    present = torch.arange(max_glyphs)[None, :] < torch.randint(1, max_glyphs + 1, (count, 1), generator=g)
    kind = torch.randint(0, len(GLYPHS), (count, max_glyphs), generator=g)

    def uniform(low: float, high: float) -> Tensor:
        return low + (high - low) * torch.rand(slots, generator=g)

    size = torch.exp(uniform(math.log(scale_range[0]), math.log(scale_range[1])))
    angle = torch.deg2rad(uniform(-max_rotation, max_rotation))
    shear, aspect = uniform(-max_shear, max_shear), torch.exp(uniform(math.log(0.7), math.log(1.4)))
    centre = (torch.rand(slots, 2, generator=g) * 2 - 1) * (1 - size[:, None] / 2)   # inside the image, in [-1, 1]
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack((torch.stack((cos, -sin), -1), torch.stack((sin, cos), -1)), -2)        # [M, 2, 2]
    shearing = torch.eye(2).repeat(slots, 1, 1)
    shearing[:, 0, 1] = shear
    stretch = torch.diag_embed(torch.stack((aspect, 1 / aspect), -1))
    forward = size[:, None, None] * rotation @ shearing @ stretch                     # template -> image
    inverse = torch.linalg.inv(forward)
    theta = torch.cat((inverse, -(inverse @ centre[:, :, None])), 2)                  # image -> template, [M, 2, 3]
    grid = F.affine_grid(theta, [slots, 1, image_size, image_size], align_corners=False)
    coarse = torch.randn(slots, 2, 4, 4, generator=g) * elastic                       # smooth displacement field
    field = F.interpolate(coarse, size=(image_size, image_size), mode="bicubic", align_corners=True)
    grid = grid + field.permute(0, 2, 3, 1) * 2                                        # in template units
    canvases = F.grid_sample(templates[kind.reshape(-1)], grid, align_corners=False)  # [M, 1, S, S]
    canvases = canvases.reshape(count, max_glyphs, image_size, image_size) * present[:, :, None, None]
    images = canvases.amax(1, keepdim=True)                                            # [N, 1, S, S]
    background = 0.15 * F.interpolate(torch.rand(count, 1, 3, 3, generator=g), size=(image_size, image_size),
                                      mode="bilinear", align_corners=True)
    contrast = 0.6 + 0.4 * torch.rand(count, 1, 1, 1, generator=g)
    images = background + images * (contrast - background)                             # coverage blends the stroke in
    images = images + noise * torch.randn(images.shape, generator=g)
    labels = torch.zeros(count, len(GLYPHS)).scatter_add_(1, kind, present.float()).clamp(max=1)   # [N, K]
    return GlyphImages(images.float(), labels)
