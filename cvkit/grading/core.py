"""The machinery behind every exercise check: run the student's function on cases whose answers come
from an independent oracle (torchvision, hand-computed values, invariants), and report what failed
on which input.

A check prints one line per case and raises :class:`ExerciseFailed` (an ``AssertionError``, which is
what nbgrader counts as a failed test) if any case fails.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch


class ExerciseFailed(AssertionError):
    """Raised by a check when the student's function gets a case wrong."""


Comparison = Callable[[Any, Any], "str | None"]   # returns why they differ, or None when they agree


def close(rtol: float = 1e-5, atol: float = 1e-6) -> Comparison:
    """Compare numbers, arrays or tensors elementwise with a tolerance (NaN equals NaN)."""
    def compare(got: Any, expected: Any) -> str | None:
        try:
            got_t = torch.as_tensor(np.asarray(got.detach().cpu() if isinstance(got, torch.Tensor) else got,
                                               dtype=np.float64))
        except (TypeError, ValueError):
            return f"expected a number or an array, got {type(got).__name__}"
        exp_t = torch.as_tensor(np.asarray(expected, dtype=np.float64))
        if got_t.shape != exp_t.shape:
            return f"expected shape {list(exp_t.shape)}, got shape {list(got_t.shape)}"
        if not torch.allclose(got_t, exp_t, rtol=rtol, atol=atol, equal_nan=True):
            if exp_t.numel() <= 12:
                return f"expected {_round(exp_t)}, got {_round(got_t)}"
            gap = (got_t - exp_t).abs().nan_to_num(nan=float("inf"))
            gap[got_t.isnan() & exp_t.isnan()] = 0                      # NaN where NaN is due is right
            worst = int(gap.argmax())
            index = tuple(int(i) for i in np.unravel_index(worst, tuple(exp_t.shape)))
            return (f"expected {float(exp_t.reshape(-1)[worst]):.6g} at index {list(index)}, "
                    f"got {float(got_t.reshape(-1)[worst]):.6g}")
        return None
    return compare


def _round(t: torch.Tensor) -> object:
    """A tensor as nested lists of numbers rounded for reading."""
    return torch.round(t * 1e4).div(1e4).tolist() if t.dim() else round(float(t), 4)


def equal_sequence(got: Any, expected: Any) -> str | None:
    """Compare as sequences of integers in order (indices kept by NMS, say)."""
    try:
        got_list = [int(v) for v in (got.tolist() if hasattr(got, "tolist") else got)]
    except (TypeError, ValueError):
        return f"expected a sequence of integers, got {type(got).__name__}"
    expected_list = [int(v) for v in (expected.tolist() if hasattr(expected, "tolist") else expected)]
    if got_list != expected_list:
        return f"expected {expected_list}, got {got_list}"
    return None


@dataclass
class Case:
    """One input for the student's function and the oracle's answer."""

    name: str                           # the input in words: "disjoint boxes", "one box inside the other"
    args: tuple
    expected: Any
    compare: Comparison = field(default_factory=close)
    show: str = ""                      # how to print the input (default: repr of args, shortened)


def _short(value: Any, limit: int = 160) -> str:
    if isinstance(value, torch.Tensor):
        small = 0 < value.numel() <= 16
        text = f"tensor({value.tolist()})" if small else f"tensor of shape {list(value.shape)}"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_cases(exercise: str, student_fn: Callable, cases: list[Case], verbose: bool = True) -> None:
    """Run ``student_fn`` on every case, print a report, raise ExerciseFailed if any case fails."""
    if not callable(student_fn):
        raise ExerciseFailed(f"{exercise}: expected your function, got {type(student_fn).__name__}")
    failures = []
    for case in cases:
        shown = case.show or ", ".join(_short(a) for a in case.args)
        try:
            got = student_fn(*[a.clone() if isinstance(a, torch.Tensor) else a for a in case.args])
        except NotImplementedError:
            if verbose:
                print(f"{exercise}: not implemented yet (your function raises NotImplementedError)")
            raise ExerciseFailed(f"{exercise}: not implemented yet") from None
        except Exception as err:  # the student's bug is reported, never crashes the check
            last = traceback.extract_tb(err.__traceback__)[-1]
            failures.append((case, shown, f"raised {type(err).__name__}: {err} (line {last.lineno})"))
            continue
        why = case.compare(got, case.expected)
        if why is not None:
            failures.append((case, shown, why))
    passed = len(cases) - len(failures)
    if verbose:
        mark = "passed" if not failures else "FAILED"
        print(f"{exercise}: {passed}/{len(cases)} cases passed -- {mark}")
        for case, shown, why in failures:
            print(f"  x {case.name}\n      input:  {shown}\n      {why}")
    if failures:
        raise ExerciseFailed(f"{exercise}: {len(failures)} of {len(cases)} cases failed, first: "
                             f"{failures[0][0].name}: {failures[0][2]}")
