"""ConvLSTM2D, signcore vs PyTorch: one training step (forward + backward) of a single layer.

Rows (batch 2, 20 frames, as the seed 004 video model), and the whole seed 004 model's training
step (Adam, sparse cross-entropy, 2,000 classes) at 64x64 and at the seed's 150x150 frames, against
the same model composed from torch ops (torch_video_model):
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
    parser.add_argument("--model-sizes", default="64,150",
                        help="frame sizes for the whole seed 004 model's training step (default: "
                             "64,150; 150 is the seed's)")
    common.add_common_args(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.warmup, args.min_time, args.frames = 2, 1, 0.0, 4
        args.model_sizes = "46"  # the smallest frame the four valid 3x3 cells and pools leave 1x1
    args.model_sizes = [int(v) for v in str(args.model_sizes).split(",") if v.strip()]
    if min(args.batch_size, args.frames, args.threads) < 1:
        parser.error("--batch-size, --frames and --threads must be at least 1")
    return args


def torch_convlstm(x, w, u, b, filters, rec_dropout, sequences=False):
    """The ConvLSTM2D cell from torch conv2d: x (N, T, C, H, W) -> h (N, F, OH, OW), or all the
    steps' h (N, T, F, OH, OW) with `sequences`. Input convolution of all frames in one call; per
    step one "same" convolution of h (one per gate on its own recurrent-dropout mask)."""
    import torch
    import torch.nn.functional as F

    batch, frames, C, H, W = x.shape
    G = 4 * filters
    zx = F.conv2d(x.reshape(batch * frames, C, H, W), w, b)
    oh, ow = zx.shape[-2:]
    zx = zx.reshape(batch, frames, G, oh, ow)
    h = torch.zeros(batch, filters, oh, ow)
    c = torch.zeros_like(h)
    masks = None
    if rec_dropout:  # one mask per gate, drawn once per batch
        scale = 1 / (1 - rec_dropout)
        masks = [(torch.rand(batch, filters, oh, ow) >= rec_dropout).float() * scale for _ in range(4)]
    hs = []
    for t in range(frames):
        if masks is None:
            zh = F.conv2d(h, u, padding=1)
        else:
            zh = torch.cat([F.conv2d(h * masks[k], u[k * filters:(k + 1) * filters], padding=1)
                            for k in range(4)], dim=1)
        i, f, g, o = torch.split(zx[:, t] + zh, filters, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        hs.append(h)
    return torch.stack(hs, dim=1) if sequences else h


def torch_step(shape, filters, rec_dropout, batch, frames):
    """A closure running forward + backward of the torch composition on fixed random data."""
    import torch

    H, W, C = shape
    G = 4 * filters
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, frames, C, H, W, generator=gen, requires_grad=True)
    w = (0.1 * torch.randn(G, C, 3, 3, generator=gen)).requires_grad_()
    u = (0.1 * torch.randn(G, filters, 3, 3, generator=gen)).requires_grad_()
    b = torch.zeros(G, requires_grad=True)
    oh, ow = H - 2, W - 2
    dy = torch.randn(batch, filters, oh, ow, generator=gen)

    def step():
        for p in (x, w, u, b):
            p.grad = None
        (torch_convlstm(x, w, u, b, filters, rec_dropout) * dy).sum().backward()

    return step


SEED_FILTERS = (4, 8, 14, 16)


def torch_video_model(frames, size, classes):
    """Seed 004's model from torch ops: 4 x [ConvLSTM2D(f, 3x3, recurrent_dropout 0.2, sequences),
    MaxPooling3D((1, 2, 2)), Dropout(0.2) except after the last], Flatten, Dense(classes)."""
    import torch

    class Video(torch.nn.Module):
        def __init__(self):
            super().__init__()
            cin, s = 3, size
            self.cells = torch.nn.ParameterList()
            for f in SEED_FILTERS:
                self.cells.append(torch.nn.Parameter(0.1 * torch.randn(4 * f, cin, 3, 3)))
                self.cells.append(torch.nn.Parameter(0.1 * torch.randn(4 * f, f, 3, 3)))
                self.cells.append(torch.nn.Parameter(torch.zeros(4 * f)))
                cin, s = f, (s - 2) // 2
            self.dense = torch.nn.Linear(frames * s * s * cin, classes)

        def forward(self, x):  # (N, T, C, H, W)
            for k, f in enumerate(SEED_FILTERS):
                w, u, b = self.cells[3 * k:3 * k + 3]
                x = torch_convlstm(x, w, u, b, f, 0.2 if self.training else 0.0, sequences=True)
                n, t = x.shape[:2]
                x = torch.nn.functional.max_pool2d(x.flatten(0, 1), 2).unflatten(0, (n, t))
                if k < 3:
                    x = torch.nn.functional.dropout(x, 0.2, self.training)
            return self.dense(x.flatten(1))

    return Video()


def model_rows(args, timing):
    """Training step of the whole seed 004 model (Adam, sparse cross-entropy) at each frame size."""
    import numpy as np
    import torch

    import signcore
    from signcore import applications

    rows = []
    n, t_len, classes = args.batch_size, args.frames, 2000
    for size in args.model_sizes:
        signcore.utils.set_random_seed(0)
        model = applications.video_convlstm(input_shape=(t_len, size, size, 3), num_classes=classes)
        model.compile(optimizer=signcore.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        rng = np.random.default_rng(0)
        x = rng.random((n, t_len, size, size, 3), dtype=np.float32)
        y = rng.integers(0, classes, n)
        ours = common.measure(lambda: model.train_on_batch(x, y), **timing)
        tm = torch_video_model(t_len, size, classes).train()
        opt = torch.optim.Adam(tm.parameters(), lr=1e-3)
        xt = torch.from_numpy(x).permute(0, 1, 4, 2, 3).contiguous()
        yt = torch.from_numpy(y)

        def step():
            opt.zero_grad()
            torch.nn.functional.cross_entropy(tm(xt), yt).backward()
            opt.step()

        theirs = common.measure(step, **timing)
        rows.append([f"seed 004 model, {size}x{size} frames, train step", f"{ours.median * 1e3:.1f}",
                     f"{theirs.median * 1e3:.1f}", f"{theirs.median / ours.median:.2f}",
                     f"{max(ours.spread, theirs.spread):.0%}"])
    return rows


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
    rows += model_rows(args, timing)
    common.print_table(rows, ["layer", "signcore ms", "PyTorch ms", "signcore/PyTorch", "noise"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
