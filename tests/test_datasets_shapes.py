import math

import numpy as np
import pytest
import torch
from skimage.draw import polygon as skimage_polygon

from cvkit.datasets.shapes import SHAPES, mask_to_box, paste, photo_background, shape_mask


@pytest.mark.parametrize("kind", SHAPES)
@pytest.mark.parametrize("angle", [0.0, 17.0, 90.0])
def test_every_shape_is_a_non_empty_mask_inside_its_square(kind, angle):
    mask = shape_mask(kind, 41, angle)
    assert mask.shape == (41, 41) and mask.dtype == torch.bool
    assert 0.1 * 41 * 41 < mask.sum() < 0.9 * 41 * 41


def test_circle_area_matches_pi_r_squared():
    size = 201
    radius = 0.95 * size / 2
    assert shape_mask("circle", size).sum().item() == pytest.approx(math.pi * radius**2, rel=0.01)


def test_square_matches_scikit_image_polygon_rasterisation():
    size, angle = 64, 30.0
    mask = shape_mask("square", size, angle).numpy()
    # the same square's corners, rasterised by scikit-image (pixel centres at integers, ours at +0.5)
    r, theta = size / 2, math.radians(angle)
    corners = [(-0.7, -0.7), (0.7, -0.7), (0.7, 0.7), (-0.7, 0.7)]
    xs = [r + r * (px * math.cos(theta) + py * math.sin(theta)) - 0.5 for px, py in corners]
    ys = [r + r * (-px * math.sin(theta) + py * math.cos(theta)) - 0.5 for px, py in corners]
    expected = np.zeros((size, size), dtype=bool)
    expected[skimage_polygon(ys, xs, shape=(size, size))] = True
    assert (mask != expected).sum() <= 8  # pixels whose centre lies exactly on an edge may differ


def test_rotating_a_square_by_90_degrees_gives_the_same_mask():
    assert torch.equal(shape_mask("square", 30, 0.0), shape_mask("square", 30, 90.0))


def test_ring_has_a_hole_and_circle_does_not():
    assert not shape_mask("ring", 31)[15, 15]
    assert shape_mask("circle", 31)[15, 15]


@pytest.mark.parametrize("kind, size, message", [("hexagon", 10, "kind"), ("circle", 2, "size"), ("circle", 5.5, "size")])
def test_bad_shape_arguments_are_named(kind, size, message):
    with pytest.raises(ValueError, match=message):
        shape_mask(kind, size)


def test_photo_background_is_deterministic_and_in_range():
    a = photo_background(48, 80, torch.Generator().manual_seed(3))
    b = photo_background(48, 80, torch.Generator().manual_seed(3))
    c = photo_background(48, 80, torch.Generator().manual_seed(4))
    assert a.shape == (3, 48, 80) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1 and a.std() > 0.01


def test_paste_clips_at_the_border_and_paints_only_the_mask():
    image = torch.zeros(3, 5, 6)
    mask = torch.tensor([[True, False], [True, True]])
    paste(image, mask, top=4, left=-1, color=(1.0, 0.5, 0.25))
    # only the mask's top row lands inside (row 4), and only its right column (column 0): that is False
    assert image.sum() == 0
    paste(image, mask, top=3, left=4, color=(1.0, 0.5, 0.25))
    painted = image[0] > 0
    assert painted.nonzero().tolist() == [[3, 4], [4, 4], [4, 5]]
    assert image[:, 4, 5].tolist() == [1.0, 0.5, 0.25]


def test_paste_rejects_a_colour_of_the_wrong_length():
    with pytest.raises(ValueError, match="color"):
        paste(torch.zeros(3, 4, 4), torch.ones(2, 2, dtype=torch.bool), 0, 0, (1.0, 0.0))


def test_mask_to_box_uses_pixel_edges():
    mask = torch.zeros(10, 12, dtype=torch.bool)
    mask[2, 3] = True
    assert mask_to_box(mask).tolist() == [3.0, 2.0, 4.0, 3.0]
    mask[6, 9] = True
    assert mask_to_box(mask).tolist() == [3.0, 2.0, 10.0, 7.0]
    with pytest.raises(ValueError, match="empty"):
        mask_to_box(torch.zeros(4, 4, dtype=torch.bool))
