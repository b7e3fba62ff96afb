"""Callbacks with Keras's hooks and Keras's built-in callbacks.

Subclass `Callback` in Python; the C++ training loop calls the hooks you override (and only
those), with `logs` as a dict you may read and extend. Inside a hook, `self.model` is the model
being trained: set `self.model.stop_training = True` to stop, and read or write the learning rate
as `self.model.optimizer.learning_rate` (Keras 2 code may use
`K.set_value(self.model.optimizer.lr, value)` with `from signcore import backend as K`).

The built-in callbacks (`EarlyStopping`, `ReduceLROnPlateau`, `ModelCheckpoint`,
`LearningRateScheduler`, `CSVLogger`, `TerminateOnNaN`, `BackupAndRestore`, `CyclicLR`) run in
C++ with Keras 3's arguments, defaults, decisions and messages. Their messages are printed only
when their `verbose` is > 0; a monitored quantity missing from the logs raises a `UserWarning`.
Callbacks are called in the order given, then `History`, then the progress bar.
"""
from __future__ import annotations

from . import _core

__all__ = [
    "Callback",
    "History",
    "LambdaCallback",
    "EarlyStopping",
    "ReduceLROnPlateau",
    "ModelCheckpoint",
    "LearningRateScheduler",
    "CSVLogger",
    "TerminateOnNaN",
    "BackupAndRestore",
    "CyclicLR",
]


class Callback(_core.Callback):
    """Base class for callbacks, as in Keras.

    Override any of `on_train_begin/end(logs)`, `on_epoch_begin/end(epoch, logs)`,
    `on_train_batch_begin/end(batch, logs)` (or Keras 2's `on_batch_begin/end`),
    `on_test_begin/end`, `on_test_batch_begin/end`, `on_predict_begin/end` and
    `on_predict_batch_begin/end`. Only the hooks you override are called (the training loop runs
    without Python otherwise).

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


class LambdaCallback(Callback):
    """A callback made of plain functions, as keras.callbacks.LambdaCallback.

    Args:
        on_epoch_begin, on_epoch_end: functions `(epoch, logs)`.
        on_train_batch_begin, on_train_batch_end: functions `(batch, logs)` (Keras 2's
            `on_batch_begin` / `on_batch_end` are accepted too).
        on_train_begin, on_train_end: functions `(logs)`.
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        on_train_batch_begin = on_train_batch_begin or kwargs.pop("on_batch_begin", None)
        on_train_batch_end = on_train_batch_end or kwargs.pop("on_batch_end", None)
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to LambdaCallback: {sorted(kwargs)}")
        self._fns = {"on_epoch_begin": on_epoch_begin, "on_epoch_end": on_epoch_end,
                     "on_train_begin": on_train_begin, "on_train_end": on_train_end,
                     "on_train_batch_begin": on_train_batch_begin, "on_train_batch_end": on_train_batch_end}
        for name, fn in self._fns.items():
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be a function. Received: {fn!r}")

    def on_epoch_begin(self, epoch, logs=None):
        if self._fns["on_epoch_begin"]:
            self._fns["on_epoch_begin"](epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self._fns["on_epoch_end"]:
            self._fns["on_epoch_end"](epoch, logs)

    def on_train_begin(self, logs=None):
        if self._fns["on_train_begin"]:
            self._fns["on_train_begin"](logs)

    def on_train_end(self, logs=None):
        if self._fns["on_train_end"]:
            self._fns["on_train_end"](logs)

    def on_train_batch_begin(self, batch, logs=None):
        if self._fns["on_train_batch_begin"]:
            self._fns["on_train_batch_begin"](batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        if self._fns["on_train_batch_end"]:
            self._fns["on_train_batch_end"](batch, logs)


# The History returned by fit(): `.history` maps each log key to one value per epoch, `.epoch` lists
# the epochs run, `.params` and `.model` are set by fit.
History = _core.History

EarlyStopping = _core.EarlyStopping
EarlyStopping.__doc__ = """Stop training when a monitored quantity has stopped improving (Keras 3).

    Args:
        monitor: Quantity to monitor, a key of the epoch logs. Defaults to "val_loss".
        min_delta: An improvement must exceed this absolute change. Defaults to 0.
        patience: Epochs without improvement after which training stops. Defaults to 0.
        verbose: 1 prints "Epoch N: early stopping" (and the restore message). Defaults to 0.
        mode: "min", "max" or "auto" (maximise when the name contains "acc", "auc",
            "precision", "recall" or "f1"; minimise otherwise). Defaults to "auto".
        baseline: Value the quantity must beat for waiting to restart. Defaults to None.
        restore_best_weights: Put back the weights of the best epoch when training ends, whether
            it stopped early or not. Defaults to False.
        start_from_epoch: Epochs to wait before monitoring starts. Defaults to 0.

    Attributes:
        best, best_epoch (0-based), wait, stopped_epoch (0-based; 0 if it did not stop).

    Example:
        >>> stop = EarlyStopping(monitor="val_loss", patience=6, restore_best_weights=True, verbose=1)
        >>> model.fit(x, y, validation_split=0.2, epochs=100, callbacks=[stop])
    """

ReduceLROnPlateau = _core.ReduceLROnPlateau
ReduceLROnPlateau.__doc__ = """Reduce the learning rate when a monitored quantity has stopped improving (Keras 3).

    After `patience` epochs without improvement (current < best - min_delta in "min" mode,
    current > best + min_delta in "max" mode) the rate becomes max(lr * factor, min_lr); then
    `cooldown` epochs pass before counting starts again. Every epoch's logs get "learning_rate"
    (the rate used during that epoch), so History records it.

    Args:
        monitor: Defaults to "val_loss".
        factor: New rate = rate * factor; must be < 1. Defaults to 0.1.
        patience: Defaults to 10.
        verbose: 1 prints "Epoch N: ReduceLROnPlateau reducing learning rate to ...".
        mode: "auto", "min" or "max" (as EarlyStopping). Defaults to "auto".
        min_delta: Threshold for a significant change. Defaults to 1e-4 (Keras 2's `epsilon`
            is accepted as its old name).
        cooldown: Defaults to 0.
        min_lr: Lower bound on the rate. Defaults to 0.
    """

ModelCheckpoint = _core.ModelCheckpoint
ModelCheckpoint.__doc__ = """Save the model or its weights during training (Keras 3).

    Args:
        filepath: Where to save; may contain `{epoch}` (1-based), `{batch}` and any log key with
            a Python format spec, e.g. "ckpt/{epoch:02d}-{val_loss:.2f}.signcore". Missing
            folders are created. Files are signcore files (any extension, ".keras" and ".h5"
            included), written atomically.
        monitor: Quantity deciding the "best" model. Defaults to "val_loss".
        verbose: 1 prints "Epoch N: val_loss improved from ... saving model to ...".
        save_best_only: Save only when `monitor` improved (the first epoch always does). With a
            fixed file name the file always holds the best model so far.
        save_weights_only: Save with `save_weights` instead of `save`.
        mode: "auto", "min" or "max". Defaults to "auto".
        save_freq: "epoch" or a number of training batches. Defaults to "epoch".
        initial_value_threshold: Starting "best" value for save_best_only.

    Attributes:
        best: best value seen (kept across fit calls); last_saved: path of the last file written.
    """

LearningRateScheduler = _core.LearningRateScheduler
LearningRateScheduler.__doc__ = """Set the learning rate at the start of every epoch from a schedule (Keras 3).

    Args:
        schedule: Function `(epoch, lr) -> new_lr` (epoch 0-based, lr the current rate, a float);
            a function `(epoch) -> new_lr` also works. It must return a float.
        verbose: 1 prints "Epoch N: LearningRateScheduler setting learning rate to ...".

    Every epoch's logs get "learning_rate".
    """

CSVLogger = _core.CSVLogger
CSVLogger.__doc__ = """Stream every epoch's logs to a CSV file (Keras 3).

    The header is "epoch" and the sorted log keys; rows hold the 0-based epoch and the values.

    Args:
        filename: The CSV file.
        separator: Field separator. Defaults to ",".
        append: Continue an existing file (without a second header) instead of replacing it.
    """

TerminateOnNaN = _core.TerminateOnNaN
TerminateOnNaN.__doc__ = """Stop training as soon as a batch's loss is NaN or infinite (Keras 3).

    Args:
        raise_error: Raise RuntimeError instead of stopping gracefully. Defaults to False.
    """

BackupAndRestore = _core.BackupAndRestore
BackupAndRestore.__doc__ = """Back up the training state and resume an interrupted `fit` exactly (Keras 3).

    At the end of every epoch (or every `save_freq` batches) the weights, the optimizer state
    (slot variables, iteration count, learning rate), the next epoch and the global random state
    are written to `backup_dir/latest.signcore`. When `fit` starts with a backup present, it
    restores all of it and continues from the saved epoch, so an interrupted run ends with the
    same weights as an uninterrupted one (with `shuffle=True` too). Put it last in the callback
    list if other callbacks change the learning rate at the end of an epoch.

    Args:
        backup_dir: Folder for the backup (not shared with other callbacks or runs).
        save_freq: "epoch" or a number of batches. Defaults to "epoch".
        delete_checkpoint: Remove the backup when training finishes normally. Defaults to True.
    """

CyclicLR = _core.CyclicLR
CyclicLR.__doc__ = """Cyclical learning rate, changed after every batch (Smith 2017, arXiv:1506.01186).

    With `it` the batches seen, `cycle = floor(1 + it / (2 * step_size))` and
    `x = |it / step_size - 2 * cycle + 1|`, the rate is
    `base_lr + (max_lr - base_lr) * max(0, 1 - x) * scale`, where scale is 1 ("triangular"),
    `1 / 2 ** (cycle - 1)` ("triangular2") or `gamma ** it` ("exp_range").

    Args:
        base_lr: Lower bound (the rate at the start of each cycle).
        max_lr: Upper bound of the first cycle.
        step_size: Batches in half a cycle (2 to 8 epochs' worth is typical).
        mode: "triangular", "triangular2" or "exp_range".
        gamma: Base of the "exp_range" decay.
        scale_fn: Optional function of one number replacing the mode's scale.
        scale_mode: "cycle" or "iterations": what scale_fn is applied to.

    Attributes:
        history: dict of per-batch lists: "lr" (the rate each batch used), "iterations" and the
            batch logs ("loss", metrics).
        clr_iterations, trn_iterations: batches in the current cycle run / in total.

    Use `_reset(new_base_lr=None, new_max_lr=None, new_step_size=None)` to restart the cycle.
    Every epoch's logs get "learning_rate" (the rate of its last batch).
    """

for _cls in (EarlyStopping, ReduceLROnPlateau, ModelCheckpoint, LearningRateScheduler, CSVLogger,
             TerminateOnNaN, BackupAndRestore, CyclicLR, History):
    _cls.__module__ = __name__
