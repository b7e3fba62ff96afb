"""Pooling and BatchNormalization kernels, signcore vs PyTorch: forward and backward times.

CIFAR-sized activations (batch 128; 32x32x32 and 16x16x64, channels last). signcore's layers are
timed in C++ in training mode (`signcore._core._bench_layer`: forward and backward on a fresh
layer, no NumPy conversion counted); PyTorch's ops on the same data in the channels_last memory format (the same
layout in memory), forward under `torch.no_grad()` and backward as `torch.autograd.grad` of a
retained graph. Same thread count for both; medians of repeated rounds.

    python benchmarks/bench_pool_bn.py [--threads N] [--batch-size 128]

The ratio column is PyTorch's time divided by signcore's (forward + backward): above 1 signcore is
faster. See benchmarks/README.md.
"""
import argparse
import json
import statistics
import sys
import time

import numpy as np

import common


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (default: 128)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    common.add_common_args(parser)
    args = parser.parse_args(argv)
    args.shapes = [(32, 32, 32), (16, 16, 64)]
    if args.quick:
        args.batch_size, args.shapes = 4, [(8, 8, 4)]
        args.repeat, args.warmup = 2, 1
    for name in ("batch_size", "repeat", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def cases():
    """(name, signcore layer factory, torch forward on NCHW channels_last).

    signcore runs in training mode (ctx.training), as in fit: max pooling records its arg-max in
    the forward, BatchNormalization uses and updates the batch statistics, dropout draws masks."""
    import torch.nn.functional as F
    from signcore import layers

    def torch_bn(x, p):
        return F.batch_norm(x, p["rm"], p["rv"], p["g"], p["b"], training=True, momentum=0.01, eps=1e-3)

    return [
        ("MaxPooling2D 2x2", lambda: layers.MaxPooling2D(), lambda x, p: F.max_pool2d(x, 2)),
        ("MaxPooling2D 3x3/2 same", lambda: layers.MaxPooling2D(3, 2, padding="same"),
         lambda x, p: F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=-float("inf")), 3, 2)),
        ("AveragePooling2D 2x2", lambda: layers.AveragePooling2D(), lambda x, p: F.avg_pool2d(x, 2)),
        ("GlobalAveragePooling2D", lambda: layers.GlobalAveragePooling2D(),
         lambda x, p: x.mean(dim=(2, 3))),
        ("GlobalMaxPooling2D", lambda: layers.GlobalMaxPooling2D(), lambda x, p: x.amax(dim=(2, 3))),
        ("BatchNormalization", lambda: layers.BatchNormalization(), torch_bn),
        ("SpatialDropout2D 0.2", lambda: layers.SpatialDropout2D(0.2),
         lambda x, p: F.dropout2d(x, 0.2, training=True)),
    ]


def time_torch(fn, x, p, repeat, warmup):
    """Median forward seconds (no_grad) and backward seconds (autograd.grad of one forward)."""
    import torch

    with torch.no_grad():
        for _ in range(warmup):
            fn(x, p)
        fwd = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn(x, p)
            fwd.append(time.perf_counter() - t0)
    xg = x.detach().requires_grad_()
    inputs = [xg] + [v for v in p.values() if v.requires_grad]
    y = fn(xg, p)
    dy = torch.randn_like(y)
    for _ in range(warmup):
        torch.autograd.grad(y, inputs, dy, retain_graph=True)
    bwd = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        torch.autograd.grad(y, inputs, dy, retain_graph=True)
        bwd.append(time.perf_counter() - t0)
    return statistics.median(fwd), statistics.median(bwd)


def main(argv=None):
    args = parse_args(argv)
    import signcore  # noqa: F401
    import torch
    from signcore import _core

    common.set_threads(args.threads)
    rng = np.random.default_rng(0)
    repeat = max(args.repeat, 5) * 3
    rows, records = [], []
    for shape in args.shapes:
        n = args.batch_size
        x = rng.standard_normal((n,) + shape, dtype=np.float32)
        tx = torch.from_numpy(x).permute(0, 3, 1, 2)  # NCHW view of NHWC memory = channels_last
        assert tx.is_contiguous(memory_format=torch.channels_last)
        c = shape[-1]
        p = {"g": torch.ones(c, requires_grad=True), "b": torch.zeros(c, requires_grad=True),
             "rm": torch.zeros(c), "rv": torch.ones(c)}
        for name, make, tfn in cases():
            p_used = p if name.startswith("BatchNormalization") else {}
            ty = tfn(tx, p_used)
            y_shape = tuple(ty.permute(0, 2, 3, 1).shape) if ty.dim() == 4 else tuple(ty.shape)
            dy = rng.standard_normal(y_shape, dtype=np.float32)
            sf, sb = _core._bench_layer(make(), x, dy, training=True, repeats=repeat)
            tf, tb = time_torch(tfn, tx, p_used, repeat, args.warmup)
            ratio = (tf + tb) / (sf + sb)
            label = f"{name}, {'x'.join(map(str, shape))}"
            rows.append([label, f"{sf * 1e3:.2f}", f"{sb * 1e3:.2f}", f"{tf * 1e3:.2f}", f"{tb * 1e3:.2f}",
                         f"{ratio:.2f}"])
            records.append({"case": label, "batch": n, "signcore_forward_ms": sf * 1e3,
                            "signcore_backward_ms": sb * 1e3, "torch_forward_ms": tf * 1e3,
                            "torch_backward_ms": tb * 1e3})

    print(f"Pooling / BatchNormalization / SpatialDropout2D kernels, batch {args.batch_size}, float32, "
          "channels last")
    print(common.machine_summary(args.threads))
    print()
    common.print_table(rows, ["layer, input (H x W x C)", "signcore fwd ms", "signcore bwd ms",
                              "PyTorch fwd ms", "PyTorch bwd ms", "PyTorch/signcore"])
    print("\nPyTorch/signcore > 1: signcore is faster (forward + backward, median times).")
    if args.quick:
        print("(--quick: tiny sizes, the numbers mean nothing)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"benchmark": "pool_bn", "threads": args.threads, "rows": records}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
