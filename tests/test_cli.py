"""`cvkit run` executes notebooks in a fresh kernel, saves them and reports failing cells."""
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from cvkit.cli import build_parser


def _write(path: Path, *sources: str) -> Path:
    cells = [new_markdown_cell("# a test notebook")] + [new_code_cell(s) for s in sources]
    nbformat.write(new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}}),
                   path)
    return path


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cvkit.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_run_saves_the_executed_notebook_and_html(tmp_path):
    nb = _write(tmp_path / "ok.ipynb", "from cvkit import config\nprint('scale is', config.scale())", "x = 6 * 7\nx")
    result = _run("run", str(nb), "--scale", "cpu", "--build", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    executed = nbformat.read(tmp_path / "out" / "executed" / "ok.ipynb", as_version=4)
    assert "scale is cpu" in executed.cells[1].outputs[0]["text"]     # --scale reached the kernel
    assert executed.cells[2].outputs[0]["data"]["text/plain"] == "42"
    assert "scale is cpu" in (tmp_path / "out" / "html" / "ok.html").read_text()
    assert "cell/s" in result.stderr or "2/2" in result.stderr           # the progress bar


def test_smoke_scale_sets_cvkit_smoke(tmp_path):
    nb = _write(tmp_path / "smoke.ipynb", "import os\nprint(os.environ.get('CVKIT_SMOKE'), os.environ.get('CVKIT_SCALE'))")
    result = _run("run", str(nb), "--scale", "smoke", "--build", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    executed = nbformat.read(tmp_path / "out" / "executed" / "smoke.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"].strip() == "1 smoke"


def test_a_failing_cell_exits_non_zero_and_shows_the_cell(tmp_path):
    nb = _write(tmp_path / "bad.ipynb", "a = 1", "b = a / 0  # the culprit", "print('never reached')")
    result = _run("run", str(nb), "--build", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 1
    assert "FAILED bad.ipynb: cell 2" in result.stderr
    assert "b = a / 0  # the culprit" in result.stderr
    assert "ZeroDivisionError" in result.stderr
    saved = nbformat.read(tmp_path / "out" / "executed" / "bad.ipynb", as_version=4)
    assert saved.cells[3].get("outputs", []) == []                       # stopped at the failure


def test_missing_notebook_is_a_clear_error(tmp_path):
    result = _run("run", str(tmp_path / "nope.ipynb"), cwd=tmp_path)
    assert result.returncode == 2 and "no such notebook" in result.stderr


def test_bad_scale_is_refused():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "x.ipynb", "--scale", "huge"])


def test_console_script_is_declared():
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert 'cvkit = "cvkit.cli:main"' in text
