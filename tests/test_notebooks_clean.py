"""The notebooks follow the kit's rules: no stored outputs, the standard first cell, nbgrader exercises."""
import json
import re
from pathlib import Path

import pytest

import cvkit

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
SETUP_LINES = ("import cvkit", "from cvkit import config", "SCALE, DEVICE = config.scale(), config.device()",
               "config.seed_everything(0)", "print(config.describe())")


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_the_planned_first_notebooks_exist():
    names = [p.name for p in NOTEBOOKS]
    assert names[:3] == ["00_getting_started.ipynb", "01_boxes_and_iou.ipynb", "02_nms_and_map.ipynb"]
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", n) for n in names)


def test_getting_started_lists_every_notebook():
    listed = re.findall(r"^\| (\d\d) \|", _source(_cells(NOTEBOOKS[0])[0]), flags=re.MULTILINE)
    assert listed == [p.name[:2] for p in NOTEBOOKS], "notebook 00's table must name the notebooks that exist"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_outputs_except_checked_text(path):
    for i, cell in enumerate(_cells(path)):
        if cell["cell_type"] != "code":
            continue
        outputs = cell.get("outputs", [])
        if "# NBVAL_CHECK_OUTPUT" not in _source(cell):
            assert outputs == [] and cell.get("execution_count") is None, f"cell {i} stores outputs"
        else:
            assert outputs and cell.get("execution_count"), f"cell {i} is checked by nbval but stores no output"
        for out in outputs:
            assert not any(k.startswith("image/") for k in out.get("data", {})), f"cell {i} stores an image"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_opens_with_markdown_then_the_standard_setup(path):
    cells = _cells(path)
    assert cells[0]["cell_type"] == "markdown" and _source(cells[0]).startswith("# ")
    first_code = next(c for c in cells if c["cell_type"] == "code")
    assert [line for line in _source(first_code).splitlines() if line.strip()] == list(SETUP_LINES)
    kernel = json.loads(path.read_text())["metadata"]["kernelspec"]["name"]
    assert kernel == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercises_follow_nbgrader(path):
    cells = _cells(path)
    grade_ids = []
    solutions = checks = 0
    for i, cell in enumerate(cells):
        meta = cell.get("metadata", {}).get("nbgrader")
        if meta is None:
            continue
        assert meta["schema_version"] == 3 and {"grade", "solution", "locked", "grade_id", "task"} <= set(meta)
        grade_ids.append(meta["grade_id"])
        source = _source(cell)
        if meta["solution"]:
            solutions += 1
            assert cell["cell_type"] == "code" and not meta["locked"] and not meta["grade"]
            assert "### BEGIN SOLUTION" in source and "### END SOLUTION" in source, f"cell {i}"
            following = cells[i + 1]["metadata"].get("nbgrader", {})
            assert following.get("grade") is True, f"solution cell {i} is not followed by its check"
        if meta["grade"]:
            checks += 1
            assert meta["locked"] and meta["points"] > 0 and "check." in source, f"cell {i}"
    assert len(grade_ids) == len(set(grade_ids)), "grade_id values must be unique"
    assert 2 <= solutions == checks


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_cvkit_operator_is_redefined_outside_exercises(path):
    for i, cell in enumerate(_cells(path)):
        if cell["cell_type"] != "code" or cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            continue
        for name in re.findall(r"^\s*def (\w+)\(", _source(cell), re.M):
            assert name not in cvkit.__all__, f"cell {i} redefines cvkit.{name}"
