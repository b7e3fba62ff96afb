"""Recurrent layers, signcore vs PyTorch: one training step (forward, backward, Adam).

Rows:
  * the seed 000 model (Input (50, 1280) + bool mask, SimpleRNN(256, return_sequences=True),
    SimpleRNN(128), Dropout(0.3)/Dense 256-128-256-128-64 relu, Dense(15 softmax)), batch 8,
    Adam(5e-4), sparse cross-entropy. Two data sets:
      - "full": every clip 50 frames long (mask all True); PyTorch runs plain nn.RNN on the batch;
      - "padded": clip lengths drawn in [10, 50] with right padding; PyTorch gets the same
        semantics with packed sequences (pack_padded_sequence, h_n of the second RNN), which is
        what Keras's masking computes for right-padded clips;
  * single recurrent layers, no mask: Input (T, F) -> SimpleRNN / LSTM / GRU(U) -> Dense(15
    softmax), against nn.RNN / nn.LSTM / nn.GRU with the same sizes.

Each row is measured with 1 thread and with --threads (default: all cores) in both libraries.

    python benchmarks/bench_rnn.py [--threads N] [--clock cpu] [--quick]

--clock cpu times with the process's CPU time instead of the wall clock: on a busy shared machine
with --threads 1 it shows the work each library does, unaffected by waiting for a core (with more
threads it adds up every thread's time, spinning included).

The ratio column is signcore samples/s divided by PyTorch samples/s: above 1 signcore is faster.
"""
import argparse
import json
import sys
import time

import numpy as np

import common

CLASSES = 15


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=8, help="batch size (default: 8)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall clock (default) or the process's CPU time (busy machines)")
    common.add_common_args(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.warmup, args.min_time = 2, 1, 0.0
    if args.batch_size < 1 or args.threads < 1:
        parser.error("--batch-size and --threads must be at least 1")
    return args


def measure(fn, clock, **timing):
    """common.measure, or the same procedure timed with the process's CPU time."""
    return common.measure(fn, clock=time.perf_counter if clock == "wall" else time.process_time,
                          **timing)


# ----- signcore models ------------------------------------------------------------------------------


def signcore_seed_model(steps, features):
    import signcore
    from signcore import layers

    feats = signcore.Input((steps, features))
    mask = signcore.Input((steps,), dtype="bool")
    x = layers.SimpleRNN(256, return_sequences=True)(feats, mask=mask)
    x = layers.SimpleRNN(128)(x)
    for units in (256, 128, 256, 128, 64):
        x = layers.Dropout(0.3)(x)
        x = layers.Dense(units, activation="relu")(x)
    out = layers.Dense(CLASSES, activation="softmax")(x)
    model = signcore.Model([feats, mask], out)
    model.compile(optimizer=signcore.optimizers.Adam(learning_rate=5e-4, epsilon=1e-7),
                  loss="sparse_categorical_crossentropy")
    return model


def signcore_single(kind, steps, features, units):
    import signcore
    from signcore import layers

    model = signcore.Sequential([signcore.Input((steps, features)), getattr(layers, kind)(units),
                                 layers.Dense(CLASSES, activation="softmax")])
    model.compile(optimizer=signcore.optimizers.Adam(learning_rate=1e-3, epsilon=1e-7),
                  loss="sparse_categorical_crossentropy")
    return model


# ----- PyTorch models -------------------------------------------------------------------------------


def torch_seed_model(features):
    import torch

    class SeedModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn1 = torch.nn.RNN(features, 256, batch_first=True)
            self.rnn2 = torch.nn.RNN(256, 128, batch_first=True)
            widths = [128, 256, 128, 256, 128, 64]
            mods = []
            for a, b in zip(widths[:-1], widths[1:]):
                mods += [torch.nn.Dropout(0.3), torch.nn.Linear(a, b), torch.nn.ReLU()]
            mods.append(torch.nn.Linear(64, CLASSES))  # softmax folded into the loss
            self.head = torch.nn.Sequential(*mods)

        def forward(self, x, lengths=None):
            from torch.nn.utils.rnn import pack_padded_sequence

            if lengths is None:
                seq, _ = self.rnn1(x)
                _, h = self.rnn2(seq)
            else:  # right padding, as Keras's masking: each clip stops at its last real frame
                packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
                seq, _ = self.rnn1(packed)
                _, h = self.rnn2(seq)
            return self.head(h[0])

    return SeedModel()


def torch_single(kind, features, units):
    import torch

    cls = {"SimpleRNN": torch.nn.RNN, "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}[kind]

    class Single(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = cls(features, units, batch_first=True)
            self.out = torch.nn.Linear(units, CLASSES)

        def forward(self, x, lengths=None):
            seq, _ = self.rnn(x)
            return self.out(seq[:, -1])

    return Single()


def torch_step_fn(net, x, y, lengths=None, lr=5e-4):
    import torch

    opt = torch.optim.Adam(net.parameters(), lr=lr, eps=1e-7)
    ce = torch.nn.CrossEntropyLoss()
    net.train()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = ce(net(x, lengths), y)
        loss.backward()
        opt.step()

    return step


# ----- main -------------------------------------------------------------------------------------------


def run(args, threads):
    import signcore
    import torch

    common.set_threads(threads)
    signcore.utils.set_random_seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    b = args.batch_size
    steps, features = (10, 64) if args.quick else (50, 1280)
    timing = dict(warmup=args.warmup, repeat=args.repeat, min_time=args.min_time)
    rows = []

    x = rng.normal(scale=0.5, size=(b, steps, features)).astype(np.float32)
    y = rng.integers(0, CLASSES, size=b).astype(np.int64)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    # Seed model, full-length clips and right-padded clips.
    sc = signcore_seed_model(steps, features)
    net = torch_seed_model(features)
    for label, lengths in [("full", np.full(b, steps)),
                           ("padded", rng.integers(max(1, steps // 5), steps + 1, size=b))]:
        mask = np.arange(steps)[None, :] < lengths[:, None]
        xm = np.where(mask[..., None], x, 0).astype(np.float32)
        ours = measure(lambda: sc.train_on_batch([xm, mask], y), args.clock, **timing)
        tl = None if label == "full" else torch.from_numpy(lengths)
        theirs = measure(torch_step_fn(net, torch.from_numpy(xm), ty, tl), args.clock, **timing)
        rows.append(common.throughput_row(f"seed 000 model, {label} clips", b, b, ours, theirs))

    # Single layers.
    f1, u1 = (64, 32) if args.quick else (256, 256)
    x1 = rng.normal(scale=0.5, size=(b, steps, f1)).astype(np.float32)
    tx1 = torch.from_numpy(x1)
    for kind in ("SimpleRNN", "LSTM", "GRU"):
        sc1 = signcore_single(kind, steps, f1, u1)
        net1 = torch_single(kind, f1, u1)
        ours = measure(lambda: sc1.train_on_batch(x1, y), args.clock, **timing)
        theirs = measure(torch_step_fn(net1, tx1, ty, lr=1e-3), args.clock, **timing)
        rows.append(common.throughput_row(f"{kind}({u1}) on ({steps}, {f1})", b, b, ours, theirs))
    return rows


def main(argv=None):
    args = parse_args(argv)
    results = {}
    for threads in sorted({1, args.threads}):
        rows = run(args, threads)
        results[threads] = rows
        print(f"\nTraining step (forward + backward + Adam), float32, {threads} thread(s), "
              f"{args.clock} clock")
        print(common.machine_summary(threads))
        print()
        common.print_table(rows, common.THROUGHPUT_HEADERS)
    print("\nsigncore/PyTorch > 1: signcore is faster. noise: (slowest - fastest) / median round.")
    print("padded clips: signcore masks (skipping padded steps); PyTorch uses packed sequences.")
    if args.quick:
        print("(--quick: tiny sizes, the numbers mean nothing)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"benchmark": "rnn", "batch_size": args.batch_size, "clock": args.clock,
                       "rows": {str(t): [dict(zip(common.THROUGHPUT_HEADERS, r)) for r in rows]
                                for t, rows in results.items()}}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
