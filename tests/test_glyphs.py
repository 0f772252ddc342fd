"""The warped-glyph data set of notebook 09: deterministic, labelled by the letters drawn, geometry as documented."""
import pytest
import torch
import torch.nn.functional as F

from cvkit.datasets.glyphs import GLYPHS, glyph_template, make_glyph_images


def test_same_seed_same_images_other_seed_other_images():
    a, b = make_glyph_images(8, seed=3), make_glyph_images(8, seed=3)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, make_glyph_images(8, seed=4).images)


def test_shapes_and_letters_per_image():
    data = make_glyph_images(200, image_size=32, max_glyphs=3, seed=0)
    assert data.images.shape == (200, 1, 32, 32) and data.images.dtype == torch.float32
    assert data.labels.shape == (200, len(GLYPHS))
    assert set(data.labels.unique().tolist()) <= {0.0, 1.0}
    per_image = data.labels.sum(1)
    assert per_image.min() >= 1 and per_image.max() <= 3
    assert (per_image == 3).any() and (per_image == 1).any()


@pytest.mark.parametrize("letter, stroke, empty", [
    ("L", [(24, 16), (40, 30)], [(10, 36)]),     # stem on the left and foot at the bottom, top right empty
    ("T", [(8, 24), (30, 24)], [(36, 8), (36, 40)]),   # bar on top, stem in the middle, lower corners empty
    ("H", [(30, 14), (30, 40), (23, 28)], [(8, 28), (40, 28)]),   # two stems and the bar between them
])
def test_templates_have_their_strokes_where_the_letter_has_them(letter, stroke, empty):
    template = glyph_template(letter)
    assert template.shape == (48, 48) and 0 <= template.min() and template.max() <= 1
    for y, x in stroke:
        assert template[y, x] > 0.9, (letter, y, x)
    for y, x in empty:
        assert template[y, x] < 0.1, (letter, y, x)


def _box_normalised(image, threshold):
    """Crop the bounding box of the pixels above ``threshold`` and resize it to 32 x 32 (undoes scale, aspect and
    translation, which is all the transform is when rotation, shear and elastic warp are off)."""
    rows, cols = torch.nonzero(image > threshold, as_tuple=True)
    crop = image[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    resized = F.interpolate(crop[None, None], size=(32, 32), mode="bilinear", align_corners=False)[0, 0]
    return (resized - resized.mean()) / resized.std()


def test_label_is_the_letter_drawn():
    # Without rotation, shear, warp and noise a letter is a scaled, stretched, shifted template: cropping its box
    # and resizing it must match the template of its label best (an oracle independent of the warp code).
    data = make_glyph_images(100, image_size=64, max_glyphs=1, seed=5, scale_range=(0.3, 0.4), max_rotation=0.0,
                             max_shear=0.0, elastic=0.0, noise=0.0)
    references = torch.stack([_box_normalised(glyph_template(letter), 0.5) for letter in GLYPHS])   # [K, 32, 32]
    checked = 0
    for image, label in zip(data.images, data.labels):
        ink = torch.nonzero(image[0] > 0.4)
        if ink.min() == 0 or ink.max() == image.shape[-1] - 1:
            continue                                      # a letter cut by the border: its box is not the template's
        scores = (references * _box_normalised(image[0], 0.4)).mean((1, 2))
        assert int(scores.argmax()) == int(label.argmax())
        checked += 1
    assert checked >= 40


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_glyphs"):
        make_glyph_images(4, max_glyphs=0)
    with pytest.raises(ValueError, match="letter"):
        glyph_template("Q")
