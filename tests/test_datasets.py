import numpy as np
import pytest
import torch

from cvkit.datasets import load_photo, noisy_detections, photo_names


def test_every_photo_loads_with_boxes_inside_it():
    assert photo_names("all") == sorted(photo_names("all")) and len(photo_names("all")) >= 9
    for name in photo_names("all"):
        photo = load_photo(name)
        height, width = photo.size
        assert photo.image.dtype == np.uint8 and photo.image.shape == (height, width, 3)
        assert photo.boxes.shape == (len(photo.labels), 4)
        assert (photo.boxes[:, 2:] > photo.boxes[:, :2]).all()
        assert (photo.boxes[:, :2] >= 0).all()
        assert (photo.boxes[:, 2] <= width).all() and (photo.boxes[:, 3] <= height).all()


def test_collections():
    assert photo_names() == ["astronaut", "chelsea", "coffee", "rocket"]        # what notebooks 00-02 rely on
    assert set(photo_names()) < set(photo_names("proposals")) <= set(photo_names("all"))
    assert sum(len(load_photo(name).labels) for name in photo_names("proposals")) >= 80
    with pytest.raises(ValueError, match="collection"):
        photo_names("everything")


def test_grey_binary_and_tuple_photos_become_rgb():
    import skimage.data

    coins, horse, motorcycle = load_photo("coins"), load_photo("horse"), load_photo("motorcycle")
    assert np.array_equal(coins.image, np.stack([skimage.data.coins()] * 3, axis=2))
    assert set(np.unique(horse.image)) == {0, 255} and (horse.image[..., 0] == horse.image[..., 2]).all()
    assert np.array_equal(motorcycle.image, skimage.data.stereo_motorcycle()[0])        # the left view


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
