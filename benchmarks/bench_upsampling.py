"""cvkit.conv_transpose2d vs torch.nn.functional.conv_transpose2d, forward and forward + backward, side by side.

    python benchmarks/bench_upsampling.py [--device cpu|cuda] [--threads N] [--dtype float32|float64]

The shapes are the upsampling layers of segmentation networks: FCN's 2x and 8x/32x upsampling of class scores
(kernel 2s, stride s, padding s/2), a U-Net decoder step (kernel 2, stride 2), a 3 x 3 stride-2 layer with
output_padding 1, and a grouped (depthwise) one. Each row first checks cvkit's output and gradients against
torch in float64, then times both in the chosen dtype.
Ratio = cvkit time / torch time.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import benchmark_parser, print_table, start, time_pair  # noqa: E402

from cvkit.upsampling import conv_transpose2d  # noqa: E402

# name, (N, C_in, H, W), C_out, kernel, stride, padding, output_padding, groups
CASES = [
    ("U-Net decoder step", (8, 128, 32, 32), 64, 2, 2, 0, 0, 1),
    ("FCN 2x (k4 s2 p1)", (8, 64, 32, 32), 64, 4, 2, 1, 0, 1),
    ("3x3 s2 + output_padding", (8, 64, 32, 32), 64, 3, 2, 1, 1, 1),
    ("depthwise 4x4 s2", (8, 64, 32, 32), 64, 4, 2, 1, 0, 64),
    ("FCN-8s 8x (k16 s8 p4), 21 classes", (4, 21, 28, 28), 21, 16, 8, 4, 0, 1),
    ("FCN-32s 32x (k64 s32 p16)", (2, 21, 8, 8), 21, 64, 32, 16, 0, 1),
]


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    device, dtype = start(args, args.dtype), getattr(torch, args.dtype)
    scale_tol = 1e-5 if dtype == torch.float32 else 1e-12           # of the largest value (sums of up to ~10^5 terms)

    rows = []
    for name, shape, c_out, kernel, stride, padding, output_padding, groups in CASES:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(*shape, generator=g, dtype=dtype).to(device).requires_grad_(True)
        weight = torch.randn(shape[1], c_out // groups, kernel, kernel, generator=g, dtype=dtype)
        weight = (weight / (shape[1] // groups * kernel) ** 0.5).to(device).requires_grad_(True)
        bias = torch.randn(c_out, generator=g, dtype=dtype).to(device).requires_grad_(True)
        geometry = (stride, padding, output_padding, groups)

        def ours():
            return conv_transpose2d(x, weight, bias, *geometry)

        def peer():
            return F.conv_transpose2d(x, weight, bias, *geometry)

        # the oracle: torch in float64 (torch's own float32 bias gradient, a sum of ~10^5 terms, is off by up to 1e-5)
        exact = [t.detach().double().requires_grad_(True) for t in (x, weight, bias)]
        expected = F.conv_transpose2d(*exact, *geometry)
        torch.testing.assert_close(ours().double(), expected, rtol=0, atol=scale_tol * float(expected.detach().abs().max()))
        grad = torch.randn(expected.shape, generator=g, dtype=dtype).to(device)
        for a, b in zip(torch.autograd.grad(ours(), (x, weight, bias), grad),
                        torch.autograd.grad(expected, exact, grad.double())):
            torch.testing.assert_close(a.double(), b, rtol=0, atol=scale_tol * float(b.abs().max()))

        with torch.no_grad():
            fwd = time_pair(ours, peer, repeats=args.repeats, device=device)
        both = time_pair(lambda: torch.autograd.grad(ours(), (x, weight, bias), grad),
                         lambda: torch.autograd.grad(peer(), (x, weight, bias), grad), repeats=args.repeats, device=device)
        size = "x".join(str(s) for s in expected.shape)
        rows.append([name, size, f"{fwd[0] * 1e3:.1f}", f"{fwd[1] * 1e3:.1f}", f"{fwd[0] / fwd[1]:.2f}",
                     f"{both[0] * 1e3:.1f}", f"{both[1] * 1e3:.1f}", f"{both[0] / both[1]:.2f}"])
    print_table(["layer", "output", "fwd cvkit ms", "fwd torch ms", "fwd ratio", "f+b cvkit ms", "f+b torch ms",
                 "f+b ratio"], rows)


if __name__ == "__main__":
    main()
