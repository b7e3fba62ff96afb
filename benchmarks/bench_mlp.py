"""MLP throughput, signcore vs PyTorch: training step, one fit epoch, predict.

Same architecture (784-512-256-10, ReLU, logits + softmax cross-entropy), same optimiser (Adam,
learning rate 1e-3, epsilon 1e-7), same batch size, same thread count, same random data, one
process. Each measurement is warmed up, repeated, and the median is reported.

    python benchmarks/bench_mlp.py [--threads N] [--batch-size 128] [--hidden 512,256]

The last column but one is samples/s of signcore divided by samples/s of PyTorch: above 1 signcore
is faster, below 1 slower. See benchmarks/README.md.
"""
import argparse
import json
import sys

import numpy as np

import common


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (default: 128)")
    parser.add_argument("--features", type=int, default=784, help="input features (default: 784)")
    parser.add_argument("--hidden", default="512,256",
                        help="hidden layer widths, comma-separated (default: 512,256)")
    parser.add_argument("--classes", type=int, default=10, help="output classes (default: 10)")
    parser.add_argument("--batches", type=int, default=40,
                        help="batches in the data set used by fit and predict (default: 40)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    common.add_common_args(parser)
    args = parser.parse_args(argv)
    args.hidden = [int(h) for h in args.hidden.split(",") if h.strip()]
    if args.quick:
        args.batch_size, args.hidden, args.batches = 32, [64, 32], 4
        args.repeat, args.warmup, args.min_time = 2, 1, 0.0
    for name in ("batch_size", "features", "classes", "batches", "repeat", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def signcore_model(features, hidden, classes):
    import signcore
    from signcore import layers

    model = signcore.Sequential(
        [signcore.Input(shape=(features,))]
        + [layers.Dense(h, activation="relu") for h in hidden]
        + [layers.Dense(classes)])
    model.compile(optimizer=signcore.optimizers.Adam(learning_rate=1e-3, epsilon=1e-7),
                  loss=signcore.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def torch_model(features, hidden, classes):
    import torch

    widths = [features] + hidden
    mods = []
    for a, b in zip(widths[:-1], widths[1:]):
        mods += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    mods.append(torch.nn.Linear(widths[-1], classes))
    net = torch.nn.Sequential(*mods)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    return net, opt, torch.nn.CrossEntropyLoss()


def main(argv=None):
    args = parse_args(argv)
    import signcore
    import torch

    common.set_threads(args.threads)
    signcore.utils.set_random_seed(0)
    torch.manual_seed(0)

    rng = np.random.default_rng(0)
    b, n = args.batch_size, args.batch_size * args.batches
    x = rng.standard_normal((n, args.features), dtype=np.float32)
    y = rng.integers(0, args.classes, size=n).astype(np.int64)
    xb, yb = x[:b].copy(), y[:b].copy()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    txb, tyb = torch.from_numpy(xb), torch.from_numpy(yb)

    sc = signcore_model(args.features, args.hidden, args.classes)
    net, opt, ce = torch_model(args.features, args.hidden, args.classes)
    arch = "-".join(str(w) for w in [args.features] + args.hidden + [args.classes])
    timing = dict(warmup=args.warmup, repeat=args.repeat, min_time=args.min_time)

    # --- one training step on a fixed batch ---------------------------------------------------
    def torch_step(xb=txb, yb=tyb):
        opt.zero_grad(set_to_none=True)
        loss = ce(net(xb), yb)
        loss.backward()
        opt.step()

    ours_step = common.measure(lambda: sc.train_on_batch(xb, yb), **timing)
    theirs_step = common.measure(torch_step, **timing)

    # --- one epoch of fit over n samples (shuffled batches) ------------------------------------
    def torch_epoch():
        perm = torch.randperm(n)
        for i in range(0, n, b):
            idx = perm[i:i + b]
            torch_step(tx[idx], ty[idx])

    epoch_timing = dict(timing, warmup=1, repeat=max(3, args.repeat // 2))
    ours_fit = common.measure(
        lambda: sc.fit(x, y, batch_size=b, epochs=1, verbose=0, shuffle=True), **epoch_timing)
    theirs_fit = common.measure(torch_epoch, **epoch_timing)

    # --- predict over n samples -------------------------------------------------------------------
    def torch_predict():
        with torch.inference_mode():
            return [net(tx[i:i + b]) for i in range(0, n, b)]

    ours_pred = common.measure(lambda: sc.predict(x, batch_size=b, verbose=0), **timing)
    theirs_pred = common.measure(torch_predict, **timing)

    print(f"MLP {arch}, Adam, softmax cross-entropy on logits, float32")
    print(common.machine_summary(args.threads))
    print()
    rows = [
        common.throughput_row("train step (train_on_batch)", b, b, ours_step, theirs_step),
        common.throughput_row(f"fit, 1 epoch of {n}", b, n, ours_fit, theirs_fit),
        common.throughput_row(f"predict, {n} samples", b, n, ours_pred, theirs_pred),
    ]
    common.print_table(rows, common.THROUGHPUT_HEADERS)
    print("\nsigncore/PyTorch > 1: signcore is faster. noise: (slowest - fastest) / median round.")
    if args.quick:
        print("(--quick: tiny sizes, the numbers mean nothing)")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"benchmark": "mlp", "architecture": arch, "threads": args.threads,
                       "batch_size": b,
                       "rows": [dict(zip(common.THROUGHPUT_HEADERS, r)) for r in rows]}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
