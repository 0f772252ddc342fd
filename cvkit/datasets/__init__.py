"""Data the notebooks work on, all deterministic and offline.

- ``load_photo(name)``: a real photo bundled with scikit-image and the boxes drawn on it by hand
  (``data/photo_boxes.json``, see ``data/README.md``); ``photo_names(collection)`` lists them.
- ``noisy_detections(boxes, ...)``: what a detector might output on that photo: several jittered
  copies of every object, scored by how well they fit, plus false positives.

The synthetic data sets of one topic (shapes with masks, glyphs, detection canvases) live in a
submodule of their own, ``cvkit.datasets.<topic>``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from cvkit.boxes import box_iou, clip_boxes_to_image


def data_dir() -> Path:
    """The kit's ``data/`` folder (``CVKIT_DATA`` overrides it)."""
    override = os.environ.get("CVKIT_DATA")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "data"


@lru_cache(maxsize=1)
def _photo_index() -> dict[str, dict]:
    path = data_dir() / "photo_boxes.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: cvkit's data/ folder must sit beside the package "
                                f"(install with 'pip install -e .') or be named by CVKIT_DATA")
    return {entry["name"]: entry for entry in json.loads(path.read_text())["images"]}


def photo_names(collection: str = "core") -> list[str]:
    """Names of the annotated photos of one collection, sorted.

    Args:
        collection: ``'core'``, the four colour photos (astronaut, chelsea, coffee, rocket) that the notebooks,
            widgets and synthetic backgrounds use; ``'proposals'``, every annotated photo (grey ones and
            scikit-image's stereo pair too), the ground truth of the object-proposal evaluation (notebook 03,
            ``benchmarks/bench_selective_search.py``); ``'all'``, every photo.
    """
    if collection not in ("core", "proposals", "all"):
        raise ValueError(f"collection must be 'core', 'proposals' or 'all', got {collection!r}")
    index = _photo_index()
    return sorted(name for name, entry in index.items()
                  if collection == "all" or collection in entry.get("collections", ("core",)))


@dataclass
class Photo:
    """A photo and its hand-drawn boxes."""

    name: str
    image: np.ndarray                       # [H, W, 3] uint8
    boxes: Tensor                           # [N, 4] float32 xyxy
    labels: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)``."""
        return self.image.shape[0], self.image.shape[1]

    def tensor(self) -> Tensor:
        """The photo as a float32 ``Tensor[3, H, W]`` with values in [0, 1], as models and RoI ops take it."""
        return torch.from_numpy(self.image).float().permute(2, 0, 1) / 255


def load_photo(name: str) -> Photo:
    """A scikit-image photo with its boxes: one of ``photo_names('all')`` (``'astronaut'``, ``'coins'``, ...).

    Grey and binary photos come as three equal channels; for a ``skimage.data`` function that returns a tuple
    (``stereo_motorcycle``), the entry's ``element`` says which item is the photo.
    """
    index = _photo_index()
    if name not in index:
        raise ValueError(f"name must be one of {', '.join(sorted(index))}, got {name!r}")
    import skimage.data

    entry = index[name]
    image = getattr(skimage.data, entry["source"].rsplit(".", 1)[-1])()
    if isinstance(image, tuple):
        image = image[entry["element"]]
    if image.dtype == bool:                                                 # a binary silhouette (horse)
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:                                                     # grey: three equal channels
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[:2] != (entry["height"], entry["width"]):
        raise RuntimeError(f"{entry['source']} is {image.shape[:2]}, the annotations expect "
                           f"{(entry['height'], entry['width'])}")
    boxes = torch.tensor([obj["box"] for obj in entry["objects"]], dtype=torch.float32)
    return Photo(name, image, boxes, [obj["label"] for obj in entry["objects"]])


def noisy_detections(boxes: Tensor, image_size: tuple[int, int], per_object: int = 8,
                     false_positives: int = 5, jitter: float = 0.15, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Detections a detector might output for the objects ``boxes``: jittered copies and false positives.

    Each copy moves each side by a Gaussian ``jitter`` times the box's size; its score is a noisy function
    of its IoU with the object, so better boxes tend to score higher (but not always, as with a real
    detector). False positives are random boxes with low-to-medium scores.

    Args:
        boxes: ``Tensor[N, 4]`` the true objects (xyxy).
        image_size: ``(height, width)``; detections are clipped to it.
        per_object: copies per object.
        false_positives: random boxes added.
        jitter: standard deviation of the side offsets, as a fraction of the box's width/height.
        seed: the random seed; the same seed gives the same detections.

    Returns:
        ``(det_boxes [M, 4], scores [M], object_index [M])``, where ``object_index`` is the object a copy
        came from, or -1 for a false positive. Sorted by nothing: the order is random, as a detector's is.
    """
    g = torch.Generator().manual_seed(seed)
    height, width = image_size
    n = boxes.shape[0]
    size = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)                          # [N, 4] (w, h, w, h)
    copies = boxes[:, None, :] + torch.randn(n, per_object, 4, generator=g) * jitter * size[:, None, :]
    copies = copies.reshape(-1, 4)
    copies = torch.cat((torch.minimum(copies[:, :2], copies[:, 2:] - 1), copies[:, 2:]), dim=1)
    source = torch.arange(n).repeat_interleave(per_object)
    fit = box_iou(copies, boxes).gather(1, source[:, None]).squeeze(1).clamp(0, 1)
    scores = (0.35 + 0.6 * fit + 0.08 * torch.randn(copies.shape[0], generator=g)).clamp(0.01, 0.99)

    centre = torch.rand(false_positives, 2, generator=g) * torch.tensor([width, height])
    half = (0.05 + 0.2 * torch.rand(false_positives, 2, generator=g)) * torch.tensor([width, height])
    fake = torch.cat((centre - half, centre + half), dim=1)
    fake_scores = 0.05 + 0.55 * torch.rand(false_positives, generator=g)

    det = clip_boxes_to_image(torch.cat((copies, fake)), (height, width))
    scores = torch.cat((scores, fake_scores))
    origin = torch.cat((source, torch.full((false_positives,), -1)))
    shuffle = torch.randperm(det.shape[0], generator=g)
    return det[shuffle], scores[shuffle], origin[shuffle]
