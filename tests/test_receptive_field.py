"""cvkit.receptive_field against its oracles: the course notes' numbers (31 for 3 x 3 dilated 1-2-4-8, 1 + 2L for L
plain 3 x 3 layers), published values (VGG-16: 212 after pool5, 196 at conv5_3; Araujo et al. 2019, Table 1),
the measured field (gradient support) on random stacks, which must match the formula in size and position, and
Wang et al.'s gridding examples.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st

from cvkit.receptive_field import (coverage, dilated_stack, empirical_receptive_field, feature_sizes,
                                   gradient_receptive_field, hdc_dilations_ok, layer_geometry, receptive_field)

PROPERTY = settings(max_examples=60, deadline=None)


def test_course_example_dilated_1_2_4_8_gives_31():
    """1 + (2 x 1 x 1) + (2 x 2 x 1) + (2 x 4 x 1) + (2 x 8 x 1) = 31, against 9 for four undilated 3 x 3 layers."""
    assert receptive_field(dilated_stack([1, 2, 4, 8])).size == (31, 31)
    assert receptive_field(dilated_stack([1, 1, 1, 1])).size == (9, 9)
    # after each layer 2^(i+2) - 1: 3, 7, 15, 31
    assert [f.size[0] for f in receptive_field(dilated_stack([1, 2, 4, 8])).layers] == [3, 7, 15, 31]


@pytest.mark.parametrize("depth", [1, 2, 5, 10, 100])
def test_plain_3x3_stack_grows_linearly(depth):
    """The notes: L stride-1 3 x 3 layers see 1 + 2L pixels, so a field of 200 needs about 100 layers."""
    field = receptive_field([(3, 1, 1)] * depth)
    assert field.size == (1 + 2 * depth,) * 2 and field.jump == (1, 1)


def test_strides_multiply_the_jump_and_widen_later_layers():
    """conv 7 s2 p3 -> maxpool 3 s2 p1 -> conv 3 p1 (a ResNet stem and one layer): R = 1 + 6 + 2*2 + 2*4 = 19,
    jump 4; output 0's field is centred on input pixel 0 (paddings are half the kernels)."""
    model = nn.Sequential(nn.Conv2d(3, 8, 7, 2, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
                          nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1), nn.ReLU()))
    field = receptive_field(model)
    assert field.size == (19, 19) and field.jump == (4, 4) and field.start == (0.0, 0.0)
    assert field.box(2, 3) == (12 - 9.5, 8 - 9.5, 12 + 9.5, 8 + 9.5)


def test_centre_offset_without_padding():
    """Two 3 x 3 convolutions, no padding: output 0 sees input rows 0..4, centred on row 2. A 2 x 2 pool with
    stride 2 (output 0 sees rows 0..1) then a 3 x 3 conv (pooled rows 0..2 = input rows 0..5): centre 2.5, size 6."""
    assert receptive_field([(3, 1), (3, 1)]).start == (2.0, 2.0)
    field = receptive_field([(2, 2), (3, 1)])
    assert field.start == (2.5, 2.5) and field.size == (6, 6)


def test_published_vgg16_receptive_fields():
    features = torchvision.models.vgg16().features                 # no weights needed: only the geometry
    assert receptive_field(features).size == (212, 212)             # after pool5
    assert receptive_field(features[:-1]).size == (196, 196)        # conv5_3
    assert receptive_field(features).jump == (32, 32)


def test_rectangular_kernels_and_tuples():
    # rows: 1 + 0 + 6 * 2 (the second kernel is 7 tall, dilated 2); columns: 1 + 6 + 0
    field = receptive_field([((1, 7), 1, (0, 3)), ((7, 1), (2, 1), (6, 0), (2, 1))])
    assert field.size == (13, 7) and field.jump == (2, 1)


def test_layer_geometry_of_modules():
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding="same", dilation=2), nn.AvgPool2d(2), nn.Dropout2d(),
                          nn.MaxPool2d(3, 1, 1, dilation=2), nn.Conv2d(1, 1, (3, 5), padding="valid"))
    geometry = layer_geometry(model)
    assert [(g.kernel, g.stride, g.padding, g.dilation) for g in geometry] == [
        ((3, 3), (1, 1), (2, 2), (2, 2)), ((2, 2), (2, 2), (0, 0), (1, 1)), ((3, 3), (1, 1), (1, 1), (2, 2)),
        ((3, 5), (1, 1), (0, 0), (1, 1))]
    assert receptive_field([]).size == (1, 1)
    assert receptive_field(nn.Conv2d(1, 1, 5)).size == (5, 5)


def test_unsupported_layers_are_named():
    with pytest.raises(TypeError, match=r"layer 1\.0: Linear .* no receptive field rule"):
        receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Sequential(nn.Linear(3, 3))))
    with pytest.raises(TypeError, match="layer 0: ConvTranspose2d"):
        receptive_field([nn.ConvTranspose2d(1, 1, 3)])
    with pytest.raises(TypeError, match=r"layer 1 must be an nn.Module or a \(kernel, stride, padding, dilation\)"):
        receptive_field([(3, 1), "conv"])
    with pytest.raises(ValueError, match="kernel, stride and dilation must be >= 1"):
        receptive_field([(3, 0)])
    with pytest.raises(TypeError, match="layer 0's kernel must be an int or a pair"):
        receptive_field([(3.0, 1)])


# --------------------------------------------------------------------------------------------------
# the measured field agrees with the formula


layer_strategy = st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(0, 2), st.integers(1, 3))


@PROPERTY
@given(layers=st.lists(layer_strategy, min_size=1, max_size=4), data=st.data())
def test_measured_field_matches_the_formula_on_random_stacks(layers, data):
    layers = [(k, s, min(p, (d * (k - 1)) // 2 + 1), d) for k, s, p, d in layers]
    field = receptive_field(layers)
    # an input wide enough that the middle output's field lies well inside it
    size = 2 * field.size[0] + 4 * field.jump[0] + 8
    measured = empirical_receptive_field(layers, size)
    assert measured.size == field.size
    row, col = measured.output
    x1, y1, x2, y2 = field.box(row, col)
    assert measured.bbox == (round(y1 + 0.5), round(x1 + 0.5), round(y2 - 0.5), round(x2 - 0.5))
    # any other output: the centre output's support moved by the jump (cut to the image near the border)
    out_h, out_w = measured.output_size
    other = (data.draw(st.integers(0, out_h - 1)), data.draw(st.integers(0, out_w - 1)))
    dr, dc = (other[0] - row) * field.jump[0], (other[1] - col) * field.jump[1]
    expected = torch.zeros(size + 2 * abs(dr), size + 2 * abs(dc), dtype=torch.bool)
    expected[abs(dr) + dr: abs(dr) + dr + size, abs(dc) + dc: abs(dc) + dc + size] = measured.support
    expected = expected[abs(dr): abs(dr) + size, abs(dc): abs(dc) + size]
    support = empirical_receptive_field(layers, size, output=other).support
    x1, y1, x2, y2 = field.box(*other)
    if x1 >= -0.5 and y1 >= -0.5 and x2 <= size - 0.5 and y2 <= size - 0.5:
        assert torch.equal(support, expected)
    else:   # near the border a padded intermediate pixel passes no gradient on: part of the field goes missing
        assert not (support & ~expected).any()


def test_measured_field_of_modules_and_path_counts():
    """Two 3 x 3 layers: the number of paths from input offset t to the output is the 1-D count (1, 2, 3, 2, 1)
    squared by rows and columns; the centre is reached 9 ways."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 1, 3))
    measured = empirical_receptive_field(model, 9)
    counts = torch.tensor([1.0, 2, 3, 2, 1], dtype=torch.float64)
    assert measured.output == (2, 2) and measured.size == (5, 5)
    assert torch.equal(measured.gradient[2:7, 2:7], counts[:, None] * counts[None, :])
    assert measured.gradient.sum() == 81


def test_real_network_gradient_lies_inside_the_theoretical_field():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 8, 3, padding=2, dilation=2), nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1))
    field = receptive_field(model)
    assert field.size == (16, 16)                                   # 1 + 2 + 1 + 2*2*2 + 2*2
    measured = gradient_receptive_field(model, torch.randn(3, 64, 64))
    x1, y1, x2, y2 = field.box(*measured.output)
    r0, c0, r1, c1 = measured.bbox
    assert y1 < r0 and r1 < y2 and x1 < c0 and c1 < x2               # never outside R
    assert measured.size[0] >= field.size[0] - 4                   # and most of it is reached
    assert gradient_receptive_field(model, torch.randn(1, 3, 64, 64), channel=2).bbox is not None


def test_empirical_bad_arguments():
    with pytest.raises(ValueError, match="input_size .* is too small"):
        empirical_receptive_field([(3, 1, 0, 1), (5, 1, 0, 2)], 10)      # 8 x 8 left for a kernel spanning 9
    with pytest.raises(ValueError, match="output must index the 8 x 8 output"):
        empirical_receptive_field([(3, 1, 1)], 8, output=(8, 0))


# --------------------------------------------------------------------------------------------------
# gridding and hybrid dilated convolution


@pytest.mark.parametrize("dilations, solid", [((2, 2, 2), False), ((2, 4, 8), False), ((1, 2, 9), False),
                                              ((1, 2, 3), True), ((1, 2, 5), True), ((1, 2, 4, 8), True)])
def test_gridding_and_hdc(dilations, solid):
    layers = dilated_stack(dilations)
    measured = empirical_receptive_field(layers, 96)
    assert measured.size == receptive_field(layers).size
    assert (coverage(measured) == 1.0) == solid
    if dilations != (1, 2, 4, 8):                                   # HDC's rule is for one group of 3
        assert hdc_dilations_ok(dilations) == solid


def test_gridding_2_2_2_reaches_even_offsets_only():
    measured = empirical_receptive_field(dilated_stack([2, 2, 2]), 33)
    r0, c0, r1, c1 = measured.bbox
    window = measured.support[r0: r1 + 1, c0: c1 + 1]
    assert window.shape == (13, 13)
    assert window[::2, ::2].all() and not window[1::2].any() and not window[:, 1::2].any()
    assert coverage(measured) == pytest.approx(49 / 169)


def test_dilated_stack_bad_arguments():
    assert dilated_stack([1, 3], kernel=5) == [(5, 1, 2, 1), (5, 1, 6, 3)]
    with pytest.raises(ValueError, match="kernel must be odd"):
        dilated_stack([1, 2], kernel=4)
    with pytest.raises(ValueError, match="dilations must be positive"):
        dilated_stack([0, 2])


def test_feature_sizes_equal_the_modules_outputs():
    model = nn.Sequential(nn.Conv2d(3, 4, 7, 2, 3), nn.ReLU(), nn.MaxPool2d(3, 2, 1), nn.Conv2d(4, 4, 3, padding=2, dilation=2),
                          nn.AvgPool2d(2), nn.Conv2d(4, 4, (1, 3)))
    x = torch.zeros(1, 3, 45, 62)
    expected = []
    for layer in model:
        x = layer(x)
        if not isinstance(layer, nn.ReLU):
            expected.append(tuple(x.shape[-2:]))
    assert feature_sizes(model, (45, 62)) == expected
    assert feature_sizes(dilated_stack([1, 2, 4]), 40) == [(40, 40)] * 3
    with pytest.raises(ValueError, match="leaves no output"):
        feature_sizes([(5, 1)], 3)
