"""Shapes with exact masks, and real-photo backgrounds to paste them on.

The building blocks of the kit's synthetic data sets (segmentation, detection, glyphs): every
shape is drawn as a boolean mask, so the box and the per-pixel label of each object are known
exactly, and every random choice comes from a ``torch.Generator`` so the data is the same on every
machine.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import Tensor

__all__ = ["SHAPES", "shape_mask", "photo_background", "paste", "mask_to_box"]

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "ring", "star")


def _polygon_mask(vertices: Tensor, size: int) -> Tensor:
    """Pixels whose centres lie inside a convex or star-shaped polygon, by the even-odd rule."""
    centres = torch.arange(size, dtype=torch.float64) + 0.5
    y, x = torch.meshgrid(centres, centres, indexing="ij")
    inside = torch.zeros(size, size, dtype=torch.bool)
    start, end = vertices, vertices.roll(-1, dims=0)
    for (x1, y1), (x2, y2) in zip(start.tolist(), end.tolist()):
        # the edge crosses the horizontal ray to the right of the pixel centre
        straddles = (y1 > y) != (y2 > y)
        x_cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1 if y2 != y1 else 1e-12)
        inside ^= straddles & (x < x_cross)
    return inside


def shape_mask(kind: str, size: int, angle: float = 0.0) -> Tensor:
    """A ``kind`` shape filling a ``size`` x ``size`` square, rotated by ``angle`` degrees.

    Args:
        kind: one of ``SHAPES``.
        size: side of the square in pixels (>= 3).
        angle: rotation about the centre, counter-clockwise in degrees.

    Returns:
        bool Tensor[size, size], True inside the shape.
    """
    if kind not in SHAPES:
        raise ValueError(f"kind must be one of {SHAPES}, got {kind!r}")
    if not isinstance(size, int) or size < 3:
        raise ValueError(f"size must be an integer >= 3, got {size!r}")
    radius = size / 2
    theta = math.radians(angle)

    def polygon(points: list[tuple[float, float]]) -> Tensor:
        cos, sin = math.cos(theta), math.sin(theta)
        # points are in units of the radius around the centre; y grows downwards in images
        rotated = [(radius + radius * (px * cos + py * sin), radius + radius * (-px * sin + py * cos))
                   for px, py in points]
        return _polygon_mask(torch.tensor(rotated, dtype=torch.float64), size)

    centres = torch.arange(size, dtype=torch.float64) + 0.5 - radius
    y, x = torch.meshgrid(centres, centres, indexing="ij")
    distance = torch.sqrt(x**2 + y**2) / radius
    if kind == "circle":
        return distance <= 0.95
    if kind == "ring":
        return (distance <= 0.95) & (distance >= 0.55)
    if kind == "square":
        return polygon([(-0.7, -0.7), (0.7, -0.7), (0.7, 0.7), (-0.7, 0.7)])
    if kind == "triangle":
        return polygon([(math.cos(a) * 0.95, -math.sin(a) * 0.95) for a in (math.pi / 2, 7 * math.pi / 6, 11 * math.pi / 6)])
    if kind == "cross":
        arm, half = 0.95, 0.32
        return polygon([(-half, -arm), (half, -arm), (half, -half), (arm, -half), (arm, half), (half, half),
                        (half, arm), (-half, arm), (-half, half), (-arm, half), (-arm, -half), (-half, -half)])
    # star: five points, inner radius 0.4
    corners = []
    for i in range(10):
        a = math.pi / 2 + i * math.pi / 5
        r = 0.95 if i % 2 == 0 else 0.4
        corners.append((r * math.cos(a), -r * math.sin(a)))
    return polygon(corners)


# backgrounds are small, so each photo is kept at this shorter side: cropping and resizing a 256-pixel
# copy is several times cheaper than antialiasing the full photo for every image
_BACKGROUND_SIDE = 256


@lru_cache(maxsize=None)
def _photo(name: str) -> Tensor:
    from cvkit.datasets import load_photo

    image = load_photo(name).tensor()  # [3, H, W]
    factor = _BACKGROUND_SIDE / min(image.shape[1:])
    if factor < 1:
        size = (round(image.shape[1] * factor), round(image.shape[2] * factor))
        image = torch.nn.functional.interpolate(image[None], size=size, mode="bilinear", align_corners=False,
                                                antialias=True)[0].clamp_(0, 1)
    return image.contiguous()


def photo_background(height: int, width: int, generator: torch.Generator | None = None) -> Tensor:
    """A random crop of one of the bundled photos, resized to ``height`` x ``width``.

    Returns:
        float32 Tensor[3, height, width] with values in [0, 1].
    """
    from cvkit.datasets import photo_names

    if height < 1 or width < 1:
        raise ValueError(f"height and width must be >= 1, got {height} x {width}")
    names = photo_names()
    photo = _photo(names[int(torch.randint(len(names), (1,), generator=generator))])
    _, photo_h, photo_w = photo.shape
    # a crop with the target aspect ratio covering 30-80% of the photo's shorter side
    fraction = 0.3 + 0.5 * float(torch.rand((), generator=generator))
    crop_h = max(1, int(min(photo_h, photo_w * height / width) * fraction))
    crop_w = max(1, min(photo_w, round(crop_h * width / height)))
    top = int(torch.randint(photo_h - crop_h + 1, (1,), generator=generator))
    left = int(torch.randint(photo_w - crop_w + 1, (1,), generator=generator))
    crop = photo[:, top:top + crop_h, left:left + crop_w]
    return torch.nn.functional.interpolate(crop[None], size=(height, width), mode="bilinear",
                                           align_corners=False, antialias=True)[0].clamp_(0, 1)


def paste(image: Tensor, mask: Tensor, top: int, left: int, color: Tensor | tuple[float, ...]) -> Tensor:
    """Paint ``color`` into ``image`` where ``mask`` is True, with the mask's corner at (top, left).

    The parts of the mask outside the image are cut off. Modifies ``image`` in place and returns it.

    Args:
        image: float Tensor[C, H, W].
        mask: bool Tensor[h, w].
        top, left: where the mask's top-left pixel lands (may be negative).
        color: C values.

    Returns:
        ``image``.
    """
    if image.dim() != 3:
        raise ValueError(f"image must be a Tensor[C, H, W], got shape {tuple(image.shape)}")
    if mask.dim() != 2 or mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool Tensor[h, w], got {mask.dtype} of shape {tuple(mask.shape)}")
    color = torch.as_tensor(color, dtype=image.dtype, device=image.device)
    if color.shape != (image.shape[0],):
        raise ValueError(f"color must have {image.shape[0]} values, one per channel, got {tuple(color.shape)}")
    _, height, width = image.shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + mask.shape[0], height), min(left + mask.shape[1], width)
    if y0 >= y1 or x0 >= x1:
        return image
    visible = mask[y0 - top:y1 - top, x0 - left:x1 - left].to(image.device)
    region = image[:, y0:y1, x0:x1]
    region[:, visible] = color[:, None]
    return image


def mask_to_box(mask: Tensor) -> Tensor:
    """The tight xyxy box of a mask's True pixels, in continuous pixel coordinates.

    A pixel (row i, column j) covers [j, j+1) x [i, i+1), so a single pixel gives a 1 x 1 box.

    Args:
        mask: bool Tensor[H, W] with at least one True pixel.

    Returns:
        float32 Tensor[4].
    """
    if mask.dim() != 2:
        raise ValueError(f"mask must be a Tensor[H, W], got shape {tuple(mask.shape)}")
    rows, cols = mask.any(dim=1).nonzero().flatten(), mask.any(dim=0).nonzero().flatten()
    if rows.numel() == 0:
        raise ValueError("mask is empty: an empty mask has no box")
    return torch.tensor([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=torch.float32)
