"""A deterministic detection data set: coloured shapes on real-photo backgrounds, with COCO-style annotations.

Each image is a crop of one of the bundled scikit-image photos with 0 to ``max_objects`` shapes
(``cvkit.datasets.shapes``: circles, squares, triangles, ...) pasted on it, each of a random size,
rotation and colour, none overlapping another. Every object keeps its exact mask, so the same images
serve the mask head of notebook 06. Image ``i`` of a data set depends only on ``(seed, i)``, never on
which images were drawn before it, so subsets and orders do not change the data.

Targets use torchvision's detection format (``boxes`` xyxy float32, ``labels`` int64 with 1..K for the
K shape classes and 0 reserved for background, ``masks`` bool ``[G, H, W]``, ``area`` = mask pixels,
``iscrowd``, ``image_id``); :meth:`ShapesDetection.to_coco` writes the same annotations as a COCO
``instances`` dict (boxes as xywh, masks as uncompressed RLE) for pycocotools.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import torch
from torch import Tensor

from cvkit.datasets.shapes import SHAPES, mask_to_box, paste, photo_background, shape_mask

__all__ = ["ShapesDetection", "mask_to_rle"]


def mask_to_rle(mask: Tensor) -> dict:
    """COCO's uncompressed RLE of a bool mask ``[H, W]``: run lengths in column-major order, starting with 0s."""
    flat = mask.t().reshape(-1).to(torch.int8)                        # COCO runs down the columns
    change = torch.nonzero(flat[1:] != flat[:-1]).flatten() + 1
    edges = torch.cat((torch.tensor([0]), change, torch.tensor([flat.numel()])))
    counts = (edges[1:] - edges[:-1]).tolist()
    if flat.numel() and flat[0] == 1:
        counts = [0] + counts                                         # RLE starts with a run of zeros
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


@lru_cache(maxsize=4096)
def _cached_shape(kind: str, size: int, angle: int) -> Tensor:
    return shape_mask(kind, size, float(angle))


class ShapesDetection(torch.utils.data.Dataset):
    """``num_images`` images of ``image_size`` x ``image_size`` pixels with shapes of the chosen ``classes``.

    Args:
        num_images: length of the data set.
        image_size: side of the square images.
        classes: shape names from ``cvkit.datasets.shapes.SHAPES``; class ``k`` (from 1) is ``classes[k - 1]``.
        max_objects: most objects per image; the count is uniform in ``[min_objects, max_objects]``.
        min_objects: fewest objects per image (0 allows images without objects).
        object_size: ``(smallest, largest)`` side of an object's square, in pixels.
        seed: the data set's seed; different seeds give disjoint-looking data (train / test).

    Items are ``(image, target)``: ``image`` float32 ``[3, H, W]`` in [0, 1], ``target`` a dict of tensors.
    """

    def __init__(self, num_images: int, image_size: int = 128, classes: Sequence[str] = ("circle", "square", "triangle", "cross"),
                 max_objects: int = 4, min_objects: int = 1, object_size: tuple[int, int] = (16, 48), seed: int = 0) -> None:
        unknown = [c for c in classes if c not in SHAPES]
        if not classes or unknown:
            raise ValueError(f"classes must be names from {SHAPES}, got {list(classes)!r}")
        if num_images < 0 or image_size < 8:
            raise ValueError(f"num_images must be >= 0 and image_size >= 8, got {num_images} and {image_size}")
        if not 0 <= min_objects <= max_objects:
            raise ValueError(f"need 0 <= min_objects <= max_objects, got {min_objects} and {max_objects}")
        low, high = object_size
        if not 3 <= low <= high <= image_size:
            raise ValueError(f"object_size must be (low, high) with 3 <= low <= high <= image_size, got {object_size}")
        self.num_images, self.image_size, self.classes = num_images, image_size, tuple(classes)
        self.min_objects, self.max_objects, self.object_size, self.seed = min_objects, max_objects, (low, high), seed
        self._items: dict[int, tuple[Tensor, dict[str, Tensor]]] = {}

    def __len__(self) -> int:
        return self.num_images

    @property
    def category_names(self) -> list[str]:
        """Names by label: ``['background', 'circle', ...]``."""
        return ["background", *self.classes]

    def _make(self, index: int) -> tuple[Tensor, dict[str, Tensor]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        size = self.image_size
        image = photo_background(size, size, g)
        count = int(torch.randint(self.min_objects, self.max_objects + 1, (1,), generator=g))
        boxes, labels, masks = [], [], []
        for _ in range(count):
            for _attempt in range(20):                     # place it where it overlaps no earlier object
                side = int(torch.randint(self.object_size[0], self.object_size[1] + 1, (1,), generator=g))
                top, left = (int(v) for v in torch.randint(0, size - side + 1, (2,), generator=g))
                if all(left >= b[2] or left + side <= b[0] or top >= b[3] or top + side <= b[1] for b in boxes):
                    break
            else:
                continue
            label = int(torch.randint(len(self.classes), (1,), generator=g)) + 1
            angle = int(torch.randint(0, 360, (1,), generator=g))
            shape = _cached_shape(self.classes[label - 1], side, angle)
            if not shape.any():
                continue
            color = torch.rand(3, generator=g)
            color[int(torch.randint(3, (1,), generator=g))] = 1.0 if float(torch.rand((), generator=g)) < 0.5 else 0.0
            paste(image, shape, top, left, color)             # a saturated colour, light or dark
            full = torch.zeros(size, size, dtype=torch.bool)
            full[top:top + side, left:left + side] = shape
            boxes.append(mask_to_box(full).tolist())
            labels.append(label)
            masks.append(full)
        box_tensor = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        mask_tensor = torch.stack(masks) if masks else torch.zeros(0, size, size, dtype=torch.bool)
        target = {"boxes": box_tensor, "labels": torch.tensor(labels, dtype=torch.int64),
                  "masks": mask_tensor, "area": mask_tensor.flatten(1).sum(1).float(),
                  "iscrowd": torch.zeros(len(labels), dtype=torch.int64), "image_id": torch.tensor(index)}
        return image, target

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, Tensor]]:
        if not -self.num_images <= index < self.num_images:
            raise IndexError(f"index must be in [0, {self.num_images}), got {index}")
        index %= self.num_images
        if index not in self._items:
            self._items[index] = self._make(index)
        image, target = self._items[index]
        return image.clone(), {key: value.clone() for key, value in target.items()}

    def to_coco(self) -> dict:
        """The annotations as a COCO ``instances`` dict (image ids ``i + 1``, category ids = labels)."""
        images, annotations = [], []
        for i in range(len(self)):
            _, target = self[i]
            images.append({"id": i + 1, "width": self.image_size, "height": self.image_size,
                           "file_name": f"shapes_{self.seed}_{i:05d}.png"})
            for box, label, mask, area in zip(target["boxes"].tolist(), target["labels"].tolist(), target["masks"],
                                              target["area"].tolist()):
                x1, y1, x2, y2 = box
                annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": label,
                                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": area, "iscrowd": 0,
                                    "segmentation": mask_to_rle(mask)})
        categories = [{"id": k, "name": name, "supercategory": "shape"}
                      for k, name in enumerate(self.classes, start=1)]
        return {"images": images, "annotations": annotations, "categories": categories}
