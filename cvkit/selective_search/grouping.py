"""Hierarchical grouping (Uijlings et al., IJCV 2013, Algorithm 1).

    R = starting regions r_1 .. r_n (graph segmentation);  S = { s(r_i, r_j) : r_i, r_j neighbours }
    while S is not empty:
        (r_i, r_j) = argmax S;   r_t = r_i u r_j
        remove from S every similarity involving r_i or r_j
        add to S the similarities between r_t and its neighbours (the neighbours of r_i and r_j)
        R = R u { r_t }

Every region ever formed, the n starting ones and the n - 1 merged ones, is a candidate object
location; the last one is the whole image (for a connected region graph). Region ids follow the order
of creation: 0 .. n-1 the starting regions, n + m the region made by merge m.

Two implementations: :func:`hierarchical_grouping_reference` keeps S in a dictionary and reads like
Algorithm 1; :func:`hierarchical_grouping` is the same loop compiled with numba over flat arrays.
Both break ties between equal similarities the same way (smaller region ids first), so they return
the same hierarchy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from cvkit.selective_search.features import RegionFeatures, merge_features, similarity

__all__ = ["Hierarchy", "hierarchical_grouping", "hierarchical_grouping_reference"]


@dataclass
class Hierarchy:
    """The merge hierarchy of one grouping: n starting regions and the n - 1 merges after them.

    Region ``n + m`` is ``merges[m, 0] u merges[m, 1]``.
    """

    merges: np.ndarray         # [M, 2] int64, the two regions joined by merge m (M = n - 1 when connected)
    similarities: np.ndarray   # [M] s(r_i, r_j) at merge m
    boxes: np.ndarray          # [n + M, 4] float64 xyxy of every region, in order of creation
    sizes: np.ndarray          # [n + M] float64 pixels
    num_initial: int           # n

    def __len__(self) -> int:
        return len(self.merges)

    def levels(self) -> np.ndarray:
        """``[n + M]`` float64 height of every region in the merge tree: 1 for a starting region, one more than
        the higher of its two parts for a merged one (OpenCV ranks by this level, smallest first)."""
        level = np.ones(self.num_initial + len(self.merges))
        for m, (i, j) in enumerate(self.merges):
            level[self.num_initial + m] = max(level[i], level[j]) + 1
        return level

    def positions(self) -> np.ndarray:
        """``[n + M]`` float64 place of every region counted from the top, as the paper ranks them: the last merge
        (the whole image) is 1, the merge before it 2, ..., the first merge M, and every starting region M + 1."""
        m = len(self.merges)
        return np.concatenate((np.full(self.num_initial, m + 1.0), np.arange(m, 0, -1, dtype=np.float64)))

    def region_of(self, step: int) -> np.ndarray:
        """``[n]`` int64: the region each starting region belongs to after the first ``step`` merges."""
        if not 0 <= step <= len(self.merges):
            raise ValueError(f"step must be between 0 and {len(self.merges)}, got {step}")
        owner = np.arange(self.num_initial + step)
        for m in range(step):                              # region n + m absorbs its two parts
            owner[self.merges[m]] = self.num_initial + m
        current = owner[: self.num_initial]
        while True:                                         # follow each chain to the newest region
            following = owner[current]
            if np.array_equal(following, current):
                return current
            current = following


def _check_weights(weights: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    if len(weights) != 4 or not any(weights):
        raise ValueError(f"weights must be four numbers (a_colour, a_texture, a_size, a_fill), not all 0, "
                         f"got {weights!r}")
    return tuple(float(w) for w in weights)


def hierarchical_grouping_reference(features: RegionFeatures, neighbours: np.ndarray,
                                    weights: tuple[float, float, float, float]) -> Hierarchy:
    """Algorithm 1 with S as a dictionary {(i, j): s(r_i, r_j)}; slow, for reading and for tests.

    Args:
        features: the features of the n starting regions.
        neighbours: ``[P, 2]`` pairs of touching regions (:func:`region_adjacency`).
        weights: ``(a_1, a_2, a_3, a_4)`` for colour, texture, size and fill.

    Returns:
        The :class:`Hierarchy`.
    """
    weights = _check_weights(weights)
    n = len(features.sizes)
    f = RegionFeatures(*(np.concatenate((a, np.zeros((n - 1,) + a.shape[1:]))) for a in
                         (features.sizes, features.boxes, features.colour, features.texture)),
                       features.image_size)
    adjacent = {i: set() for i in range(n)}
    for i, j in neighbours.tolist():
        adjacent[i].add(j)
        adjacent[j].add(i)
    S = {(min(i, j), max(i, j)): similarity(f, i, j, weights) for i, j in neighbours.tolist()}
    merges, sims = [], []
    while S:
        (i, j), s = max(S.items(), key=lambda item: (item[1], -item[0][0], -item[0][1]))
        t = n + len(merges)
        f.sizes[t], f.boxes[t], f.colour[t], f.texture[t] = merge_features(
            f.sizes[[i, j]], f.boxes[[i, j]], f.colour[[i, j]], f.texture[[i, j]])
        S = {pair: v for pair, v in S.items() if i not in pair and j not in pair}
        adjacent[t] = (adjacent.pop(i) | adjacent.pop(j)) - {i, j}
        for k in adjacent[t]:
            adjacent[k] -= {i, j}
            adjacent[k].add(t)
            S[(k, t)] = similarity(f, k, t, weights)
        merges.append((i, j))
        sims.append(s)
    m = len(merges)
    return Hierarchy(np.array(merges, dtype=np.int64).reshape(m, 2), np.array(sims, dtype=np.float64),
                     f.boxes[: n + m], f.sizes[: n + m], n)


@numba.njit(cache=True)
def _intersection(histograms, i, j):
    total = 0.0
    for b in range(histograms.shape[1]):
        total += min(histograms[i, b], histograms[j, b])
    return total


@numba.njit(cache=True)
def _similarity(i, j, sizes, boxes, colour, texture, weights, image_size):
    s = 0.0
    if weights[0] != 0.0:
        s += weights[0] * _intersection(colour, i, j)
    if weights[1] != 0.0:
        s += weights[1] * _intersection(texture, i, j)
    if weights[2] != 0.0:
        s += weights[2] * (1.0 - (sizes[i] + sizes[j]) / image_size)
    if weights[3] != 0.0:
        box_size = ((max(boxes[i, 2], boxes[j, 2]) - min(boxes[i, 0], boxes[j, 0]))
                    * (max(boxes[i, 3], boxes[j, 3]) - min(boxes[i, 1], boxes[j, 1])))
        s += weights[3] * (1.0 - (box_size - sizes[i] - sizes[j]) / image_size)
    return s


@numba.njit(cache=True)
def _merge_histograms(histograms, i, j, t, size_i, size_j):
    for b in range(histograms.shape[1]):
        histograms[t, b] = (size_i * histograms[i, b] + size_j * histograms[j, b]) / (size_i + size_j)


@numba.njit(cache=True)
def _group(pairs, n, sizes, boxes, colour, texture, weights, image_size):
    """Algorithm 1 over flat arrays of 2n - 1 rows: S is a list of live (a, b, s) with a < b, compacted
    after every merge."""
    count = pairs.shape[0]
    a = pairs[:, 0].copy()
    b = pairs[:, 1].copy()
    s = np.empty(count)
    for e in range(count):
        s[e] = _similarity(a[e], b[e], sizes, boxes, colour, texture, weights, image_size)
    merges = np.empty((n - 1, 2), dtype=np.int64)
    merged_similarity = np.empty(n - 1)
    stamp = np.full(2 * n - 1, -1, dtype=np.int64)         # stamp[k] == t: k already a neighbour of r_t
    m = 0
    while count > 0:
        best = 0
        for e in range(1, count):                          # argmax S; ties: smaller (a, b) first
            if s[e] > s[best] or (s[e] == s[best] and (a[e] < a[best] or (a[e] == a[best] and b[e] < b[best]))):
                best = e
        i, j, t = a[best], b[best], n + m
        merges[m, 0], merges[m, 1], merged_similarity[m] = i, j, s[best]
        total = sizes[i] + sizes[j]
        sizes[t] = total
        boxes[t, 0] = min(boxes[i, 0], boxes[j, 0])
        boxes[t, 1] = min(boxes[i, 1], boxes[j, 1])
        boxes[t, 2] = max(boxes[i, 2], boxes[j, 2])
        boxes[t, 3] = max(boxes[i, 3], boxes[j, 3])
        _merge_histograms(colour, i, j, t, sizes[i], sizes[j])                 # C_t, size-weighted
        _merge_histograms(texture, i, j, t, sizes[i], sizes[j])
        kept = 0
        neighbours = np.empty(count, dtype=np.int64)
        found = 0
        for e in range(count):                             # drop s(r_i, .) and s(r_j, .), note the neighbours
            if a[e] == i or a[e] == j or b[e] == i or b[e] == j:
                other = b[e] if (a[e] == i or a[e] == j) else a[e]
                if other != i and other != j and stamp[other] != t:
                    stamp[other] = t
                    neighbours[found] = other
                    found += 1
            else:
                a[kept], b[kept], s[kept] = a[e], b[e], s[e]
                kept += 1
        for q in range(found):                             # S_t: r_t against its neighbours (other < t)
            k = neighbours[q]
            a[kept], b[kept] = k, t
            s[kept] = _similarity(k, t, sizes, boxes, colour, texture, weights, image_size)
            kept += 1
        count = kept
        m += 1
    return merges[:m], merged_similarity[:m]


def hierarchical_grouping(features: RegionFeatures, neighbours: np.ndarray,
                          weights: tuple[float, float, float, float]) -> Hierarchy:
    """Algorithm 1, compiled: the same hierarchy as :func:`hierarchical_grouping_reference`, much faster.

    Args:
        features: the features of the n starting regions.
        neighbours: ``[P, 2]`` pairs of touching regions, ``a < b`` (:func:`region_adjacency`).
        weights: ``(a_1, a_2, a_3, a_4)`` for colour, texture, size and fill.

    Returns:
        The :class:`Hierarchy`: n - 1 merges when the region graph is connected.
    """
    weights = np.array(_check_weights(weights))
    n = len(features.sizes)
    grow = lambda x: np.ascontiguousarray(np.concatenate((x, np.zeros((n - 1,) + x.shape[1:]))))  # noqa: E731
    sizes, boxes = grow(features.sizes), grow(features.boxes)
    pairs = np.ascontiguousarray(np.sort(neighbours.astype(np.int64).reshape(-1, 2), axis=1))
    merges, sims = _group(pairs, n, sizes, boxes, grow(features.colour), grow(features.texture), weights,
                          float(features.image_size))
    m = len(merges)
    return Hierarchy(merges, sims, boxes[: n + m], sizes[: n + m], n)
