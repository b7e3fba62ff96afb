"""The functional API: `Input(shape)` makes a symbolic tensor, calling a layer on symbolic tensors
records the call, and `Model(inputs, outputs)` turns the recorded graph into a C++ model.

    features = Input((50, 1280))
    mask = Input((50,), dtype="bool")
    x = layers.SimpleRNN(256, return_sequences=True)(features, mask=mask)
    ...
    model = Model([features, mask], outputs)
"""
from __future__ import annotations

from . import _core

__all__ = ["Input", "KerasTensor"]

_DTYPES = ("float32", "bool")


class KerasTensor:
    """A symbolic tensor: shape (batch axis None), dtype, and how it was made.

    A tensor made by `Input` has no history; one made by calling a layer remembers the layer, its
    symbolic inputs and the explicit mask, if any.
    """

    def __init__(self, shape, dtype="float32", name=None, history=None):
        self.shape = (None,) + tuple(int(d) for d in shape)
        self.dtype = dtype
        self.name = name
        self._history = history  # (layer, [KerasTensor], mask KerasTensor or None)

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __array__(self, *args, **kwargs):
        raise TypeError(f"{self!r} is symbolic: it has no values. Build a Model from it and call predict().")


def _check_shape(shape):
    try:
        dims = (shape,) if isinstance(shape, int) else tuple(shape)
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


def _call_layer(layer, inputs, mask=None, training=None, **kwargs):
    """`layer(x)` / `layer([x1, x2])` / `layer(x, mask=m)` on symbolic tensors."""
    if kwargs:
        raise TypeError(f"Unrecognized keyword arguments passed to {type(layer).__name__}.__call__: {kwargs}")
    xs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    if not xs or not all(isinstance(x, KerasTensor) for x in xs):
        got = ", ".join(type(x).__name__ for x in xs) or "nothing"
        raise TypeError(f"Layer '{layer.name}' can be called on symbolic tensors (from Input) to build a "
                        f"model; to compute on data, build a Model and use predict(). Received: {got}")
    if mask is not None and not isinstance(mask, KerasTensor):
        raise TypeError(f"mask must be a symbolic tensor (e.g. Input(shape, dtype='bool')). Received: {type(mask).__name__}")
    if mask is not None and mask.ndim != 2:
        raise ValueError(f"mask must have shape (batch, timesteps). Received: a tensor of shape {mask.shape}")
    shape = _core.layer_output_shape(layer, [list(x.shape[1:]) for x in xs])
    output = KerasTensor(shape, "float32", layer.name, history=(layer, xs, mask))
    if not getattr(layer, "return_state", False):
        return output
    # [output, h] or [output, h, c]: each state is a node of its own reading the layer's state.
    states = []
    for k, which in zip(range(layer.state_count), ("h", "c")):
        node = _core._RecurrentState(k, _core.unique_name(f"{layer.name}_state_{which}"))
        states.append(KerasTensor((layer.units,), "float32", node.name, history=(node, [output], None)))
    return [output] + states


_core.Layer.__call__ = _call_layer


def build_core_model(inputs, outputs, name):
    """Translate the recorded graph between `inputs` and `outputs` into a built `_core.Model`."""
    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    if isinstance(outputs, (list, tuple)):
        if len(outputs) != 1:
            raise NotImplementedError(f"Models with several outputs are not supported yet. Received: {len(outputs)} outputs")
        outputs = outputs[0]
    for t in inputs + [outputs]:
        if not isinstance(t, KerasTensor):
            raise TypeError(f"Model inputs and outputs must be symbolic tensors. Received: {t!r}")
    for t in inputs:
        if t._history is not None:
            raise ValueError(f"Model inputs must come from Input(...). Received: {t!r}, the output of layer '{t.name}'")
    if len({id(t) for t in inputs}) != len(inputs):
        raise ValueError("The same Input was given twice in `inputs`")

    core = _core.Model(name)
    refs = {}
    for t in inputs:
        refs[id(t)] = core.add_input(t.name or _core.unique_name("input_layer"), list(t.shape[1:]), t.dtype)

    order, seen = [], set()

    def visit(t, path):
        if id(t) in refs or id(t) in seen:
            return
        if t._history is None:
            raise ValueError(f"Graph disconnected: {t!r} is needed to compute the outputs but is not in the "
                             f"model's inputs {[i.name for i in inputs]}")
        if id(t) in path:
            raise ValueError("The layer graph has a cycle")
        layer, xs, mask = t._history
        for x in xs + ([mask] if mask is not None else []):
            visit(x, path | {id(t)})
        seen.add(id(t))
        order.append(t)

    visit(outputs, frozenset())
    for t in order:
        layer, xs, mask = t._history
        refs[id(t)] = core.add_node(layer, [refs[id(x)] for x in xs], refs[id(mask)] if mask is not None else None)
    if id(outputs) not in refs or outputs in inputs:
        raise ValueError("The model output must be computed by at least one layer from the inputs")
    core.set_output(refs[id(outputs)])
    core.build()
    return core
