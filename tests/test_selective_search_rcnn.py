"""R-CNN's warp of proposals to the CNN input: without context it is the crop, with context p the box fills
the centre size - 2p pixels, and outside the image it reads zero (the mean, after mean subtraction)."""
from __future__ import annotations

import pytest
import torch

from cvkit.selective_search.rcnn import warp_proposals


def test_warp_without_context_is_the_crop():
    image = torch.rand(3, 40, 50, dtype=torch.float64)
    boxes = torch.tensor([[4.0, 6.0, 14.0, 16.0], [0.0, 0.0, 10.0, 10.0]], dtype=torch.float64)
    crops = warp_proposals(image, boxes, size=10, context=0)
    assert crops.shape == (2, 3, 10, 10)
    assert torch.allclose(crops[0], image[:, 6:16, 4:14]) and torch.allclose(crops[1], image[:, :10, :10])
    # with context p, the box fills the centre size - 2p pixels: a 20-pixel box warped to 30 with p = 5
    # is the 20x20 crop sampled once per pixel
    big = warp_proposals(image, torch.tensor([[10.0, 10.0, 30.0, 30.0]], dtype=torch.float64), size=30, context=5)
    assert torch.allclose(big[0, :, 5:25, 5:25], image[:, 10:30, 10:30])
    assert big.shape == (1, 3, 30, 30)
    outside = warp_proposals(image, torch.tensor([[0.0, 0.0, 20.0, 20.0]], dtype=torch.float64), size=30, context=5)
    assert (outside[0, :, :4, :4] == 0).all()                                     # beyond the image: zero (the mean)
    with pytest.raises(ValueError, match="context"):
        warp_proposals(image, boxes, size=10, context=5)
