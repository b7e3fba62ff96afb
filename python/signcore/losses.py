"""Losses with Keras's names, arguments and equations, computed in C++.

Every loss is called as ``loss(y_true, y_pred)`` (Keras's argument order) and returns the mean of
the per-sample losses over the batch (Keras's ``"sum_over_batch_size"`` reduction) as a float.

Cross-entropies on probabilities follow Keras exactly: the prediction is divided by its sum over
the last axis, clipped to ``[1e-7, 1 - 1e-7]``, then ``-sum(y_true * log(p))``. With
``from_logits=True`` a numerically stable log-softmax (or log-sigmoid for the binary loss) is used.

Example:
    >>> loss = signcore.losses.SparseCategoricalCrossentropy()
    >>> loss(np.array([1, 0]), np.array([[0.1, 0.9], [0.8, 0.2]]))
"""
from . import _core

_losses = _core.losses

Loss = _losses.Loss
CategoricalCrossentropy = _losses.CategoricalCrossentropy
SparseCategoricalCrossentropy = _losses.SparseCategoricalCrossentropy
BinaryCrossentropy = _losses.BinaryCrossentropy
MeanSquaredError = _losses.MeanSquaredError
MeanAbsoluteError = _losses.MeanAbsoluteError

CategoricalCrossentropy.__doc__ = """Cross-entropy between one-hot (or soft) labels and predictions.

    Args:
        from_logits: Whether ``y_pred`` holds logits rather than probabilities.
        label_smoothing: In ``[0, 1]``; labels become ``y * (1 - s) + s / num_classes``.
        axis: Only ``-1`` (the class axis is last).
        reduction: Only ``"sum_over_batch_size"`` (the mean over the batch).
        name: The loss's name.
        dtype: Only ``None`` or ``"float32"``.

    Input shape:
        ``y_true`` and ``y_pred``: ``(batch_size, num_classes)``.
    """
SparseCategoricalCrossentropy.__doc__ = """Cross-entropy between integer class labels and predictions.

    Args:
        from_logits: Whether ``y_pred`` holds logits rather than probabilities.
        ignore_class: Only ``None``.
        reduction: Only ``"sum_over_batch_size"`` (the mean over the batch).
        name: The loss's name.
        dtype: Only ``None`` or ``"float32"``.

    Input shape:
        ``y_true``: ``(batch_size,)`` or ``(batch_size, 1)`` integer labels in ``[0, num_classes)``
        (integer-valued floats are fine). ``y_pred``: ``(batch_size, num_classes)``.
    """
BinaryCrossentropy.__doc__ = """Cross-entropy between 0/1 labels and predicted probabilities.

    Args:
        from_logits: Whether ``y_pred`` holds logits rather than probabilities.
        label_smoothing: In ``[0, 1]``; labels become ``y * (1 - s) + s / 2``.
        axis: Only ``-1``.
        reduction: Only ``"sum_over_batch_size"``.
        name: The loss's name.
        dtype: Only ``None`` or ``"float32"``.

    Input shape:
        ``y_true`` and ``y_pred``: ``(batch_size, d)``; the loss averages over ``d`` then the batch.
    """
MeanSquaredError.__doc__ = """Mean of ``(y_pred - y_true) ** 2`` over the last axis, then the batch.

    Args:
        reduction: Only ``"sum_over_batch_size"``.
        name: The loss's name.
        dtype: Only ``None`` or ``"float32"``.
    """
MeanAbsoluteError.__doc__ = """Mean of ``abs(y_pred - y_true)`` over the last axis, then the batch.

    Args:
        reduction: Only ``"sum_over_batch_size"``.
        name: The loss's name.
        dtype: Only ``None`` or ``"float32"``.
    """

# Pickle finds the classes here (the extension's submodule is not importable by name).
for _cls in (Loss, CategoricalCrossentropy, SparseCategoricalCrossentropy, BinaryCrossentropy,
             MeanSquaredError, MeanAbsoluteError):
    _cls.__module__ = __name__


def get(identifier):
    """Returns a loss object for an identifier, as ``keras.losses.get`` does.

    Args:
        identifier: A loss object (returned as is), a name such as
            ``"sparse_categorical_crossentropy"``, ``"mse"`` or ``"CategoricalCrossentropy"``,
            or a dict ``{"class_name": ..., "config": {...}}`` as written by serialize().

    Returns:
        A ``Loss`` instance (None for None, as in Keras).

    Raises:
        ValueError: The identifier names no known loss.
        TypeError: The identifier is of an unsupported type (e.g. a Python function).
    """
    if identifier is None or isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        return _core.make_loss(identifier, None)
    if isinstance(identifier, dict):
        if "class_name" not in identifier:
            raise ValueError(
                f"A loss dict needs a 'class_name' key. Received: identifier={identifier!r}"
            )
        return _core.make_loss(identifier["class_name"], identifier.get("config") or None)
    raise TypeError(
        "A loss must be a name (e.g. 'categorical_crossentropy') or a signcore.losses.Loss; "
        f"custom Python loss functions are not supported. Received: loss={identifier!r}"
    )


def serialize(loss):
    """Returns ``{"class_name": ..., "config": ...}`` for a loss object."""
    return {"class_name": loss.class_name, "config": loss.get_config()}


def deserialize(config):
    """Rebuilds a loss from the output of serialize()."""
    return get(config)


__all__ = [
    "Loss",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "BinaryCrossentropy",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "get",
    "serialize",
    "deserialize",
]
