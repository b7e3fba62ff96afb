"""Plots for watching training and judging a classifier (matplotlib).

- `plot_history`: loss and metrics per epoch, training against validation, and the learning rate
  when a callback logged it.
- `plot_confusion_matrix`: the heatmap with the value in every cell, counts or normalised, with
  class names.
- `dashboard`: seed 001's summary in one figure: loss, accuracy, the normalised confusion matrix
  and a row of misclassified samples.
- `plot_samples`: a grid of samples, one column per class.
- `plot_misclassified`: a gallery of wrongly classified images with true and predicted labels.
- `plot_lr_finder`: the curve of an LR range test (`signcore.lr_finder.lr_find`, `model.lr_find`).

Every function draws with matplotlib's object API and returns the Figure (or the Axes it drew
on), so it works in Jupyter (`%matplotlib inline`), in scripts (`fig.savefig(...)`) and without a
display (the Agg backend).
"""
from __future__ import annotations

import itertools
import math

import numpy as np

__all__ = [
    "plot_history",
    "plot_confusion_matrix",
    "dashboard",
    "plot_samples",
    "plot_misclassified",
    "plot_lr_finder",
]


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _history_dict(history):
    """`History.history`, a History-like object's `.history`, or a dict of lists."""
    h = getattr(history, "history", history)
    if not isinstance(h, dict):
        raise TypeError(f"history must be a History (returned by fit) or its .history dict. Received: {history!r}")
    return {k: list(v) for k, v in h.items()}


def _labels_of(y, what):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return np.argmax(y, axis=1)
    y = y.reshape(-1) if y.ndim == 2 else y
    if y.ndim != 1:
        raise ValueError(f"{what} must be labels (n,) or scores/one-hot rows (n, classes). Received: shape {y.shape}")
    if y.dtype.kind == "f":
        if y.size and (np.all((y >= 0) & (y <= 1)) and not np.all(y == np.round(y))):
            return (y > 0.5).astype(np.int64)  # probabilities of class 1
        y = np.round(y)
    return y.astype(np.int64)


def _class_name(names, k):
    if names is None:
        return str(int(k))
    if isinstance(names, dict):
        return str(names.get(int(k), k))
    return str(names[int(k)]) if 0 <= int(k) < len(names) else str(int(k))


def _as_image(img):
    """An image matplotlib can show: (H, W) or (H, W, 3/4), floats scaled into [0, 1]."""
    a = np.asarray(img)
    if a.ndim == 1:
        side = int(math.isqrt(a.size))
        if side * side != a.size:
            raise ValueError(f"cannot show a flat sample of {a.size} values as an image; reshape it first")
        a = a.reshape(side, side)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 3 and a.shape[-1] not in (3, 4):
        raise ValueError(f"an image must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4). Received: shape {a.shape}")
    if a.dtype.kind in "iu":
        return a if a.dtype == np.uint8 else np.clip(a, 0, 255).astype(np.uint8)
    a = a.astype(np.float32)
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    if lo < 0.0 or hi > 1.0:  # normalised data (e.g. zero mean): stretch for display
        a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    return a


def _show(ax, img):
    a = _as_image(img)
    ax.imshow(a, cmap="gray" if a.ndim == 2 else None, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


# ------------------------------------------------------------------------------------------------
# Training curves

def _pretty(key):
    return key.replace("_", " ").capitalize()


def plot_history(history, metrics=None, figsize=None, title=None):
    """Loss and metric curves per epoch, training against validation, plus the learning rate.

    Args:
        history: The History returned by `fit` (or its `.history` dict).
        metrics: Keys to plot (without "val_"); default: "loss", then every other key that has
            a training curve (e.g. "accuracy"), then "learning_rate" if logged.
        figsize: Figure size; default 5 inches wide per panel.
        title: Optional figure title.

    Returns:
        The matplotlib Figure, one panel per quantity (the learning rate on a log scale).
    """
    h = _history_dict(history)
    if not h:
        raise ValueError("history is empty: train the model with fit() first")
    if metrics is None:
        keys = [k for k in h if not k.startswith("val_") and k not in ("learning_rate", "lr")]
        keys.sort(key=lambda k: (k != "loss", list(h).index(k)))
        for lr_key in ("learning_rate", "lr"):
            if lr_key in h:
                keys.append(lr_key)
                break
    else:
        keys = [metrics] if isinstance(metrics, str) else list(metrics)
        for k in keys:
            if k not in h and "val_" + k not in h:
                raise ValueError(f"'{k}' is not in the history. Available: {sorted(h)}")
    plt = _plt()
    fig, axes = plt.subplots(1, len(keys), figsize=figsize or (5 * len(keys), 4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        if key in ("learning_rate", "lr"):
            values = h[key]
            ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, color="tab:green")
            ax.set_yscale("log")
            ax.set_title("Learning rate")
            ax.set_ylabel("learning rate")
        else:
            for k, label in ((key, "train"), ("val_" + key, "validation")):
                if k in h:
                    ax.plot(range(1, len(h[k]) + 1), h[k], marker="o", markersize=3, label=label)
            ax.set_title(_pretty(key))
            ax.set_ylabel(key)
            ax.legend()
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------
# Confusion matrix

def plot_confusion_matrix(cm, class_names=None, normalize=False, ax=None, cmap="Blues", title=None,
                          values=True, colorbar=True, figsize=None):
    """The confusion matrix as a heatmap, with the value in every cell.

    Args:
        cm: A (classes, classes) matrix, rows true and columns predicted (e.g. from
            `signcore.metrics.confusion_matrix` or `sklearn.metrics.confusion_matrix`).
        class_names: Labels for the rows and columns (a list, or a dict index -> name).
        normalize: False (counts as given), True or "true" (rows sum to 1, as seed 001's plot),
            "pred" (columns sum to 1) or "all".
        ax: Axes to draw on; a new figure otherwise.
        cmap: Colour map. Defaults to "Blues".
        title: Axes title; default "Confusion matrix" (with "(normalised)").
        values: Write each cell's value (integers, or two decimals when normalised), white on
            dark cells and black on light ones.
        colorbar: Draw a colour bar.
        figsize: Size of a new figure; default grows with the number of classes.

    Returns:
        The Axes.
    """
    m = np.asarray(cm, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(f"cm must be a square (classes, classes) matrix. Received: shape {m.shape}")
    if normalize is True:
        normalize = "true"
    if normalize not in (False, None, "true", "pred", "all"):
        raise ValueError(f"normalize must be False, True, 'true', 'pred' or 'all'. Received: {normalize!r}")
    if normalize:
        axis = {"true": 1, "pred": 0, "all": None}[normalize]
        sums = m.sum(axis=axis, keepdims=axis is not None)
        with np.errstate(invalid="ignore", divide="ignore"):
            m = np.where(sums > 0, m / np.where(sums > 0, sums, 1), 0.0)
    k = m.shape[0]
    if class_names is None:
        names = [str(i) for i in range(k)]
    elif isinstance(class_names, dict):
        names = [str(class_names.get(i, i)) for i in range(k)]
    else:
        names = [str(n) for n in class_names]
        if len(names) != k:
            raise ValueError(f"class_names has {len(names)} names for a {k}x{k} matrix")
    if ax is None:
        side = max(4.0, 0.6 * k + 2)
        _, ax = _plt().subplots(figsize=figsize or (side + 1, side))
    im = ax.imshow(m, interpolation="nearest", cmap=cmap, vmin=0.0, vmax=1.0 if normalize else None)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ticks = np.arange(k)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xticklabels(names, rotation=45, ha="right")
    ax.set_yticklabels(names)
    ax.set_ylabel("True label")
    ax.set_xlabel("Predicted label")
    ax.set_title(title or ("Confusion matrix (normalised)" if normalize else "Confusion matrix"))
    if values:
        integral = not normalize and np.all(m == np.round(m))
        thresh = (np.nanmax(m) if m.size else 0.0) / 2.0
        size = max(6, min(12, int(120 / max(k, 1))))
        for i, j in itertools.product(range(k), range(k)):
            text = f"{int(m[i, j])}" if integral else f"{m[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=size,
                    color="white" if m[i, j] > thresh else "black")
    return ax


# ------------------------------------------------------------------------------------------------
# Samples

def plot_samples(x, y, class_names=None, per_class=10, classes=None, figsize=None, seed=None):
    """A grid of random samples: one column per class, `per_class` rows (seed 001's figure).

    Args:
        x: Images (n, H, W[, C]) (or flat square images (n, H*W)).
        y: Labels (n,) or one-hot (n, classes).
        class_names: Column titles (a list or a dict index -> name).
        per_class: Samples per class (fewer when a class has fewer).
        classes: Which classes, in order; default every label present.
        figsize: Figure size; default 1.2 inches per cell.
        seed: Seed for picking the samples.

    Returns:
        The Figure.
    """
    x = np.asarray(x)
    labels = _labels_of(y, "y")
    if x.shape[0] != labels.shape[0]:
        raise ValueError(f"x and y must have the same length. Received: {x.shape[0]} and {labels.shape[0]}")
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1. Received: {per_class}")
    classes = np.unique(labels) if classes is None else np.asarray(classes)
    rng = np.random.default_rng(seed)
    plt = _plt()
    fig, axes = plt.subplots(per_class, len(classes), figsize=figsize or (1.2 * len(classes), 1.2 * per_class),
                             squeeze=False)
    for col, c in enumerate(classes):
        idx = np.flatnonzero(labels == c)
        pick = rng.choice(idx, size=min(per_class, idx.size), replace=False) if idx.size else []
        for row in range(per_class):
            ax = axes[row, col]
            if row < len(pick):
                _show(ax, x[pick[row]])
            else:
                ax.axis("off")
        axes[0, col].set_title(_class_name(class_names, c))
    fig.tight_layout()
    return fig


def plot_misclassified(x, y_true, y_pred, class_names=None, n=16, cols=8, figsize=None, seed=None, axes=None):
    """A gallery of misclassified images, each titled with its predicted and true label.

    Args:
        x: Images (n, H, W[, C]).
        y_true: True labels (n,) or one-hot rows.
        y_pred: Predicted labels (n,) or scores (n, classes) (argmax is taken).
        class_names: A list or dict of names.
        n: Most images to show (a random choice of the misclassified ones when there are more).
        cols: Images per row.
        figsize: Figure size.
        seed: Seed for the choice.
        axes: Draw into these Axes instead of a new figure (as many as images shown).

    Returns:
        The Figure (None when nothing is misclassified and no axes were given).
    """
    x = np.asarray(x)
    t = _labels_of(y_true, "y_true")
    p = _labels_of(y_pred, "y_pred")
    if not (x.shape[0] == t.shape[0] == p.shape[0]):
        raise ValueError(f"x, y_true and y_pred must have the same length. Received: {x.shape[0]}, "
                         f"{t.shape[0]} and {p.shape[0]}")
    wrong = np.flatnonzero(t != p)
    rng = np.random.default_rng(seed)
    if wrong.size > n:
        wrong = np.sort(rng.choice(wrong, size=n, replace=False))
    plt = _plt()
    if axes is None:
        if wrong.size == 0:
            return None
        rows = math.ceil(wrong.size / cols)
        c = min(cols, wrong.size)
        fig, grid = plt.subplots(rows, c, figsize=figsize or (1.8 * c, 2.1 * rows), squeeze=False)
        axes = list(grid.ravel())
    else:
        axes = list(np.ravel(axes))
        fig = axes[0].figure if axes else None
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, wrong):
        _show(ax, x[i])
        ax.axis("on")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"pred: {_class_name(class_names, p[i])}", color="tab:red", fontsize=9)
        ax.set_xlabel(f"true: {_class_name(class_names, t[i])}", fontsize=9)
    return fig


# ------------------------------------------------------------------------------------------------
# Dashboard (seed 001)

def dashboard(history, cm, labels=None, y_pred=None, test_data=None, n_samples=6, figsize=(15, 10), seed=None):
    """Seed 001's dashboard: loss and accuracy curves, the normalised confusion matrix, and a row
    of misclassified test samples.

    Args:
        history: History (or its dict) with "loss" and an accuracy key ("accuracy",
            "categorical_accuracy", ...), with their "val_" curves when present.
        cm: Confusion matrix (counts).
        labels: Class names.
        y_pred: Predicted labels (n,) or scores for `test_data` (optional).
        test_data: (x_test, y_test) for the misclassified samples (needed with y_pred).
        n_samples: How many misclassified samples to show.
        figsize: Figure size.
        seed: Seed for choosing the samples.

    Returns:
        The Figure.
    """
    h = _history_dict(history)
    plt = _plt()
    from matplotlib import gridspec

    show_samples = y_pred is not None and test_data is not None
    fig = plt.figure(figsize=figsize)
    grid = gridspec.GridSpec(2 if show_samples else 1, max(6, n_samples), figure=fig)
    third = max(6, n_samples) // 3
    ax_loss = fig.add_subplot(grid[0, :third])
    ax_acc = fig.add_subplot(grid[0, third:2 * third])
    ax_cm = fig.add_subplot(grid[0, 2 * third:])
    for k, name in (("loss", "train"), ("val_loss", "valid")):
        if k in h:
            ax_loss.plot(h[k], label=name)
    ax_loss.set_title("Loss over Training Epochs")
    ax_loss.set_xlabel("Epochs")
    ax_loss.set_ylabel("Loss")
    ax_loss.legend()
    acc_key = next((k for k in h if not k.startswith("val_") and "acc" in k), None)
    if acc_key is not None:
        for k, name in ((acc_key, "train"), ("val_" + acc_key, "valid")):
            if k in h:
                ax_acc.plot(h[k], label=name)
        ax_acc.set_title(_pretty(acc_key))
        ax_acc.legend()
    ax_acc.set_xlabel("Epochs")
    ax_acc.set_ylabel("Accuracy")
    plot_confusion_matrix(cm, labels, normalize=True, ax=ax_cm, title="Confusion Matrix", colorbar=False)
    if show_samples:
        x_test, y_test = test_data
        sample_axes = [fig.add_subplot(grid[1, i]) for i in range(n_samples)]
        plot_misclassified(x_test, y_test, y_pred, class_names=labels, n=n_samples, seed=seed, axes=sample_axes)
    fig.tight_layout()
    return fig


def plot_lr_finder(result, ax=None, skip_start=0, skip_end=0, suggestion=True):
    """The loss against the learning rate (log scale) of an LR range test.

    Args:
        result: What `lr_find` returned (with `lrs`, `losses` and `suggestion`).
        ax: Axes to draw on; a new figure otherwise.
        skip_start, skip_end: Points to leave out at either end.
        suggestion: Mark the suggested learning rate.

    Returns:
        The Axes.
    """
    lrs = np.asarray(result.lrs, dtype=np.float64)
    losses = np.asarray(result.losses, dtype=np.float64)
    end = len(lrs) - skip_end if skip_end else len(lrs)
    lrs, losses = lrs[skip_start:end], losses[skip_start:end]
    if ax is None:
        _, ax = _plt().subplots(figsize=(6, 4))
    ax.plot(lrs, losses)
    ax.set_xscale("log")
    ax.set_xlabel("Learning rate")
    ax.set_ylabel("Loss (smoothed)")
    ax.set_title("Learning rate range test")
    if suggestion and result.suggestion is not None:
        ax.axvline(result.suggestion, color="tab:red", linestyle="--", label=f"suggestion {result.suggestion:.2e}")
        ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    return ax
