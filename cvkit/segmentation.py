"""Segmentation networks assembled from the kit's upsampling operators, and the numbers to judge them.

A segmentation network must answer at every pixel, so whatever it downsamples it has to bring back up.
Two ways to assemble one (Long et al., 2015, "Fully Convolutional Networks for Semantic Segmentation";
Ronneberger et al., 2015, "U-Net"):

- :class:`FCN`: an encoder down to 1/2^depth of the input, a 1x1 classifier, and one transposed
  convolution that upsamples the coarse class scores 2^depth times (FCN-32s style, initialised as
  bilinear interpolation). Every boundary is only as sharp as the coarse grid.
- :class:`UNet`: the same encoder, and a decoder that climbs back one factor of 2 at a time, each step
  concatenating the encoder's features of that resolution (the skip connections) before two convs.

Each upsampling step of the U-Net's decoder is either a **transposed convolution** (kernel 3, stride 2:
output pixels receive one or two kernel taps, alternately) or **resize-then-convolve** (nearest 2x, then
a 3x3 conv), the fix Odena et al. (2016, "Deconvolution and Checkerboard Artifacts") propose.
:func:`checkerboard_energy` measures the artefact: the share of an image's energy at the stride
frequencies.

Also here: the mean intersection over union of a segmentation (:func:`mean_iou`, VOC's definition,
accumulated over the whole set), and activation memory as the lecture counts it (channels x height x
width x 4 bytes, :func:`activation_bytes`) beside what the tensors really occupy
(:func:`record_activations`) and, on a GPU, what the allocator reports (:func:`cuda_peak_memory`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from cvkit._checks import check_tensor
from cvkit.upsampling import ConvTranspose2d, nearest_upsample

__all__ = ["Upsampling", "UPSAMPLING_MODES", "upsampling_layer", "conv_block", "Encoder", "FCN", "UNet",
           "UpsamplingStack", "bilinear_kernel", "confusion_matrix", "per_class_iou", "mean_iou", "predict",
           "segmentation_scores", "checkerboard_energy", "activation_bytes", "ActivationRecord",
           "record_activations", "cuda_peak_memory"]

Upsampling = Literal["transposed", "resize-conv"]
UPSAMPLING_MODES: tuple[str, ...] = ("transposed", "resize-conv")


# --- parts ----------------------------------------------------------------------------------------

class NearestResize(nn.Module):
    """Nearest-neighbour upsampling by an integer factor (:func:`cvkit.upsampling.nearest_upsample`)."""

    def __init__(self, scale_factor: int = 2) -> None:
        super().__init__()
        self.scale_factor = scale_factor

    def forward(self, x: Tensor) -> Tensor:
        return nearest_upsample(x, scale_factor=self.scale_factor)

    def extra_repr(self) -> str:
        return f"scale_factor={self.scale_factor}"


def _check_mode(mode: str) -> None:
    if mode not in UPSAMPLING_MODES:
        raise ValueError(f"upsampling must be one of {UPSAMPLING_MODES}, got {mode!r}")


def upsampling_layer(in_channels: int, out_channels: int, mode: Upsampling) -> nn.Module:
    """A learned 2x upsampling: a transposed conv or nearest resize followed by a conv.

    ``"transposed"``: kernel 3, stride 2, padding 1, output padding 1, so ``H_out = 2 H``. Along each axis
    the even outputs receive one kernel tap and the odd outputs two: the uneven overlap behind
    checkerboard artefacts (Odena et al., 2016, sec. 2).

    ``"resize-conv"``: nearest-neighbour 2x, then a 3x3 conv with padding 1. Every output pixel sees the
    same number of taps, so a constant input stays constant away from the border (Odena et al., sec. 3).

    Args:
        in_channels, out_channels: channels of the input and of the upsampled output.
        mode: ``"transposed"`` or ``"resize-conv"``.

    Returns:
        a module mapping ``[N, in_channels, H, W]`` to ``[N, out_channels, 2H, 2W]``.
    """
    _check_mode(mode)
    if mode == "transposed":
        return ConvTranspose2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1, output_padding=1)
    return nn.Sequential(NearestResize(2), nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 convs (padding 1, so the size is kept), each followed by batch norm and ReLU (U-Net's unit)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU())


def _check_sizes(in_channels: int, num_classes: int, width: int, depth: int) -> None:
    for name, value, low in (("in_channels", in_channels, 1), ("num_classes", num_classes, 2),
                             ("width", width, 1), ("depth", depth, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


class Encoder(nn.Module):
    """``depth`` + 1 conv blocks with 2x2 max pooling between them; channels double at each level.

    Level ``l`` (0 .. depth) runs at 1/2^l of the input with ``width * 2^l`` channels. ``forward``
    returns every level's features, finest first, so a decoder can take its skips from them.
    """

    def __init__(self, in_channels: int = 3, width: int = 16, depth: int = 3) -> None:
        super().__init__()
        self.channels = [width * 2**level for level in range(depth + 1)]
        ins = [in_channels] + self.channels[:-1]
        self.blocks = nn.ModuleList(conv_block(i, o) for i, o in zip(ins, self.channels))
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: Tensor) -> list[Tensor]:
        features = [self.blocks[0](x)]
        for block in self.blocks[1:]:
            features.append(block(self.pool(features[-1])))   # [N, width 2^l, H / 2^l, W / 2^l]
        return features


def _check_input(x: Tensor, depth: int) -> None:
    factor = 2**depth
    if x.dim() != 4 or x.shape[-2] % factor or x.shape[-1] % factor:
        raise ValueError(f"the input must be a Tensor[N, C, H, W] with H and W divisible by 2^depth = {factor}, "
                         f"got shape {list(x.shape)}")


def bilinear_kernel(factor: int) -> Tensor:
    """The ``2 factor`` x ``2 factor`` kernel with which a stride-``factor`` transposed conv interpolates bilinearly.

    ``k(i, j) = (1 - |i - c| / factor) (1 - |j - c| / factor)``, ``c = (2 factor - 1) / 2``: the tent
    FCN initialises its upsampling layers with (Long et al., 2015, sec. 3.3).

    Returns:
        float32 Tensor[2 factor, 2 factor].
    """
    if not isinstance(factor, int) or factor < 1:
        raise ValueError(f"factor must be an integer >= 1, got {factor!r}")
    size = 2 * factor
    centre = (size - 1) / 2
    tent = 1 - (torch.arange(size, dtype=torch.float32) - centre).abs() / factor   # [2 factor]
    return tent[:, None] * tent[None, :]


class FCN(nn.Module):
    """FCN-32s in miniature: encoder, 1x1 class scores at 1/2^depth, one transposed conv back up 2^depth times.

    The upsampling is a :class:`cvkit.upsampling.ConvTranspose2d` with kernel ``2f``, stride ``f`` and
    padding ``f / 2`` (``f = 2^depth``), each class upsampled on its own and initialised with
    :func:`bilinear_kernel`; it is trained with the rest.

    Args:
        in_channels: channels of the input image.
        num_classes: classes scored at every pixel (background included).
        width: channels of the first encoder level.
        depth: number of 2x poolings.

    Shapes:
        ``[N, in_channels, H, W]`` (H, W divisible by 2^depth) -> logits ``[N, num_classes, H, W]``.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 2, width: int = 16, depth: int = 3) -> None:
        super().__init__()
        _check_sizes(in_channels, num_classes, width, depth)
        self.depth = depth
        self.encoder = Encoder(in_channels, width, depth)
        self.classifier = nn.Conv2d(self.encoder.channels[-1], num_classes, kernel_size=1)
        factor = 2**depth
        self.upsample = ConvTranspose2d(num_classes, num_classes, kernel_size=2 * factor, stride=factor,
                                        padding=factor // 2, bias=False)
        with torch.no_grad():
            self.upsample.weight.zero_()
            for c in range(num_classes):              # class c upsampled from class c alone
                self.upsample.weight[c, c] = bilinear_kernel(factor)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.depth)
        coarse = self.classifier(self.encoder(x)[-1])   # [N, classes, H / 2^depth, W / 2^depth]
        return self.upsample(coarse)                    # [N, classes, H, W]


class UNet(nn.Module):
    """A small U-Net: the :class:`Encoder`, then ``depth`` decoder steps, each a 2x upsampling, the
    concatenated encoder features of that resolution (the skip) and a conv block; a 1x1 classifier.

    Convolutions are padded, so unlike the original U-Net no crop is needed before concatenating.

    Args:
        in_channels, num_classes, width, depth: as for :class:`FCN`.
        upsampling: ``"transposed"`` or ``"resize-conv"`` (:func:`upsampling_layer`).
        skips: concatenate the encoder's features (False gives the same decoder without them).

    Shapes:
        ``[N, in_channels, H, W]`` (H, W divisible by 2^depth) -> logits ``[N, num_classes, H, W]``.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 2, width: int = 16, depth: int = 3,
                 upsampling: Upsampling = "transposed", skips: bool = True) -> None:
        super().__init__()
        _check_sizes(in_channels, num_classes, width, depth)
        _check_mode(upsampling)
        self.depth, self.skips = depth, skips
        self.encoder = Encoder(in_channels, width, depth)
        channels = self.encoder.channels
        self.ups = nn.ModuleList(upsampling_layer(channels[level + 1], channels[level], upsampling)
                                 for level in reversed(range(depth)))
        self.blocks = nn.ModuleList(conv_block(channels[level] * (2 if skips else 1), channels[level])
                                    for level in reversed(range(depth)))
        self.classifier = nn.Conv2d(channels[0], num_classes, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.depth)
        features = self.encoder(x)
        y = features[-1]
        for up, block, skip in zip(self.ups, self.blocks, reversed(features[:-1])):
            y = up(y)                                   # [N, c_l, H / 2^l, W / 2^l]
            y = block(torch.cat((skip, y), dim=1) if self.skips else y)
        return self.classifier(y)


class UpsamplingStack(nn.Module):
    """A decoder on its own: ``len(channels) - 1`` learned 2x upsamplings with ReLU between them.

    What Odena et al. (2016) look at: fed a constant or smooth input, a stack of stride-2 transposed
    convolutions paints a checkerboard even before training, a stack of resize-convolutions does not.

    Args:
        channels: channels before the first and after every step, e.g. ``(16, 16, 16, 1)``.
        mode: ``"transposed"`` or ``"resize-conv"``.

    Shapes:
        ``[N, channels[0], H, W]`` -> ``[N, channels[-1], H 2^k, W 2^k]``, ``k = len(channels) - 1``.
    """

    def __init__(self, channels: tuple[int, ...] = (16, 16, 16, 1), mode: Upsampling = "transposed") -> None:
        super().__init__()
        _check_mode(mode)
        if len(channels) < 2 or any(not isinstance(c, int) or c < 1 for c in channels):
            raise ValueError(f"channels must hold at least two positive integers, got {channels!r}")
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            layers.append(upsampling_layer(c_in, c_out, mode))
            if i < len(channels) - 2:
                layers.append(nn.ReLU())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


# --- mean IoU -------------------------------------------------------------------------------------

def _check_labels(pred: object, target: object, num_classes: int) -> tuple[Tensor, Tensor]:
    pred, target = check_tensor(pred, "pred"), check_tensor(target, "target")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    for name, labels in (("pred", pred), ("target", target)):
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise TypeError(f"{name} must hold integer class labels (take logits.argmax(1) first), "
                            f"got dtype {labels.dtype}")
    if pred.shape != target.shape:
        raise ValueError(f"pred must have the shape of target {list(target.shape)}, got {list(pred.shape)}")
    return pred, target


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int | None = None) -> Tensor:
    """Pixel counts ``M[t, p]``: pixels of true class ``t`` labelled ``p``, summed over every image given.

    Args:
        pred: integer labels, any shape (e.g. ``[N, H, W]``), values in ``[0, num_classes)``.
        target: integer labels, the shape of ``pred``; pixels equal to ``ignore_index`` are not counted.
        num_classes: number of classes.
        ignore_index: a target label to leave out (VOC marks object borders with 255).

    Returns:
        int64 Tensor[num_classes, num_classes] on the CPU.
    """
    pred, target = _check_labels(pred, target, num_classes)
    pred, target = pred.reshape(-1).long().cpu(), target.reshape(-1).long().cpu()
    if ignore_index is not None:
        kept = target != ignore_index
        pred, target = pred[kept], target[kept]
    for name, labels in (("pred", pred), ("target", target)):
        if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"{name} must hold labels in [0, {num_classes}), got values from "
                             f"{int(labels.min())} to {int(labels.max())}")
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes**2)
    return counts.reshape(num_classes, num_classes)


def per_class_iou(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int | None = None) -> Tensor:
    """IoU of every class over all the pixels given: ``IoU_c = TP_c / (TP_c + FP_c + FN_c)``.

    Counts are summed over the whole set before dividing (PASCAL VOC's segmentation measure), so a
    small object in one image weighs as much as its pixels, not as much as a whole image.

    Returns:
        float64 Tensor[num_classes]; NaN for a class in neither ``pred`` nor ``target``.
    """
    matrix = confusion_matrix(pred, target, num_classes, ignore_index).double()
    true_positive = matrix.diagonal()
    union = matrix.sum(0) + matrix.sum(1) - true_positive   # TP + FP + FN
    return torch.where(union > 0, true_positive / union.clamp(min=1), torch.full_like(union, float("nan")))


def mean_iou(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int | None = None) -> Tensor:
    """Mean IoU over the classes that occur in ``pred`` or ``target`` (background included).

        mIoU = 1/|C| Σ_{c ∈ C} TP_c / (TP_c + FP_c + FN_c)

    Args:
        pred, target: integer labels of the same shape, e.g. ``[N, H, W]``.
        num_classes: number of classes.
        ignore_index: a target label whose pixels are not counted.

    Returns:
        float64 scalar tensor; NaN when no pixel is counted.
    """
    return per_class_iou(pred, target, num_classes, ignore_index).nanmean()


@torch.no_grad()
def predict(model: nn.Module, images: Tensor, batch_size: int = 64) -> Tensor:
    """The labels ``argmax_c logits`` a model gives ``images`` ``[N, C, H, W]``, in eval mode, batch by batch.

    Returns:
        int64 Tensor[N, H, W] on the CPU.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    labels = [model(images[i:i + batch_size].to(device)).argmax(1).cpu() for i in range(0, len(images), batch_size)]
    model.train(was_training)
    return torch.cat(labels) if labels else torch.zeros((0, *images.shape[-2:]), dtype=torch.long)


def segmentation_scores(model: nn.Module, images: Tensor, masks: Tensor, num_classes: int,
                        batch_size: int = 64) -> dict[str, float]:
    """``{"miou": ..., "pixel_accuracy": ...}`` of ``model`` on ``images`` ``[N, C, H, W]`` against ``masks`` ``[N, H, W]``."""
    pred = predict(model, images, batch_size)
    return {"miou": float(mean_iou(pred, masks, num_classes)),
            "pixel_accuracy": float((pred == masks.cpu()).double().mean())}


# --- checkerboard artefacts -----------------------------------------------------------------------

def checkerboard_energy(x: Tensor, stride: int = 2) -> Tensor:
    """The share of an image's varying energy that repeats with period ``stride``: the checkerboard measure.

    With ``X = FFT2(x - mean(x))`` over the last two axes (``H`` x ``W``),

        E = Σ_{(u, v) ∈ S} |X(u, v)|² / Σ_{u, v} |X(u, v)|²,    S = {(a H / s, b W / s) : 0 <= a, b < s}

    the frequencies ``2π a / s``, ``2π b / s`` (for ``s = 2``: ``(π, 0)``, ``(0, π)`` and ``(π, π)``).
    By Parseval the numerator is the energy of ``x``'s ``stride``-periodic part, the pattern that
    averages ``x`` over every ``stride`` x ``stride`` phase: 1 for a pure checkerboard or a pattern of
    period ``stride``, about ``s² / (H W)`` for white noise, 0 for a constant (defined so, though 0/0).

    Args:
        x: float Tensor[..., H, W], ``H`` and ``W`` divisible by ``stride``.
        stride: the period looked for, the upsampling stride (>= 2).

    Returns:
        float Tensor[...] in [0, 1], one value per image (channel).
    """
    x = check_tensor(x, "x")
    if not isinstance(stride, int) or isinstance(stride, bool) or stride < 2:
        raise ValueError(f"stride must be an integer >= 2, got {stride!r}")
    if x.dim() < 2 or x.shape[-1] % stride or x.shape[-2] % stride or x.shape[-1] == 0 or x.shape[-2] == 0:
        raise ValueError(f"x must be a Tensor[..., H, W] with H and W positive multiples of stride={stride}, "
                         f"got shape {list(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    height, width = x.shape[-2:]
    varying = x - x.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(varying).abs().square()                                     # [..., H, W]
    rows = torch.arange(0, height, height // stride, device=x.device)
    cols = torch.arange(0, width, width // stride, device=x.device)
    periodic = power[..., rows[:, None], cols[None, :]].sum(dim=(-2, -1))              # [...]
    total = power.sum(dim=(-2, -1))
    # a constant leaves rounding noise after removing its mean: count that as no variation at all
    floor = (16 * torch.finfo(x.dtype).eps * x.abs().amax(dim=(-2, -1))) ** 2 * (height * width) ** 2
    return torch.where(total > floor, periodic / total.clamp(min=torch.finfo(x.dtype).tiny), torch.zeros_like(total))


# --- activation memory ----------------------------------------------------------------------------

def activation_bytes(channels: int, height: int, width: int, batch: int = 1, element_size: int = 4) -> int:
    """Bytes of one layer's output counted the lecture's way: ``batch x channels x height x width x element_size``.

    200 channels of 400 x 400 in float32: 200 * 400 * 400 * 4 = 128,000,000 bytes, which is 128 MB
    (10^6) or 122 MiB (2^20); the lecture's "122MB" is the latter.
    """
    for name, value in (("channels", channels), ("height", height), ("width", width), ("batch", batch),
                        ("element_size", element_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return batch * channels * height * width * element_size


@dataclass(frozen=True)
class ActivationRecord:
    """One leaf module's output in a forward pass.

    Attributes:
        name: the module's qualified name in the model (``"encoder.blocks.0.0"``).
        kind: the module's class name.
        shape: the output's shape.
        bytes: ``numel x element_size``, the lecture's count.
        storage_bytes: bytes of the storage the output lives in (``untyped_storage().nbytes()``);
            a view or an in-place op shares its input's storage, so these may repeat.
        data_ptr: the storage's address, to tell shared storages apart (every output is held until the
            pass ends, so no address is reused by a later one).
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    bytes: int
    storage_bytes: int
    data_ptr: int


def record_activations(model: nn.Module, *inputs: Tensor) -> list[ActivationRecord]:
    """Run ``model(*inputs)`` once with a forward hook on every leaf module and record each output's size.

    Gradients stay enabled, as in training (that is when activations must be kept for the backward
    pass). The concatenations of a U-Net are not modules, so they do not appear.

    Returns:
        one :class:`ActivationRecord` per leaf-module call, in the order they ran.
    """
    records: list[ActivationRecord] = []
    alive: list[Tensor] = []        # held until the end, so that no address is freed and reused meanwhile
    names = {module: name for name, module in model.named_modules()}

    def hook(module: nn.Module, _inputs: tuple, output: object) -> None:
        if isinstance(output, Tensor):
            alive.append(output)
            storage = output.untyped_storage()
            records.append(ActivationRecord(names[module], type(module).__name__, tuple(output.shape),
                                            output.numel() * output.element_size(), storage.nbytes(),
                                            storage.data_ptr()))

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return records


def cuda_peak_memory(model: nn.Module, *inputs: Tensor, backward: bool = True) -> int:
    """Peak bytes the CUDA allocator held beyond what was allocated before a forward (and backward) pass.

    Args:
        model, inputs: on a CUDA device.
        backward: also backpropagate ``output.sum()``, as a training step would.

    Returns:
        ``torch.cuda.max_memory_allocated`` during the pass minus the bytes allocated before it.
    """
    if not inputs or inputs[0].device.type != "cuda":
        raise ValueError("cuda_peak_memory needs inputs on a CUDA device")
    device = inputs[0].device
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    output = model(*inputs)
    if backward:
        output.sum().backward()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before
