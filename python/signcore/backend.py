"""The small part of Keras's backend module (`keras.backend`, imported as `K`) that training code
uses: reading and writing a variable such as the learning rate, and a few constants.

Keras 2 callbacks change the learning rate with ``K.set_value(self.model.optimizer.lr, value)``
and read it with ``K.get_value(self.model.optimizer.lr)``; with
``from signcore import backend as K`` that code runs unchanged. ``optimizer.lr`` is a
`LearningRate`: a float (its value when read) that also knows its optimizer, so `set_value` can
write to it. ``optimizer.lr = value`` works too. In new code write
``model.optimizer.learning_rate = value``.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import _core

__all__ = ["LearningRate", "get_value", "set_value", "epsilon", "floatx", "image_data_format"]


class LearningRate(float):
    """An optimizer's learning rate as read at one moment: a float, plus `numpy()` and `assign()`.

    The float value does not follow later changes (read ``optimizer.lr`` again for that);
    `numpy()` returns the current value and `assign(v)` sets it.
    """

    def __new__(cls, optimizer):
        self = super().__new__(cls, float(optimizer.learning_rate))
        self._optimizer = optimizer
        return self

    @property
    def optimizer(self):
        return self._optimizer

    def numpy(self):
        """The optimizer's current learning rate as a NumPy float32."""
        return np.float32(self._optimizer.learning_rate)

    def assign(self, value):
        """Set the optimizer's learning rate (a number >= 0)."""
        self._optimizer.learning_rate = _as_rate(value)

    def __repr__(self):
        return f"<LearningRate {float(self)!r} of {self._optimizer!r}>"

    def __reduce__(self):  # pickles (and copies) as a plain float
        return (float, (float(self),))


def _as_rate(value):
    v = np.asarray(value)
    if v.size != 1 or v.dtype.kind not in "biuf" or v.dtype.kind == "b":
        raise TypeError(f"A learning rate must be a number. Received: {value!r}")
    return float(v.reshape(()))


def _lr_get(optimizer):
    return LearningRate(optimizer)


def _lr_set(optimizer, value):
    optimizer.learning_rate = _as_rate(value)


# Keras 2's short name, on every optimizer.
_core.Optimizer.lr = property(_lr_get, _lr_set, doc="Keras 2's name for learning_rate (see signcore.backend).")


def get_value(x):
    """The value of a variable as NumPy data (Keras's ``K.get_value``).

    Args:
        x: ``optimizer.lr`` (or anything with a ``numpy()`` method), a NumPy array or a number.

    Returns:
        A NumPy value (``np.float32`` for a learning rate).
    """
    if hasattr(x, "numpy") and callable(x.numpy):
        return x.numpy()
    if isinstance(x, (np.ndarray, np.generic)):
        return x
    if isinstance(x, numbers.Number):
        return np.asarray(x)[()]
    raise TypeError(f"get_value expects a variable such as model.optimizer.lr or a number. Received: {x!r}")


def set_value(x, value):
    """Set a variable (Keras's ``K.set_value``), e.g. ``set_value(model.optimizer.lr, 0.01)``.

    Args:
        x: ``optimizer.lr`` or any object with an ``assign(value)`` method.
        value: The new value.

    Raises:
        TypeError: ``x`` is a plain number (e.g. ``optimizer.learning_rate``, a float): there is
            nothing to write to; assign ``optimizer.learning_rate = value`` instead.
    """
    if hasattr(x, "assign") and callable(x.assign):
        x.assign(value)
        return
    raise TypeError(
        "set_value needs a variable such as model.optimizer.lr. Received: "
        f"{x!r} of type {type(x).__name__}. To change the learning rate, write "
        "model.optimizer.learning_rate = value.")


def epsilon():
    """The fuzz factor Keras uses in numeric expressions: 1e-7."""
    return 1e-7


def floatx():
    """The float type signcore computes in: "float32"."""
    return "float32"


def image_data_format():
    """signcore's image layout: "channels_last" (N, H, W, C)."""
    return "channels_last"
