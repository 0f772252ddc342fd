"""Pooling a fixed-size feature from a region of any size: RoI max pooling, RoIAlign and spatial pyramid pooling.

**RoI max pooling** (Girshick, "Fast R-CNN", ICCV 2015, sec. 2.1 and eq. 4). The box is *quantised* twice:
its corners are rounded to the feature grid, ``x1' = round(x1 * spatial_scale)`` (half away from zero),
and the ``h' x w'`` cells it then covers (``h' = max(y2' - y1' + 1, 1)``) are cut into ``H x W`` bins
with integer edges; bin ``(i, j)`` spans rows ``[floor(i h'/H), ceil((i+1) h'/H))`` (offset by ``y1'``,
clipped to the map) and likewise for columns. Each output is the maximum over its bin,

    y_rj = max_{i in R(r, j)} x_i,             dL/dx_i = sum_r sum_j [i = i*(r, j)] dL/dy_rj     (eq. 4)

so the gradient goes to the argmax ``i*(r, j)`` only. An empty bin gives 0 and passes no gradient.

**RoIAlign** (He et al., "Mask R-CNN", ICCV 2017, sec. 3). No rounding anywhere: the box is scaled
(``aligned=True`` also shifts it by half a pixel, so that pixel centres sit at integer coordinates),
each of the ``H x W`` bins gets a regular grid of ``s_h x s_w`` sampling points, each point's value is
bilinearly interpolated from its four neighbouring cells, and the bin is their mean:

    f(y, x) = sum_{a, b} max(0, 1 - |y - y_a|) max(0, 1 - |x - x_b|) F[y_a, x_b]
    y_rj    = 1 / (s_h s_w) * sum_{p in bin (r, j)} f(p)

Because the bilinear weight of a cell is the product of a y-weight and an x-weight, every output bin
is a fixed weighted sum of at most ``2 s_h x 2 s_w`` feature vectors, and the gradient is the same
weights scattered back.

**Spatial pyramid pooling** (He et al., "Spatial Pyramid Pooling in Deep Convolutional Networks",
ECCV 2014): max-pool the whole map into ``n x n`` bins for several ``n`` (say 4, 2, 1) and concatenate,
giving a vector of fixed length ``C * sum n^2`` whatever the map's size. RoI pooling is its one-level
case applied to a box instead of the whole image.

``roi_pool`` and ``roi_align`` equal ``torchvision.ops.roi_pool`` / ``roi_align`` forward and backward,
with the same signatures and the same rules at the edges (boxes over the border, degenerate boxes,
ties). ``roi_pool_reference`` and ``roi_align_reference`` are plain loops that read like the papers.
As in torchvision, no gradient flows to the boxes: they are treated as constants.
"""
from __future__ import annotations

import math
from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cvkit._checks import check_tensor

Boxes = Union[Tensor, Sequence[Tensor]]
OutputSize = Union[int, Sequence[int]]

# RoIs handled in one vectorised step (bounds the memory of the sampling weights and of the RoIPool queries)
_ROI_CHUNK = 1024
_FLT_MAX = float(np.finfo(np.float32).max)   # torchvision's RoIPool starts every max at -FLT_MAX


# --------------------------------------------------------------------------------------------------
# arguments


def convert_boxes_to_roi_format(boxes: Boxes) -> Tensor:
    """Boxes in either of torchvision's layouts as one ``Tensor[K, 5]`` of ``(batch_index, x1, y1, x2, y2)``.

    As ``torchvision.ops._utils.convert_boxes_to_roi_format``, and passing a ``Tensor[K, 5]`` through.

    Args:
        boxes: a ``Tensor[K, 5]`` whose first column is the index of the image in the batch, or a list of
            ``Tensor[L_i, 4]``, the boxes of image ``i`` in ``(x1, y1, x2, y2)``.

    Returns:
        ``Tensor[K, 5]`` with the dtype and device of the boxes; the list's boxes are stacked in order.
    """
    if isinstance(boxes, Tensor):
        if boxes.dim() != 2 or boxes.shape[1] != 5:
            raise ValueError(f"boxes must be a Tensor[K, 5] of (batch_index, x1, y1, x2, y2) or a list of "
                             f"Tensor[L, 4], got a tensor of shape {list(boxes.shape)}")
        return boxes
    if not isinstance(boxes, (list, tuple)):
        raise TypeError(f"boxes must be a Tensor[K, 5] or a list of Tensor[L, 4], got {type(boxes).__name__}")
    if len(boxes) == 0:
        raise ValueError("boxes must not be an empty list: give one Tensor[L, 4] per image (L may be 0)")
    for i, b in enumerate(boxes):
        check_tensor(b, f"boxes[{i}]")
        if b.dim() != 2 or b.shape[1] != 4:
            raise ValueError(f"boxes[{i}] must be a Tensor[L, 4] of (x1, y1, x2, y2), got shape {list(b.shape)}")
        if b.dtype != boxes[0].dtype or b.device != boxes[0].device:
            raise ValueError(f"boxes[{i}] must have the dtype and device of boxes[0] ({boxes[0].dtype}, "
                             f"{boxes[0].device}), got {b.dtype}, {b.device}")
    index = torch.cat([torch.full_like(b[:, :1], i) for i, b in enumerate(boxes)])   # [K, 1]
    return torch.cat((index, torch.cat(list(boxes))), dim=1)


def _pair(output_size: OutputSize) -> tuple[int, int]:
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    if len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size):
        raise ValueError(f"output_size must be a positive int or a pair of positive ints, got {output_size!r}")
    return size  # type: ignore[return-value]


def _check_roi_args(input: Tensor, boxes: Boxes, output_size: OutputSize, spatial_scale: float) -> tuple[Tensor, int, int]:
    """Check the arguments shared by the RoI operators; returns ``(rois [K, 5], pooled_h, pooled_w)``."""
    check_tensor(input, "input")
    if input.dim() != 4:
        raise ValueError(f"input must be a Tensor[N, C, H, W], got shape {list(input.shape)}")
    if not input.is_floating_point():
        raise TypeError(f"input must be a floating-point tensor, got dtype {input.dtype}")
    rois = convert_boxes_to_roi_format(boxes)
    if rois.dtype != input.dtype:
        raise TypeError(f"boxes must have the dtype of input ({input.dtype}), got {rois.dtype}")
    if rois.device != input.device:
        raise ValueError(f"boxes must be on the device of input ({input.device}), got {rois.device}")
    if rois.shape[0] > 0:
        batch = rois[:, 0].detach()
        bad = ~((batch >= 0) & (batch < input.shape[0]))
        if bad.any():
            k = int(bad.nonzero()[0])
            raise ValueError(f"boxes[:, 0] must hold batch indices in [0, {input.shape[0] - 1}] (input has "
                             f"N={input.shape[0]}); RoI {k} has {float(batch[k])}")
    if (not isinstance(spatial_scale, (int, float)) or isinstance(spatial_scale, bool)
            or not math.isfinite(spatial_scale) or spatial_scale <= 0):
        raise ValueError(f"spatial_scale must be a finite number > 0, got {spatial_scale!r}")
    pooled_h, pooled_w = _pair(output_size)
    return rois.detach(), pooled_h, pooled_w


def _check_sampling(sampling_ratio: int, aligned: bool) -> None:
    if not isinstance(sampling_ratio, int) or isinstance(sampling_ratio, bool):
        raise TypeError(f"sampling_ratio must be an int (<= 0 for adaptive), got {sampling_ratio!r}")
    if not isinstance(aligned, bool):
        raise TypeError(f"aligned must be a bool, got {aligned!r}")


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Half precision is computed in float32 (torch's gathers and sums are more accurate there)."""
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


# --------------------------------------------------------------------------------------------------
# bilinear interpolation


def _feature_rows(input: Tensor) -> Tensor:
    """``[N, C, H, W]`` features as the ``[N*H*W, C]`` matrix the RoI ops gather from, one row per cell.

    Always a contiguous copy: for N = 1 the permuted reshape is a strided view, on which ``embedding_bag``
    and ``gather`` run several times slower (RoIAlign with 2000 RoIs on one 16 x 16 map: 3.6x torchvision).
    """
    n, channels, height, width = input.shape
    return input.permute(0, 2, 3, 1).reshape(n * height * width, channels).contiguous()


def _linear_weights(coord: Tensor, size: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The 1-D half of torchvision's bilinear rule along an axis of ``size`` cells.

    A coordinate below -1 or above ``size`` (or NaN) is outside: both weights 0. Otherwise it is clamped
    to 0 from below, and at or past the last cell it reads the last cell alone.

    Returns:
        ``(low, high, w_low, w_high)``: int64 cell indices and their weights, each shaped like ``coord``.
    """
    inside = (coord >= -1) & (coord <= size)
    coord = torch.where(inside, coord.clamp(min=0), torch.zeros_like(coord))
    low = coord.long()                                               # truncation = floor, coord >= 0
    at_end = low >= size - 1
    low = torch.where(at_end, torch.full_like(low, size - 1), low)
    high = torch.where(at_end, low, low + 1)
    coord = torch.where(at_end, low.to(coord.dtype), coord)
    w_high = coord - low.to(coord.dtype)                             # l_y = y - y_low
    w_low = 1 - w_high                                               # h_y = 1 - l_y
    zero = torch.zeros_like(coord)
    return low, high, torch.where(inside, w_low, zero), torch.where(inside, w_high, zero)


def bilinear_interpolate(input: Tensor, y: float | Tensor, x: float | Tensor) -> Tensor:
    """The value of a feature map at the real-valued point ``(y, x)``, by bilinear interpolation.

        f(y, x) = h_y h_x F[y0, x0] + h_y l_x F[y0, x1] + l_y h_x F[y1, x0] + l_y l_x F[y1, x1]

    with ``y0 = floor(y)``, ``y1 = y0 + 1``, ``l_y = y - y0``, ``h_y = 1 - l_y`` (and likewise for x).
    Cell ``(i, j)`` holds the value at point ``(i, j)``. At the border it follows RoIAlign's rule
    (torchvision): a point more than one cell outside the map reads 0, a point between -1 and 0 reads
    as if at 0, and a point at or past the last cell reads the last cell.

    Args:
        input: ``Tensor[C, H, W]`` (or ``[H, W]``) feature map.
        y, x: the point, numbers or tensors of one shape ``S``.

    Returns:
        ``Tensor[C, *S]`` (``Tensor[*S]`` for a 2-D input), differentiable with respect to ``input``.
    """
    check_tensor(input, "input")
    if input.dim() not in (2, 3) or not input.is_floating_point():
        raise ValueError(f"input must be a floating-point Tensor[C, H, W] or [H, W], got {input.dtype} "
                         f"of shape {list(input.shape)}")
    height, width = input.shape[-2:]
    y = torch.as_tensor(y, dtype=input.dtype, device=input.device)
    x = torch.as_tensor(x, dtype=input.dtype, device=input.device)
    y0, y1, hy, ly = _linear_weights(y, height)
    x0, x1, hx, lx = _linear_weights(x, width)
    return (hy * hx * input[..., y0, x0] + hy * lx * input[..., y0, x1]
            + ly * hx * input[..., y1, x0] + ly * lx * input[..., y1, x1])


# --------------------------------------------------------------------------------------------------
# RoIAlign


def _align_geometry(rois: Tensor, pooled_h: int, pooled_w: int, spatial_scale: float, sampling_ratio: int,
                    aligned: bool) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Per-RoI start, bin size and sampling grid in torchvision's arithmetic (all in the RoIs' dtype).

    Returns:
        ``(start_y, start_x, bin_h, bin_w, grid_h, grid_w)``, each ``[K]`` (grids int64).
    """
    scale = torch.tensor(spatial_scale, dtype=rois.dtype, device=rois.device)   # the kernel's T spatial_scale
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (rois[:, i] * scale - offset for i in range(1, 5))
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:                                   # legacy: a box smaller than a cell counts as one cell
        roi_w, roi_h = roi_w.clamp(min=1), roi_h.clamp(min=1)
    bin_h, bin_w = roi_h / pooled_h, roi_w / pooled_w
    if sampling_ratio > 0:
        grid_h = torch.full_like(bin_h, sampling_ratio, dtype=torch.int64)
        grid_w = grid_h
    else:                                             # adaptive: about one sample per cell, ceil(roi_h / H)
        grid_h = torch.ceil(bin_h).nan_to_num(0).long()
        grid_w = torch.ceil(bin_w).nan_to_num(0).long()
    return y1, x1, bin_h, bin_w, grid_h, grid_w


def roi_align_reference(input: Tensor, boxes: Boxes, output_size: OutputSize, spatial_scale: float = 1.0,
                        sampling_ratio: int = -1, aligned: bool = False) -> Tensor:
    """RoIAlign as loops over RoIs, bins and sampling points, the way Mask R-CNN describes it. Slow; for reading.

    Same arguments and result as :func:`roi_align`; the coordinates are computed in the input's float
    type, in the order torchvision computes them, so that points on the border fall on the same side.
    """
    rois, pooled_h, pooled_w = _check_roi_args(input, boxes, output_size, spatial_scale)
    _check_sampling(sampling_ratio, aligned)
    f = np.float64 if input.dtype == torch.float64 else np.float32
    scale, offset = f(spatial_scale), f(0.5 if aligned else 0.0)
    outputs = []
    for roi in rois.tolist():
        image = input[int(roi[0])]                                        # [C, H, W]
        x1, y1, x2, y2 = (f(v) * scale - offset for v in roi[1:])
        roi_w, roi_h = x2 - x1, y2 - y1
        if not aligned:
            roi_w, roi_h = max(roi_w, f(1)), max(roi_h, f(1))
        bin_h, bin_w = roi_h / f(pooled_h), roi_w / f(pooled_w)
        grid_h = sampling_ratio if sampling_ratio > 0 else int(np.ceil(bin_h))
        grid_w = sampling_ratio if sampling_ratio > 0 else int(np.ceil(bin_w))
        count = max(grid_h * grid_w, 1)
        bins = []
        for i in range(pooled_h):
            for j in range(pooled_w):
                total = torch.zeros_like(image[:, 0, 0])                  # [C]
                for iy in range(grid_h):                                  # the bin's regular grid of points
                    y = y1 + f(i) * bin_h + f(iy + 0.5) * bin_h / f(grid_h)
                    for ix in range(grid_w):
                        x = x1 + f(j) * bin_w + f(ix + 0.5) * bin_w / f(grid_w)
                        total = total + bilinear_interpolate(image, float(y), float(x))
                bins.append(total / count)                                # average of the samples
        outputs.append(torch.stack(bins, dim=1).reshape(-1, pooled_h, pooled_w))
    if not outputs:
        return input.new_zeros(0, input.shape[1], pooled_h, pooled_w) + 0 * input.sum()
    return torch.stack(outputs)


def _align_bags(rois: Tensor, height: int, width: int, pooled_h: int, pooled_w: int, spatial_scale: float,
                sampling_ratio: int, aligned: bool) -> tuple[Tensor, Tensor]:
    """The feature cells and weights each RoIAlign bin sums: ``(index, weight)``, both ``[K * H_out * W_out, B]``.

    ``index`` points into the rows of the ``[N * H * W, C]`` feature matrix; padding entries have weight 0.
    """
    y1, x1, bin_h, bin_w, grid_h, grid_w = _align_geometry(rois, pooled_h, pooled_w, spatial_scale,
                                                           sampling_ratio, aligned)
    k = rois.shape[0]
    max_gh, max_gw = max(int(grid_h.max()), 1), max(int(grid_w.max()), 1)
    count = (grid_h * grid_w).clamp(min=1).to(rois.dtype)                           # [K]

    def axis(start: Tensor, bin_size: Tensor, grid: Tensor, pooled: int, max_grid: int, size: int):
        # sample coordinates, in the kernel's order: start + p * bin + (g + .5) * bin / grid      [K, P, G]
        p = torch.arange(pooled, device=rois.device, dtype=rois.dtype)[None, :, None]
        g = torch.arange(max_grid, device=rois.device, dtype=rois.dtype)[None, None, :]
        coord = (start[:, None, None] + p * bin_size[:, None, None]) + \
            (g + 0.5) * bin_size[:, None, None] / grid.clamp(min=1).to(rois.dtype)[:, None, None]
        low, high, w_low, w_high = _linear_weights(coord, size)
        used = (g < grid[:, None, None].to(rois.dtype))                             # padding samples weigh 0
        w_low, w_high = w_low * used, w_high * used
        return torch.cat((low, high), 2), torch.cat((w_low, w_high), 2)            # [K, P, 2G]

    iy, wy = axis(y1, bin_h, grid_h, pooled_h, max_gh, height)
    ix, wx = axis(x1, bin_w, grid_w, pooled_w, max_gw, width)
    base = rois[:, 0].long() * (height * width)                                     # first row of the image
    index = base[:, None, None, None, None] + iy[:, :, None, :, None] * width + ix[:, None, :, None, :]
    weight = wy[:, :, None, :, None] * wx[:, None, :, None, :] / count[:, None, None, None, None]
    # a bin whose grid is empty on either axis averages nothing: torchvision outputs 0
    weight = weight * ((grid_h > 0) & (grid_w > 0)).to(rois.dtype)[:, None, None, None, None]
    return index.reshape(k * pooled_h * pooled_w, -1), weight.reshape(k * pooled_h * pooled_w, -1)


def roi_align(input: Tensor, boxes: Boxes, output_size: OutputSize, spatial_scale: float = 1.0,
              sampling_ratio: int = -1, aligned: bool = False) -> Tensor:
    """RoIAlign (Mask R-CNN): average of bilinearly interpolated samples in each bin. As ``torchvision.ops.roi_align``.

    Each bin is a weighted sum of feature vectors (see the module docstring), computed for all bins at
    once as one weighted gather, ``F.embedding_bag`` over the ``[N * H * W, C]`` feature matrix; its
    backward pass scatters the same weights. RoIs with an adaptive grid are grouped by grid size.

    Args:
        input: ``Tensor[N, C, H, W]`` feature maps.
        boxes: ``Tensor[K, 5]`` of ``(batch_index, x1, y1, x2, y2)`` or a list of ``Tensor[L, 4]`` (one
            per image), in image coordinates; same dtype and device as ``input``. No gradient flows to them.
        output_size: ``int`` or ``(H_out, W_out)``, the number of bins.
        spatial_scale: feature cells per image pixel (1/16 for a stride-16 backbone).
        sampling_ratio: sampling points per bin along each axis; ``<= 0`` for ``ceil(bin size)``.
        aligned: shift the box by -0.5 cell so that the samples sit where the pixel centres are; if False
            (the legacy rule) boxes smaller than one cell are enlarged to one cell.

    Returns:
        ``Tensor[K, C, H_out, W_out]``.
    """
    rois, pooled_h, pooled_w = _check_roi_args(input, boxes, output_size, spatial_scale)
    _check_sampling(sampling_ratio, aligned)
    _, channels, height, width = input.shape
    out_dtype, dtype = input.dtype, _compute_dtype(input.dtype)
    rois = rois.to(dtype)
    if rois.shape[0] == 0 or channels == 0 or height * width == 0:
        return input.new_zeros(rois.shape[0], channels, pooled_h, pooled_w) + 0 * input.sum()
    features = _feature_rows(input.to(dtype))                                        # [N*H*W, C]
    if sampling_ratio > 0:
        order = None
        chunks = [torch.arange(i, min(i + _ROI_CHUNK, rois.shape[0]), device=rois.device)
                  for i in range(0, rois.shape[0], _ROI_CHUNK)]
    else:      # adaptive grids differ per RoI: sort by grid size so that each chunk pads little
        grid = _align_geometry(rois, pooled_h, pooled_w, spatial_scale, sampling_ratio, aligned)[4:]
        order = torch.argsort(grid[0].clamp(min=0) * grid[1].clamp(min=0), stable=True)
        chunks = list(order.split(_ROI_CHUNK))
    pooled = []
    for chunk in chunks:
        index, weight = _align_bags(rois[chunk], height, width, pooled_h, pooled_w, spatial_scale,
                                    sampling_ratio, aligned)
        pooled.append(F.embedding_bag(index, features, per_sample_weights=weight, mode="sum"))  # [k*Ho*Wo, C]
    out = torch.cat(pooled) if len(pooled) > 1 else pooled[0]
    out = out.reshape(-1, pooled_h, pooled_w, channels)
    if order is not None:
        out = out[torch.argsort(order)]
    return out.permute(0, 3, 1, 2).contiguous().to(out_dtype)                       # [K, C, Ho, Wo]


class RoIAlign(nn.Module):
    """See :func:`roi_align`. As ``torchvision.ops.RoIAlign``."""

    def __init__(self, output_size: OutputSize, spatial_scale: float, sampling_ratio: int, aligned: bool = False):
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, input: Tensor, rois: Boxes) -> Tensor:
        return roi_align(input, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
                f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned})")


# --------------------------------------------------------------------------------------------------
# RoI max pooling


def _round_half_away(value: Tensor) -> Tensor:
    """C's ``round``: halves go away from zero (``torch.round`` sends them to the even neighbour)."""
    whole = torch.trunc(value)
    return torch.where((value - whole).abs() >= 0.5, whole + torch.sign(value), whole)


def _pool_bins(rois: Tensor, height: int, width: int, pooled_h: int, pooled_w: int,
               spatial_scale: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Integer bin edges of every RoIPool bin, in torchvision's arithmetic.

    Returns:
        ``(h_start, h_end, w_start, w_end)``: ``[K, H_out, 1]`` rows and ``[K, 1, W_out]`` columns, int64,
        clipped to the map; a bin is empty when an end is not past its start.
    """
    scale = torch.tensor(spatial_scale, dtype=rois.dtype, device=rois.device)
    x1, y1, x2, y2 = (_round_half_away(rois[:, i] * scale).long() for i in range(1, 5))   # quantisation 1
    roi_w = (x2 - x1 + 1).clamp(min=1)
    roi_h = (y2 - y1 + 1).clamp(min=1)
    bin_h = roi_h.to(rois.dtype) / pooled_h
    bin_w = roi_w.to(rois.dtype) / pooled_w

    def edges(start: Tensor, bin_size: Tensor, pooled: int, size: int) -> tuple[Tensor, Tensor]:
        p = torch.arange(pooled, device=rois.device, dtype=rois.dtype)
        lo = torch.floor(p[None] * bin_size[:, None]).long() + start[:, None]       # quantisation 2
        hi = torch.ceil((p[None] + 1) * bin_size[:, None]).long() + start[:, None]
        return lo.clamp(0, size), hi.clamp(0, size)                                  # [K, P]

    hs, he = edges(y1, bin_h, pooled_h, height)
    ws, we = edges(x1, bin_w, pooled_w, width)
    return hs[:, :, None], he[:, :, None], ws[:, None, :], we[:, None, :]


def roi_pool_reference(input: Tensor, boxes: Boxes, output_size: OutputSize, spatial_scale: float = 1.0) -> Tensor:
    """RoI max pooling as loops over RoIs, bins and cells, the way Fast R-CNN describes it. Slow; for reading.

    Same arguments and result as :func:`roi_pool`. The scan keeps the first of equal maxima (row by row)
    and starts from ``-FLT_MAX``, as torchvision does, so ties and NaN go the same way.
    """
    rois, pooled_h, pooled_w = _check_roi_args(input, boxes, output_size, spatial_scale)
    f = np.float64 if input.dtype == torch.float64 else np.float32
    height, width = input.shape[-2:]
    outputs = []
    for roi in rois.tolist():
        image = input[int(roi[0])]                                        # [C, H, W]
        corners = (f(c) * f(spatial_scale) for c in roi[1:])
        x1, y1, x2, y2 = (int(np.trunc(v) + np.sign(v)) if abs(v - np.trunc(v)) >= 0.5 else int(np.trunc(v))
                          for v in corners)                                 # C's round: halves away from zero
        roi_h, roi_w = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        bin_h, bin_w = f(roi_h) / f(pooled_h), f(roi_w) / f(pooled_w)
        bins = []
        for i in range(pooled_h):
            h_start = min(max(int(np.floor(f(i) * bin_h)) + y1, 0), height)
            h_end = min(max(int(np.ceil(f(i + 1) * bin_h)) + y1, 0), height)
            for j in range(pooled_w):
                w_start = min(max(int(np.floor(f(j) * bin_w)) + x1, 0), width)
                w_end = min(max(int(np.ceil(f(j + 1) * bin_w)) + x1, 0), width)
                if h_end <= h_start or w_end <= w_start:
                    bins.append(torch.zeros_like(image[:, 0, 0]))             # an empty bin is 0
                    continue
                best = torch.full_like(image[:, 0, 0], -_FLT_MAX)             # [C]
                for h in range(h_start, h_end):
                    for w in range(w_start, w_end):
                        value = image[:, h, w]
                        best = torch.where(value > best, value, best)        # strictly greater: first max wins
                bins.append(best)
        outputs.append(torch.stack(bins, dim=1).reshape(-1, pooled_h, pooled_w))
    if not outputs:
        return input.new_zeros(0, input.shape[1], pooled_h, pooled_w) + 0 * input.sum()
    return torch.stack(outputs)


def _max_keys(features: Tensor) -> Tensor:
    """One int64 per cell that orders cells as RoIPool's scan does: by value, then earlier cell first.

    ``key = rank(value) * 2^32 + (H W - 1 - (h W + w))``: the largest key of a window is its maximum, and
    among equal maxima the first in row-major order; ``H W - 1 - (low 32 bits)`` gives the cell back.
    float32 values are ranked by their bits (made monotonic), float64 values by sorting. As in torchvision's
    scan, which starts from -FLT_MAX and keeps strictly greater values, NaN and values <= -FLT_MAX are never
    picked: they get the floor key ``-2^63 + H W``, which decodes to cell -1.

    Args:
        features: ``[N, H, W, C]`` floating point.

    Returns:
        ``[N, H, W, C]`` int64 keys.
    """
    n, height, width, channels = features.shape
    cells = height * width
    values = features.contiguous() + 0.0                                # -0.0 -> 0.0: the scan sees them equal
    if values.dtype == torch.float32:
        bits = values.view(torch.int32)
        rank = (bits ^ ((bits >> 31) & 0x7FFFFFFF)).long()      # IEEE bits -> a signed int of the same order
    else:
        rank = torch.unique(values, sorted=True, return_inverse=True)[1]
    cell = torch.arange(cells, device=features.device).reshape(1, height, width, 1)
    keys = (rank << 32) + (cells - 1 - cell)
    never = ~(values > -_FLT_MAX)                                       # NaN or <= -FLT_MAX
    return keys.masked_fill_(never, -(1 << 63) + cells)


def _shifted_max(table: Tensor, dim: int, step: int) -> Tensor:
    """One doubling step of a sparse table: ``out[i] = max(table[i], table[i + step])`` along ``dim``."""
    size = table.shape[dim]
    if step >= size:
        return table
    out = torch.empty_like(table)
    torch.maximum(table.narrow(dim, 0, size - step), table.narrow(dim, step, size - step),
                  out=out.narrow(dim, 0, size - step))
    out.narrow(dim, size - step, step).copy_(table.narrow(dim, size - step, step))
    return out


def _roi_pool_argmax(input: Tensor, rois: Tensor, pooled_h: int, pooled_w: int, spatial_scale: float) -> Tensor:
    """torchvision's argmax of every RoIPool output: ``[K, H_out, W_out, C]`` int64 cell ``h * W + w``, -1 if none
    (an empty bin, or one whose values are all NaN or <= -FLT_MAX).

    Range-max queries on a sparse table: a bin of ``L_h x L_w`` cells is the union of four overlapping
    windows of ``2^a x 2^b`` cells (``a = floor(log2 L_h)``, ``b = floor(log2 L_w)``), and the table for
    ``(a, b)`` holds the largest key (``_max_keys``) of every such window. Tables are built by doubling,
    columns first, and each is queried by all the bins that need it.
    """
    n, channels, height, width = input.shape
    keys = _max_keys(input.permute(0, 2, 3, 1))                                     # [N, H, W, C]
    hs, he, ws, we = _pool_bins(rois, height, width, pooled_h, pooled_w, spatial_scale)
    shape = (rois.shape[0], pooled_h, pooled_w)
    hs, he, ws, we = hs.expand(shape), he.expand(shape), ws.expand(shape), we.expand(shape)
    nonempty = (he > hs) & (we > ws)
    level_h = torch.floor(torch.log2((he - hs).clamp(min=1).double())).long()    # a = floor(log2 L_h)
    level_w = torch.floor(torch.log2((we - ws).clamp(min=1).double())).long()
    base = (rois[:, 0].long() * (height * width))[:, None, None].expand(shape)
    argmax = torch.full((*shape, channels), -1, dtype=torch.int64, device=input.device)
    by_columns = keys
    for b in range(int(level_w[nonempty].max()) + 1 if nonempty.any() else 0):
        if b > 0:
            by_columns = _shifted_max(by_columns, 2, 1 << (b - 1))                  # windows 1 x 2^b
        wanted = nonempty & (level_w == b)
        if not wanted.any():
            continue
        table = by_columns
        for a in range(int(level_h[wanted].max()) + 1):
            if a > 0:
                table = _shifted_max(table, 1, 1 << (a - 1))                        # windows 2^a x 2^b
            pick = wanted & (level_h == a)
            if not pick.any():
                continue
            flat = table.reshape(-1, channels)                                      # [N*H*W, C]
            top, bottom = hs[pick], he[pick] - (1 << a)
            left, right = ws[pick], we[pick] - (1 << b)
            corners = [base[pick] + r * width + c for r in (top, bottom) for c in (left, right)]
            key = flat.index_select(0, corners[0])                                  # [M, C]
            for cell in corners[1:]:
                key = torch.maximum(key, flat.index_select(0, cell))
            argmax[pick] = (height * width - 1) - (key & 0xFFFFFFFF)
    return argmax


def roi_pool(input: Tensor, boxes: Boxes, output_size: OutputSize, spatial_scale: float = 1.0) -> Tensor:
    """RoI max pooling (Fast R-CNN): round the box to the feature grid, cut it into bins, take each bin's max.

    As ``torchvision.ops.roi_pool``, forward and backward: the same rounding (half away from zero), bin
    edges ``floor``/``ceil`` clipped to the map, 0 for an empty bin, and the gradient of each output sent
    to the first maximum of its bin in row-major order (eq. 4). The argmaxes come from range-max queries
    (see ``_roi_pool_argmax``); the output is the input gathered at them, so autograd routes the gradient.

    Args:
        input: ``Tensor[N, C, H, W]`` feature maps.
        boxes: ``Tensor[K, 5]`` of ``(batch_index, x1, y1, x2, y2)`` or a list of ``Tensor[L, 4]``, in image
            coordinates; same dtype and device as ``input``. No gradient flows to them.
        output_size: ``int`` or ``(H_out, W_out)``, the number of bins.
        spatial_scale: feature cells per image pixel.

    Returns:
        ``Tensor[K, C, H_out, W_out]``.
    """
    rois, pooled_h, pooled_w = _check_roi_args(input, boxes, output_size, spatial_scale)
    _, channels, height, width = input.shape
    if rois.shape[0] == 0 or channels == 0 or height * width == 0:
        return input.new_zeros(rois.shape[0], channels, pooled_h, pooled_w) + 0 * input.sum()
    dtype = _compute_dtype(input.dtype)
    features = _feature_rows(input)                                                  # [N*H*W, C]
    pieces = []
    for chunk in rois.split(_ROI_CHUNK):
        chunk = chunk.to(dtype)
        with torch.no_grad():
            argmax = _roi_pool_argmax(input.detach().to(dtype), chunk, pooled_h, pooled_w, spatial_scale)
        row = chunk[:, 0].long()[:, None, None, None] * (height * width) + argmax.clamp(min=0)   # [k, Ho, Wo, C]
        gathered = features.gather(0, row.reshape(-1, channels)).reshape(row.shape)
        # no argmax: an empty bin gives 0; a bin of values all <= -FLT_MAX gives -FLT_MAX (the scan's start)
        hs, he, ws, we = _pool_bins(chunk, height, width, pooled_h, pooled_w, spatial_scale)
        fill = torch.where((he > hs) & (we > ws), -_FLT_MAX, 0.0).to(input.dtype)[..., None]   # [k, Ho, Wo, 1]
        pieces.append(torch.where(argmax >= 0, gathered, fill))
    out = torch.cat(pieces) if len(pieces) > 1 else pieces[0]
    return out.permute(0, 3, 1, 2).contiguous()                                     # [K, C, Ho, Wo]


class RoIPool(nn.Module):
    """See :func:`roi_pool`. As ``torchvision.ops.RoIPool``."""

    def __init__(self, output_size: OutputSize, spatial_scale: float):
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale

    def forward(self, input: Tensor, rois: Boxes) -> Tensor:
        return roi_pool(input, rois, self.output_size, self.spatial_scale)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(output_size={self.output_size}, spatial_scale={self.spatial_scale})"


# --------------------------------------------------------------------------------------------------
# spatial pyramid pooling


def spatial_pyramid_pool(input: Tensor, levels: Sequence[int] = (4, 2, 1)) -> Tensor:
    """SPPnet's pyramid: max-pool the whole map into ``n x n`` bins for each level ``n``, and concatenate.

    Bin ``i`` of a level spans ``[floor(i S / n), ceil((i + 1) S / n))`` of a side of ``S`` cells, the same
    rule as RoIPool's bins, so level ``n`` equals ``roi_pool`` of the box covering the whole map
    ``(0, 0, W - 1, H - 1)`` with ``output_size=n``. Bins overlap when ``S`` is not a multiple of ``n``,
    and a map smaller than ``n`` repeats cells; every bin is non-empty.

    Args:
        input: ``Tensor[N, C, H, W]``, any ``H, W >= 1``.
        levels: the pyramid's bin counts per side, e.g. ``(4, 2, 1)``.

    Returns:
        ``Tensor[N, C * sum(n^2)]``: level by level, each flattened as ``[C, n, n]``.
    """
    check_tensor(input, "input")
    if input.dim() != 4 or input.shape[-1] == 0 or input.shape[-2] == 0:
        raise ValueError(f"input must be a Tensor[N, C, H, W] with H, W >= 1, got shape {list(input.shape)}")
    if not levels or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in levels):
        raise ValueError(f"levels must be a non-empty sequence of positive ints, got {levels!r}")
    return torch.cat([F.adaptive_max_pool2d(input, n).flatten(1) for n in levels], dim=1)


class SpatialPyramidPool(nn.Module):
    """See :func:`spatial_pyramid_pool`: a fixed-length vector from a feature map of any size."""

    def __init__(self, levels: Sequence[int] = (4, 2, 1)):
        super().__init__()
        self.levels = tuple(levels)

    def output_features(self, channels: int) -> int:
        """Length of the output vector for ``channels`` input channels."""
        return channels * sum(n * n for n in self.levels)

    def forward(self, input: Tensor) -> Tensor:
        return spatial_pyramid_pool(input, self.levels)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(levels={self.levels})"


__all__ = [
    "convert_boxes_to_roi_format", "bilinear_interpolate",
    "roi_align", "roi_align_reference", "RoIAlign",
    "roi_pool", "roi_pool_reference", "RoIPool",
    "spatial_pyramid_pool", "SpatialPyramidPool",
]
