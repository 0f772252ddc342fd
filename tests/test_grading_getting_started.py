import pytest
import torch

from cvkit.grading import ExerciseFailed, check


def test_correct_solutions_pass(capsys):
    check.box_area(lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))
    check.box_centers(lambda b: (b[:, :2] + b[:, 2:]) / 2)
    assert "5/5 cases passed" in capsys.readouterr().out


def test_wrong_area_fails_and_names_the_input(capsys):
    with pytest.raises(ExerciseFailed):
        check.box_area(lambda b: (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1))   # the legacy +1
    out = capsys.readouterr().out
    assert "FAILED" in out and "one 10 x 5 box" in out and "expected [50.0], got [66.0]" in out


def test_a_raising_solution_is_reported_not_crashed(capsys):
    def broken(boxes):
        return boxes[:, 7]
    with pytest.raises(ExerciseFailed):
        check.box_area(broken)
    assert "raised IndexError" in capsys.readouterr().out


def test_not_implemented_is_reported(capsys):
    def stub(boxes):
        raise NotImplementedError()
    with pytest.raises(ExerciseFailed):
        check.box_centers(stub)
    assert "not implemented" in capsys.readouterr().out


def test_empty_input_is_a_case():
    def no_empty(boxes):            # forgets that N may be 0
        if len(boxes) == 0:
            return torch.zeros(1)
        return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    with pytest.raises(ExerciseFailed, match="no boxes"):
        check.box_area(no_empty)


def test_the_check_does_not_let_the_student_modify_its_inputs():
    def mutating(boxes):
        boxes[:, 2] += 100
        return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    with pytest.raises(ExerciseFailed):
        check.box_area(mutating)
    check.box_area(lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))   # cases intact afterwards


def test_not_a_function():
    with pytest.raises(ExerciseFailed, match="expected your function"):
        check.box_area(torch.zeros(3))
