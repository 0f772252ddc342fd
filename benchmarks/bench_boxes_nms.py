"""cvkit vs torchvision: box_iou and nms at 1k, 10k and 50k boxes, side by side in one process.

    python benchmarks/bench_boxes_nms.py [--sizes 1000 10000 50000] [--device cpu|cuda] [--threads N]

Boxes are drawn two ways: 'uniform' (scattered over a 1000 x 1000 image, few overlaps, so NMS keeps
most of them: the slowest case for greedy NMS) and 'clustered' (jittered copies around objects, as a
detector outputs them before NMS). box_iou compares N boxes with 256 others (anchors against objects).
Each row checks that both libraries agree before it times them. Ratio = cvkit time / torchvision time.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cvkit  # noqa: E402
from _timing import benchmark_parser, print_table, start, time_pair  # noqa: E402


def uniform_boxes(n: int, g: torch.Generator) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=g) * 1000
    return torch.cat((xy, xy + 10 + torch.rand(n, 2, generator=g) * 90), dim=1)


def clustered_boxes(n: int, g: torch.Generator) -> torch.Tensor:
    objects = max(1, n // 20)
    centres = 50 + torch.rand(objects, 2, generator=g) * 900
    sizes = 20 + torch.rand(objects, 2, generator=g) * 150
    pick = torch.randint(0, objects, (n,), generator=g)
    centre = centres[pick] + torch.randn(n, 2, generator=g) * sizes[pick] * 0.1
    size = sizes[pick] * (1 + 0.1 * torch.randn(n, 2, generator=g)).clamp(min=0.5)
    return torch.cat((centre - size / 2, centre + size / 2), dim=1)


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--iou-threshold", type=float, default=0.5)
    args = parser.parse_args()
    device = start(args)

    rows = []
    for n in args.sizes:
        g = torch.Generator().manual_seed(n)
        boxes = uniform_boxes(n, g).to(device)
        others = uniform_boxes(256, g).to(device)
        assert torch.equal(cvkit.box_iou(boxes, others), torchvision.ops.box_iou(boxes, others))
        ours, peer = time_pair(lambda: cvkit.box_iou(boxes, others), lambda: torchvision.ops.box_iou(boxes, others),
                               device=device)
        rows.append(["box_iou", f"{n} x 256", "uniform", "", f"{ours * 1e3:.2f}", f"{peer * 1e3:.2f}",
                     f"{ours / peer:.2f}"])
    for layout, make in (("uniform", uniform_boxes), ("clustered", clustered_boxes)):
        for n in args.sizes:
            g = torch.Generator().manual_seed(n)
            boxes = make(n, g).to(device)
            scores = torch.rand(n, generator=g).to(device)
            keep = torchvision.ops.nms(boxes, scores, args.iou_threshold)
            if not torch.equal(cvkit.nms(boxes, scores, args.iou_threshold), keep):
                raise SystemExit(f"cvkit.nms differs from torchvision on {layout} n={n}")
            ours, peer = time_pair(lambda: cvkit.nms(boxes, scores, args.iou_threshold),
                                   lambda: torchvision.ops.nms(boxes, scores, args.iou_threshold),
                                   repeats=5, device=device)
            rows.append(["nms", str(n), layout, str(len(keep)), f"{ours * 1e3:.2f}", f"{peer * 1e3:.2f}",
                         f"{ours / peer:.2f}"])
    print_table(["op", "boxes", "layout", "kept", "cvkit ms", "torchvision ms", "ratio"], rows)


if __name__ == "__main__":
    main()
