"""Conv2D kernels, signcore vs PyTorch: forward and forward+backward of the CIFAR reference CNN's
convolutions, per layer, in ms and GFLOP/s, next to the large-SGEMM rate measured in the same run.

Layers (batch 128 by default, ReLU fused, as in the reference CNN):
    conv1  32x32x3  -> 32, 3x3 "same"     (the first layer: no input gradient)
    conv2  32x32x32 -> 32, 3x3 "valid"
    conv3  16x16x32 -> 64, 3x3 "same"
    conv4  16x16x64 -> 64, 3x3 "valid"

    python benchmarks/bench_conv.py [--threads N] [--batch-size 128] [--chunk-kb 1024,4096]
                                    [--threading pipelined,direct]

signcore is timed in C++ on one layer (`_core._benchmark_layer`: forward in training mode, then
backward with the gradients the layer needs in a model), PyTorch with `torch.nn.functional.conv2d`
+ relu on NCHW tensors, in its default (contiguous) and channels_last memory formats; forward under
`no_grad`, forward+backward through autograd. GFLOP/s count 2*M*K*F per GEMM-shaped product
(M = N*OH*OW, K = kh*kw*C): one for the forward, two (dW and dx) or one (dW only, conv1) more for
the backward. "vs torch" is the best PyTorch time divided by signcore's (above 1: signcore faster);
"% SGEMM" is signcore's GFLOP/s over the 2048^3 SGEMM rate of the same OpenBLAS; both use the
fastest signcore variant of the row.

signcore variants: --chunk-kb (the im2col chunk size) and --threading: "shared" (im2col forward;
OpenMP loops and multi-threaded OpenBLAS calls take turns on every chunk), "pipelined" (im2col
forward; each thread runs whole chunks with a single-threaded sgemm; see
cpp/src/layers/conv2d.cpp), "direct" (the direct forward kernel of cpp/src/direct_conv.cpp,
pipelined backward, and where conv2d.cpp picks them the direct input and kernel gradients of the
same file) and "winograd" (the library's default: "direct" with the 3x3 layers of C a multiple of
8, conv2-conv4, run as Winograd F(2x2, 3x3), cpp/src/winograd.cpp, forward and both gradients;
their GFLOP/s count the direct convolution's FLOPs, an effective rate).

Threads: signcore alternates its OpenMP loops with OpenBLAS's own threads. With the default
environment both pools busy-wait after their work and starve each other on a small machine, so the
script sets OMP_WAIT_POLICY=PASSIVE and OPENBLAS_THREAD_TIMEOUT=4 before the libraries load (unless
already set, or --inherit-env). See the report in the script's output header.
"""
import argparse
import json
import math
import os
import statistics
import sys

import common

THREAD_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}

LAYERS = [  # name, (H, W, C), filters, padding, input gradient needed
    ("conv1 32x32x3->32 same", (32, 32, 3), 32, "same", False),
    ("conv2 32x32x32->32 valid", (32, 32, 32), 32, "valid", True),
    ("conv3 16x16x32->64 same", (16, 16, 32), 64, "same", True),
    ("conv4 16x16x64->64 valid", (16, 16, 64), 64, "valid", True),
]


MODES = {"shared": dict(pipelined=False, direct=False, winograd=False),  # mode: Conv2D's switches
         "pipelined": dict(pipelined=True, direct=False, winograd=False),
         "direct": dict(pipelined=True, direct=True, winograd=False),
         "winograd": dict(pipelined=True, direct=True, winograd=True)}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (default: 128)")
    parser.add_argument("--chunk-kb", default=None,
                        help="signcore's im2col chunk size(s) in KiB, comma-separated: one column "
                             "per value (default: the library's)")
    parser.add_argument("--threading", default="pipelined,direct,winograd",
                        help="signcore mode(s), comma-separated: shared, pipelined, direct, winograd "
                             "(default: pipelined,direct,winograd)")
    parser.add_argument("--inherit-env", action="store_true",
                        help=f"do not set {', '.join(f'{k}={v}' for k, v in THREAD_ENV.items())}")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    common.add_common_args(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.batch_size, args.repeat, args.warmup, args.min_time = 4, 2, 1, 0.0
    if args.batch_size < 1 or args.repeat < 1 or args.threads < 1:
        parser.error("--batch-size, --repeat and --threads must be at least 1")
    args.chunks = None if args.chunk_kb is None else [int(c) for c in args.chunk_kb.split(",")]
    args.modes = [m.strip() for m in args.threading.split(",") if m.strip()]
    if not args.modes or any(m not in MODES for m in args.modes):
        parser.error(f"--threading takes {', '.join(MODES)}. Received: {args.threading!r}")
    return args


def flops(shape, filters, padding):
    H, W, C = shape
    oh, ow = (H, W) if padding == "same" else (H - 2, W - 2)
    return 2 * oh * ow * 9 * C * filters  # per sample, one GEMM-shaped product


def measure_signcore(make_layer, shape, batch, backward, need_dx, warmup, repeat, min_time):
    """A common.Timing from C++-timed steps: rounds of as many steps as fill min_time."""
    from signcore import _core

    wall, _ = _core._benchmark_layer(make_layer(), list(shape), batch, max(2, warmup + 1),
                                     backward, need_dx)
    t = wall[-1]
    calls = max(1, math.ceil(min_time / t)) if t > 0 else 1
    wall, _ = _core._benchmark_layer(make_layer(), list(shape), batch, 1 + repeat * calls,
                                     backward, need_dx)
    rounds = [sum(wall[1 + r * calls:1 + (r + 1) * calls]) / calls for r in range(repeat)]
    return common.Timing(statistics.median(rounds), min(rounds), max(rounds), calls, repeat, rounds)


def torch_fns(shape, filters, padding, batch, need_dx, channels_last):
    import torch
    import torch.nn.functional as F

    H, W, C = shape
    x = torch.randn(batch, C, H, W)
    w = torch.randn(filters, C, 3, 3) * 0.1
    b = torch.zeros(filters)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        w = w.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(need_dx)
    w.requires_grad_()
    b.requires_grad_()
    pad = 1 if padding == "same" else 0
    with torch.no_grad():
        dy = torch.randn_like(F.conv2d(x, w, b, padding=pad))

    def forward():
        with torch.no_grad():
            return F.relu(F.conv2d(x, w, b, padding=pad))

    def forward_backward():
        w.grad = b.grad = x.grad = None
        F.relu(F.conv2d(x, w, b, padding=pad)).backward(dy)

    return forward, forward_backward


def sgemm_rates(timing):
    """GFLOP/s of a 2048^3 float32 product: PyTorch's torch.mm and the cblas_sgemm of the OpenBLAS
    signcore links, on OpenBLAS's own threads."""
    import torch
    from signcore import _core

    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    t_torch = common.measure(lambda: torch.mm(a, b), **timing)
    ref = _core._SgemmBenchmark(n)
    ours = common.measure(lambda: ref.run(1), **timing)
    return ref.flops / t_torch.median / 1e9, ref.flops / ours.median / 1e9


def main(argv=None):
    args = parse_args(argv)
    env_note = "inherited environment"
    if not args.inherit_env:
        set_now = {k: v for k, v in THREAD_ENV.items() if k not in os.environ}
        os.environ.update(set_now)
        env_note = ", ".join(f"{k}={os.environ[k]}" for k in THREAD_ENV)
    from signcore import _core, layers

    common.set_threads(args.threads)
    timing = dict(warmup=args.warmup, repeat=args.repeat, min_time=args.min_time)
    chunks = args.chunks or [_core._conv_chunk_bytes() // 1024]
    defaults = (_core._conv_chunk_bytes(), _core._conv_pipelined(), _core._conv_direct(),
                _core._conv_winograd())
    variants = [(kb, mode) for kb in chunks for mode in args.modes]
    n = args.batch_size

    results = []
    for name, shape, filters, padding, need_dx in LAYERS:
        fl = flops(shape, filters, padding) * n
        for label, backward, mult in (("fwd", False, 1), ("fwd+bwd", True, 3 if need_dx else 2)):
            row = {"layer": name, "pass": label, "gflop": mult * fl / 1e9, "signcore_ms": {}}
            for kb, mode in variants:
                _core._set_conv_chunk_bytes(kb * 1024)
                _core._set_conv_pipelined(MODES[mode]["pipelined"])
                _core._set_conv_direct(MODES[mode]["direct"])
                _core._set_conv_winograd(MODES[mode]["winograd"])
                t = measure_signcore(
                    lambda: layers.Conv2D(filters, 3, padding=padding, activation="relu"),
                    shape, n, backward, need_dx and backward, **timing)
                row["signcore_ms"][f"{kb}K {mode}"] = t.median * 1e3
                row["noise"] = max(row.get("noise", 0.0), t.spread)
            _core._set_conv_chunk_bytes(defaults[0])
            _core._set_conv_pipelined(defaults[1])
            _core._set_conv_direct(defaults[2])
            _core._set_conv_winograd(defaults[3])
            for fmt, cl in (("torch_ms", False), ("torch_cl_ms", True)):
                fwd, fwd_bwd = torch_fns(shape, filters, padding, n, need_dx, cl)
                t = common.measure(fwd_bwd if backward else fwd, **timing)
                row[fmt] = t.median * 1e3
                row["noise"] = max(row["noise"], t.spread)
            results.append(row)
    sgemm_torch, sgemm_ours = sgemm_rates(timing)

    print(f"Conv2D 3x3 + relu, batch {n}, float32; signcore variants: "
          f"{', '.join(f'{kb} KiB chunks {mode}' for kb, mode in variants)}; {env_note}")
    print(common.machine_summary(args.threads))
    print(f"SGEMM 2048^3: signcore's OpenBLAS {sgemm_ours:.0f} GFLOP/s, torch.mm {sgemm_torch:.0f} "
          f"GFLOP/s\n")

    keys = [f"{kb}K {mode}" for kb, mode in variants]
    headers = ["layer", "pass"]
    for key in keys:
        suffix = f" [{key}]" if len(keys) > 1 else ""
        headers += [f"signcore ms{suffix}", f"GFLOP/s{suffix}"]
    headers += ["torch ms", "torch CL ms", "torch GFLOP/s", "vs torch", "% SGEMM", "noise"]
    rows = []
    totals = {}
    for r in results:
        ours = min(r["signcore_ms"].values())
        theirs = min(r["torch_ms"], r["torch_cl_ms"])
        cells = [r["layer"], r["pass"]]
        for key in keys:
            ms = r["signcore_ms"][key]
            cells += [f"{ms:.1f}", f"{r['gflop'] / ms * 1e3:.0f}"]
        cells += [f"{r['torch_ms']:.1f}", f"{r['torch_cl_ms']:.1f}",
                  f"{r['gflop'] / theirs * 1e3:.0f}", f"{theirs / ours:.2f}",
                  f"{r['gflop'] / ours * 1e3 / sgemm_ours:.0%}", f"{r['noise']:.0%}"]
        rows.append(cells)
        tot = totals.setdefault(r["pass"], {"gflop": 0.0, "ours": {key: 0.0 for key in keys},
                                            "torch": 0.0, "torch_cl": 0.0})
        tot["gflop"] += r["gflop"]
        for key in keys:
            tot["ours"][key] += r["signcore_ms"][key]
        tot["torch"] += r["torch_ms"]
        tot["torch_cl"] += r["torch_cl_ms"]
    for label, tot in totals.items():
        cells = ["all four layers", label]
        for key in keys:
            ms = tot["ours"][key]
            cells += [f"{ms:.1f}", f"{tot['gflop'] / ms * 1e3:.0f}"]
        ours = min(tot["ours"].values())
        theirs = min(tot["torch"], tot["torch_cl"])
        cells += [f"{tot['torch']:.1f}", f"{tot['torch_cl']:.1f}", f"{tot['gflop'] / theirs * 1e3:.0f}",
                  f"{theirs / ours:.2f}", f"{tot['gflop'] / ours * 1e3 / sgemm_ours:.0%}", ""]
        rows.append(cells)
    common.print_table(rows, headers)
    print("\nvs torch > 1: signcore is faster than the better of PyTorch's two layouts. "
          "noise: (slowest - fastest) / median round.")
    if args.quick:
        print("(--quick: tiny sizes, the numbers mean nothing)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"benchmark": "conv", "batch_size": n, "threads": args.threads,
                       "environment": env_note, "sgemm_gflops": {"signcore": sgemm_ours,
                                                                 "torch": sgemm_torch},
                       "rows": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
