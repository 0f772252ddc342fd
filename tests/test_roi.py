"""cvkit.roi against its oracles: torchvision.ops.roi_align / roi_pool (forward and backward, float64 to 1e-7,
float32 to 1e-5), hand-computed cases (arithmetic in the comments), invariants (bilinear interpolation is exact
on a linear ramp; SPP's levels are RoI pools of the whole map), the plain-loop references, gradcheck.

torchvision's CPU kernel is the oracle on every device (cvkit on CUDA is compared with torchvision on CPU).
Two of torchvision's inputs are left out on purpose: with ``aligned=True`` and an adaptive grid, a box with
x2 < x1 makes torchvision's kernel allocate a negative-sized buffer (it raises), so those boxes are tested
against cvkit's own rule (they average nothing and give 0).
"""
from __future__ import annotations

import pytest
import torch
import torchvision.ops as tv
from torch.autograd import gradcheck

from cvkit.roi import (RoIAlign, RoIPool, SpatialPyramidPool, bilinear_interpolate, convert_boxes_to_roi_format,
                       roi_align, roi_align_reference, roi_pool, roi_pool_reference, spatial_pyramid_pool)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
TOL = {torch.float64: 1e-7, torch.float32: 1e-5}


def random_rois(k: int, n: int, height: int, width: int, seed: int, dtype=torch.float64, scale: float = 1.0,
                ordered: bool = False) -> torch.Tensor:
    """RoIs in image coordinates (feature map * 1/scale): inside, over the border, wholly outside, degenerate."""
    g = torch.Generator().manual_seed(seed)
    size = torch.tensor([width, height], dtype=torch.float64) / scale
    corner = torch.rand(k, 2, generator=g, dtype=torch.float64) * size * 1.4 - 0.2 * size
    extent = torch.rand(k, 2, generator=g, dtype=torch.float64) * size * 0.7
    if not ordered:
        extent -= 0.1 * size                                          # some boxes with x2 < x1
    extent[: k // 8] = 0                                              # zero-area boxes
    batch = torch.randint(0, n, (k, 1), generator=g).double()
    rois = torch.cat((batch, corner, corner + extent), dim=1)
    rois[k // 8: k // 4, 1:] = torch.round(rois[k // 8: k // 4, 1:] * scale * 2) / (scale * 2)   # on half cells
    return rois.to(dtype)


def compare(ours, theirs, x, rois, dtype, device):
    """Forward and backward of ``ours`` on ``device`` against ``theirs`` (torchvision) on CPU."""
    x_cpu = x.detach().clone().requires_grad_()
    x_dev = x.detach().to(device).requires_grad_()
    expected = theirs(x_cpu, rois)
    got = ours(x_dev, rois.to(device))
    assert got.dtype == dtype and got.shape == expected.shape and got.device.type == torch.device(device).type
    torch.testing.assert_close(got.cpu(), expected, rtol=TOL[dtype], atol=TOL[dtype])
    grad = torch.randn(expected.shape, dtype=dtype)
    expected.backward(grad)
    got.backward(grad.to(device))
    torch.testing.assert_close(x_dev.grad.cpu(), x_cpu.grad, rtol=TOL[dtype], atol=TOL[dtype])


# --------------------------------------------------------------------------------------------------
# boxes layout


def test_convert_boxes_to_roi_format_matches_torchvision():
    from torchvision.ops._utils import convert_boxes_to_roi_format as tv_convert
    boxes = [torch.rand(3, 4), torch.rand(0, 4), torch.rand(2, 4)]
    got = convert_boxes_to_roi_format(boxes)
    assert torch.equal(got, tv_convert(boxes))
    assert got[:, 0].tolist() == [0, 0, 0, 2, 2]                    # image 1 has no boxes
    rois = torch.rand(4, 5)
    assert convert_boxes_to_roi_format(rois) is rois


@pytest.mark.parametrize("fn", [roi_align, roi_pool])
def test_list_of_boxes_equals_tensor_of_rois(fn):
    x = torch.randn(2, 3, 10, 12)
    boxes = [torch.tensor([[1.0, 1.0, 6.0, 5.0]]), torch.tensor([[0.0, 2.0, 9.5, 9.0], [3.0, 3.0, 4.0, 4.0]])]
    rois = torch.tensor([[0, 1.0, 1.0, 6.0, 5.0], [1, 0.0, 2.0, 9.5, 9.0], [1, 3.0, 3.0, 4.0, 4.0]])
    assert torch.equal(fn(x, boxes, 3), fn(x, rois, 3))


# --------------------------------------------------------------------------------------------------
# RoIAlign against torchvision


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 0, 1, 2, 3])
@pytest.mark.parametrize("spatial_scale", [1.0, 0.5, 1 / 16])
def test_roi_align_matches_torchvision(device, dtype, aligned, sampling_ratio, spatial_scale):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 3, 11, 14, generator=g, dtype=torch.float64).to(dtype)
    ordered = aligned and sampling_ratio <= 0                        # see the module docstring
    rois = random_rois(40, 2, 11, 14, seed=sampling_ratio + 10, dtype=dtype, scale=spatial_scale, ordered=ordered)
    for output_size in (1, (2, 5), 7):
        compare(lambda a, r: roi_align(a, r, output_size, spatial_scale, sampling_ratio, aligned),
                lambda a, r: tv.roi_align(a, r, output_size, spatial_scale, sampling_ratio, aligned),
                x, rois, dtype, device)


@pytest.mark.parametrize("aligned", [False, True])
def test_roi_align_samples_on_the_border(aligned):
    """Samples exactly at y = -1, 0, H - 1 and H (and x likewise) fall on torchvision's side of each rule."""
    x = torch.randn(1, 2, 6, 8, dtype=torch.float64)
    off = 0.5 if aligned else 0.0
    # output 1x1, sampling_ratio 1: the single sample sits at the box centre (minus the aligned offset)
    centres = [(-1.0, -1.0), (-1.0 - 1e-9, 3.0), (0.0, 0.0), (5.0, 7.0), (6.0, 8.0), (6.0 + 1e-9, 2.0),
               (5.5, 7.5), (-0.5, 8.0), (2.25, 8.0 + 1e-9)]
    rois = torch.tensor([[0, cx + off - 0.5, cy + off - 0.5, cx + off + 0.5, cy + off + 0.5] for cy, cx in centres],
                        dtype=torch.float64)
    compare(lambda a, r: roi_align(a, r, 1, 1.0, 1, aligned), lambda a, r: tv.roi_align(a, r, 1, 1.0, 1, aligned),
            x, rois, torch.float64, "cpu")


def test_roi_align_reversed_box_aligned_adaptive_gives_zero():
    """torchvision raises on it; cvkit's grid has no points (ceil of a negative bin size), so the bin is 0."""
    x = torch.randn(1, 2, 6, 8, requires_grad=True)
    out = roi_align(x, torch.tensor([[0, 5.0, 4.0, 2.0, 1.0]]), 2, 1.0, -1, True)
    assert torch.equal(out, torch.zeros(1, 2, 2, 2))
    out.sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))
    assert torch.equal(roi_align_reference(x, torch.tensor([[0, 5.0, 4.0, 2.0, 1.0]]), 2, 1.0, -1, True), out)


def test_roi_align_large_and_mixed_adaptive_grids():
    """Adaptive grids from 1 to 20 samples per bin in one call (cvkit groups RoIs by grid size)."""
    x = torch.randn(2, 4, 40, 40, dtype=torch.float64)
    rois = torch.tensor([[0, 0, 0, 39, 39], [1, 2, 3, 5, 4], [0, 5, 5, 100, 100], [1, 1, 1, 1.5, 30]],
                        dtype=torch.float64)
    for aligned in (False, True):
        compare(lambda a, r: roi_align(a, r, (2, 3), 1.0, -1, aligned),
                lambda a, r: tv.roi_align(a, r, (2, 3), 1.0, -1, aligned), x, rois, torch.float64, "cpu")


# --------------------------------------------------------------------------------------------------
# RoIPool against torchvision


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("spatial_scale", [1.0, 0.5, 0.3, 1 / 16])
def test_roi_pool_matches_torchvision(device, dtype, spatial_scale):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 13, 17, generator=g, dtype=torch.float64).to(dtype)
    rois = random_rois(60, 2, 13, 17, seed=int(spatial_scale * 100), dtype=dtype, scale=spatial_scale)
    for output_size in (1, (3, 2), 7, (9, 20)):
        compare(lambda a, r: roi_pool(a, r, output_size, spatial_scale),
                lambda a, r: tv.roi_pool(a, r, output_size, spatial_scale), x, rois, dtype, device)


@pytest.mark.parametrize("device", DEVICES)
def test_roi_pool_ties_go_to_the_first_maximum(device):
    """Integer-valued maps have many equal maxima per bin: output and gradient must pick torchvision's cell."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 3, (2, 4, 12, 12), generator=g).double()
    x[1] = 1.0                                                        # image 1: one constant value everywhere
    rois = random_rois(50, 2, 12, 12, seed=4, scale=1.0)
    for output_size in (2, 5):
        compare(lambda a, r: roi_pool(a, r, output_size), lambda a, r: tv.roi_pool(a, r, output_size),
                x, rois, torch.float64, device)


def test_roi_pool_rounds_half_away_from_zero():
    """Corners at x.5 round away from zero (C's round), not to even (torch.round)."""
    x = torch.arange(1 * 1 * 6 * 10, dtype=torch.float64).reshape(1, 1, 6, 10)
    rois = torch.tensor([[0, 2.5, 0.5, 4.5, 3.5], [0, -0.5, -1.5, 1.5, 2.5], [0, 3.5, 1.5, 3.5, 1.5]], dtype=torch.float64)
    # box 0: x 2.5 -> 3, 4.5 -> 5; y 0.5 -> 1, 3.5 -> 4. One bin: max over rows 1..4, cols 3..5 = 4 * 10 + 5
    assert roi_pool(x, rois[:1], 1)[0, 0, 0, 0].item() == 45.0
    compare(lambda a, r: roi_pool(a, r, (2, 2)), lambda a, r: tv.roi_pool(a, r, (2, 2)), x, rois, torch.float64, "cpu")


def test_roi_pool_nan_and_infinite_values_as_torchvision():
    """torchvision's scan skips NaN and starts from -FLT_MAX: a bin of -inf gives -FLT_MAX and no gradient."""
    x = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    x[0, 0, :4, :4] = float("nan")
    x[0, 1, :4, :4] = -float("inf")
    x[0, 2, 2, 2] = float("inf")
    x[0, 2, 5, 5] = -1e300                                            # below -FLT_MAX in float64
    rois = torch.tensor([[0, 0, 0, 3, 3], [0, 0, 0, 7, 7], [0, 5, 5, 5, 5], [0, 1, 1, 6, 6]], dtype=torch.float64)
    for output_size in (1, 2, 4):
        expected = tv.roi_pool(x, rois, output_size)
        torch.testing.assert_close(roi_pool(x, rois, output_size), expected, equal_nan=True)
        torch.testing.assert_close(roi_pool_reference(x, rois, output_size), expected, equal_nan=True)
    x.requires_grad_()
    roi_pool(x, rois[:1], 1).sum().backward()
    assert x.grad[0, :2].abs().sum() == 0                             # all-NaN and all--inf bins pass nothing


def test_roi_pool_lecture_quantisation_example():
    """A 640 x 480 image at stride 32: corner (440, 264) maps to (13.75, 8.25) and is rounded to (14, 8)."""
    x = torch.arange(15 * 20, dtype=torch.float32).reshape(1, 1, 15, 20)      # value = 20 * row + column
    out = roi_pool(x, torch.tensor([[0, 440.0, 264.0, 440.0, 264.0]]), 1, spatial_scale=1 / 32)
    assert out.item() == 20 * 8 + 14


# --------------------------------------------------------------------------------------------------
# both operators: empty input, references, gradcheck, modules, boxes' gradient


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fn", [roi_align, roi_pool, roi_align_reference, roi_pool_reference])
def test_empty_roi_set(fn, device):
    x = torch.randn(2, 3, 5, 5, device=device, requires_grad=True)
    out = fn(x, torch.zeros(0, 5, device=device), (2, 3))
    assert out.shape == (0, 3, 2, 3) and out.dtype == x.dtype and out.device == x.device
    out.sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))
    assert fn(x, [torch.zeros(0, 4, device=device), torch.zeros(0, 4, device=device)], 2).shape == (0, 3, 2, 2)


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_roi_align_reference_equals_fast(aligned, sampling_ratio):
    x = torch.randn(2, 2, 7, 9, dtype=torch.float64, requires_grad=True)
    rois = random_rois(10, 2, 7, 9, seed=1, scale=0.5, ordered=True)
    fast = roi_align(x, rois, (2, 3), 0.5, sampling_ratio, aligned)
    ref = roi_align_reference(x, rois, (2, 3), 0.5, sampling_ratio, aligned)
    torch.testing.assert_close(ref, fast, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(fast)
    g_fast, = torch.autograd.grad(fast, x, grad)
    g_ref, = torch.autograd.grad(ref, x, grad)
    torch.testing.assert_close(g_ref, g_fast, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_reference_loops_match_torchvision(dtype):
    x = torch.randn(2, 2, 7, 9, dtype=dtype)
    rois = random_rois(12, 2, 7, 9, seed=2, dtype=dtype, scale=0.5, ordered=True)
    compare(lambda a, r: roi_align_reference(a, r, (3, 2), 0.5, -1, True),
            lambda a, r: tv.roi_align(a, r, (3, 2), 0.5, -1, True), x, rois, dtype, "cpu")
    compare(lambda a, r: roi_align_reference(a, r, 2, 0.5, 2, False),
            lambda a, r: tv.roi_align(a, r, 2, 0.5, 2, False), x, rois, dtype, "cpu")
    compare(lambda a, r: roi_pool_reference(a, r, (3, 2), 0.5), lambda a, r: tv.roi_pool(a, r, (3, 2), 0.5),
            x, rois, dtype, "cpu")


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck(device):
    x = torch.randn(2, 2, 5, 6, dtype=torch.float64, device=device, requires_grad=True)
    rois = random_rois(6, 2, 5, 6, seed=5, scale=1.0, ordered=True).to(device)
    for aligned in (False, True):
        assert gradcheck(lambda a: roi_align(a, rois, (2, 3), 1.0, -1, aligned), (x,), fast_mode=True)
        assert gradcheck(lambda a: roi_align(a, rois, 2, 1.0, 2, aligned), (x,), fast_mode=True)
    assert gradcheck(lambda a: roi_pool(a, rois, (2, 3), 1.0), (x,))          # random values: no ties
    assert gradcheck(lambda a: spatial_pyramid_pool(a, (3, 2, 1)), (x,), fast_mode=True)


@pytest.mark.parametrize("fn", [roi_align, roi_pool])
def test_no_gradient_to_the_boxes(fn):
    """As torchvision: the boxes are constants of the operation."""
    x = torch.randn(1, 2, 8, 8, requires_grad=True)
    rois = torch.tensor([[0, 1.3, 2.2, 6.1, 5.7]], requires_grad=True)
    fn(x, rois, 2).sum().backward()
    assert rois.grad is None and x.grad is not None


def test_modules_match_functions_and_torchvision_repr():
    x = torch.randn(2, 3, 9, 9)
    rois = torch.tensor([[0, 1.0, 1.0, 7.0, 8.0], [1, 0.0, 0.0, 3.0, 3.0]])
    align = RoIAlign((3, 2), 0.5, 2, aligned=True)
    pool = RoIPool(4, 0.5)
    assert torch.equal(align(x, rois), roi_align(x, rois, (3, 2), 0.5, 2, True))
    assert torch.equal(pool(x, rois), roi_pool(x, rois, 4, 0.5))
    assert repr(align) == repr(tv.RoIAlign((3, 2), 0.5, 2, aligned=True))
    assert repr(pool) == repr(tv.RoIPool(4, 0.5))


def test_non_contiguous_input():
    x = torch.randn(2, 9, 8, 3, dtype=torch.float64).permute(0, 3, 1, 2)          # [2, 3, 9, 8], not contiguous
    rois = random_rois(10, 2, 9, 8, seed=9, ordered=True)
    torch.testing.assert_close(roi_align(x, rois, 3), tv.roi_align(x.contiguous(), rois, 3))
    torch.testing.assert_close(roi_pool(x, rois, 3), tv.roi_pool(x.contiguous(), rois, 3))


def test_roi_align_half_precision_close_to_float32():
    x = torch.randn(1, 4, 10, 10)
    rois = random_rois(8, 1, 10, 10, seed=11, dtype=torch.float32, ordered=True)
    half = roi_align(x.half(), rois.half(), 3, 1.0, 2)
    assert half.dtype == torch.float16
    torch.testing.assert_close(half.float(), roi_align(x.half().float(), rois.half().float(), 3, 1.0, 2),
                               rtol=1e-3, atol=1e-3)


# --------------------------------------------------------------------------------------------------
# hand-computed RoIAlign and bilinear interpolation


def test_roi_align_on_a_linear_ramp_is_the_bin_centre():
    """Bilinear interpolation is exact on F[y, x] = 3y + x, and the mean of a bin's regular grid is its centre."""
    h, w = 12, 16
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    x = (3 * ys + xs)[None, None]
    # box (2, 1) - (10, 9) in map cells, 2x4 bins of 2 x 4 cells: bin (i, j) centre y = 1 + 2i + 1, x = 2 + 4j + 1
    out = roi_align(x, torch.tensor([[0, 2.0, 1.0, 10.0, 9.0]], dtype=torch.float64), (4, 2), 1.0, 2, aligned=False)
    expected = torch.tensor([[3 * (2 + 2 * i) + (4 + 4 * j) for j in range(2)] for i in range(4)], dtype=torch.float64)
    torch.testing.assert_close(out[0, 0], expected)


def test_bilinear_interpolate_hand_computed():
    f = torch.tensor([[0.0, 10.0], [20.0, 40.0]])
    # (0.25, 0.5): 0.75 * (0.5 * 0 + 0.5 * 10) + 0.25 * (0.5 * 20 + 0.5 * 40) = 3.75 + 7.5
    assert bilinear_interpolate(f, 0.25, 0.5).item() == pytest.approx(11.25)
    assert bilinear_interpolate(f, 1.0, 1.0).item() == 40.0           # on a cell
    assert bilinear_interpolate(f, 1.7, 0.0).item() == 20.0           # between H - 1 and H: the last row
    assert bilinear_interpolate(f, -0.6, 0.0).item() == 0.0           # between -1 and 0: as at 0
    assert bilinear_interpolate(f, -1.01, 0.0).item() == 0.0          # outside: 0
    assert bilinear_interpolate(f, 0.0, 2.01).item() == 0.0
    assert bilinear_interpolate(f, 0.0, 2.0).item() == 10.0           # exactly W: still the last column


def test_bilinear_interpolate_matches_grid_sample_inside():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(3, 7, 9, generator=g, dtype=torch.float64)
    y = torch.rand(5, 4, generator=g, dtype=torch.float64) * 6
    x = torch.rand(5, 4, generator=g, dtype=torch.float64) * 8
    grid = torch.stack((x / 8 * 2 - 1, y / 6 * 2 - 1), dim=-1)[None]          # align_corners=True: cell centres
    expected = torch.nn.functional.grid_sample(f[None], grid, align_corners=True)[0]
    torch.testing.assert_close(bilinear_interpolate(f, y, x), expected)


# --------------------------------------------------------------------------------------------------
# spatial pyramid pooling


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (13, 13), (20, 31)])
def test_spp_levels_are_roi_pools_of_the_whole_map(size):
    h, w = size
    x = torch.randn(2, 3, h, w, dtype=torch.float64)
    out = spatial_pyramid_pool(x, (4, 2, 1))
    assert out.shape == (2, 3 * (16 + 4 + 1))
    rois = torch.tensor([[0, 0, 0, w - 1, h - 1], [1, 0, 0, w - 1, h - 1]], dtype=torch.float64)
    expected = torch.cat([tv.roi_pool(x, rois, n).flatten(1) for n in (4, 2, 1)], dim=1)
    torch.testing.assert_close(out, expected)


def test_spp_hand_computed_and_fixed_length():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    # level 2 on 4x4: quadrant maxima 5, 7, 13, 15; level 1: 15
    assert spatial_pyramid_pool(x, (2, 1)).tolist() == [[5.0, 7.0, 13.0, 15.0, 15.0]]
    spp = SpatialPyramidPool((4, 2, 1))
    lengths = {spp(torch.randn(1, 8, h, w)).shape[1] for h, w in ((7, 9), (16, 16), (40, 23))}
    assert lengths == {spp.output_features(8)} == {8 * 21}


# --------------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("fn", [roi_align, roi_pool])
def test_bad_input_names_the_argument(fn):
    x = torch.randn(2, 3, 8, 8)
    rois = torch.tensor([[0, 1.0, 1.0, 5.0, 5.0]])
    with pytest.raises(ValueError, match="input must be a Tensor"):
        fn(x[0], rois, 2)
    with pytest.raises(TypeError, match="input must be a floating"):
        fn(x.long(), rois.long(), 2)
    with pytest.raises(ValueError, match=r"Tensor\[K, 5\]"):
        fn(x, rois[:, 1:], 2)
    with pytest.raises(ValueError, match=r"boxes\[1\] must be a Tensor\[L, 4\]"):
        fn(x, [rois[:, 1:], rois], 2)
    with pytest.raises(TypeError, match="boxes must have the dtype of input"):
        fn(x, rois.double(), 2)
    with pytest.raises(ValueError, match=r"batch indices in \[0, 1\]"):
        fn(x, torch.tensor([[2, 1.0, 1.0, 5.0, 5.0]]), 2)
    with pytest.raises(ValueError, match="output_size"):
        fn(x, rois, 0)
    with pytest.raises(ValueError, match="output_size"):
        fn(x, rois, (2, 2, 2))
    with pytest.raises(ValueError, match="spatial_scale"):
        fn(x, rois, 2, -1.0)
    with pytest.raises(TypeError, match="boxes must be"):
        fn(x, "boxes", 2)


def test_bad_sampling_arguments():
    x, rois = torch.randn(1, 1, 4, 4), torch.tensor([[0, 0.0, 0.0, 2.0, 2.0]])
    with pytest.raises(TypeError, match="sampling_ratio"):
        roi_align(x, rois, 2, 1.0, 2.5)
    with pytest.raises(TypeError, match="aligned"):
        roi_align(x, rois, 2, 1.0, 2, "yes")
    with pytest.raises(ValueError, match="levels"):
        spatial_pyramid_pool(x, (2, 0))
    with pytest.raises(ValueError, match="input must be"):
        bilinear_interpolate(torch.zeros(4), 0.0, 0.0)



# --------------------------------------------------------------------------------------------------
# the notebook's experiment data (cvkit.datasets.roi_targets)


def test_keypoint_rois_put_the_keypoint_where_the_target_says():
    from cvkit.datasets.roi_targets import keypoint_rois, stride_features
    data = keypoint_rois(20, image_size=96, box_sizes=(30.0, 60.0), generator=torch.Generator().manual_seed(0))
    x1, y1, x2, y2 = data.boxes.unbind(1)
    assert ((x2 - x1 >= 30) & (x2 - x1 <= 60) & (x1 >= 0) & (x2 <= 96) & (y1 >= 0) & (y2 <= 96)).all()
    expected = data.boxes[:, :2] + data.targets * (data.boxes[:, 2:] - data.boxes[:, :2])
    torch.testing.assert_close(data.keypoints, expected)
    assert ((data.targets >= 0.1) & (data.targets <= 0.9)).all()
    # the brightest pixel of each image is the one whose centre is nearest the keypoint
    brightest = data.images[:, 0].flatten(1).argmax(1)
    assert torch.equal(brightest // 96, data.keypoints[:, 1].floor().long())
    assert torch.equal(brightest % 96, data.keypoints[:, 0].floor().long())
    for stride in (8, 16, 32):
        assert stride_features(data.images, stride).shape == (20, 1, 96 // stride, 96 // stride)


def test_keypoint_head_runs_both_poolings_and_trains_the_convolution():
    from cvkit.datasets.roi_targets import KeypointHead, keypoint_rois, stride_features
    data = keypoint_rois(4, generator=torch.Generator().manual_seed(1))
    features = stride_features(data.images, 16)
    for pooling in ("roi_pool", "roi_align"):
        head = KeypointHead(pooling, 16)
        out = head(features, data.boxes)
        assert out.shape == (4, 2)
        out.sum().backward()
        assert head.conv.weight.grad is not None and head.conv.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="pooling"):
        KeypointHead("max", 16)
