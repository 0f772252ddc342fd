"""`cvkit grade` on a toy class: every kind of broken or hostile submission costs only its own marks.

The class is built here from a small source notebook (two pure-Python exercises, so that each sandbox
starts in about a second) and graded by the command, in a subprocess, as an instructor would run it.
"""
from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from cvkit.grading.grade import free_names, match_notebooks, read_cells, read_source
from cvkit.grading.sandbox import describe, probe

ADD = "def add(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION\n"
MEAN = "def mean(values):\n    ### BEGIN SOLUTION\n    return math.fsum(values) / len(values)\n    ### END SOLUTION\n"
ADD_CHECK = ("from cvkit.grading import Case, run_cases\n\n"
             "run_cases('add', add, [Case('1 + 2', (1, 2), 3), Case('-5 + 2', (-5, 2), -3)])\n"
             "### BEGIN HIDDEN TESTS\n"
             "big = 10**6\n"
             "run_cases('add, hidden', add, [Case('a large sum', (big, 7), big + 7)])\n"
             "### END HIDDEN TESTS")
MEAN_CHECK = ("run_cases('mean', mean, [Case('[1, 2]', ([1, 2],), 1.5), Case('[5]', ([5],), 5.0)])\n"
              "### BEGIN HIDDEN TESTS\n"
              "run_cases('mean, hidden', mean, [Case('two large numbers', ([10**6, 10**6 + 2],), 10**6 + 1.0)])\n"
              "### END HIDDEN TESTS")


def _meta(grade_id: str, *, solution: bool = False, grade: bool = False, points: int = 0) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": not solution, "schema_version": 3,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def _notebook(add: str = ADD, mean: str = MEAN, before: tuple[str, ...] = (), order: str = "normal") -> dict:
    """The toy notebook with the given solution cells; ``before``: cells the student put before the exercises."""
    cells = {
        "title": new_markdown_cell("# Toy assignment"),
        "setup": new_code_cell("import math"),
        "add": new_code_cell(add, metadata=_meta("ex-add", solution=True)),
        "add-check": new_code_cell(ADD_CHECK, metadata=_meta("ex-add-check", grade=True, points=1)),
        "mean": new_code_cell(mean, metadata=_meta("ex-mean", solution=True)),
        "mean-check": new_code_cell(MEAN_CHECK, metadata=_meta("ex-mean-check", grade=True, points=2)),
        "after": new_code_cell("print(run_cases.__name__)"),     # needs the import of a grade cell
    }
    names = {"normal": ["title", "setup", "add", "add-check", "mean", "mean-check"],
             "with_after": ["title", "setup", "add", "add-check", "mean", "mean-check", "after"],
             "reordered": ["title", "mean-check", "mean", "add-check", "add", "setup"],
             "deleted": ["title", "setup", "add"]}[order]
    extra = [new_code_cell(src) for src in before]
    chosen = [cells[n] for n in names]
    return new_notebook(cells=chosen[:2] + extra + chosen[2:],
                        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def _write(path: Path, nb: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.from_dict(nb), path)
    return path


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _grade(subs: Path, source: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "cvkit.cli", "grade", str(subs), "--source", str(source), "--out", str(out),
           "--call-timeout", "10", "--cell-timeout", "40", "--timeout", "120", "--memory", "6144", "--jobs", "2", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def _rows(out: Path) -> dict[tuple[str, str], tuple[float, float, str]]:
    with open(out / "grades.csv", newline="") as f:
        return {(r["student"], r["exercise"]): (float(r["points"]), float(r["max_points"]), r["status"])
                for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def toy_class(tmp_path_factory):
    """Source notebook, released copy, the class of submissions, and the graded output."""
    root = tmp_path_factory.mktemp("toy")
    source = _write(root / "instructor" / "toy.ipynb", _notebook())
    out = root / "grades"
    subs = root / "submitted"
    released = subprocess.run([sys.executable, "-m", "cvkit.cli", "release", str(source), "--out",
                               str(root / "release")], capture_output=True, text=True, timeout=300)
    assert released.returncode == 0, released.stderr
    untouched = json.loads((root / "release" / "toy.ipynb").read_text())

    wrong_mean = "def mean(values):\n    return sum(values) // len(values)\n"
    students = {
        "correct": _notebook(),
        "partly_wrong": _notebook(mean=wrong_mean),
        "raising": _notebook(add="def add(a, b):\n    raise ValueError('boom')\n"),
        "infinite_loop": _notebook(add="def add(a, b):\n    while True:\n        pass\n"),
        "loop_at_top_level": _notebook(before=("while True:\n    pass",)),
        "sys_exit": _notebook(mean="import sys\ndef mean(values):\n    sys.exit(0)\n",
                              before=("import sys\nsys.exit(3)",)),
        "os_exit": _notebook(add="import os\ndef add(a, b):\n    os._exit(0)\n"),
        "segfault": _notebook(mean="import ctypes\ndef mean(values):\n    return ctypes.string_at(0)\n"),
        "segfault_at_top_level": _notebook(before=("import ctypes\nctypes.string_at(0)",)),
        "huge_memory": _notebook(add="def add(a, b):\n    block = bytearray(64 * 2**30)\n    return a + b\n",
                                 before=("hoard = bytearray(64 * 2**30)",)),
        "writes_outside": _notebook(add=(
            "def add(a, b):\n"
            f"    for target in [{str(out / 'grades.csv')!r}, {str(subs / 'correct' / 'toy.ipynb')!r},\n"
            f"                   {str(root / 'escape.txt')!r}, '../escape.txt']:\n"
            "        try:\n"
            "            open(target, 'w').write('student,exercise,points\\n')\n"
            "        except OSError:\n"
            "            pass\n"
            "    return a + b\n")),
        "reads_solutions": _notebook(add=(
            "def add(a, b):\n"
            "    try:\n"
            f"        text = open({str(source)!r}).read()\n"
            "    except OSError:\n"
            "        return 0          # no peeking: a wrong answer\n"
            "    return a + b if 'HIDDEN TESTS' in text else 0\n")),
        "patches_checker": _notebook(
            add="def add(a, b):\n    return 0\n",
            mean="def mean(values):\n    return 0\n",
            before=("import cvkit.grading.core as core\nimport cvkit.grading\n"
                    "core.run_cases = cvkit.grading.run_cases = lambda *args, **kwargs: None\n"
                    "core.close = lambda *args, **kwargs: (lambda got, expected: None)",)),
        "prints_megabytes": _notebook(
            add="def add(a, b):\n    for _ in range(20):\n        print('x' * 2**20)\n    return a + b\n",
            before=("print('y' * 20 * 2**20)",)),
        "returns_an_object": _notebook(add="def add(a, b):\n    return object()\n"),
        "deleted_cells": _notebook(order="deleted"),
        "reordered_cells": _notebook(order="reordered"),
        "not_started": untouched,
    }
    for name, nb in students.items():
        _write(subs / name / "toy.ipynb", nb)
    (subs / "invalid_json").mkdir()
    (subs / "invalid_json" / "toy.ipynb").write_text('{"cells": [{"cell_type": "code", "source": "def add(')
    _write(subs / "renamed" / "Copy of toy.ipynb", _notebook())
    _write(subs / "no_notebook" / "notes.txt.ipynb", new_notebook(cells=[new_code_cell("x = 1")]))
    _write(subs / "one_file.ipynb", _notebook())              # a student handing in one file, not a folder
    before = _digest(subs)
    result = _grade(subs, source, out)
    return {"root": root, "source": source, "subs": subs, "out": out, "result": result, "before": before,
            "students": sorted([*students, "invalid_json", "renamed", "no_notebook", "one_file"])}


EXPECTED = {   # student: (add points, add status, mean points, mean status)
    "correct": (1, "passed", 2, "passed"),
    "partly_wrong": (1, "passed", 0, "failed"),
    "raising": (0, "failed", 2, "passed"),
    "infinite_loop": (0, "timeout", 2, "passed"),
    "loop_at_top_level": (1, "passed", 2, "passed"),
    "sys_exit": (1, "passed", 0, "failed"),
    "os_exit": (0, "crashed", 2, "passed"),
    "segfault": (1, "passed", 0, "crashed"),
    "segfault_at_top_level": (1, "passed", 2, "passed"),
    "huge_memory": (0, "failed", 2, "passed"),
    "writes_outside": (1, "passed", 2, "passed"),
    "reads_solutions": (0, "failed", 2, "passed"),
    "patches_checker": (0, "failed", 0, "failed"),
    "prints_megabytes": (1, "passed", 2, "passed"),
    "returns_an_object": (0, "failed", 2, "passed"),
    "deleted_cells": (1, "passed", 0, "missing"),
    "reordered_cells": (1, "passed", 2, "passed"),
    "not_started": (0, "not implemented", 0, "not implemented"),
    "invalid_json": (0, "invalid notebook", 0, "invalid notebook"),
    "renamed": (1, "passed", 2, "passed"),
    "no_notebook": (0, "no notebook", 0, "no notebook"),
    "one_file": (1, "passed", 2, "passed"),
}


def test_the_command_finishes_and_reports_the_sandbox(toy_class):
    result = toy_class["result"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert "graded 22 students" in result.stderr
    assert "sandbox: own process" in result.stderr
    assert "student/s" in result.stderr or "22/22" in result.stderr            # the progress bar


def test_every_student_and_exercise_has_a_row(toy_class):
    rows = _rows(toy_class["out"])
    assert sorted({s for s, _ in rows}) == sorted(EXPECTED) == toy_class["students"]
    assert len(rows) == 2 * len(EXPECTED)
    for (student, exercise), (points, most, status) in rows.items():
        assert most == {"ex-add-check": 1, "ex-mean-check": 2}[exercise]   # from the source notebook


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_each_student_gets_exactly_their_own_marks(toy_class, student):
    if student == "reads_solutions" and not probe()["landlock"]:
        pytest.skip("no Landlock here: the sandbox cannot hide the instructor's notebook")
    rows = _rows(toy_class["out"])
    add_points, add_status, mean_points, mean_status = EXPECTED[student]
    assert rows[(student, "ex-add-check")] == (add_points, 1, add_status)
    assert rows[(student, "ex-mean-check")] == (mean_points, 2, mean_status)


def test_feedback_says_what_failed_on_which_input(toy_class):
    feedback = toy_class["out"] / "feedback"
    assert "raised" not in (feedback / "correct.md").read_text()       # no cell failed, not even the last one
    assert "mean, hidden: 1/1 cases passed" in (feedback / "correct.md").read_text()
    partly = (feedback / "partly_wrong.md").read_text()
    assert "Total: 1 / 3 points" in partly
    assert "x [1, 2]" in partly and "expected 1.5, got 1.0" in partly
    assert "raised ValueError: boom" in (feedback / "raising.md").read_text()
    assert "within the 10 s limit for one call" in (feedback / "infinite_loop.md").read_text()
    assert "killed by SIGSEGV" in (feedback / "segfault.md").read_text()
    assert "left out" in (feedback / "segfault_at_top_level.md").read_text()
    assert "not implemented yet" in (feedback / "not_started.md").read_text()
    assert "`mean` is not defined in your notebook" in (feedback / "deleted_cells.md").read_text()
    assert "found under the name Copy of toy.ipynb" in (feedback / "renamed.md").read_text()
    assert "UnreadableResult" in (feedback / "returns_an_object.md").read_text()
    assert "left out" not in (feedback / "patches_checker.md").read_text()      # the patch did run, in vain
    assert (feedback / "prints_megabytes.md").stat().st_size < 50_000          # output is not stored
    assert sorted(p.stem for p in feedback.glob("*.md")) == sorted(EXPECTED)


def test_no_submission_is_modified_and_nothing_escapes(toy_class):
    assert _digest(toy_class["subs"]) == toy_class["before"]
    assert not (toy_class["root"] / "escape.txt").exists()
    assert not list(toy_class["root"].parent.glob("escape.txt"))
    assert sorted(p.name for p in toy_class["out"].iterdir()) == ["feedback", "grades.csv"]


def test_grading_resumes_without_regrading_finished_students(toy_class):
    out, subs = toy_class["out"], toy_class["subs"]
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "feedback").iterdir()}
    rows_before = _rows(out)
    _write(subs / "late" / "toy.ipynb", _notebook(mean="def mean(values):\n    return 1.5\n"))
    try:
        result = _grade(subs, toy_class["source"], out)
    finally:
        (subs / "late" / "toy.ipynb").unlink()
        (subs / "late").rmdir()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "graded 1 students, 22 already in" in result.stderr
    rows = _rows(out)
    assert {k: v for k, v in rows.items() if k[0] != "late"} == rows_before
    assert rows[("late", "ex-add-check")] == (1, 1, "passed")
    assert rows[("late", "ex-mean-check")] == (0, 2, "failed")
    assert {p.name: p.stat().st_mtime_ns for p in (out / "feedback").iterdir() if p.name != "late.md"} == stamps


def test_out_inside_the_submissions_is_refused(tmp_path):
    source = _write(tmp_path / "toy.ipynb", _notebook())
    (tmp_path / "subs").mkdir()
    result = _grade(tmp_path / "subs", source, tmp_path / "subs" / "grades")
    assert result.returncode == 2 and "outside the submissions folder" in result.stderr
    assert not (tmp_path / "subs" / "grades").exists()


# --- the pieces, without a sandbox ----------------------------------------------------------------

def test_points_come_from_the_source_and_grade_cells_are_not_run_from_the_submission(tmp_path):
    source = read_source(_write(tmp_path / "src" / "toy.ipynb", _notebook(order="with_after")))
    assert [(e.grade_id, e.points) for e in source.exercises] == [("ex-add-check", 1.0), ("ex-mean-check", 2.0)]
    assert "HIDDEN TESTS" in source.exercises[0].source
    cheat = _notebook(order="with_after")
    cheat["cells"][3]["metadata"]["nbgrader"]["points"] = 100        # the student's copy claims 100 points
    cells = dict(read_cells(_write(tmp_path / "student" / "toy.ipynb", cheat), source))
    assert sorted(cells) == [1, 2, 3, 4, 5, 6]
    assert cells[2] == ADD and cells[4] == MEAN and cells[6] == "print(run_cases.__name__)"
    assert cells[3] == "from cvkit.grading import run_cases"     # only the import a later cell needs
    assert cells[5] == ""


def test_free_names_are_what_the_grade_cell_needs_from_elsewhere():
    assert free_names(ADD_CHECK) == ["add"]
    assert free_names(MEAN_CHECK) == ["Case", "mean", "run_cases"]      # the instructor's imports, the student's mean
    assert free_names("import torch\nx = torch.ones(2)\ncheck.iou(my_iou, x, [y for y in range(3)])") == \
        ["check", "my_iou"]


def test_a_renamed_notebook_is_matched_by_its_exercise_ids(tmp_path):
    source = read_source(_write(tmp_path / "src" / "toy.ipynb", _notebook()))
    other = _write(tmp_path / "s" / "unrelated.ipynb", new_notebook(cells=[new_code_cell("x = 1")]))
    renamed = _write(tmp_path / "s" / "mine.ipynb", _notebook())
    assert match_notebooks([source], [other, renamed]) == {"toy.ipynb": (renamed, "toy.ipynb was found under "
                                                                                   "the name mine.ipynb")}
    assert match_notebooks([source], [other])["toy.ipynb"] == (None, "")


def test_describe_names_the_guarantee():
    assert "WARNING" in describe({"landlock": 0, "uid": 0})
    text = describe({"landlock": 6, "uid": 65534})
    assert "Landlock ABI 6" in text and "no TCP" in text and "no signals" in text
