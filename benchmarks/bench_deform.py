"""cvkit vs torchvision: deform_conv2d forward, and forward + backward, side by side in one process.

    python benchmarks/bench_deform.py [--device cpu|cuda] [--threads N] [--sizes 4x64x48x48 ...]

The issue's case is a batch of 4, 64 -> 64 channels, 48 x 48, a 3 x 3 kernel with padding 1, offsets of a
few pixels (normal, std 2) and, for v2, a mask in (0, 1). Forward + backward asks for the gradients of input,
offset, weight, bias (and mask). Each row first checks that both libraries agree (output and gradients) and
then times them. Ratio = cvkit time / torchvision time (below 1: cvkit is faster).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import benchmark_parser, print_table, start, time_pair  # noqa: E402

from cvkit.deform import deform_conv2d  # noqa: E402


def make_case(size: str, modulated: bool, device: torch.device, seed: int = 0) -> dict:
    batch, channels, height, width = (int(v) for v in size.split("x"))
    g = torch.Generator().manual_seed(seed)
    tensors = dict(input=torch.randn(batch, channels, height, width, generator=g),
                   offset=torch.randn(batch, 18, height, width, generator=g) * 2,
                   weight=torch.randn(channels, channels, 3, 3, generator=g) * 0.05,
                   bias=torch.randn(channels, generator=g),
                   mask=torch.rand(batch, 9, height, width, generator=g) if modulated else None)
    return {k: v.to(device).requires_grad_() if v is not None else None for k, v in tensors.items()}


def run(fn, case: dict, backward: bool):
    args = (case["input"], case["offset"], case["weight"], case["bias"])
    if not backward:
        with torch.no_grad():
            return fn(*args, padding=(1, 1), mask=case["mask"])
    out = fn(*args, padding=(1, 1), mask=case["mask"])
    wrt = [t for t in (*args, case["mask"]) if t is not None]
    return out, torch.autograd.grad(out.sum(), wrt)


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--sizes", nargs="+", default=["4x64x48x48"], help="N x C x H x W")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = start(args)
    rows = []
    for size in args.sizes:
        for modulated in (False, True):
            case = make_case(size, modulated, device)
            ours, theirs = run(deform_conv2d, case, True), run(torchvision.ops.deform_conv2d, case, True)
            for a, b in zip((ours[0], *ours[1]), (theirs[0], *theirs[1])):
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-3)
            for backward in (False, True):
                mine, peer = time_pair(lambda: run(deform_conv2d, case, backward),
                                       lambda: run(torchvision.ops.deform_conv2d, case, backward),
                                       repeats=args.repeats, warmup=1, device=device, budget_s=60)
                rows.append(["deform_conv2d " + ("v2" if modulated else "v1"), size + ", 3x3",
                             "forward + backward" if backward else "forward",
                             f"{mine * 1e3:.1f}", f"{peer * 1e3:.1f}", f"{mine / peer:.2f}"])
    print_table(["op", "input", "pass", "cvkit ms", "torchvision ms", "ratio"], rows)


if __name__ == "__main__":
    main()
