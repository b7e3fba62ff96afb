"""The learning-rate range test (Smith 2017, arXiv:1506.01186; "LR finder"): train for a few
hundred batches while the learning rate grows exponentially from tiny to large, record the loss,
and pick a rate where the loss falls fastest.

`lr_find(model, x, y)` (attached to models as ``model.lr_find(x, y)``) runs the test on a copy of
the model (weights and optimizer state), so the model itself is left exactly as it was, and it
puts the global random state back afterwards, so a seeded run that follows is not disturbed.

Example:
    >>> result = model.lr_find(x_train, y_train, batch_size=64)
    >>> result.suggestion          # a learning rate to start from
    >>> result.plot()              # loss against learning rate (log scale)
"""
from __future__ import annotations

import math

import numpy as np

from . import _core

__all__ = ["LRFinderResult", "lr_find"]


class LRFinderResult:
    """What `lr_find` measured.

    Attributes:
        lrs: The learning rate of every step taken.
        losses: The smoothed (bias-corrected exponential moving average) loss at every step.
        raw_losses: Each batch's loss before its update.
        suggestion: The rate where the smoothed loss falls fastest (steepest negative slope
            against log(lr)); None when too few steps were taken.
        min_loss_lr: The rate at the lowest smoothed loss.
        diverged: Whether the test stopped early because the loss blew up.
    """

    def __init__(self, lrs, losses, raw_losses, diverged):
        self.lrs = np.asarray(lrs, dtype=np.float64)
        self.losses = np.asarray(losses, dtype=np.float64)
        self.raw_losses = np.asarray(raw_losses, dtype=np.float64)
        self.diverged = bool(diverged)
        self.min_loss_lr = float(self.lrs[int(np.nanargmin(self.losses))]) if len(self.losses) else None
        self.suggestion = self._steepest()

    def _steepest(self):
        n = len(self.losses)
        if n < 5:
            return None
        # Ignore the noisy first tenth and everything after the minimum (the blow-up).
        lo = n // 10
        hi = int(np.nanargmin(self.losses)) + 1
        if hi - lo < 3:
            lo, hi = 0, n
        logs = np.log10(self.lrs[lo:hi])
        slope = np.gradient(self.losses[lo:hi], logs)
        return float(self.lrs[lo + int(np.nanargmin(slope))])

    def plot(self, ax=None, skip_start=0, skip_end=0, suggestion=True):
        """Loss against learning rate, log scale (see `signcore.plot.plot_lr_finder`)."""
        from .plot import plot_lr_finder

        return plot_lr_finder(self, ax=ax, skip_start=skip_start, skip_end=skip_end, suggestion=suggestion)

    def __repr__(self):
        s = "None" if self.suggestion is None else f"{self.suggestion:.3g}"
        return f"<LRFinderResult steps={len(self.lrs)} suggestion={s} diverged={self.diverged}>"


def _batches(x, y, batch_size, shuffle, rng):
    """Endless (x, y) batches: arrays (reshuffled every pass) or a data source / Sequence."""
    if y is None:
        if hasattr(x, "__getitem__") and hasattr(x, "__len__") and not isinstance(x, (np.ndarray, list, tuple)):
            n = len(x)
            if n == 0:
                raise ValueError("the data source yields no batches")
            while True:
                for i in range(n):
                    yield x[i]
                if hasattr(x, "on_epoch_end"):
                    x.on_epoch_end()
        it = iter(x)
        while True:
            yield next(it)
    xs = list(x) if isinstance(x, (list, tuple)) else [x]
    xs = [np.asarray(a) for a in xs]
    y = np.asarray(y)
    n = y.shape[0]
    if n == 0 or any(a.shape[0] != n for a in xs):
        raise ValueError(f"x and y must have the same (non-zero) number of samples. Received: "
                         f"{[a.shape[0] for a in xs]} and {n}")
    while True:
        order = rng.permutation(n) if shuffle else np.arange(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            bx = [a[idx] for a in xs]
            yield (bx if len(bx) > 1 else bx[0]), y[idx]


def lr_find(model, x, y=None, batch_size=32, start_lr=1e-7, end_lr=10.0, num_steps=100, beta=0.98,
            divergence=4.0, shuffle=True, seed=None, plot=False):
    """Run a learning-rate range test on a copy of `model`; the model itself is not changed.

    The learning rate goes from `start_lr` to `end_lr` geometrically over `num_steps` training
    batches (``lr_i = start_lr * (end_lr / start_lr) ** (i / (num_steps - 1))``). The loss of
    each batch is smoothed (``avg = beta * avg + (1 - beta) * loss``, divided by
    ``1 - beta ** (i + 1)``); the test stops early once the smoothed loss exceeds `divergence`
    times its lowest value, or is not finite.

    Args:
        model: A compiled signcore model.
        x, y: Training arrays (x may be a list for several inputs), or `x` a data source yielding
            (x, y) batches with `y` None.
        batch_size: Batch size for arrays. Defaults to 32.
        start_lr, end_lr: The range, 0 < start_lr < end_lr.
        num_steps: Batches to train (passes over the data repeat as needed). Defaults to 100.
        beta: Smoothing of the loss, in [0, 1). Defaults to 0.98.
        divergence: Stop when the smoothed loss exceeds this multiple of its minimum (None: never).
        shuffle: Shuffle the arrays every pass. Defaults to True.
        seed: Seed of the shuffling (NumPy); the model's own random state is restored afterwards.
        plot: Also draw the curve (`LRFinderResult.plot`).

    Returns:
        An `LRFinderResult` with `lrs`, `losses`, `suggestion`, ...
    """
    from . import saving

    core = getattr(model, "_core", None)
    if core is None:
        raise TypeError(f"lr_find expects a signcore model. Received: {model!r}")
    if not core.compiled:
        raise RuntimeError(f"You must call compile() on model '{model.name}' before lr_find().")
    if not (isinstance(start_lr, (int, float)) and isinstance(end_lr, (int, float)) and 0 < start_lr < end_lr):
        raise ValueError(f"lr_find needs 0 < start_lr < end_lr. Received: start_lr={start_lr!r}, end_lr={end_lr!r}")
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 2:
        raise ValueError(f"num_steps must be an integer >= 2. Received: num_steps={num_steps!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer. Received: batch_size={batch_size!r}")
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be in [0, 1). Received: beta={beta!r}")
    if divergence is not None and not divergence > 1.0:
        raise ValueError(f"divergence must be > 1 (or None). Received: divergence={divergence!r}")

    if not core.built:
        if y is None:
            raise ValueError(f"Model '{model.name}' must be built before lr_find() on a data source: give the "
                             "first layer input_shape=... or call build()")
        model._ensure_built(model._inputs(x))
    rng_state = _core.get_rng_state()
    trial = saving.model_from_bytes(saving.model_to_bytes(model))  # weights and optimizer state copied
    rng = np.random.default_rng(seed)
    ratio = end_lr / start_lr
    lrs, losses, raw = [], [], []
    avg, best, diverged = 0.0, math.inf, False
    try:
        batches = _batches(x, y, batch_size, shuffle, rng)
        for i in range(num_steps):
            lr = start_lr * ratio ** (i / (num_steps - 1))
            trial.optimizer.learning_rate = lr
            bx, by = next(batches)
            out = trial.train_on_batch(bx, by)
            loss = float(out[0] if isinstance(out, (list, tuple)) else out)
            lrs.append(lr)
            raw.append(loss)
            if not math.isfinite(loss):
                diverged = True
                break
            avg = beta * avg + (1.0 - beta) * loss
            smoothed = avg / (1.0 - beta ** (i + 1))
            losses.append(smoothed)
            best = min(best, smoothed)
            if divergence is not None and i > 0 and smoothed > divergence * best:
                diverged = True
                break
    finally:
        _core.set_rng_state(rng_state)
    n = len(losses)
    result = LRFinderResult(lrs[:n], losses, raw[:n], diverged)
    if plot:
        result.plot()
    return result
