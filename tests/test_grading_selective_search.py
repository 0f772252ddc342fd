"""The checks of notebook 03 (cvkit.grading.selective_search): right answers pass, classic slips fail and
the report names the input that exposed them; cvkit's own feature merge passes the merge check."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cvkit.grading import ExerciseFailed, check
from cvkit.selective_search import merge_features


def fill_right(size_i, box_i, size_j, box_j, image_size):
    joint = torch.cat((torch.minimum(box_i[:2], box_j[:2]), torch.maximum(box_i[2:], box_j[2:])))
    return 1 - ((joint[2] - joint[0]) * (joint[3] - joint[1]) - size_i - size_j) / image_size


def fill_sum_of_boxes(size_i, box_i, size_j, box_j, image_size):
    """Uses the two boxes' areas instead of the joint box: the gap between the regions is missed."""
    area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
    return 1 - (area(box_i) + area(box_j) - size_i - size_j) / image_size


def fill_intersection_box(size_i, box_i, size_j, box_j, image_size):
    joint = torch.cat((torch.maximum(box_i[:2], box_j[:2]), torch.minimum(box_i[2:], box_j[2:])))
    return 1 - ((joint[2] - joint[0]) * (joint[3] - joint[1]) - size_i - size_j) / image_size


def merge_right(size_i, hist_i, size_j, hist_j):
    return (size_i * hist_i + size_j * hist_j) / (size_i + size_j)


def merge_plain_mean(size_i, hist_i, size_j, hist_j):
    """Averages without weighting by size."""
    return (hist_i + hist_j) / 2


def merge_unnormalised(size_i, hist_i, size_j, hist_j):
    return size_i * hist_i + size_j * hist_j


def test_right_answers_pass(capsys):
    check.fill_similarity(fill_right)
    check.merge_histograms(merge_right)
    assert "7/7 cases passed" in capsys.readouterr().out


def test_cvkit_merge_passes():
    def via_cvkit(size_i, hist_i, size_j, hist_j):
        sizes = np.array([size_i, size_j])
        boxes = np.zeros((2, 4))
        stacked = torch.stack((hist_i, hist_j)).numpy()
        return torch.from_numpy(merge_features(sizes, boxes, stacked, stacked)[2])
    check.merge_histograms(via_cvkit)


@pytest.mark.parametrize("wrong, exposed", [(fill_sum_of_boxes, "touching at a corner"),
                                            (fill_intersection_box, "touching at a corner")])
def test_fill_slips_fail(wrong, exposed, capsys):
    with pytest.raises(ExerciseFailed):
        check.fill_similarity(wrong)
    assert exposed in capsys.readouterr().out


@pytest.mark.parametrize("wrong", [merge_plain_mean, merge_unnormalised])
def test_merge_slips_fail(wrong, capsys):
    with pytest.raises(ExerciseFailed):
        check.merge_histograms(wrong)
    assert "FAILED" in capsys.readouterr().out


def test_not_implemented_is_reported():
    def todo(*args):
        raise NotImplementedError()
    with pytest.raises(ExerciseFailed, match="not implemented"):
        check.fill_similarity(todo)
