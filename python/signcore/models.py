"""Models with Keras's API. A `Sequential` (or, later, functional `Model`) holds a `_core.Model`:
the graph, the flat parameter buffer and the C++ batch loop. This file only turns Python arguments
into arrays and C++ objects, and C++ results back into Keras's return values."""
from __future__ import annotations

import numbers

import numpy as np

from . import _core
from . import losses as _losses
from . import optimizers as _optimizers
from .callbacks import Callback
from .functional import KerasTensor

__all__ = ["Model", "Sequential", "load_model"]


# ------------------------------------------------------------------------------------------------
# Argument checking and conversion

def _float_array(a, what):
    """Return `a` as a C-contiguous float32 array, or raise naming what was received."""
    if isinstance(a, KerasTensor):
        raise TypeError(f"{what} must be an array of data, not a symbolic tensor. Received: {a!r}")
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{what} must hold numbers or booleans. Received: an array of dtype {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError(f"{what} must have a batch axis. Received: a scalar {arr!r}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise ValueError(f"{what} contains {bad} NaN or infinite value(s); clean the data before training.")
    return arr


def _is_source(x):
    """A data source (image iterator, Sequence, generator) rather than arrays."""
    if isinstance(x, _core.BatchSource):
        return True
    if x is None or isinstance(x, (np.ndarray, list, tuple, dict, str, bytes)) or hasattr(x, "__array__"):
        return False
    return hasattr(x, "__next__") or hasattr(x, "__iter__") or (hasattr(x, "__getitem__") and hasattr(x, "__len__"))


def _verbose(verbose):
    if verbose == "auto":
        return 1
    if verbose is True or verbose is False:  # Keras 2 scripts pass booleans (seed 001)
        return int(verbose)
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto'. Received: verbose={verbose!r}")
    return int(verbose)


def _positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{what} must be a positive integer. Received: {what}={value!r}")
    return int(value)


def _non_negative_int(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer. Received: {what}={value!r}")
    return int(value)


def _check_callbacks(callbacks):
    if callbacks is None:
        return []
    if isinstance(callbacks, _core.Callback):
        callbacks = [callbacks]
    callbacks = list(callbacks)
    for cb in callbacks:
        if not isinstance(cb, _core.Callback):
            raise TypeError(f"callbacks must be signcore.callbacks.Callback instances. Received: {cb!r}")
    return callbacks


class Variable:
    """A view of one weight tensor of a model (Keras's Variable): name, shape, numpy(), assign()."""

    def __init__(self, model, info):
        self._model = model
        self._index = info["index"]
        self.name = info["name"]
        self.path = info["name"]
        self.shape = tuple(info["shape"])
        self.trainable = info["trainable"]
        self.dtype = "float32"

    def numpy(self):
        return self._model._core.get_weight(self._index)

    def assign(self, value):
        self._model._core.set_weight(self._index, np.asarray(value, dtype=np.float32))

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    def __repr__(self):
        return f"<Variable path={self.name}, shape={self.shape}, dtype=float32>"


# ------------------------------------------------------------------------------------------------
# Model

class Model:
    """A trainable model, as keras.Model, built with the functional API.

    Args:
        inputs: an `Input(...)` tensor or a list of them.
        outputs: the symbolic tensor computed from them by calling layers.
        name: model name; automatic otherwise ("functional", "functional_1", ...).

    Example:
        features = Input((50, 1280)); mask = Input((50,), dtype="bool")
        x = layers.SimpleRNN(128)(features, mask=mask)
        model = Model([features, mask], layers.Dense(15, activation="softmax")(x))
    """

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        if kwargs.pop("trainable", True) is not True or kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to Model: {kwargs}")
        if type(self) is not Model:
            raise TypeError(f"{type(self).__name__} must define its own constructor")
        if inputs is None or outputs is None:
            raise ValueError("Model(inputs, outputs) needs both. Subclassed models with a Python call() are "
                             "not supported: the forward pass runs in C++.")
        from .functional import build_core_model
        self._core = build_core_model(inputs, outputs, name or _core.unique_name("functional"))
        self._layers = list(self._core.layers)
        self.history = None

    # -- construction helpers ---------------------------------------------------------------
    @classmethod
    def _from_core(cls, core):
        """Wrap an existing, built `_core.Model` (e.g. one read from a file)."""
        nodes = core.nodes
        chain = len(core.input_shapes) == 1 and all(
            inputs == [k - 1] and mask is None for k, (_, inputs, mask) in enumerate(nodes))
        model = Model.__new__(Sequential if chain else Model)
        model._core = core
        model._layers = list(core.layers)
        model.history = None
        if chain:
            model._input = None
        return model

    def _ensure_built(self, x_arrays=None):
        if not self._core.built:
            self._build_from(x_arrays)
        return self._core

    def _build_from(self, x_arrays):  # pragma: no cover - subclasses implement
        raise NotImplementedError

    def build(self, input_shape=None):
        """Build the model for `input_shape` (with the batch axis, e.g. `(None, 784)`)."""
        if input_shape is not None:
            shape = tuple(input_shape)[1:]
            self._build_from([np.zeros((1,) + tuple(int(d) for d in shape), np.float32)])
        else:
            self._ensure_built()

    # -- properties -------------------------------------------------------------------------
    @property
    def name(self):
        return self._core.name

    @property
    def layers(self):
        return list(self._layers)

    def get_layer(self, name=None, index=None):
        """Return a layer by name or by index (as keras.Model.get_layer)."""
        if index is not None:
            if not isinstance(index, numbers.Integral) or not -len(self._layers) <= index < len(self._layers):
                raise ValueError(f"Was asked to retrieve layer at index {index!r} but model only has "
                                 f"{len(self._layers)} layers.")
            return self._layers[index]
        if name is None:
            raise ValueError("Provide either a layer name or a layer index.")
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: {[l.name for l in self._layers]}.")

    @property
    def input_shape(self):
        """The input shape with the batch axis, `(None, ...)`; a list of them for several inputs."""
        self._require_built("input shape")
        shapes = [(None,) + tuple(s) for s in self._core.input_shapes]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self):
        """The output shape with the batch axis, `(None, ...)`."""
        self._require_built("output shape")
        return (None,) + tuple(self._core.output_shape)

    @property
    def optimizer(self):
        return self._core.optimizer

    @property
    def stop_training(self):
        return self._core.stop_training

    @stop_training.setter
    def stop_training(self, value):
        self._core.stop_training = bool(value)

    @property
    def built(self):
        return self._core.built

    @property
    def metrics_names(self):
        return ["loss"] + list(self._core.metric_names)

    def _variables(self, which=None):
        self._require_built("weights")
        infos = self._core.weights_info()
        return [Variable(self, i) for i in infos if which is None or i["trainable"] == which]

    @property
    def weights(self):
        return self._variables()

    @property
    def trainable_weights(self):
        return self._variables(True)

    @property
    def non_trainable_weights(self):
        return self._variables(False)

    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights

    def _require_built(self, what):
        if not self._core.built:
            try:
                self._ensure_built()
            except ValueError:
                raise ValueError(
                    f"Model '{self.name}' has not yet been built, so it has no {what}. Give the first "
                    "layer an input_shape, start with Input(shape), or call build()/fit() first.") from None

    def get_weights(self):
        """All weights as NumPy arrays, in Keras order (layer by layer, kernel before bias)."""
        self._require_built("weights")
        return [self._core.get_weight(i) for i in range(len(self._core.weights_info()))]

    def set_weights(self, weights):
        """Set all weights from a list of arrays shaped like `get_weights()`."""
        self._require_built("weights")
        infos = self._core.weights_info()
        weights = list(weights)
        if len(weights) != len(infos):
            raise ValueError(f"set_weights expects a list of {len(infos)} arrays for model '{self.name}'. "
                             f"Received: a list of {len(weights)} arrays")
        arrays = [_float_array(w, f"weight '{i['name']}'") if np.ndim(w) else np.asarray(w, np.float32)
                  for w, i in zip(weights, infos)]
        for w, i in zip(arrays, infos):  # check every shape before changing anything
            if tuple(w.shape) != tuple(i["shape"]):
                raise ValueError(f"Weight '{i['name']}' has shape {tuple(i['shape'])}. "
                                 f"Received: an array of shape {w.shape}")
        for w, i in zip(arrays, infos):
            self._core.set_weight(i["index"], w)

    def count_params(self):
        self._require_built("parameters")
        return int(self._core.count_params())

    def summary(self, line_length=None, positions=None, print_fn=None, **kwargs):
        """Print Keras's summary table: layers, output shapes, parameter counts and totals."""
        self._require_built("summary")
        text = self._core.summary(int(line_length or 65))
        if print_fn is None:
            print(text, end="")
        else:
            for line in text.rstrip("\n").split("\n"):
                print_fn(line)

    # -- training -----------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, **kwargs):
        """Configure training (as keras.Model.compile).

        Args:
            optimizer: name ("adam", "sgd", ...) or an optimizer instance.
            loss: name ("sparse_categorical_crossentropy", ...) or a loss instance.
            metrics: list of metric names, e.g. ["accuracy"].
        """
        unsupported = {k: v for k, v in kwargs.items() if v is not None}
        if unsupported:
            raise TypeError(f"Unrecognized or unsupported keyword arguments passed to compile: {unsupported}")
        if loss is None:
            raise ValueError("compile() needs a loss, e.g. loss='sparse_categorical_crossentropy'. Received: loss=None")
        opt = _optimizers.get(optimizer)
        loss_obj = _losses.get(loss)
        names, objects = [], []
        if metrics is not None:
            if isinstance(metrics, (str, _core.Metric)):
                metrics = [metrics]
            if isinstance(metrics, dict):
                raise TypeError(f"metrics must be a list. Received: {metrics!r}")
            for m in metrics:
                if isinstance(m, str):
                    names.append(m)
                    objects.append(None)
                elif isinstance(m, _core.Metric):
                    names.append(m.name)
                    objects.append(m)
                else:
                    raise TypeError(f"metrics must be names or signcore.metrics objects. Received: {m!r}")
        self._core.compile(opt, loss_obj, names, objects)
        self._compiled_with = (opt, loss_obj, names, objects)

    def _require_compiled(self, what):
        if not self._core.compiled:
            raise RuntimeError(f"You must call compile() on model '{self.name}' before {what}().")

    def _inputs(self, x, what="x"):
        """One float32 array per model input."""
        n_inputs = max(1, len(self._core.input_shapes)) if self._core.built else self._n_inputs()
        if isinstance(x, (list, tuple)) and n_inputs > 1:
            if len(x) != n_inputs:
                raise ValueError(f"Model '{self.name}' expects {n_inputs} inputs. Received: {len(x)} arrays")
            return [_float_array(a, f"{what}[{k}]") for k, a in enumerate(x)]
        if isinstance(x, dict):
            raise TypeError(f"{what} as a dict is not supported. Received keys: {list(x)}")
        if x is None:
            raise ValueError(f"{what} is required. Received: {what}=None")
        return [_float_array(x, what)]

    def _n_inputs(self):
        return max(1, len(self._core.input_shapes))

    def _targets(self, y, n, what="y"):
        if y is None:
            raise ValueError(f"{what} is required for training and evaluation. Received: {what}=None")
        y = _float_array(y, what)
        if y.shape[0] != n:
            raise ValueError(f"x and {what} must have the same number of samples. "
                             f"Received: x has {n} samples, {what} has {y.shape[0]}")
        return y

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """Train the model (as keras.Model.fit); returns a History.

        The epoch and batch loops run in C++ without the GIL; Ctrl-C stops at the next batch
        boundary with KeyboardInterrupt and leaves the model usable.
        """
        for arg, val in (("class_weight", class_weight), ("sample_weight", sample_weight)):
            if val is not None:
                raise NotImplementedError(f"fit(..., {arg}=...) is not supported yet. Received: {arg}={val!r}")
        if validation_freq != 1:
            raise NotImplementedError(f"fit(validation_freq={validation_freq!r}) is not supported yet")
        self._require_compiled("fit")
        if _is_source(x):
            return self._fit_source(x, y, epochs, verbose, callbacks, validation_data, initial_epoch,
                                    steps_per_epoch, validation_steps, validation_split)
        if steps_per_epoch is not None or validation_steps is not None:
            raise ValueError("steps_per_epoch and validation_steps apply to data iterators, not to arrays")
        batch_size = 32 if batch_size is None else _positive_int(batch_size, "batch_size")
        epochs = _non_negative_int(epochs, "epochs")
        initial_epoch = _non_negative_int(initial_epoch, "initial_epoch")
        verbose = _verbose(verbose)
        xs = self._inputs(x)
        n = xs[0].shape[0]
        ys = self._targets(y, n)
        for k, a in enumerate(xs):
            if a.shape[0] != n:
                raise ValueError(f"All inputs must have the same number of samples. Received: {n} and {a.shape[0]}")
        if not isinstance(validation_split, numbers.Real) or not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1). Received: validation_split={validation_split!r}")
        val_x = val_y = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a tuple (x_val, y_val). Received: "
                                 f"{type(validation_data).__name__} of length {len(validation_data) if hasattr(validation_data, '__len__') else '?'}")
            val_x = self._inputs(validation_data[0], "validation_data x")
            val_y = self._targets(validation_data[1], val_x[0].shape[0], "validation_data y")
        elif validation_split:
            split = int(np.floor(n * (1.0 - validation_split)))  # Keras: the last fraction, before shuffling
            if split == 0 or split == n:
                raise ValueError(f"validation_split={validation_split} leaves an empty training or validation "
                                 f"set for {n} samples")
            val_x, val_y = [a[split:] for a in xs], ys[split:]
            xs, ys = [a[:split] for a in xs], ys[:split]
        if not isinstance(shuffle, bool):
            raise ValueError(f"shuffle must be True or False (batch-wise shuffling is not supported). Received: {shuffle!r}")
        self._ensure_built(xs)
        callbacks = _check_callbacks(callbacks)
        steps = -(-xs[0].shape[0] // batch_size)
        params = {"verbose": verbose, "epochs": epochs, "steps": steps}
        for cb in callbacks:
            if hasattr(cb, "set_model"):
                cb.set_model(self)
            if hasattr(cb, "set_params"):
                cb.set_params(dict(params))
        history = self._core.fit(xs, ys, batch_size, epochs, verbose, shuffle, initial_epoch,
                                 callbacks, val_x, val_y)
        history.model = self
        history.params = params
        self.history = history
        return history

    def _fit_source(self, data, y, epochs, verbose, callbacks, validation_data, initial_epoch,
                    steps_per_epoch, validation_steps, validation_split):
        if y is not None:
            raise ValueError("y must not be given when x is a data iterator (it yields (x, y) batches)")
        if validation_split:
            raise ValueError("validation_split is not available with a data iterator; use validation_data")
        epochs = _non_negative_int(epochs, "epochs")
        initial_epoch = _non_negative_int(initial_epoch, "initial_epoch")
        verbose = _verbose(verbose)
        steps = 0 if steps_per_epoch is None else _positive_int(steps_per_epoch, "steps_per_epoch")
        vsteps = 0 if validation_steps is None else _positive_int(validation_steps, "validation_steps")
        val = validation_data
        if isinstance(val, (tuple, list)):
            if len(val) != 2:
                raise ValueError("validation_data must be (x_val, y_val) or a data iterator")
            vx = self._inputs(val[0], "validation_data x")
            val = _ArrayBatches(vx, self._targets(val[1], vx[0].shape[0], "validation_data y"), 32)
        self._build_for_source("training")
        callbacks = _check_callbacks(callbacks)
        n = steps or (len(data) if hasattr(data, "__len__") else 0)
        params = {"verbose": verbose, "epochs": epochs, "steps": n}
        for cb in callbacks:
            if hasattr(cb, "set_model"):
                cb.set_model(self)
            if hasattr(cb, "set_params"):
                cb.set_params(dict(params))
        history = self._core.fit_source(data, epochs, verbose, initial_epoch, callbacks, val, steps, vsteps)
        history.model = self
        history.params = params
        self.history = history
        return history

    def _build_for_source(self, what):
        if self._core.built:
            return
        try:
            self._ensure_built()
        except ValueError:
            raise ValueError(f"Model '{self.name}' must know its input shape before {what} on an iterator: "
                             "give the first layer input_shape=... or start with Input(shape)") from None

    def fit_generator(self, generator, steps_per_epoch=None, epochs=1, verbose="auto", callbacks=None,
                      validation_data=None, validation_steps=None, initial_epoch=0, **kwargs):
        """Keras 2's name for fit(iterator); kept so older scripts run unchanged."""
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to fit_generator: {kwargs}")
        return self.fit(generator, epochs=epochs, verbose=verbose, callbacks=callbacks,
                        validation_data=validation_data, initial_epoch=initial_epoch,
                        steps_per_epoch=steps_per_epoch, validation_steps=validation_steps)

    def evaluate_generator(self, generator, steps=None, verbose=0, callbacks=None, **kwargs):
        return self.evaluate(generator, steps=steps, verbose=verbose, callbacks=callbacks)

    def predict_generator(self, generator, steps=None, verbose=0, callbacks=None, **kwargs):
        return self.predict(generator, steps=steps, verbose=verbose, callbacks=callbacks)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        """Loss and metrics on the given data: a scalar (no metrics), a list, or a dict."""
        if sample_weight is not None:
            raise NotImplementedError("evaluate(sample_weight=...) is not supported yet")
        self._require_compiled("evaluate")
        if _is_source(x):
            if y is not None:
                raise ValueError("y must not be given when x is a data iterator (it yields (x, y) batches)")
            steps = 0 if steps is None else _positive_int(steps, "steps")
            self._build_for_source("evaluating")
            logs = self._core.evaluate_source(x, steps, _verbose(verbose), self._bind(callbacks))
            return self._batch_result(logs, return_dict)
        if steps is not None:
            raise ValueError("steps applies to data iterators, not to arrays")
        batch_size = 32 if batch_size is None else _positive_int(batch_size, "batch_size")
        xs = self._inputs(x)
        ys = self._targets(y, xs[0].shape[0])
        self._ensure_built(xs)
        callbacks = _check_callbacks(callbacks)
        for cb in callbacks:
            if hasattr(cb, "set_model"):
                cb.set_model(self)
        logs = self._core.evaluate(xs, ys, batch_size, _verbose(verbose), callbacks)
        return self._batch_result(logs, return_dict)

    def _bind(self, callbacks):
        callbacks = _check_callbacks(callbacks)
        for cb in callbacks:
            if hasattr(cb, "set_model"):
                cb.set_model(self)
        return callbacks

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Model outputs for `x`, computed batch by batch in C++; returns a NumPy array."""
        if _is_source(x):
            self._build_for_source("predicting")
            steps = 0 if steps is None else _positive_int(steps, "steps")
            return self._core.predict_source(x, steps, _verbose(verbose), self._bind(callbacks))
        if steps is not None:
            raise ValueError("steps applies to data iterators, not to arrays")
        batch_size = 32 if batch_size is None else _positive_int(batch_size, "batch_size")
        xs = self._inputs(x)
        self._ensure_built(xs)
        callbacks = _check_callbacks(callbacks)
        for cb in callbacks:
            if hasattr(cb, "set_model"):
                cb.set_model(self)
        return self._core.predict(xs, batch_size, _verbose(verbose), callbacks)

    def _batch_result(self, logs, return_dict):
        logs = dict(logs)
        # Metrics without a single number (a confusion matrix) report their full result.
        for m in self._core.metrics:
            if not m.scalar:
                logs[m.name] = m.result()
        if return_dict:
            return logs
        values = [logs[k] for k in self.metrics_names if k in logs]
        return values[0] if len(values) == 1 else values

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One optimisation step on one batch; returns the loss (and metrics) before the update."""
        if sample_weight is not None or class_weight is not None:
            raise NotImplementedError("train_on_batch(sample_weight=..., class_weight=...) is not supported yet")
        self._require_compiled("train_on_batch")
        xs = self._inputs(x)
        ys = self._targets(y, xs[0].shape[0])
        self._ensure_built(xs)
        return self._batch_result(self._core.train_on_batch(xs, ys), return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        if sample_weight is not None:
            raise NotImplementedError("test_on_batch(sample_weight=...) is not supported yet")
        self._require_compiled("test_on_batch")
        xs = self._inputs(x)
        ys = self._targets(y, xs[0].shape[0])
        self._ensure_built(xs)
        return self._batch_result(self._core.test_on_batch(xs, ys), return_dict)

    def predict_on_batch(self, x):
        xs = self._inputs(x)
        self._ensure_built(xs)
        return self._core.predict_on_batch(xs)

    def profile(self, x, y=None, steps=5, print_table=True):
        """Where one batch's time goes, layer by layer (a signcore addition; Keras has none).

        Runs one warm-up step and then `steps` timed training steps on (x, y) (the weights do
        train), or prediction steps when y is None. Returns a dict: "layers", a list of
        (name, class, forward_ms, backward_ms) per layer; "loss_ms", "optimizer_ms" and "total_ms"
        per step; "fused", {activation layer: layer}: Activation layers that the layer before them
        applies (a convolution without an activation of its own whose output only the Activation
        reads: the model skips them, so their rows read 0); "normalized_in", {BatchNormalization
        layer: MaxPooling layer}: normalisations that the pooling reading them applies on the fly
        (their rows time the statistics only); "relu_derivative_in", the BatchNormalization layers
        that also apply the derivative of the relu before them, so that the layer producing it
        skips that pass; "computed_in", {layer: convolution} (prediction profiles only): the
        MaxPooling layers, and the BatchNormalization layers between, that a convolution computes
        in its own inference pass, never writing its full-size output (their time is in its row;
        Dropout layers, which pass their input through in inference, read 0 there). In training,
        through a BatchNormalization, that convolution also takes the window maxima and the
        normalisation's statistics, so those two rows time only what is left. With print_table
        (the default) it also prints them as a table, with each layer's share of the step.
        """
        steps = int(steps)
        if steps < 1:
            raise ValueError(f"profile needs at least one step. Received: steps={steps}")
        if y is not None:
            self._require_compiled("profile")
        xs = self._inputs(x)
        self._ensure_built(xs)
        ys = self._targets(y, xs[0].shape[0]) if y is not None else None
        raw = self._core.profile(xs, ys, steps)
        rows, fused, normalized_in, relu_in, computed_in = [], {}, {}, [], {}
        for name, kind, f, b, into, by, relu, conv in raw["layers"]:
            rows.append((name, kind, f * 1e3, b * 1e3))
            for table, other in ((fused, into), (normalized_in, by), (computed_in, conv)):
                if other is not None:
                    table[name] = other
            if relu:
                relu_in.append(name)
        result = {"layers": rows, "loss_ms": raw["loss"] * 1e3, "optimizer_ms": raw["optimizer"] * 1e3,
                  "total_ms": raw["total"] * 1e3, "fused": fused, "normalized_in": normalized_in,
                  "relu_derivative_in": relu_in, "computed_in": computed_in}
        if print_table:
            total = result["total_ms"] or 1.0
            print(f"{'layer (type)':<38}{'forward ms':>12}{'backward ms':>13}{'share':>8}")
            for name, kind, f, b in rows:
                if name in fused or name in computed_in:
                    into = fused.get(name) or computed_in[name]
                    print(f"{(name + ' (' + kind + ')')[:37]:<38}{'in ' + into:>33}")
                else:
                    print(f"{(name + ' (' + kind + ')')[:37]:<38}{f:>12.2f}{b:>13.2f}{(f + b) / total:>8.0%}"
                          + (f"  (applied in {normalized_in[name]})" if name in normalized_in else ""))
            if y is not None:
                print(f"{'loss':<38}{result['loss_ms']:>12.2f}")
                print(f"{'optimizer':<38}{'':>12}{result['optimizer_ms']:>13.2f}")
            print(f"{'step total':<38}{result['total_ms']:>12.2f}")
        return result

    # -- saving -------------------------------------------------------------------------------
    def save(self, filepath, overwrite=True, include_optimizer=True):
        """Save architecture, weights and optimizer state in signcore's file format (docs/FORMAT.md)."""
        from . import saving
        saving.save_model(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer)

    def save_weights(self, filepath, overwrite=True):
        from . import saving
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath):
        from . import saving
        saving.load_weights(self, filepath)

    def __reduce__(self):
        from . import saving
        return (saving.model_from_bytes, (saving.model_to_bytes(self),))

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


class _ArrayBatches:
    """(x, y) arrays served as a Sequence of batches (validation data next to a training iterator)."""

    def __init__(self, xs, y, batch_size):
        self.xs, self.y, self.batch_size = xs, y, batch_size

    def __len__(self):
        return -(-self.y.shape[0] // self.batch_size)

    def __getitem__(self, i):
        s = slice(i * self.batch_size, (i + 1) * self.batch_size)
        x = [a[s] for a in self.xs]
        return (x if len(x) > 1 else x[0]), self.y[s]


class Sequential(Model):
    """A linear stack of layers, as keras.Sequential.

    Args:
        layers: optional list of layers (optionally starting with `Input(shape)`).
        name: model name; automatic otherwise ("sequential", "sequential_1", ...).
    """

    def __init__(self, layers=None, name=None, **kwargs):
        if kwargs.pop("trainable", True) is not True or kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to Sequential: {kwargs}")
        self._core = _core.Model(name or _core.unique_name("sequential"))
        self._layers = []
        self._input = None
        self.history = None
        if layers is not None:
            if isinstance(layers, (_core.Layer, KerasTensor)):
                layers = [layers]
            for layer in layers:
                self._append(layer)
        if self._input is not None and self._layers:
            self._build_from(None)  # like Keras: weights exist as soon as the input shape is known

    def add(self, layer):
        """Append a layer (or, first, an `Input`). A built model is rebuilt, keeping its weights."""
        self._append(layer)
        if self._input is not None and self._layers:
            try:
                self._build_from(None)
            except Exception:
                self._layers.pop()  # the new layer does not fit: put the model back as it was
                if self._layers and self._input is not None:
                    self._build_from(None)
                raise

    def _append(self, layer):
        if isinstance(layer, KerasTensor):
            if self._layers or self._input is not None:
                raise ValueError("Input(...) can only be the first entry of a Sequential model")
            self._input = layer
            return
        if isinstance(layer, Model):
            raise TypeError(f"Nesting models inside Sequential is not supported yet. Received: {layer!r}")
        if not isinstance(layer, _core.Layer):
            raise TypeError(f"Sequential.add expects a layer instance. Received: {layer!r} "
                            f"of type {type(layer).__name__}")
        if any(existing is layer for existing in self._layers):
            raise ValueError(f"Layer '{layer.name}' is already in model '{self.name}'")
        if getattr(layer, "return_state", False):
            raise ValueError(f"Layer '{layer.name}' has return_state=True: it returns several tensors, "
                             "which only the functional API can take apart (Input, layer calls, Model).")
        names = {l.name for l in self._layers}
        if layer.name in names:
            raise ValueError(f"All layers added to a Sequential model should have unique names. "
                             f"Name '{layer.name}' is already the name of a layer in this model.")
        self._layers.append(layer)
        if len(self._layers) == 1 and self._input is None and layer.input_shape_hint is not None:
            self._input = KerasTensor(tuple(layer.input_shape_hint), "float32", _core.unique_name("input_layer"))

    def pop(self):
        """Remove the last layer (a built model is rebuilt, keeping the other layers' weights)."""
        if not self._layers:
            raise TypeError("There are no layers in the model.")
        layer = self._layers.pop()
        if self._core.built:
            self._build_from(None)
        del layer

    def _ensure_built(self, x_arrays=None):
        if not self._core.built:
            self._build_from(x_arrays)
        return self._core

    def _build_from(self, x_arrays):
        if not self._layers:
            raise ValueError(f"Model '{self.name}' has no layers; add some before building it.")
        if self._core.built:  # rebuilding after add()/pop(): keep what the layers have learnt
            self._saved = {}
            for info in self._core.weights_info():
                self._saved.setdefault(info["layer"], []).append(self._core.get_weight(info["index"]))
            old_core = self._core
            self._core = _core.Model(old_core.name)
            if old_core.compiled:
                self._core.compile(*self._compiled_with)
            old_core.detach_layers()
        if self._input is None:
            if not x_arrays:
                raise ValueError(
                    f"Model '{self.name}' has not yet been built: its input shape is unknown. Give the first "
                    "layer an input_shape, start with Input(shape), call build(input_shape), or fit() on data.")
            self._input = KerasTensor(tuple(x_arrays[0].shape[1:]), "float32", _core.unique_name("input_layer"))
        shape = tuple(self._input.shape[1:])
        core = _core.Model(self._core.name)
        ref = core.add_input(self._input.name or "input_layer", list(shape), self._input.dtype)
        for layer in self._layers:
            ref = core.add_node(layer, [ref])
        core.set_output(ref)
        core.build()  # raises (leaving the layers reusable) if a layer rejects its input shape
        if self._core.compiled:
            core.compile(*self._compiled_with)
        saved = getattr(self, "_saved", None) or {}
        for info in core.weights_info():
            values = saved.get(info["layer"])
            if values:
                core.set_weight(info["index"], values.pop(0))
        self._saved = None
        self._core = core


def load_model(filepath, custom_objects=None, compile=True):
    """Load a model saved with `model.save` (as keras.models.load_model)."""
    from . import saving
    return saving.load_model(filepath)
