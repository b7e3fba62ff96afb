"""3-D (video) layers, signcore vs PyTorch: MaxPooling3D, AveragePooling3D and Conv3D, forward and
backward times.

The seed video model's pooling (MaxPooling3D((1, 2, 2)) on 20 frames of 148x148x4) and small
volumes of 16x32x32x8 (channels last). signcore's layers are timed in C++ in training mode
(`signcore._core._bench_layer`, as bench_pool_bn.py: no NumPy conversion counted); PyTorch's ops on
the same data in the channels_last_3d memory format (the same layout in memory), forward under
`torch.no_grad()` and backward as `torch.autograd.grad` of a retained graph (every gradient: input,
kernel and bias). Same thread count for both; medians of repeated rounds.

    python benchmarks/bench_volumetric.py [--threads N] [--batch-size 8] [--quick]

The ratio column is PyTorch's time divided by signcore's (forward + backward): above 1 signcore is
faster. See benchmarks/README.md.
"""
import argparse
import json
import sys

import numpy as np

import common
from bench_pool_bn import time_torch


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=8, help="batch size (default: 8)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    common.add_common_args(parser)
    args = parser.parse_args(argv)
    args.video, args.volume = (20, 148, 148, 4), (16, 32, 32, 8)
    if args.quick:
        args.batch_size, args.video, args.volume = 2, (4, 16, 16, 4), (4, 8, 8, 4)
        args.repeat, args.warmup = 2, 1
    for name in ("batch_size", "repeat", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def cases(args):
    """(name, input shape per sample, signcore layer factory, torch forward on NCDHW, torch params)."""
    import torch
    import torch.nn.functional as F
    from signcore import layers

    c = args.volume[-1]
    conv_p = {"w": (torch.randn(16, c, 3, 3, 3) * 0.1).requires_grad_(),
              "b": torch.zeros(16, requires_grad=True)}
    return [
        ("MaxPooling3D (1,2,2) [seed video]", args.video, lambda: layers.MaxPooling3D((1, 2, 2)),
         lambda x, p: F.max_pool3d(x, (1, 2, 2)), {}),
        ("MaxPooling3D 2x2x2", args.volume, lambda: layers.MaxPooling3D(),
         lambda x, p: F.max_pool3d(x, 2), {}),
        ("AveragePooling3D 2x2x2", args.volume, lambda: layers.AveragePooling3D(),
         lambda x, p: F.avg_pool3d(x, 2), {}),
        ("Conv3D 16 3x3x3 same relu", args.volume,
         lambda: layers.Conv3D(16, 3, padding="same", activation="relu"),
         lambda x, p: F.relu(F.conv3d(x, p["w"], p["b"], padding=1)), conv_p),
    ]


def main(argv=None):
    args = parse_args(argv)
    import signcore  # noqa: F401
    import torch
    from signcore import _core

    common.set_threads(args.threads)
    rng = np.random.default_rng(0)
    repeat = max(args.repeat, 3)
    rows, records = [], []
    for name, shape, make, tfn, p in cases(args):
        n = args.batch_size
        x = rng.standard_normal((n,) + shape, dtype=np.float32)
        tx = torch.from_numpy(x).permute(0, 4, 1, 2, 3)  # NCDHW view of NDHWC memory
        assert tx.is_contiguous(memory_format=torch.channels_last_3d)
        with torch.no_grad():
            y_shape = tuple(tfn(tx, p).permute(0, 2, 3, 4, 1).shape)
        dy = rng.standard_normal(y_shape, dtype=np.float32)
        sf, sb = _core._bench_layer(make(), x, dy, training=True, repeats=repeat)
        tf, tb = time_torch(tfn, tx, p, repeat, args.warmup)
        label = f"{name}, {'x'.join(map(str, shape))}"
        rows.append([label, f"{sf * 1e3:.2f}", f"{sb * 1e3:.2f}", f"{tf * 1e3:.2f}", f"{tb * 1e3:.2f}",
                     f"{(tf + tb) / (sf + sb):.2f}"])
        records.append({"case": label, "batch": n, "signcore_forward_ms": sf * 1e3,
                        "signcore_backward_ms": sb * 1e3, "torch_forward_ms": tf * 1e3,
                        "torch_backward_ms": tb * 1e3})

    print(f"3-D layers (video / volumes), batch {args.batch_size}, float32, channels last")
    print(common.machine_summary(args.threads))
    print()
    common.print_table(rows, ["layer, input (D x H x W x C)", "signcore fwd ms", "signcore bwd ms",
                              "PyTorch fwd ms", "PyTorch bwd ms", "PyTorch/signcore"])
    print("\nPyTorch/signcore > 1: signcore is faster (forward + backward, median times).")
    if args.quick:
        print("(--quick: tiny sizes, the numbers mean nothing)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"benchmark": "volumetric", "threads": args.threads, "rows": records}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
