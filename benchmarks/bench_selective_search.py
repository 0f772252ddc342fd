"""cvkit vs OpenCV selective search (fast mode) on the annotated photos: time per image, and recall at
IoU 0.5 and 0.7 and MABO against the number of proposals, on the same images and the same box counts.

    python benchmarks/bench_selective_search.py [--threads 1] [--repeats 3] [--counts 100 250 500 1000 2000]

Both run single-threaded (cv2.setNumThreads, torch threads; cvkit's numba loops are serial). Times are
medians of runs that alternate the two in one process, after a warm-up (numba's compilation is cached
on disk and not counted). Ratio = cvkit time / OpenCV time. OpenCV's fast mode uses k = 150, 300;
cvkit's follows the paper, k = 50, 100: both use HSV and Lab and the similarity sets C+T+S+F and T+S+F.
The photos and their hand-drawn boxes are data/photo_boxes.json; sliding windows are the uninformed
baseline.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numba
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import print_table, time_pair  # noqa: E402

from cvkit.datasets import load_photo, photo_names  # noqa: E402
from cvkit.selective_search import selective_search  # noqa: E402
from cvkit.selective_search.evaluation import opencv_selective_search, proposal_curves, sliding_windows  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--counts", type=int, nargs="+", default=[100, 250, 500, 1000, 2000])
    parser.add_argument("--photos", nargs="+", default=photo_names())
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)
    print(f"# cvkit vs OpenCV {cv2.__version__} selective search, fast mode; torch {torch.__version__}, "
          f"numba {numba.__version__}; {args.threads} thread(s)\n")

    photos = [load_photo(name) for name in args.photos]
    ours, theirs, windows, rows = [], [], [], []
    for photo in photos:
        a, b = selective_search(photo.image, "fast"), opencv_selective_search(photo.image, "fast")
        ours.append(a)
        theirs.append(b)
        windows.append(sliding_windows(*photo.size))
        t_ours, t_peer = time_pair(lambda: selective_search(photo.image, "fast"),
                                   lambda: opencv_selective_search(photo.image, "fast"),
                                   repeats=args.repeats, warmup=0, budget_s=120)
        rows.append([photo.name, f"{photo.size[1]} x {photo.size[0]}", str(len(a)), str(len(b)),
                     f"{t_ours:.2f}", f"{t_peer:.2f}", f"{t_ours / t_peer:.2f}"])
    print_table(["photo", "size", "cvkit boxes", "OpenCV boxes", "cvkit s", "OpenCV s", "ratio"], rows)

    gts, labels = [p.boxes for p in photos], [p.labels for p in photos]
    counts = list(args.counts) + [10 ** 9]
    curves = {name: proposal_curves(props, gts, labels, counts)
              for name, props in (("cvkit", ours), ("OpenCV", theirs), ("sliding windows", windows))}
    print(f"\n{sum(len(g) for g in gts)} ground-truth boxes on {len(photos)} photos; "
          "'all' = every proposal; boxes = mean kept per image\n")
    rows = []
    for i, n in enumerate(counts):
        for name, c in curves.items():
            rows.append(["all" if n == 10 ** 9 else str(n), name, f"{c['boxes'][i]:.0f}", f"{c['recall@0.5'][i]:.3f}",
                         f"{c['recall@0.7'][i]:.3f}", f"{c['mabo'][i]:.4f}"])
    matched = proposal_curves([a[: len(b)] for a, b in zip(ours, theirs)], gts, labels, [10 ** 9])
    for name, c, i in (("cvkit, cut to OpenCV's count per image", matched, 0), ("OpenCV", curves["OpenCV"], -1)):
        rows.append(["OpenCV's", name, f"{c['boxes'][i]:.0f}", f"{c['recall@0.5'][i]:.3f}",
                     f"{c['recall@0.7'][i]:.3f}", f"{c['mabo'][i]:.4f}"])
    print_table(["proposals", "method", "boxes", "recall@0.5", "recall@0.7", "MABO"], rows)


if __name__ == "__main__":
    main()
