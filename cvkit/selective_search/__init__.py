"""Selective search (Uijlings, van de Sande, Gevers and Smeulders, "Selective Search for Object
Recognition", IJCV 2013): the ~2000 class-agnostic boxes per image that R-CNN classifies.

One *strategy* is a colour space, a threshold k of the graph segmentation and a set of similarities:

1. segment the image, in that colour space, into starting regions (:func:`felzenszwalb`, sigma = 0.8,
   min_size = k as in the authors' code);
2. group them bottom-up, always merging the two most similar neighbours (:func:`hierarchical_grouping`);
   every region formed on the way is a proposal.

*Diversification* runs several strategies and pools their boxes (section 3.3, Table 5):

    mode       colour spaces              k                   similarities
    single     HSV                        100                 C+T+S+F
    fast       HSV, Lab                   50, 100             C+T+S+F, T+S+F
    quality    HSV, Lab, rgI, H, I        50, 100, 150, 300   C+T+S+F, T+S+F, F, S

``'opencv_fast'`` takes the settings of OpenCV's ``switchToSelectiveSearchFast`` instead: HSV and Lab,
k = 150, 300, 450 with min_size = 100 and 4-connected pixels (the paper's modes: min_size = k, 8-connected,
as in the authors' code), C+T+S+F and T+S+F; it is ranked as the paper unless ``ranking`` says otherwise
(``'both'`` is the order that matches OpenCV's quality, see below).

*Ranking* (section 3.4): within one hierarchy the region created at position i from the top (the
whole image is i = 1, the merge before it i = 2, ...) gets the value v = RND * i, RND uniform in
[0, 1); all strategies' regions are sorted by increasing v, so large regions of every hierarchy come
early but the order is mixed; repeated boxes keep their first place only. As in the authors' code, the
starting regions of a segmentation with M merges all get i = M + 1 and enter the pool once.
OpenCV's ``ximgproc`` turns this around (``ranking='opencv'``): i is a region's level counted from the
bottom of its merge tree, so small regions come early. On the kit's photos neither of the two wins
everywhere: the paper's finds large objects within the first few hundred boxes, OpenCV's finds small parts
sooner. ``ranking='both'`` takes the smaller of the two, the region's distance from the nearer end of its
hierarchy: the top regions and the starting regions both come early, the middle of the tree last. With
OpenCV's coarse segmentations (mode ``'opencv_fast'``) that order is level with OpenCV's (within the noise of
the random ranking) or ahead at every number of boxes (``benchmarks/bench_selective_search.py``); with the
paper's fine ones (k = 50, 100) the starting regions are too small to come first, and the paper's order is
the better one.

The paper reports 2147 boxes per image, recall 0.980 at IoU 0.5 and MABO 0.804 for fast mode on
Pascal VOC 2007 test.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from cvkit.selective_search.features import (COLOUR_SPACES, SIMILARITIES, RegionFeatures, convert_colour,
                                             histogram_intersection, merge_features, pixel_bins, region_features,
                                             similarity)
from cvkit.selective_search.grouping import Hierarchy, hierarchical_grouping, hierarchical_grouping_reference
from cvkit.selective_search.segmentation import felzenszwalb, felzenszwalb_scales, region_adjacency

__all__ = ["selective_search", "search_hierarchies", "rank_regions", "MODES", "SEGMENTATION_SETTINGS", "RANKINGS",
           "strategy_hierarchy", "felzenszwalb", "felzenszwalb_scales", "region_adjacency", "pixel_bins",
           "region_features", "RegionFeatures", "convert_colour", "similarity", "histogram_intersection",
           "merge_features", "hierarchical_grouping", "hierarchical_grouping_reference", "Hierarchy",
           "COLOUR_SPACES", "SIMILARITIES"]

MODES = {
    "single": (("hsv",), (100,), ("CTSF",)),
    "fast": (("hsv", "lab"), (50, 100), ("CTSF", "TSF")),
    "quality": (("hsv", "lab", "rgi", "h", "i"), (50, 100, 150, 300), ("CTSF", "TSF", "F", "S")),
    "opencv_fast": (("hsv", "lab"), (150, 300, 450), ("CTSF", "TSF")),
}
# (min_size, connectivity) of the graph segmentation: the paper's modes use min_size = k and 8-connected
# pixels (the authors' code); OpenCV's switchToSelectiveSearchFast uses min_size = 100 and 4-connected pixels.
SEGMENTATION_SETTINGS = {"opencv_fast": (100, 4)}
# How rank_regions orders the pool: the paper's (large regions early), OpenCV's (small regions early) or both
# ends of every hierarchy early.
RANKINGS = ("paper", "opencv", "both")


def _rgb_uint8(image: object) -> np.ndarray:
    """``[H, W, 3]`` uint8 from a numpy image (``[H, W]`` or ``[H, W, 3]``, uint8 or floats in [0, 1]) or a
    ``[3, H, W]`` / ``[H, W]`` tensor."""
    if isinstance(image, Tensor):
        array = image.detach().cpu()
        if array.dim() == 3:
            if array.shape[0] not in (1, 3):
                raise ValueError(f"image as a tensor must be [3, H, W] or [H, W], got {list(array.shape)}")
            array = array.permute(1, 2, 0)
        image = array.numpy()
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array [H, W, 3] or a tensor [3, H, W], got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image must be [H, W, 3] (or [H, W]) with H, W >= 1, got {list(image.shape)}")
    if image.dtype == np.uint8:
        return image
    if image.dtype.kind != "f":
        raise TypeError(f"image must be uint8 or floating point in [0, 1], got dtype {image.dtype}")
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def _segment(rgb: np.ndarray, colour_space: str, k: float, sigma: float,
             min_size: int | None) -> tuple[np.ndarray, np.ndarray]:
    converted = convert_colour(rgb, colour_space)                          # [H, W, C] in [0, 1]
    labels = felzenszwalb(converted, scale=k, sigma=sigma, min_size=int(k) if min_size is None else min_size)
    return converted, labels


def strategy_hierarchy(image: object, colour_space: str = "hsv", k: float = 100, similarities: str = "CTSF",
                       sigma: float = 0.8, min_size: int | None = None) -> tuple[np.ndarray, Hierarchy]:
    """One strategy: segment ``image`` in ``colour_space`` with threshold ``k``, then group.

    Args:
        image: ``[H, W, 3]`` uint8 RGB (or floats in [0, 1], or a ``[3, H, W]`` tensor).
        colour_space: one of :data:`COLOUR_SPACES`.
        k: the graph segmentation's threshold (0-255 scale).
        similarities: a key of :data:`SIMILARITIES`, e.g. ``'CTSF'`` (colour + texture + size + fill).
        sigma: smoothing before segmentation.
        min_size: smallest starting region in pixels (default: k, as in the authors' code).

    Returns:
        ``(labels [H, W] int64, hierarchy)``: the starting regions and their merge hierarchy.
    """
    if similarities not in SIMILARITIES:
        raise ValueError(f"similarities must be one of {', '.join(SIMILARITIES)}, got {similarities!r}")
    converted, labels = _segment(_rgb_uint8(image), colour_space, k, sigma, min_size)
    features = region_features(converted, labels)
    return labels, hierarchical_grouping(features, region_adjacency(labels), SIMILARITIES[similarities])


def rank_regions(hierarchies: Sequence[Hierarchy], seed: int | None = 0, min_box_side: float = 0.0,
                 ranking: str = "paper") -> np.ndarray:
    """Pool the regions of several hierarchies, ranked as section 3.4 says (or as OpenCV), repeated boxes removed.

    ``'paper'``, as in the authors' code (``Image2HierarchicalGrouping.m``): the merged regions of a hierarchy
    of M merges sit at positions i = M, M - 1, ..., 1 in order of creation (the last merge, the whole image,
    is i = 1); its n starting regions all sit at i = M + 1 and enter the pool once per segmentation, however
    many similarity sets group them. Large regions come early.

    ``'opencv'``, as ``cv2.ximgproc``'s selective search: i is the region's level in its merge tree
    (:meth:`Hierarchy.levels`: 1 for a starting region, one more than its higher part for a merge), and every
    hierarchy brings its starting regions. Small regions come early.

    ``'both'``: i = min(position from the top, level from the bottom), starting regions as for ``'opencv'``
    (their level is 1). A region near either end of its hierarchy comes early: the whole image and the last
    merges, and the starting regions with their first merges.

    Each region's value is v = RND * i with RND uniform in [0, 1); boxes come in increasing v. Boxes with a
    side under ``min_box_side`` pixels are dropped (the authors' VOC code and R-CNN's
    ``selective_search_boxes.m`` use 20).

    Args:
        hierarchies: one per strategy; those with the same starting regions share them.
        seed: seeds RND (``None``: sort by i alone, no randomness).
        min_box_side: smallest width and height kept, in pixels.
        ranking: ``'paper'``, ``'opencv'`` or ``'both'``.

    Returns:
        ``[N, 4]`` float64 xyxy boxes, best ranked first, each box once.
    """
    if ranking not in RANKINGS:
        raise ValueError(f"ranking must be one of {', '.join(RANKINGS)}, got {ranking!r}")
    boxes, positions, segmentations = [np.zeros((0, 4))], [np.zeros(0)], set()
    for h in hierarchies:
        n, m = h.num_initial, len(h.merges)
        if ranking != "paper":                                                 # every region, by its level
            level = h.levels()                                                 # 1 at the bottom
            boxes.append(h.boxes[:n + m])
            positions.append(level if ranking == "opencv" else np.minimum(h.positions(), level))  # 'both': nearer end
            continue
        from_top = h.positions()
        boxes.append(h.boxes[n:n + m])
        positions.append(from_top[n:])                                         # i = M .. 1
        key = h.boxes[:n].tobytes()                                            # the same segmentation
        if key not in segmentations:
            segmentations.add(key)
            boxes.append(h.boxes[:n])
            positions.append(from_top[:n])                                     # starting regions: i = M + 1
    boxes, position = np.concatenate(boxes), np.concatenate(positions)
    value = position if seed is None else position * np.random.default_rng(seed).random(len(position))
    boxes = boxes[np.argsort(value, kind="stable")]
    sides = boxes[:, 2:] - boxes[:, :2]
    boxes = boxes[(sides >= min_box_side).all(axis=1)]
    _, first = np.unique(boxes, axis=0, return_index=True)               # first place of every distinct box
    return boxes[np.sort(first)]


def search_hierarchies(image: object, mode: str = "fast", *, colour_spaces: Sequence[str] | None = None,
                       ks: Sequence[float] | None = None, similarities: Sequence[str] | None = None,
                       sigma: float = 0.8, min_size: int | None = None,
                       connectivity: int | None = None) -> list[Hierarchy]:
    """The merge hierarchies of every strategy of ``mode``, before ranking: what :func:`selective_search`
    ranks with :func:`rank_regions` (to draw several rankings of one image, group it once).

    Args:
        image, mode, colour_spaces, ks, similarities, sigma, min_size, connectivity: as for
            :func:`selective_search`.

    Returns:
        One :class:`Hierarchy` per colour space x k x similarity set, in that nesting order.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    default_spaces, default_ks, default_sims = MODES[mode]
    colour_spaces = tuple(colour_spaces or default_spaces)
    ks = tuple(ks or default_ks)
    similarities = tuple(similarities or default_sims)
    for space in colour_spaces:
        if space not in COLOUR_SPACES:
            raise ValueError(f"colour_spaces must hold names from {', '.join(COLOUR_SPACES)}, got {space!r}")
    for name in similarities:
        if name not in SIMILARITIES:
            raise ValueError(f"similarities must hold names from {', '.join(SIMILARITIES)}, got {name!r}")
    if any(k <= 0 for k in ks):
        raise ValueError(f"ks must be positive, got {ks}")
    mode_min_size, mode_connectivity = SEGMENTATION_SETTINGS.get(mode, (None, 8))
    min_size = mode_min_size if min_size is None else min_size
    connectivity = mode_connectivity if connectivity is None else connectivity
    rgb = _rgb_uint8(image)
    hierarchies = []
    for space in colour_spaces:
        converted = convert_colour(rgb, space)                              # [H, W, C] in [0, 1]
        bins = pixel_bins(converted)
        min_sizes = [int(k) if min_size is None else min_size for k in ks]
        for labels in felzenszwalb_scales(converted, ks, sigma, min_sizes, connectivity):
            features = region_features(converted, labels, bins)
            neighbours = region_adjacency(labels)
            hierarchies += [hierarchical_grouping(features, neighbours, SIMILARITIES[name]) for name in similarities]
    return hierarchies


def selective_search(image: object, mode: str = "fast", *, colour_spaces: Sequence[str] | None = None,
                     ks: Sequence[float] | None = None, similarities: Sequence[str] | None = None,
                     sigma: float = 0.8, min_size: int | None = None, connectivity: int | None = None,
                     min_box_side: float = 0.0, seed: int | None = 0, ranking: str = "paper") -> Tensor:
    """Selective search object proposals for one image, best ranked first.

    Runs every strategy of ``mode`` (one per colour space x k x similarity set; the segmentation and the
    region features are shared by the similarity sets: :func:`search_hierarchies`), then ranks and
    de-duplicates the boxes with :func:`rank_regions`.

    Args:
        image: ``[H, W, 3]`` uint8 RGB (floats in [0, 1] and ``[3, H, W]`` tensors are accepted).
        mode: ``'single'``, ``'fast'`` or ``'quality'`` (the paper's diversification strategies), or
            ``'opencv_fast'`` (the settings of OpenCV's ``switchToSelectiveSearchFast``: k = 150, 300, 450,
            min_size = 100, 4-connected segmentation; HSV and Lab, C+T+S+F and T+S+F).
        colour_spaces, ks, similarities: override the mode's lists.
        sigma: Gaussian smoothing before the segmentation.
        min_size: smallest starting region (default: the mode's, k for the paper's modes).
        connectivity: 8 or 4 neighbours per pixel in the segmentation (default: the mode's, 8 for the paper's).
        min_box_side: drop boxes narrower or lower than this many pixels (the authors' VOC code uses 20).
        seed: seeds the randomised ranking; ``None`` ranks by hierarchy position alone.
        ranking: ``'paper'`` (section 3.4: large regions early), ``'opencv'`` (OpenCV's: by level in the
            merge tree, small regions early) or ``'both'`` (by distance from the nearer end of the tree: with
            ``mode='opencv_fast'``, level with OpenCV within the ranking's noise, or ahead, at every number of
            boxes on the kit's photos); see :func:`rank_regions`.

    Returns:
        ``Tensor[N, 4]`` float32 xyxy boxes in pixels (a region spanning columns c0..c1 has x1 = c0,
        x2 = c1 + 1), N of the order of 1000-3000 in fast mode on a 500 x 375 photo.
    """
    if ranking not in RANKINGS:
        raise ValueError(f"ranking must be one of {', '.join(RANKINGS)}, got {ranking!r}")
    hierarchies = search_hierarchies(image, mode, colour_spaces=colour_spaces, ks=ks, similarities=similarities,
                                     sigma=sigma, min_size=min_size, connectivity=connectivity)
    return torch.from_numpy(rank_regions(hierarchies, seed, min_box_side, ranking)).to(torch.float32)
