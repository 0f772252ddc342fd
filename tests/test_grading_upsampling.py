"""The checks of notebook 07 (cvkit.grading.upsampling): right answers pass, the classic slips of a transposed
convolution and of a convolution matrix fail on the input that exposes them, and the report names that input."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import cvkit.upsampling
from cvkit.grading import ExerciseFailed, check
from cvkit.grading import upsampling as checks


# --- implementations a student might hand in -------------------------------------------------------

def _stamps(x, kernel, stride, overwrite=False):
    h, w = x.shape
    kh, kw = kernel.shape
    out = torch.zeros((h - 1) * stride + kh, (w - 1) * stride + kw, dtype=x.dtype)
    for i in range(h):
        for j in range(w):
            block = out[i * stride: i * stride + kh, j * stride: j * stride + kw]
            block.copy_(x[i, j] * kernel) if overwrite else block.add_(x[i, j] * kernel)
    return out


def transposed_loop(x, kernel, stride):
    """The solution the notebook expects: stamp the kernel, scaled, at (stride i, stride j), adding overlaps."""
    return _stamps(x, kernel, stride)


def transposed_torch(x, kernel, stride):
    return F.conv_transpose2d(x[None, None], kernel[None, None], stride=stride)[0, 0]


def transposed_overwrite(x, kernel, stride):
    """Writes each stamp instead of adding it: overlaps keep the last stamp only."""
    return _stamps(x, kernel, stride, overwrite=True)


def transposed_flipped(x, kernel, stride):
    """Flips the kernel, as if a transposed convolution were a convolution of the upsampled input."""
    return transposed_loop(x, kernel.flip(0, 1), stride)


def transposed_size_h_times_s(x, kernel, stride):
    """Output of H * stride rows (what 'upsampling by s' suggests), cutting the last stamp."""
    full = transposed_loop(x, kernel, stride)
    return full[: x.shape[0] * stride, : x.shape[1] * stride]


def matrix_by_loop(kernel, length, stride, padding):
    n_out = (length + 2 * padding - kernel.numel()) // stride + 1
    matrix = torch.zeros(n_out, length, dtype=kernel.dtype)
    for i in range(n_out):
        for t in range(kernel.numel()):
            col = stride * i - padding + t
            if 0 <= col < length:
                matrix[i, col] = kernel[t]
    return matrix


def matrix_ignores_padding(kernel, length, stride, padding):
    return matrix_by_loop(kernel, length, stride, 0)


def matrix_transposed(kernel, length, stride, padding):
    """Hands in C^T (the transposed convolution's matrix) instead of C."""
    return matrix_by_loop(kernel, length, stride, padding).T


def not_implemented(*args):
    raise NotImplementedError()


CHECKS = {"conv_transpose2d": check.conv_transpose2d, "conv_as_matrix": check.conv_as_matrix}
CASES = {"conv_transpose2d": checks._conv_transpose_cases, "conv_as_matrix": checks._conv_matrix_cases}


@pytest.mark.parametrize("name, fn", [("conv_transpose2d", transposed_loop), ("conv_transpose2d", transposed_torch),
                                      ("conv_as_matrix", matrix_by_loop)])
def test_check_passes_a_correct_implementation(name, fn, capsys):
    CHECKS[name](fn)
    total = len(CASES[name]())
    assert f"{name}: {total}/{total} cases passed -- passed" in capsys.readouterr().out


def test_checks_do_not_ask_cvkit_for_the_answers(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("cvkit must not be the oracle")

    for name in cvkit.upsampling.__all__:
        monkeypatch.setattr(cvkit.upsampling, name, broken)
    check.conv_transpose2d(transposed_loop)
    check.conv_as_matrix(matrix_by_loop)


def test_the_hand_computed_answers_agree_with_torch():
    """Guard against a typo in a hand-made expected value (the check would then fail a right answer)."""
    for name, (x, kernel, stride), expected in checks._conv_transpose_cases():
        torch.testing.assert_close(transposed_torch(x, kernel, stride), expected.to(x.dtype), msg=name)
    for name, (kernel, length, stride, padding), expected in checks._conv_matrix_cases():
        signal = torch.randn(length, dtype=torch.float64)
        by_conv = F.conv1d(signal[None, None], kernel.double()[None, None], stride=stride, padding=padding)[0, 0]
        torch.testing.assert_close(expected.double() @ signal, by_conv, msg=name)


def test_all_names_the_checks_and_check_exposes_them():
    assert sorted(checks.__all__) == sorted(CHECKS)
    for name in checks.__all__:
        assert getattr(check, name) is getattr(checks, name)


@pytest.mark.parametrize("name, fn, failing_case", [
    ("conv_transpose2d", transposed_overwrite, "2 x 2 input, 3 x 3 kernel of ones, stride 2"),
    ("conv_transpose2d", transposed_flipped, "stride 1: every neighbouring pair of stamps overlaps"),
    ("conv_transpose2d", transposed_size_h_times_s, "one pixel"),
    ("conv_as_matrix", matrix_ignores_padding, "the notes' example"),
    ("conv_as_matrix", matrix_transposed, "the notes' example"),
])
def test_check_fails_a_wrong_implementation_and_names_the_input(name, fn, failing_case, capsys):
    with pytest.raises(ExerciseFailed):
        CHECKS[name](fn)
    out = capsys.readouterr().out
    assert "FAILED" in out and f"  x {failing_case}" in out
    assert "input:" in out.split(f"  x {failing_case}", 1)[1].splitlines()[1]


def test_not_implemented_is_reported_once(capsys):
    with pytest.raises(ExerciseFailed, match="not implemented"):
        check.conv_transpose2d(not_implemented)
    assert capsys.readouterr().out.count("not implemented") == 1
