"""The check of notebook 08 (cvkit.grading.receptive_field): right answers pass, the classic slips of the
receptive-field formula fail on the stack that exposes them, and the report names that stack."""
from __future__ import annotations

import pytest

import cvkit.receptive_field
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


def test_check_passes_the_formula(capsys):
    check.receptive_field_size(size_by_formula)
    total = len(checks._hand_cases()) + len(checks._measured_cases())
    assert f"receptive_field_size: {total}/{total} cases passed -- passed" in capsys.readouterr().out


def test_check_passes_cvkit_and_does_not_use_it_as_oracle(monkeypatch):
    answers = lambda layers: cvkit.receptive_field.receptive_field([(k, s, 0, d) for k, s, d in layers]).size[0]  # noqa: E731
    check.receptive_field_size(answers)
    monkeypatch.setattr(cvkit.receptive_field, "receptive_field", lambda *a: 1 / 0)
    monkeypatch.setattr(cvkit.receptive_field, "empirical_receptive_field", lambda *a: 1 / 0)
    check.receptive_field_size(size_by_formula)


def test_hand_values_agree_with_the_measurement():
    """Guard against a typo in a hand-made expected value: the gradient measurement gives the same sizes."""
    for name, layers, size in checks._hand_cases():
        assert checks._measured_size(layers) == size, name
    assert [size for *_, size in checks._measured_cases()] == [size_by_formula(layers)
                                                               for _, layers, _ in checks._measured_cases()]


def test_all_names_the_checks_and_check_exposes_them():
    assert checks.__all__ == ["receptive_field_size"]
    assert check.receptive_field_size is checks.receptive_field_size


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
