import numpy as np
import pytest
import torch

from cvkit.datasets import load_photo, noisy_detections, photo_names


def test_every_photo_loads_with_boxes_inside_it():
    assert photo_names() == sorted(photo_names()) and len(photo_names()) >= 4
    for name in photo_names():
        photo = load_photo(name)
        height, width = photo.size
        assert photo.image.dtype == np.uint8 and photo.image.shape == (height, width, 3)
        assert photo.boxes.shape == (len(photo.labels), 4)
        assert (photo.boxes[:, 2:] > photo.boxes[:, :2]).all()
        assert (photo.boxes[:, :2] >= 0).all()
        assert (photo.boxes[:, 2] <= width).all() and (photo.boxes[:, 3] <= height).all()


def test_unknown_photo_names_the_choices():
    with pytest.raises(ValueError, match="astronaut"):
        load_photo("mona lisa")


def test_noisy_detections_are_deterministic_and_valid():
    photo = load_photo("astronaut")
    a = noisy_detections(photo.boxes, photo.size, per_object=5, false_positives=4, seed=3)
    b = noisy_detections(photo.boxes, photo.size, per_object=5, false_positives=4, seed=3)
    c = noisy_detections(photo.boxes, photo.size, per_object=5, false_positives=4, seed=4)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert not torch.equal(a[0], c[0])
    boxes, scores, origin = a
    n = len(photo.labels) * 5 + 4
    assert boxes.shape == (n, 4) and scores.shape == (n,) and origin.shape == (n,)
    assert (boxes[:, 2:] >= boxes[:, :2]).all()
    assert ((scores > 0) & (scores < 1)).all()
    assert (origin == -1).sum() == 4
    assert torch.equal(torch.bincount(origin[origin >= 0]), torch.full((len(photo.labels),), 5))


def test_photo_tensor_is_the_image_scaled_to_unit_range_channels_first():
    photo = load_photo(photo_names()[0])
    image = photo.tensor()
    height, width = photo.size
    assert image.shape == (3, height, width) and image.dtype == torch.float32
    assert torch.equal(image[:, 5, 7], torch.tensor(photo.image[5, 7], dtype=torch.float32) / 255)
    assert image.min() >= 0 and image.max() <= 1
