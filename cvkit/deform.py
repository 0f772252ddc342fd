"""Deformable convolution v1/v2 and deformable RoI pooling (Dai et al., ICCV 2017; Zhu et al., CVPR 2019).

A regular 3 x 3 convolution reads its input on a fixed grid R = {(-1, -1), (-1, 0), ..., (1, 1)} around
each output position p0. Deformable convolution adds a learned offset Δp_k to every tap of that grid and,
in v2, a learned modulation scalar Δm_k in [0, 1] (Dai et al. 2017, eq. 2; Zhu et al. 2019, eq. 1):

    y(p0) = Σ_k  w_k · Δm_k · x(p0 + p_k + Δp_k)

The sampling point is fractional, so x is read by bilinear interpolation (Dai et al., eq. 3-4): the four
pixels around the point, each weighted by (1 - |Δy|)(1 - |Δx|). As in torchvision, a corner that falls
outside the image counts as 0, and a point outside (-1, H) x (-1, W) reads 0 altogether.

Layout (torchvision.ops.deform_conv2d): for offset group g and kernel tap (i, j) of a kh x kw kernel,

    offset[:, 2 * (g * kh * kw + i * kw + j) + 0]   is Δy,    ... + 1  is Δx,
    mask[:, g * kh * kw + i * kw + j]                is Δm,

and input channel c belongs to offset group c // (C_in / offset_groups). Weight groups split the channels
as in ``torch.nn.functional.conv2d``.

``deform_conv2d_reference`` computes y(p0) with loops over batch, output pixel and tap, reading the
input with the scalar ``bilinear``. ``deform_conv2d``, the one to call, builds the sampled columns
[N, H_out W_out, k, C] with one gather of the four corners, multiplies them by the weight matrix, and has a
hand-written backward (the transpose gather is one ``index_add_``). Both equal torchvision forward and
backward, for input, offset, weight, bias and mask.

Deformable RoI pooling (Dai et al. 2017, eq. 5-6) shifts every bin (i, j) of a RoI's pooling grid by

    Δp_ij = γ · Δp̂_ij ∘ (w, h),     γ = 0.1,

where Δp̂ are *normalised* offsets that a fully connected layer predicts from the plain RoI-pooled
features and (w, h) is the RoI's size, so that the learned offsets do not depend on the RoI's scale.
The bins are averaged like RoIAlign's (``cvkit.roi``), so with zero offsets it *is* RoIAlign.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from cvkit._checks import check_tensor

__all__ = ["bilinear", "deform_conv2d", "deform_conv2d_reference", "sampling_locations", "DeformConv2d",
           "deform_roi_pool", "deform_roi_pool_reference", "DeformRoIPool"]


# --------------------------------------------------------------------------- argument checks

def _check_deform_args(input: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None,
                       stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int],
                       mask: Tensor | None) -> tuple[int, int, int, int]:
    """Check shapes as torchvision does; return (weight groups, offset groups, H_out, W_out)."""
    for value, name in ((input, "input"), (offset, "offset"), (weight, "weight")):
        check_tensor(value, name)
        if value.dim() != 4:
            raise ValueError(f"{name} must be a 4-d tensor [N, C, H, W], got shape {list(value.shape)}")
    if not input.is_floating_point():
        raise TypeError(f"input must be a floating-point tensor, got dtype {input.dtype}")
    for value, name in ((offset, "offset"), (weight, "weight"), (bias, "bias"), (mask, "mask")):
        if value is None:
            continue
        check_tensor(value, name)
        if value.dtype != input.dtype:
            raise TypeError(f"{name} must have the dtype of input ({input.dtype}), got {value.dtype}")
        if value.device != input.device:
            raise ValueError(f"{name} must be on the device of input ({input.device}), got {value.device}")
    for pair, name, low in ((stride, "stride", 1), (padding, "padding", 0), (dilation, "dilation", 1)):
        if len(pair) != 2 or any(not isinstance(v, int) or isinstance(v, bool) or v < low for v in pair):
            raise ValueError(f"{name} must be an int or a pair of ints >= {low}, got {pair}")
    batch, channels, height, width = input.shape
    out_channels, channels_per_group, kh, kw = weight.shape
    if kh == 0 or kw == 0 or channels_per_group == 0 or channels % channels_per_group:
        raise ValueError(f"weight must have shape [C_out, C_in / groups, kh, kw] with C_in = {channels} a multiple "
                         f"of its dim 1, got {list(weight.shape)}")
    groups = channels // channels_per_group
    if out_channels % groups:
        raise ValueError(f"weight's dim 0 (C_out = {out_channels}) must be a multiple of groups = {groups}")
    if offset.shape[1] == 0 or offset.shape[1] % (2 * kh * kw):
        raise ValueError(f"offset must have 2 * offset_groups * kh * kw channels (a multiple of {2 * kh * kw}), "
                         f"got {offset.shape[1]}")
    offset_groups = offset.shape[1] // (2 * kh * kw)
    if channels % offset_groups:
        raise ValueError(f"input's channels ({channels}) must be a multiple of offset_groups = {offset_groups}")
    out_h = (height + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    out_w = (width + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"the output would be {out_h} x {out_w}: input {height} x {width} is too small for a "
                         f"{kh} x {kw} kernel with padding {padding} and dilation {dilation}")
    if offset.shape[0] != batch or tuple(offset.shape[2:]) != (out_h, out_w):
        raise ValueError(f"offset must have shape [{batch}, {offset.shape[1]}, {out_h}, {out_w}] (the output's "
                         f"batch and size), got {list(offset.shape)}")
    if mask is not None and tuple(mask.shape) != (batch, offset_groups * kh * kw, out_h, out_w):
        raise ValueError(f"mask must have shape {[batch, offset_groups * kh * kw, out_h, out_w]} "
                         f"(offset_groups * kh * kw channels), got {list(mask.shape)}")
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ValueError(f"bias must have shape [{out_channels}], got {list(bias.shape)}")
    return groups, offset_groups, out_h, out_w


# --------------------------------------------------------------------------- the reference: loops

def bilinear(image: Tensor, y: Tensor | float, x: Tensor | float) -> Tensor:
    """Read ``image`` at the fractional point (y, x) with deformable convolution's bilinear rule.

        x(p) = Σ_q max(0, 1 - |q_y - p_y|) · max(0, 1 - |q_x - p_x|) · x(q)      (Dai et al. 2017, eq. 3-4)

    over the four integer corners q around p; a corner outside the image counts as 0, so a point outside
    (-1, H) x (-1, W) reads 0 (as torchvision's ``deform_conv2d``). On the line y = -1 the value is 0 but
    the derivative in y is not (row 0 comes in with weight y + 1); torchvision's backward keeps it too.

    Args:
        image: ``[..., H, W]``; leading dimensions (channels) are read at the same point.
        y, x: the point, scalars (0-d tensors keep the gradient).

    Returns:
        ``[...]``, the interpolated value(s).
    """
    height, width = image.shape[-2:]
    y, x = torch.as_tensor(y, dtype=image.dtype), torch.as_tensor(x, dtype=image.dtype)
    y0, x0 = math.floor(float(y.detach())), math.floor(float(x.detach()))
    ly, lx = y - y0, x - x0                                   # distances to the top-left corner
    value = image.new_zeros(image.shape[:-2]) + 0 * (ly + lx)
    for qy, wy in ((y0, 1 - ly), (y0 + 1, ly)):
        for qx, wx in ((x0, 1 - lx), (x0 + 1, lx)):
            if 0 <= qy < height and 0 <= qx < width:
                value = value + wy * wx * image[..., qy, qx]
    return value


def deform_conv2d_reference(input: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None = None,
                            stride: int | tuple[int, int] = (1, 1), padding: int | tuple[int, int] = (0, 0),
                            dilation: int | tuple[int, int] = (1, 1), mask: Tensor | None = None) -> Tensor:
    """Deformable convolution as the paper writes it: a loop over output pixels and kernel taps.

    Slow (Python loops); differentiable by autograd. Same arguments and result as :func:`deform_conv2d`.
    """
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    groups, offset_groups, out_h, out_w = _check_deform_args(input, offset, weight, bias, stride, padding,
                                                             dilation, mask)
    batch, channels = input.shape[:2]
    out_channels, channels_per_group, kh, kw = weight.shape
    per_offset_group = channels // offset_groups
    per_out_group = out_channels // groups
    output = input.new_zeros(batch, out_channels, out_h, out_w)
    rows = []
    for b in range(batch):
        for oy in range(out_h):
            for ox in range(out_w):
                # sampled[c, i, j] = Δm · x_c(p0 + p_ij + Δp_ij) with the offset of c's offset group
                taps = []
                for g in range(offset_groups):
                    image = input[b, g * per_offset_group:(g + 1) * per_offset_group]
                    for i in range(kh):
                        for j in range(kw):
                            k = g * kh * kw + i * kw + j
                            y = oy * stride[0] - padding[0] + i * dilation[0] + offset[b, 2 * k, oy, ox]
                            x = ox * stride[1] - padding[1] + j * dilation[1] + offset[b, 2 * k + 1, oy, ox]
                            value = bilinear(image, y, x)
                            taps.append(value if mask is None else value * mask[b, k, oy, ox])
                sampled = torch.stack(taps).reshape(offset_groups, kh * kw, per_offset_group)
                sampled = sampled.transpose(1, 2).reshape(channels, kh, kw)     # [C, kh, kw]
                pixel = torch.cat([
                    (weight[o * per_out_group:(o + 1) * per_out_group]
                     * sampled[o * channels_per_group:(o + 1) * channels_per_group]).sum((1, 2, 3))
                    for o in range(groups)])                                     # [C_out]
                rows.append(pixel)
    if rows:
        output = torch.stack(rows, 1).reshape(out_channels, batch, out_h, out_w).transpose(0, 1)
    if bias is not None:
        output = output + bias[:, None, None]
    return output


# --------------------------------------------------------------------------- the fast version

def sampling_locations(offset: Tensor, kernel_size: tuple[int, int], stride: int | tuple[int, int] = 1,
                       padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1) -> tuple[Tensor, Tensor]:
    """Where each kernel tap reads the input: p0 + p_k + Δp_k.

    Args:
        offset: ``[N, 2 * G * kh * kw, H_out, W_out]`` in torchvision's (Δy, Δx) layout.
        kernel_size: ``(kh, kw)``.

    Returns:
        ``(y, x)``, each ``[N, G, kh * kw, H_out, W_out]`` in input pixel coordinates.
    """
    (kh, kw), stride, padding, dilation = _pair(kernel_size), _pair(stride), _pair(padding), _pair(dilation)
    batch, _, out_h, out_w = offset.shape
    delta = offset.reshape(batch, offset.shape[1] // (2 * kh * kw), kh * kw, 2, out_h, out_w)   # [N, G, k, (Δy, Δx), ...]
    grid_y = (torch.arange(out_h, device=offset.device, dtype=offset.dtype) * stride[0] - padding[0])[:, None]
    grid_x = (torch.arange(out_w, device=offset.device, dtype=offset.dtype) * stride[1] - padding[1])[None, :]
    tap_y = (torch.arange(kh, device=offset.device, dtype=offset.dtype) * dilation[0]).repeat_interleave(kw)
    tap_x = (torch.arange(kw, device=offset.device, dtype=offset.dtype) * dilation[1]).repeat(kh)
    y = grid_y + tap_y[:, None, None] + delta[:, :, :, 0]                     # [N, G, k, H_out, W_out]
    x = grid_x + tap_x[:, None, None] + delta[:, :, :, 1]
    return y, x


def _corners(y: Tensor, x: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """The four corners of every sampling point: flat pixel indices and the bilinear factors.

    Returns ``index [..., 4]`` into an image flattened to ``H * W + 1`` rows (row ``H * W`` is a zero row that
    stands for every corner outside the image; a point outside (-1, H) x (-1, W) has all four there),
    ``weight [..., 4]`` the bilinear weights (0 for those corners), differentiable in y and x.
    """
    y0, x0 = y.floor(), x.floor()
    ly, lx = y - y0, x - x0
    hy, hx = 1 - ly, 1 - lx
    y0i, x0i = y0.long(), x0.long()
    index, valid = [], []
    for dy in (0, 1):
        for dx in (0, 1):
            qy, qx = y0i + dy, x0i + dx
            ok = (qy >= 0) & (qy < height) & (qx >= 0) & (qx < width)
            index.append(torch.where(ok, qy * width + qx, height * width))
            valid.append(ok)
    weight = torch.stack((hy * hx, hy * lx, ly * hx, ly * lx), -1) * torch.stack(valid, -1)
    return torch.stack(index, -1), weight


class _WeightedRows(torch.autograd.Function):
    """``out[m] = Σ_c weight[m, c] · rows[index[m, c]]``: the bilinear read of many points at once.

    Forward is one ``embedding_bag`` (a fused gather and weighted sum). Backward: the gradient for ``rows``
    scatters ``weight · grad`` back onto the corners, computed as the transposed ``embedding_bag`` (corners
    sorted by the row they read); the gradient for ``weight`` is ``<grad[m], rows[index[m, c]]>``.
    """

    @staticmethod
    def forward(ctx, rows: Tensor, index: Tensor, weight: Tensor) -> Tensor:
        ctx.save_for_backward(rows, index, weight)
        return F.embedding_bag(index, rows, mode="sum", per_sample_weights=weight)

    @staticmethod
    def backward(ctx, grad: Tensor):
        rows, index, weight = ctx.saved_tensors
        grad_rows = grad_weight = None
        if ctx.needs_input_grad[0]:
            flat = index.reshape(-1)
            order = flat.argsort()                                              # corners grouped by row
            counts = torch.bincount(flat, minlength=rows.shape[0])
            starts = counts.cumsum(0) - counts
            grad_rows = F.embedding_bag(order // index.shape[1], grad, starts, mode="sum",
                                        per_sample_weights=weight.reshape(-1)[order])
        if ctx.needs_input_grad[2]:
            with torch.enable_grad():
                probe = weight.detach().requires_grad_()
                out = F.embedding_bag(index, rows.detach(), mode="sum", per_sample_weights=probe)
                grad_weight, = torch.autograd.grad(out, probe, grad)
        return grad_rows, None, grad_weight


def _sample_taps(input: Tensor, offset: Tensor, mask: Tensor | None, kernel_size: tuple[int, int],
                 stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int]) -> Tensor:
    """Every kernel tap's bilinear read of the input, times its modulation: ``[N, H_out, W_out, k, C]``.

    This is the im2col matrix of deformable convolution: row (n, p0), columns (tap k, channel c).
    The image is made channels-last with a zero row appended per image and offset group
    (``[N*G*(H*W + 1), C/G]``), so that every corner, the outside ones included (they read the zero row),
    is a row index, and the read is one fused gather-and-weight (:class:`_WeightedRows`).
    """
    batch, channels, height, width = input.shape
    taps = kernel_size[0] * kernel_size[1]
    offset_groups = offset.shape[1] // (2 * taps)
    y, x = sampling_locations(offset, kernel_size, stride, padding, dilation)   # [N, G, k, H_out, W_out]
    y, x = y.permute(0, 3, 4, 2, 1), x.permute(0, 3, 4, 2, 1)                   # [N, H_out, W_out, k, G]
    index, corner_weight = _corners(y, x, height, width)                        # [N, H_out, W_out, k, G, 4]
    if mask is not None:
        corner_weight = corner_weight * mask.reshape(batch, offset_groups, taps, *y.shape[1:3]) \
            .permute(0, 3, 4, 2, 1)[..., None]
    image = torch.arange(batch, device=input.device).reshape(-1, 1, 1, 1, 1, 1) * offset_groups \
        + torch.arange(offset_groups, device=input.device).reshape(-1, 1)      # n * G + g
    index = index + image * (height * width + 1)
    rows = input.reshape(batch * offset_groups, channels // offset_groups, height * width).transpose(1, 2)
    rows = F.pad(rows, (0, 0, 0, 1)).reshape(-1, channels // offset_groups)     # [N*G*(H*W + 1), C/G]
    sampled = _WeightedRows.apply(rows, index.reshape(-1, 4), corner_weight.reshape(-1, 4))
    return sampled.reshape(*y.shape[:4], channels)                              # (g, c') flattens to c


def deform_conv2d(input: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None = None,
                  stride: int | tuple[int, int] = (1, 1), padding: int | tuple[int, int] = (0, 0),
                  dilation: int | tuple[int, int] = (1, 1), mask: Tensor | None = None) -> Tensor:
    """Deformable convolution v1 (``mask=None``) or v2 (modulated): torchvision.ops.deform_conv2d's signature.

        y(p0) = Σ_k w_k · Δm_k · x(p0 + p_k + Δp_k)        (Dai et al. 2017, eq. 2; Zhu et al. 2019, eq. 1)

    Args:
        input: ``[N, C_in, H, W]``.
        offset: ``[N, 2 * offset_groups * kh * kw, H_out, W_out]``, channel ``2 * (g * kh * kw + i * kw + j)``
            holding Δy and the next one Δx of tap (i, j) in offset group g.
        weight: ``[C_out, C_in / groups, kh, kw]``.
        bias: ``[C_out]`` or None.
        stride, padding, dilation: ints or (vertical, horizontal) pairs, as in ``conv2d``.
        mask: ``[N, offset_groups * kh * kw, H_out, W_out]`` modulation scalars Δm (used as given, no sigmoid),
            or None for v1.

    Returns:
        ``[N, C_out, H_out, W_out]``, with ``H_out = (H + 2 padding - dilation (kh - 1) - 1) // stride + 1``.
    """
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    groups, offset_groups, out_h, out_w = _check_deform_args(input, offset, weight, bias, stride, padding,
                                                             dilation, mask)
    batch, out_channels, (kh, kw) = input.shape[0], weight.shape[0], weight.shape[2:]
    per_group = weight.shape[1]
    sampled = _sample_taps(input, offset, mask, (kh, kw), stride, padding, dilation)    # [N, H_out, W_out, k, C]
    # one matrix product per weight group: [N*L, k*C/groups] @ [k*C/groups, C_out/groups]
    columns = sampled.reshape(batch * out_h * out_w, kh * kw, groups, per_group).permute(2, 0, 1, 3) \
        if groups > 1 else sampled.reshape(1, batch * out_h * out_w, kh * kw * per_group)
    columns = columns.reshape(groups, batch * out_h * out_w, kh * kw * per_group)       # [groups, N*L, k*C/groups]
    weight_matrix = weight.reshape(groups, out_channels // groups, per_group, kh * kw).permute(0, 3, 2, 1) \
        .reshape(groups, kh * kw * per_group, out_channels // groups)                  # rows (tap, channel)
    output = torch.bmm(columns, weight_matrix) if groups > 1 else columns[0] @ weight_matrix[0]
    output = output.reshape(groups, batch, out_h * out_w, out_channels // groups).permute(1, 0, 3, 2) \
        .reshape(batch, out_channels, out_h, out_w)
    return output if bias is None else output + bias[:, None, None]


class DeformConv2d(nn.Module):
    """A deformable convolution layer with its own offset branch (and modulation branch for v2).

    The offsets come from a regular convolution over the same input, with the layer's kernel size, stride,
    padding and dilation, so one offset pair per tap and output pixel (Dai et al. 2017, Fig. 2):
    ``2 * offset_groups * kh * kw`` channels. v2 adds ``offset_groups * kh * kw`` modulation channels
    through a sigmoid (Zhu et al. 2019, sec. 3.1). Both branches start at zero, as in the papers: the
    offsets are 0, so the layer begins as a regular convolution (v2: with every tap weighted by
    sigmoid(0) = 0.5), and learns to move its taps from there.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias: as ``nn.Conv2d``.
        offset_groups: channel groups that share one set of offsets.
        modulated: v2 (a learned mask Δm per tap) if True, v1 otherwise.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 dilation: int | tuple[int, int] = 1, groups: int = 1, offset_groups: int = 1,
                 bias: bool = True, modulated: bool = False):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels ({in_channels}) and out_channels ({out_channels}) must be multiples "
                             f"of groups = {groups}")
        if in_channels % offset_groups:
            raise ValueError(f"in_channels ({in_channels}) must be a multiple of offset_groups = {offset_groups}")
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding, self.dilation = _pair(padding), _pair(dilation)
        self.groups, self.offset_groups, self.modulated = groups, offset_groups, modulated
        conv = nn.Conv2d(in_channels, out_channels, self.kernel_size, groups=groups, bias=bias)
        self.weight, self.bias = conv.weight, conv.bias                         # nn.Conv2d's initialisation
        taps = self.kernel_size[0] * self.kernel_size[1]
        branch = dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding, dilation=self.dilation)
        self.offset_conv = nn.Conv2d(in_channels, 2 * offset_groups * taps, **branch)
        self.mask_conv = nn.Conv2d(in_channels, offset_groups * taps, **branch) if modulated else None
        for layer in (self.offset_conv, self.mask_conv):
            if layer is not None:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def offsets_and_mask(self, input: Tensor) -> tuple[Tensor, Tensor | None]:
        """The offsets ``[N, 2 G kh kw, H_out, W_out]`` and mask (v2) or None that the layer uses on ``input``."""
        offset = self.offset_conv(input)
        mask = torch.sigmoid(self.mask_conv(input)) if self.mask_conv is not None else None
        return offset, mask

    def forward(self, input: Tensor) -> Tensor:
        offset, mask = self.offsets_and_mask(input)
        return deform_conv2d(input, offset, self.weight, self.bias, self.stride, self.padding, self.dilation, mask)

    def extra_repr(self) -> str:
        return (f"{self.weight.shape[1] * self.groups}, {self.weight.shape[0]}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
                f"offset_groups={self.offset_groups}, modulated={self.modulated}")


# --------------------------------------------------------------------------- deformable RoI pooling

def _check_roi_offset(offset: Tensor | None, rois: Tensor, pooled_h: int, pooled_w: int, input: Tensor) -> None:
    if offset is None:
        return
    check_tensor(offset, "offset")
    if tuple(offset.shape) != (rois.shape[0], 2, pooled_h, pooled_w):
        raise ValueError(f"offset must have shape [{rois.shape[0]}, 2, {pooled_h}, {pooled_w}] (one normalised "
                         f"(Δx, Δy) per RoI and bin), got {list(offset.shape)}")
    if offset.dtype != input.dtype or offset.device != input.device:
        raise TypeError(f"offset must have the dtype and device of input ({input.dtype}, {input.device}), "
                        f"got {offset.dtype}, {offset.device}")


def deform_roi_pool(input: Tensor, boxes, offset: Tensor | None, output_size: int | tuple[int, int],
                    spatial_scale: float = 1.0, sampling_ratio: int = -1, aligned: bool = True,
                    gamma: float = 0.1) -> Tensor:
    """Deformable RoI pooling (Dai et al. 2017, eq. 5-6): RoIAlign whose bins are shifted by learned offsets.

        y(i, j) = 1 / n_ij · Σ_{p in bin(i, j)} x(p0 + p + Δp_ij),     Δp_ij = γ · Δp̂_ij ∘ (w, h)

    with (w, h) the RoI's size on the feature map, γ = 0.1 (the paper's value), and x read by RoIAlign's
    bilinear rule (``cvkit.roi.bilinear_interpolate``) at a regular grid of points in each bin.
    With ``offset=None`` (or zeros) this is exactly ``roi_align``. Layout as mmcv's ``deform_roi_pool``:
    channel 0 of ``offset`` is the normalised Δx̂, channel 1 the normalised Δŷ.

    Args:
        input: ``[N, C, H, W]`` feature maps.
        boxes: ``Tensor[K, 5]`` ``(batch_index, x1, y1, x2, y2)`` or a list of ``Tensor[L, 4]``, image coordinates.
        offset: ``[K, 2, H_out, W_out]`` normalised offsets (differentiable), or None.
        output_size, spatial_scale, sampling_ratio, aligned: as :func:`cvkit.roi.roi_align`.
        gamma: the scale of the normalised offsets (γ).

    Returns:
        ``[K, C, H_out, W_out]``, differentiable with respect to ``input`` and ``offset``.
    """
    from cvkit.roi import _align_geometry, _check_roi_args, _check_sampling, _feature_rows, _linear_weights

    rois, pooled_h, pooled_w = _check_roi_args(input, boxes, output_size, spatial_scale)
    _check_sampling(sampling_ratio, aligned)
    _check_roi_offset(offset, rois, pooled_h, pooled_w, input)
    _, channels, height, width = input.shape
    count = rois.shape[0]
    if count == 0 or channels == 0 or height * width == 0:
        zero = 0 * input.sum() + (0 * offset.sum() if offset is not None else 0)
        return input.new_zeros(count, channels, pooled_h, pooled_w) + zero
    start_y, start_x, bin_h, bin_w, grid_h, grid_w = _align_geometry(rois, pooled_h, pooled_w, spatial_scale,
                                                                     sampling_ratio, aligned)
    if offset is not None:   # Δp_ij = γ Δp̂_ij ∘ (w, h), shifting the whole bin (i, j)
        start_x = start_x[:, None, None] + gamma * (bin_w * pooled_w)[:, None, None] * offset[:, 0]   # [K, Ho, Wo]
        start_y = start_y[:, None, None] + gamma * (bin_h * pooled_h)[:, None, None] * offset[:, 1]
    else:
        start_x = start_x[:, None, None].expand(count, pooled_h, pooled_w)
        start_y = start_y[:, None, None].expand(count, pooled_h, pooled_w)
    max_gh, max_gw = max(int(grid_h.max()), 1), max(int(grid_w.max()), 1)
    dtype, device = input.dtype, input.device
    # sampling points in RoIAlign's arithmetic: start + i * bin + (g + 0.5) * bin / grid       [K, Ho, Wo, Gh, Gw]
    i = torch.arange(pooled_h, dtype=dtype, device=device)[None, :, None, None, None]
    j = torch.arange(pooled_w, dtype=dtype, device=device)[None, None, :, None, None]
    gy = torch.arange(max_gh, dtype=dtype, device=device)[None, None, None, :, None]
    gx = torch.arange(max_gw, dtype=dtype, device=device)[None, None, None, None, :]
    per_roi = lambda t: t[:, None, None, None, None]                                            # noqa: E731
    y = (start_y[..., None, None] + i * per_roi(bin_h)) + (gy + 0.5) * per_roi(bin_h) / per_roi(grid_h.clamp(min=1).to(dtype))
    x = (start_x[..., None, None] + j * per_roi(bin_w)) + (gx + 0.5) * per_roi(bin_w) / per_roi(grid_w.clamp(min=1).to(dtype))
    y, x = torch.broadcast_tensors(y, x)
    y0, y1, hy, ly = _linear_weights(y, height)
    x0, x1, hx, lx = _linear_weights(x, width)
    used = (gy < per_roi(grid_h)) & (gx < per_roi(grid_w))                                      # padding points weigh 0
    weight = torch.stack((hy * hx, hy * lx, ly * hx, ly * lx), -1) * used[..., None] \
        / per_roi((grid_h * grid_w).clamp(min=1).to(dtype))[..., None]
    base = per_roi(rois[:, 0].long() * (height * width))[..., None]
    index = base + torch.stack((y0 * width + x0, y0 * width + x1, y1 * width + x0, y1 * width + x1), -1)
    features = _feature_rows(input)                                                             # [N*H*W, C]
    pooled = F.embedding_bag(index.reshape(count * pooled_h * pooled_w, -1), features, mode="sum",
                             per_sample_weights=weight.reshape(count * pooled_h * pooled_w, -1))
    return pooled.reshape(count, pooled_h, pooled_w, channels).permute(0, 3, 1, 2).contiguous()


def deform_roi_pool_reference(input: Tensor, boxes, offset: Tensor | None, output_size: int | tuple[int, int],
                              spatial_scale: float = 1.0, sampling_ratio: int = -1, aligned: bool = True,
                              gamma: float = 0.1) -> Tensor:
    """Deformable RoI pooling as loops over RoIs, bins and sampling points. Slow; same result as
    :func:`deform_roi_pool`."""
    from cvkit.roi import _check_roi_args, _check_sampling, bilinear_interpolate

    rois, pooled_h, pooled_w = _check_roi_args(input, boxes, output_size, spatial_scale)
    _check_sampling(sampling_ratio, aligned)
    _check_roi_offset(offset, rois, pooled_h, pooled_w, input)
    shift = 0.5 if aligned else 0.0
    outputs = []
    for k, roi in enumerate(rois):
        image = input[int(roi[0])]
        x1, y1, x2, y2 = (roi[1:] * spatial_scale - shift).unbind()
        roi_w, roi_h = x2 - x1, y2 - y1
        if not aligned:
            roi_w, roi_h = roi_w.clamp(min=1), roi_h.clamp(min=1)
        bin_h, bin_w = roi_h / pooled_h, roi_w / pooled_w
        grid_h = sampling_ratio if sampling_ratio > 0 else int(torch.ceil(bin_h))
        grid_w = sampling_ratio if sampling_ratio > 0 else int(torch.ceil(bin_w))
        bins = []
        for i in range(pooled_h):
            for j in range(pooled_w):
                dx = gamma * roi_w * offset[k, 0, i, j] if offset is not None else 0.0   # Δp = γ Δp̂ ∘ (w, h)
                dy = gamma * roi_h * offset[k, 1, i, j] if offset is not None else 0.0
                total = image.new_zeros(image.shape[0])
                for iy in range(grid_h):
                    for ix in range(grid_w):
                        y = y1 + dy + i * bin_h + (iy + 0.5) * bin_h / grid_h
                        x = x1 + dx + j * bin_w + (ix + 0.5) * bin_w / grid_w
                        total = total + bilinear_interpolate(image, y, x)
                bins.append(total / max(grid_h * grid_w, 1))
        outputs.append(torch.stack(bins, 1).reshape(-1, pooled_h, pooled_w))
    if not outputs:
        return input.new_zeros(0, input.shape[1], pooled_h, pooled_w)
    return torch.stack(outputs)


class DeformRoIPool(nn.Module):
    """Deformable RoI pooling with its offset branch (Dai et al. 2017, Fig. 3).

    Plain RoI pooling (RoIAlign) of the RoI gives a ``C x H_out x W_out`` feature; fully connected layers
    map it to the normalised offsets Δp̂ ``[K, 2, H_out, W_out]``, and :func:`deform_roi_pool` pools again
    with the bins shifted by γ Δp̂ ∘ (w, h). The last fc layer starts at zero, so the module begins as
    plain RoIAlign pooling and learns the offsets from there.

    Args:
        channels: C, the feature maps' channels.
        output_size, spatial_scale, sampling_ratio, aligned, gamma: as :func:`deform_roi_pool`.
        hidden: width of the hidden fc layer.
    """

    def __init__(self, channels: int, output_size: int | tuple[int, int], spatial_scale: float = 1.0,
                 sampling_ratio: int = -1, aligned: bool = True, gamma: float = 0.1, hidden: int = 256):
        super().__init__()
        self.output_size = _pair(output_size)
        self.spatial_scale, self.sampling_ratio, self.aligned, self.gamma = spatial_scale, sampling_ratio, aligned, gamma
        bins = self.output_size[0] * self.output_size[1]
        self.offset_fc = nn.Sequential(nn.Linear(channels * bins, hidden), nn.ReLU(inplace=True),
                                       nn.Linear(hidden, 2 * bins))
        nn.init.zeros_(self.offset_fc[-1].weight)
        nn.init.zeros_(self.offset_fc[-1].bias)

    def offsets(self, input: Tensor, boxes) -> Tensor:
        """The normalised offsets Δp̂ ``[K, 2, H_out, W_out]`` predicted for ``boxes``."""
        plain = deform_roi_pool(input, boxes, None, self.output_size, self.spatial_scale, self.sampling_ratio,
                                self.aligned, self.gamma)
        return self.offset_fc(plain.flatten(1)).reshape(-1, 2, *self.output_size)

    def forward(self, input: Tensor, boxes) -> Tensor:
        return deform_roi_pool(input, boxes, self.offsets(input, boxes), self.output_size, self.spatial_scale,
                               self.sampling_ratio, self.aligned, self.gamma)
