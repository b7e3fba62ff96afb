"""Keras's weight initialisers by name, drawn in C++.

Layers take the name (``kernel_initializer="he_normal"``) or an instance of the classes below; the
weights are drawn when the model is built, from the global engine that
``signcore.utils.set_random_seed`` seeds. Calling an instance draws a NumPy array, as in Keras:
``signcore.initializers.GlorotUniform(seed=0)((784, 128))``; a seeded instance returns the same
values on every call.

Definitions (Keras): fans are ``(shape[0], shape[1])`` for a matrix and, for rank > 2,
``fan_in = prod(shape[:-2]) * shape[-2]``, ``fan_out = prod(shape[:-2]) * shape[-1]``.

* ``glorot_uniform``: U(-l, l), ``l = sqrt(6 / (fan_in + fan_out))``
* ``glorot_normal``: truncated normal (redrawn beyond 2 stddev), stddev
  ``sqrt(2 / (fan_in + fan_out)) / 0.8796``
* ``he_uniform`` / ``he_normal``: as glorot with ``2 / fan_in``; ``lecun_*`` with ``1 / fan_in``
* ``orthogonal``: Q of the QR decomposition of a normal matrix, signs fixed by ``diag(R)``
* ``zeros``, ``ones``, ``random_normal`` (stddev 0.05), ``random_uniform`` (±0.05)
"""
import numpy as np

from . import _core

NAMES = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
         "lecun_normal", "orthogonal", "zeros", "ones", "random_normal", "random_uniform")


class Initializer:
    """Base class: a named initialiser, callable as ``init(shape, dtype=None)``."""

    _signcore_name = None

    def __init__(self, seed=None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"`seed` must be None or a non-negative integer. Received: seed={seed!r}")
        self.seed = seed

    def __call__(self, shape, dtype=None):
        if dtype is not None and str(getattr(dtype, "name", dtype)) != "float32":
            raise ValueError(f"signcore initialisers draw float32 only. Received: dtype={dtype!r}")
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        return _core._initialize(self._signcore_name, shape, self.seed)

    def get_config(self):
        return {"seed": self.seed}

    def __repr__(self):
        return f"{type(self).__name__}(seed={self.seed!r})"


def _named(class_name, name, doc):
    cls = type(class_name, (Initializer,), {"_signcore_name": name, "__doc__": doc})
    cls.__module__ = __name__
    return cls


GlorotUniform = _named("GlorotUniform", "glorot_uniform", "Glorot (Xavier) uniform initialiser.")
GlorotNormal = _named("GlorotNormal", "glorot_normal", "Glorot (Xavier) truncated-normal initialiser.")
HeUniform = _named("HeUniform", "he_uniform", "He uniform initialiser.")
HeNormal = _named("HeNormal", "he_normal", "He truncated-normal initialiser.")
LecunUniform = _named("LecunUniform", "lecun_uniform", "LeCun uniform initialiser.")
LecunNormal = _named("LecunNormal", "lecun_normal", "LeCun truncated-normal initialiser.")


class Orthogonal(Initializer):
    """Orthogonal matrix initialiser (gain 1 only)."""

    _signcore_name = "orthogonal"

    def __init__(self, gain=1.0, seed=None):
        if gain != 1.0:
            raise ValueError(f"signcore supports Orthogonal(gain=1.0) only. Received: gain={gain!r}")
        super().__init__(seed)

    def get_config(self):
        return {"gain": 1.0, "seed": self.seed}


class Zeros(Initializer):
    """All zeros."""

    _signcore_name = "zeros"

    def __init__(self):
        super().__init__(None)

    def get_config(self):
        return {}

    def __repr__(self):
        return "Zeros()"


class Ones(Zeros):
    """All ones."""

    _signcore_name = "ones"

    def __repr__(self):
        return "Ones()"


class RandomNormal(Initializer):
    """Normal draws, Keras defaults only (mean 0, stddev 0.05)."""

    _signcore_name = "random_normal"

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        if mean != 0.0 or stddev != 0.05:
            raise ValueError("signcore supports RandomNormal(mean=0.0, stddev=0.05) only. "
                             f"Received: mean={mean!r}, stddev={stddev!r}")
        super().__init__(seed)

    def get_config(self):
        return {"mean": 0.0, "stddev": 0.05, "seed": self.seed}


class RandomUniform(Initializer):
    """Uniform draws, Keras defaults only (minval -0.05, maxval 0.05)."""

    _signcore_name = "random_uniform"

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        if minval != -0.05 or maxval != 0.05:
            raise ValueError("signcore supports RandomUniform(minval=-0.05, maxval=0.05) only. "
                             f"Received: minval={minval!r}, maxval={maxval!r}")
        super().__init__(seed)

    def get_config(self):
        return {"minval": -0.05, "maxval": 0.05, "seed": self.seed}


# Keras's lower-case aliases.
glorot_uniform, glorot_normal = GlorotUniform, GlorotNormal
he_uniform, he_normal = HeUniform, HeNormal
lecun_uniform, lecun_normal = LecunUniform, LecunNormal
orthogonal, zeros, ones = Orthogonal, Zeros, Ones
random_normal, random_uniform = RandomNormal, RandomUniform

_BY_NAME = {cls._signcore_name: cls for cls in (GlorotUniform, GlorotNormal, HeUniform, HeNormal,
                                                 LecunUniform, LecunNormal, Orthogonal, Zeros, Ones,
                                                 RandomNormal, RandomUniform)}


def get(identifier):
    """An initialiser instance from a name (``"he_normal"`` or ``"HeNormal"``) or an instance.

    Raises ValueError for unknown names.
    """
    if identifier is None:
        return None
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        _core._check_initializer(identifier)
        key = identifier if identifier in _BY_NAME else next(
            n for n, c in _BY_NAME.items() if c.__name__ == identifier)
        return _BY_NAME[key]()
    raise ValueError(f"Could not interpret initializer identifier. Received: initializer={identifier!r}")


def serialize(initializer):
    """The Keras name of an initialiser instance."""
    return get(initializer)._signcore_name


__all__ = ["GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Initializer", "LecunNormal",
           "LecunUniform", "NAMES", "Ones", "Orthogonal", "RandomNormal", "RandomUniform", "Zeros",
           "get", "serialize"]
