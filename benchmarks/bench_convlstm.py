"""ConvLSTM2D, signcore vs PyTorch: one training step (forward + backward) of a single layer.

Rows (batch 2, 20 frames, as the seed 004 video model):
  * "seed layer 3": ConvLSTM2D(14, 3x3) on 36x36x8 frames (the seed model's third layer);
  * "seed layer 1": ConvLSTM2D(4, 3x3) on 64x64x3 frames (the first layer at a smaller frame size);
  * the same two with recurrent_dropout=0.2 (as the seed model), training mode.

signcore is timed in C++ on the layer alone (`_core._benchmark_layer`: forward in training mode,
then backward with the input gradient). PyTorch runs the same cell composed from `conv2d`: the input
convolution of all N T frames in one call (the four gates fused, 4F output channels), then per step
one "same" convolution of h (with recurrent dropout: one per gate on the masked h, as signcore) and
the gates; autograd for the backward, with the input gradient. Same thread count in both; like
bench_conv.py the script sets OMP_WAIT_POLICY=PASSIVE and OPENBLAS_THREAD_TIMEOUT=4 unless the
environment already sets them.

    python benchmarks/bench_convlstm.py [--threads N] [--batch-size N] [--frames T] [--quick]

The ratio column is signcore steps/s divided by PyTorch steps/s: above 1 signcore is faster.
"""
import argparse
import os
import sys

import common
from bench_conv import THREAD_ENV, measure_signcore

LAYERS = [  # name, (H, W, C), filters, recurrent_dropout
    ("seed layer 3 (36x36x8 -> 14)", (36, 36, 8), 14, 0.0),
    ("seed layer 1 (64x64x3 -> 4)", (64, 64, 3), 4, 0.0),
    ("seed layer 3, rec. dropout 0.2", (36, 36, 8), 14, 0.2),
    ("seed layer 1, rec. dropout 0.2", (64, 64, 3), 4, 0.2),
]
QUICK_LAYERS = [("tiny (10x10x3 -> 4)", (10, 10, 3), 4, 0.0),
                ("tiny, rec. dropout 0.2", (10, 10, 3), 4, 0.2)]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=2, help="batch size (default: 2)")
    parser.add_argument("--frames", type=int, default=20, help="time steps T (default: 20)")
    common.add_common_args(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.warmup, args.min_time, args.frames = 2, 1, 0.0, 4
    if min(args.batch_size, args.frames, args.threads) < 1:
        parser.error("--batch-size, --frames and --threads must be at least 1")
    return args


def torch_step(shape, filters, rec_dropout, batch, frames):
    """A closure running forward + backward of the torch composition on fixed random data."""
    import torch
    import torch.nn.functional as F

    H, W, C = shape
    G = 4 * filters
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, frames, C, H, W, generator=gen, requires_grad=True)
    w = (0.1 * torch.randn(G, C, 3, 3, generator=gen)).requires_grad_()
    u = (0.1 * torch.randn(G, filters, 3, 3, generator=gen)).requires_grad_()
    b = torch.zeros(G, requires_grad=True)
    oh, ow = H - 2, W - 2
    dy = torch.randn(batch, filters, oh, ow, generator=gen)
    scale = 1 / (1 - rec_dropout) if rec_dropout else 1.0

    def step():
        for p in (x, w, u, b):
            p.grad = None
        # one convolution of every frame: (N T, C, H, W) -> (N, T, 4F, OH, OW)
        zx = F.conv2d(x.reshape(batch * frames, C, H, W), w, b).reshape(batch, frames, G, oh, ow)
        h = torch.zeros(batch, filters, oh, ow)
        c = torch.zeros_like(h)
        masks = None
        if rec_dropout:  # one mask per gate, drawn once per batch
            masks = [(torch.rand(batch, filters, oh, ow) >= rec_dropout).float() * scale
                     for _ in range(4)]
        for t in range(frames):
            if masks is None:
                zh = F.conv2d(h, u, padding=1)
            else:
                zh = torch.cat([F.conv2d(h * masks[k], u[k * filters:(k + 1) * filters], padding=1)
                                for k in range(4)], dim=1)
            i, f, g, o = torch.split(zx[:, t] + zh, filters, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        (h * dy).sum().backward()

    return step


def main(argv=None):
    args = parse_args(argv)
    # As bench_conv.py: idle OpenMP / OpenBLAS threads sleep, so the two pools can take turns on a
    # small machine (set before the libraries load; an explicit setting in the environment wins).
    for k, v in THREAD_ENV.items():
        os.environ.setdefault(k, v)
    from signcore import layers

    common.set_threads(args.threads)
    timing = dict(warmup=args.warmup, repeat=args.repeat, min_time=args.min_time)
    n, t_len = args.batch_size, args.frames
    print(common.machine_summary(args.threads))
    print(f"one training step (forward + backward with dx) of one ConvLSTM2D(3x3) layer, "
          f"batch {n}, {t_len} frames\n")
    rows = []
    for name, shape, filters, rec_dropout in (QUICK_LAYERS if args.quick else LAYERS):
        ours = measure_signcore(
            lambda: layers.ConvLSTM2D(filters, 3, recurrent_dropout=rec_dropout),
            (t_len,) + shape, n, True, True, **timing)
        theirs = common.measure(torch_step(shape, filters, rec_dropout, n, t_len), **timing)
        a, b = 1 / ours.median, 1 / theirs.median
        rows.append([name, f"{ours.median * 1e3:.1f}", f"{theirs.median * 1e3:.1f}", f"{a / b:.2f}",
                     f"{max(ours.spread, theirs.spread):.0%}"])
    common.print_table(rows, ["layer", "signcore ms", "PyTorch ms", "signcore/PyTorch", "noise"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
