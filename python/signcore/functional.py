"""Symbolic inputs. `Input(shape)` starts a Sequential model today; the functional API (layers
called on symbolic tensors, `Model(inputs, outputs)`) builds on the same class."""
from __future__ import annotations

from . import _core

__all__ = ["Input", "KerasTensor"]

_DTYPES = ("float32", "bool")


class KerasTensor:
    """A symbolic tensor: per-sample shape, dtype and the model input it stands for."""

    def __init__(self, shape, dtype="float32", name=None):
        self.shape = (None,) + tuple(shape)
        self.dtype = dtype
        self.name = name

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"


def _check_shape(shape):
    try:
        dims = tuple(shape) if not isinstance(shape, int) else (shape,)
    except TypeError:
        raise TypeError(f"shape must be a tuple of positive integers. Received: shape={shape!r}") from None
    if not dims or any(isinstance(d, bool) or not isinstance(d, int) or d <= 0 for d in dims):
        raise ValueError(f"shape must be a tuple of positive integers (no batch axis). Received: shape={shape!r}")
    return dims


def Input(shape=None, batch_size=None, dtype=None, name=None, **kwargs):
    """Create a symbolic input, as keras.Input.

    Args:
        shape: per-sample shape, without the batch axis, e.g. `(28, 28, 1)`.
        batch_size: accepted for compatibility; signcore models take any batch size.
        dtype: "float32" (default) or "bool" (masks).
        name: optional name; automatic otherwise ("input_layer", "input_layer_1", ...).
    """
    if kwargs:
        raise TypeError(f"Unrecognized keyword arguments passed to Input: {kwargs}")
    if shape is None:
        raise ValueError("Input needs a shape. Received: shape=None")
    dims = _check_shape(shape)
    dtype = "float32" if dtype is None else str(getattr(dtype, "name", dtype))
    if dtype not in _DTYPES:
        raise ValueError(f"Input dtype must be one of {_DTYPES}. Received: dtype={dtype!r}")
    return KerasTensor(dims, dtype, name or _core.unique_name("input_layer"))
