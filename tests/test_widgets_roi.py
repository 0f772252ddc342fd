"""The RoI shift explorer driven without a browser: its curves are the operators' outputs (checked against
torchvision), RoIPool's curve is a staircase and RoIAlign's moves at every sub-pixel step."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

from cvkit.widgets.roi import RoIShiftExplorer  # noqa: E402


@pytest.fixture(scope="module")
def explorer():
    e = RoIShiftExplorer(stride=16, output_size=4, steps=65)
    yield e
    plt.close("all")


def test_curves_are_torchvision_outputs(explorer):
    for step in (0, 17, 64):
        box = explorer.box + torch.tensor([1.0, 0.0, 1.0, 0.0]) * explorer.shifts[step]
        rois = torch.cat((torch.zeros(1), box))[None]
        assert torch.equal(explorer.pooled[step], torchvision.ops.roi_pool(explorer.features, rois, 4, 1 / 16)[0, 0])
        torch.testing.assert_close(explorer.aligned_out[step],
                                   torchvision.ops.roi_align(explorer.features, rois, 4, 1 / 16, 2, True)[0, 0])


def test_roi_pool_jumps_where_roi_align_moves_smoothly(explorer):
    # 64 steps of half a pixel over two cells: a rounded corner crosses a cell boundary only a few times
    pool_changes = (explorer.pooled[1:] != explorer.pooled[:-1]).flatten(1).any(1).sum()
    align_changes = (explorer.aligned_out[1:] != explorer.aligned_out[:-1]).flatten(1).any(1).sum()
    assert pool_changes <= 8
    assert align_changes == 64
    # RoIAlign's steps are small: the largest change per half-pixel step is far below RoIPool's largest jump
    pool_jump = (explorer.pooled[1:] - explorer.pooled[:-1]).abs().max()
    align_step = (explorer.aligned_out[1:] - explorer.aligned_out[:-1]).abs().max()
    assert align_step < pool_jump / 2


def test_sliders_drive_values_label_and_figure(explorer):
    explorer.bin_row.value, explorer.bin_col.value = 1, 2
    explorer.shift.value = 8.0
    k = int((explorer.shifts - 8.0).abs().argmin())
    assert explorer.step == k
    assert explorer.pool_value == float(explorer.pooled[k, 1, 2])
    assert explorer.align_value == float(explorer.aligned_out[k, 1, 2])
    assert "bin (1, 2)" in explorer.label.value
    assert torch.allclose(explorer.current_box(), explorer.box + torch.tensor([8.0, 0.0, 8.0, 0.0]))
    fig = explorer.figure.figure
    assert len(fig.axes) == 2
    curve_x = fig.axes[1].lines[1].get_xdata()
    assert len(curve_x) == len(explorer.shifts)


def test_bad_features_are_refused():
    with pytest.raises(ValueError, match="features must be"):
        RoIShiftExplorer(features=torch.zeros(2, 1, 8, 8))
