"""Grade a folder of submitted notebooks: ``cvkit grade SUBMISSIONS --source NOTEBOOK...``.

Every student (one subfolder or one ``.ipynb`` per student) is graded against the instructor's notebooks
(the *source*: solutions and hidden tests in place). For each source notebook the student's copy runs in
its own sandbox (:mod:`cvkit.grading.sandbox`); then each nbgrader grade cell of the **source** notebook,
hidden tests included, runs in this process with the student's functions replaced by proxies into the
sandbox. A grade cell that finishes without an exception earns its ``points`` (from the source notebook's
nbgrader metadata, never the student's copy), as in nbgrader.

Results go to ``OUT/grades.csv`` (one row per student and exercise: student, exercise, points,
max_points, status), rewritten atomically after each student, and ``OUT/feedback/STUDENT.md`` (what each
check printed: which input failed and how). Students already in ``grades.csv`` are skipped, so a run that
was interrupted resumes where it stopped. Nothing is ever written into the submissions folder.

Statuses: ``passed``, ``failed`` (a check or hidden test failed), ``not implemented``, ``missing`` (the
function the grade cell needs is not defined), ``timeout``, ``crashed`` (the student's code killed its
process), ``error`` (anything else went wrong in the grade cell), ``no notebook``, ``invalid notebook``.
"""
from __future__ import annotations

import ast
import builtins
import contextlib
import csv
import io
import json
import os
import re
import sys
import tempfile
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvkit.grading import check  # noqa: F401  (every check module is loaded before any student runs)
from cvkit.grading.sandbox import (Limits, RemoteFunction, Sandbox, SandboxLost, describe, exposed_by, probe,
                                   readable_paths)

FIELDS = ("student", "exercise", "points", "max_points", "status")
MAX_NOTEBOOK_MB = 50          # a larger file is not read (it is not a notebook a student wrote)
MAX_REPORT_CHARS = 20_000     # what one grade cell's output may add to the feedback


class _ThreadOutput(io.TextIOBase):
    """``sys.stdout`` while grading: each thread's prints go to that thread's buffer (students graded in parallel)."""

    def __init__(self, fallback: Any) -> None:
        self.fallback = fallback
        self.local = threading.local()

    def write(self, text: str) -> int:
        return (getattr(self.local, "buffer", None) or self.fallback).write(text)

    def flush(self) -> None:
        (getattr(self.local, "buffer", None) or self.fallback).flush()


@contextlib.contextmanager
def _capture(buffer: io.StringIO):
    """Send this thread's stdout and stderr to ``buffer``."""
    if isinstance(sys.stdout, _ThreadOutput) and isinstance(sys.stderr, _ThreadOutput):
        sys.stdout.local.buffer = sys.stderr.local.buffer = buffer
        try:
            yield
        finally:
            sys.stdout.local.buffer = sys.stderr.local.buffer = None
    else:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            yield


class InvalidNotebook(ValueError):
    """The file is not a notebook the grader can read."""


@dataclass
class Exercise:
    """One nbgrader grade cell of a source notebook."""

    grade_id: str
    points: float
    source: str                 # the instructor's cell: visible checks and hidden tests


@dataclass
class SourceNotebook:
    """An instructor's notebook: its grade cells and the imports its cells may rely on."""

    path: Path
    exercises: list[Exercise]
    imports: dict[str, str]     # name -> the import statement that binds it
    ids: set[str]               # every nbgrader grade_id, to recognise a renamed copy
    check_imports: dict[str, str]   # grade_id -> the visible imports of that grade cell

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class Result:
    """The outcome of one exercise for one student."""

    exercise: Exercise
    points: float
    status: str
    report: str = ""


def _cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def _nbgrader(cell: dict) -> dict:
    meta = cell.get("metadata") if isinstance(cell, dict) else None
    meta = meta.get("nbgrader") if isinstance(meta, dict) else None
    return meta if isinstance(meta, dict) else {}


def _python(source: str) -> str:
    """A cell's source as plain Python (IPython's magics and shell escapes turned into calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def _import_bindings(cells: list[dict]) -> dict[str, str]:
    """Each name bound by a top-level import in the notebook, with a statement that binds only it."""
    bound: dict[str, str] = {}
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        try:
            tree = ast.parse(_python(_cell_source(cell)))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not (isinstance(node, ast.ImportFrom) and node.level):
                for alias in node.names:
                    if alias.name == "*":
                        continue
                    name = alias.asname or alias.name.split(".")[0]
                    single = (ast.Import(names=[alias]) if isinstance(node, ast.Import)
                              else ast.ImportFrom(module=node.module, names=[alias], level=0))
                    bound.setdefault(name, ast.unparse(single))
    return bound


def read_source(path: Path) -> SourceNotebook:
    """The grade cells (with points) and imports of an instructor's notebook."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    exercises, ids = [], set()
    for cell in nb["cells"]:
        meta = _nbgrader(cell)
        if "grade_id" in meta:
            ids.add(str(meta["grade_id"]))
        if meta.get("grade") and cell.get("cell_type") == "code":
            exercises.append(Exercise(str(meta["grade_id"]), float(meta.get("points", 0)), _cell_source(cell)))
    if not exercises:
        raise ValueError(f"{path}: no nbgrader grade cells (is this the instructor's notebook?)")
    used_elsewhere = set()                  # names the other cells read: a grade cell's import they rely on stays
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code" and not _nbgrader(cell).get("grade"):
            with contextlib.suppress(SyntaxError):
                used_elsewhere.update(free_names(_python(_cell_source(cell))))
    check_imports = {}
    for ex in exercises:
        visible = re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", "", ex.source, flags=re.S)
        bound = _import_bindings([{"cell_type": "code", "source": visible}])
        check_imports[ex.grade_id] = "\n".join(v for k, v in bound.items() if k in used_elsewhere)
    return SourceNotebook(Path(path), exercises, _import_bindings(nb["cells"]), ids, check_imports)


def read_cells(path: Path, source: SourceNotebook) -> list[tuple[int, str]]:
    """The code cells of a student's notebook to run, without its copies of the grade cells.

    Raises:
        InvalidNotebook: the file is too large, not JSON, or has no list of cells.
    """
    if path.stat().st_size > MAX_NOTEBOOK_MB * 2**20:
        raise InvalidNotebook(f"{path.name} is larger than {MAX_NOTEBOOK_MB} MB")
    try:
        nb = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (ValueError, RecursionError) as err:
        raise InvalidNotebook(f"{path.name} is not valid notebook JSON ({str(err)[:200]})") from None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise InvalidNotebook(f"{path.name} has no list of cells")
    check_ids = {ex.grade_id for ex in source.exercises}
    run = []
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        meta = _nbgrader(cell)
        if meta.get("grade_id") in check_ids and not meta.get("solution"):
            # the grader runs the instructor's version of this cell itself; the notebook keeps its imports
            run.append((index, source.check_imports.get(meta["grade_id"], "")))
            continue
        run.append((index, _cell_source(cell)))
    return run


def free_names(code: str) -> list[str]:
    """Names a cell reads but neither defines, imports nor finds among Python's builtins."""
    tree = ast.parse(code)
    loaded, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update(a.asname or a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return sorted(loaded - bound - set(dir(builtins)))


def _status_of_failure(err: BaseException, missing: set[str], events: list[str]) -> str:
    if isinstance(err, NameError) and getattr(err, "name", None) in missing:
        return "missing"
    if "timeout" in events:
        return "timeout"
    if "crashed" in events or isinstance(err, SandboxLost):
        return "crashed"
    if isinstance(err, NotImplementedError) or "not implemented yet" in str(err):
        return "not implemented"
    if isinstance(err, AssertionError):
        return "failed"
    return "error"


def grade_exercise(exercise: Exercise, notebook: SourceNotebook, sandbox: Sandbox) -> Result:
    """Run the instructor's grade cell here, on proxies of the student's functions in ``sandbox``.

    Each grade cell runs in a namespace of its own, holding the instructor's imports it names and the
    student's functions it names: what an earlier grade cell defined is not there, because that cell may
    have stopped at a failure (a grade cell, hidden tests included, must build its own inputs).
    """
    code = _python(exercise.source)
    namespace: dict[str, Any] = {"__name__": "__cvkit_grading__"}
    names = free_names(code)
    output = io.StringIO()
    missing: set[str] = set()
    events_before = len(sandbox.events)
    try:
        for name in names:
            if name in notebook.imports:
                exec(notebook.imports[name], namespace)           # the instructor's import: trusted
        wanted = [n for n in names if n not in namespace]
        if wanted:
            sandbox.ensure_running()
            for name, found in sandbox.lookup(wanted).items():
                if found["kind"] == "function":
                    namespace[name] = RemoteFunction(sandbox, name)
                elif found["kind"] == "data":
                    namespace[name] = sandbox.get(name)
                else:
                    missing.add(name)
        with _capture(output):
            exec(compile(code, f"<grade cell {exercise.grade_id}>", "exec"), namespace)
    except Exception as err:
        status = _status_of_failure(err, missing, sandbox.events[events_before:])
        why = "".join(traceback.format_exception_only(type(err), err)).strip()
        if status == "missing":
            why = (f"`{err.name}` is not defined in your notebook: did you delete or rename its cell, or does "
                   f"the cell that defines it fail?")
        return Result(exercise, 0.0, status, _clip(output.getvalue()) + f"\n{why}")
    return Result(exercise, exercise.points, "passed", _clip(output.getvalue()))


def _clip(text: str) -> str:
    if len(text) <= MAX_REPORT_CHARS:
        return text
    return text[:MAX_REPORT_CHARS] + f"\n... ({len(text) - MAX_REPORT_CHARS} more characters left out)"


def find_notebooks(submission: Path) -> list[Path]:
    if submission.is_file():
        return [submission]
    return sorted((p for p in submission.rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts and not p.is_symlink() and p.is_file()),
                  key=lambda p: (len(p.parts), str(p)))


def match_notebooks(sources: list[SourceNotebook], files: list[Path]) -> dict[str, tuple[Path | None, str]]:
    """Which submitted file answers which source notebook: the same name, else the file carrying its ids."""
    chosen: dict[str, tuple[Path | None, str]] = {}
    taken: set[Path] = set()
    for nb in sources:
        same = [f for f in files if f.name == nb.name and f not in taken]
        if same:
            chosen[nb.name] = (same[0], "")
            taken.add(same[0])
    for nb in sources:
        if nb.name in chosen:
            continue
        for f in files:
            if f in taken or f.stat().st_size > MAX_NOTEBOOK_MB * 2**20:
                continue
            text = f.read_text(encoding="utf-8", errors="replace")
            if any(f'"grade_id": "{gid}"' in text or f'"grade_id":"{gid}"' in text for gid in nb.ids):
                chosen[nb.name] = (f, f"{nb.name} was found under the name {f.name}")
                taken.add(f)
                break
        else:
            chosen[nb.name] = (None, "")
    return chosen


def grade_submission(student_path: Path, sources: list[SourceNotebook], limits: Limits,
                     env: dict[str, str], read_paths: list[str]) -> tuple[list[Result], list[str]]:
    """Grade one student; returns the results of every exercise of every source notebook and notes per notebook."""
    results: list[Result] = []
    lines: list[str] = []
    matched = match_notebooks(sources, find_notebooks(student_path))
    folder = student_path if student_path.is_dir() else None
    for nb in sources:
        path, renamed = matched[nb.name]
        lines.append(f"\n## {nb.name}\n")
        if renamed:
            lines.append(f"- note: {renamed}")
        if path is None:
            lines.append(f"- no notebook named {nb.name} (nor one holding its exercises) was found")
            results += [Result(ex, 0.0, "no notebook") for ex in nb.exercises]
            continue
        try:
            cells = read_cells(path, nb)
        except InvalidNotebook as err:
            lines.append(f"- {err}")
            results += [Result(ex, 0.0, "invalid notebook") for ex in nb.exercises]
            continue
        with Sandbox(cells, files=folder, limits=limits, env=env, read_paths=read_paths) as sandbox:
            nb_results = [grade_exercise(ex, nb, sandbox) for ex in nb.exercises]
            lines += [f"- note: {note}" for note in sandbox.notes]
            lines += [f"- cell {i} of your notebook raised {why}" for i, why in sandbox.cell_errors[:10]]
        for r in nb_results:
            lines.append(f"\n### {r.exercise.grade_id}: {r.points:g} / {r.exercise.points:g} points, {r.status}\n")
            if r.report.strip():
                lines.append("```\n" + r.report.strip().replace("```", "'''") + "\n```")
        results += nb_results
    return results, lines


def _grade_safely(student_path: Path, sources: list[SourceNotebook], limits: Limits, env: dict[str, str],
                  read_paths: list[str]) -> tuple[list[Result], list[str]]:
    """:func:`grade_submission`, but a failure of the grader itself costs this student only, as ``error`` rows."""
    try:
        return grade_submission(student_path, sources, limits, env, read_paths)
    except Exception as err:
        why = "".join(traceback.format_exception_only(type(err), err)).strip()
        return ([Result(ex, 0.0, "error") for nb in sources for ex in nb.exercises],
                [f"\nThe grader failed on this submission ({why}); please tell your instructor."])


def _write_atomic(path: Path, text: str) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def read_grades(path: Path) -> list[dict]:
    """The rows of an existing grades.csv (empty if there is none)."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [dict(row) for row in csv.DictReader(f)]


def find_submissions(folder: Path, skip: Path | None = None) -> list[tuple[str, Path]]:
    """``(student, path)``: each subfolder, and each ``.ipynb`` file directly in ``folder``."""
    found: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.is_symlink() or (skip is not None and entry.resolve() == skip):
            continue
        if entry.is_dir():
            name = entry.name
        elif entry.suffix == ".ipynb" and entry.is_file():
            name = entry.stem if entry.stem not in found else entry.name
        else:
            continue
        found[name] = entry
    return sorted(found.items())


def _safe_name(student: str) -> str:
    return re.sub(r"[^\w.-]", "_", student).lstrip(".") or "_"


def grade_all(submissions: Path, sources: list[Path], out: Path, limits: Limits | None = None,
              scale: str = "smoke", progress: bool = True, jobs: int = 1) -> dict[str, Any]:
    """Grade every student in ``submissions`` that ``out/grades.csv`` does not list yet, ``jobs`` at a time.

    Returns a summary: ``{"graded": [...], "skipped": [...], "isolation": str, "warnings": [...]}``.
    """
    from tqdm.auto import tqdm

    submissions, out = Path(submissions).resolve(), Path(out).resolve()
    if out == submissions or submissions in out.parents:
        raise ValueError(f"--out must lie outside the submissions folder {submissions}, got {out}")
    limits = limits or Limits()
    notebooks = [read_source(p) for p in sources]
    names = [nb.name for nb in notebooks]
    if len(set(names)) != len(names):
        raise ValueError(f"two source notebooks share a name: {names}")
    env = {"CVKIT_SMOKE": "1"} if scale == "smoke" else {"CVKIT_SCALE": scale}
    paths = readable_paths()
    warnings = [f"{secret} is readable by submissions: it lies under {p}, which Python needs; move it elsewhere"
                for secret, p in exposed_by(paths, [*sources, out, submissions])]
    isolation = describe(probe(limits, paths))
    out.mkdir(parents=True, exist_ok=True)
    (out / "feedback").mkdir(exist_ok=True)
    grades = out / "grades.csv"
    rows = read_grades(grades)
    done = {row["student"] for row in rows}
    students = find_submissions(submissions, skip=out)
    todo = [(s, p) for s, p in students if s not in done]
    graded = []

    def finish(student: str, results: list[Result], lines: list[str]) -> None:
        total, most = sum(r.points for r in results), sum(r.exercise.points for r in results)
        header = [f"# Feedback for {student}\n", f"Total: {total:g} / {most:g} points"]
        _write_atomic(out / "feedback" / f"{_safe_name(student)}.md", "\n".join(header + lines) + "\n")
        rows.extend({"student": student, "exercise": r.exercise.grade_id, "points": f"{r.points:g}",
                     "max_points": f"{r.exercise.points:g}", "status": r.status} for r in results)
        _write_atomic(grades, _csv_text(rows))            # the CSV lists a student only once all is written
        graded.append(student)

    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _ThreadOutput(sys.stdout), _ThreadOutput(sys.stderr)
    try:
        with tqdm(total=len(todo), desc="grading", unit="student", file=saved[1], disable=not progress) as bar, \
                ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {pool.submit(_grade_safely, path, notebooks, limits, env, paths): student
                       for student, path in todo}
            try:
                for future in as_completed(futures):
                    finish(futures[future], *future.result())
                    bar.update(1)
            except BaseException:                          # Ctrl-C: start no one else; a rerun resumes
                for future in futures:
                    future.cancel()
                raise
    finally:
        sys.stdout, sys.stderr = saved
    if not grades.exists():
        _write_atomic(grades, _csv_text(rows))
    return {"graded": graded, "skipped": sorted(done & {s for s, _ in students}), "isolation": isolation,
            "warnings": warnings, "grades": grades}
