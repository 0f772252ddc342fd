"""Region features and similarities of selective search (Uijlings et al., IJCV 2013, section 3.2).

Every region r_i carries a colour histogram C_i (25 bins per colour channel), a texture histogram
T_i (Gaussian derivatives with sigma = 1 in 8 orientations per channel, 10 bins each), its size in
pixels and its bounding box. Both histograms are L1-normalised. Two neighbouring regions are compared
with four measures in [0, 1], where im is the whole image and BB_ij the box around r_i and r_j:

    s_colour(r_i, r_j)  = sum_k min(c_i^k, c_j^k)                                     (histogram intersection)
    s_texture(r_i, r_j) = sum_k min(t_i^k, t_j^k)
    s_size(r_i, r_j)    = 1 - (size(r_i) + size(r_j)) / size(im)                      (small regions merge early)
    s_fill(r_i, r_j)    = 1 - (size(BB_ij) - size(r_i) - size(r_j)) / size(im)        (regions that fill gaps)

    s(r_i, r_j) = a_1 s_colour + a_2 s_texture + a_3 s_size + a_4 s_fill,     a_k in {0, 1}

The features of a merged region r_t = r_i u r_j follow from those of its parts, without looking at
pixels again:

    C_t = (size(r_i) C_i + size(r_j) C_j) / (size(r_i) + size(r_j)),    the same for T_t,
    size(r_t) = size(r_i) + size(r_j),    BB_t = the box around BB_i and BB_j.

Region boxes are xyxy in continuous pixel coordinates: a region whose pixels span columns x0 .. x1
has x1 = x0_min and x2 = x1_max + 1, so a one-pixel region has area 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from scipy import ndimage
from skimage import color as skcolor

__all__ = ["COLOUR_SPACES", "SIMILARITIES", "COLOUR_BINS", "TEXTURE_BINS", "TEXTURE_ORIENTATIONS",
           "RegionFeatures", "convert_colour", "pixel_bins", "region_features", "similarity", "merge_features",
           "histogram_intersection"]

COLOUR_BINS = 25
TEXTURE_BINS = 10
TEXTURE_ORIENTATIONS = 8
COLOUR_SPACES = ("rgb", "hsv", "lab", "rgi", "h", "i")
# Similarity sets by the paper's letters: C colour, T texture, S size, F fill.
SIMILARITIES = {"CTSF": (1.0, 1.0, 1.0, 1.0), "TSF": (0.0, 1.0, 1.0, 1.0), "F": (0.0, 0.0, 0.0, 1.0),
                "S": (0.0, 0.0, 1.0, 0.0), "C": (1.0, 0.0, 0.0, 0.0), "T": (0.0, 1.0, 0.0, 0.0),
                "CSF": (1.0, 0.0, 1.0, 1.0), "SF": (0.0, 0.0, 1.0, 1.0)}


def convert_colour(image: np.ndarray, space: str) -> np.ndarray:
    """An RGB image in one of the paper's colour spaces, every channel scaled to [0, 1].

    Args:
        image: ``[H, W, 3]`` uint8 RGB (or floats in [0, 1]).
        space: ``'rgb'``, ``'hsv'``, ``'lab'``, ``'rgi'`` (normalised r and g, intensity), ``'h'`` (hue of HSV)
            or ``'i'`` (intensity).

    Returns:
        ``[H, W, C]`` float64 in [0, 1], C = 3 or 1 (``'h'``, ``'i'``).
    """
    if space not in COLOUR_SPACES:
        raise ValueError(f"space must be one of {', '.join(COLOUR_SPACES)}, got {space!r}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be RGB with shape [H, W, 3], got {list(image.shape)}")
    rgb = image.astype(np.float64) / 255.0 if image.dtype == np.uint8 else image.astype(np.float64)
    if space == "rgb":
        return rgb
    if space in ("hsv", "h"):
        hsv = skcolor.rgb2hsv(rgb)
        return hsv if space == "hsv" else hsv[:, :, :1]
    if space == "lab":
        lab = skcolor.rgb2lab(rgb)                              # L in [0, 100], a and b in about [-128, 127]
        return np.clip((lab + [0.0, 128.0, 128.0]) / [100.0, 255.0, 255.0], 0.0, 1.0)
    intensity = rgb.sum(axis=2, keepdims=True)                  # [H, W, 1]
    if space == "i":
        return intensity / 3.0
    rg = np.divide(rgb[:, :, :2], intensity, out=np.full_like(rgb[:, :, :2], 1 / 3), where=intensity > 0)
    return np.concatenate((rg, intensity / 3.0), axis=2)        # rgI


def _texture_responses(image: np.ndarray) -> np.ndarray:
    """``[H, W, C, 8]`` half-wave rectified Gaussian derivatives (sigma = 1) in 8 orientations, each scaled
    to [0, 1] by its largest value over the image.

    The derivative along angle theta is cos(theta) dI/dx + sin(theta) dI/dy; orientations theta and
    theta + 180 degrees are opposite signs of one filter, so rectifying keeps 8 distinct responses.
    """
    dx = ndimage.gaussian_filter(image, sigma=(1, 1, 0), order=(0, 1, 0))   # [H, W, C]
    dy = ndimage.gaussian_filter(image, sigma=(1, 1, 0), order=(1, 0, 0))
    angles = np.arange(TEXTURE_ORIENTATIONS) * (2 * np.pi / TEXTURE_ORIENTATIONS)
    responses = np.maximum(dx[..., None] * np.cos(angles) + dy[..., None] * np.sin(angles), 0.0)
    peak = responses.max(axis=(0, 1), keepdims=True)                        # [1, 1, C, 8]
    return np.divide(responses, peak, out=np.zeros_like(responses), where=peak > 0)


def _bin(values: np.ndarray, bins: int) -> np.ndarray:
    """The bin of each value in [0, 1] among ``bins`` equal bins: ``[H, W, D]`` uint8."""
    return np.minimum(values * bins, bins - 1).astype(np.uint8)


def pixel_bins(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The colour and texture bin of every pixel, which do not depend on the regions: computed once per
    colour space and shared by every segmentation of it.

    Args:
        image: ``[H, W, C]`` float in [0, 1].

    Returns:
        ``(colour [H, W, C], texture [H, W, 8 C])`` uint8 bin indices.
    """
    height, width = image.shape[:2]
    return (_bin(image, COLOUR_BINS),
            _bin(_texture_responses(image).reshape(height, width, -1), TEXTURE_BINS))


@numba.njit(cache=True)
def _histograms(binned: np.ndarray, labels: np.ndarray, num_regions: int, bins: int) -> np.ndarray:
    """L1-normalised per-region histograms of the bin indices ``binned`` ``[H, W, D]``: ``[R, D * bins]``."""
    height, width, depth = binned.shape
    counts = np.zeros((num_regions, depth * bins))
    for y in range(height):
        for x in range(width):
            r = labels[y, x]
            for d in range(depth):
                counts[r, d * bins + binned[y, x, d]] += 1.0
    for r in range(num_regions):
        total = 0.0
        for b in range(depth * bins):
            total += counts[r, b]
        for b in range(depth * bins):
            counts[r, b] /= total
    return counts


@dataclass
class RegionFeatures:
    """The features of R regions (section 3.2)."""

    sizes: np.ndarray       # [R] float64, pixels
    boxes: np.ndarray       # [R, 4] float64 xyxy
    colour: np.ndarray      # [R, 25 C] L1-normalised colour histograms
    texture: np.ndarray     # [R, 80 C] L1-normalised texture histograms
    image_size: float       # size(im), pixels


def region_features(image: np.ndarray, labels: np.ndarray,
                    bins: tuple[np.ndarray, np.ndarray] | None = None) -> RegionFeatures:
    """Colour and texture histograms, sizes and boxes of the regions ``labels`` of ``image``.

    Args:
        image: ``[H, W, C]`` float in [0, 1], in the colour space the regions are compared in.
        labels: ``[H, W]`` int regions 0 .. R-1, e.g. from :func:`felzenszwalb`.
        bins: :func:`pixel_bins` of ``image`` if already computed.

    Returns:
        A :class:`RegionFeatures` of the R regions.
    """
    if labels.shape != image.shape[:2]:
        raise ValueError(f"labels must have the image's shape {list(image.shape[:2])}, got {list(labels.shape)}")
    labels = labels.astype(np.int64)
    num_regions = int(labels.max()) + 1
    height, width = labels.shape
    sizes = np.bincount(labels.ravel(), minlength=num_regions).astype(np.float64)
    slices = ndimage.find_objects(labels + 1)                              # region r's rows and columns
    boxes = np.array([(c.start, r.start, c.stop, r.stop) for r, c in slices], dtype=np.float64)
    colour_bins, texture_bins = pixel_bins(image) if bins is None else bins
    return RegionFeatures(sizes, boxes, _histograms(colour_bins, labels, num_regions, COLOUR_BINS),
                          _histograms(texture_bins, labels, num_regions, TEXTURE_BINS), float(height * width))


def histogram_intersection(h_i: np.ndarray, h_j: np.ndarray) -> float:
    """sum_k min(h_i^k, h_j^k): 1 for equal L1-normalised histograms, 0 for disjoint ones."""
    return float(np.minimum(h_i, h_j).sum())


def similarity(features: RegionFeatures, i: int, j: int, weights: tuple[float, float, float, float]) -> float:
    """s(r_i, r_j) = a_1 s_colour + a_2 s_texture + a_3 s_size + a_4 s_fill for ``weights`` (a_1 .. a_4)."""
    f = features
    size_i, size_j = f.sizes[i], f.sizes[j]
    box = np.concatenate((np.minimum(f.boxes[i, :2], f.boxes[j, :2]), np.maximum(f.boxes[i, 2:], f.boxes[j, 2:])))
    box_size = (box[2] - box[0]) * (box[3] - box[1])                        # size(BB_ij)
    terms = (histogram_intersection(f.colour[i], f.colour[j]),
             histogram_intersection(f.texture[i], f.texture[j]),
             1.0 - (size_i + size_j) / f.image_size,
             1.0 - (box_size - size_i - size_j) / f.image_size)
    return float(sum(a * s for a, s in zip(weights, terms)))


def merge_features(sizes: np.ndarray, boxes: np.ndarray, colour: np.ndarray,
                   texture: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """The features of r_t = r_i u r_j from those of r_i and r_j (rows 0 and 1 of each argument).

    Args:
        sizes: ``[2]``; boxes: ``[2, 4]`` xyxy; colour: ``[2, Dc]``; texture: ``[2, Dt]``.

    Returns:
        ``(size_t, box_t [4], colour_t [Dc], texture_t [Dt])``.
    """
    size_t = sizes[0] + sizes[1]
    box = np.concatenate((boxes[:, :2].min(axis=0), boxes[:, 2:].max(axis=0)))
    return (float(size_t), box, (sizes[0] * colour[0] + sizes[1] * colour[1]) / size_t,
            (sizes[0] * texture[0] + sizes[1] * texture[1]) / size_t)
