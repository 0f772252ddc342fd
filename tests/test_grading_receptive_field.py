"""The check of notebook 08 (cvkit.grading.receptive_field): right answers pass, the classic slips of the
receptive-field formula fail on the stack that exposes them, and the report names that stack."""
from __future__ import annotations

import importlib
import math

import pytest

from cvkit.grading import ExerciseFailed, check
from cvkit.grading import receptive_field as checks


def size_by_formula(layers):
    """R = 1 + sum_j (F_j - 1) D_j prod_{i<j} S_i."""
    size, jump = 1, 1
    for kernel, stride, dilation in layers:
        size += (kernel - 1) * dilation * jump
        jump *= stride
    return size


def size_own_stride(layers):
    """Multiplies by the layer's own stride too (the product up to j instead of before j)."""
    size, jump = 1, 1
    for kernel, stride, dilation in layers:
        jump *= stride
        size += (kernel - 1) * dilation * jump
    return size


def size_no_dilation(layers):
    return size_by_formula([(k, s, 1) for k, s, _ in layers])


def size_f_times_d(layers):
    """F D - 1 instead of (F - 1) D: right without dilation and stride, too wide with them."""
    size, jump = 1, 1
    for kernel, stride, dilation in layers:
        size += kernel * dilation * jump - 1
        jump *= stride
    return size


def cover_by_offsets(dilations, kernel):
    """The offsets the middle output reaches: each layer adds d * t for t in -(k // 2)..k // 2."""
    reached = {0}
    for d in dilations:
        reached = {r + d * t for r in reached for t in range(-(kernel // 2), kernel // 2 + 1)}
    return len(reached) == max(reached) - min(reached) + 1


def cover_by_gcd(dilations, kernel):
    """Only the common-factor half of the rule: misses gaps like 1, 2, 9."""
    return math.gcd(*dilations) == 1


def cover_always(dilations, kernel):
    return True


def test_check_passes_the_formula(capsys):
    check.receptive_field_size(size_by_formula)
    total = len(checks._hand_cases()) + len(checks._measured_cases())
    assert f"receptive_field_size: {total}/{total} cases passed -- passed" in capsys.readouterr().out


def test_check_passes_cvkit_and_does_not_use_it_as_oracle(monkeypatch):
    # cvkit.receptive_field is the function (a top-level export); the module is reached by its import name
    module = importlib.import_module("cvkit.receptive_field")
    answers = lambda layers: module.receptive_field([(k, s, 0, d) for k, s, d in layers]).size[0]  # noqa: E731
    check.receptive_field_size(answers)
    monkeypatch.setattr(module, "receptive_field", lambda *a: 1 / 0)
    monkeypatch.setattr(module, "empirical_receptive_field", lambda *a: 1 / 0)
    check.receptive_field_size(size_by_formula)


def test_hand_values_agree_with_the_measurement():
    """Guard against a typo in a hand-made expected value: the gradient measurement gives the same sizes."""
    for name, layers, size in checks._hand_cases():
        assert checks._measured_size(layers) == size, name
    assert [size for *_, size in checks._measured_cases()] == [size_by_formula(layers)
                                                               for _, layers, _ in checks._measured_cases()]


def test_all_names_the_checks_and_check_exposes_them():
    assert checks.__all__ == ["receptive_field_size", "dilations_cover"]
    assert check.receptive_field_size is checks.receptive_field_size
    assert check.dilations_cover is checks.dilations_cover


def test_cover_check_passes_a_right_answer_and_numpy_bools(capsys):
    check.dilations_cover(cover_by_offsets)
    total = len(checks._cover_cases())
    assert f"dilations_cover: {total}/{total} cases passed -- passed" in capsys.readouterr().out
    import numpy as np
    check.dilations_cover(lambda d, k: np.bool_(cover_by_offsets(d, k)))


def test_cover_hand_answers_agree_with_the_measurement():
    for name, (dilations, kernel), answer in checks._cover_cases():
        assert bool(checks._reached_offsets(dilations, kernel).all()) == answer, name
        assert cover_by_offsets(dilations, kernel) == answer, name


@pytest.mark.parametrize("fn, failing_case", [(cover_by_gcd, "dilations 1, 2, 9"),
                                              (cover_always, "dilations 2, 2, 2"),
                                              (lambda d, k: "yes", "dilations 1, 2, 4, 8")])
def test_cover_check_fails_wrong_answers(fn, failing_case, capsys):
    with pytest.raises(ExerciseFailed):
        check.dilations_cover(fn)
    out = capsys.readouterr().out
    assert f"  x {failing_case}" in out
    assert "dilations=" in out.split(f"  x {failing_case}", 1)[1].splitlines()[1]


@pytest.mark.parametrize("fn, failing_case", [
    (size_own_stride, "ResNet's stem"),
    (size_no_dilation, "3 x 3 layers dilated 1, 2, 4, 8"),
    (size_f_times_d, "3 x 3 layers dilated 1, 2, 4, 8"),
])
def test_check_fails_a_wrong_formula_and_names_the_stack(fn, failing_case, capsys):
    with pytest.raises(ExerciseFailed):
        check.receptive_field_size(fn)
    out = capsys.readouterr().out
    assert "FAILED" in out and f"  x {failing_case}" in out
    assert "layers=" in out.split(f"  x {failing_case}", 1)[1].splitlines()[1]
