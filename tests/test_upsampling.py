"""cvkit.upsampling against its oracles: torch.nn.functional (interpolate, max_unpool2d, unfold, fold, conv2d,
conv_transpose2d) forward and backward, torch.nn.ConvTranspose2d (same initialisation), the course notes'
worked examples and hand-computed transposed convolutions (arithmetic in the comments), and gradcheck.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cvkit.upsampling import (ConvTranspose2d, MaxUnpool2d, bed_of_nails_upsample, bilinear_upsample, col2im,
                              conv2d_as_matmul, conv_as_matrix, conv_transpose2d, conv_transpose2d_as_matmul,
                              conv_transpose2d_reference, im2col, max_unpool2d, nearest_upsample)
from cvkit.upsampling import _tap_runs

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: dict(rtol=1e-4, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-12)}
PROPERTY = settings(max_examples=40, deadline=None)


def randn(*shape, dtype=torch.float64, device="cpu", seed=0, grad=False):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype).to(device).requires_grad_(grad)


def assert_close(actual, expected, dtype=None):
    assert actual.shape == expected.shape, f"shape {list(actual.shape)}, expected {list(expected.shape)}"
    assert actual.dtype == expected.dtype
    torch.testing.assert_close(actual, expected, **TOL[dtype or expected.dtype])


# --------------------------------------------------------------------------------------------------
# nearest and bed of nails: the course notes' 2 x 2 example


def test_nearest_and_bed_of_nails_course_example():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    assert nearest_upsample(x, scale_factor=2).tolist() == [[[[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]]]
    assert bed_of_nails_upsample(x, 2).tolist() == [[[[1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]]]]
    assert bed_of_nails_upsample(x, (1, 3)).tolist() == [[[[1, 0, 0, 2, 0, 0], [3, 0, 0, 4, 0, 0]]]]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", [dict(scale_factor=2), dict(scale_factor=3), dict(scale_factor=(2, 3)),
                                    dict(scale_factor=2.5), dict(scale_factor=(1.7, 0.6)), dict(size=(7, 11)),
                                    dict(size=5), dict(size=(3, 2)), dict(scale_factor=1.3, recompute_scale_factor=True)])
def test_nearest_equals_interpolate(device, dtype, kwargs):
    x = randn(2, 3, 5, 6, dtype=dtype, device=device, grad=True)
    ours, theirs = nearest_upsample(x, **kwargs), F.interpolate(x, mode="nearest", **kwargs)
    assert torch.equal(ours, theirs)                                  # a pure copy: exactly equal
    grad = randn(*theirs.shape, dtype=dtype, device=device, seed=1)
    assert_close(torch.autograd.grad(ours, x, grad)[0], torch.autograd.grad(theirs, x, grad)[0])


def test_nearest_unbatched_and_empty():
    x = randn(3, 4, 5)
    assert torch.equal(nearest_upsample(x, scale_factor=2), F.interpolate(x[None], scale_factor=2)[0])
    empty = torch.zeros(0, 3, 4, 5)
    assert nearest_upsample(empty, scale_factor=2).shape == (0, 3, 8, 10)
    assert bed_of_nails_upsample(empty, 2).shape == (0, 3, 8, 10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bed_of_nails_is_a_stride_s_transposed_convolution_with_a_unit_kernel(dtype):
    """Bed of nails with factor s is conv_transpose2d with a 1 x 1 kernel of one, stride s, output_padding s - 1."""
    x = randn(2, 3, 4, 5, dtype=dtype, grad=True)
    eye = torch.eye(3, dtype=dtype)[:, :, None, None]
    expected = F.conv_transpose2d(x, eye, stride=3, output_padding=2)
    ours = bed_of_nails_upsample(x, 3)
    assert torch.equal(ours, expected)
    grad = randn(*ours.shape, dtype=dtype, seed=1)
    assert torch.equal(torch.autograd.grad(ours, x, grad)[0], grad[:, :, ::3, ::3])   # gradient of the nails only


# --------------------------------------------------------------------------------------------------
# max unpooling


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size, kernel, stride, padding", [
    ((6, 8), 2, None, 0), ((7, 9), 2, 2, 0), ((7, 7), 3, 2, 1), ((8, 8), (2, 3), (2, 1), (1, 0)), ((5, 5), 3, 1, 1)])
def test_max_unpool_equals_torch(device, dtype, size, kernel, stride, padding):
    x = randn(2, 3, *size, dtype=dtype, device=device)
    pooled, indices = F.max_pool2d(x, kernel, stride, padding, return_indices=True)
    pooled = pooled.detach().requires_grad_(True)
    # without output_size the default size (H' - 1) s - 2 p + k is used: the pooled input's size only if it fits
    step = kernel if stride is None else stride
    default = [(pooled.shape[2 + a] - 1) * _at(step, a) - 2 * _at(padding, a) + _at(kernel, a) for a in range(2)]
    for output_size in ([None] if default == list(size) else []) + [list(x.shape[-2:])]:
        ours = max_unpool2d(pooled, indices, kernel, stride, padding, output_size)
        theirs = F.max_unpool2d(pooled, indices, kernel, stride, padding, output_size)
        assert torch.equal(ours, theirs)
        grad = randn(*theirs.shape, dtype=dtype, device=device, seed=2)
        assert torch.equal(torch.autograd.grad(ours, pooled, grad)[0], torch.autograd.grad(theirs, pooled, grad)[0])


def _at(value, axis):
    return value if isinstance(value, int) else value[axis]


def test_max_unpool_hand_example_and_module():
    """2 x 2 pooling of [[1, 5], [7, 2]] keeps 7 at flat index 2; unpooling puts it back there."""
    x = torch.tensor([[[[1.0, 5.0], [7.0, 2.0]]]])
    pooled, indices = F.max_pool2d(x, 2, return_indices=True)
    assert indices.item() == 2
    assert max_unpool2d(pooled, indices, 2).tolist() == [[[[0, 0], [7, 0]]]]
    assert torch.equal(MaxUnpool2d(2)(pooled, indices), nn.MaxUnpool2d(2)(pooled, indices))
    assert torch.equal(max_unpool2d(pooled[0], indices[0], 2), F.max_unpool2d(pooled[0], indices[0], 2))


def test_max_unpool_odd_size_needs_output_size():
    x = randn(1, 2, 7, 7)
    pooled, indices = F.max_pool2d(x, 2, return_indices=True)                  # 3 x 3: the default is 6 x 6
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 36\)"):  # indices of the 7 x 7 plane
        max_unpool2d(pooled, indices, 2)
    with pytest.raises(RuntimeError, match="invalid max index"):
        F.max_unpool2d(pooled, indices, 2)
    assert torch.equal(max_unpool2d(pooled, indices, 2, output_size=x.shape), F.max_unpool2d(pooled, indices, 2,
                                                                                             output_size=x.shape))
    with pytest.raises(ValueError, match="within one stride"):
        max_unpool2d(pooled, indices, 2, output_size=(9, 9))


def test_max_unpool_bad_input():
    pooled, indices = F.max_pool2d(randn(1, 1, 4, 4), 2, return_indices=True)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 16\)"):
        max_unpool2d(pooled, indices + 16, 2)
    with pytest.raises(TypeError, match="indices must be int64"):
        max_unpool2d(pooled, indices.int(), 2)
    with pytest.raises(ValueError, match="indices must have the shape of input"):
        max_unpool2d(pooled, indices[..., :1], 2)
    with pytest.raises(TypeError, match="kernel_size must be an int or a pair"):
        max_unpool2d(pooled, indices, 2.0)


def test_max_unpool_empty_batch():
    pooled, indices = F.max_pool2d(torch.zeros(0, 3, 4, 4), 2, return_indices=True)
    out = max_unpool2d(pooled, indices, 2)
    assert out.shape == (0, 3, 4, 4) and out.dtype == torch.float32


# --------------------------------------------------------------------------------------------------
# bilinear


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("kwargs", [dict(scale_factor=2), dict(scale_factor=3), dict(scale_factor=2.5),
                                    dict(scale_factor=(1.7, 0.6)), dict(size=(7, 11)), dict(size=1), dict(size=(3, 2)),
                                    dict(scale_factor=1.3, recompute_scale_factor=True)])
def test_bilinear_equals_interpolate(device, dtype, align_corners, kwargs):
    x = randn(2, 3, 5, 6, dtype=dtype, device=device, grad=True)
    ours = bilinear_upsample(x, align_corners=align_corners, **kwargs)
    theirs = F.interpolate(x, mode="bilinear", align_corners=align_corners, **kwargs)
    assert_close(ours, theirs)
    grad = randn(*theirs.shape, dtype=dtype, device=device, seed=1)
    assert_close(torch.autograd.grad(ours, x, grad)[0], torch.autograd.grad(theirs, x, grad)[0])


def test_bilinear_hand_example():
    """[0, 3] to 4 columns: align_corners=True samples at 0, 1/3, 2/3, 1 of the way: 0, 1, 2, 3; False samples at
    source x = (o + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to pixel 1): 0, 0.75, 2.25, 3."""
    x = torch.tensor([[[[0.0, 3.0]]]], dtype=torch.float64)
    assert bilinear_upsample(x, size=(1, 4), align_corners=True).flatten().tolist() == pytest.approx([0, 1, 2, 3])
    assert bilinear_upsample(x, size=(1, 4)).flatten().tolist() == pytest.approx([0, 0.75, 2.25, 3])


def test_interpolation_bad_arguments():
    x = randn(1, 1, 4, 4)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        bilinear_upsample(x)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        nearest_upsample(x, size=4, scale_factor=2)
    with pytest.raises(ValueError, match="scale_factor must be a positive number"):
        nearest_upsample(x, scale_factor=-2)
    with pytest.raises(ValueError, match=r"input must have shape \[N, C, H, W\]"):
        bilinear_upsample(x[0, 0], scale_factor=2)
    with pytest.raises(TypeError, match="floating-point"):
        nearest_upsample(x.long(), scale_factor=2)
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        nearest_upsample(x.tolist(), scale_factor=2)


# --------------------------------------------------------------------------------------------------
# im2col, col2im, convolution as a matrix


@pytest.mark.parametrize("kernel, dilation, padding, stride", [
    (3, 1, 0, 1), (3, 1, 1, 2), ((2, 3), (1, 2), (1, 0), (2, 1)), (1, 1, 0, 3), (4, 2, 2, 3)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_im2col_and_col2im_equal_unfold_and_fold(kernel, dilation, padding, stride, dtype):
    x = randn(2, 3, 7, 9, dtype=dtype, grad=True)
    ours, theirs = im2col(x, kernel, dilation, padding, stride), F.unfold(x, kernel, dilation, padding, stride)
    assert torch.equal(ours, theirs)
    grad = randn(*theirs.shape, dtype=dtype, seed=3)
    assert_close(torch.autograd.grad(ours, x, grad)[0], torch.autograd.grad(theirs, x, grad)[0])
    cols = randn(*theirs.shape, dtype=dtype, seed=4, grad=True)
    ours, theirs = col2im(cols, (7, 9), kernel, dilation, padding, stride), F.fold(cols, (7, 9), kernel, dilation,
                                                                                  padding, stride)
    assert_close(ours, theirs)
    grad = randn(*theirs.shape, dtype=dtype, seed=5)
    assert_close(torch.autograd.grad(ours, cols, grad)[0], torch.autograd.grad(theirs, cols, grad)[0])


def test_col2im_sums_overlaps_by_hand():
    """Four 2 x 2 patches of ones, stride 1, onto 3 x 3: the centre is covered 4 times, edges twice, corners once."""
    out = col2im(torch.ones(1, 4, 4), (3, 3), 2)
    assert out.tolist() == [[[[1, 2, 1], [2, 4, 2], [1, 2, 1]]]]


def test_col2im_bad_columns():
    with pytest.raises(ValueError, match="must have L = 4 columns"):
        col2im(torch.ones(1, 4, 5), (3, 3), 2)
    with pytest.raises(ValueError, match="multiple of kh"):
        col2im(torch.ones(1, 5, 4), (3, 3), 2)


def test_conv_as_matrix_one_dimensional_course_example():
    """The 1-D example of the notes: kernel (x, y, z) = (1, 2, 3), stride 2, padding 1, input of 4. Output 2: its
    first row sees (pad, a0, a1) -> (0, 2, 3, 0), the second (a1, a2, a3) -> (0, 1, 2, 3)."""
    weight = torch.tensor([1.0, 2.0, 3.0]).reshape(1, 1, 1, 3)
    matrix = conv_as_matrix(weight, (1, 4), stride=(1, 2), padding=(0, 1))
    assert matrix.tolist() == [[2, 3, 0, 0], [0, 1, 2, 3]]
    # its transpose scatters each of 2 inputs as a copy of the kernel: 1 -> (2, 3, 0, 0), 10 -> (0, 10, 20, 30)
    up = conv_transpose2d(torch.tensor([1.0, 10.0]).reshape(1, 1, 1, 2), weight, stride=(1, 2), padding=(0, 1),
                          output_padding=(0, 1))
    assert up.flatten().tolist() == [2, 13, 20, 30]
    assert up.flatten().tolist() == (matrix.T @ torch.tensor([1.0, 10.0])).tolist()


@pytest.mark.parametrize("stride, padding, dilation, groups", [(1, 0, 1, 1), (2, 1, 1, 1), (2, 1, 2, 2), ((1, 3), (2, 0), 1, 1)])
def test_conv_as_matrix_equals_conv2d(stride, padding, dilation, groups):
    x = randn(2, 4, 6, 7, grad=True)
    weight = randn(6, 4 // groups, 3, 2, seed=1, grad=True)
    bias = randn(6, seed=2)
    ours = conv2d_as_matmul(x, weight, bias, stride, padding, dilation, groups)
    theirs = F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    assert_close(ours, theirs)
    grad = randn(*theirs.shape, seed=3)
    for a, b in zip(torch.autograd.grad(ours, (x, weight), grad), torch.autograd.grad(theirs, (x, weight), grad)):
        assert_close(a, b)
    # the matrix is sparse: each row holds at most C_in/groups * kh * kw weights
    matrix = conv_as_matrix(weight, (6, 7), stride, padding, dilation, groups)
    assert int((matrix != 0).sum(1).max()) <= 4 // groups * 6


# --------------------------------------------------------------------------------------------------
# transposed convolution


def test_conv_transpose_by_hand():
    """2 x 2 input [[1, 2], [3, 4]], 3 x 3 kernel of ones, stride 2, padding 1 (the notes' 2 x 2 -> 4 x 4 example
    with output_padding 1). Uncropped 5 x 5: each input stamps a 3 x 3 block of its value at (2i, 2j); row 2 and
    column 2 are shared by neighbouring stamps, so they add: e.g. (2, 2) = 1 + 2 + 3 + 4 = 10. Cropping one
    row and column at the top-left (padding 1) and keeping 4 of the rest gives the 4 x 4 output."""
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    full = torch.tensor([[1, 1, 3, 2, 2],
                         [1, 1, 3, 2, 2],
                         [4, 4, 10, 6, 6],
                         [3, 3, 7, 4, 4],
                         [3, 3, 7, 4, 4]], dtype=torch.float32)
    for fn in (conv_transpose2d, conv_transpose2d_reference, conv_transpose2d_as_matmul):
        assert fn(x, torch.ones(1, 1, 3, 3), stride=2).tolist() == [[full.tolist()]]
        assert fn(x, torch.ones(1, 1, 3, 3), stride=2, padding=1, output_padding=1).tolist() == \
            [[full[1:5, 1:5].tolist()]]


CASES = [
    # (C_in, C_out, groups, kernel, stride, padding, output_padding, dilation, (H, W))
    (3, 4, 1, 3, 1, 0, 0, 1, (5, 6)),
    (4, 6, 2, 3, 2, 1, 1, 1, (5, 7)),
    (2, 2, 1, 4, 2, 1, 0, 1, (4, 4)),           # FCN-style 2x upsampling
    (3, 2, 1, 1, 3, 0, 2, 1, (4, 4)),           # 1 x 1 kernel, stride > kernel: bed of nails with weights
    (2, 3, 1, 2, 5, 0, 4, 1, (3, 2)),           # stride > kernel: gaps of zeros
    (2, 4, 2, (2, 3), (3, 1), (0, 1), (2, 0), (1, 2), (3, 5)),
    (2, 3, 1, 3, 1, 2, 1, 2, (6, 6)),           # output_padding >= stride, allowed because < dilation
    (6, 9, 3, 3, 2, 0, 3, 4, (3, 2)),           # output_padding 3 >= stride 2, < dilation 4
    (4, 4, 4, 3, 2, 1, 1, 1, (4, 5)),           # depthwise
    (3, 5, 1, 5, 2, 4, 1, 1, (4, 4)),           # padding larger than half the kernel: crops into the stamps
    (1, 1, 1, 3, 1, 0, 0, 1, (1, 1)),           # one pixel: the output is the kernel
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_conv_transpose_equals_torch_forward_and_backward(device, dtype, case):
    c_in, c_out, groups, kernel, stride, padding, output_padding, dilation, (h, w) = case
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = randn(2, c_in, h, w, dtype=dtype, device=device, grad=True)
    weight = randn(c_in, c_out // groups, kh, kw, dtype=dtype, device=device, seed=1, grad=True)
    bias = randn(c_out, dtype=dtype, device=device, seed=2, grad=True)
    args = (stride, padding, output_padding, groups, dilation)
    theirs = F.conv_transpose2d(x, weight, bias, *args)
    grad = randn(*theirs.shape, dtype=dtype, device=device, seed=3)
    expected = torch.autograd.grad(theirs, (x, weight, bias), grad)
    for fn in (conv_transpose2d, conv_transpose2d_reference, conv_transpose2d_as_matmul):
        ours = fn(x, weight, bias, *args)
        assert_close(ours, theirs)
        for got, want in zip(torch.autograd.grad(ours, (x, weight, bias), grad), expected):
            assert_close(got, want)


@PROPERTY
@given(c_in_group=st.integers(1, 3), c_out_group=st.integers(1, 3), groups=st.integers(1, 2),
       kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 4), sw=st.integers(1, 4),
       ph=st.integers(0, 3), pw=st.integers(0, 3), dh=st.integers(1, 3), dw=st.integers(1, 3),
       h=st.integers(1, 5), w=st.integers(1, 5), batch=st.integers(0, 2), data=st.data())
def test_conv_transpose_random_geometry(c_in_group, c_out_group, groups, kh, kw, sh, sw, ph, pw, dh, dw, h, w,
                                        batch, data):
    oh = data.draw(st.integers(0, max(sh, dh) - 1))
    ow = data.draw(st.integers(0, max(sw, dw) - 1))
    out_h = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oh + 1
    out_w = (w - 1) * sw - 2 * pw + dw * (kw - 1) + ow + 1
    x = randn(batch, c_in_group * groups, h, w, grad=True)
    weight = randn(c_in_group * groups, c_out_group, kh, kw, seed=1, grad=True)
    args = ((sh, sw), (ph, pw), (oh, ow), groups, (dh, dw))
    if min(out_h, out_w) < 1:
        with pytest.raises(ValueError, match="output size"):
            conv_transpose2d(x, weight, None, *args)
        return
    theirs = F.conv_transpose2d(x, weight, None, *args)
    ours = conv_transpose2d(x, weight, None, *args)
    assert_close(ours, theirs)
    grad = randn(*theirs.shape, seed=3)
    for got, want in zip(torch.autograd.grad(ours, (x, weight), grad), torch.autograd.grad(theirs, (x, weight), grad)):
        assert_close(got, want)
    assert_close(conv_transpose2d_as_matmul(x, weight, None, *args), theirs)


def test_conv_transpose_is_the_adjoint_of_conv2d():
    """<conv2d(y), x> = <y, conv_transpose2d(x)> for the same weights and geometry: the transpose, as a matrix."""
    weight = randn(3, 2, 3, 3, seed=1)
    y = randn(1, 2, 9, 8, seed=2)                            # conv2d: 9 x 8 -> 4 x 4 (stride 2, padding 1, dilation 1)
    x = randn(1, 3, 5, 4, seed=3)
    conv_y = F.conv2d(y, weight, stride=2, padding=1)
    assert conv_y.shape == x.shape
    up_x = conv_transpose2d(x, weight, stride=2, padding=1, output_padding=(0, 1))
    assert up_x.shape == y.shape
    assert float((conv_y * x).sum()) == pytest.approx(float((y * up_x).sum()), rel=1e-12)


def test_conv_transpose_unbatched_and_empty():
    x, weight, bias = randn(2, 3, 4), randn(2, 5, 3, 3, seed=1), randn(5, seed=2)
    assert_close(conv_transpose2d(x, weight, bias, 2), F.conv_transpose2d(x, weight, bias, 2))
    empty = conv_transpose2d(torch.zeros(0, 2, 3, 4, dtype=torch.float64), weight, bias, 2, 1, 1)
    assert empty.shape == (0, 5, 6, 8) and empty.dtype == torch.float64


@pytest.mark.parametrize("case", [CASES[1], CASES[5], CASES[7]])
def test_conv_transpose_gradcheck(case):
    c_in, c_out, groups, kernel, stride, padding, output_padding, dilation, (h, w) = case
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = randn(1, c_in, min(h, 3), min(w, 3), grad=True)
    weight = randn(c_in, c_out // groups, kh, kw, seed=1, grad=True)
    bias = randn(c_out, seed=2, grad=True)
    fn = lambda x, weight, bias: conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, weight, bias), fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, (x, weight, bias), fast_mode=True)


def test_tap_runs_by_hand():
    """k = 3, s = 2, d = 1: d u = 2 q + r gives u = 0 -> (q 0, r 0), 1 -> (0, 1), 2 -> (1, 0). Shift (0, 0) holds
    taps u, v in {0, 1}: phases r_u 2 + r_v = 0, 1, 2, 3, one run. Shift (0, 1) holds v = 2 (r_v = 0) with
    u = 0, 1: phases 0 and 2, not consecutive, so two runs. Shift (1, 0): u = 2, v = 0, 1, phases 0, 1. Shift
    (1, 1): tap (2, 2) alone. Shifts are flattened in a plane 10 wide: q_u 10 + q_v."""
    runs, order = _tap_runs((3, 3), (1, 1), (2, 2), plane_width=10)
    assert runs == [(0, 0, 0, 4), (1, 0, 4, 1), (1, 2, 5, 1), (10, 0, 6, 2), (11, 0, 8, 1)]
    assert order == [0, 1, 3, 4, 2, 5, 6, 7, 8]
    # FCN's k = 2s: (k / s)^2 = 4 shifts, each one run over all s^2 = 16 phases
    runs, order = _tap_runs((8, 8), (1, 1), (4, 4), plane_width=7)
    assert [(shift, p0, taps) for shift, p0, _, taps in runs] == [(0, 0, 16), (1, 0, 16), (7, 0, 16), (8, 0, 16)]
    assert sorted(order) == list(range(64))
    # stride 1, dilation 2: every tap its own shift 2 u, one phase
    runs, order = _tap_runs((2, 3), (2, 2), (1, 1), plane_width=9)
    assert [(shift, p0, taps) for shift, p0, _, taps in runs] == [(0, 0, 1), (2, 0, 1), (4, 0, 1), (18, 0, 1),
                                                                  (20, 0, 1), (22, 0, 1)]


# one case per product in _stamp_run (one group: a matrix product; depthwise: an outer product; groups: batched),
# the geometries that split runs (kernel not a multiple of stride, dilation, output_padding), and runs that fill
# the same phase rows and are stacked into one product (k = 2s; dilation 2 with groups; k = 2s with groups)
SECOND_ORDER_CASES = [
    (3, 4, 1, 4, 2, 1, 0, 1, (3, 4)),
    (2, 3, 1, 3, 2, 1, 1, 1, (3, 3)),
    (2, 2, 1, 3, 1, 1, 0, 2, (4, 3)),
    (4, 4, 4, 4, 2, 1, 0, 1, (3, 3)),           # depthwise
    (4, 8, 4, (3, 2), (2, 3), 0, (1, 2), 1, (2, 3)),   # depthwise with a channel multiplier
    (4, 6, 2, 3, 2, 0, 1, 2, (3, 3)),           # groups of 2 input channels, dilated
    (2, 2, 1, 8, 4, 2, 0, 1, (2, 2)),           # k = 2s, as FCN-32s (k 64, s 32)
    (4, 6, 2, 4, 2, 1, 0, 1, (3, 3)),           # k = 2s in groups of 2: four runs stacked, one batched product
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", SECOND_ORDER_CASES)
def test_conv_transpose_double_backward_equals_torch(dtype, case):
    """Gradient of <grad of <out, g>, (v_x, v_w)> with respect to x, weight and g, against torch's."""
    c_in, c_out, groups, kernel, stride, padding, output_padding, dilation, (h, w) = case
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = randn(2, c_in, h, w, dtype=dtype, grad=True)
    weight = randn(c_in, c_out // groups, kh, kw, dtype=dtype, seed=1, grad=True)
    args = (stride, padding, output_padding, groups, dilation)
    results = []
    for fn in (conv_transpose2d, F.conv_transpose2d):
        out = fn(x, weight, None, *args)
        g = randn(*out.shape, dtype=dtype, seed=2, grad=True)
        grad_x, grad_w = torch.autograd.grad(out, (x, weight), g, create_graph=True)
        inner = (grad_x * randn(*x.shape, dtype=dtype, seed=3)).sum() + (grad_w * randn(*weight.shape, dtype=dtype,
                                                                                                   seed=4)).sum()
        results.append((out, grad_x, grad_w, *torch.autograd.grad(inner, (x, weight, g), allow_unused=True)))
    for ours, theirs in zip(*results):
        if theirs is None:                           # a transposed convolution is bilinear: d2/dx2 = 0
            assert ours is None or float(ours.abs().max()) == 0
        else:
            assert_close(ours, theirs)


@pytest.mark.parametrize("case", SECOND_ORDER_CASES[:5])
def test_conv_transpose_gradcheck_each_product(case):
    c_in, c_out, groups, kernel, stride, padding, output_padding, dilation, (h, w) = case
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = randn(1, c_in, h, w, grad=True)
    weight = randn(c_in, c_out // groups, kh, kw, seed=1, grad=True)
    bias = randn(c_out, seed=2, grad=True)
    fn = lambda x, weight, bias: conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, weight, bias))
    assert torch.autograd.gradgradcheck(fn, (x, weight, bias), fast_mode=True)


def test_conv_transpose_fcn_upsampling_sizes():
    """The benchmark's FCN-8s and FCN-32s layers (k 16 s 8 p 4; k 64 s 32 p 16), smaller batches, float64."""
    for (n, c, h), k, s, p in (((2, 5, 6), 16, 8, 4), ((1, 3, 3), 64, 32, 16)):
        x = randn(n, c, h, h, grad=True)
        weight = randn(c, c, k, k, seed=1, grad=True)
        ours, theirs = conv_transpose2d(x, weight, None, s, p), F.conv_transpose2d(x, weight, None, s, p)
        assert ours.shape == (n, c, h * s, h * s)
        assert_close(ours, theirs)
        g = randn(*theirs.shape, seed=2)
        for got, want in zip(torch.autograd.grad(ours, (x, weight), g), torch.autograd.grad(theirs, (x, weight), g)):
            assert_close(got, want)


def test_col2im_gradcheck():
    cols = randn(1, 8, 18, grad=True)                     # 2 channels x 2 x 2 taps, 3 x 6 positions
    assert torch.autograd.gradcheck(lambda c: col2im(c, (4, 5), 2, 1, 1, (2, 1)), (cols,))


@pytest.mark.parametrize("kwargs, message", [
    (dict(stride=1, output_padding=1), "output_padding must be smaller than stride or dilation"),
    (dict(stride=2, output_padding=2), "output_padding must be smaller than stride or dilation"),
    (dict(stride=2, dilation=3, output_padding=3), "output_padding must be smaller than stride or dilation"),
    (dict(padding=3), "output size"),
    (dict(stride=0), "stride must be >= 1"),
    (dict(padding=-1), "padding must be >= 0"),
    (dict(groups=2), "groups .* must divide"),
    (dict(stride=1.5), "stride must be an int or a pair"),
])
def test_conv_transpose_bad_arguments(kwargs, message):
    x, weight = randn(1, 3, 2, 2), randn(3, 2, 3, 3, seed=1)
    with pytest.raises((ValueError, TypeError), match=message):
        conv_transpose2d(x, weight, **kwargs)
    if "output_padding" in kwargs or "padding" in kwargs:             # torch refuses these too
        with pytest.raises(RuntimeError):
            F.conv_transpose2d(x, weight, **kwargs)


def test_conv_transpose_bad_tensors():
    x, weight = randn(1, 3, 2, 2), randn(3, 2, 3, 3, seed=1)
    with pytest.raises(ValueError, match="must equal input's channels"):
        conv_transpose2d(x, randn(2, 3, 3, 3))
    with pytest.raises(TypeError, match="weight must have the dtype of input"):
        conv_transpose2d(x, weight.float())
    with pytest.raises(ValueError, match=r"bias must have shape \[C_out\] = \[2\]"):
        conv_transpose2d(x, weight, randn(3))
    with pytest.raises(ValueError, match="weight must have shape"):
        conv_transpose2d(x, weight[0])


# --------------------------------------------------------------------------------------------------
# the module


@pytest.mark.parametrize("kwargs", [dict(kernel_size=4, stride=2, padding=1),
                                    dict(kernel_size=(3, 2), stride=(2, 1), output_padding=(1, 0), groups=2, dilation=1),
                                    dict(kernel_size=3, dilation=2, bias=False)])
def test_module_initialised_and_computed_like_torch(kwargs):
    torch.manual_seed(7)
    ours = ConvTranspose2d(4, 6, **kwargs)
    torch.manual_seed(7)
    theirs = nn.ConvTranspose2d(4, 6, **kwargs)
    assert ours.weight.shape == theirs.weight.shape
    assert torch.equal(ours.weight, theirs.weight)
    assert (ours.bias is None) == (theirs.bias is None)
    if ours.bias is not None:
        assert torch.equal(ours.bias, theirs.bias)
    x = randn(2, 4, 5, 5, dtype=torch.float32)
    assert_close(ours(x), theirs(x))


def test_module_output_size_picks_output_padding():
    torch.manual_seed(0)
    ours, theirs = ConvTranspose2d(2, 3, 3, stride=2, padding=1), None
    torch.manual_seed(0)
    theirs = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    x = randn(1, 2, 4, 4, dtype=torch.float32)
    for size in ((7, 7), (8, 8), (7, 8), [1, 3, 8, 7]):
        assert_close(ours(x, output_size=size), theirs(x, output_size=size))
    with pytest.raises(ValueError, match="sizes range from 7 to 8"):
        ours(x, output_size=(9, 9))


def test_module_refuses_other_padding_modes():
    with pytest.raises(ValueError, match="padding_mode must be 'zeros'"):
        ConvTranspose2d(2, 2, 3, padding_mode="reflect")
