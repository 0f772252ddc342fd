"""cvkit vs torchvision: roi_align and roi_pool on a Fast R-CNN-sized workload, side by side in one process.

    python benchmarks/bench_roi.py [--threads N] [--device cpu|cuda] [--rois 512] [--repeats 7]

The workload of a Fast R-CNN head on a stride-16 backbone: 2 images of 1088 x 800 pixels give a
256 x 50 x 68 feature map; 512 RoIs per batch, of sizes spread log-uniformly from 16 to 400 pixels (some
over the border); 7 x 7 bins, spatial_scale 1/16, sampling_ratio 2 (and the adaptive grid, aligned, in a
second row). A second workload is notebook 05's tiny Faster R-CNN at test time: one 128 x 128 image,
a stride-8 map of 128 x 16 x 16, 2000 RoIs (many RoIs on a small map; batch 1 is where a
non-contiguous feature view once made cvkit 3.6x slower). 'forward' runs without autograd;
'forward+backward' back-propagates a random gradient into the feature map. Each row checks that both
libraries agree before timing.
Ratio = cvkit time / torchvision time (below 1: cvkit is faster).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import benchmark_parser, print_table, start, time_pair  # noqa: E402

from cvkit.roi import roi_align, roi_pool  # noqa: E402


def proposals(k: int, images: int, width: float, height: float, g: torch.Generator) -> torch.Tensor:
    """``Tensor[k, 5]`` RoIs: centres anywhere in the image, sides log-uniform in [16, 400] pixels."""
    centre = torch.rand(k, 2, generator=g) * torch.tensor([width, height])
    side = 16 * torch.exp(torch.rand(k, 2, generator=g) * torch.log(torch.tensor(25.0)))
    batch = torch.randint(0, images, (k, 1), generator=g).float()
    return torch.cat((batch, centre - side / 2, centre + side / 2), dim=1)


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--rois", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    device = start(args)

    g = torch.Generator().manual_seed(0)
    settings = [  # (description, feature shape, RoIs, spatial_scale)
        (f"Fast R-CNN: 2 x 256 x 50 x 68 features, {args.rois} RoIs, 1/16", (2, 256, 50, 68),
         proposals(args.rois, 2, 68 * 16, 50 * 16, g), 1 / 16),
        ("tiny Faster R-CNN: 1 x 128 x 16 x 16 features, 2000 RoIs, 1/8", (1, 128, 16, 16),
         proposals(2000, 1, 128, 128, g) / torch.tensor([1.0, 4, 4, 4, 4]), 1 / 8),
    ]
    rows = []
    for description, shape, rois, scale in settings:
        features = torch.randn(*shape, generator=g).to(device).requires_grad_()
        rois = rois.to(device)
        grad = torch.randn(len(rois), shape[1], 7, 7, generator=g).to(device)
        workloads = [
            ("roi_align", "sampling_ratio=2", lambda fn: lambda x: fn(x, rois, 7, scale, 2, False),
             roi_align, torchvision.ops.roi_align),
            ("roi_align", "adaptive, aligned", lambda fn: lambda x: fn(x, rois, 7, scale, -1, True),
             roi_align, torchvision.ops.roi_align),
            ("roi_pool", "", lambda fn: lambda x: fn(x, rois, 7, scale), roi_pool, torchvision.ops.roi_pool),
        ]
        for name, setting, bind, ours_fn, peer_fn in workloads:
            ours, peer = bind(ours_fn), bind(peer_fn)
            out_ours, out_peer = ours(features), peer(features)
            g_ours, = torch.autograd.grad(out_ours, features, grad)
            g_peer, = torch.autograd.grad(out_peer, features, grad)
            # 2000 RoIs on 256 cells: each cell's gradient sums thousands of float32 terms, so compare relative
            grad_tol = 1e-5 * float(g_peer.abs().max())
            if not (torch.allclose(out_ours, out_peer, atol=1e-5) and torch.allclose(g_ours, g_peer, atol=grad_tol)):
                raise SystemExit(f"cvkit.{name} differs from torchvision ({setting}, {description})")

            def forward(fn):
                def run():
                    with torch.no_grad():
                        fn(features)
                return run

            def forward_backward(fn):
                def run():
                    torch.autograd.grad(fn(features), features, grad)
                return run

            for what, wrap in (("forward", forward), ("forward+backward", forward_backward)):
                t_ours, t_peer = time_pair(wrap(ours), wrap(peer), repeats=args.repeats, device=device, budget_s=30)
                rows.append([description.split(":")[0], name, setting, what, f"{t_ours * 1e3:.1f}",
                             f"{t_peer * 1e3:.1f}", f"{t_ours / t_peer:.2f}"])
    for description, *_ in settings:
        print(description)
    print("7 x 7 bins\n")
    print_table(["workload", "op", "setting", "pass", "cvkit ms", "torchvision ms", "ratio"], rows)


if __name__ == "__main__":
    main()
