"""The checks of notebook 04 (cvkit.grading.roi): right answers pass, classic slips fail and are named."""
from __future__ import annotations

import math

import pytest
import torch

from cvkit.grading import ExerciseFailed, check
from cvkit.roi import bilinear_interpolate


def bilinear_plain(feature, y, x):
    """A correct answer, as the notebook's solution cell writes it."""
    height, width = feature.shape
    y0, x0 = min(int(math.floor(y)), height - 1), min(int(math.floor(x)), width - 1)
    y1, x1 = min(y0 + 1, height - 1), min(x0 + 1, width - 1)
    ly, lx = y - y0, x - x0
    return float((1 - ly) * (1 - lx) * feature[y0, x0] + (1 - ly) * lx * feature[y0, x1]
                 + ly * (1 - lx) * feature[y1, x0] + ly * lx * feature[y1, x1])


def bilinear_swapped_weights(feature, y, x):
    y0, x0 = int(math.floor(y)), int(math.floor(x))
    y1, x1 = min(y0 + 1, feature.shape[0] - 1), min(x0 + 1, feature.shape[1] - 1)
    ly, lx = y - y0, x - x0
    return float(ly * lx * feature[y0, x0] + ly * (1 - lx) * feature[y0, x1]
                 + (1 - ly) * lx * feature[y1, x0] + (1 - ly) * (1 - lx) * feature[y1, x1])


def bilinear_no_clamp(feature, y, x):
    y0, x0 = int(math.floor(y)), int(math.floor(x))
    ly, lx = y - y0, x - x0
    return float((1 - ly) * (1 - lx) * feature[y0, x0] + (1 - ly) * lx * feature[y0, x0 + 1]
                 + ly * (1 - lx) * feature[y0 + 1, x0] + ly * lx * feature[y0 + 1, x0 + 1])


def bilinear_xy_swapped(feature, y, x):
    """Reads the point as (x, y): fine on a symmetric input, wrong elsewhere."""
    return bilinear_plain(feature, min(x, feature.shape[0] - 1), min(y, feature.shape[1] - 1))


def roi_bin_plain(feature, box, sampling_ratio):
    x1, y1, x2, y2 = box
    s = sampling_ratio
    total = 0.0
    for i in range(s):
        for j in range(s):
            total += bilinear_plain(feature, y1 + (i + 0.5) * (y2 - y1) / s, x1 + (j + 0.5) * (x2 - x1) / s)
    return total / (s * s)


def roi_bin_corners(feature, box, sampling_ratio):
    """Samples at i / (s - 1) across the box (its corners) instead of the centres of s x s sub-cells."""
    x1, y1, x2, y2 = box
    s = sampling_ratio
    steps = [k / (s - 1) if s > 1 else 0.5 for k in range(s)]
    values = [bilinear_plain(feature, y1 + a * (y2 - y1), x1 + b * (x2 - x1)) for a in steps for b in steps]
    return sum(values) / len(values)


def roi_bin_sum(feature, box, sampling_ratio):
    return roi_bin_plain(feature, box, sampling_ratio) * sampling_ratio ** 2


def test_right_answers_pass(capsys):
    check.bilinear_interpolation(bilinear_plain)
    check.bilinear_interpolation(lambda f, y, x: float(bilinear_interpolate(f, y, x)))
    check.roi_align_bin(roi_bin_plain)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, named", [
    (bilinear_swapped_weights, "swapping them"),
    (bilinear_no_clamp, "last row and column"),
    (bilinear_xy_swapped, "x and y swapped"),
])
def test_bilinear_slips_fail(wrong, named, capsys):
    with pytest.raises(ExerciseFailed):
        check.bilinear_interpolation(wrong)
    assert named in capsys.readouterr().out


@pytest.mark.parametrize("wrong", [roi_bin_corners, roi_bin_sum])
def test_roi_bin_slips_fail(wrong, capsys):
    with pytest.raises(ExerciseFailed):
        check.roi_align_bin(wrong)
    assert "FAILED" in capsys.readouterr().out


def test_not_implemented_is_reported_once(capsys):
    def todo(*args):
        raise NotImplementedError()
    with pytest.raises(ExerciseFailed, match="not implemented"):
        check.roi_align_bin(todo)
    assert capsys.readouterr().out.count("not implemented") == 1


def test_oracle_agrees_with_cvkit_on_its_own_cases():
    """The hand-computed answers are right: cvkit's bilinear_interpolate (tested against torchvision) agrees."""
    f = torch.tensor([[0.0, 10.0], [20.0, 40.0]], dtype=torch.float64)
    assert float(bilinear_interpolate(f, 0.25, 0.5)) == pytest.approx(11.25)
    assert float(bilinear_interpolate(f, 0.9, 0.2)) == pytest.approx(0.1 * 2.0 + 0.9 * 24.0)
