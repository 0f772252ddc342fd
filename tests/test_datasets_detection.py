"""The shapes detection set: determinism, exact boxes and masks, COCO export read back by pycocotools,
and cvkit.metrics' COCO evaluation equal to pycocotools' on it."""
import numpy as np
import pytest
import torch
from pycocotools import mask as coco_mask

from cvkit import metrics
from cvkit.datasets.detection import ShapesDetection, mask_to_rle
from cvkit.datasets.shapes import mask_to_box
from cvkit.detection import pycocotools_stats


@pytest.fixture(scope="module")
def data():
    return ShapesDetection(12, image_size=64, object_size=(8, 24), max_objects=4, min_objects=0, seed=3)


def test_items_are_deterministic_and_independent_of_order(data):
    again = ShapesDetection(12, image_size=64, object_size=(8, 24), max_objects=4, min_objects=0, seed=3)
    for i in (7, 2, 11):                      # another order, another instance
        image, target = again[i]
        assert torch.equal(image, data[i][0])
        assert torch.equal(target["boxes"], data[i][1]["boxes"])
    other = ShapesDetection(12, image_size=64, object_size=(8, 24), max_objects=4, min_objects=0, seed=4)
    assert not torch.equal(other[0][0], data[0][0])


def test_targets_are_consistent(data):
    counts = []
    for i in range(len(data)):
        image, target = data[i]
        assert image.shape == (3, 64, 64) and image.dtype == torch.float32
        assert 0 <= float(image.min()) and float(image.max()) <= 1
        g = target["boxes"].shape[0]
        counts.append(g)
        assert target["labels"].dtype == torch.int64 and target["labels"].shape == (g,)
        assert bool(((target["labels"] >= 1) & (target["labels"] <= len(data.classes))).all())
        assert target["masks"].shape == (g, 64, 64) and target["masks"].dtype == torch.bool
        for box, mask, area in zip(target["boxes"], target["masks"], target["area"]):
            assert torch.equal(box, mask_to_box(mask))
            assert float(area) == float(mask.sum())
        assert not bool(target["masks"].sum(0).gt(1).any())                # objects do not overlap
        if g:
            assert float(target["boxes"].min()) >= 0 and float(target["boxes"].max()) <= 64
    assert 0 in counts and max(counts) > 1


def test_mask_to_rle_by_hand_and_with_pycocotools():
    mask = torch.tensor([[0, 1, 1], [0, 1, 0]], dtype=torch.bool)
    # column-major: column 0 = 0 0, column 1 = 1 1, column 2 = 1 0 -> runs 2 zeros, 3 ones, 1 zero
    assert mask_to_rle(mask) == {"size": [2, 3], "counts": [2, 3, 1]}
    assert mask_to_rle(torch.ones(2, 2, dtype=torch.bool))["counts"] == [0, 4]
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        m = torch.rand(9, 13, generator=g) > 0.5
        rle = coco_mask.frPyObjects(mask_to_rle(m), 9, 13)
        assert np.array_equal(coco_mask.decode(rle).astype(bool), m.numpy())


def test_coco_export_reads_back(data):
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = data.to_coco()
    coco.createIndex()
    assert sorted(coco.getCatIds()) == list(range(1, len(data.classes) + 1))
    for i in range(len(data)):
        _, target = data[i]
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=[i + 1]))
        assert len(annotations) == len(target["labels"])
        for ann, box, label, mask in zip(annotations, target["boxes"], target["labels"], target["masks"]):
            x, y, w, h = ann["bbox"]
            assert [x, y, x + w, y + h] == box.tolist() and ann["category_id"] == int(label)
            assert np.array_equal(coco.annToMask(ann).astype(bool), mask.numpy())


def test_cvkit_coco_metrics_equal_pycocotools_on_the_data_set(data):
    g = torch.Generator().manual_seed(1)
    predictions, targets = [], []
    for i in range(len(data)):
        _, target = data[i]
        boxes = target["boxes"]
        jitter = (torch.rand(boxes.shape, generator=g) - 0.5) * 6
        noisy = torch.cat((boxes + jitter, torch.tensor([[5.0, 5.0, 30.0, 30.0]])))
        noisy[:, 2:] = torch.max(noisy[:, 2:], noisy[:, :2] + 1)
        labels = torch.cat((target["labels"], torch.tensor([1])))
        labels[::3] = labels[::3] % len(data.classes) + 1                  # some wrong classes
        predictions.append({"boxes": noisy, "scores": torch.rand(len(noisy), generator=g), "labels": labels})
        targets.append(target)
    expected = pycocotools_stats(data.to_coco(), predictions)
    got = metrics.coco_map(predictions, targets).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert 0 < got[1] < 1                       # AP@0.5 neither trivial nor zero


def test_bad_arguments():
    with pytest.raises(ValueError, match="classes"):
        ShapesDetection(3, classes=("dragon",))
    with pytest.raises(ValueError, match="object_size"):
        ShapesDetection(3, image_size=32, object_size=(8, 40))
    with pytest.raises(IndexError):
        ShapesDetection(3)[3]
