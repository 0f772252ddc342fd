"""Store a notebook the way the kit keeps them: no outputs, except the text outputs of the cells marked
``# NBVAL_CHECK_OUTPUT``, taken from an executed copy (by default a fresh smoke-scale run).

    .venv/bin/python tools/nbclean.py notebooks/01_boxes_and_iou.ipynb [--from build/executed/01_boxes_and_iou.ipynb]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import nbformat

MARK = "# NBVAL_CHECK_OUTPUT"


def clean(path: Path, executed_path: Path | None) -> None:
    if executed_path is None:
        build = Path("build/nbclean")
        subprocess.run([sys.executable, "-m", "cvkit.cli", "run", str(path), "--scale", "smoke", "--build", str(build)],
                       check=True)
        executed_path = build / "executed" / path.name
    nb = nbformat.read(path, as_version=4)
    executed = nbformat.read(executed_path, as_version=4)
    if [c.source for c in nb.cells] != [c.source for c in executed.cells]:
        raise SystemExit(f"{executed_path} is not an executed copy of {path}: the cells differ")
    for cell, done in zip(nb.cells, executed.cells):
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        if MARK in cell.source:   # nbval compares these; it skips a cell without an execution count
            cell.execution_count = done.execution_count
            cell.outputs = [out for out in done.outputs
                            if out.output_type == "stream" and out.get("name") == "stdout"
                            or out.output_type == "execute_result" and set(out.data) == {"text/plain"}]
    nbformat.write(nb, path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--from", dest="executed", type=Path, default=None)
    args = parser.parse_args()
    clean(args.notebook, args.executed)
