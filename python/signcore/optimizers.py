"""Optimizers with Keras's names, arguments, defaults and update rules.

The classes are implemented in C++ (``signcore._core``); this module re-exports them and resolves
the identifiers ``Model.compile(optimizer=...)`` accepts.
"""
from . import _core

Optimizer = _core.Optimizer
SGD = _core.SGD
Adam = _core.Adam
RMSprop = _core.RMSprop
Adagrad = _core.Adagrad
Adadelta = _core.Adadelta

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "Adagrad", "Adadelta", "get", "serialize", "deserialize"]


def serialize(optimizer):
    """Returns ``{"class_name": ..., "config": ...}`` for an optimizer, as Keras does.

    Args:
        optimizer: An `Optimizer` instance.

    Returns:
        A dict that `deserialize` turns back into an equal optimizer (without its state).
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"serialize expects an Optimizer. Received: optimizer={optimizer!r}")
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config):
    """Creates an optimizer from ``{"class_name": ..., "config": ...}``.

    Args:
        config: A dict as written by `serialize` (or by Keras for the five optimizers here).

    Returns:
        A new optimizer.
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            "An optimizer config must be a dict with a 'class_name' key. "
            f"Received: config={config!r}"
        )
    unknown = set(config) - {"class_name", "config", "module", "registered_name", "build_config"}
    if unknown:
        raise ValueError(
            f"Unknown keys in the optimizer config: {sorted(unknown)}. Received: config={config!r}"
        )
    return _core.make_optimizer(str(config["class_name"]), config.get("config") or {})


def get(identifier):
    """Resolves an optimizer identifier, as ``keras.optimizers.get`` does.

    Args:
        identifier: An `Optimizer` (returned as is), a name ("sgd", "adam", "rmsprop", "adagrad",
            "adadelta", in any case; Keras's defaults) or a dict as written by `serialize`.

    Returns:
        An `Optimizer`.

    Raises:
        ValueError: for an unknown name.
        TypeError: for any other kind of identifier.
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        return _core.make_optimizer(identifier)
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise TypeError(
        "Could not interpret optimizer identifier: expected an Optimizer, a name such as 'adam' "
        f"or a config dict. Received: optimizer={identifier!r}"
    )
