"""Streaming metrics with Keras's names, computed in C++, and a confusion matrix.

A metric accumulates over batches with ``update_state(y_true, y_pred)``; ``result()`` returns the
value so far (a float) and ``reset_state()`` starts again. Each is a mean of per-sample values, so
the result over several batches equals the result over all of them at once.

In ``model.compile(metrics=["accuracy"])`` the name ``"accuracy"`` (or ``"acc"``) is resolved like
Keras 3 once the shapes are known: binary accuracy when the loss is binary cross-entropy or the
prediction has one column; sparse categorical accuracy when the labels have lower rank than the
predictions (or one column while the predictions have more); categorical accuracy otherwise. The
log key stays the name you gave.
"""
import numpy as np

from . import _core

_metrics = _core.metrics

Metric = _metrics.Metric
Mean = _metrics.Mean
SparseCategoricalAccuracy = _metrics.SparseCategoricalAccuracy
CategoricalAccuracy = _metrics.CategoricalAccuracy
BinaryAccuracy = _metrics.BinaryAccuracy
MeanSquaredError = _metrics.MeanSquaredError
MeanAbsoluteError = _metrics.MeanAbsoluteError

SparseCategoricalAccuracy.__doc__ = """How often ``argmax(y_pred)`` equals the integer label.

    Args:
        name: The log key.
        dtype: Only ``None`` or ``"float32"``.

    Input shape:
        ``y_true``: ``(batch_size,)`` or ``(batch_size, 1)``; ``y_pred``: ``(batch_size, classes)``.
    """
CategoricalAccuracy.__doc__ = """How often ``argmax(y_pred)`` equals ``argmax(y_true)`` (one-hot labels).

    Args:
        name: The log key.
        dtype: Only ``None`` or ``"float32"``.
    """
BinaryAccuracy.__doc__ = """How often ``y_pred > threshold`` equals the 0/1 label (every element counts).

    Args:
        name: The log key.
        dtype: Only ``None`` or ``"float32"``.
        threshold: Predictions above it count as 1.
    """
Mean.__doc__ = """The running mean of every value passed to ``update_state(values)``.

    Args:
        name: The log key.
        dtype: Only ``None`` or ``"float32"``.
    """

# Pickle finds the classes here (the extension's submodule is not importable by name).
for _cls in (Metric, Mean, SparseCategoricalAccuracy, CategoricalAccuracy, BinaryAccuracy,
             MeanSquaredError, MeanAbsoluteError):
    _cls.__module__ = __name__


def get(identifier):
    """Returns a metric object for an identifier.

    Args:
        identifier: A metric object (returned as is) or one of ``"sparse_categorical_accuracy"``,
            ``"categorical_accuracy"``, ``"binary_accuracy"``, ``"mse"``, ``"mae"`` or a class
            name. ``"accuracy"`` depends on the data; use ``resolve`` (or compile) for it.

    Returns:
        A ``Metric`` instance.

    Raises:
        ValueError: The name is unknown, or is ``"accuracy"`` (which needs shapes).
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier in ("accuracy", "acc"):
            raise ValueError(
                "'accuracy' is resolved from the shapes of y_true and y_pred; use "
                f"signcore.metrics.resolve(name, y_true_shape, y_pred_shape). Received: {identifier!r}"
            )
        return _core.make_metric(identifier, [1], [1], None)
    raise TypeError(
        f"A metric must be a name or a signcore.metrics.Metric. Received: metric={identifier!r}"
    )


def metric_name(metric):
    """The name ``compile`` passes to the C++ model for a metric given by name or object.

    A metric object is accepted when the C++ model can recreate it from its name alone (its
    arguments are the defaults); its ``name`` becomes the log key.

    Args:
        metric: A metric name (returned as is) or a ``Metric`` instance.

    Returns:
        The name (str).

    Raises:
        ValueError: The object has non-default arguments (e.g. a custom threshold), which compile
            cannot carry yet.
        TypeError: Neither a str nor a ``Metric``.
    """
    if isinstance(metric, str):
        return metric
    if not isinstance(metric, Metric):
        raise TypeError(
            f"A metric must be a name or a signcore.metrics.Metric. Received: metric={metric!r}"
        )
    try:
        same = _core.make_metric(metric.name, [1], [1], None)
    except ValueError:
        same = None
    if (same is not None and metric.name not in ("accuracy", "acc")
            and same.class_name == metric.class_name and same.get_config() == metric.get_config()):
        return metric.name
    raise ValueError(
        "compile() can take a metric object only when its name and arguments are the defaults "
        f"(e.g. SparseCategoricalAccuracy()). Received: {metric.class_name} with config "
        f"{metric.get_config()!r}; pass a metric name such as 'accuracy' instead."
    )


def resolve(name, y_true_shape, y_pred_shape, loss=None):
    """Resolves a metric name for batches of the given shapes, as ``compile`` does.

    Args:
        name: A metric name, e.g. ``"accuracy"``.
        y_true_shape: Shape of a batch of labels, e.g. ``(32,)``.
        y_pred_shape: Shape of a batch of predictions, e.g. ``(32, 10)``.
        loss: The model's loss (a ``signcore.losses.Loss``, a name, or None).

    Returns:
        A ``Metric`` whose ``name`` is ``name``.
    """
    if isinstance(loss, str):
        from . import losses

        loss = losses.get(loss)
    return _core.make_metric(name, list(y_true_shape), list(y_pred_shape), loss)


def _as_labels(y, what):
    """Integer labels from a 1-D label array or a 2-D array of scores / one-hot rows."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return np.argmax(y, axis=1).astype(np.int64), y.shape[1]
    if y.ndim == 2:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(
            f"{what} must be 1-D labels or 2-D (samples, classes) scores. Received: {what}.shape={y.shape}"
        )
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.floor(y))
        if bad.any():
            raise ValueError(
                f"{what} must hold integer class labels. Received: {what}[{int(np.argmax(bad))}]="
                f"{float(y[bad][0])!r}"
            )
    elif y.dtype.kind not in "iu":
        raise TypeError(f"{what} must be an int or float array. Received: dtype={y.dtype}")
    return y.astype(np.int64), None


def confusion_matrix(y_true, y_pred, num_classes=None, normalize=None):
    """Computes the confusion matrix: rows are true classes, columns predicted classes.

    Matches ``sklearn.metrics.confusion_matrix(y_true, y_pred, labels=range(num_classes),
    normalize=normalize)``.

    Args:
        y_true: Integer labels ``(n,)`` (int or integer-valued float), or one-hot ``(n, classes)``.
        y_pred: Integer predictions ``(n,)``, or scores/probabilities ``(n, classes)`` (the
            argmax is taken), e.g. the output of ``model.predict``.
        num_classes: Size of the matrix; by default the largest label or prediction plus one
            (or the number of columns of a 2-D input).
        normalize: ``None`` for counts (int64), ``"true"`` (rows sum to 1), ``"pred"`` (columns
            sum to 1) or ``"all"`` (the whole matrix sums to 1); float64. Empty rows or
            columns give zeros.

    Returns:
        A ``(num_classes, num_classes)`` NumPy array.

    Raises:
        ValueError: Lengths differ, a label is negative, non-integer or ``>= num_classes``, or
            ``normalize`` is not one of the options.
    """
    t, t_classes = _as_labels(y_true, "y_true")
    p, p_classes = _as_labels(y_pred, "y_pred")
    if normalize not in (None, "true", "pred", "all"):
        raise ValueError(
            f"normalize must be None, 'true', 'pred' or 'all'. Received: normalize={normalize!r}"
        )
    if num_classes is None:
        candidates = [c for c in (t_classes, p_classes) if c is not None]
        top = max([int(t.max()) if t.size else -1, int(p.max()) if p.size else -1])
        num_classes = max(candidates + [top + 1])
        if num_classes <= 0:
            raise ValueError("Cannot infer num_classes from empty labels; pass num_classes.")
    num_classes = int(num_classes)
    if num_classes <= 0:
        raise ValueError(f"num_classes must be positive. Received: num_classes={num_classes}")
    return _core.confusion_matrix(t, p, num_classes, normalize or "")


__all__ = [
    "Metric",
    "Mean",
    "SparseCategoricalAccuracy",
    "CategoricalAccuracy",
    "BinaryAccuracy",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "get",
    "metric_name",
    "resolve",
    "confusion_matrix",
]
