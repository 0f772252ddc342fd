"""Side-by-side timing shared by the benchmarks: the two functions alternate in one process, so that
whatever else the machine is doing weighs on both alike."""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch


def benchmark_parser(description: str | None) -> argparse.ArgumentParser:
    """The options every benchmark takes, ``--device`` and ``--threads``; a benchmark adds its own."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    return parser


def start(args: argparse.Namespace, *details: str) -> torch.device:
    """Apply ``--threads``, print the versions and settings the figures depend on, return the device."""
    import torchvision

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    settings = ", ".join((f"device {device}", *details, f"{torch.get_num_threads()} threads"))
    print(f"# torch {torch.__version__}, torchvision {torchvision.__version__}, {settings}\n")
    return device


def _sync(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_pair(ours: Callable[[], object], peer: Callable[[], object], repeats: int = 7, warmup: int = 2,
              device: torch.device | str = "cpu", budget_s: float = 20.0) -> tuple[float, float]:
    """Median seconds of ``ours()`` and ``peer()``, run alternately ``repeats`` times after ``warmup`` runs.

    Stops early (at least 3 repeats) once ``budget_s`` seconds have gone, so slow cases stay bearable.
    """
    for _ in range(warmup):
        ours(), peer()
    _sync(device)
    times_ours, times_peer = [], []
    started = time.perf_counter()
    for i in range(repeats):
        for fn, times in ((ours, times_ours), (peer, times_peer)) if i % 2 == 0 else \
                ((peer, times_peer), (ours, times_ours)):
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times.append(time.perf_counter() - t0)
        if i >= 2 and time.perf_counter() - started > budget_s:
            break
    return statistics.median(times_ours), statistics.median(times_peer)


def format_row(cells: list[str], widths: list[int]) -> str:
    return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """A Markdown table, ready to paste into the README."""
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    print(format_row(header, widths))
    print("| " + " | ".join("-" * w for w in widths) + " |")
    for row in rows:
        print(format_row([str(c) for c in row], widths))
