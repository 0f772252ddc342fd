"""The checks of notebook 09 (cvkit.grading.deform): right answers pass, classic slips fail on the input that
exposes them."""
from __future__ import annotations

import math

import pytest
import torch

from cvkit.grading import ExerciseFailed, check
from cvkit.grading import deform as checks


def bilinear_right(image, y, x):
    height, width = image.shape
    y0, x0 = math.floor(y), math.floor(x)
    total = image.new_zeros(())
    for qy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for qx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= qy < height and 0 <= qx < width:
                total = total + wy * wx * image[qy, qx]
    return total


def bilinear_clamped(image, y, x):
    """Clamps the point into the image (grid_sample's 'border' rule) instead of reading zeros outside."""
    height, width = image.shape
    return bilinear_right(image, min(max(y, 0.0), height - 1.0), min(max(x, 0.0), width - 1.0))


def bilinear_swapped(image, y, x):
    """Reads (x, y): the classic slip when offsets are stored (Δy, Δx)."""
    return bilinear_right(image, x, y)


def layout_right(shifts, out_h, out_w):
    return shifts.reshape(1, -1, 1, 1).expand(1, shifts.numel(), out_h, out_w).clone()


def layout_xy(shifts, out_h, out_w):
    """Stores (Δx, Δy) instead of (Δy, Δx)."""
    return layout_right(shifts.flip(-1), out_h, out_w)


def layout_planes(shifts, out_h, out_w):
    """All Δy first, then all Δx (mmcv's old layout, not torchvision's)."""
    planes = shifts.permute(3, 0, 1, 2).reshape(1, -1, 1, 1)
    return planes.expand(1, shifts.numel(), out_h, out_w).clone()


def test_right_answers_pass():
    check.deform_bilinear(bilinear_right)
    check.offset_layout(layout_right)


@pytest.mark.parametrize("wrong, failing", [(bilinear_clamped, "half a pixel above"), (bilinear_swapped, "a quarter down")])
def test_bilinear_slips_fail(wrong, failing, capsys):
    with pytest.raises(ExerciseFailed):
        checks.deform_bilinear(wrong)
    assert failing in capsys.readouterr().out


@pytest.mark.parametrize("wrong", [layout_xy, layout_planes])
def test_layout_slips_fail(wrong, capsys):
    with pytest.raises(ExerciseFailed):
        checks.offset_layout(wrong)
    assert "channels 4 and 5" in capsys.readouterr().out


def test_not_implemented_is_reported():
    def todo(*args):
        raise NotImplementedError()
    with pytest.raises(ExerciseFailed, match="not implemented"):
        checks.deform_bilinear(todo)
