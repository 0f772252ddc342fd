"""Receptive fields of convolution and pooling stacks: the formula, and the gradient that measures it.

The receptive field of an output pixel is the set of input pixels that can change it. For a chain of
layers with kernel F_j, stride S_j and dilation D_j (Araujo, Norris & Sim 2019, "Computing receptive
fields of convolutional neural networks", Distill, eq. 2 with a dilated kernel D (F - 1) + 1):

    R_k = 1 + sum_{j=1}^{k} (F_j - 1) D_j prod_{i<j} S_i          size, in input pixels
    J_k = prod_{j=1}^{k} S_j                                      jump: input pixels between neighbouring outputs
    c_k = c_{k-1} + ((D_k (F_k - 1)) / 2 - P_k) J_{k-1},  c_0 = 0  centre of output 0's field (input coordinates)

so output ``i`` sees the ``R_k`` pixels centred on input coordinate ``c_k + i J_k``. Three 3 x 3
convolutions see 7 x 7; dilations 1, 2, 4, 8 give 1 + 2 (1 + 2 + 4 + 8) = 31 with four layers, where
undilated 3 x 3 layers give 9: dilation grows the field exponentially without lowering the resolution
(Yu & Koltun 2016).

The field can also be *measured*: backpropagate a unit gradient from one output pixel; the input
pixels that receive a non-zero gradient are its receptive field. With every weight a positive
constant and no non-linearity (:func:`empirical_receptive_field`) no path cancels, so the support is
the full theoretical field, and the gradient's value at a pixel counts the paths that reach it (it
peaks in the middle: the "effective" receptive field of Luo et al. 2016 is smaller than R).

Dilated stacks whose dilations share a common factor, such as 2, 2, 2, only ever reach pixels at
even offsets: the field has holes, the "gridding" artefact. Hybrid dilated convolution (Wang et al.
2018, "Understanding convolution for semantic segmentation", sec. 3.2) picks dilations without a
common factor > 1, such as 1, 2, 3 or 1, 2, 5, whose fields are solid (:func:`coverage`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

IntPair = int | tuple[int, int]

# Layers that act on each pixel (or each pixel's channels) alone: they leave the receptive field as it is.
PASS_THROUGH: tuple[type[nn.Module], ...] = (
    nn.Identity, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus,
    nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm, nn.Dropout, nn.Dropout2d,
)


@dataclass(frozen=True)
class LayerGeometry:
    """What a layer does to space: kernel, stride, padding, dilation as ``(rows, columns)`` pairs."""

    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    name: str = ""

    @property
    def span(self) -> tuple[int, int]:
        """The dilated kernel's extent, ``D (F - 1) + 1``."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))  # type: ignore[return-value]


@dataclass(frozen=True)
class ReceptiveField:
    """The receptive field of a stack's outputs, per axis ``(rows, columns)``.

    Attributes:
        size: ``R``, the side of the field in input pixels.
        jump: ``J``, how many input pixels apart neighbouring outputs' fields are (the effective stride).
        start: ``c``, the centre of output ``(0, 0)``'s field in input pixel coordinates (may be
            negative or fractional: the field of a border output hangs into the padding).
        layers: the field after each layer, ``layers[k]`` for the first ``k + 1`` layers.
    """

    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]
    layers: tuple["ReceptiveField", ...] = ()

    def box(self, row: int, col: int) -> tuple[float, float, float, float]:
        """The field of output ``(row, col)`` as an ``(x1, y1, x2, y2)`` box around its pixels' edges.

        Pixel ``(r, c)`` is centred on ``(x, y) = (c, r)`` (as matplotlib draws an image), so the field's
        first column is ``x1 + 0.5`` and its last ``x2 - 0.5``."""
        cy, cx = self.start[0] + row * self.jump[0], self.start[1] + col * self.jump[1]
        return (cx - self.size[1] / 2, cy - self.size[0] / 2, cx + self.size[1] / 2, cy + self.size[0] / 2)


def _pair(value: object, what: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    raise TypeError(f"{what} must be an int or a pair of ints, got {value!r}")


def _geometry_of_module(module: nn.Module, index: int) -> LayerGeometry | None:
    """The geometry of a conv or pooling module, None for a pass-through layer; errors name the layer."""
    name = f"{index}: {type(module).__name__}"
    if isinstance(module, nn.Conv2d):
        kernel, dilation = _pair(module.kernel_size, "kernel_size"), _pair(module.dilation, "dilation")
        if isinstance(module.padding, str):              # 'valid' or 'same' (stride 1): half the dilated kernel
            padding = (0, 0) if module.padding == "valid" else tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
        else:
            padding = _pair(module.padding, "padding")
        return LayerGeometry(kernel, _pair(module.stride, "stride"), padding, dilation, name)  # type: ignore[arg-type]
    if isinstance(module, nn.MaxPool2d):
        return LayerGeometry(_pair(module.kernel_size, "kernel_size"), _pair(module.stride, "stride"),
                             _pair(module.padding, "padding"), _pair(module.dilation, "dilation"), name)
    if isinstance(module, nn.AvgPool2d):
        return LayerGeometry(_pair(module.kernel_size, "kernel_size"), _pair(module.stride, "stride"),
                             _pair(module.padding, "padding"), (1, 1), name)
    if isinstance(module, PASS_THROUGH):
        return None
    raise TypeError(f"layer {name} ({module}) has no receptive field rule: receptive_field handles Conv2d, "
                    f"MaxPool2d, AvgPool2d and per-pixel layers ({', '.join(t.__name__ for t in PASS_THROUGH)})")


def layer_geometry(layers: nn.Module | Iterable[nn.Module | Sequence[object]]) -> list[LayerGeometry]:
    """The spatial layers of a stack, in order, with pass-through layers dropped.

    Args:
        layers: an ``nn.Sequential`` (nested ones are flattened), a list of modules, or a list of tuples
            ``(kernel, stride, padding, dilation)`` (``padding`` and ``dilation`` may be left out:
            0 and 1), each entry an int or a ``(rows, columns)`` pair.

    Returns:
        One :class:`LayerGeometry` per convolution or pooling layer.
    """
    if isinstance(layers, nn.Module) and not isinstance(layers, nn.Sequential):
        layers = [layers]
    geometries: list[LayerGeometry] = []

    def visit(items: Iterable[object], prefix: str) -> None:
        for i, item in enumerate(items):
            index = f"{prefix}{i}"
            if isinstance(item, nn.Sequential):
                visit(item, f"{index}.")
            elif isinstance(item, nn.Module):
                geometry = _geometry_of_module(item, index)  # type: ignore[arg-type]
                if geometry is not None:
                    geometries.append(geometry)
            elif isinstance(item, (tuple, list)) and 2 <= len(item) <= 4:
                kernel, stride, padding, dilation = (list(item) + [0, 1][len(item) - 2:])[:4]
                geometry = LayerGeometry(_pair(kernel, f"layer {index}'s kernel"), _pair(stride, f"layer {index}'s stride"),
                                         _pair(padding, f"layer {index}'s padding"),
                                         _pair(dilation, f"layer {index}'s dilation"), f"{index}: {tuple(item)}")
                if min(geometry.kernel + geometry.stride + geometry.dilation) < 1 or min(geometry.padding) < 0:
                    raise ValueError(f"layer {index} {tuple(item)}: kernel, stride and dilation must be >= 1 "
                                     f"and padding >= 0")
                geometries.append(geometry)
            else:
                raise TypeError(f"layer {index} must be an nn.Module or a (kernel, stride, padding, dilation) "
                                f"tuple, got {item!r}")

    visit(layers, "")  # type: ignore[arg-type]
    return geometries


def receptive_field(layers: nn.Module | Iterable[nn.Module | Sequence[object]]) -> ReceptiveField:
    """Size, jump and centre offset of the receptive field of a stack of conv and pooling layers.

        R_k = 1 + sum_j (F_j - 1) D_j prod_{i<j} S_i,    J_k = prod_j S_j,
        c_k = c_{k-1} + (D_k (F_k - 1) / 2 - P_k) J_{k-1}

    Args:
        layers: see :func:`layer_geometry` (modules or ``(kernel, stride, padding, dilation)`` tuples).

    Returns:
        A :class:`ReceptiveField`; an empty stack gives the field of the input itself (size 1, jump 1).
    """
    size, jump, start = [1, 1], [1, 1], [0.0, 0.0]
    history = []
    for layer in layer_geometry(layers):
        for a in range(2):
            start[a] += ((layer.span[a] - 1) / 2 - layer.padding[a]) * jump[a]   # before jump grows
            size[a] += (layer.span[a] - 1) * jump[a]                              # (F - 1) D prod_{i<j} S_i
            jump[a] *= layer.stride[a]
        history.append(ReceptiveField((size[0], size[1]), (jump[0], jump[1]), (start[0], start[1])))
    return ReceptiveField((size[0], size[1]), (jump[0], jump[1]), (start[0], start[1]), tuple(history))


# --------------------------------------------------------------------------------------------------
# measured: the gradient of one output with respect to the input


@dataclass(frozen=True)
class EmpiricalReceptiveField:
    """The gradient of one output pixel with respect to the input, and what it covers.

    Attributes:
        gradient: ``Tensor[H, W]`` float64, d output / d input (summed over channels).
        output: ``(row, col)`` of the output pixel the gradient came from.
        output_size: ``(H_out, W_out)`` of the stack's output.
        support: ``Tensor[H, W]`` bool, where the gradient is non-zero.
        bbox: ``(row0, col0, row1, col1)`` of the support, inclusive; None when it is empty.
    """

    gradient: Tensor
    output: tuple[int, int]
    output_size: tuple[int, int]
    support: Tensor
    bbox: tuple[int, int, int, int] | None

    @property
    def size(self) -> tuple[int, int]:
        """The support's extent ``(rows, columns)``: equal to ``R`` when the field lies inside the input."""
        if self.bbox is None:
            return (0, 0)
        return (self.bbox[2] - self.bbox[0] + 1, self.bbox[3] - self.bbox[1] + 1)


def _measure(gradient: Tensor, output: tuple[int, int], output_size: tuple[int, int]) -> EmpiricalReceptiveField:
    support = gradient != 0
    rows, cols = support.any(1).nonzero().flatten(), support.any(0).nonzero().flatten()
    bbox = None if rows.numel() == 0 else (int(rows[0]), int(cols[0]), int(rows[-1]), int(cols[-1]))
    return EmpiricalReceptiveField(gradient, output, output_size, support, bbox)


def empirical_receptive_field(layers: nn.Module | Iterable[nn.Module | Sequence[object]],
                              input_size: IntPair, output: tuple[int, int] | None = None) -> EmpiricalReceptiveField:
    """Measure the receptive field: backpropagate a unit gradient from one output of a linearised stack.

    Every spatial layer becomes a one-channel convolution with the layer's kernel size, stride,
    padding and dilation and all weights 1 (pooling included: max pooling would pass the gradient to one
    pixel only, a sum passes it to all); pass-through layers are dropped. The input pixels with a
    non-zero gradient are the receptive field, and the gradient at a pixel is the number of paths from
    it to the output.

    Args:
        layers: as for :func:`receptive_field`.
        input_size: ``(H, W)`` of the input (an int for a square).
        output: ``(row, col)`` of the output pixel (default: the centre one, ``(H_out // 2, W_out // 2)``).

    Returns:
        An :class:`EmpiricalReceptiveField`.
    """
    height, width = _pair(input_size, "input_size")
    image = torch.zeros(1, 1, height, width, dtype=torch.float64, requires_grad=True)
    features = image
    for layer in layer_geometry(layers):
        ones = torch.ones(1, 1, *layer.kernel, dtype=torch.float64)
        if features.shape[-2] + 2 * layer.padding[0] < layer.span[0] or \
                features.shape[-1] + 2 * layer.padding[1] < layer.span[1]:
            raise ValueError(f"input_size {(height, width)} is too small: layer {layer.name} gets "
                             f"{tuple(features.shape[-2:])} and its kernel spans {layer.span}")
        features = F.conv2d(features, ones, stride=layer.stride, padding=layer.padding, dilation=layer.dilation)
    out_h, out_w = features.shape[-2:]
    row, col = (out_h // 2, out_w // 2) if output is None else output
    if not (0 <= row < out_h and 0 <= col < out_w):
        raise ValueError(f"output must index the {out_h} x {out_w} output, got {output}")
    features[0, 0, row, col].backward()
    return _measure(image.grad[0, 0].detach(), (row, col), (out_h, out_w))


def gradient_receptive_field(model: nn.Module, input: Tensor, output: tuple[int, int] | None = None,
                             channel: int | None = None) -> EmpiricalReceptiveField:
    """The receptive field of a real network on a real input: ``d model(input)[0, channel, row, col] / d input``.

    Unlike :func:`empirical_receptive_field` nothing is linearised: ReLUs that are off and weights that
    cancel can leave parts of the theoretical field without gradient, so the support can be smaller
    than ``R`` (never larger).

    Args:
        model: any differentiable ``[1, C, H, W] -> [1, C', H', W']`` network.
        input: ``Tensor[1, C, H, W]`` or ``[C, H, W]``.
        output: ``(row, col)`` of the output pixel (default: the centre).
        channel: output channel to differentiate (default: the sum over channels).

    Returns:
        An :class:`EmpiricalReceptiveField` whose ``gradient`` is ``|d out / d input|`` summed over input channels.
    """
    image = (input[None] if input.dim() == 3 else input).detach().clone().requires_grad_(True)
    result = model(image)
    if result.dim() != 4:
        raise ValueError(f"model must return [N, C, H, W] feature maps, got shape {list(result.shape)}")
    out_h, out_w = result.shape[-2:]
    row, col = (out_h // 2, out_w // 2) if output is None else output
    picked = result[0, :, row, col] if channel is None else result[0, channel, row, col]
    picked.sum().backward()
    return _measure(image.grad[0].abs().sum(0).double(), (row, col), (out_h, out_w))


def feature_sizes(layers: nn.Module | Iterable[nn.Module | Sequence[object]],
                  input_size: IntPair) -> list[tuple[int, int]]:
    """The ``(H, W)`` of the feature map after each spatial layer: ``floor((H + 2 P - D (F - 1) - 1) / S) + 1``.

    With a channel count this gives the activation memory a stack keeps for its backward pass: a
    stride-1 stack keeps every map at the input's resolution, a strided one shrinks them.
    """
    height, width = _pair(input_size, "input_size")
    sizes = []
    for layer in layer_geometry(layers):
        height = (height + 2 * layer.padding[0] - layer.span[0]) // layer.stride[0] + 1
        width = (width + 2 * layer.padding[1] - layer.span[1]) // layer.stride[1] + 1
        if height < 1 or width < 1:
            raise ValueError(f"input_size {input_size} is too small: layer {layer.name} leaves no output")
        sizes.append((height, width))
    return sizes


# --------------------------------------------------------------------------------------------------
# dilated stacks and gridding


def dilated_stack(dilations: Sequence[int], kernel: int = 3) -> list[tuple[int, int, int, int]]:
    """Stride-1 ``kernel x kernel`` convolutions with the given dilations, padded to keep the resolution.

    Returns ``(kernel, 1, padding, dilation)`` tuples with ``padding = dilation (kernel - 1) / 2``.
    """
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"kernel must be odd and positive (a 'same' padding exists), got {kernel}")
    if not all(isinstance(d, int) and d >= 1 for d in dilations):
        raise ValueError(f"dilations must be positive ints, got {list(dilations)}")
    return [(kernel, 1, d * (kernel - 1) // 2, d) for d in dilations]


def coverage(field: EmpiricalReceptiveField) -> float:
    """The fraction of the support's bounding box that has a non-zero gradient: 1.0 for a solid field,
    less when gridding leaves holes (3 x 3 layers dilated 2, 2, 2 reach only even offsets: 7 x 7 of 13 x 13)."""
    if field.bbox is None:
        return 0.0
    r0, c0, r1, c1 = field.bbox
    return float(field.support[r0: r1 + 1, c0: c1 + 1].double().mean())


def hdc_dilations_ok(dilations: Sequence[int], kernel: int = 3) -> bool:
    """Wang et al.'s HDC rule for a group of dilations: no common factor > 1, and ``M_2 <= kernel`` where

        M_i = max(M_{i+1} - 2 r_i, M_{i+1} - 2 (M_{i+1} - r_i), r_i),   M_n = r_n

    is the largest gap between non-zero inputs that layer ``i`` can still fill. A group that passes
    covers its field without holes."""
    values = list(dilations)
    if len(values) < 2:
        return True
    if math.gcd(*values) > 1:
        return False
    m = values[-1]
    for r in reversed(values[1:-1]):
        m = max(m - 2 * r, m - 2 * (m - r), r)
    return m <= kernel


__all__ = ["LayerGeometry", "ReceptiveField", "EmpiricalReceptiveField", "PASS_THROUGH", "layer_geometry",
           "receptive_field", "feature_sizes", "empirical_receptive_field", "gradient_receptive_field", "dilated_stack", "coverage",
           "hdc_dilations_ok"]
