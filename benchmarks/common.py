"""Helpers shared by the benchmarks: thread set-up, timing (warm-up, repeats, median), tables.

A benchmark measures one callable per library with `measure`, turns the median time into
samples/s, and prints rows with `print_table`. Every benchmark compares signcore with PyTorch on
the same thread count, the same architecture and the same optimiser, in one process.
"""
import argparse
import math
import os
import platform
import re
import statistics
import time
from dataclasses import dataclass, field


def default_threads():
    """All the cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def add_common_args(parser: argparse.ArgumentParser):
    """The options every benchmark takes: --threads, --repeat, --warmup, --min-time, --quick."""
    parser.add_argument("--threads", type=int, default=default_threads(),
                        help="threads for both libraries (default: all cores, %(default)s here)")
    parser.add_argument("--repeat", type=int, default=7,
                        help="timed rounds per measurement; the median is reported (default: 7)")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed calls before the first round (default: 3)")
    parser.add_argument("--min-time", type=float, default=0.25,
                        help="seconds each timed round lasts at least (default: 0.25)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and few repeats: checks that the benchmark runs, "
                             "the numbers mean nothing")
    return parser


def set_threads(n):
    """Sets the same thread count in signcore (OpenBLAS + its loops) and PyTorch (intra-op)."""
    import signcore
    import torch

    if n < 1:
        raise ValueError(f"--threads must be at least 1. Received: {n}")
    signcore.set_num_threads(n)
    torch.set_num_threads(n)
    return signcore.get_num_threads(), torch.get_num_threads()


@dataclass
class Timing:
    """Seconds per call: median, min and max over the timed rounds."""
    median: float
    best: float
    worst: float
    calls_per_round: int
    rounds: int
    samples: list = field(default_factory=list, repr=False)

    @property
    def spread(self):
        """(worst - best) / median: how noisy the measurement was."""
        return (self.worst - self.best) / self.median if self.median > 0 else float("nan")


def _calls_per_round(fn, warmup, min_time, clock):
    """Runs `warmup` untimed calls; the last one's time sets how many calls fill `min_time`."""
    t = 0.0
    for _ in range(max(1, warmup)):
        start = clock()
        fn()
        t = clock() - start
    return max(1, math.ceil(min_time / t)) if t > 0 else 1


def _round(fn, calls, clock):
    """Seconds per call over one round of `calls` calls."""
    start = clock()
    for _ in range(calls):
        fn()
    return (clock() - start) / calls


def _timing(per_call, calls):
    return Timing(statistics.median(per_call), min(per_call), max(per_call), calls, len(per_call),
                  per_call)


def measure(fn, *, warmup=3, repeat=7, min_time=0.25, clock=time.perf_counter):
    """Times `fn()`: `warmup` untimed calls, then `repeat` rounds of as many calls as fill `min_time`.

    The number of calls per round is calibrated once from the last warm-up call, so a round of a
    fast function is long enough for the clock, and every round does the same work. `clock`:
    time.perf_counter (wall time) or time.process_time (CPU time of this process).

    Returns:
        A `Timing` in seconds per call.
    """
    calls = _calls_per_round(fn, warmup, min_time, clock)
    return _timing([_round(fn, calls, clock) for _ in range(max(1, repeat))], calls)


def measure_side_by_side(fns, *, warmup=3, repeat=7, min_time=0.25, clock=time.perf_counter):
    """Times several functions ({name: fn}) in alternating rounds, as `measure` times one.

    Each function's calls per round are calibrated on its own; then round r runs every function's
    round once, in an order rotated each round. A slow spell of a shared machine therefore lands on
    all of them alike instead of on whichever happened to be measured then.

    Returns:
        {name: Timing} in seconds per call.
    """
    names = list(fns)
    calls = {name: _calls_per_round(fns[name], warmup, min_time, clock) for name in names}
    per_call = {name: [] for name in names}
    for r in range(max(1, repeat)):
        for i in range(len(names)):
            name = names[(r + i) % len(names)]
            per_call[name].append(_round(fns[name], calls[name], clock))
    return {name: _timing(per_call[name], calls[name]) for name in names}


def machine_summary(threads):
    """One line about the machine and the libraries, printed above every table."""
    import numpy
    import signcore
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    config = signcore.show_config(print_out=False)
    blas = re.search(r"OpenBLAS \d[\w.]*", config["blas"])
    return (f"{cpu}, {default_threads()} cores available, {threads} thread(s) used\n"
            f"signcore {signcore.__version__} ({blas.group(0) if blas else config['blas']}), "
            f"PyTorch {torch.__version__}, NumPy {numpy.__version__}, "
            f"Python {platform.python_version()}")


def print_table(rows, headers):
    """Prints rows (lists of str) under headers, columns right-aligned except the first."""
    widths = [max(len(str(r[i])) for r in [headers] + rows) for i in range(len(headers))]

    def fmt(row):
        cells = [str(c).ljust(w) if i == 0 else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join(cells)

    print(fmt(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(fmt(row))


def throughput_row(name, batch, samples_per_call, ours: Timing, theirs: Timing):
    """A table row: name, batch, samples/s for signcore and PyTorch, and the ratio signcore/PyTorch."""
    a = samples_per_call / ours.median
    b = samples_per_call / theirs.median
    return [name, str(batch), f"{a:,.0f}", f"{b:,.0f}", f"{a / b:.2f}",
            f"{max(ours.spread, theirs.spread):.0%}"]


THROUGHPUT_HEADERS = ["benchmark", "batch", "signcore samples/s", "PyTorch samples/s",
                      "signcore/PyTorch", "noise"]
