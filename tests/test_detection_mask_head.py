"""The mask branch against torchvision's Mask R-CNN functions and modules (forward and backward)."""
import pytest
import torch
from torchvision.models.detection import mask_rcnn as tv_mask_rcnn
from torchvision.models.detection import roi_heads as tv

from cvkit.detection.mask_head import (MaskRCNNHeads, MaskRCNNPredictor, maskrcnn_inference, maskrcnn_loss,
                                       paste_masks_in_image, project_masks_on_boxes)


def _masks(count, height, width, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(count, height, width, generator=g) > 0.5).to(torch.uint8)


def _boxes(count, height, width, seed, dtype=torch.float32):
    """Random boxes inside a height x width image, with a border box and a zero-area box among them."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(count, 2, generator=g) * torch.tensor([width - 2.0, height - 2.0])
    wh = torch.rand(count, 2, generator=g) * torch.tensor([width / 2, height / 2]) + 0.5
    boxes = torch.cat((xy, torch.minimum(xy + wh, torch.tensor([width - 1.0, height - 1.0]))), dim=1)
    boxes[0] = torch.tensor([0.0, 0.0, width - 1.0, height - 1.0])          # the whole image
    boxes[1, 2:] = boxes[1, :2]                                             # zero area
    return boxes.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_project_masks_on_boxes_equals_torchvision(dtype):
    masks = _masks(4, 30, 40, seed=0)
    boxes = _boxes(12, 30, 40, seed=1, dtype=dtype)
    matched = torch.randint(0, 4, (12,), generator=torch.Generator().manual_seed(2))
    ours = project_masks_on_boxes(masks, boxes, matched, 28)
    assert ours.shape == (12, 28, 28) and ours.dtype == dtype
    torch.testing.assert_close(ours, tv.project_masks_on_boxes(masks, boxes, matched, 28))
    assert project_masks_on_boxes(masks, boxes[:0], matched[:0], 28).shape == (0, 28, 28)
    with pytest.raises(ValueError, match="gt_masks"):
        project_masks_on_boxes(masks[0], boxes, matched, 28)


def test_maskrcnn_loss_equals_torchvision_forward_and_backward():
    g = torch.Generator().manual_seed(3)
    masks = [_masks(3, 32, 32, seed=4), _masks(2, 32, 32, seed=5)]
    labels = [torch.tensor([1, 4, 2]), torch.tensor([3, 3])]
    proposals = [_boxes(5, 32, 32, seed=6), _boxes(4, 32, 32, seed=7)]
    matched = [torch.tensor([0, 1, 2, 2, 0]), torch.tensor([1, 0, 0, 1])]
    logits = torch.randn(9, 5, 14, 14, generator=g, dtype=torch.float64, requires_grad=True)
    ours = maskrcnn_loss(logits, proposals, masks, labels, matched)
    (grad,) = torch.autograd.grad(ours, logits)
    theirs = tv.maskrcnn_loss(logits, proposals, masks, labels, matched)
    (grad_theirs,) = torch.autograd.grad(theirs, logits)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(grad, grad_theirs)
    # only each RoI's own class is trained
    assert (grad[torch.arange(9), torch.cat([l[i] for l, i in zip(labels, matched)])] != 0).any()
    others = torch.ones(9, 5, dtype=torch.bool)
    others[torch.arange(9), torch.cat([l[i] for l, i in zip(labels, matched)])] = False
    assert (grad[others] == 0).all()
    # no positive RoI: a zero still attached to the logits
    empty = maskrcnn_loss(logits[:0], [p[:0] for p in proposals], masks, labels, [m[:0] for m in matched])
    assert empty.item() == 0 and empty.requires_grad


def test_maskrcnn_inference_equals_torchvision():
    g = torch.Generator().manual_seed(8)
    logits = torch.randn(7, 4, 28, 28, generator=g)
    labels = [torch.tensor([1, 3, 0]), torch.tensor([], dtype=torch.int64), torch.tensor([2, 2, 1, 3])]
    ours, theirs = maskrcnn_inference(logits, labels), tv.maskrcnn_inference(logits, labels)
    assert [o.shape for o in ours] == [(3, 1, 28, 28), (0, 1, 28, 28), (4, 1, 28, 28)]
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_paste_masks_in_image_equals_torchvision(dtype, padding):
    g = torch.Generator().manual_seed(9)
    masks = torch.rand(20, 1, 28, 28, generator=g, dtype=dtype)
    boxes = _boxes(20, 60, 80, seed=10, dtype=dtype)
    boxes[2] = torch.tensor([70.0, 50.0, 95.0, 75.0])                          # past the right and bottom edges
    boxes[3] = torch.tensor([-6.0, -4.0, 10.0, 12.0])                           # past the left and top edges
    boxes[4] = torch.tensor([5.0, 5.0, 5.5, 40.0])                              # a sliver
    ours = paste_masks_in_image(masks, boxes, (60, 80), padding)
    assert ours.shape == (20, 1, 60, 80) and ours.dtype == dtype
    torch.testing.assert_close(ours, tv.paste_masks_in_image(masks, boxes, (60, 80), padding))


def test_paste_masks_by_hand_and_bad_input():
    # a 2 x 2 mask, no padding, on box (1, 1, 2, 2): a 2 x 2 image patch, so the mask lands as it is
    mask = torch.tensor([[[[0.1, 0.2], [0.3, 0.4]]]])
    pasted = paste_masks_in_image(mask, torch.tensor([[1.0, 1.0, 2.0, 2.0]]), (4, 4), padding=0)[0, 0]
    expected = torch.zeros(4, 4)
    expected[1:3, 1:3] = mask[0, 0]
    torch.testing.assert_close(pasted, expected)
    # entirely above and left of the image: nothing lands (torchvision's loop raises here)
    outside = paste_masks_in_image(mask, torch.tensor([[-9.0, -9.0, -3.0, -3.0]]), (4, 4))
    assert outside.shape == (1, 1, 4, 4) and (outside == 0).all()
    assert paste_masks_in_image(mask[:0], torch.zeros(0, 4), (5, 6)).shape == (0, 1, 5, 6)
    with pytest.raises(ValueError, match="masks"):
        paste_masks_in_image(mask[0], torch.zeros(1, 4), (4, 4))
    with pytest.raises(ValueError, match="boxes"):
        paste_masks_in_image(mask, torch.zeros(2, 4), (4, 4))
    with pytest.raises(ValueError, match="x2 >= x1"):
        paste_masks_in_image(mask, torch.tensor([[3.0, 0.0, 1.0, 2.0]]), (4, 4))


def test_heads_and_predictor_equal_torchvision_with_its_weights():
    torch.manual_seed(11)
    heads_tv, predictor_tv = tv_mask_rcnn.MaskRCNNHeads(16, [32, 32, 32, 32], 1), tv_mask_rcnn.MaskRCNNPredictor(32, 24, 5)
    heads, predictor = MaskRCNNHeads(16, [32, 32, 32, 32], 1), MaskRCNNPredictor(32, 24, 5)
    heads.load_state_dict(heads_tv.state_dict())
    predictor.load_state_dict(predictor_tv.state_dict())
    x = torch.randn(3, 16, 14, 14, dtype=torch.float64, requires_grad=True)
    heads, predictor, heads_tv, predictor_tv = (m.double() for m in (heads, predictor, heads_tv, predictor_tv))
    ours, theirs = predictor(heads(x)), predictor_tv(heads_tv(x))
    assert ours.shape == (3, 5, 28, 28)
    torch.testing.assert_close(ours, theirs)
    upstream = torch.randn_like(ours)
    torch.testing.assert_close(torch.autograd.grad(ours, x, upstream), torch.autograd.grad(theirs, x, upstream))
    # the same initialisation rule: Kaiming normal with fan out, zero bias in the FCN
    fcn = MaskRCNNHeads(256, [256] * 4)
    assert fcn[0][0].weight.std().item() == pytest.approx((2 / (256 * 9)) ** 0.5, rel=0.05)
    assert (fcn[0][0].bias == 0).all()
