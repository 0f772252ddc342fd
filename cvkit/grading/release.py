"""The student version of a notebook: ``cvkit release NOTEBOOK... --out DIR``.

Does what ``nbgrader generate_assignment`` does to the cells, without nbgrader's course folder and
database: every region between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes nbgrader's stub
(``# YOUR CODE HERE`` / ``raise NotImplementedError()`` at the region's indentation, so the function's
signature and docstring stay), every region between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``
is removed, outputs and execution counts are cleared, and solution, grade and read-only cells are locked
(``deletable``/``editable`` cell metadata) as nbgrader locks them. The nbgrader metadata stays, with the
checksums nbgrader adds, so nbgrader can still collect and autograde the students' copies.

A marker outside a cell of the right kind (a solution region in a cell that is not a solution cell,
hidden tests outside a grade cell) is an error, as in nbgrader: releasing it would leak the answer.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import nbformat

CODE_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
TEXT_STUB = ["YOUR ANSWER HERE"]
SOLUTION = ("BEGIN SOLUTION", "END SOLUTION")
HIDDEN = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


class ReleaseError(ValueError):
    """The notebook cannot be released safely (markers unbalanced or in the wrong kind of cell)."""


def _replace_regions(source: str, markers: tuple[str, str], stub: list[str] | None, where: str) -> tuple[str, bool]:
    """Replace each region between the two markers (marker lines included) by ``stub``, or drop it if None."""
    begin, end = markers
    lines, inside, found = [], False, False
    for line in source.split("\n"):
        if begin in line:
            if inside:
                raise ReleaseError(f"{where}: nested '{begin}'")
            inside = found = True
            indent = re.match(r"\s*", line).group(0)
            lines += [indent + s for s in stub or []]
        elif end in line:
            if not inside:
                raise ReleaseError(f"{where}: '{end}' without '{begin}'")
            inside = False
        elif not inside:
            lines.append(line)
    if inside:
        raise ReleaseError(f"{where}: '{begin}' without '{end}'")
    return "\n".join(lines), found


def _checksum(cell: nbformat.NotebookNode, is_grade: bool, is_solution: bool, is_locked: bool) -> str:
    """nbgrader's checksum of a cell (``nbgrader.utils.compute_checksum``), which autograde uses to spot edits."""
    digest = hashlib.md5()
    for part in (cell.source, cell.cell_type, str(is_grade), str(is_solution), str(is_locked),
                 cell.metadata.nbgrader["grade_id"]):
        digest.update(part.encode("utf-8"))
    if is_grade:
        digest.update(str(float(cell.metadata.nbgrader["points"])).encode("utf-8"))
    return digest.hexdigest()


def release_notebook(nb: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """The student version of ``nb`` (a new notebook; ``nb`` is left as it is)."""
    student = nbformat.from_dict(nb)                  # a deep copy
    student.metadata.pop("celltoolbar", None)
    for index, cell in enumerate(student.cells):
        meta = cell.metadata.get("nbgrader", {})
        where = f"{name}, cell {index}"
        is_solution, is_grade, is_locked = bool(meta.get("solution")), bool(meta.get("grade")), bool(meta.get("locked"))
        stub = CODE_STUB if cell.cell_type == "code" else TEXT_STUB
        cell.source, replaced = _replace_regions(cell.source, SOLUTION, stub, where)
        if replaced and not is_solution:
            raise ReleaseError(f"{where}: a solution region in a cell that is not a solution cell")
        if is_solution and not replaced:
            cell.source = "\n".join(stub)             # a solution cell without markers is all solution
        cell.source, removed = _replace_regions(cell.source, HIDDEN, None, where)
        if removed and not is_grade:
            raise ReleaseError(f"{where}: hidden tests in a cell that is not a grade cell")
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        locked = not is_solution and (is_grade or is_locked)     # nbgrader's is_locked
        if is_grade or is_solution or locked:
            meta["checksum"] = _checksum(cell, is_grade, is_solution, locked)
            meta["cell_type"] = cell.cell_type
        if is_solution:                                # nbgrader's LockCells, with its defaults
            cell.metadata["deletable"] = False
        elif is_grade or is_locked:
            cell.metadata["deletable"] = False
            cell.metadata["editable"] = False
    return student


def release(notebooks: list[Path], out: Path) -> list[Path]:
    """Write the student version of each notebook into ``out`` (same file name); returns the paths written."""
    out = Path(out)
    for path in notebooks:
        if Path(path).resolve().parent == out.resolve():
            raise ReleaseError(f"--out {out} holds {Path(path).name} itself: the release would overwrite the solutions")
    released = [release_notebook(nbformat.read(path, as_version=4), Path(path).name) for path in notebooks]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path, nb in zip(notebooks, released):
        target = out / Path(path).name
        nbformat.write(nb, target)
        written.append(target)
    return written
