"""`cvkit release` writes the student version: stubs for solutions, no hidden tests, no outputs, cells locked."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from cvkit.grading.release import ReleaseError, release, release_notebook

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _meta(grade_id: str, *, solution: bool = False, grade: bool = False, points: int = 1) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": not solution, "schema_version": 3,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


SOLUTION = ('def area(w, h):\n    """The area of a w x h box."""\n    ### BEGIN SOLUTION\n    return w * h\n'
            '    ### END SOLUTION\n\nprint("defined")')
CHECK = "assert area(2, 3) == 6\n### BEGIN HIDDEN TESTS\nassert area(0, 5) == 0\n### END HIDDEN TESTS\nprint('ok')"


def _toy() -> nbformat.NotebookNode:
    solution = new_code_cell(SOLUTION, metadata=_meta("ex-area", solution=True), execution_count=3)
    solution.outputs = [new_output("stream", name="stdout", text="defined\n")]
    return new_notebook(cells=[
        new_markdown_cell("# Toy"),
        new_code_cell("x = 1", execution_count=1, outputs=[new_output("execute_result", data={"text/plain": "1"},
                                                                       execution_count=1)]),
        new_markdown_cell("Write `area`.", metadata=_meta("ex-area-task")),
        solution,
        new_code_cell(CHECK, metadata=_meta("ex-area-check", grade=True, points=2)),
        new_markdown_cell("Explain.\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION", metadata=_meta("ex-why", solution=True)),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def test_solutions_become_stubs_keeping_signature_and_docstring():
    student = release_notebook(_toy())
    assert student.cells[3].source == ('def area(w, h):\n    """The area of a w x h box."""\n'
                                       '    # YOUR CODE HERE\n    raise NotImplementedError()\n\nprint("defined")')
    assert student.cells[5].source == "Explain.\nYOUR ANSWER HERE"


def test_hidden_tests_are_removed_and_visible_ones_kept():
    student = release_notebook(_toy())
    assert student.cells[4].source == "assert area(2, 3) == 6\nprint('ok')"


def test_outputs_and_execution_counts_are_cleared():
    student = release_notebook(_toy())
    for cell in student.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_metadata_stays_and_cells_are_locked_as_nbgrader_locks_them():
    student = release_notebook(_toy())
    meta = [c.metadata.get("nbgrader", {}) for c in student.cells]
    assert [m.get("grade_id") for m in meta] == [None, None, "ex-area-task", "ex-area", "ex-area-check", "ex-why"]
    assert meta[4]["points"] == 2
    assert student.cells[3].metadata["deletable"] is False and "editable" not in student.cells[3].metadata
    assert student.cells[4].metadata["editable"] is False and student.cells[4].metadata["deletable"] is False
    assert "deletable" not in student.cells[1].metadata
    assert all(len(m["checksum"]) == 32 for m in meta if m)


def test_the_original_is_left_alone():
    nb = _toy()
    before = json.dumps(nb, sort_keys=True)
    release_notebook(nb)
    assert json.dumps(nb, sort_keys=True) == before


@pytest.mark.parametrize("source, metadata, message", [
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", {}, "not a solution cell"),
    ("### BEGIN HIDDEN TESTS\nassert x\n### END HIDDEN TESTS", _meta("t"), "not a grade cell"),
    ("### BEGIN SOLUTION\nx = 1", _meta("s", solution=True), "without"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", _meta("s", solution=True), "nested"),
])
def test_a_marker_that_would_leak_the_answer_is_an_error(source, metadata, message):
    nb = new_notebook(cells=[new_code_cell(source, metadata=metadata)])
    with pytest.raises(ReleaseError, match=message):
        release_notebook(nb, "bad.ipynb")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_kits_notebooks_release_without_leaking(path, tmp_path):
    (written,) = release([path], tmp_path)
    text = written.read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text
    source = nbformat.read(path, as_version=4)
    student = nbformat.read(written, as_version=4)
    nbformat.validate(student)
    assert len(student.cells) == len(source.cells)
    for before, after in zip(source.cells, student.cells):
        meta = before.metadata.get("nbgrader", {})
        if meta.get("solution"):
            assert "raise NotImplementedError()" in after.source
            assert after.source.split("\n")[0] == before.source.split("\n")[0]      # the def line stays
        elif not meta.get("grade"):
            assert after.source == before.source


def test_the_command_refuses_to_overwrite_the_source(tmp_path):
    nb = tmp_path / "toy.ipynb"
    nbformat.write(_toy(), nb)
    result = subprocess.run([sys.executable, "-m", "cvkit.cli", "release", str(nb), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "overwrite" in result.stderr
    assert "BEGIN SOLUTION" in nb.read_text()


def test_the_command_writes_the_student_versions(tmp_path):
    nb = tmp_path / "toy.ipynb"
    nbformat.write(_toy(), nb)
    result = subprocess.run([sys.executable, "-m", "cvkit.cli", "release", str(nb), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    student = nbformat.read(tmp_path / "out" / "toy.ipynb", as_version=4)
    assert "raise NotImplementedError()" in student.cells[3].source
    missing = subprocess.run([sys.executable, "-m", "cvkit.cli", "release", str(tmp_path / "nope.ipynb"), "--out",
                              str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "no such notebook" in missing.stderr
