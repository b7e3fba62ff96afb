"""Keras's activation functions by name, with Keras 3 definitions and defaults.

Layers take the name (``Dense(10, activation="relu")``) or one of the functions below
(``activation=signcore.activations.relu``); the computation runs in C++ either way. The functions
also work on NumPy arrays (float32 result), e.g. ``signcore.activations.softmax(logits)``.

Only Keras's default arguments are supported (e.g. ``leaky_relu`` has ``negative_slope=0.2``,
``gelu`` is the exact erf form, ``hard_sigmoid`` is ``relu6(x + 3) / 6``).
"""
import numpy as np

from . import _core

__all__ = [
    "elu", "exponential", "gelu", "get", "hard_sigmoid", "leaky_relu", "linear", "relu", "selu",
    "serialize", "deserialize", "sigmoid", "silu", "softmax", "softplus", "softsign", "swish", "tanh",
]


def _apply(name, x):
    return _core._activation_forward(name, np.asarray(x, dtype=np.float32))


def _only_default(fn, arg, value, default):
    if value != default:
        raise ValueError(f"signcore's {fn} supports {arg}={default!r} only (Keras's default). "
                         f"Received: {arg}={value!r}")


def linear(x):
    """Identity: ``x``."""
    return _apply("linear", x)


def relu(x):
    """Rectified linear unit: ``max(x, 0)``."""
    return _apply("relu", x)


def sigmoid(x):
    """``1 / (1 + exp(-x))``."""
    return _apply("sigmoid", x)


def tanh(x):
    """Hyperbolic tangent."""
    return _apply("tanh", x)


def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x))`` over the last axis (computed with the maximum subtracted)."""
    _only_default("softmax", "axis", axis, -1)
    return _apply("softmax", x)


def leaky_relu(x, negative_slope=0.2):
    """``x`` if ``x > 0`` else ``negative_slope * x`` (Keras 3 default slope 0.2)."""
    _only_default("leaky_relu", "negative_slope", negative_slope, 0.2)
    return _apply("leaky_relu", x)


def elu(x, alpha=1.0):
    """Exponential linear unit: ``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``."""
    _only_default("elu", "alpha", alpha, 1.0)
    return _apply("elu", x)


def gelu(x, approximate=False):
    """Gaussian error linear unit, exact form: ``x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2)))``."""
    _only_default("gelu", "approximate", approximate, False)
    return _apply("gelu", x)


def selu(x):
    """Scaled ELU: ``scale * elu(x, alpha)`` with scale 1.05070098 and alpha 1.67326324."""
    return _apply("selu", x)


def softplus(x):
    """``log(1 + exp(x))``, computed without overflow."""
    return _apply("softplus", x)


def softsign(x):
    """``x / (1 + |x|)``."""
    return _apply("softsign", x)


def silu(x):
    """Sigmoid linear unit (swish): ``x * sigmoid(x)``."""
    return _apply("silu", x)


swish = silu


def hard_sigmoid(x):
    """Piecewise-linear sigmoid, Keras 3: ``relu6(x + 3) / 6``, i.e. ``clip(x / 6 + 0.5, 0, 1)``."""
    return _apply("hard_sigmoid", x)


def exponential(x):
    """``exp(x)``."""
    return _apply("exponential", x)


_BY_NAME = {
    "linear": linear, "relu": relu, "sigmoid": sigmoid, "tanh": tanh, "softmax": softmax,
    "leaky_relu": leaky_relu, "elu": elu, "gelu": gelu, "selu": selu, "softplus": softplus,
    "softsign": softsign, "silu": silu, "hard_sigmoid": hard_sigmoid, "exponential": exponential,
}
for _name, _fn in _BY_NAME.items():
    _fn._signcore_name = _name  # read by the layer constructors
del _name, _fn


def get(identifier):
    """The activation function for a name (``None`` gives ``linear``); ValueError for unknown names.

    Args:
        identifier: None, a name such as ``"relu"`` (``"swish"`` is ``silu``), or one of this
            module's functions.
    """
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        return _BY_NAME[_core._check_activation(identifier)]
    if callable(identifier) and getattr(identifier, "_signcore_name", None) in _BY_NAME:
        return identifier
    raise ValueError("Could not interpret activation function identifier (signcore layers take an "
                     f"activation name such as 'relu'). Received: activation={identifier!r}")


def serialize(activation):
    """The Keras name of an activation function (``"silu"`` for swish)."""
    return get(activation)._signcore_name


def deserialize(name):
    """The activation function for a Keras name (as :func:`get`)."""
    return get(name)
