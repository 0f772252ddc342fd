"""R-CNN's input step (Girshick et al., CVPR 2014, section 2.1 and appendix A): every proposal is warped,
whatever its size and shape, to the fixed 227 x 227 input of the CNN.

The tight box is first dilated so that, once warped, p = 16 pixels of context surround the original box:
the box grows about its centre by the factor size / (size - 2 p) in each direction. Pixels outside the
image take the image mean (zero after mean subtraction, which R-CNN applies). Then one forward pass per
proposal: about 2000 per image, the cost that SPPnet and Fast R-CNN remove by sharing one feature map.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from cvkit._checks import check_boxes, check_tensor

__all__ = ["warp_proposals"]


def warp_proposals(image: Tensor, boxes: Tensor, size: int = 227, context: int = 16) -> Tensor:
    """Crop every box (dilated for ``context`` pixels of warped context) and warp it to ``size x size``.

    Args:
        image: ``Tensor[C, H, W]`` float, mean already subtracted if the outside should read as the mean.
        boxes: ``Tensor[N, 4]`` xyxy in pixels.
        size: side of the warped output (227 for AlexNet in R-CNN).
        context: p, pixels of context around the box in the warped output (0: the tight box).

    Returns:
        ``Tensor[N, C, size, size]``, bilinear samples; zero outside the image.
    """
    check_tensor(image, "image")
    if image.dim() != 3 or not image.is_floating_point():
        raise ValueError(f"image must be a float Tensor[C, H, W], got shape {list(image.shape)} dtype {image.dtype}")
    boxes = check_boxes(boxes, "boxes", ordered=True).to(image)
    if not 0 <= 2 * context < size:
        raise ValueError(f"context must be in [0, size / 2), got {context} for size {size}")
    height, width = image.shape[1:]
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2                                  # [N, 2] (x, y)
    half = (boxes[:, 2:] - boxes[:, :2]) / 2 * size / (size - 2 * context)      # dilated half sides
    # affine_grid maps output coordinates in [-1, 1] to input coordinates in [-1, 1] (align_corners=False)
    theta = torch.zeros(len(boxes), 2, 3, dtype=image.dtype, device=image.device)
    theta[:, 0, 0] = half[:, 0] / (width / 2)
    theta[:, 1, 1] = half[:, 1] / (height / 2)
    theta[:, 0, 2] = centre[:, 0] / (width / 2) - 1
    theta[:, 1, 2] = centre[:, 1] / (height / 2) - 1
    grid = F.affine_grid(theta, [len(boxes), image.shape[0], size, size], align_corners=False)
    batch = image.unsqueeze(0).expand(len(boxes), -1, -1, -1)
    return F.grid_sample(batch, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
