"""The synthetic segmentation set: deterministic, labels that match the pixels, clear errors."""
from __future__ import annotations

import pytest
import torch

from cvkit.datasets.segmentation import draw_scene, shapes_segmentation
from cvkit.datasets.shapes import SHAPES, photo_background


@pytest.fixture(scope="module")
def small_set():
    return shapes_segmentation(12, image_size=48, seed=3)


def test_shapes_and_dtypes(small_set):
    assert small_set.images.shape == (12, 3, 48, 48) and small_set.images.dtype == torch.float32
    assert small_set.masks.shape == (12, 48, 48) and small_set.masks.dtype == torch.int64
    assert small_set.classes == ("background", *SHAPES) and small_set.num_classes == 7
    assert 0 <= small_set.images.min() and small_set.images.max() <= 1
    assert 0 <= small_set.masks.min() and small_set.masks.max() < 7
    image, mask = small_set[4]
    assert torch.equal(image, small_set.images[4]) and torch.equal(mask, small_set.masks[4])
    assert len(small_set) == 12


def test_the_same_seed_gives_the_same_set_and_a_prefix_of_a_larger_one(small_set):
    again = shapes_segmentation(12, image_size=48, seed=3)
    assert torch.equal(again.images, small_set.images) and torch.equal(again.masks, small_set.masks)
    fewer = shapes_segmentation(5, image_size=48, seed=3)
    assert torch.equal(fewer.images, small_set.images[:5]) and torch.equal(fewer.masks, small_set.masks[:5])
    other = shapes_segmentation(5, image_size=48, seed=4)
    assert not torch.equal(other.masks, fewer.masks)


def test_every_image_holds_shapes_and_most_pixels_are_background(small_set):
    labelled = (small_set.masks > 0).flatten(1).float().mean(1)                 # share of shape pixels per image
    assert (labelled > 0).all()
    assert 0.5 < (small_set.masks == 0).float().mean() < 0.97


@pytest.mark.parametrize("seed", range(6))
def test_labels_mark_exactly_the_painted_pixels(seed):
    """One shape per image: its pixels carry one colour, every other pixel is the photo crop untouched."""
    image, mask = draw_scene(torch.Generator().manual_seed(seed), 40, ("ring", "cross"), (1, 1), (10, 20))
    background = photo_background(40, 40, torch.Generator().manual_seed(seed))   # the first draws of the scene
    shape = mask > 0
    assert set(mask.unique().tolist()) <= {0, 1, 2} and shape.any()
    assert torch.equal(image[:, ~shape], background[:, ~shape])
    painted = image[:, shape]                                                     # [3, pixels]
    assert torch.equal(painted, painted[:, :1].expand_as(painted))
    assert shape.sum() <= 20 * 20


def test_kinds_choose_the_classes():
    data = shapes_segmentation(6, image_size=32, kinds=("square", "ring"), shape_size=(8, 16), seed=0)
    assert data.classes == ("background", "square", "ring")
    assert data.masks.max() <= 2


def test_loader_batches_every_image_once_in_a_reproducible_order(small_set):
    batches = list(small_set.loader(batch_size=5, seed=1))
    assert [b[0].shape[0] for b in batches] == [5, 5, 2]
    assert batches[0][0].shape == (5, 3, 48, 48) and batches[0][1].shape == (5, 48, 48)
    again = list(small_set.loader(batch_size=5, seed=1))
    assert all(torch.equal(a[1], b[1]) for a, b in zip(batches, again))
    seen = torch.cat([b[1] for b in batches]).flatten(1)
    assert sorted(map(tuple, seen.tolist())) == sorted(map(tuple, small_set.masks.flatten(1).tolist()))


def test_an_empty_set():
    empty = shapes_segmentation(0, image_size=32)
    assert empty.images.shape == (0, 3, 32, 32) and empty.masks.shape == (0, 32, 32)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=-1), "n must be a non-negative integer"),
    (dict(n=2, kinds=("hexagon",)), "kinds must be distinct names"),
    (dict(n=2, kinds=("ring", "ring")), "kinds must be distinct names"),
    (dict(n=2, image_size=20, shape_size=(10, 30)), "image_size must be an integer >= the largest shape_size 30"),
    (dict(n=2, shape_size=(20, 10)), "shape_size must be"),
    (dict(n=2, shapes_per_image=(1,)), "shapes_per_image must be"),
    (dict(n=2, seed=-3), "seed must be a non-negative integer"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        shapes_segmentation(**kwargs)
