"""Callbacks with Keras's hooks. Subclass `Callback` in Python; the C++ training loop calls the
hooks you override (and only those), with `logs` as a dict you may read and extend."""
from __future__ import annotations

from . import _core

__all__ = ["Callback", "History"]


class Callback(_core.Callback):
    """Base class for callbacks, as in Keras.

    Attributes:
        model: the model being trained (set by `fit`, `evaluate` and `predict`).
        params: dict with `verbose`, `epochs` and `steps`.
    """

    def __init__(self):
        super().__init__()
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params


# The History returned by fit(): `.history` maps each log key to one value per epoch, `.epoch` lists
# the epochs run, `.params` and `.model` are set by fit.
History = _core.History
