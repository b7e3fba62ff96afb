"""The three reference image models end to end, signcore vs PyTorch: training step, inference
throughput, single-image predict latency and peak memory, next to the large-SGEMM rate of the same
machine measured in the same run.

Models (from `signcore.applications`, the same architecture rebuilt in torch.nn layer by layer):
    cifar10   seed 001's CIFAR-10 CNN, 32x32x3, batch 128, SGD(0.01)
    asl       seed 002's ASL CNN with BatchNormalization, 128x128x3, batch 16 (the seed's), Adam(1e-4)
    emotion   the emotion CNN (Conv/BN/MaxPool/Dropout blocks), 48x48x1, batch 64, Adam(1e-4)

    python benchmarks/bench_models.py [--threads N] [--models cifar10,asl,emotion] [--json FILE]

Rows:
    train step   signcore `model.train_on_batch(x, y)`; PyTorch `zero_grad`, forward, loss, backward,
                 step (cross-entropy on the logits, PyTorch's fastest path)
    inference    signcore `model.predict_on_batch(x)`; PyTorch forward in eval mode under
                 `torch.inference_mode()`; same batch
    latency      the same for one image, in ms (lower is better)
    peak memory  each library in a fresh child process: the resident-set high-water mark over 5
                 training steps minus the resident set just before the model is built (weights,
                 optimiser state, activations, scratch), in MB. The PyTorch child also loads
                 signcore, to read the architecture, before that baseline

PyTorch runs in whichever memory format is faster for that row (NCHW or channels_last); the table
says which. The rounds of signcore and of PyTorch in both layouts alternate (rotating order), so a
slow spell of a shared machine slows all three alike. "% of SGEMM" is signcore's training FLOP rate
(2*M*K*F per GEMM-shaped product: forward, dW and dx, no dx for the first layer) over the rate of a
2048^3 cblas_sgemm of the OpenBLAS signcore links, on OpenBLAS's own threads. The product is timed
as a fourth member of the training rows' alternating rounds, and the share is the median over the
rounds of (model rate / SGEMM rate in that round): measured minutes apart, the two moved with the
host's load by up to 15 points of share between runs of the same code. The SGEMM line printed at the
top is a separate measurement, for orientation. The FLOP count is that of the direct convolution
(what PyTorch's rate below it counts too): signcore runs 3x3 stride-1 convolutions as Winograd
F(2x2, 3x3), which does 4/9 of those multiply-adds in them, so its rate is an effective one (the
same work done faster) and can exceed the SGEMM rate.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

import common

MODELS = {  # name: (builder, input shape, classes, batch, optimiser)
    "cifar10": ("cifar10_cnn", (32, 32, 3), 10, 128, ("SGD", 0.01)),
    "asl": ("asl_cnn", (128, 128, 3), 24, 16, ("Adam", 1e-4)),
    "emotion": ("emotion_cnn", (48, 48, 1), 7, 64, ("Adam", 1e-4)),
}


def parse_args(argv=None):
    parser = common.add_common_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--models", default=",".join(MODELS),
                        help="comma-separated subset of: " + ", ".join(MODELS))
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--child", nargs=2, metavar=("LIBRARY", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    return args


def signcore_model(name, quick):
    import signcore
    from signcore import applications

    builder, shape, classes, batch, (opt, lr) = MODELS[name]
    if quick:
        shape, batch = (shape[0] // 2, shape[1] // 2, shape[2]), 4
    signcore.utils.set_random_seed(0)
    model = getattr(applications, builder)(input_shape=shape, num_classes=classes)
    model.compile(optimizer=getattr(signcore.optimizers, opt)(lr), loss="sparse_categorical_crossentropy")
    return model, shape, classes, batch


def torch_model(model):
    """The same architecture in torch.nn, from the signcore model's layers (NCHW; softmax dropped
    from the end: PyTorch's loss takes logits)."""
    import numpy as np
    import torch.nn as nn

    acts = {"relu": nn.ReLU, "softmax": lambda: nn.Softmax(dim=1), "linear": None}
    mods, channels, features = [], model.input_shape[-1], None
    for layer in model.layers:
        c, kind = layer.get_config(), type(layer).__name__
        if kind == "Conv2D":
            k, s = tuple(c["kernel_size"]), tuple(c["strides"])
            mods.append(nn.Conv2d(channels, c["filters"], k, s, padding=c["padding"]))
            channels = c["filters"]
        elif kind == "Dense":
            mods.append(nn.Linear(features, c["units"]))
            features = c["units"]
        elif kind == "BatchNormalization":
            mods.append(nn.BatchNorm2d(channels, eps=c["epsilon"], momentum=1 - c["momentum"]))
        elif kind == "MaxPooling2D":
            mods.append(nn.MaxPool2d(tuple(c["pool_size"]), tuple(c["strides"])))
        elif kind == "Dropout":
            mods.append(nn.Dropout(c["rate"]))
        elif kind == "Flatten":
            mods.append(nn.Flatten())
            features = int(np.prod(layer.output_shape[1:]))
        elif kind == "Activation":
            pass
        else:
            raise ValueError(f"bench_models cannot translate a {kind} layer")
        act = c.get("activation")
        if act and acts.get(act):
            mods.append(acts[act]())
    if isinstance(mods[-1], nn.Softmax):
        mods.pop()
    return nn.Sequential(*mods)


def training_flops(model, batch):
    """FLOPs of one training step's GEMM-shaped products (forward, dW, dx except the first layer)."""
    import numpy as np

    total, first, prev = 0, True, model.input_shape[1:]
    for layer in model.layers:
        c, kind = layer.get_config(), type(layer).__name__
        out = layer.output_shape[1:]
        if kind == "Conv2D":
            macs = np.prod(out) * c["kernel_size"][0] * c["kernel_size"][1] * prev[-1]
        elif kind == "Dense":
            macs = prev[-1] * out[-1]
        else:
            macs = 0
        if macs:
            total += 2 * batch * macs * (2 if first else 3)
            first = False
        prev = out
    return int(total)


def child(library, name, quick):
    """Peak memory of 5 training steps in this (fresh) process; prints one JSON line."""
    import numpy as np

    def rss_mb(field):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024

    if library == "signcore":
        import signcore  # noqa: F401  (loaded before the baseline)
    else:
        import torch
    builder, shape, classes, batch, (opt, lr) = MODELS[name]
    if quick:
        shape, batch = (shape[0] // 2, shape[1] // 2, shape[2]), 4
    rng = np.random.default_rng(0)
    x = rng.random((batch,) + shape, dtype=np.float32)
    y = rng.integers(0, classes, batch)
    base = rss_mb("VmRSS")
    if library == "signcore":
        model, *_ = signcore_model(name, quick)
        for _ in range(5):
            model.train_on_batch(x, y)
    else:
        reference = signcore_model(name, quick)[0]  # the architecture to copy, before the baseline
        base = rss_mb("VmRSS")
        model = torch_model(reference)
        optim = getattr(torch.optim, opt)(model.parameters(), lr=lr)
        xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
        yt = torch.from_numpy(y)
        for _ in range(5):
            optim.zero_grad()
            torch.nn.functional.cross_entropy(model(xt), yt).backward()
            optim.step()
    print(json.dumps({"peak_mb": rss_mb("VmHWM") - base}))


def peak_memory(library, name, threads, quick):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    cmd = [sys.executable, __file__, "--child", library, name, "--threads", str(threads)]
    if quick:
        cmd.append("--quick")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]


def against_best_layout(ours, theirs):
    """signcore's Timing against the fastest of PyTorch's ({layout: Timing}), in seconds."""
    fmt = min(theirs, key=lambda k: theirs[k].median)
    return {"signcore": ours.median, "torch": theirs[fmt].median, "torch_format": fmt,
            "noise": max(ours.spread, theirs[fmt].spread)}


def bench_model(name, args, timing):
    import copy

    import numpy as np
    import torch
    from signcore import _core

    model, shape, classes, batch = signcore_model(name, args.quick)
    rng = np.random.default_rng(0)
    x = rng.random((batch,) + shape, dtype=np.float32)
    y = rng.integers(0, classes, batch)
    x1 = x[:1].copy()
    yt = torch.from_numpy(y)
    opt, lr = MODELS[name][4]
    # PyTorch in both memory layouts, each with its own copy of the module and optimiser, so that
    # the three libraries' rounds can alternate (common.measure_side_by_side).
    base = torch_model(model)
    variants = {}
    for label, fmt in (("NCHW", torch.contiguous_format), ("CL", torch.channels_last)):
        m = copy.deepcopy(base).to(memory_format=fmt)
        variants[label] = (m, getattr(torch.optim, opt)(m.parameters(), lr=lr),
                           torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=fmt),
                           torch.from_numpy(x1).permute(0, 3, 1, 2).contiguous(memory_format=fmt))
    res = {"model": name, "batch": batch, "shape": shape}

    def side_by_side(ours, theirs, sgemm=None):
        fns = {"signcore": ours, **theirs}
        if sgemm is not None:  # in the same alternating rounds: a slow spell of the host hits both
            fns["sgemm"] = lambda: sgemm.run(1)
        timings = common.measure_side_by_side(fns, **timing)
        out = against_best_layout(timings["signcore"], {k: timings[k] for k in theirs})
        if sgemm is not None:
            # Per round: the model's training FLOP rate over the SGEMM rate of the same round.
            flops = training_flops(model, batch)
            shares = [(flops / t) / (sgemm.flops / s)
                      for t, s in zip(timings["signcore"].samples, timings["sgemm"].samples)]
            out["sgemm_gflops"] = sgemm.flops / timings["sgemm"].median / 1e9
            out["sgemm_fraction"] = statistics.median(shares)
        return out

    def train_step(m, optim, xt):
        def step():
            optim.zero_grad()
            torch.nn.functional.cross_entropy(m(xt), yt).backward()
            optim.step()
        return step

    def forward(m, xt):
        def run():
            with torch.inference_mode():
                m(xt)
        return run

    for m, *_ in variants.values():
        m.train()
    res["train"] = side_by_side(lambda: model.train_on_batch(x, y),
                                {k: train_step(m, o, xt) for k, (m, o, xt, _) in variants.items()},
                                sgemm=_core._SgemmBenchmark(2048))
    for m, *_ in variants.values():
        m.eval()
    res["inference"] = side_by_side(lambda: model.predict_on_batch(x),
                                    {k: forward(m, xt) for k, (m, _, xt, _) in variants.items()})
    res["latency"] = side_by_side(lambda: model.predict_on_batch(x1),
                                  {k: forward(m, xt1) for k, (m, _, _, xt1) in variants.items()})
    res["train_gflop"] = training_flops(model, batch) / 1e9
    res["memory_mb"] = {lib: peak_memory(lib, name, args.threads, args.quick)
                        for lib in ("signcore", "torch")}
    return res


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        common.set_threads(args.threads)
        child(*args.child, args.quick)
        return
    import bench_conv

    threads = common.set_threads(args.threads)[0]
    timing = dict(warmup=args.warmup, repeat=args.repeat, min_time=args.min_time)
    if args.quick:
        timing = dict(warmup=1, repeat=2, min_time=0.01)
    print(common.machine_summary(threads))
    sgemm_torch, sgemm_ours = bench_conv.sgemm_rates(timing)
    print(f"SGEMM 2048^3: signcore's OpenBLAS {sgemm_ours:.0f} GFLOP/s, torch.mm {sgemm_torch:.0f} GFLOP/s\n")
    results = [bench_model(name, args, timing) for name in args.models]
    headers = ["model (batch)", "row", "signcore", "PyTorch", "unit", "signcore/PyTorch", "torch layout", "noise"]
    rows = []
    for r in results:
        label = f"{r['model']} ({r['batch']})"
        b = r["batch"]
        for key, unit, per in (("train", "img/s", b), ("inference", "img/s", b), ("latency", "ms", None)):
            m = r[key]
            if per:
                a, t = per / m["signcore"], per / m["torch"]
                rows.append([label, key, f"{a:,.0f}", f"{t:,.0f}", unit, f"{a / t:.2f}", m["torch_format"], f"{m['noise']:.0%}"])
            else:
                a, t = m["signcore"] * 1e3, m["torch"] * 1e3
                rows.append([label, key, f"{a:.2f}", f"{t:.2f}", unit, f"{t / a:.2f}", m["torch_format"], f"{m['noise']:.0%}"])
        mem = r["memory_mb"]
        rows.append([label, "peak memory", f"{mem['signcore']:.0f}", f"{mem['torch']:.0f}", "MB",
                     f"{mem['torch'] / max(mem['signcore'], 1e-9):.2f}", "NCHW", ""])
        gf = r["train_gflop"] / r["train"]["signcore"]
        rows.append([label, "train GFLOP/s", f"{gf:.0f}", f"{r['train_gflop'] / r['train']['torch']:.0f}",
                     f"{r['train']['sgemm_fraction']:.0%} of SGEMM",
                     f"(SGEMM {r['train']['sgemm_gflops']:.0f})", "", ""])
        r["train_gflops"] = gf
    common.print_table(rows, headers)
    print("\nsigncore/PyTorch > 1: signcore is faster (latency, memory: PyTorch's value over signcore's).")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": threads, "sgemm_gflops": {"signcore": sgemm_ours, "torch": sgemm_torch},
                       "results": results}, f, indent=1, default=str)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
