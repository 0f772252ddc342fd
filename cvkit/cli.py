"""The ``cvkit`` command.

    cvkit run NOTEBOOK [NOTEBOOK ...] [--scale smoke|cpu|gpu] [--build DIR] [--timeout S]

runs each notebook top to bottom in a fresh kernel, with a progress bar over its cells, and saves the
executed copy and an HTML export under ``build/`` (``build/executed/NAME.ipynb``,
``build/html/NAME.html``). A failing cell stops the run: its source and traceback are printed and the
command exits with status 1 (the partly executed notebook is saved all the same).

    cvkit release NOTEBOOK [NOTEBOOK ...] --out DIR

writes the student version of each notebook into DIR: solutions replaced by ``raise NotImplementedError()``,
hidden tests removed, outputs cleared (:mod:`cvkit.grading.release`).

    cvkit grade SUBMISSIONS --source NOTEBOOK|DIR [...] [--out DIR] [--scale smoke|cpu|gpu] [--jobs N] [limits]

grades every student's notebooks in SUBMISSIONS (one subfolder or .ipynb per student) against the
instructor's notebooks, each submission in a sandbox, and writes ``grades.csv`` and ``feedback/``
(:mod:`cvkit.grading.grade`); it resumes an interrupted run.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from cvkit.config import SCALES


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def run_notebook(path: Path, scale: str | None, build: Path, timeout: int, kernel_name: str = "python3") -> bool:
    """Execute one notebook in a fresh kernel; save it and its HTML export; return whether it passed."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    from tqdm.auto import tqdm

    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ)
    if scale is not None:                      # an explicit --scale wins over the environment
        env["CVKIT_SCALE"] = scale
        env.pop("CVKIT_SMOKE", None)
        if scale == "smoke":
            env["CVKIT_SMOKE"] = "1"
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")

    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    failed_cell, error = None, None
    started = time.perf_counter()
    code_cells = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    with client.setup_kernel(env=env, cwd=str(path.parent.resolve())):
        with tqdm(total=len(code_cells), desc=path.name, unit="cell", file=sys.stderr) as bar:
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                try:
                    client.execute_cell(cell, index)
                except (CellExecutionError, CellTimeoutError, DeadKernelError) as err:
                    failed_cell, error = index, err
                    break
                bar.update(1)
    elapsed = time.perf_counter() - started

    executed = build / "executed" / path.name
    html = build / "html" / path.with_suffix(".html").name
    executed.parent.mkdir(parents=True, exist_ok=True)
    html.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, executed)
    try:
        from nbconvert import HTMLExporter

        body, _ = HTMLExporter().from_notebook_node(nb)
        html.write_text(body, encoding="utf-8")
    except Exception as err:  # the export is a convenience: never fail a run over it
        print(f"  (no HTML export: {err})", file=sys.stderr)

    if failed_cell is None:
        print(f"ok    {path.name}  {elapsed:.1f} s  -> {executed}  {html}", file=sys.stderr)
        return True
    source = nb.cells[failed_cell].source
    print(f"\nFAILED {path.name}: cell {failed_cell} (code cell {code_cells.index(failed_cell) + 1} "
          f"of {len(code_cells)})\n{'-' * 70}\n{source}\n{'-' * 70}\n{_strip_ansi(str(error))}",
          file=sys.stderr)
    print(f"partly executed notebook saved to {executed}", file=sys.stderr)
    return False


def _cmd_run(args: argparse.Namespace) -> int:
    missing = [p for p in args.notebooks if not p.is_file()]
    if missing:
        print(f"cvkit run: no such notebook: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    ok = True
    for path in args.notebooks:
        ok = run_notebook(path, args.scale, args.build, args.timeout) and ok
        if not ok and not args.keep_going:
            break
    return 0 if ok else 1


def _cmd_release(args: argparse.Namespace) -> int:
    from cvkit.grading.release import ReleaseError, release

    missing = [p for p in args.notebooks if not p.is_file()]
    if missing:
        print(f"cvkit release: no such notebook: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    try:
        written = release(args.notebooks, args.out)
    except ReleaseError as err:
        print(f"cvkit release: {err}", file=sys.stderr)
        return 1
    for path in written:
        print(f"released {path}", file=sys.stderr)
    return 0


def _source_notebooks(paths: list[Path]) -> list[Path]:
    found = []
    for path in paths:
        found += sorted(path.glob("*.ipynb")) if path.is_dir() else [path]
    return found


def _cmd_grade(args: argparse.Namespace) -> int:
    from cvkit.grading.grade import grade_all
    from cvkit.grading.sandbox import Limits

    if not args.submissions.is_dir():
        print(f"cvkit grade: no such folder: {args.submissions}", file=sys.stderr)
        return 2
    sources = _source_notebooks(args.source)
    missing = [p for p in sources if not p.is_file()]
    if missing or not sources:
        print(f"cvkit grade: no source notebook at {', '.join(map(str, missing or args.source))}", file=sys.stderr)
        return 2
    limits = Limits(call_s=args.call_timeout, cell_s=args.cell_timeout, submission_s=args.timeout,
                    memory_mb=args.memory)
    try:
        summary = grade_all(args.submissions, sources, args.out, limits, scale=args.scale, jobs=args.jobs)
    except ValueError as err:
        print(f"cvkit grade: {err}", file=sys.stderr)
        return 2
    print(f"sandbox: {summary['isolation']}", file=sys.stderr)
    for warning in summary["warnings"]:
        print(f"WARNING: {warning}", file=sys.stderr)
    print(f"graded {len(summary['graded'])} students, {len(summary['skipped'])} already in "
          f"{summary['grades']} -> {summary['grades']}, feedback in {summary['grades'].parent / 'feedback'}",
          file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cvkit", description="cvkit: the course kit's command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute notebooks headless in a fresh kernel, saving the results under build/")
    run.add_argument("notebooks", nargs="+", type=Path, metavar="NOTEBOOK")
    run.add_argument("--scale", choices=SCALES, default=None,
                     help="experiment scale (default: from CVKIT_SMOKE / CVKIT_SCALE, else gpu if CUDA else cpu)")
    run.add_argument("--build", type=Path, default=Path("build"), help="where to save the results (default: build/)")
    run.add_argument("--timeout", type=int, default=1800, help="seconds one cell may run (default: 1800)")
    run.add_argument("--keep-going", action="store_true", help="run the remaining notebooks after a failure")
    run.set_defaults(func=_cmd_run)

    rel = sub.add_parser("release", help="write the student version of notebooks (no solutions, no hidden tests)")
    rel.add_argument("notebooks", nargs="+", type=Path, metavar="NOTEBOOK")
    rel.add_argument("--out", type=Path, required=True, help="folder for the student versions")
    rel.set_defaults(func=_cmd_release)

    grade = sub.add_parser("grade", help="grade a folder of submissions (one subfolder or .ipynb per student)")
    grade.add_argument("submissions", type=Path, metavar="SUBMISSIONS_DIR")
    grade.add_argument("--source", nargs="+", type=Path, required=True, metavar="NOTEBOOK",
                       help="the instructor's notebooks (with solutions and hidden tests), or folders of them")
    grade.add_argument("--out", type=Path, default=Path("grades"),
                       help="where grades.csv and feedback/ go (default: grades/); must be outside SUBMISSIONS_DIR")
    grade.add_argument("--scale", choices=SCALES, default="smoke",
                       help="scale the submitted notebooks run at (default: smoke)")
    grade.add_argument("--call-timeout", type=float, default=30.0, help="seconds one call of a student's function may take")
    grade.add_argument("--cell-timeout", type=float, default=120.0, help="seconds one cell of a submission may take")
    grade.add_argument("--timeout", type=float, default=900.0, help="seconds one student's submission may take in all")
    grade.add_argument("--memory", type=int, default=8192, help="memory limit of a submission in MB (address space)")
    grade.add_argument("--jobs", type=int, default=1, help="students graded at once (each in its own sandbox)")
    grade.set_defaults(func=_cmd_grade)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
