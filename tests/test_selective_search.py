"""Selective search: the graph segmentation against scikit-image, region features against pixel counts,
the compiled grouping against the dictionary reference, and the ranked proposals' invariants."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou
from skimage.segmentation import find_boundaries
from skimage.segmentation import felzenszwalb as skimage_felzenszwalb

from cvkit.datasets import load_photo, photo_names
from cvkit.selective_search import (MODES, SEGMENTATION_SETTINGS, SIMILARITIES, Hierarchy, convert_colour, felzenszwalb,
                                    felzenszwalb_scales, hierarchical_grouping, hierarchical_grouping_reference,
                                    histogram_intersection, merge_features, rank_regions, region_adjacency,
                                    region_features, selective_search, similarity, strategy_hierarchy)

# Stated tolerance (also in cvkit/selective_search/segmentation.py): region counts within 2 % of
# scikit-image's, boundary F-measure (exact pixel match) at least 0.9.
COUNT_TOLERANCE = 0.02
BOUNDARY_F_MIN = 0.9


def boundary_f_measure(a: np.ndarray, b: np.ndarray) -> float:
    edges_a, edges_b = find_boundaries(a, mode="inner"), find_boundaries(b, mode="inner")
    both = (edges_a & edges_b).sum()
    precision, recall = both / max(edges_a.sum(), 1), both / max(edges_b.sum(), 1)
    return 0.0 if both == 0 else 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize("name", photo_names())
@pytest.mark.parametrize("k", [50, 300])
def test_felzenszwalb_agrees_with_skimage_on_photos(name, k):
    image = load_photo(name).image
    ours = felzenszwalb(image, scale=k, sigma=0.8, min_size=k)
    theirs = skimage_felzenszwalb(image, scale=k, sigma=0.8, min_size=k)
    count_ours, count_theirs = len(np.unique(ours)), len(np.unique(theirs))
    assert abs(count_ours - count_theirs) <= COUNT_TOLERANCE * count_theirs, (count_ours, count_theirs)
    assert boundary_f_measure(ours, theirs) >= BOUNDARY_F_MIN


def test_felzenszwalb_agrees_with_skimage_on_a_grey_image_without_smoothing():
    image = convert_colour(load_photo("coffee").image, "i")[::2, ::2]            # [H, W, 1] floats
    ours = felzenszwalb(image, scale=80, sigma=0.0, min_size=10)
    theirs = skimage_felzenszwalb(image[:, :, 0], scale=80, sigma=0.0, min_size=10, channel_axis=None)
    assert abs(len(np.unique(ours)) - len(np.unique(theirs))) <= COUNT_TOLERANCE * len(np.unique(theirs))
    assert boundary_f_measure(ours, theirs) >= BOUNDARY_F_MIN


@pytest.mark.parametrize("name", ["coffee", "chelsea", "coins"])
@pytest.mark.parametrize("k", [150, 450])
def test_four_connected_felzenszwalb_agrees_with_opencv(name, k):
    """OpenCV's ximgproc graph segmentation joins 4-connected pixels (8 in the authors' code and scikit-image);
    on its 8-bit Lab image our 4-connected version gives nearly the same regions (OpenCV smooths with a
    truncated float32 kernel, so a few boundaries move)."""
    cv2 = pytest.importorskip("cv2")
    image = cv2.cvtColor(load_photo(name).image, cv2.COLOR_RGB2Lab)
    theirs = cv2.ximgproc.segmentation.createGraphSegmentation(0.8, float(k), 100).processImage(image)
    ours = felzenszwalb(image, scale=k, sigma=0.8, min_size=100, connectivity=4)
    count_ours, count_theirs = ours.max() + 1, theirs.max() + 1
    assert abs(count_ours - count_theirs) <= 0.1 * count_theirs, (count_ours, count_theirs)
    assert boundary_f_measure(ours, theirs) >= BOUNDARY_F_MIN
    eight = felzenszwalb(image, scale=k, sigma=0.8, min_size=100, connectivity=8)
    assert boundary_f_measure(eight, theirs) < boundary_f_measure(ours, theirs)


def test_felzenszwalb_by_hand():
    flat = np.full((12, 10, 3), 90, dtype=np.uint8)
    assert (felzenszwalb(flat, 100, 0.8, 5) == 0).all()                          # one region
    step = flat.copy()
    step[:, 5:] = 250                                                            # a 160-level step
    labels = felzenszwalb(step, 100, 0.0, 5)
    assert np.array_equal(labels, np.repeat([[0] * 5 + [1] * 5], 12, axis=0))
    # k large enough to swallow the step: tau = k / |C| exceeds the step's weight 160 / 255 on this scale
    assert (felzenszwalb(step, 300 * 60, 0.0, 1) == 0).all()


def test_felzenszwalb_min_size_and_labels():
    image = load_photo("chelsea").image[::3, ::3]
    for min_size in (1, 30, 200):
        labels = felzenszwalb(image, 50, 0.8, min_size)
        sizes = np.bincount(labels.ravel())
        assert labels.dtype == np.int64 and np.array_equal(np.unique(labels), np.arange(len(sizes)))
        assert sizes.min() >= min_size
    several = felzenszwalb_scales(image, (50, 200), 0.8, (50, 200))
    assert np.array_equal(several[0], felzenszwalb(image, 50, 0.8, 50))
    assert np.array_equal(several[1], felzenszwalb(image, 200, 0.8, 200))
    assert len(np.unique(several[1])) < len(np.unique(several[0]))


def test_felzenszwalb_bad_input():
    with pytest.raises(TypeError, match="image"):
        felzenszwalb([[1, 2]], 10)
    with pytest.raises(TypeError, match="dtype"):
        felzenszwalb(np.zeros((4, 4, 3), dtype=np.int32), 10)
    with pytest.raises(ValueError, match="scale"):
        felzenszwalb(np.zeros((4, 4, 3)), -1)


def test_region_adjacency_by_hand():
    labels = np.array([[0, 0, 1],
                       [2, 3, 1],
                       [2, 2, 2]])
    assert region_adjacency(labels).tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    assert region_adjacency(np.array([[0, 1], [1, 0]])).tolist() == [[0, 1]]     # diagonal only: no pair twice


def test_region_features_by_hand():
    image = np.zeros((4, 6, 3))
    image[:, 3:] = 0.99                                                          # right half bright
    labels = np.zeros((4, 6), dtype=np.int64)
    labels[:, 3:] = 1
    labels[3, 5] = 2                                                             # one pixel, bottom right
    f = region_features(image, labels)
    assert f.sizes.tolist() == [12, 11, 1] and f.image_size == 24
    assert f.boxes.tolist() == [[0, 0, 3, 4], [3, 0, 6, 4], [5, 3, 6, 4]]
    assert f.colour.shape == (3, 75) and f.texture.shape == (3, 240)
    assert np.allclose(f.colour.sum(1), 1) and np.allclose(f.texture.sum(1), 1)
    # flat colour: all of a channel's mass in one bin, 1/3 of the whole histogram each
    assert np.allclose(f.colour[0].reshape(3, 25)[:, 0], 1 / 3)
    assert np.allclose(f.colour[1].reshape(3, 25)[:, 24], 1 / 3)


def test_similarities_by_hand():
    image = np.zeros((4, 6, 3))
    labels = np.zeros((4, 6), dtype=np.int64)
    labels[:, 3:] = 1
    labels[3, 5] = 2
    f = region_features(image, labels)
    # size: 1 - (12 + 1) / 24; fill: BB of regions 0 and 2 is the whole 24-pixel image, 11 pixels of it in neither
    assert similarity(f, 0, 2, SIMILARITIES["S"]) == pytest.approx(1 - 13 / 24)
    assert similarity(f, 0, 2, SIMILARITIES["F"]) == pytest.approx(1 - 11 / 24)
    assert similarity(f, 0, 1, SIMILARITIES["C"]) == pytest.approx(1.0)          # same (black) colour
    assert similarity(f, 0, 1, SIMILARITIES["CTSF"]) == pytest.approx(1 + 1 + (1 - 23 / 24) + (1 - 1 / 24))
    assert histogram_intersection(np.array([0.5, 0.5, 0]), np.array([0, 0.25, 0.75])) == pytest.approx(0.25)


def test_merged_features_equal_the_features_of_the_union():
    """The paper's propagation, C_t = (|r_i| C_i + |r_j| C_j) / (|r_i| + |r_j|), is exact for histograms."""
    image = convert_colour(load_photo("coffee").image[::4, ::4], "hsv")
    labels = felzenszwalb(image, 100, 0.8, 100)
    f = region_features(image, labels)
    i, j = region_adjacency(labels)[3]
    size, box, colour, texture = merge_features(f.sizes[[i, j]], f.boxes[[i, j]], f.colour[[i, j]],
                                                f.texture[[i, j]])
    union = labels.copy()
    union[union == j] = i
    union = np.unique(union, return_inverse=True)[1].reshape(labels.shape)        # relabel 0 .. R-2
    g = region_features(image, union)
    t = union[labels == i][0]
    assert size == g.sizes[t] and np.array_equal(box, g.boxes[t])
    assert np.allclose(colour, g.colour[t]) and np.allclose(texture, g.texture[t])


@pytest.mark.parametrize("name", ["CTSF", "TSF", "F", "S"])
def test_compiled_grouping_equals_the_reference(name):
    image = convert_colour(load_photo("astronaut").image[::3, ::3], "lab")
    labels = felzenszwalb(image, 100, 0.8, 100)
    f, pairs = region_features(image, labels), region_adjacency(labels)
    fast = hierarchical_grouping(f, pairs, SIMILARITIES[name])
    slow = hierarchical_grouping_reference(f, pairs, SIMILARITIES[name])
    n = len(f.sizes)
    assert fast.num_initial == n and len(fast) == n - 1
    assert np.array_equal(fast.merges, slow.merges)
    assert np.allclose(fast.similarities, slow.similarities, rtol=0, atol=1e-12)
    assert np.array_equal(fast.boxes, slow.boxes) and np.array_equal(fast.sizes, slow.sizes)


def test_hierarchy_invariants():
    image = load_photo("chelsea").image[::2, ::2]
    labels, h = strategy_hierarchy(image, "hsv", 100, "CTSF")
    n, height, width = labels.max() + 1, *labels.shape
    assert h.num_initial == n and len(h) == n - 1 and h.boxes.shape == (2 * n - 1, 4)
    assert h.boxes[-1].tolist() == [0, 0, width, height] and h.sizes[-1] == height * width
    for m, (i, j) in enumerate(h.merges.tolist()):
        assert i < n + m and j < n + m                                            # parts exist before the merge
        t = n + m
        assert h.sizes[t] == h.sizes[i] + h.sizes[j]
        assert h.boxes[t, :2].tolist() == np.minimum(h.boxes[i, :2], h.boxes[j, :2]).tolist()
        assert h.boxes[t, 2:].tolist() == np.maximum(h.boxes[i, 2:], h.boxes[j, 2:]).tolist()
    every_part = np.sort(h.merges.ravel())
    assert np.array_equal(every_part, np.arange(2 * n - 2))                       # each region merged once
    assert np.array_equal(h.region_of(0), np.arange(n))
    assert (h.region_of(len(h)) == 2 * n - 2).all()
    owner = h.region_of(10)
    sizes = np.bincount(labels.ravel())
    for region in np.unique(owner):                                               # sizes add up after 10 merges
        assert h.sizes[region] == sizes[owner == region].sum()
    with pytest.raises(ValueError, match="step"):
        h.region_of(len(h) + 1)


def test_rank_regions_by_hand():
    def hierarchy(initial, merges):
        boxes = [list(b) for b in initial]
        for i, j in merges:                                       # region n + m is the box around its parts
            boxes.append([min(boxes[i][0], boxes[j][0]), min(boxes[i][1], boxes[j][1]),
                          max(boxes[i][2], boxes[j][2]), max(boxes[i][3], boxes[j][3])])
        boxes = np.array(boxes, dtype=np.float64)
        return Hierarchy(np.array(merges, dtype=np.int64).reshape(-1, 2), np.zeros(len(merges)), boxes,
                         np.ones(len(boxes)), len(initial))
    a = hierarchy([[0, 0, 1, 1], [1, 1, 2, 2]], [(0, 1)])                        # merged [0, 0, 2, 2] at i = 1
    b = hierarchy([[5, 5, 6, 6], [6, 5, 7, 6], [5, 6, 6, 7]], [(0, 1), (3, 2)])  # [5, 5, 7, 6] i = 2, [5, 5, 7, 7] i = 1
    # without randomness: merged regions at i = M .. 1, starting regions at i = M + 1 (ties in input order)
    assert rank_regions([a, b], seed=None).tolist() == [
        [0, 0, 2, 2], [5, 5, 7, 7], [0, 0, 1, 1], [1, 1, 2, 2], [5, 5, 7, 6], [5, 5, 6, 6], [6, 5, 7, 6], [5, 6, 6, 7]]
    ranked = rank_regions([a, b], seed=3)
    assert sorted(map(tuple, ranked.tolist())) == sorted(map(tuple, rank_regions([a, b], seed=None).tolist()))
    # a second similarity set on a's segmentation adds its merges, not a's starting regions again
    assert len(rank_regions([a, a], seed=None)) == 3
    # boxes with a side under min_box_side are dropped: only the two 2 x 2 boxes stay
    assert rank_regions([a, b], seed=None, min_box_side=2).tolist() == [[0, 0, 2, 2], [5, 5, 7, 7]]
    assert rank_regions([], seed=0).shape == (0, 4)
    # OpenCV's order: v = RND * level, level 1 for starting regions and max(parts) + 1 for a merge
    assert a.levels().tolist() == [1, 1, 2] and b.levels().tolist() == [1, 1, 1, 2, 3]
    assert a.positions().tolist() == [2, 2, 1] and b.positions().tolist() == [3, 3, 3, 2, 1]
    assert rank_regions([a, b], seed=None, ranking="opencv").tolist() == [
        [0, 0, 1, 1], [1, 1, 2, 2], [5, 5, 6, 6], [6, 5, 7, 6], [5, 6, 6, 7], [0, 0, 2, 2], [5, 5, 7, 6], [5, 5, 7, 7]]
    assert len(rank_regions([a, a], seed=None, ranking="opencv")) == 3
    # both ends: i = min(position from the top, level); a: 1, 1, min(1, 2) = 1; b: 1, 1, 1, min(2, 2), min(1, 3)
    assert rank_regions([a, b], seed=None, ranking="both").tolist() == [
        [0, 0, 1, 1], [1, 1, 2, 2], [0, 0, 2, 2], [5, 5, 6, 6], [6, 5, 7, 6], [5, 6, 6, 7], [5, 5, 7, 7], [5, 5, 7, 6]]
    with pytest.raises(ValueError, match="ranking"):
        rank_regions([a], ranking="random")


def test_opencv_ranking_puts_small_boxes_first():
    image = load_photo("coffee").image[::2, ::2]
    paper = selective_search(image, "opencv_fast")
    opencv = selective_search(image, "opencv_fast", ranking="opencv")
    assert torch.equal(torch.unique(paper, dim=0), torch.unique(opencv, dim=0))     # the same pool
    area = lambda b: ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).median()           # noqa: E731
    assert area(opencv[:100]) < 0.5 * area(paper[:100])
    both = selective_search(image, "opencv_fast", ranking="both")
    assert torch.equal(torch.unique(both, dim=0), torch.unique(opencv, dim=0))
    image_box = torch.tensor([0.0, 0.0, image.shape[1], image.shape[0]])
    # the whole image (i = 1 from the top) comes early in both the paper's order and 'both', late in OpenCV's
    place = lambda boxes: int((boxes == image_box).all(dim=1).nonzero()[0])         # noqa: E731
    assert place(paper) < 20 and place(both) < 0.2 * len(both) and place(opencv) > place(both)
    with pytest.raises(ValueError, match="ranking"):
        selective_search(image, ranking="opencv_fast")


def test_selective_search_output():
    photo = load_photo("coffee")
    image = photo.image[::2, ::2]
    height, width = image.shape[:2]
    boxes = selective_search(image, "fast")
    assert boxes.dtype == torch.float32 and boxes.dim() == 2 and boxes.shape[1] == 4 and len(boxes) > 100
    assert (boxes[:, 2:] > boxes[:, :2]).all() and (boxes[:, :2] >= 0).all()
    assert (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
    assert len(torch.unique(boxes, dim=0)) == len(boxes)
    assert torch.equal(boxes, selective_search(image, "fast"))                    # seeded: reproducible
    other = selective_search(image, "fast", seed=1)
    assert not torch.equal(other, boxes)
    assert torch.equal(torch.unique(other, dim=0), torch.unique(boxes, dim=0))    # same set, other order
    as_tensor = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    assert torch.equal(selective_search(as_tensor, "fast"), boxes)
    assert selective_search(image, "fast", seed=None)[0].tolist() == [0, 0, width, height]


def test_modes_grow_and_follow_the_paper():
    assert MODES["single"] == (("hsv",), (100,), ("CTSF",))
    assert MODES["fast"] == (("hsv", "lab"), (50, 100), ("CTSF", "TSF"))
    assert MODES["opencv_fast"] == (("hsv", "lab"), (150, 300, 450), ("CTSF", "TSF"))   # switchToSelectiveSearchFast
    assert SEGMENTATION_SETTINGS == {"opencv_fast": (100, 4)}
    assert len(MODES["quality"][0]) * len(MODES["quality"][1]) * len(MODES["quality"][2]) == 80
    image = load_photo("chelsea").image[::4, ::4]
    counts = [len(selective_search(image, mode)) for mode in ("single", "fast", "quality")]
    assert counts[0] < counts[1] < counts[2]
    single = {tuple(b) for b in selective_search(image, "single").tolist()}
    assert single <= {tuple(b) for b in selective_search(image, "fast").tolist()}  # fast includes single's strategy


def test_selective_search_finds_the_objects():
    photo = load_photo("coffee")
    boxes = selective_search(photo.image, "fast")
    assert (box_iou(photo.boxes, boxes).amax(dim=1) >= 0.5).all()


def test_selective_search_bad_input():
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="mode"):
        selective_search(image, "slow")
    with pytest.raises(ValueError, match="colour_spaces"):
        selective_search(image, colour_spaces=["xyz"])
    with pytest.raises(ValueError, match="similarities"):
        selective_search(image, similarities=["Q"])
    with pytest.raises(ValueError, match="image"):
        selective_search(np.zeros((8, 8, 4), dtype=np.uint8))
    with pytest.raises(TypeError, match="image"):
        selective_search([[0]])
    with pytest.raises(ValueError, match="weights"):
        hierarchical_grouping(region_features(np.zeros((2, 2, 3)), np.zeros((2, 2), dtype=np.int64)),
                              np.zeros((0, 2), dtype=np.int64), (0, 0, 0, 0))
