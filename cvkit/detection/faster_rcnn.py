"""A tiny Faster R-CNN (Ren et al., NeurIPS 2015) assembled from cvkit's parts, small enough to train on a laptop.

    image -> backbone (a few conv layers, stride 8) -> feature map
          -> RPN (anchors, objectness, deltas, NMS)  -> ~300 proposals
          -> RoI pooling / RoIAlign -> two fc layers -> K + 1 scores, per-class deltas -> per-class NMS

Both stages share the backbone and are trained together, summing the four losses (torchvision's
"approximate joint training"; the paper's 4-step alternating training gives about the same result).
The same trained parts also run the two older pipelines on external proposals (selective search),
for the timing comparison of the course material (Faster R-CNN paper, table 5; Fast R-CNN, table 4):

- :meth:`TinyFasterRCNN.detect_rcnn_style`: R-CNN, every proposal cropped from the image, warped to a
  fixed size and passed through the whole network on its own;
- :meth:`TinyFasterRCNN.detect_from_proposals`: Fast R-CNN, one backbone pass per image and RoI pooling
  of every proposal from the shared feature map;
- ``model(images)``: Faster R-CNN, proposals from the RPN.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from cvkit.detection.anchors import AnchorGenerator, ImageList
from cvkit.detection.roi_heads import FastRCNNHead, RoIHeads, RoIPooler
from cvkit.detection.rpn import RegionProposalNetwork, RPNHead
from cvkit.selective_search.rcnn import warp_proposals

__all__ = ["TinyBackbone", "TinyFasterRCNN", "detection_loss", "collate"]

# ImageNet statistics: the bundled photos are ordinary RGB photos.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class TinyBackbone(nn.Sequential):
    """A few Conv-BN-ReLU layers: the first with stride 2, the middle ones after 2 x 2 max pooling.

    ``widths = (16, 32, 64, 128)`` gives conv/2, pool, conv, pool, conv, conv: stride 8 (one feature-map
    position per 8 x 8 pixels), 128 output channels, a receptive field of 49 pixels.

    Args:
        widths: channels of each conv layer; stride 2 ** (len(widths) - 1).
    """

    def __init__(self, widths: Sequence[int] = (16, 32, 64, 128)) -> None:
        if len(widths) < 2:
            raise ValueError(f"widths must name at least two layers, got {tuple(widths)}")
        layers: list[nn.Module] = []
        in_channels = 3
        for i, width in enumerate(widths):
            if 0 < i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            layers += [nn.Conv2d(in_channels, width, 3, stride=2 if i == 0 else 1, padding=1, bias=False),
                       nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            in_channels = width
        super().__init__(*layers)
        self.out_channels = in_channels
        self.stride = 2 ** (len(widths) - 1)


class TinyFasterRCNN(nn.Module):
    """Faster R-CNN on :class:`TinyBackbone`, for images of a fixed size with values in [0, 1].

    Args:
        num_classes: K + 1, background included.
        anchor_sizes: anchor sizes (sqrt of area) in pixels, one tuple for the single feature map.
        aspect_ratios: anchor height / width ratios.
        backbone_widths: channels of the backbone's stages (stride 2 ** (stages - 1)).
        roi_method: ``'align'`` (RoIAlign) or ``'pool'`` (Fast R-CNN's RoI max pooling).
        roi_size: side of the pooled grid.
        representation_size: width of the head's two fc layers.
        rpn_box_loss_weight, box_loss_weight: λ of the RPN loss and of the Fast R-CNN loss.
        rpn_pre_nms_top_n, rpn_post_nms_top_n: proposals kept before and after the RPN's NMS
            (``{"training": n, "testing": n}``); 300 at test time, as in the paper.
        rpn_batch_size_per_image, box_batch_size_per_image: anchors and RoIs per image in the losses.
        bg_iou_low: lower end of the background IoU band of the RoIs (0.1 in Fast R-CNN).
        box_score_thresh, box_nms_thresh, box_detections_per_img: post-processing of the detections.
    """

    def __init__(self, num_classes: int, anchor_sizes: Sequence[int] = (16, 32, 64),
                 aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0), backbone_widths: Sequence[int] = (16, 32, 64, 128),
                 roi_method: str = "align", roi_size: int = 7, representation_size: int = 128,
                 rpn_box_loss_weight: float = 1.0, box_loss_weight: float = 1.0,
                 rpn_pre_nms_top_n: dict[str, int] | None = None, rpn_post_nms_top_n: dict[str, int] | None = None,
                 rpn_batch_size_per_image: int = 256, box_batch_size_per_image: int = 64, bg_iou_low: float = 0.1,
                 box_score_thresh: float = 0.05, box_nms_thresh: float = 0.5, box_detections_per_img: int = 100) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must count the background and at least one class (>= 2), got {num_classes}")
        self.num_classes = num_classes
        self.backbone = TinyBackbone(backbone_widths)
        channels, stride = self.backbone.out_channels, self.backbone.stride
        anchor_generator = AnchorGenerator((tuple(anchor_sizes),), (tuple(aspect_ratios),))
        self.rpn = RegionProposalNetwork(
            anchor_generator, RPNHead(channels, anchor_generator.num_anchors_per_location()[0]),
            batch_size_per_image=rpn_batch_size_per_image,
            pre_nms_top_n=rpn_pre_nms_top_n or {"training": 300, "testing": 600},
            post_nms_top_n=rpn_post_nms_top_n or {"training": 150, "testing": 300},
            box_loss_weight=rpn_box_loss_weight)
        self.roi_heads = RoIHeads(
            RoIPooler(roi_size, 1.0 / stride, roi_method),
            FastRCNNHead(channels * roi_size * roi_size, representation_size, num_classes),
            bg_iou_low=bg_iou_low, batch_size_per_image=box_batch_size_per_image, score_thresh=box_score_thresh,
            nms_thresh=box_nms_thresh, detections_per_img=box_detections_per_img, box_loss_weight=box_loss_weight)
        self.register_buffer("image_mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("image_std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def _batch(self, images: Tensor | list[Tensor]) -> ImageList:
        if isinstance(images, (list, tuple)):
            if len(images) == 0:
                raise ValueError("images must hold at least one image")
            if len({tuple(im.shape) for im in images}) != 1:
                raise ValueError(f"images must all have one shape [3, H, W], got {[tuple(im.shape) for im in images]}")
            images = torch.stack(list(images))
        if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be a Tensor[B, 3, H, W] (or a list of [3, H, W]) with values in [0, 1], "
                             f"got {list(images.shape) if isinstance(images, Tensor) else type(images).__name__}")
        return ImageList.from_tensor(images)

    def features(self, images: Tensor | list[Tensor]) -> tuple[ImageList, Tensor]:
        """The batch and its shared feature map ``[B, C, H / stride, W / stride]``."""
        batch = self._batch(images)
        return batch, self.backbone((batch.tensors - self.image_mean) / self.image_std)

    def forward(self, images: Tensor | list[Tensor], targets: list[dict[str, Tensor]] | None = None
                ) -> dict[str, Tensor] | list[dict[str, Tensor]]:
        """Training: the four losses ``loss_objectness``, ``loss_rpn_box_reg``, ``loss_classifier``, ``loss_box_reg``.
        Evaluation: per image ``{'boxes': [D, 4], 'scores': [D], 'labels': [D]}`` (classes from 1).

        Args:
            images: ``Tensor[B, 3, H, W]`` (or a list of ``[3, H, W]``), values in [0, 1].
            targets: in training, per image ``'boxes'`` ``Tensor[G, 4]`` xyxy and ``'labels'`` ``Tensor[G]`` (G may be 0).
        """
        if self.training and targets is None:
            raise ValueError("targets must be given in training mode (one dict with 'boxes' and 'labels' per image)")
        batch, features = self.features(images)
        proposals, rpn_losses = self.rpn(batch, [features], targets)
        detections, head_losses = self.roi_heads(features, proposals, batch.image_sizes, targets)
        return {**rpn_losses, **head_losses} if self.training else detections

    @torch.no_grad()
    def detect_from_proposals(self, images: Tensor | list[Tensor], proposals: list[Tensor]) -> list[dict[str, Tensor]]:
        """Fast R-CNN: the detection head on given proposals (e.g. selective search), RoI-pooled from shared features."""
        batch, features = self.features(images)
        detections, _ = self.roi_heads(features, [p.to(features) for p in proposals], batch.image_sizes)
        return detections

    @torch.no_grad()
    def detect_rcnn_style(self, image: Tensor, proposals: Tensor, warp_size: int = 64, context: int = 4,
                          chunk: int = 256) -> dict[str, Tensor]:
        """R-CNN: crop each proposal from the image, warp it to ``warp_size`` x ``warp_size``, run the network on it.

        The warp is :func:`cvkit.selective_search.rcnn.warp_proposals` (R-CNN's dilated crop, ``context`` pixels
        of context, the image mean outside the image); each warped crop goes through the backbone on its own
        and its whole feature map is pooled into the head. No computation is shared between proposals.

        Args:
            image: ``Tensor[3, H, W]`` in [0, 1].
            proposals: ``Tensor[P, 4]`` xyxy boxes in the image.

        Returns:
            ``{'boxes', 'scores', 'labels'}`` after the same post-processing as the detector's.
        """
        proposals = proposals.to(image)
        mean = self.image_mean[0]                                                       # [3, 1, 1]
        logits, deltas = [], []
        for start in range(0, proposals.shape[0], chunk):
            boxes = proposals[start:start + chunk]
            crops = warp_proposals(image - mean, boxes, warp_size, context) + mean       # [P', 3, s, s]
            _, features = self.features(crops)                                          # [P', C, s/8, s/8]
            whole = torch.tensor([[0.0, 0.0, warp_size, warp_size]], device=image.device, dtype=image.dtype)
            class_logits, box_regression = self.roi_heads.box_head(
                self.roi_heads.box_roi_pool(features, [whole] * len(boxes)))           # each crop's whole map
            logits.append(class_logits)
            deltas.append(box_regression)
        if not logits:
            return self.roi_heads.postprocess_detections(
                torch.zeros(0, self.num_classes, device=image.device), torch.zeros(0, 4 * self.num_classes, device=image.device),
                [proposals], [tuple(image.shape[-2:])])[0]
        # the deltas are relative to the warped box without its context, as the proposals are
        return self.roi_heads.postprocess_detections(torch.cat(logits), torch.cat(deltas), [proposals],
                                                     [tuple(image.shape[-2:])])[0]


def collate(samples: list[tuple[Tensor, dict[str, Tensor]]]) -> tuple[Tensor, list[dict[str, Tensor]]]:
    """DataLoader ``collate_fn``: images stacked to ``[B, 3, H, W]``, targets kept as a list of dicts."""
    images, targets = zip(*samples)
    return torch.stack(images), list(targets)


def detection_loss(model: nn.Module, batch: tuple[Tensor, list[dict[str, Tensor]]]) -> dict[str, Tensor]:
    """``loss_fn`` for :func:`cvkit.train.fit`: the model's named losses on ``(images, targets)``."""
    images, targets = batch
    return model(images, [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets])
