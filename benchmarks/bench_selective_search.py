"""cvkit vs OpenCV selective search (fast mode) on the annotated photos: time per image, and recall at
IoU 0.5 and 0.7 and MABO against the number of proposals, on the same images and the same box counts.

    python benchmarks/bench_selective_search.py [--threads 1] [--repeats 3] [--counts 100 250 500 1000 2000]
                                               [--modes fast opencv_fast] [--photos coins ...]

Both run single-threaded (cv2.setNumThreads, torch threads; cvkit's numba loops are serial). Times are
medians of runs that alternate the two in one process, after a warm-up (numba's compilation is cached
on disk and not counted); process CPU time of one run of each is printed too. Ratio = cvkit time / OpenCV
time. cvkit's 'fast' follows the paper (k = 50, 100, min_size = k, 8-connected segmentation); 'opencv_fast'
takes the settings of OpenCV's switchToSelectiveSearchFast (k = 150, 300, 450, min_size = 100, 4-connected);
all use HSV and Lab and the similarity sets C+T+S+F and T+S+F, and cvkit ranks as the paper. The photos and
their hand-drawn boxes are data/photo_boxes.json (photo_names('proposals'): 80 objects on 9 photos);
sliding windows are the uninformed baseline.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numba
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import print_table, time_pair  # noqa: E402

from cvkit.datasets import load_photo, photo_names  # noqa: E402
from cvkit.selective_search import selective_search  # noqa: E402
from cvkit.selective_search.evaluation import opencv_selective_search, proposal_curves, sliding_windows  # noqa: E402


def cpu_seconds(fn) -> float:
    """Process CPU time of one call (one thread, so it is not inflated by other processes' load)."""
    started = time.process_time()
    fn()
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--counts", type=int, nargs="+", default=[100, 250, 500, 1000, 2000])
    parser.add_argument("--photos", nargs="+", default=photo_names("proposals"))
    parser.add_argument("--modes", nargs="+", default=["fast", "opencv_fast"], help="cvkit modes to compare")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)
    print(f"# cvkit vs OpenCV {cv2.__version__} selective search, fast mode; torch {torch.__version__}, "
          f"numba {numba.__version__}; {args.threads} thread(s)\n")

    photos = [load_photo(name) for name in args.photos]
    ours = {mode: [] for mode in args.modes}
    theirs, windows, rows = [], [], []
    cpu = {name: 0.0 for name in [*args.modes, "OpenCV"]}
    for photo in photos:
        peer = lambda: opencv_selective_search(photo.image, "fast")  # noqa: E731
        theirs.append(peer())
        cpu["OpenCV"] += cpu_seconds(peer)
        windows.append(sliding_windows(*photo.size))
        row = [photo.name, f"{photo.size[1]} x {photo.size[0]}", str(len(photo.labels)), str(len(theirs[-1]))]
        for mode in args.modes:
            run = lambda: selective_search(photo.image, mode)  # noqa: E731
            ours[mode].append(run())
            cpu[mode] += cpu_seconds(run)
            t_ours, t_peer = time_pair(run, peer, repeats=args.repeats, warmup=0, budget_s=120)
            row += [str(len(ours[mode][-1])), f"{t_ours:.2f} / {t_peer:.2f} = {t_ours / t_peer:.2f}"]
        rows.append(row)
    print_table(["photo", "size", "objects", "OpenCV boxes",
                 *[h for mode in args.modes for h in (f"{mode} boxes", f"{mode} s / OpenCV s = ratio")]], rows)
    print(f"\nprocess CPU seconds per image (one run each): "
          + ", ".join(f"{name} {total / len(photos):.2f}" for name, total in cpu.items())
          + "; ratios " + ", ".join(f"{mode} {cpu[mode] / cpu['OpenCV']:.2f}" for mode in args.modes))

    gts, labels = [p.boxes for p in photos], [p.labels for p in photos]
    counts = list(args.counts) + [10 ** 9]
    curves = {f"cvkit {mode}": proposal_curves(props, gts, labels, counts) for mode, props in ours.items()}
    curves["OpenCV fast"] = proposal_curves(theirs, gts, labels, counts)
    curves["sliding windows"] = proposal_curves(windows, gts, labels, counts)
    print(f"\n{sum(len(g) for g in gts)} ground-truth boxes on {len(photos)} photos; "
          "'all' = every proposal; boxes = mean kept per image\n")
    rows = []
    for i, n in enumerate(counts):
        for name, c in curves.items():
            rows.append(["all" if n == 10 ** 9 else str(n), name, f"{c['boxes'][i]:.0f}", f"{c['recall@0.5'][i]:.3f}",
                         f"{c['recall@0.7'][i]:.3f}", f"{c['mabo'][i]:.4f}"])
    for mode, props in ours.items():
        matched = proposal_curves([a[: len(b)] for a, b in zip(props, theirs)], gts, labels, [10 ** 9])
        rows.append(["OpenCV's", f"cvkit {mode}, cut to OpenCV's count per image", f"{matched['boxes'][0]:.0f}",
                     f"{matched['recall@0.5'][0]:.3f}", f"{matched['recall@0.7'][0]:.3f}", f"{matched['mabo'][0]:.4f}"])
    c = curves["OpenCV fast"]
    rows.append(["OpenCV's", "OpenCV fast", f"{c['boxes'][-1]:.0f}", f"{c['recall@0.5'][-1]:.3f}",
                 f"{c['recall@0.7'][-1]:.3f}", f"{c['mabo'][-1]:.4f}"])
    print_table(["proposals", "method", "boxes", "recall@0.5", "recall@0.7", "MABO"], rows)


if __name__ == "__main__":
    main()
