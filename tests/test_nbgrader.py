"""The real `nbgrader generate_assignment` accepts the kit's notebooks, and `cvkit release` writes what it writes."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cvkit.grading.release import release

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
NBGRADER = Path(sys.executable).parent / "nbgrader"


@pytest.fixture(scope="module")
def nbgrader_release(tmp_path_factory):
    if not NBGRADER.exists():
        pytest.skip("nbgrader is not installed (pip install -e '.[test]')")
    course = tmp_path_factory.mktemp("course")
    (course / "source" / "ps1").mkdir(parents=True)
    for path in NOTEBOOKS:
        shutil.copy(path, course / "source" / "ps1" / path.name)
    env = {**os.environ, "PATH": f"{NBGRADER.parent}{os.pathsep}{os.environ.get('PATH', '')}"}   # nbgrader calls alembic
    result = subprocess.run([str(NBGRADER), "generate_assignment", "ps1", f"--CourseDirectory.root={course}",
                             f"--CourseDirectory.db_url=sqlite:///{course / 'gradebook.db'}", "--force"],
                            cwd=course, env=env, capture_output=True, text=True, timeout=600)
    return course, result


def test_nbgrader_accepts_every_notebook(nbgrader_release):
    course, result = nbgrader_release
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ERROR" not in result.stderr
    assert sorted(p.name for p in (course / "release" / "ps1").glob("*.ipynb")) == [p.name for p in NOTEBOOKS]


def test_nbgrader_recorded_every_exercise(nbgrader_release):
    course, _ = nbgrader_release
    import sqlite3

    with sqlite3.connect(course / "gradebook.db") as db:
        recorded = {row for row in db.execute("SELECT base_cell.name, grade_cells.max_score FROM grade_cells "
                                              "JOIN base_cell ON base_cell.id = grade_cells.id")}
    expected = {(c["metadata"]["nbgrader"]["grade_id"], float(c["metadata"]["nbgrader"]["points"]))
                for p in NOTEBOOKS for c in json.loads(p.read_text())["cells"]
                if c["metadata"].get("nbgrader", {}).get("grade")}
    assert expected and recorded == expected


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_cvkit_release_writes_what_nbgrader_writes(nbgrader_release, path, tmp_path):
    course, _ = nbgrader_release
    theirs = json.loads((course / "release" / "ps1" / path.name).read_text())
    (ours_path,) = release([course / "source" / "ps1" / path.name], tmp_path)   # the very copy nbgrader read
    ours = json.loads(ours_path.read_text())
    assert len(ours["cells"]) == len(theirs["cells"])
    for index, (a, b) in enumerate(zip(ours["cells"], theirs["cells"])):
        assert a == b, f"{path.name} cell {index} differs from nbgrader's"
    assert ours["metadata"] == theirs["metadata"]
