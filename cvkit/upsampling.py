"""Upsampling: unpooling, bilinear interpolation, and transposed convolution as a scatter-add.

A segmentation network goes down in resolution and comes back up. The ways back up, from the
simplest to the learned one:

    nearest        out[y, x] = in[floor(y / s), floor(x / s)]            (repeat each value s x s times)
    bed of nails   out[s i, s j] = in[i, j], zeros elsewhere
    max unpooling  out[argmax of window (i, j)] = in[i, j], zeros elsewhere  (the argmax max pooling saved)
    bilinear       out = A_H in A_W^T, each row of A_H, A_W holding two weights (1 - l, l)
    transposed     out[s i - p + d u, s j - p + d v] += sum_c in[c, i, j] w[c, o, u, v]

The last is transposed convolution (Long et al. 2015 "backwards strided convolution"; Dumoulin &
Visin 2016, "A guide to convolution arithmetic", sec. 4): every input pixel stamps the kernel, scaled
by its value, onto the output at stride ``s``, and overlapping stamps add up. Written as matrices,
a convolution is ``y = C x`` with ``C`` a sparse (Toeplitz-like) matrix of kernel weights; the
transposed convolution with the same weights is ``x' = C^T y``, which is where the name comes from
and why it is also the backward pass of the convolution. Its output size is

    H_out = (H_in - 1) s - 2 p + d (k - 1) + output_padding + 1.

Everything here matches PyTorch: :func:`nearest_upsample` and :func:`bilinear_upsample` equal
``F.interpolate`` (modes ``'nearest'`` and ``'bilinear'``), :func:`max_unpool2d` equals
``F.max_unpool2d``, :func:`im2col` / :func:`col2im` equal ``F.unfold`` / ``F.fold``, and
:func:`conv_transpose2d` (and :class:`ConvTranspose2d`) equal ``F.conv_transpose2d``
(``nn.ConvTranspose2d``), forward and backward.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from cvkit._checks import check_tensor

IntPair = int | tuple[int, int]


# --------------------------------------------------------------------------------------------------
# argument checks


def _pair(value: object, name: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= ``minimum``, as a pair."""
    values = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    try:
        pair = tuple(values)  # type: ignore[arg-type]
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return pair  # type: ignore[return-value]


def _check_image(input: object, name: str = "input") -> tuple[Tensor, bool]:
    """A float ``[N, C, H, W]`` or unbatched ``[C, H, W]`` tensor, returned as 4-D with a flag 'was unbatched'."""
    input = check_tensor(input, name)
    if input.dim() not in (3, 4):
        raise ValueError(f"{name} must have shape [N, C, H, W] or [C, H, W], got {list(input.shape)}")
    if not input.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {input.dtype}")
    return (input[None], True) if input.dim() == 3 else (input, False)


def _check_like(tensor: Tensor, name: str, like: Tensor) -> None:
    if tensor.dtype != like.dtype:
        raise TypeError(f"{name} must have the dtype of input ({like.dtype}), got {tensor.dtype}")
    if tensor.device != like.device:
        raise ValueError(f"{name} must be on the device of input ({like.device}), got {tensor.device}")


def _output_hw(size: object, scale_factor: object, in_hw: tuple[int, int],
               recompute_scale_factor: bool | None) -> tuple[tuple[int, int], tuple[float | None, float | None]]:
    """Output size and the scales used to map coordinates, as ``F.interpolate`` derives them.

    With ``size`` the coordinate scale is ``in / out``; with ``scale_factor`` it is ``1 / scale_factor``
    unless ``recompute_scale_factor`` asks for ``in / out`` of the rounded size.
    """
    if (size is None) == (scale_factor is None):
        raise ValueError("give exactly one of size and scale_factor")
    if size is not None:
        out = _pair(size, "size", 1)
        return out, (None, None)
    factors = (scale_factor, scale_factor) if isinstance(scale_factor, (int, float)) else tuple(scale_factor)  # type: ignore[arg-type]
    if len(factors) != 2 or not all(isinstance(f, (int, float)) and not isinstance(f, bool) and f > 0 for f in factors):
        raise ValueError(f"scale_factor must be a positive number or a pair of them, got {scale_factor!r}")
    out = (math.floor(in_hw[0] * float(factors[0])), math.floor(in_hw[1] * float(factors[1])))
    if min(out) < 1:
        raise ValueError(f"scale_factor {scale_factor!r} gives an empty output for an input of size {in_hw}")
    if recompute_scale_factor:
        return out, (None, None)
    return out, (float(factors[0]), float(factors[1]))


# --------------------------------------------------------------------------------------------------
# unpooling: nearest, bed of nails, max


def _nearest_index(in_size: int, out_size: int, scale: float | None, device: torch.device) -> Tensor:
    """Source index ``floor(dst * in / out)`` for each output index, in float32 arithmetic as PyTorch's kernel."""
    if out_size == in_size:
        return torch.arange(out_size, device=device)
    ratio = torch.tensor(1.0 / scale if scale is not None and scale > 0 else in_size / out_size, dtype=torch.float32)
    dst = torch.arange(out_size, dtype=torch.float32, device=device)
    return torch.floor(dst * ratio.to(device)).long().clamp_(max=in_size - 1)


def nearest_upsample(input: Tensor, size: IntPair | None = None, scale_factor: float | Sequence[float] | None = None,
                     recompute_scale_factor: bool | None = None) -> Tensor:
    """Nearest-neighbour upsampling: ``out[y, x] = in[floor(y * H_in / H_out), floor(x * W_in / W_out)]``.

    With an integer factor ``s`` every value is repeated in an ``s x s`` block. Equal to
    ``F.interpolate(input, size, scale_factor, mode="nearest", recompute_scale_factor=...)``.

    Args:
        input: ``Tensor[N, C, H, W]`` (or ``[C, H, W]``).
        size: output ``(H_out, W_out)`` (or one int for both); give this or ``scale_factor``.
        scale_factor: a number or a pair; ``H_out = floor(H * scale_factor)``.
        recompute_scale_factor: map coordinates with ``in / out`` instead of ``1 / scale_factor``.

    Returns:
        ``Tensor[N, C, H_out, W_out]`` (unbatched in, unbatched out).
    """
    x, unbatched = _check_image(input)
    (out_h, out_w), (scale_h, scale_w) = _output_hw(size, scale_factor, x.shape[-2:], recompute_scale_factor)
    rows = _nearest_index(x.shape[-2], out_h, scale_h, x.device)              # [H_out]
    cols = _nearest_index(x.shape[-1], out_w, scale_w, x.device)              # [W_out]
    out = x[:, :, rows[:, None], cols[None, :]]                               # [N, C, H_out, W_out]
    return out[0] if unbatched else out


def bed_of_nails_upsample(input: Tensor, scale_factor: IntPair = 2) -> Tensor:
    """Bed-of-nails unpooling: ``out[s_h i, s_w j] = in[i, j]`` and zeros everywhere else.

    Each value goes to the top-left corner of its ``s_h x s_w`` block. It is max unpooling with the
    argmax always in that corner, and a transposed convolution with stride ``s`` and a 1 x 1 kernel of one.

    Args:
        input: ``Tensor[N, C, H, W]`` (or ``[C, H, W]``).
        scale_factor: integer factor ``s`` (or ``(s_h, s_w)``), >= 1.

    Returns:
        ``Tensor[N, C, s_h H, s_w W]``.
    """
    x, unbatched = _check_image(input)
    s_h, s_w = _pair(scale_factor, "scale_factor", 1)
    n, c, h, w = x.shape
    out = x.new_zeros(n, c, h * s_h, w * s_w)
    out[:, :, ::s_h, ::s_w] = x                     # autograd routes the gradient of these positions to x
    return out[0] if unbatched else out


def _unpool_output_size(in_hw: Sequence[int], kernel: tuple[int, int], stride: tuple[int, int],
                        padding: tuple[int, int], output_size: Sequence[int] | None) -> tuple[int, int]:
    """The unpooled size: ``(H - 1) s - 2 p + k`` by default, or ``output_size`` if within one stride of it."""
    default = [(in_hw[d] - 1) * stride[d] - 2 * padding[d] + kernel[d] for d in range(2)]
    if output_size is None:
        return default[0], default[1]
    size = list(output_size)
    if len(size) == 4:
        size = size[2:]
    if len(size) != 2 or not all(isinstance(v, int) for v in size):
        raise ValueError(f"output_size must be (H, W) or (N, C, H, W), got {output_size!r}")
    for d in range(2):
        if not default[d] - stride[d] < size[d] < default[d] + stride[d]:
            raise ValueError(f"output_size {tuple(size)} must be within one stride {stride} of the default size "
                             f"{tuple(default)} (strictly)")
    return size[0], size[1]


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size: IntPair, stride: IntPair | None = None,
                 padding: IntPair = 0, output_size: Sequence[int] | None = None) -> Tensor:
    """Max unpooling (Zeiler & Fergus 2014; SegNet): put each value back where max pooling found it.

    ``out.flatten(-2)[indices[n, c, i, j]] = input[n, c, i, j]``, zeros elsewhere, where ``indices``
    are the flat positions in the ``H_out x W_out`` plane that ``F.max_pool2d(..., return_indices=True)``
    returned. The gradient flows back from those positions only. Equal to ``F.max_unpool2d``.

    Args:
        input: ``Tensor[N, C, H, W]`` (or ``[C, H, W]``), the pooled values.
        indices: int64 tensor of the same shape, flat indices into the output plane.
        kernel_size, stride, padding: those of the max pooling being undone (``stride`` defaults to
            ``kernel_size``); they fix the default output size ``(H - 1) s - 2 p + k``.
        output_size: ``(H_out, W_out)`` or ``(N, C, H_out, W_out)`` when the pooled input's size was not
            the default (e.g. an odd size pooled by 2); must be within one stride of the default.

    Returns:
        ``Tensor[N, C, H_out, W_out]``.
    """
    x, unbatched = _check_image(input)
    indices = check_tensor(indices, "indices")
    if indices.shape != input.shape:
        raise ValueError(f"indices must have the shape of input {list(input.shape)}, got {list(indices.shape)}")
    if indices.dtype != torch.int64:
        raise TypeError(f"indices must be int64 (as max_pool2d returns them), got {indices.dtype}")
    if indices.device != input.device:
        raise ValueError(f"indices must be on the device of input ({input.device}), got {indices.device}")
    kernel = _pair(kernel_size, "kernel_size", 1)
    step = kernel if stride is None else _pair(stride, "stride", 1)
    pad = _pair(padding, "padding", 0)
    out_h, out_w = _unpool_output_size(x.shape[-2:], kernel, step, pad, output_size)
    flat_indices = (indices[None] if unbatched else indices).flatten(2)                  # [N, C, H W]
    if flat_indices.numel() and (int(flat_indices.min()) < 0 or int(flat_indices.max()) >= out_h * out_w):
        bad = flat_indices[(flat_indices < 0) | (flat_indices >= out_h * out_w)][0]
        raise ValueError(f"indices must lie in [0, {out_h * out_w}) (the {out_h} x {out_w} output plane), "
                         f"found {int(bad)}")
    n, c = x.shape[:2]
    out = x.new_zeros(n, c, out_h * out_w).scatter(2, flat_indices, x.flatten(2))      # [N, C, H_out W_out]
    out = out.reshape(n, c, out_h, out_w)
    return out[0] if unbatched else out


class MaxUnpool2d(nn.Module):
    """:func:`max_unpool2d` as a module, like ``nn.MaxUnpool2d(kernel_size, stride, padding)``."""

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride if stride is not None else kernel_size, padding

    def forward(self, input: Tensor, indices: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        return max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


# --------------------------------------------------------------------------------------------------
# bilinear interpolation


def _linear_weights(in_size: int, out_size: int, scale: float | None, align_corners: bool,
                    dtype: torch.dtype, device: torch.device) -> Tensor:
    """The ``[out_size, in_size]`` matrix of 1-D linear interpolation, each row two weights ``(1 - l, l)``.

    Source coordinate of output index ``o``, as PyTorch computes it:

        align_corners=True:   src = o (in - 1) / (out - 1)                    (corner pixels' centres line up)
        align_corners=False:  src = max((o + 0.5) / scale - 0.5, 0)           (pixel areas line up)

    with ``scale = out / in`` or the given ``scale_factor``; then ``i0 = floor(src)``, ``l = src - i0``.
    """
    math_dtype = torch.float64 if dtype == torch.float64 else torch.float32    # PyTorch's opmath type
    if align_corners:
        ratio = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    else:
        ratio = 1.0 / scale if scale is not None and scale > 0 else in_size / out_size
    ratio_t = torch.tensor(ratio, dtype=math_dtype, device=device)             # rounded to float32 like the kernel
    dst = torch.arange(out_size, dtype=math_dtype, device=device)
    src = dst * ratio_t if align_corners else ((dst + 0.5) * ratio_t - 0.5).clamp(min=0)
    i0 = src.floor().long().clamp(max=in_size - 1)
    lam = (src - i0).clamp(0, 1)
    i1 = (i0 + 1).clamp(max=in_size - 1)
    weights = torch.zeros(out_size, in_size, dtype=math_dtype, device=device)
    rows = torch.arange(out_size, device=device)
    weights.index_put_((rows, i0), 1 - lam, accumulate=True)
    weights.index_put_((rows, i1), lam, accumulate=True)                      # i1 == i0 at the last pixel
    return weights.to(dtype)


def bilinear_upsample(input: Tensor, size: IntPair | None = None, scale_factor: float | Sequence[float] | None = None,
                      align_corners: bool = False, recompute_scale_factor: bool | None = None) -> Tensor:
    """Bilinear interpolation as two matrix products: ``out = A_H  in  A_W^T``.

    Each row of ``A_H`` (``[H_out, H]``) holds the two weights ``(1 - l, l)`` of the rows above and below
    the output row's source coordinate (see :func:`_linear_weights`), and likewise ``A_W`` for columns.
    Equal to ``F.interpolate(input, size, scale_factor, mode="bilinear", align_corners=...)``, without
    antialiasing (so also for shrinking).

    Args:
        input: ``Tensor[N, C, H, W]`` (or ``[C, H, W]``).
        size: output ``(H_out, W_out)`` (or one int); give this or ``scale_factor``.
        scale_factor: a number or a pair; ``H_out = floor(H * scale_factor)``.
        align_corners: line up the centres of the corner pixels (True) or the pixel areas (False).
        recompute_scale_factor: map coordinates with ``in / out`` instead of ``1 / scale_factor``.

    Returns:
        ``Tensor[N, C, H_out, W_out]``.
    """
    x, unbatched = _check_image(input)
    (out_h, out_w), (scale_h, scale_w) = _output_hw(size, scale_factor, x.shape[-2:], recompute_scale_factor)
    rows = _linear_weights(x.shape[-2], out_h, scale_h, align_corners, x.dtype, x.device)   # [H_out, H]
    cols = _linear_weights(x.shape[-1], out_w, scale_w, align_corners, x.dtype, x.device)   # [W_out, W]
    out = rows @ x @ cols.T                                                    # [N, C, H_out, W_out]
    return out[0] if unbatched else out


# --------------------------------------------------------------------------------------------------
# im2col / col2im: a convolution's patches, and the scatter-add that puts them back


def _blocks(size: int, kernel: int, dilation: int, padding: int, stride: int) -> int:
    """How many positions a (dilated) kernel takes along one axis: ``floor((n + 2p - d (k - 1) - 1) / s) + 1``."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _tap_views(plane: Tensor, kernel: tuple[int, int], dilation: tuple[int, int], stride: tuple[int, int],
               blocks: tuple[int, int]) -> list[Tensor]:
    """For each kernel tap ``(u, v)``, row-major: the view of ``plane[..., s i + d u, s j + d v]`` over blocks ``(i, j)``."""
    (kh, kw), (dh, dw), (sh, sw), (bh, bw) = kernel, dilation, stride, blocks
    return [plane[..., u * dh: u * dh + sh * (bh - 1) + 1: sh, v * dw: v * dw + sw * (bw - 1) + 1: sw]
            for u in range(kh) for v in range(kw)]


def _gather_blocks(padded: Tensor, kernel: tuple[int, int], dilation: tuple[int, int], stride: tuple[int, int],
                   blocks: tuple[int, int]) -> Tensor:
    """``[N, C, kh, kw, bh, bw]``: tap ``(u, v)`` of block ``(i, j)`` is ``padded[..., s i + d u, s j + d v]``."""
    taps = torch.stack(_tap_views(padded, kernel, dilation, stride, blocks), dim=2)   # [N, C, kh kw, bh, bw]
    return taps.reshape(*padded.shape[:2], *kernel, *blocks)


def _phases(kernel: tuple[int, int], dilation: tuple[int, int], stride: tuple[int, int], blocks: tuple[int, int],
            padded_hw: tuple[int, int]) -> tuple[list[list[tuple[int, int]]], tuple[int, int]]:
    """Split each tap's offset ``d u`` as ``s q + r``: tap ``u`` of block ``i`` lands on ``s (i + q) + r``.

    Returns, per axis, ``(q, r)`` for every tap, and the size of one phase plane, so that rows of phase
    ``r`` form a stride-1 grid in which each tap writes one contiguous ``blocks``-sized window.
    """
    taps = [[divmod(dilation[a] * u, stride[a]) for u in range(kernel[a])] for a in range(2)]
    size = tuple(max(-(-padded_hw[a] // stride[a]), max(q for q, _ in taps[a]) + blocks[a]) for a in range(2))
    return taps, size  # type: ignore[return-value]


class _ScatterAddBlocks(torch.autograd.Function):
    """Scatter-add of blocks onto a plane; its gradient is the gather of the same positions (its adjoint).

    ``cols`` is ``[N, G, kh, kw, C_g, bh, bw]``: taps outside the channels, so that each tap's slice is
    one large block of memory.
    The plane is kept as ``s_h x s_w`` phase planes (rows ``s q + r`` for each phase ``r``), where every
    tap adds one dense window instead of a strided one: the same sums, several times faster.
    """

    @staticmethod
    def forward(ctx, cols: Tensor, padded_hw: tuple[int, int], dilation: tuple[int, int],
                stride: tuple[int, int]) -> Tensor:
        n, groups, kh, kw, c_group, bh, bw = cols.shape
        (rows, columns), (qh, qw) = _phases((kh, kw), dilation, stride, (bh, bw), padded_hw)
        out = cols.new_zeros(n, groups, c_group, stride[0], stride[1], qh, qw)       # phase-major plane
        for u, (q_u, r_u) in enumerate(rows):
            for v, (q_v, r_v) in enumerate(columns):                               # tap (u, v) of every block
                out[:, :, :, r_u, r_v, q_u: q_u + bh, q_v: q_v + bw] += cols[:, :, u, v]
        out = out.permute(0, 1, 2, 5, 3, 6, 4).reshape(n, groups * c_group, qh * stride[0], qw * stride[1])
        ctx.geometry, ctx.channels = ((kh, kw), dilation, stride, (bh, bw), padded_hw), (groups, c_group)
        return out[:, :, : padded_hw[0], : padded_hw[1]]

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None, None]:
        kernel, dilation, stride, (bh, bw), padded_hw = ctx.geometry
        (groups, c_group), n = ctx.channels, grad.shape[0]
        (rows, columns), (qh, qw) = _phases(kernel, dilation, stride, (bh, bw), padded_hw)
        grad = F.pad(grad, (0, qw * stride[1] - padded_hw[1], 0, qh * stride[0] - padded_hw[0]))
        planes = grad.reshape(n, groups, c_group, qh, stride[0], qw, stride[1]).permute(0, 1, 2, 4, 6, 3, 5).contiguous()
        taps = torch.stack([planes[:, :, :, r_u, r_v, q_u: q_u + bh, q_v: q_v + bw]
                            for q_u, r_u in rows for q_v, r_v in columns], dim=2)    # [N, G, kh kw, C_g, bh, bw]
        return taps.reshape(n, groups, *kernel, c_group, bh, bw), None, None, None


def _scatter_add_blocks(cols: Tensor, padded_hw: tuple[int, int], dilation: tuple[int, int],
                        stride: tuple[int, int]) -> Tensor:
    """``[N, G C_g, Hp, Wp]``: every tap ``cols[n, g, u, v, c, i, j]`` added at ``(s i + d u, s j + d v)``."""
    return _ScatterAddBlocks.apply(cols, padded_hw, dilation, stride)


def im2col(input: Tensor, kernel_size: IntPair, dilation: IntPair = 1, padding: IntPair = 0,
           stride: IntPair = 1) -> Tensor:
    """The patches a convolution sees, one column per output position. Equal to ``F.unfold``.

    Column ``l = i W_out + j`` holds ``input[c, s i - p + d u, s j - p + d v]`` for every channel ``c``
    and kernel tap ``(u, v)`` (zeros outside the image), so that a convolution is one matrix product:
    ``conv2d(x, w) = w.reshape(C_out, -1) @ im2col(x)``.

    Args:
        input: ``Tensor[N, C, H, W]`` (or ``[C, H, W]``).
        kernel_size, dilation, padding, stride: as for ``F.conv2d``.

    Returns:
        ``Tensor[N, C kh kw, L]`` with ``L = H_out W_out`` (``[C kh kw, L]`` for an unbatched input).
    """
    x, unbatched = _check_image(input)
    kernel, dil = _pair(kernel_size, "kernel_size", 1), _pair(dilation, "dilation", 1)
    pad, step = _pair(padding, "padding", 0), _pair(stride, "stride", 1)
    blocks = tuple(_blocks(x.shape[2 + a], kernel[a], dil[a], pad[a], step[a]) for a in range(2))
    if min(blocks) < 1:
        raise ValueError(f"kernel_size {kernel} with dilation {dil} does not fit in the padded input "
                         f"{tuple(x.shape[-2] + 2 * pad[0] for _ in (0,))[0]} x {x.shape[-1] + 2 * pad[1]}")
    padded = F.pad(x, (pad[1], pad[1], pad[0], pad[0]))
    cols = _gather_blocks(padded, kernel, dil, step, blocks)                 # [N, C, kh, kw, bh, bw]
    cols = cols.reshape(x.shape[0], -1, blocks[0] * blocks[1])
    return cols[0] if unbatched else cols


def col2im(input: Tensor, output_size: IntPair, kernel_size: IntPair, dilation: IntPair = 1, padding: IntPair = 0,
           stride: IntPair = 1) -> Tensor:
    """Add columns of patches back onto an image: the adjoint of :func:`im2col`. Equal to ``F.fold``.

    Every entry of column ``l = i W_out + j`` for channel ``c`` and tap ``(u, v)`` is *added* to
    ``out[c, s i - p + d u, s j - p + d v]``; positions covered by several patches get the sum, and
    positions in the padding are dropped. This scatter-add is what a transposed convolution does.

    Args:
        input: ``Tensor[N, C kh kw, L]`` (or ``[C kh kw, L]``), ``L`` the number of kernel positions
            that fit in ``output_size`` with these settings.
        output_size: ``(H, W)`` of the image.
        kernel_size, dilation, padding, stride: as for ``F.conv2d``.

    Returns:
        ``Tensor[N, C, H, W]`` (``[C, H, W]`` for an unbatched input).
    """
    cols = check_tensor(input, "input")
    if cols.dim() not in (2, 3):
        raise ValueError(f"input must have shape [N, C*kh*kw, L] or [C*kh*kw, L], got {list(cols.shape)}")
    unbatched = cols.dim() == 2
    cols = cols[None] if unbatched else cols
    size = _pair(output_size, "output_size", 1)
    kernel, dil = _pair(kernel_size, "kernel_size", 1), _pair(dilation, "dilation", 1)
    pad, step = _pair(padding, "padding", 0), _pair(stride, "stride", 1)
    blocks = tuple(_blocks(size[a], kernel[a], dil[a], pad[a], step[a]) for a in range(2))
    taps = kernel[0] * kernel[1]
    if cols.shape[1] % taps:
        raise ValueError(f"input's dimension 1 ({cols.shape[1]}) must be a multiple of kh * kw = {taps}")
    if min(blocks) < 1 or cols.shape[2] != blocks[0] * blocks[1]:
        raise ValueError(f"input must have L = {max(blocks[0], 0) * max(blocks[1], 0)} columns ({blocks[0]} x "
                         f"{blocks[1]} kernel positions in output_size {size}), got {cols.shape[2]}")
    n, channels = cols.shape[0], cols.shape[1] // taps
    cols = cols.reshape(n, 1, channels, kernel[0], kernel[1], blocks[0], blocks[1]).permute(0, 1, 3, 4, 2, 5, 6)
    padded = _scatter_add_blocks(cols, (size[0] + 2 * pad[0], size[1] + 2 * pad[1]), dil, step)
    out = padded[:, :, pad[0]: pad[0] + size[0], pad[1]: pad[1] + size[1]]
    return out[0] if unbatched else out


# --------------------------------------------------------------------------------------------------
# convolution as a matrix, and the transposed convolution as its transpose


def _conv_output_hw(in_hw: Sequence[int], kernel: tuple[int, int], stride: tuple[int, int],
                    padding: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int]:
    return (_blocks(in_hw[0], kernel[0], dilation[0], padding[0], stride[0]),
            _blocks(in_hw[1], kernel[1], dilation[1], padding[1], stride[1]))


def conv_as_matrix(weight: Tensor, input_size: IntPair, stride: IntPair = 1, padding: IntPair = 0,
                   dilation: IntPair = 1, groups: int = 1) -> Tensor:
    """The matrix ``C`` of a 2-D convolution: ``conv2d(x, weight).flatten() = C @ x.flatten()`` for one image.

    Row ``(o, i, j)`` of ``C`` is output pixel ``(i, j)`` of channel ``o``; it holds ``weight[o, c, u, v]``
    in column ``(c', s i - p + d u, s j - p + d v)`` for every tap that lands inside the image
    (``c'`` the input channel ``c`` of ``o``'s group) and zeros elsewhere: a sparse, banded
    (doubly block Toeplitz for stride 1) matrix. ``C^T`` is the transposed convolution
    (:func:`conv_transpose2d_as_matmul`). Dense: meant for small examples.

    Args:
        weight: ``Tensor[C_out, C_in / groups, kh, kw]``.
        input_size: ``(H, W)`` of the image the convolution is applied to.
        stride, padding, dilation, groups: as for ``F.conv2d``.

    Returns:
        ``Tensor[C_out H_out W_out, C_in H W]`` in weight's dtype, differentiable in ``weight``.
    """
    weight = check_tensor(weight, "weight")
    if weight.dim() != 4:
        raise ValueError(f"weight must have shape [C_out, C_in/groups, kh, kw], got {list(weight.shape)}")
    height, width = _pair(input_size, "input_size", 1)
    step, pad, dil = _pair(stride, "stride", 1), _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)
    if not isinstance(groups, int) or groups < 1 or weight.shape[0] % groups:
        raise ValueError(f"groups must be a positive int dividing C_out = {weight.shape[0]}, got {groups!r}")
    c_out, c_in_group, kh, kw = weight.shape
    out_h, out_w = _conv_output_hw((height, width), (kh, kw), step, pad, dil)
    if min(out_h, out_w) < 1:
        raise ValueError(f"the kernel does not fit: input_size {(height, width)} with padding {pad} and "
                         f"dilated kernel {(dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1)}")
    dev = weight.device
    o = torch.arange(c_out, device=dev).view(-1, 1, 1, 1, 1, 1)
    c = torch.arange(c_in_group, device=dev).view(1, -1, 1, 1, 1, 1)
    u = torch.arange(kh, device=dev).view(1, 1, -1, 1, 1, 1)
    v = torch.arange(kw, device=dev).view(1, 1, 1, -1, 1, 1)
    i = torch.arange(out_h, device=dev).view(1, 1, 1, 1, -1, 1)
    j = torch.arange(out_w, device=dev).view(1, 1, 1, 1, 1, -1)
    y = step[0] * i - pad[0] + dil[0] * u                                      # input row of each tap
    x = step[1] * j - pad[1] + dil[1] * v                                      # input column
    in_channel = (o // (c_out // groups)) * c_in_group + c
    shape = (c_out, c_in_group, kh, kw, out_h, out_w)
    row = (o * out_h * out_w + i * out_w + j).expand(shape)
    col = (in_channel * height * width + y * width + x).expand(shape)
    inside = ((y >= 0) & (y < height) & (x >= 0) & (x < width)).expand(shape)
    values = weight[:, :, :, :, None, None].expand(shape)
    matrix = weight.new_zeros(c_out * out_h * out_w, groups * c_in_group * height * width)
    return matrix.index_put((row[inside], col[inside]), values[inside])        # one tap per (row, col): no clash


def conv2d_as_matmul(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
                     padding: IntPair = 0, dilation: IntPair = 1, groups: int = 1) -> Tensor:
    """``F.conv2d`` computed as ``C @ x`` with ``C = conv_as_matrix(weight, ...)``. For small examples."""
    x, unbatched = _check_image(input)
    matrix = conv_as_matrix(weight, tuple(x.shape[-2:]), stride, padding, dilation, groups)
    out_hw = _conv_output_hw(x.shape[-2:], tuple(weight.shape[-2:]), _pair(stride, "stride", 1),
                             _pair(padding, "padding", 0), _pair(dilation, "dilation", 1))
    out = (x.flatten(1) @ matrix.T).reshape(x.shape[0], weight.shape[0], *out_hw)   # [N, C_out, H_out, W_out]
    if bias is not None:
        out = out + bias[:, None, None]
    return out[0] if unbatched else out


def conv_transpose2d_as_matmul(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
                               padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1,
                               dilation: IntPair = 1) -> Tensor:
    """``F.conv_transpose2d`` computed as ``C^T @ x``: the transpose of the convolution's matrix.

    ``C = conv_as_matrix(weight, (H_out, W_out), stride, padding, dilation, groups)`` is the convolution
    that maps an ``H_out x W_out`` image back to ``H x W``; the transposed convolution multiplies by
    ``C^T``. Same arguments as :func:`conv_transpose2d`. Dense: meant for small examples.
    """
    x, unbatched = _check_image(input)
    geometry = _check_conv_transpose_args(x, weight, bias, stride, padding, output_padding, groups, dilation)
    step, pad, _, dil, (out_h, out_w) = geometry
    c_out = weight.shape[1] * groups
    matrix = conv_as_matrix(weight, (out_h, out_w), step, pad, dil, groups)   # [C_in H' W', C_out H_out W_out]
    # with output_padding >= stride (possible when dilation > stride) the convolution of an H_out image has
    # H' > H output rows; the transposed one reads only the first H, as if x were padded with zeros
    height, width = _conv_output_hw((out_h, out_w), tuple(weight.shape[-2:]), step, pad, dil)
    matrix = matrix.reshape(x.shape[1], height, width, -1)[:, : x.shape[2], : x.shape[3]].reshape(-1, matrix.shape[1])
    out = (x.flatten(1) @ matrix).reshape(x.shape[0], c_out, out_h, out_w)    # x^T C = (C^T x)^T
    if bias is not None:
        out = out + bias[:, None, None]
    return out[0] if unbatched else out


# --------------------------------------------------------------------------------------------------
# transposed convolution


def _check_conv_transpose_args(x: Tensor, weight: Tensor, bias: Tensor | None, stride: object, padding: object,
                               output_padding: object, groups: object, dilation: object):
    """Check the arguments of a transposed convolution; return stride, padding, output_padding, dilation, out size."""
    weight = check_tensor(weight, "weight")
    if weight.dim() != 4:
        raise ValueError(f"weight must have shape [C_in, C_out/groups, kh, kw], got {list(weight.shape)}")
    _check_like(weight, "weight", x)
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    c_in = x.shape[1]
    if weight.shape[0] != c_in:
        raise ValueError(f"weight's dimension 0 ({weight.shape[0]}) must equal input's channels ({c_in}): "
                         f"a transposed convolution's weight is [C_in, C_out/groups, kh, kw]")
    if c_in % groups:
        raise ValueError(f"groups ({groups}) must divide the input's channels ({c_in})")
    c_out = weight.shape[1] * groups
    if bias is not None:
        check_tensor(bias, "bias")
        if bias.shape != (c_out,):
            raise ValueError(f"bias must have shape [C_out] = [{c_out}], got {list(bias.shape)}")
        _check_like(bias, "bias", x)
    step, pad = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    extra, dil = _pair(output_padding, "output_padding", 0), _pair(dilation, "dilation", 1)
    if not all(extra[a] < max(step[a], dil[a]) for a in range(2)):
        raise ValueError(f"output_padding must be smaller than stride or dilation in each dimension (it adds "
                         f"rows and columns that no other output size of the same convolution has); got "
                         f"output_padding={extra}, stride={step}, dilation={dil}")
    out_hw = tuple((x.shape[2 + a] - 1) * step[a] - 2 * pad[a] + dil[a] * (weight.shape[2 + a] - 1) + extra[a] + 1
                   for a in range(2))
    if min(out_hw) < 1:
        raise ValueError(f"the output size {out_hw} is not positive: (H - 1) stride - 2 padding + dilation (k - 1) "
                         f"+ output_padding + 1 with input {tuple(x.shape[-2:])}, stride {step}, padding {pad}, "
                         f"dilation {dil}, kernel {tuple(weight.shape[-2:])}, output_padding {extra}")
    return step, pad, extra, dil, out_hw


def conv_transpose2d_reference(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
                               padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1,
                               dilation: IntPair = 1) -> Tensor:
    """Transposed convolution as a loop over input pixels: each stamps its kernel onto the output. Slow; for reading.

    Same arguments and result as :func:`conv_transpose2d`.
    """
    x, unbatched = _check_image(input)
    (sh, sw), (ph, pw), _, (dh, dw), (out_h, out_w) = _check_conv_transpose_args(
        x, weight, bias, stride, padding, output_padding, groups, dilation)
    n, c_in, height, width = x.shape
    c_in_group, c_out_group, kh, kw = c_in // groups, weight.shape[1], weight.shape[2], weight.shape[3]
    # the full output before cropping the padding: (H - 1) s + d (k - 1) + 1 + output_padding = H_out + 2 p
    full = x.new_zeros(n, groups * c_out_group, out_h + 2 * ph, out_w + 2 * pw)
    for b in range(n):
        for g in range(groups):
            ins, outs = slice(g * c_in_group, (g + 1) * c_in_group), slice(g * c_out_group, (g + 1) * c_out_group)
            for i in range(height):
                for j in range(width):
                    stamp = torch.einsum("c,cokl->okl", x[b, ins, i, j], weight[ins])   # [C_out/g, kh, kw]
                    full[b, outs, i * sh: i * sh + dh * (kh - 1) + 1: dh,
                         j * sw: j * sw + dw * (kw - 1) + 1: dw] += stamp
    out = full[:, :, ph: ph + out_h, pw: pw + out_w]
    if bias is not None:
        out = out + bias[:, None, None]
    return out[0] if unbatched else out


def _tap_runs(kernel: tuple[int, int], dilation: tuple[int, int], stride: tuple[int, int],
              plane_width: int) -> tuple[list[tuple[int, int, int, int]], list[int]]:
    """Group the kernel taps of a transposed convolution into runs that one matrix product can stamp.

    Tap ``(u, v)`` of input pixel ``(i, j)`` lands on padded output ``(s i + d u, s j + d v)``. Writing
    ``d u = s q + r`` (per axis), that is row ``i + q`` of phase ``r``: the output split into its
    ``s_h x s_w`` phase planes (rows ``s a + r``), taps with the same shift ``(q_u, q_v)`` land on the same
    shifted copy of the input grid, each in its own phase. Taps of one shift whose phases
    ``p = r_u s_w + r_v`` are consecutive form a run: their stamps fill consecutive rows of a
    ``[phases x C_out, positions]`` plane. For ``d = 1`` and ``k`` a multiple of ``s`` (FCN's k = 2s)
    every shift is one run covering all phases: ``(k / s)^2`` products instead of ``k^2`` scatters.

    Returns:
        runs: ``(shift, first phase, first tap in order, number of taps)``, with ``shift = q_u W + q_v``
            the offset of the shifted grid in a plane ``plane_width`` wide, flattened;
        order: the taps (``u kw + v``) run after run, phases ascending within a run.
    """
    (kh, kw), (dh, dw), (sh, sw) = kernel, dilation, stride
    by_shift: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for u in range(kh):
        q_u, r_u = divmod(dh * u, sh)
        for v in range(kw):
            q_v, r_v = divmod(dw * v, sw)
            by_shift.setdefault((q_u, q_v), []).append((r_u * sw + r_v, u * kw + v))
    runs, order = [], []
    for (q_u, q_v), taps in sorted(by_shift.items()):
        taps.sort()
        start = 0
        for end in range(1, len(taps) + 1):
            if end == len(taps) or taps[end][0] != taps[end - 1][0] + 1:       # a gap in the phases ends a run
                runs.append((q_u * plane_width + q_v, taps[start][0], len(order), end - start))
                order.extend(tap for _, tap in taps[start:end])
                start = end
    return runs, order


def _stamp_run(plane: Tensor, weight_run: Tensor, x_cols: Tensor) -> None:
    """``plane += weight_run @ x_cols`` per group, in place (``plane`` may be a strided view). Shapes
    ``[G, M, L]``, ``[G, M, K]``, ``[G, K, L]``."""
    if plane.shape[0] == 1:
        plane[0].addmm_(weight_run[0], x_cols[0])
    elif weight_run.shape[2] == 1:                                             # depthwise: K = 1, an outer product
        plane.addcmul_(weight_run, x_cols)
    else:
        plane.baddbmm_(weight_run, x_cols)


class _ShiftedStamps(torch.autograd.Function):
    """The stamps of every run, added onto the phase planes at their shift: one matrix product per run.

    ``plane[g, (p0 + t) C_out/G + o, shift + l] += sum_c w_runs[g, t0 + t, o, c] x_cols[g, c, l]`` for each run
    ``(shift, p0, t0, T)`` and ``t < T``. Runs that fill the same phase rows (same ``p0`` and ``T``; for
    FCN's k = 2s, all of them) are one product: their weights side by side, times the input shifted once per
    run and stacked, so the plane is written once instead of once per run. The backward pass reads the same
    shifted windows of the plane's gradient: ``grad_x = sum_runs W_run^T grad_window`` (a convolution) and
    ``grad_W_run = grad_window x^T``.
    """

    @staticmethod
    def forward(ctx, x_cols: Tensor, w_runs: Tensor, runs: list[tuple[int, int, int, int]], phases: int) -> Tensor:
        groups, c_in_group, length = x_cols.shape
        c_out_group = w_runs.shape[2]
        plane = x_cols.new_zeros(groups, phases * c_out_group, length)     # [G, phases C_out/G, N qh qw]
        same_rows: dict[tuple[int, int], list[tuple[int, int]]] = {}     # runs that fill the same phase rows
        for shift, p0, t0, taps in runs:
            if shift < length:
                same_rows.setdefault((p0, taps), []).append((shift, t0))
        for (p0, taps), members in same_rows.items():
            rows = plane[:, p0 * c_out_group: (p0 + taps) * c_out_group]
            if len(members) == 1 or c_in_group == 1:                    # one product per run, added at its shift
                for shift, t0 in members:
                    weight_run = w_runs[:, t0: t0 + taps].reshape(groups, taps * c_out_group, c_in_group)
                    _stamp_run(rows[:, :, shift:], weight_run, x_cols[:, :, : length - shift])
            else:   # one product for all: the runs' weights side by side, the input shifted once per run
                weight_cat = torch.cat([w_runs[:, t0: t0 + taps].reshape(groups, taps * c_out_group, c_in_group)
                                        for _, t0 in members], dim=2)              # [G, T C_out/G, runs C_in/G]
                x_cat = torch.cat([F.pad(x_cols[:, :, : length - shift], (shift, 0)) for shift, _ in members],
                                  dim=1)                                           # [G, runs C_in/G, L]
                _stamp_run(rows, weight_cat, x_cat)
        ctx.save_for_backward(x_cols, w_runs)
        ctx.runs = runs
        return plane

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        x_cols, w_runs = ctx.saved_tensors
        groups, c_in_group, length = x_cols.shape
        c_out_group = w_runs.shape[2]
        grad_x = torch.zeros_like(x_cols) if ctx.needs_input_grad[0] else None
        grad_w = torch.zeros_like(w_runs) if ctx.needs_input_grad[1] else None
        for shift, p0, t0, taps in ctx.runs:
            if shift >= length:
                continue
            window = grad[:, p0 * c_out_group: (p0 + taps) * c_out_group, shift:]     # [G, T C_out/G, L - shift]
            if grad_x is not None:
                weight_run = w_runs[:, t0: t0 + taps].reshape(groups, taps * c_out_group, c_in_group)
                grad_x[:, :, : length - shift].baddbmm_(weight_run.transpose(1, 2), window)
            if grad_w is not None:
                grad_w[:, t0: t0 + taps] = torch.bmm(window, x_cols[:, :, : length - shift].transpose(1, 2)).reshape(
                    groups, taps, c_out_group, c_in_group)
        return grad_x, grad_w, None, None


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
                     padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1,
                     dilation: IntPair = 1) -> Tensor:
    """2-D transposed convolution as a scatter-add of the kernel. Equal to ``F.conv_transpose2d``.

        out[o, s i - p + d u, s j - p + d v] += sum_c input[c, i, j] weight[c, o, u, v]

    Every input pixel's stamp ``weight^T x`` is added onto the output at stride ``s``. Done tap by tap
    (:func:`conv_transpose2d_reference`, or one matrix product and :func:`col2im`) that is ``kh kw``
    strided scatters. Here the taps are grouped first (:func:`_tap_runs`): with ``d u = s q + r``, tap
    ``u`` of pixel ``i`` lands on row ``i + q`` of the output's phase plane ``r`` (rows ``s a + r``), so all
    taps with the same shift ``q`` stamp the input grid, shifted by ``q``, onto different phase planes.
    Each group is one matrix product added in place at its shift (groups that fill the same planes share
    one product over the stacked shifted inputs); the planes are then interleaved
    into the output, ``padding`` crops ``p`` rows and columns from each side and ``output_padding`` keeps
    extra ones at the bottom and right. The gradient reads the same shifted windows: backpropagating
    a transposed convolution is a convolution.

    Args:
        input: ``Tensor[N, C_in, H, W]`` (or ``[C_in, H, W]``).
        weight: ``Tensor[C_in, C_out / groups, kh, kw]``.
        bias: optional ``Tensor[C_out]``.
        stride, padding, dilation: those of the convolution being transposed (int or pair).
        output_padding: extra size ``< max(stride, dilation)`` added at the bottom and right: a strided
            convolution maps several input sizes to one output size, this picks which one comes back.
        groups: split channels into ``groups`` independent transposed convolutions.

    Returns:
        ``Tensor[N, C_out, H_out, W_out]``, ``H_out = (H - 1) s - 2 p + d (kh - 1) + output_padding + 1``.
    """
    x, unbatched = _check_image(input)
    step, pad, _, dil, (out_h, out_w) = _check_conv_transpose_args(
        x, weight, bias, stride, padding, output_padding, groups, dilation)
    n, c_in, height, width = x.shape
    c_in_group, (c_out_group, kh, kw) = c_in // groups, weight.shape[1:]
    # phase planes of qh x qw rows and columns: tall enough for the padded output and for the largest shift
    qh = max(-(-(out_h + 2 * pad[0]) // step[0]), dil[0] * (kh - 1) // step[0] + height)
    qw = max(-(-(out_w + 2 * pad[1]) // step[1]), dil[1] * (kw - 1) // step[1] + width)
    runs, order = _tap_runs((kh, kw), dil, step, qw)
    x_cols = F.pad(x.reshape(n, groups, c_in_group, height, width).permute(1, 2, 0, 3, 4), (0, qw - width, 0, qh - height))
    x_cols = x_cols.reshape(groups, c_in_group, n * qh * qw)                  # [G, C_in/G, N qh qw], zeros past H, W
    w_runs = weight.reshape(groups, c_in_group, c_out_group, kh * kw).permute(0, 3, 2, 1)[:, order]  # [G, taps, C_out/G, C_in/G]
    planes = _ShiftedStamps.apply(x_cols, w_runs, runs, step[0] * step[1])   # [G, s_h s_w C_out/G, N qh qw]
    planes = planes.reshape(groups, step[0], step[1], c_out_group, n, qh, qw).permute(4, 0, 3, 5, 1, 6, 2)
    full = planes.reshape(n, groups * c_out_group, qh * step[0], qw * step[1])   # row s a + r of phase r, row a
    out = full[:, :, pad[0]: pad[0] + out_h, pad[1]: pad[1] + out_w]          # [N, C_out, H_out, W_out]
    out = out + bias[:, None, None] if bias is not None else out.contiguous()
    return out[0] if unbatched else out


class ConvTranspose2d(nn.Module):
    """A learnable upsampling layer: :func:`conv_transpose2d` with its weight and bias.

    Same constructor, parameter shapes and initialisation as ``nn.ConvTranspose2d`` (so with the same
    seed both start from the same numbers): ``weight`` is ``[C_in, C_out / groups, kh, kw]`` drawn by
    ``kaiming_uniform_(a=sqrt(5))``, ``bias`` uniform in ``+-1 / sqrt(fan_in)``, with
    ``fan_in = C_out / groups * kh * kw``. ``forward(input, output_size=None)`` picks ``output_padding``
    from a requested output size, as PyTorch's does.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1, bias: bool = True,
                 dilation: IntPair = 1, padding_mode: str = "zeros", device=None, dtype=None) -> None:
        super().__init__()
        if padding_mode != "zeros":
            raise ValueError(f"padding_mode must be 'zeros' for a transposed convolution, got {padding_mode!r}")
        if not isinstance(groups, int) or groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"groups must be a positive int dividing in_channels ({in_channels}) and "
                             f"out_channels ({out_channels}), got {groups!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride, self.padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
        self.output_padding, self.dilation = _pair(output_padding, "output_padding", 0), _pair(dilation, "dilation", 1)
        self.padding_mode = padding_mode
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels // groups, *self.kernel_size, **factory))
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * self.kernel_size[0] * self.kernel_size[1]
            if fan_in:
                nn.init.uniform_(self.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))

    def _output_padding(self, input: Tensor, output_size: Sequence[int] | None) -> tuple[int, int]:
        """The ``output_padding`` that yields ``output_size``: its distance from the smallest possible size."""
        if output_size is None:
            return self.output_padding
        size = list(output_size)
        if len(size) == input.dim():
            size = size[-2:]
        if len(size) != 2:
            raise ValueError(f"output_size must be (H, W) or include the batch and channel sizes, got {output_size!r}")
        extra = []
        for a in range(2):
            smallest = ((input.shape[-2 + a] - 1) * self.stride[a] - 2 * self.padding[a]
                        + self.dilation[a] * (self.kernel_size[a] - 1) + 1)
            largest = smallest + self.stride[a] - 1
            if not smallest <= size[a] <= largest:
                raise ValueError(f"output_size {tuple(size)} cannot be reached: with this input the sizes range "
                                 f"from {smallest} to {largest} along dimension {a}")
            extra.append(size[a] - smallest)
        return extra[0], extra[1]

    def forward(self, input: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        return conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                self._output_padding(input, output_size), self.groups, self.dilation)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, output_padding={self.output_padding}, groups={self.groups}, "
                f"dilation={self.dilation}, bias={self.bias is not None}")


__all__ = ["nearest_upsample", "bed_of_nails_upsample", "max_unpool2d", "MaxUnpool2d", "bilinear_upsample",
           "im2col", "col2im", "conv_as_matrix", "conv2d_as_matmul", "conv_transpose2d_as_matmul",
           "conv_transpose2d", "conv_transpose2d_reference", "ConvTranspose2d"]
