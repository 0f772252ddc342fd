"""Exercise checks: ``from cvkit.grading import check`` then ``check.iou(my_iou)`` in a notebook.

Every check runs the student's function on cases answered by an independent oracle and says what
failed on which input (see :mod:`cvkit.grading.core`).
"""
from cvkit.grading import check
from cvkit.grading.core import Case, ExerciseFailed, run_cases

__all__ = ["check", "Case", "ExerciseFailed", "run_cases"]
