"""Segmentation models, mean IoU, the checkerboard measure and activation-memory accounting."""
from __future__ import annotations

import numpy as np
import pytest
import skimage.metrics
import torch
import torch.nn.functional as F
from torch import nn

from cvkit.segmentation import (FCN, UNet, UpsamplingStack, activation_bytes, bilinear_kernel, checkerboard_energy,
                                confusion_matrix, cuda_peak_memory, mean_iou, per_class_iou, predict,
                                record_activations, segmentation_scores, upsampling_layer)
from cvkit.upsampling import ConvTranspose2d

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


# --- mean IoU -------------------------------------------------------------------------------------

def test_mean_iou_on_a_case_worked_by_hand():
    target = torch.tensor([[0, 0, 1, 1],
                           [0, 0, 1, 1],
                           [2, 2, 2, 2]])
    pred = torch.tensor([[0, 1, 1, 1],
                         [0, 0, 1, 2],
                         [2, 2, 0, 2]])
    # class 0: TP 3 (0,0) (1,0) (1,1); FN 1 (0,1); FP 1 (2,2) -> 3 / 5
    # class 1: TP 3 (0,2) (0,3) (1,2); FN 1 (1,3); FP 1 (0,1) -> 3 / 5
    # class 2: TP 3 (2,0) (2,1) (2,3); FN 1 (2,2); FP 1 (1,3) -> 3 / 5
    assert per_class_iou(pred, target, 3).tolist() == pytest.approx([0.6, 0.6, 0.6])
    assert mean_iou(pred, target, 3).item() == pytest.approx(0.6)
    pred[2, 2] = 2                                  # fixes one pixel of class 2: class 0 loses an FP
    assert per_class_iou(pred, target, 3).tolist() == pytest.approx([3 / 4, 3 / 5, 4 / 5])


def test_counts_are_summed_over_the_set_before_dividing():
    # image 1: one pixel of class 1, found; image 2: three pixels of class 1, none found
    target = torch.tensor([[[1, 0, 0, 0]], [[1, 1, 1, 0]]])
    pred = torch.tensor([[[1, 0, 0, 0]], [[0, 0, 0, 0]]])
    assert per_class_iou(pred, target, 2)[1].item() == pytest.approx(1 / 4)   # not (1 + 0) / 2


def test_classes_absent_from_both_are_left_out_of_the_mean():
    target = torch.tensor([[0, 0, 1, 1]])
    pred = torch.tensor([[0, 1, 1, 1]])
    iou = per_class_iou(pred, target, 4)
    assert iou[:2].tolist() == pytest.approx([1 / 2, 2 / 3])
    assert torch.isnan(iou[2:]).all()
    assert mean_iou(pred, target, 4).item() == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_a_class_only_predicted_counts_with_iou_zero():
    target = torch.zeros(1, 4, dtype=torch.long)
    pred = torch.tensor([[0, 0, 0, 3]])
    assert per_class_iou(pred, target, 4)[3].item() == 0.0
    assert mean_iou(pred, target, 4).item() == pytest.approx((3 / 4 + 0) / 2)


@pytest.mark.parametrize("seed", range(5))
def test_mean_iou_equals_skimage_contingency_table(seed):
    g = torch.Generator().manual_seed(seed)
    num_classes = 6
    target = torch.randint(num_classes, (3, 17, 23), generator=g)
    pred = torch.where(torch.rand(3, 17, 23, generator=g) < 0.6, target,
                       torch.randint(num_classes, (3, 17, 23), generator=g))
    table = skimage.metrics.contingency_table(target.numpy().ravel(), pred.numpy().ravel()).toarray()
    table = np.pad(table, ((0, num_classes - table.shape[0]), (0, num_classes - table.shape[1])))
    assert torch.equal(confusion_matrix(pred, target, num_classes), torch.from_numpy(table).long())
    # IoU from boolean masks, one class at a time
    expected = []
    for c in range(num_classes):
        t, p = (target == c).numpy(), (pred == c).numpy()
        union = np.logical_or(t, p).sum()
        expected.append(np.logical_and(t, p).sum() / union if union else np.nan)
    assert np.allclose(per_class_iou(pred, target, num_classes).numpy(), expected, equal_nan=True)
    assert mean_iou(pred, target, num_classes).item() == pytest.approx(np.nanmean(expected))


def test_ignore_index_pixels_are_not_counted():
    target = torch.tensor([[0, 1, 255, 255]])
    pred = torch.tensor([[0, 1, 1, 0]])
    assert mean_iou(pred, target, 2, ignore_index=255).item() == 1.0
    with pytest.raises(ValueError, match="target must hold labels in"):
        mean_iou(pred, target, 2)


@pytest.mark.parametrize("pred, target, match", [
    (torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long), "pred must hold integer class labels"),
    (torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 2, dtype=torch.long), "pred must have the shape"),
    (torch.full((2, 3), 5), torch.zeros(2, 3, dtype=torch.long), r"pred must hold labels in \[0, 3\)"),
    (torch.full((2, 3), -1), torch.zeros(2, 3, dtype=torch.long), r"pred must hold labels in \[0, 3\)"),
])
def test_mean_iou_refuses_bad_labels(pred, target, match):
    with pytest.raises((TypeError, ValueError), match=match):
        mean_iou(pred, target, 3)


def test_mean_iou_of_no_pixels_is_nan():
    empty = torch.zeros(0, 4, 4, dtype=torch.long)
    assert torch.isnan(mean_iou(empty, empty, 3))
    assert confusion_matrix(empty, empty, 3).shape == (3, 3)


class _OneHotOfFirstChannel(nn.Module):
    """A 'model' whose logits pick the class written in the image's first channel."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return F.one_hot(x[:, 0].long(), self.num_classes).permute(0, 3, 1, 2).float()


def test_segmentation_scores_of_a_perfect_and_a_wrong_model():
    g = torch.Generator().manual_seed(0)
    masks = torch.randint(3, (5, 8, 8), generator=g)
    images = masks[:, None].float().repeat(1, 3, 1, 1)
    model = _OneHotOfFirstChannel(3)
    assert torch.equal(predict(model, images, batch_size=2), masks)
    assert segmentation_scores(model, images, masks, 3) == {"miou": 1.0, "pixel_accuracy": 1.0}
    wrong = segmentation_scores(model, (images + 1) % 3, masks, 3)
    assert wrong == {"miou": 0.0, "pixel_accuracy": 0.0}


# --- checkerboard measure -------------------------------------------------------------------------

def _checkerboard(h: int, w: int, period: int = 2) -> torch.Tensor:
    i, j = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return (((i % period) + (j % period)) % 2).double()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_pure_checkerboard_scores_one_a_constant_zero(dtype):
    board = _checkerboard(16, 24).to(dtype)
    assert checkerboard_energy(board).item() == pytest.approx(1.0, abs=1e-6)
    assert checkerboard_energy(2 * board - 1).item() == pytest.approx(1.0, abs=1e-6)   # +-1
    stripes = (torch.arange(24) % 2).to(dtype).expand(16, 24)
    assert checkerboard_energy(stripes).item() == pytest.approx(1.0, abs=1e-6)          # (0, pi) alone
    for value in (0.0, 0.1, 3.7, -1e4):
        assert checkerboard_energy(torch.full((16, 24), value, dtype=dtype)).item() == 0.0


def test_smooth_images_and_noise_score_low():
    ramp = torch.linspace(0, 1, 32)[None, :] * torch.linspace(1, 2, 32)[:, None]
    assert checkerboard_energy(ramp).item() < 0.01
    noise = torch.randn(200, 32, 32, generator=torch.Generator().manual_seed(0))
    assert checkerboard_energy(noise).mean().item() == pytest.approx(3 / (32 * 32 - 1), rel=0.1)   # 3 of 1023 freqs


@pytest.mark.parametrize("stride", [2, 3, 4])
def test_checkerboard_energy_is_the_energy_of_the_periodic_part(stride):
    """Parseval: the stride frequencies hold the energy of the pattern that averages x over each phase."""
    g = torch.Generator().manual_seed(stride)
    x = torch.randn(4, 2, 6 * stride, 5 * stride, generator=g, dtype=torch.float64)
    x = x + 0.7 * torch.randn(4, 2, 1, stride, 1, stride, generator=g, dtype=torch.float64).expand(
        4, 2, 6, stride, 5, stride).reshape(4, 2, 6 * stride, 5 * stride)      # a stride-periodic part
    varying = x - x.mean(dim=(-2, -1), keepdim=True)
    phases = varying.reshape(4, 2, 6, stride, 5, stride).mean(dim=(2, 4))      # [4, 2, s, s] the phase means
    expected = (phases.square().sum(dim=(-2, -1)) * 30) / varying.square().sum(dim=(-2, -1))
    got = checkerboard_energy(x, stride)
    assert got.shape == (4, 2)
    assert torch.allclose(got, expected)


@pytest.mark.parametrize("x, stride, match", [
    (torch.zeros(5, 6), 2, "H and W positive multiples of stride=2"),
    (torch.zeros(6), 2, r"Tensor\[..., H, W\]"),
    (torch.zeros(6, 6), 1, "stride must be an integer >= 2"),
    (torch.zeros(6, 6, dtype=torch.long), 2, "floating-point"),
])
def test_checkerboard_energy_refuses_bad_input(x, stride, match):
    with pytest.raises((TypeError, ValueError), match=match):
        checkerboard_energy(x, stride)


# --- upsampling layers and models -----------------------------------------------------------------

def test_transposed_layer_paints_the_tap_count_pattern_on_a_constant():
    """Kernel 3, stride 2: even outputs get the middle tap, odd ones the two outer taps (per axis)."""
    torch.manual_seed(0)
    layer = upsampling_layer(1, 1, "transposed")
    assert isinstance(layer, ConvTranspose2d)
    with torch.no_grad():
        layer.bias.zero_()
        out = layer(torch.ones(1, 1, 6, 6))[0, 0]                                  # [12, 12]
    w = layer.weight[0, 0].detach()
    expected = {(0, 0): w[1, 1], (0, 1): w[1, 0] + w[1, 2], (1, 0): w[0, 1] + w[2, 1],
                (1, 1): w[0, 0] + w[0, 2] + w[2, 0] + w[2, 2]}
    interior = out[2:-2, 2:-2]                                                     # away from the border
    for (a, b), value in expected.items():
        assert torch.allclose(interior[a::2, b::2], value.expand_as(interior[a::2, b::2]), atol=1e-6)


def test_resize_conv_layer_keeps_a_constant_constant_inside():
    torch.manual_seed(0)
    layer = upsampling_layer(4, 3, "resize-conv")
    assert not any(isinstance(m, (ConvTranspose2d, nn.ConvTranspose2d)) for m in layer.modules())
    out = layer(torch.full((1, 4, 6, 6), 0.5)).detach()                           # [1, 3, 12, 12]
    assert out.shape == (1, 3, 12, 12)
    interior = out[..., 1:-1, 1:-1]
    assert torch.allclose(interior, interior[..., :1, :1].expand_as(interior), atol=1e-6)


def test_the_transposed_decoder_makes_a_stronger_checkerboard_than_resize_conv():
    constant = torch.ones(1, 8, 8, 8)
    for seed in range(5):
        outputs = {}
        for mode in ("transposed", "resize-conv"):
            torch.manual_seed(seed)
            with torch.no_grad():
                outputs[mode] = UpsamplingStack((8, 8, 8, 1), mode)(constant)           # [1, 1, 64, 64]
        energy = {mode: checkerboard_energy(y).item() for mode, y in outputs.items()}
        assert energy["transposed"] > 0.1 and energy["transposed"] > 20 * energy["resize-conv"], (seed, energy)
        # away from the zero-padded border a constant comes out periodic (period 8 = 2^3) after transposed
        # convolutions, and constant after resize-convolutions
        inside = {mode: y[..., 8:-8, 8:-8] for mode, y in outputs.items()}
        assert checkerboard_energy(inside["transposed"], 8).item() == pytest.approx(1.0)
        assert checkerboard_energy(inside["resize-conv"], 8).item() == 0.0


def test_bilinear_kernel_by_hand():
    tent = torch.tensor([0.25, 0.75, 0.75, 0.25])
    assert torch.allclose(bilinear_kernel(2), tent[:, None] * tent[None, :])
    assert bilinear_kernel(1).tolist() == [[0.25, 0.25], [0.25, 0.25]]


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_fcn_starts_as_bilinear_upsampling_of_the_coarse_scores(depth):
    torch.manual_seed(0)
    model = FCN(3, 4, width=4, depth=depth)
    factor = 2**depth
    coarse = torch.randn(2, 4, 5, 6)
    with torch.no_grad():
        ours = model.upsample(coarse)
    reference = F.interpolate(coarse, scale_factor=factor, mode="bilinear", align_corners=False)
    assert ours.shape == reference.shape
    inner = (..., slice(factor, -factor), slice(factor, -factor))                 # borders differ (zero padding)
    assert torch.allclose(ours[inner], reference[inner], atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("make", [lambda: FCN(3, 5, width=4, depth=3),
                                  lambda: UNet(3, 5, width=4, depth=3, upsampling="transposed"),
                                  lambda: UNet(3, 5, width=4, depth=2, upsampling="resize-conv"),
                                  lambda: UNet(3, 5, width=4, depth=3, skips=False)],
                         ids=["fcn", "unet-transposed", "unet-resize-conv", "unet-no-skips"])
def test_models_give_full_resolution_logits_and_gradients(make, device):
    torch.manual_seed(0)
    model = make().to(device)
    x = torch.randn(2, 3, 32, 40, device=device)
    logits = model(x)
    assert logits.shape == (2, 5, 32, 40)
    F.cross_entropy(logits, torch.randint(5, (2, 32, 40), device=device)).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_unet_uses_cvkit_transposed_convolutions_and_its_skips():
    model = UNet(3, 2, width=4, depth=3, upsampling="transposed")
    assert sum(isinstance(m, ConvTranspose2d) for m in model.modules()) == 3
    assert model.blocks[0][0].in_channels == 2 * model.ups[0].out_channels          # skip concatenated
    plain = UNet(3, 2, width=4, depth=3, skips=False)
    assert plain.blocks[0][0].in_channels == plain.ups[0].out_channels


def test_the_last_decoder_block_sees_the_finest_encoder_features_beside_the_upsampled_ones():
    torch.manual_seed(0)
    model = UNet(3, 2, width=4, depth=2).eval()
    seen = {}

    def keep(name, take_input=False):
        def hook(module, inputs, output):
            seen[name] = inputs[0] if take_input else output                      # returns None: output kept
        return hook

    model.encoder.blocks[0].register_forward_hook(keep("skip"))
    model.ups[-1].register_forward_hook(keep("up"))
    model.blocks[-1].register_forward_hook(keep("block_input", take_input=True))
    model(torch.randn(1, 3, 16, 16))
    assert torch.equal(seen["block_input"], torch.cat((seen["skip"], seen["up"]), dim=1))   # [1, 8, 16, 16]


@pytest.mark.parametrize("make, match", [
    (lambda: UNet(upsampling="bilinear"), "upsampling must be one of"),
    (lambda: FCN(num_classes=1), "num_classes must be an integer >= 2"),
    (lambda: UNet(depth=0), "depth must be an integer >= 1"),
    (lambda: UpsamplingStack((8,)), "channels must hold at least two"),
])
def test_models_refuse_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_models_refuse_sizes_the_poolings_cannot_halve():
    with pytest.raises(ValueError, match="divisible by 2\\^depth = 8"):
        UNet(depth=3)(torch.zeros(1, 3, 20, 24))


# --- activation memory ----------------------------------------------------------------------------

def test_the_lecture_figure():
    size = activation_bytes(200, 400, 400)                                         # float32
    assert size == 128_000_000
    assert size / 2**20 == pytest.approx(122.07, abs=0.01)                         # the lecture's "122MB" is MiB
    assert activation_bytes(200, 400, 400, batch=20) * 100 / 2**30 == pytest.approx(238.4, abs=0.1)  # "238GB"
    assert activation_bytes(1, 2, 3, element_size=8) == 48
    with pytest.raises(ValueError, match="channels must be a non-negative integer"):
        activation_bytes(-1, 2, 3)


def test_records_match_the_count_and_the_storage():
    model = nn.Sequential(nn.Conv2d(3, 200, 3, padding=1), nn.ReLU(), nn.Flatten())
    records = record_activations(model, torch.zeros(2, 3, 40, 40))
    assert [r.kind for r in records] == ["Conv2d", "ReLU", "Flatten"]
    assert [r.name for r in records] == ["0", "1", "2"]
    conv, relu, flat = records
    assert conv.shape == (2, 200, 40, 40) and conv.bytes == activation_bytes(200, 40, 40, batch=2)
    assert conv.storage_bytes == conv.bytes and relu.storage_bytes == relu.bytes
    assert relu.data_ptr != conv.data_ptr                                          # ReLU made a new tensor
    assert flat.data_ptr == relu.data_ptr and flat.storage_bytes == relu.bytes     # Flatten is a view


def test_unet_records_follow_the_architecture():
    model = UNet(3, 2, width=4, depth=2)
    records = record_activations(model, torch.zeros(1, 3, 16, 16))
    convs = {r.name: r.shape for r in records if r.kind == "Conv2d"}
    assert convs["encoder.blocks.0.0"] == (1, 4, 16, 16)
    assert convs["encoder.blocks.2.3"] == (1, 16, 4, 4)                            # 4 * 2^2 channels at 1/4
    assert convs["classifier"] == (1, 2, 16, 16)
    ups = [r for r in records if r.kind == "ConvTranspose2d"]
    assert [r.shape for r in ups] == [(1, 8, 8, 8), (1, 4, 16, 16)]
    assert all(r.bytes == int(np.prod(r.shape)) * 4 for r in records)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
def test_cuda_peak_memory_holds_at_least_the_activations():
    model = UNet(3, 2, width=8, depth=2).cuda()
    x = torch.zeros(4, 3, 64, 64, device="cuda")
    kept = sum(r.bytes for r in record_activations(model, x))
    peak = cuda_peak_memory(model, x)
    assert peak >= kept * 0.5                                                       # ReLU/BN outputs may be freed early
    assert peak >= activation_bytes(8, 64, 64, batch=4)


def test_cuda_peak_memory_refuses_cpu_input():
    with pytest.raises(ValueError, match="CUDA"):
        cuda_peak_memory(nn.Identity(), torch.zeros(1))
