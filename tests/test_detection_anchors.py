"""Anchors against torchvision's AnchorGenerator: cell anchors, grids, strides, order, dtypes, devices."""
import pytest
import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator as TVAnchorGenerator
from torchvision.models.detection.image_list import ImageList as TVImageList

from cvkit.detection import AnchorGenerator, ImageList, cell_anchors

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("sizes, ratios", [((128, 256, 512), (0.5, 1.0, 2.0)), ((16, 32, 64), (0.5, 1.0, 2.0)),
                                           ((23,), (1.0,)), ((10, 15), (0.3, 1.7, 3.0))])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cell_anchors_equal_torchvision(sizes, ratios, dtype):
    expected = TVAnchorGenerator().generate_anchors(sizes, ratios, dtype=dtype)
    got = cell_anchors(sizes, ratios, dtype=dtype)
    assert got.dtype == dtype
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_cell_anchors_by_hand():
    # size 32, ratio 1: a 32 x 32 box centred on 0; ratio 4 (h / w): w = 16, h = 64
    torch.testing.assert_close(cell_anchors((32,), (1.0, 4.0)),
                               torch.tensor([[-16.0, -16.0, 16.0, 16.0], [-8.0, -32.0, 8.0, 32.0]]))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("image_hw, feature_hws, sizes, ratios", [
    ((128, 128), [(16, 16)], ((16, 32, 64),), ((0.5, 1.0, 2.0),)),
    ((100, 150), [(13, 19)], ((20, 40),), ((0.5, 2.0),)),                       # strides 7 and 7 (floor)
    ((96, 64), [(24, 16), (12, 8), (6, 4)], ((8,), (16, 24), (32, 48, 64)), ((1.0,), (0.5, 1.0), (0.5, 1.0, 2.0))),
    ((33, 47), [(1, 1)], ((30,),), ((1.0,),)),
])
def test_anchor_generator_equal_torchvision(device, dtype, image_hw, feature_hws, sizes, ratios):
    images = torch.zeros(2, 3, *image_hw, device=device, dtype=dtype)
    features = [torch.zeros(2, 8, *hw, device=device, dtype=dtype) for hw in feature_hws]
    expected = TVAnchorGenerator(sizes, ratios)(TVImageList(images, [image_hw] * 2), features)
    got = AnchorGenerator(sizes, ratios)(ImageList(images, [image_hw] * 2), features)
    assert len(got) == 2
    for g, e in zip(got, expected):
        assert g.dtype == dtype and g.device.type == device
        torch.testing.assert_close(g, e, rtol=0, atol=0)


def test_anchor_count_order_and_centres():
    generator = AnchorGenerator(((16, 32),), ((0.5, 1.0, 2.0),))
    anchors = generator(ImageList.from_tensor(torch.zeros(1, 3, 64, 64)), [torch.zeros(1, 4, 8, 8)])[0]
    assert generator.num_anchors_per_location() == [6]
    assert anchors.shape == (8 * 8 * 6, 4)
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    # position (i, j) = (1, 2) is the 11th position in row-major order, centred on (2 * 8, 1 * 8)
    torch.testing.assert_close(centres[10 * 6:11 * 6], torch.tensor([[16.0, 8.0]] * 6))
    area = (anchors[:, 2] - anchors[:, 0]) * (anchors[:, 3] - anchors[:, 1])
    # sizes 16 and 32 alternate within a position (ratio-major): areas close to 256 and 1024 (rounding)
    assert torch.allclose(area[:6:2], torch.tensor(256.0), rtol=0.15)
    assert torch.allclose(area[1:6:2], torch.tensor(1024.0), rtol=0.15)


def test_flat_sizes_mean_one_per_level_like_torchvision():
    sizes, ratios = (16, 32), (0.5, 1.0)
    images = torch.zeros(1, 3, 64, 64)
    features = [torch.zeros(1, 4, 8, 8), torch.zeros(1, 4, 4, 4)]
    expected = TVAnchorGenerator(sizes, ratios)(TVImageList(images, [(64, 64)]), features)[0]
    torch.testing.assert_close(AnchorGenerator(sizes, ratios)(ImageList.from_tensor(images), features)[0], expected)


def test_bad_input():
    with pytest.raises(ValueError, match="sizes and aspect_ratios"):
        AnchorGenerator(((16,), (32,)), ((1.0,),) * 3)
    with pytest.raises(ValueError, match="positive"):
        cell_anchors((16,), (0.0,))
    with pytest.raises(ValueError, match="feature_maps"):
        AnchorGenerator(((16,),), ((1.0,),))(ImageList.from_tensor(torch.zeros(1, 3, 8, 8)), [])
    with pytest.raises(ValueError, match="images must be a Tensor"):
        ImageList.from_tensor(torch.zeros(3, 8, 8))
