"""cvkit.deform against its oracles: torchvision.ops.deform_conv2d (forward and the gradients for input, offset,
weight, bias and mask), torchvision.ops.roi_align (deformable RoI pooling with zero offsets, and with one offset
for all bins = RoIAlign of the shifted box), hand-computed bilinear reads, the loop references, and gradcheck.

Adversarial cases: non-square kernels, stride/padding/dilation combinations, weight groups and offset groups > 1,
offsets far outside the image, integer offsets (bilinear weights exactly 0 and 1, and points exactly on -1 and
on H where torchvision's outside rule starts), empty batches.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision.ops as tv

from cvkit.deform import (DeformConv2d, DeformRoIPool, bilinear, deform_conv2d, deform_conv2d_reference,
                          deform_roi_pool, deform_roi_pool_reference, sampling_locations)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
TOL = {torch.float64: dict(rtol=1e-7, atol=1e-7), torch.float32: dict(rtol=1e-5, atol=1e-5)}

# (batch, C_in, H, W, C_out, (kh, kw), stride, padding, dilation, groups, offset_groups)
CONFIGS = {
    "3x3 plain": (2, 4, 7, 8, 5, (3, 3), (1, 1), (1, 1), (1, 1), 1, 1),
    "non-square, strided, dilated": (2, 4, 9, 11, 6, (3, 2), (2, 1), (1, 0), (2, 3), 1, 1),
    "groups 2, offset groups 2": (2, 4, 6, 7, 6, (3, 3), (1, 1), (1, 1), (1, 1), 2, 2),
    "groups 2, offset groups 4": (1, 8, 6, 6, 4, (2, 3), (1, 2), (0, 1), (1, 1), 2, 4),
    "groups 4, offset groups 1": (2, 8, 5, 6, 8, (1, 3), (1, 1), (2, 0), (1, 2), 4, 1),
    "1x1 kernel": (2, 3, 5, 5, 2, (1, 1), (1, 1), (0, 0), (1, 1), 1, 3),
    "kernel larger than image": (1, 2, 3, 4, 3, (5, 5), (1, 1), (2, 2), (1, 1), 1, 1),
}


def make_inputs(config, offsets="normal", use_mask=True, dtype=torch.float64, device="cpu", seed=0):
    batch, c_in, h, w, c_out, (kh, kw), stride, padding, dilation, groups, offset_groups = config
    g = torch.Generator().manual_seed(seed)
    out_h = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    out_w = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    offset_shape = (batch, 2 * offset_groups * kh * kw, out_h, out_w)
    if offsets == "normal":
        offset = torch.randn(offset_shape, generator=g, dtype=torch.float64) * 1.5
    elif offsets == "far":                      # many points beyond (-1, H) x (-1, W), some just inside
        offset = torch.randn(offset_shape, generator=g, dtype=torch.float64) * 3 * max(h, w)
    else:                                       # integers: weights exactly 0/1, points exactly on -1 and on H
        offset = torch.randint(-4, 5, offset_shape, generator=g).double()
    tensors = dict(
        input=torch.randn(batch, c_in, h, w, generator=g, dtype=torch.float64),
        offset=offset,
        weight=torch.randn(c_out, c_in // groups, kh, kw, generator=g, dtype=torch.float64),
        bias=torch.randn(c_out, generator=g, dtype=torch.float64),
        mask=torch.rand(batch, offset_groups * kh * kw, out_h, out_w, generator=g, dtype=torch.float64) * 1.5
        if use_mask else None)
    tensors = {k: v.to(dtype=dtype, device=device).requires_grad_() if v is not None else None
               for k, v in tensors.items()}
    return tensors, dict(stride=stride, padding=padding, dilation=dilation)


def forward_backward(fn, tensors, settings, grad_seed=1):
    out = fn(tensors["input"], tensors["offset"], tensors["weight"], tensors["bias"], mask=tensors["mask"], **settings)
    grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(grad_seed), dtype=torch.float64)
    names = [k for k, v in tensors.items() if v is not None]
    grads = torch.autograd.grad(out, [tensors[k] for k in names], grad_out.to(out))
    return out, dict(zip(names, grads))


def assert_same(ours, theirs, dtype):
    (out_a, grads_a), (out_b, grads_b) = ours, theirs
    assert out_a.shape == out_b.shape and out_a.dtype == out_b.dtype
    torch.testing.assert_close(out_a, out_b, **TOL[dtype])
    for name in grads_b:
        torch.testing.assert_close(grads_a[name], grads_b[name], **TOL[dtype], msg=lambda m: f"grad {name}: {m}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("offsets", ["normal", "far", "integer"])
@pytest.mark.parametrize("use_mask", [True, False])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_deform_conv2d_equals_torchvision(name, use_mask, offsets, dtype, device):
    tensors, settings = make_inputs(CONFIGS[name], offsets, use_mask, dtype, device)
    assert_same(forward_backward(deform_conv2d, tensors, settings),
                forward_backward(tv.deform_conv2d, tensors, settings), dtype)


def test_integer_offsets_hit_the_outside_rule():
    """The integer case above really puts points exactly on -1 and on H (where torchvision reads 0 and passes
    no gradient), so that those comparisons test the rule."""
    tensors, settings = make_inputs(CONFIGS["3x3 plain"], "integer")
    y, x = sampling_locations(tensors["offset"].detach(), (3, 3), **settings)
    assert (y == -1).any() and (y == 7).any() and (x == -1).any() and (x == 8).any()


@pytest.mark.parametrize("name", ["non-square, strided, dilated", "groups 2, offset groups 4", "1x1 kernel"])
@pytest.mark.parametrize("offsets", ["normal", "integer"])
def test_reference_loops_agree(name, offsets):
    tensors, settings = make_inputs(CONFIGS[name], offsets, use_mask=True)
    assert_same(forward_backward(deform_conv2d_reference, tensors, settings),
                forward_backward(deform_conv2d, tensors, settings), torch.float64)


def test_gradcheck():
    tensors, settings = make_inputs((1, 4, 5, 6, 2, (3, 2), (1, 2), (1, 1), (2, 1), 2, 2), "normal")
    names = ["input", "offset", "weight", "bias", "mask"]
    assert torch.autograd.gradcheck(
        lambda i, o, w, b, m: deform_conv2d(i, o, w, b, mask=m, **settings), [tensors[k] for k in names])


def test_zero_offsets_are_a_convolution():
    tensors, settings = make_inputs(CONFIGS["groups 2, offset groups 2"], use_mask=False)
    zero = torch.zeros_like(tensors["offset"])
    expected = F.conv2d(tensors["input"], tensors["weight"], tensors["bias"], groups=2, **settings)
    torch.testing.assert_close(deform_conv2d(tensors["input"], zero, tensors["weight"], tensors["bias"], **settings),
                               expected)


def test_offset_channel_layout_by_hand():
    """A 1 x 2 kernel [[1, 10]]: offset channel 0/1 move tap (0, 0) by (Δy, Δx), channels 2/3 tap (0, 1)."""
    image = torch.arange(12.0).reshape(1, 1, 3, 4)          # value = 4 y + x
    weight = torch.tensor([[[[1.0, 10.0]]]])
    offset = torch.zeros(1, 4, 3, 3)
    offset[:, 0] = 1.0                                       # tap (0, 0) reads one row lower
    offset[:, 3] = 0.5                                       # tap (0, 1) reads half a column to the right
    out = deform_conv2d(image, offset, weight)
    y, x = torch.meshgrid(torch.arange(3.0), torch.arange(3.0), indexing="ij")
    tap0 = torch.where(y + 1 <= 2, 4 * (y + 1) + x, 0.0)     # row 3 is outside: 0
    tap1 = torch.where(x + 1.5 <= 3, 4 * y + x + 1.5, 0.5 * (4 * y + 3))   # x = 3.5: half of column 3, half outside
    torch.testing.assert_close(out[0, 0], tap0 + 10 * tap1)


def test_bilinear_by_hand():
    image = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    assert float(bilinear(image, 0.5, 0.5)) == pytest.approx(1.5)
    assert float(bilinear(image, 0.25, 1.0)) == pytest.approx(0.75 * 1 + 0.25 * 3)
    assert float(bilinear(image, -0.5, 0.0)) == pytest.approx(0.0)          # half of pixel (0, 0), half outside
    assert float(bilinear(image, 1.5, 1.0)) == pytest.approx(1.5)           # half of pixel (1, 1)
    assert float(bilinear(image, -1.0, 0.0)) == 0.0 and float(bilinear(image, 0.0, 2.0)) == 0.0


@pytest.mark.parametrize("fn", [deform_conv2d, deform_conv2d_reference])
def test_empty_batch(fn):
    tensors, settings = make_inputs((0, 4, 6, 6, 3, (3, 3), (1, 1), (1, 1), (1, 1), 1, 2), use_mask=True)
    out = fn(tensors["input"], tensors["offset"], tensors["weight"], tensors["bias"], mask=tensors["mask"], **settings)
    expected = tv.deform_conv2d(tensors["input"], tensors["offset"], tensors["weight"], tensors["bias"],
                                mask=tensors["mask"], **settings)
    assert out.shape == expected.shape == (0, 3, 6, 6) and out.dtype == torch.float64


def test_bad_input():
    tensors, settings = make_inputs(CONFIGS["3x3 plain"])
    x, o, w = tensors["input"].detach(), tensors["offset"].detach(), tensors["weight"].detach()
    with pytest.raises(ValueError, match="offset must have 2 \\* offset_groups"):
        deform_conv2d(x, o[:, :17], w, padding=1)
    with pytest.raises(ValueError, match="offset must have shape"):
        deform_conv2d(x, o[:, :, :-1], w, padding=1)
    with pytest.raises(ValueError, match="mask must have shape"):
        deform_conv2d(x, o, w, padding=1, mask=torch.ones(2, 3, 7, 8, dtype=x.dtype))
    with pytest.raises(ValueError, match="weight must have shape"):
        deform_conv2d(x, o, w[:, :3], padding=1)
    with pytest.raises(TypeError, match="offset must have the dtype of input"):
        deform_conv2d(x, o.float(), w, padding=1)
    with pytest.raises(ValueError, match="input must be a 4-d tensor"):
        deform_conv2d(x[0], o, w, padding=1)
    with pytest.raises(ValueError, match="too small"):
        deform_conv2d(x[:, :, :2, :2], o, w)
    with pytest.raises(ValueError, match="stride"):
        deform_conv2d(x, o, w, stride=0, padding=1)
    with pytest.raises(TypeError, match="input must be a floating-point"):
        deform_conv2d(x.long(), o, w, padding=1)


@pytest.mark.parametrize("modulated", [False, True])
def test_module_starts_as_a_convolution_and_learns_offsets(modulated):
    torch.manual_seed(0)
    layer = DeformConv2d(4, 6, (3, 2), padding=(1, 0), dilation=(1, 2), groups=2, offset_groups=2,
                         modulated=modulated).double()
    x = torch.randn(2, 4, 8, 9, dtype=torch.float64)
    conv = F.conv2d(x, layer.weight, None, padding=(1, 0), dilation=(1, 2), groups=2)
    scale = 0.5 if modulated else 1.0                        # v2's mask starts at sigmoid(0) = 1/2
    torch.testing.assert_close(layer(x), scale * conv + layer.bias[:, None, None])
    offset, mask = layer.offsets_and_mask(x)
    assert offset.shape == (2, 2 * 2 * 6, 8, 7) and not offset.any()      # W_out = 9 - 2 * (2 - 1) = 7
    assert (mask is not None) == modulated
    layer(x).square().sum().backward()
    assert layer.offset_conv.weight.grad.abs().sum() > 0     # the offset branch gets a gradient from the start


# --------------------------------------------------------------------------- deformable RoI pooling

BOXES = [[0, 1.0, 2.0, 9.0, 11.0], [1, -3.0, 0.0, 20.0, 7.0], [0, 4.0, 4.0, 4.5, 5.0], [1, 0.0, 0.0, 13.0, 11.0],
         [0, 10.0, 9.0, 30.0, 20.0]]                           # inside, over the border, tiny, whole image, mostly outside


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_deform_roi_pool_without_offsets_is_roi_align(sampling_ratio, aligned, dtype, device):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 12, 14, generator=g, dtype=dtype).to(device).requires_grad_()
    boxes = torch.tensor(BOXES, dtype=dtype, device=device)
    ours = deform_roi_pool(x, boxes, None, (3, 4), 0.7, sampling_ratio, aligned)
    theirs = tv.roi_align(x, boxes, (3, 4), 0.7, sampling_ratio, aligned)
    torch.testing.assert_close(ours, theirs, **TOL[dtype])
    grad = torch.randn(ours.shape, generator=g, dtype=dtype).to(device)
    torch.testing.assert_close(torch.autograd.grad(ours, x, grad)[0], torch.autograd.grad(theirs, x, grad)[0], **TOL[dtype])
    zero = torch.zeros(len(BOXES), 2, 3, 4, dtype=dtype, device=device)
    torch.testing.assert_close(deform_roi_pool(x, boxes, zero, (3, 4), 0.7, sampling_ratio, aligned), theirs, **TOL[dtype])


@pytest.mark.parametrize("aligned", [True, False])
def test_one_offset_for_all_bins_shifts_the_box(aligned):
    """Δp = γ Δp̂ ∘ (w, h) for every bin moves the whole RoI: RoIAlign of the box moved by that many pixels."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 12, 14, generator=g, dtype=torch.float64)
    boxes = torch.tensor(BOXES, dtype=torch.float64)[[0, 1, 3]]           # boxes at least a cell wide
    normalised = torch.tensor([[0.7, -0.4], [-1.2, 0.5], [0.3, 0.9]], dtype=torch.float64)   # (Δx̂, Δŷ) per RoI
    offset = normalised[:, :, None, None].expand(3, 2, 3, 4)
    gamma, scale = 0.1, 0.7
    size = boxes[:, 3:5] - boxes[:, 1:3]                                   # (w, h) in image pixels
    shifted = boxes.clone()
    shifted[:, 1:3] += gamma * normalised * size
    shifted[:, 3:5] += gamma * normalised * size
    torch.testing.assert_close(deform_roi_pool(x, boxes, offset, (3, 4), scale, 2, aligned, gamma),
                               tv.roi_align(x, shifted, (3, 4), scale, 2, aligned))


@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_deform_roi_pool_reference_agrees(sampling_ratio):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 12, 14, generator=g, dtype=torch.float64, requires_grad=True)
    boxes = torch.tensor(BOXES, dtype=torch.float64)
    offset = (torch.randn(len(BOXES), 2, 3, 4, generator=g, dtype=torch.float64) * 2).requires_grad_()
    ours = deform_roi_pool(x, boxes, offset, (3, 4), 0.7, sampling_ratio)
    loops = deform_roi_pool_reference(x, boxes, offset, (3, 4), 0.7, sampling_ratio)
    torch.testing.assert_close(ours, loops)
    grad = torch.randn(ours.shape, generator=g, dtype=torch.float64)
    for a, b in zip(torch.autograd.grad(ours, [x, offset], grad), torch.autograd.grad(loops, [x, offset], grad)):
        torch.testing.assert_close(a, b)


def test_deform_roi_pool_gradcheck():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 2, 8, 9, generator=g, dtype=torch.float64, requires_grad=True)
    boxes = torch.tensor([[0, 1.3, 0.7, 6.1, 7.4], [0, 2.2, 1.9, 8.3, 5.6]], dtype=torch.float64)
    offset = (torch.randn(2, 2, 2, 3, generator=g, dtype=torch.float64) * 0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda f, o: deform_roi_pool(f, boxes, o, (2, 3), 1.0, 2), [x, offset])


def test_deform_roi_pool_module_starts_as_roi_align_and_empty_boxes():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 12, 14, dtype=torch.float64)
    boxes = torch.tensor(BOXES, dtype=torch.float64)
    pool = DeformRoIPool(3, (3, 4), 0.7, hidden=16).double()
    torch.testing.assert_close(pool(x, boxes), tv.roi_align(x, boxes, (3, 4), 0.7, -1, True))
    pool(x, boxes).sum().backward()
    assert pool.offset_fc[-1].weight.grad.abs().sum() > 0
    assert pool(x, boxes[:0]).shape == (0, 3, 3, 4)
    with pytest.raises(ValueError, match="offset must have shape"):
        deform_roi_pool(x, boxes, torch.zeros(5, 2, 3, 3, dtype=torch.float64), (3, 4))
