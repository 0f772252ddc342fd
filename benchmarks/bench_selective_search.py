"""cvkit vs OpenCV selective search (fast mode) on the annotated photos: time per image, and recall at
IoU 0.5 and 0.7 and MABO against the number of proposals, on the same images and the same box counts.

    python benchmarks/bench_selective_search.py [--threads 1] [--repeats 3] [--counts 100 250 500 1000 2000]
                                               [--modes fast opencv_fast] [--photos coins ...] [--draws 10]

Both run single-threaded (cv2.setNumThreads, torch threads; cvkit's numba loops are serial). Times are
medians of runs that alternate the two in one process, after a warm-up (numba's compilation is cached
on disk and not counted); process CPU time of one run of each is printed too. Ratio = cvkit time / OpenCV
time ('opencv_fast' is timed with ranking='both'). cvkit's 'fast' follows the paper (k = 50, 100, min_size = k,
8-connected segmentation); 'opencv_fast' takes the settings of OpenCV's switchToSelectiveSearchFast
(k = 150, 300, 450, min_size = 100, 4-connected);
all use HSV and Lab and the similarity sets C+T+S+F and T+S+F, and cvkit ranks as the paper; 'opencv_fast,
OpenCV's ranking' orders the same pool as OpenCV does (small regions first), 'opencv_fast, both ends' by
each region's distance from the nearer end of its hierarchy (ranking='both'). The photos and their hand-drawn
boxes are data/photo_boxes.json (photo_names('proposals'): 80 objects on 9 photos); sliding windows are the
uninformed baseline.

--shapes N adds a second quality table on N synthetic images (ShapesDetection, 320 x 320, 2-8 shapes of
12-160 pixels on photo crops, seed 7; exact boxes), a set that was not looked at when the rankings were
designed: a check that what wins on the 80 hand-drawn boxes is not fitted to them.

Both rankings are random, so the quality table gives the mean and standard deviation over --draws rankings:
cvkit's seeds 0 .. draws-1, and as many OpenCV runs in this process (its ranking draws from C's rand(), which
moves on from one run to the next; its segmentation and pool do not change). With 80 objects one object is
0.0125 of recall.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numba
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import print_table, time_pair  # noqa: E402

from cvkit.datasets import load_photo, photo_names  # noqa: E402
from cvkit.datasets.detection import ShapesDetection  # noqa: E402
from cvkit.selective_search import rank_regions, search_hierarchies, selective_search  # noqa: E402
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
    parser.add_argument("--draws", type=int, default=10, help="random rankings averaged in the quality table")
    parser.add_argument("--shapes", type=int, default=0, help="synthetic images of the held-out quality table")
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
            ranking = "both" if mode == "opencv_fast" else "paper"                 # the order the goal is met with
            run = lambda: selective_search(photo.image, mode, ranking=ranking)  # noqa: E731
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

    print(f"\n{sum(len(p.labels) for p in photos)} ground-truth boxes on {len(photos)} photos; 'all' = every "
          f"proposal; 'OpenCV's' = each image cut to OpenCV's number of boxes; boxes = mean kept per image; "
          f"mean ± standard deviation over {args.draws} random rankings\n")
    quality([p.image for p in photos], [p.boxes for p in photos], [p.labels for p in photos], args, theirs, windows)
    if args.shapes:
        shapes = ShapesDetection(args.shapes, image_size=320, max_objects=8, min_objects=2, object_size=(12, 160),
                                 seed=7)
        items = [shapes[i] for i in range(len(shapes))]
        images = [(image.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy() for image, _ in items]
        print(f"\nHeld out: {sum(len(t['boxes']) for _, t in items)} shapes on {len(items)} synthetic images "
              f"(320 x 320, exact boxes); the same columns\n")
        quality(images, [t["boxes"] for _, t in items], [t["labels"].tolist() for _, t in items], args)


def quality(images: list[np.ndarray], gts: list[torch.Tensor], labels: list[list], args: argparse.Namespace,
            theirs: list[torch.Tensor] | None = None, windows: list[torch.Tensor] | None = None) -> None:
    """Recall and MABO against the number of proposals per image, mean ± std over ``args.draws`` rankings."""
    counts = list(args.counts) + [10 ** 9]
    theirs = theirs or [opencv_selective_search(image, "fast") for image in images]
    opencv_counts = [len(boxes) for boxes in theirs]
    draws = {"OpenCV fast": [theirs] + [[opencv_selective_search(image, "fast") for image in images]
                                        for _ in range(args.draws - 1)]}
    for mode in args.modes:
        hierarchies = [search_hierarchies(image, mode) for image in images]
        rankings = [("paper", f"cvkit {mode}")]
        if mode == "opencv_fast":                                    # the same pool, ranked as OpenCV ranks it
            rankings += [("opencv", f"cvkit {mode}, OpenCV's ranking"), ("both", f"cvkit {mode}, both ends")]
        for ranking, name in rankings:
            draws[name] = [[torch.from_numpy(rank_regions(h, seed, ranking=ranking)).float() for h in hierarchies]
                           for seed in range(args.draws)]
    curves = {name: [proposal_curves(d, gts, labels, counts) for d in ds] for name, ds in draws.items()}
    at_opencv = {name: [proposal_curves([a[:n] for a, n in zip(d, opencv_counts)], gts, labels, [10 ** 9]) for d in ds]
                 for name, ds in draws.items()}
    if windows is not None:
        curves["sliding windows"] = [proposal_curves(windows, gts, labels, counts)]
    rows = []

    def row(label: str, name: str, cs: list, i: int) -> list[str]:
        stat = {key: np.array([c[key][i] for c in cs]) for key in ("recall@0.5", "recall@0.7", "mabo")}
        return [label, name, f"{cs[0]['boxes'][i]:.0f}",
                *[f"{v.mean():.3f} ± {v.std():.3f}" if len(v) > 1 else f"{v[0]:.3f}" for v in stat.values()]]
    for i, n in enumerate(counts):
        rows += [row("all" if n == 10 ** 9 else str(n), name, cs, i) for name, cs in curves.items()]
    rows += [row("OpenCV's", name, cs, 0) for name, cs in at_opencv.items()]
    print_table(["proposals", "method", "boxes", "recall@0.5", "recall@0.7", "MABO"], rows)


if __name__ == "__main__":
    main()
