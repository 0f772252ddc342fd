"""The tiny Faster R-CNN end to end: a training step lowers the loss, empty images and images without
objects, the R-CNN and Fast R-CNN pipelines on given proposals, and bad input."""
import pytest
import torch

from cvkit.detection import TinyFasterRCNN, collate, detection_loss, predict
from cvkit.datasets.detection import ShapesDetection

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _model(**kwargs):
    torch.manual_seed(0)
    return TinyFasterRCNN(num_classes=3, backbone_widths=(8, 16, 16, 32), representation_size=32, **kwargs)


@pytest.fixture(scope="module")
def batch():
    data = ShapesDetection(4, image_size=64, classes=("circle", "square"), object_size=(12, 28), seed=5)
    return collate([data[i] for i in range(4)])


@pytest.mark.parametrize("roi_method", ["align", "pool"])
def test_one_training_step_lowers_the_loss_on_a_fixed_batch(batch, roi_method):
    model = _model(roi_method=roi_method)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.0)

    def loss():
        torch.manual_seed(1)                               # the same anchor and RoI draws both times
        return detection_loss(model, batch)

    before = loss()
    assert set(before) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}
    assert all(torch.isfinite(v) and v.dim() == 0 for v in before.values())
    optimizer.zero_grad()
    sum(before.values()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)
    optimizer.step()
    with torch.no_grad():
        after = loss()
    assert sum(after.values()).item() < sum(before.values()).item()


@pytest.mark.parametrize("device", DEVICES)
def test_runs_on_an_empty_image_and_on_an_image_without_objects(device):
    model = _model().to(device)
    model.eval()
    empty = torch.zeros(2, 3, 64, 64, device=device)
    photo = ShapesDetection(1, image_size=64, min_objects=0, max_objects=0, seed=0)[0][0][None].to(device)
    assert photo.std() > 0.01                                   # a photo crop, not a blank image
    for images in (empty, photo):
        detections = model(images)
        assert len(detections) == len(images)
        for d in detections:
            assert d["boxes"].dim() == 2 and d["boxes"].shape[1] == 4
            assert d["scores"].shape == d["labels"].shape == d["boxes"].shape[:1]
            assert d["labels"].dtype == torch.int64 and bool((d["labels"] >= 1).all())
            assert bool((d["boxes"][:, :2] >= 0).all() and (d["boxes"][:, 2:] <= 64).all())   # clipped to the image
    model.train()
    nothing = [{"boxes": torch.zeros(0, 4, device=device), "labels": torch.zeros(0, dtype=torch.int64, device=device)}] * 2
    for images in (empty, photo.expand(2, -1, -1, -1)):
        losses = model(images, nothing)
        assert all(torch.isfinite(v) for v in losses.values())
        assert losses["loss_rpn_box_reg"].item() == 0 and losses["loss_box_reg"].item() == 0   # nothing to regress
        sum(losses.values()).backward()


def test_pipelines_on_given_proposals(batch):
    images, targets = batch
    model = _model()
    model.eval()
    # Fast R-CNN on the ground-truth boxes as proposals, R-CNN on the same boxes one warped crop at a time
    fast = model.detect_from_proposals(images, [t["boxes"] for t in targets])
    assert len(fast) == 4 and all(d["boxes"].shape[1] == 4 for d in fast)
    rcnn = model.detect_rcnn_style(images[0], targets[0]["boxes"])
    assert rcnn["boxes"].shape[1] == 4 and rcnn["scores"].shape == rcnn["labels"].shape
    none = model.detect_rcnn_style(images[0], torch.zeros(0, 4))
    assert none["boxes"].shape == (0, 4)


def test_predict_collects_detections_and_targets():
    data = ShapesDetection(3, image_size=64, classes=("circle", "square"), object_size=(12, 28), seed=6)
    predictions, targets = predict(_model(), data, batch_size=2)
    assert len(predictions) == len(targets) == 3
    assert torch.equal(targets[2]["boxes"], data[2][1]["boxes"])
    assert set(predictions[0]) == {"boxes", "scores", "labels"}


def test_bad_input(batch):
    model = _model()
    with pytest.raises(ValueError, match="targets must be given"):
        model(batch[0])
    model.eval()
    with pytest.raises(ValueError, match=r"Tensor\[B, 3, H, W\]"):
        model(torch.zeros(3, 64, 64))
    with pytest.raises(ValueError, match="num_classes"):
        TinyFasterRCNN(num_classes=1)
