"""cvkit vs torchvision: the mask branch's image-space step and its loss, side by side in one process.

    python benchmarks/bench_mask_head.py [--device cpu|cuda] [--threads N] [--masks 100] [--image 480x640]

paste_masks_in_image: ``--masks`` 28 x 28 masks pasted into one image (boxes of 20-200 pixels), cvkit's two
batched matrix products against torchvision's loop of F.interpolate per mask. maskrcnn_loss: 256 positive
RoIs of 2 images, 5 classes, forward + backward. Each row first checks that both agree, then times them.
Ratio = cvkit time / torchvision time (below 1: cvkit is faster).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torchvision.models.detection import roi_heads as tv

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import benchmark_parser, print_table, start, time_pair  # noqa: E402

from cvkit.detection.mask_head import maskrcnn_loss, paste_masks_in_image  # noqa: E402


def random_boxes(count: int, height: int, width: int, g: torch.Generator) -> torch.Tensor:
    size = torch.rand(count, 2, generator=g) * 180 + 20
    corner = torch.rand(count, 2, generator=g) * torch.tensor([width - 20.0, height - 20.0])
    return torch.cat((corner, corner + size), dim=1)


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--masks", type=int, default=100)
    parser.add_argument("--image", default="480x640", help="H x W")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    device = start(args)
    height, width = (int(v) for v in args.image.split("x"))
    g = torch.Generator().manual_seed(0)
    rows = []

    masks = torch.rand(args.masks, 1, 28, 28, generator=g).to(device)
    boxes = random_boxes(args.masks, height, width, g).to(device)
    paste = (lambda: paste_masks_in_image(masks, boxes, (height, width)),  # noqa: E731
             lambda: tv.paste_masks_in_image(masks, boxes, (height, width)))
    torch.testing.assert_close(paste[0](), paste[1]())
    mine, peer = time_pair(*paste, repeats=args.repeats, device=device)
    rows.append([f"paste_masks_in_image, {args.masks} masks into {height} x {width}", f"{mine * 1e3:.2f}",
                 f"{peer * 1e3:.2f}", f"{mine / peer:.2f}"])

    gt_masks = [(torch.rand(6, 128, 128, generator=g) > 0.5).to(device) for _ in range(2)]
    gt_labels = [torch.randint(1, 5, (6,), generator=g).to(device) for _ in range(2)]
    proposals = [random_boxes(128, 108, 108, g).clamp(max=127).to(device) for _ in range(2)]
    matched = [torch.randint(0, 6, (128,), generator=g).to(device) for _ in range(2)]
    logits = torch.randn(256, 5, 28, 28, generator=g).to(device).requires_grad_()

    def loss_and_grad(fn):
        return torch.autograd.grad(fn(logits, proposals, gt_masks, gt_labels, matched), logits)[0]

    torch.testing.assert_close(loss_and_grad(maskrcnn_loss), loss_and_grad(tv.maskrcnn_loss))
    mine, peer = time_pair(lambda: loss_and_grad(maskrcnn_loss), lambda: loss_and_grad(tv.maskrcnn_loss),
                           repeats=args.repeats, device=device)
    rows.append(["maskrcnn_loss forward + backward, 256 RoIs", f"{mine * 1e3:.2f}", f"{peer * 1e3:.2f}",
                 f"{mine / peer:.2f}"])
    print_table(["case", "cvkit ms", "torchvision ms", "ratio"], rows)


if __name__ == "__main__":
    main()
