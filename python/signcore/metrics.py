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
TopKCategoricalAccuracy = _metrics.TopKCategoricalAccuracy
SparseTopKCategoricalAccuracy = _metrics.SparseTopKCategoricalAccuracy
Precision = _metrics.Precision
Recall = _metrics.Recall
ConfusionMatrix = _metrics.ConfusionMatrix

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

TopKCategoricalAccuracy.__doc__ = """How often the true class is among the k highest scores (one-hot labels).

    Ties with the k-th score count as in (Keras's ``in_top_k``); a NaN score never does.

    Args:
        k: Number of top scores to look at. Defaults to 5.
        name: The log key. Defaults to "top_k_categorical_accuracy".
        dtype: Only ``None`` or ``"float32"``.
    """
SparseTopKCategoricalAccuracy.__doc__ = """How often the integer label is among the k highest scores.

    Args:
        k: Number of top scores to look at. Defaults to 5.
        name: The log key. Defaults to "sparse_top_k_categorical_accuracy".
        dtype: Only ``None`` or ``"float32"``.

    Input shape:
        ``y_true``: ``(batch_size,)`` or ``(batch_size, 1)``; ``y_pred``: ``(batch_size, classes)``.
    """
_PR_ARGS = """
    Every element of ``y_pred`` is a prediction, positive when above the threshold; ``y_true``
    (same shape, 0/1) marks the real positives. Counts accumulate over batches (Keras 3's
    definition). Integer labels ``(batch_size,)`` next to ``(batch_size, classes)`` scores are read
    as one-hot rows, so ``Precision(top_k=1)`` works with sparse labels too.

    Args:
        thresholds: One threshold in [0, 1] (or a list of one). Defaults to 0.5, or, with
            ``top_k``, to "the k highest scores of each row are positive".
        top_k: Only the k highest scores of each row can be positive.
        class_id: Only look at this column (one class against the rest).
        name: The log key.
        dtype: Only ``None`` or ``"float32"``.
    """
Precision.__doc__ = "Precision, ``tp / (tp + fp)`` (0 when nothing was predicted positive).\n" + _PR_ARGS
Recall.__doc__ = "Recall, ``tp / (tp + fn)`` (0 when there was no positive).\n" + _PR_ARGS
ConfusionMatrix.__doc__ = """The confusion matrix as a streaming metric (rows: true class, columns: predicted).

    Usable in ``compile(metrics=[ConfusionMatrix(num_classes)])`` (or ``metrics=["confusion_matrix"]``,
    sized from the model's output); it is not a number, so it stays out of the progress bar and
    History, and ``evaluate`` returns its matrix. ``result()`` gives the matrix so far.

    Args:
        num_classes: Number of classes (>= 2).
        normalize: None (int64 counts), "true", "pred" or "all", as `confusion_matrix`.
        name: The key under which evaluate reports it. Defaults to "confusion_matrix".
        dtype: Only ``None`` or ``"float32"``.

    Input shape:
        ``y_pred``: ``(batch_size, classes)`` scores (argmax is taken) or ``(batch_size, 1)``
        probabilities of class 1; ``y_true``: class indices or one-hot rows.
    """

# Pickle finds the classes here (the extension's submodule is not importable by name).
for _cls in (Metric, Mean, SparseCategoricalAccuracy, CategoricalAccuracy, BinaryAccuracy,
             MeanSquaredError, MeanAbsoluteError, TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy,
             _metrics.PrecisionRecallBase, Precision, Recall, ConfusionMatrix):
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


def top_k_accuracy(y_true, y_pred, k=5):
    """Fraction of samples whose true class is among the k highest scores.

    Args:
        y_true: Integer labels ``(n,)`` or one-hot rows ``(n, classes)``.
        y_pred: Scores ``(n, classes)``, e.g. ``model.predict(x)``.
        k: Number of top scores. Defaults to 5.

    Returns:
        A float in [0, 1] (ties with the k-th score count as in).
    """
    y_pred = np.asarray(y_pred, dtype=np.float32)
    y_true = np.asarray(y_true)
    if y_pred.ndim != 2:
        raise ValueError(f"y_pred must be (samples, classes) scores. Received: y_pred.shape={y_pred.shape}")
    if y_true.ndim == 2 and y_true.shape[1] == y_pred.shape[1] and y_pred.shape[1] > 1:
        m = TopKCategoricalAccuracy(k=k)
    else:
        m = SparseTopKCategoricalAccuracy(k=k)
    m.update_state(y_true.astype(np.float32), y_pred)
    return m.result()


def _label_list(y_true, y_pred, labels):
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.size == 0:
            raise ValueError(f"labels must be a non-empty list of class labels. Received: labels={labels!r}")
        return labels.astype(np.int64), True
    return np.union1d(y_true, y_pred).astype(np.int64), False


def _zero_division_value(zero_division):
    if isinstance(zero_division, str):
        if zero_division != "warn":
            raise ValueError(f"zero_division must be 'warn', 0.0, 1.0 or np.nan. Received: {zero_division!r}")
        return 0.0
    if not (zero_division in (0, 1) or np.isnan(zero_division)):
        raise ValueError(f"zero_division must be 'warn', 0.0, 1.0 or np.nan. Received: {zero_division!r}")
    return float(zero_division)


def classification_report(y_true, y_pred, labels=None, target_names=None, digits=2, output_dict=False,
                          zero_division="warn"):
    """Precision, recall, F1 and support per class, with averages (as scikit-learn's).

    The text and the dict have scikit-learn's layout: one row per class, then "accuracy" (or
    "micro avg" when ``labels`` leaves classes out), "macro avg" (unweighted mean over the
    classes) and "weighted avg" (mean weighted by support).

    Args:
        y_true: Integer labels ``(n,)`` or one-hot ``(n, classes)``.
        y_pred: Integer predictions ``(n,)`` or scores ``(n, classes)`` (argmax is taken), e.g.
            ``model.predict(x)``.
        labels: The labels to report, in order; default: every label in y_true or y_pred, sorted.
        target_names: Display names for ``labels`` (e.g. the class names).
        digits: Decimals in the text. Defaults to 2.
        output_dict: Return a dict instead of text.
        zero_division: Value of a ratio whose denominator is 0: "warn" (0 and a warning), 0.0,
            1.0 or np.nan (then left out of the averages).

    Returns:
        The report as a str, or a dict ``{name: {"precision", "recall", "f1-score", "support"},
        "accuracy": float, "macro avg": {...}, "weighted avg": {...}}``.
    """
    t, _ = _as_labels(y_true, "y_true")
    p, _ = _as_labels(y_pred, "y_pred")
    if t.shape[0] != p.shape[0]:
        raise ValueError(f"y_true and y_pred must have the same length. Received: {t.shape[0]} and {p.shape[0]}")
    labels, given = _label_list(t, p, labels)
    zd = _zero_division_value(zero_division)
    s = _core.class_scores(t, p, labels, zd)
    if target_names is None:
        target_names = [str(int(l)) for l in labels]
    else:
        target_names = [str(n) for n in target_names]
        if len(target_names) != len(labels):
            raise ValueError(f"Number of classes, {len(labels)}, does not match size of target_names, "
                             f"{len(target_names)}. Try specifying the labels parameter")
    if zero_division == "warn":
        ill = [("Precision", s["tp"] + s["fp"]), ("Recall", s["tp"] + s["fn"])]
        for what, den in ill:
            if (den == 0).any():
                import warnings

                warnings.warn(f"{what} is ill-defined and being set to 0.0 in labels with no "
                              f"{'predicted' if what == 'Precision' else 'true'} samples. Use `zero_division` "
                              "parameter to control this behavior.", UserWarning, stacklevel=2)
    support = s["support"]
    total = int(support.sum())
    headers = ["precision", "recall", "f1-score", "support"]
    rows = [(name, float(a), float(b), float(c), int(d))
            for name, a, b, c, d in zip(target_names, s["precision"], s["recall"], s["f1"], support)]
    present = set(np.unique(np.concatenate([t, p])).tolist())
    micro_is_accuracy = not given or set(labels.tolist()) >= present

    def mean(values, weights=None):
        values = np.asarray(values, dtype=np.float64)
        keep = ~np.isnan(values)
        if not keep.any():
            return zd if weights is None else zd
        if weights is None:
            return float(values[keep].mean())
        w = np.asarray(weights, dtype=np.float64)[keep]
        if w.sum() == 0:
            return zd
        return float((values[keep] * w).sum() / w.sum())

    averages = []
    tp, fp, fn = int(s["tp"].sum()), int(s["fp"].sum()), int(s["fn"].sum())
    micro_p = tp / (tp + fp) if tp + fp else zd
    micro_r = tp / (tp + fn) if tp + fn else zd
    micro_f = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else zd
    averages.append(("accuracy" if micro_is_accuracy else "micro avg", micro_p, micro_r, micro_f, total))
    averages.append(("macro avg", mean(s["precision"]), mean(s["recall"]), mean(s["f1"]), total))
    averages.append(("weighted avg", mean(s["precision"], support), mean(s["recall"], support),
                     mean(s["f1"], support), total))

    if output_dict:
        report = {}
        for name, a, b, c, d in rows:
            report[name] = dict(zip(headers, (a, b, c, float(d))))
        for name, a, b, c, d in averages:
            if name == "accuracy":
                report[name] = float(c)
            else:
                report[name] = dict(zip(headers, (float(a), float(b), float(c), float(d))))
        return report

    width = max([len(n) for n in target_names] + [len("weighted avg"), digits])
    text = f"{'':>{width}s} " + "".join(f" {h:>9}" for h in headers) + "\n\n"
    for name, a, b, c, d in rows:
        text += f"{name:>{width}s} " + f" {a:>9.{digits}f} {b:>9.{digits}f} {c:>9.{digits}f} {d:>9}\n"
    text += "\n"
    for name, a, b, c, d in averages:
        if name == "accuracy":
            text += f"{name:>{width}s} " + f" {'':>9} {'':>9} {c:>9.{digits}f} {d:>9}\n"
        else:
            text += f"{name:>{width}s} " + f" {a:>9.{digits}f} {b:>9.{digits}f} {c:>9.{digits}f} {d:>9}\n"
    return text


__all__ = [
    "Metric",
    "Mean",
    "SparseCategoricalAccuracy",
    "CategoricalAccuracy",
    "BinaryAccuracy",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "TopKCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "Precision",
    "Recall",
    "ConfusionMatrix",
    "get",
    "metric_name",
    "resolve",
    "confusion_matrix",
    "classification_report",
    "top_k_accuracy",
]
