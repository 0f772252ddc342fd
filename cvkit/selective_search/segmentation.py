"""Felzenszwalb-Huttenlocher graph segmentation (Felzenszwalb and Huttenlocher, IJCV 2004), the
starting regions of selective search.

The image is a graph: one vertex per pixel, an edge between 8-connected neighbours weighted by the
Euclidean distance of their (Gaussian-smoothed, sigma) colours. Edges are visited by increasing weight;
the edge (p, q) joins the components C1 of p and C2 of q when

    w(p, q) <= MInt(C1, C2) = min(Int(C1) + tau(C1), Int(C2) + tau(C2)),      tau(C) = k / |C|     (eq. 5)

with Int(C) the largest weight of C's minimum spanning tree (the weight of the edge that last grew C,
since edges come in increasing order). A large k favours large components. A last pass over the same
sorted edges joins every component still smaller than ``min_size`` to its neighbour.

``k`` is on the 0-255 intensity scale of the paper; images may be uint8 or floats in [0, 1]. This is
what ``skimage.segmentation.felzenszwalb(image, scale=k, sigma, min_size)`` computes, with the same
smoothing and the same edge order. One detail differs: the paper joins when w <= MInt, scikit-image
when w < MInt, which matters only when a weight equals the bound exactly. On the kit's four photos
the two give the same partition at k = 50, 100 and 300; ``tests/test_selective_search.py`` allows
region counts within 2 % of scikit-image's and a boundary F-measure of at least 0.9.
"""
from __future__ import annotations

from typing import Sequence

import numba
import numpy as np
from scipy import ndimage

__all__ = ["felzenszwalb", "felzenszwalb_scales", "region_adjacency"]


@numba.njit(cache=True)
def _find(parent: np.ndarray, x: int) -> int:
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:          # path compression
        parent[x], x = root, parent[x]
    return root


@numba.njit(cache=True)
def _join_components(edges: np.ndarray, costs: np.ndarray, order: np.ndarray, num_pixels: int, k: float,
                     min_size: int) -> np.ndarray:
    """Union-find over the edges in ``order`` (increasing cost): eq. 5, then the ``min_size`` pass.
    Returns each pixel's root."""
    parent = np.arange(num_pixels)
    size = np.ones(num_pixels, dtype=np.int64)
    threshold = np.full(num_pixels, k)                    # Int(C) + k / |C|, with Int = 0 for a single pixel
    for e in order:
        a = _find(parent, edges[e, 0])
        b = _find(parent, edges[e, 1])
        if a == b:
            continue
        w = costs[e]
        if w <= threshold[a] and w <= threshold[b]:       # w <= MInt(C1, C2)
            if size[a] < size[b]:
                a, b = b, a
            parent[b] = a
            size[a] += size[b]
            threshold[a] = w + k / size[a]                # Int(C) = w: edges arrive in increasing order
    for e in order:
        a = _find(parent, edges[e, 0])
        b = _find(parent, edges[e, 1])
        if a != b and (size[a] < min_size or size[b] < min_size):
            if size[a] < size[b]:
                a, b = b, a
            parent[b] = a
            size[a] += size[b]
    for x in range(num_pixels):
        parent[x] = _find(parent, x)
    return parent


@numba.njit(cache=True)
def _grid_edges(image: np.ndarray, connectivity: int) -> tuple[np.ndarray, np.ndarray]:
    """Every neighbour pair once (right, down, and for 8-connectivity down-right, up-right, in scikit-image's
    order) and the Euclidean distance of their colours: ``([E, 2] pixel indices, [E] costs)``."""
    height, width, channels = image.shape
    offsets = ((0, 1, 0, 0), (1, 0, 0, 0), (1, 1, 0, 0), (0, 1, 1, 0))    # (dy_p, dx_p, dy_q, dx_q)
    counts = (height * (width - 1), (height - 1) * width, (height - 1) * (width - 1), (height - 1) * (width - 1))
    used = 2 if connectivity == 4 else 4
    total = 0
    for o in range(used):
        total += counts[o]
    edges = np.empty((total, 2), dtype=np.int64)
    costs = np.empty(total)
    e = 0
    for o in range(used):
        dy_p, dx_p, dy_q, dx_q = offsets[o]
        for y in range(height - max(dy_p, dy_q)):
            for x in range(width - dx_p):
                yp, xp, yq, xq = y + dy_p, x + dx_p, y + dy_q, x + dx_q
                squared = 0.0
                for c in range(channels):
                    d = image[yp, xp, c] - image[yq, xq, c]
                    squared += d * d
                edges[e, 0] = yp * width + xp
                edges[e, 1] = yq * width + xq
                costs[e] = np.sqrt(squared)
                e += 1
    return edges, costs


@numba.njit(cache=True)
def _number_regions(roots: np.ndarray) -> np.ndarray:
    """Labels 0 .. R-1 from union-find roots, numbered in raster order of each region's first pixel."""
    label_of_root = np.full(roots.shape[0], -1, dtype=np.int64)
    labels = np.empty(roots.shape[0], dtype=np.int64)
    count = 0
    for x in range(roots.shape[0]):
        r = roots[x]
        if label_of_root[r] < 0:
            label_of_root[r] = count
            count += 1
        labels[x] = label_of_root[r]
    return labels


def _as_float_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """``[H, W, C]`` float64 in [0, 1] from a uint8 or float image, ``[H, W]`` or ``[H, W, C]``."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a numpy array [H, W] or [H, W, C], got {type(image).__name__}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{name} must have shape [H, W] or [H, W, C] with H, W >= 1, got {list(image.shape)}")
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    if image.dtype.kind != "f":
        raise TypeError(f"{name} must be uint8 or floating point in [0, 1], got dtype {image.dtype}")
    return image.astype(np.float64)


def felzenszwalb(image: np.ndarray, scale: float = 100.0, sigma: float = 0.8, min_size: int = 20,
                 connectivity: int = 8) -> np.ndarray:
    """Segment an image into regions with Felzenszwalb and Huttenlocher's graph algorithm.

    Args:
        image: ``[H, W]`` or ``[H, W, C]``, uint8 or floats in [0, 1].
        scale: the paper's k on the 0-255 scale; larger gives fewer, larger regions.
        sigma: standard deviation of the Gaussian smoothing applied first (0: none).
        min_size: regions smaller than this many pixels are joined to a neighbour.
        connectivity: 8 (the authors' code and scikit-image: diagonal neighbours are joined by an edge) or 4
            (OpenCV's ``ximgproc`` graph segmentation).

    Returns:
        ``[H, W]`` int64 labels 0 .. R-1, numbered in raster order of each region's first pixel.
    """
    return felzenszwalb_scales(image, (scale,), sigma, (min_size,), connectivity)[0]


def felzenszwalb_scales(image: np.ndarray, scales: Sequence[float], sigma: float = 0.8,
                        min_sizes: Sequence[int] | None = None, connectivity: int = 8) -> list[np.ndarray]:
    """:func:`felzenszwalb` at several k on one image: the graph and its sorted edges depend only on the
    image and sigma, so they are built once.

    Args:
        image, sigma, connectivity: as for :func:`felzenszwalb`.
        scales: the values of k.
        min_sizes: one per k (default: min_size = k, as selective search uses it).

    Returns:
        One ``[H, W]`` int64 label image per k.
    """
    image = _as_float_image(image)
    min_sizes = [int(k) for k in scales] if min_sizes is None else list(min_sizes)
    if len(min_sizes) != len(scales):
        raise ValueError(f"min_sizes must give one size per scale ({len(scales)}), got {len(min_sizes)}")
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    if any(k < 0 for k in scales) or sigma < 0 or any(m < 0 for m in min_sizes):
        raise ValueError(f"scale, sigma and min_size must be >= 0, got {list(scales)}, {sigma}, {min_sizes}")
    if sigma > 0:
        image = ndimage.gaussian_filter(image, sigma=(sigma, sigma, 0))
    edges, costs = _grid_edges(np.ascontiguousarray(image), connectivity)
    order = np.argsort(costs)                                              # edges by increasing weight
    return [_number_regions(_join_components(edges, costs, order, image.shape[0] * image.shape[1],
                                             float(k) / 255.0, int(m))).reshape(image.shape[:2])
            for k, m in zip(scales, min_sizes)]


def region_adjacency(labels: np.ndarray) -> np.ndarray:
    """Pairs of regions that touch (4-connectivity): ``[P, 2]`` int64 with ``a < b``, sorted, no repeats."""
    num = int(labels.max()) + 1 if labels.size else 0
    a = np.concatenate((labels[:, 1:].ravel(), labels[1:, :].ravel()))
    b = np.concatenate((labels[:, :-1].ravel(), labels[:-1, :].ravel()))
    differ = a != b
    lo, hi = np.minimum(a[differ], b[differ]), np.maximum(a[differ], b[differ])
    keys = np.unique(lo.astype(np.int64) * num + hi)
    return np.stack((keys // num, keys % num), axis=1) if num else np.zeros((0, 2), dtype=np.int64)
