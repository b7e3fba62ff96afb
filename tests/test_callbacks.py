"""The built-in callbacks' semantics on constructed runs (Keras 3's rules, keras/src/callbacks/):
EarlyStopping, ReduceLROnPlateau, ModelCheckpoint, LearningRateScheduler, CSVLogger,
TerminateOnNaN, BackupAndRestore and LambdaCallback.

The monitored quantities are scripted: a Python callback placed before the one under test writes
the value for each epoch into the logs (callbacks run in order), and records the weights at the
end of every epoch, so the expected decisions and weights are known by hand."""
import os
import re

import numpy as np
import pytest

import signcore
from signcore import callbacks, layers
from signcore.callbacks import Callback


def data(n=32, f=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, f)).astype(np.float32)
    y = np.argmax(x @ rng.normal(size=(f, classes)), axis=1)
    return x, y


def make_model(lr=0.1, seed=2, optimizer=None):
    signcore.utils.set_random_seed(seed)
    m = signcore.Sequential([layers.Dense(5, activation="tanh", input_shape=(4,)), layers.Dense(3, activation="softmax")])
    m.compile(optimizer=optimizer or signcore.optimizers.SGD(learning_rate=lr), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    return m


class Script(Callback):
    """Writes scripted values into the epoch logs and records the weights after every epoch."""

    def __init__(self, **series):
        super().__init__()
        self.series = series
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        for key, values in self.series.items():
            logs[key] = float(values[epoch])
        self.weights.append(self.model.get_weights())


def same(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a, b))


def fit(m, cbs, epochs, **kw):
    x, y = data()
    kw.setdefault("verbose", 0)
    return m.fit(x, y, batch_size=8, epochs=epochs, callbacks=cbs, shuffle=False, **kw)


# ------------------------------------------------------------------------------------------------
# EarlyStopping

def test_early_stopping_stops_after_patience_and_restores_best(capsys):
    m = make_model()
    script = Script(val_loss=[1.0, 0.8, 0.9, 0.85, 0.95, 0.7, 0.6])
    es = callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True, verbose=1)
    hist = fit(m, [script, es], epochs=7)
    # epoch 1 is best; epochs 2 and 3 do not improve -> stop at the end of epoch 3 (0-based).
    assert hist.epoch == [0, 1, 2, 3]
    assert es.stopped_epoch == 3 and es.best_epoch == 1 and es.best == 0.8
    assert same(m.get_weights(), script.weights[1])
    assert not same(script.weights[3], script.weights[1])
    out = capsys.readouterr().out
    assert "Epoch 4: early stopping\n" in out
    assert "Restoring model weights from the end of the best epoch: 2.\n" in out


def test_early_stopping_restores_best_also_without_stopping():
    m = make_model()
    script = Script(val_loss=[1.0, 0.5, 0.7, 0.9])
    es = callbacks.EarlyStopping(patience=10, restore_best_weights=True)
    hist = fit(m, [script, es], epochs=4)
    assert hist.epoch == [0, 1, 2, 3] and es.stopped_epoch == 0
    assert same(m.get_weights(), script.weights[1])


def test_early_stopping_keeps_last_weights_by_default():
    m = make_model()
    script = Script(val_loss=[1.0, 0.5, 0.7, 0.9])
    es = callbacks.EarlyStopping(patience=1)
    hist = fit(m, [script, es], epochs=6)
    assert hist.epoch == [0, 1, 2]
    assert same(m.get_weights(), script.weights[2])


@pytest.mark.parametrize("series,kwargs,epochs_run", [
    ([1.0, 0.95, 0.93, 0.9], dict(min_delta=0.1, patience=1), 2),  # 0.95 is not 0.1 better
    ([1.0, 0.95, 0.93, 0.9], dict(min_delta=0.01, patience=1), 4),
    ([0.9, 0.95, 0.97, 0.99], dict(patience=2), 3),
    ([0.9, 0.95, 0.97, 0.99], dict(patience=2, baseline=0.5), 2),  # never beats the baseline
    ([1.0, 1.0, 1.0, 1.0, 1.0], dict(patience=1, start_from_epoch=3), 5),
    ([1.0, 1.0, 1.0, 1.0, 1.0], dict(patience=0), 2),  # never stops after the first epoch
])
def test_early_stopping_rules(series, kwargs, epochs_run):
    m = make_model()
    es = callbacks.EarlyStopping(monitor="val_loss", **kwargs)
    hist = fit(m, [Script(val_loss=series), es], epochs=len(series))
    assert len(hist.epoch) == epochs_run


def test_early_stopping_mode_auto_maximises_accuracy_and_auc():
    for monitor in ("val_accuracy", "val_auc", "val_precision"):
        m = make_model()
        es = callbacks.EarlyStopping(monitor=monitor, patience=1, restore_best_weights=True)
        script = Script(**{monitor: [0.5, 0.7, 0.6, 0.8]})
        hist = fit(m, [script, es], epochs=4)
        assert hist.epoch == [0, 1, 2] and es.best == 0.7
        assert same(m.get_weights(), script.weights[1])
    m = make_model()
    es = callbacks.EarlyStopping(monitor="val_accuracy", mode="min", patience=1)
    hist = fit(m, [Script(val_accuracy=[0.5, 0.7, 0.6, 0.8]), es], epochs=4)
    assert hist.epoch == [0, 1]


def test_early_stopping_missing_monitor_warns_and_keeps_training():
    m = make_model()
    es = callbacks.EarlyStopping(monitor="val_loss", patience=0)
    with pytest.warns(UserWarning, match=r"Early stopping conditioned on metric `val_loss` which is not available. "
                                         r"Available metrics are: loss,accuracy"):
        hist = fit(m, [es], epochs=3)
    assert hist.epoch == [0, 1, 2]


def test_early_stopping_on_real_validation_and_unknown_mode():
    with pytest.warns(UserWarning, match="mode 'sideways' is unknown"):
        es = callbacks.EarlyStopping(mode="sideways")
    assert es.mode == "auto"
    m = make_model(lr=0.5)
    x, y = data()
    es = callbacks.EarlyStopping(monitor="loss", patience=0, restore_best_weights=True)
    hist = m.fit(x, y, epochs=30, batch_size=8, callbacks=[es], verbose=0)
    losses = hist.history["loss"]
    if es.stopped_epoch:  # stopped: the last epoch was not better than the one before
        assert losses[-1] >= losses[-2]
    assert es.best == min(losses)


# ------------------------------------------------------------------------------------------------
# ReduceLROnPlateau

def f32(v):
    return float(np.float32(v))


def test_reduce_lr_on_plateau_follows_hand_computed_schedule(capsys):
    m = make_model(lr=0.1)
    series = [1.0] * 6 + [0.5] * 6
    rl = callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, cooldown=1, min_lr=0.02, verbose=1)
    hist = fit(m, [Script(val_loss=series), rl], epochs=12)
    # Written out: reductions at the ends of epochs 3, 5 and 9 (1-based); the last one is clipped to
    # min_lr, after which lr == min_lr and nothing more happens. learning_rate logs the rate used.
    expected = [0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.025, 0.025, 0.02, 0.02, 0.02]
    assert hist.history["learning_rate"] == [f32(v) for v in expected]
    assert m.optimizer.learning_rate == pytest.approx(0.02)
    out = capsys.readouterr().out
    msgs = re.findall(r"\nEpoch (\d+): ReduceLROnPlateau reducing learning rate to (\S+)\.\n", out)
    assert msgs == [("3", repr(f32(0.05))), ("5", repr(f32(0.025))), ("9", repr(f32(0.02)))]
    assert repr(f32(0.05)) == "0.05000000074505806"


def test_reduce_lr_on_plateau_takes_effect_on_training():
    # patience=0: epoch 1 sets the best, epoch 2 does not improve -> the rate drops to 0.01 for
    # epoch 3 (and to 0.001 after it). Same weights as training 2 epochs at 0.1 and 1 at 0.01.
    x, y = data()
    m = make_model(lr=0.1)
    rl = callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.1, patience=0)
    m.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, callbacks=[Script(val_loss=[1.0] * 3), rl])
    ref = make_model(lr=0.1)
    ref.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    ref.optimizer.learning_rate = f32(0.1) * 0.1
    ref.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert m.optimizer.learning_rate == pytest.approx(0.001)
    for a, b in zip(m.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)


def test_reduce_lr_on_plateau_max_mode_min_delta_and_errors():
    m = make_model(lr=0.1)
    rl = callbacks.ReduceLROnPlateau(monitor="val_accuracy", factor=0.5, patience=1, min_delta=0.05)
    hist = fit(m, [Script(val_accuracy=[0.5, 0.54, 0.6, 0.7]), rl], epochs=4)
    # 0.54 is not 0.05 better than 0.5 -> reduce after epoch 2; 0.6 and 0.7 improve.
    assert hist.history["learning_rate"] == [f32(0.1), f32(0.1), f32(0.05), f32(0.05)]
    with pytest.raises(ValueError, match="factor >= 1.0"):
        callbacks.ReduceLROnPlateau(factor=1.0)
    rl = callbacks.ReduceLROnPlateau(epsilon=0.5)  # Keras 2's name of min_delta
    assert rl.min_delta == 0.5
    m = make_model()
    with pytest.warns(UserWarning, match="Learning rate reduction is conditioned on metric `val_loss`"):
        hist = fit(m, [callbacks.ReduceLROnPlateau()], epochs=2)
    assert hist.history["learning_rate"] == [f32(0.1)] * 2


# ------------------------------------------------------------------------------------------------
# ModelCheckpoint

def test_model_checkpoint_keeps_exactly_the_best(tmp_path, capsys):
    path = tmp_path / "best.signcore"
    m = make_model()
    script = Script(val_loss=[0.9, 0.7, 0.8, 0.6, 0.65])
    ck = callbacks.ModelCheckpoint(path, monitor="val_loss", save_best_only=True, verbose=1)
    fit(m, [script, ck], epochs=5)
    saved = signcore.saving.load_model(path)
    assert same(saved.get_weights(), script.weights[3])
    assert ck.best == 0.6 and ck.last_saved == str(path)
    assert sorted(os.listdir(tmp_path)) == ["best.signcore"]  # atomic writes leave no temporaries
    out = capsys.readouterr().out
    assert f"\nEpoch 1: val_loss improved from inf to 0.90000, saving model to {path}\n" in out
    assert f"\nEpoch 2: val_loss improved from 0.90000 to 0.70000, saving model to {path}\n" in out
    assert "\nEpoch 3: val_loss did not improve from 0.70000\n" in out
    assert "\nEpoch 5: val_loss did not improve from 0.60000\n" in out
    # The saved model is complete: compiled, with the optimizer state, and it predicts the same.
    x, _ = data()
    m.set_weights(script.weights[3])
    np.testing.assert_allclose(saved.predict(x, verbose=0), m.predict(x, verbose=0), rtol=1e-6)


def test_model_checkpoint_path_template_every_epoch(tmp_path):
    m = make_model()
    script = Script(val_loss=[0.9, 0.7, 0.8])
    pattern = str(tmp_path / "ckpt" / "model-{epoch:02d}-{val_loss:.2f}.weights.h5")
    ck = callbacks.ModelCheckpoint(pattern, save_weights_only=True)
    fit(m, [script, ck], epochs=3)
    names = sorted(os.listdir(tmp_path / "ckpt"))  # the folder was created
    assert names == ["model-01-0.90.weights.h5", "model-02-0.70.weights.h5", "model-03-0.80.weights.h5"]
    for epoch, name in enumerate(names):
        fresh = make_model(seed=99)
        fresh.load_weights(tmp_path / "ckpt" / name)
        assert same(fresh.get_weights(), script.weights[epoch])


def test_model_checkpoint_max_mode_and_batch_frequency(tmp_path, capsys):
    m = make_model()
    ck = callbacks.ModelCheckpoint(tmp_path / "acc.signcore", monitor="val_accuracy", save_best_only=True, verbose=1)
    fit(m, [Script(val_accuracy=[0.5, 0.4, 0.6]), ck], epochs=3)
    out = capsys.readouterr().out
    assert "Epoch 1: val_accuracy improved from -inf to 0.50000" in out
    assert "Epoch 2: val_accuracy did not improve from 0.50000" in out
    m = make_model()
    ck = callbacks.ModelCheckpoint(str(tmp_path / "b-{epoch}-{batch}.signcore"), save_freq=3)
    fit(m, [ck], epochs=2)  # 4 batches per epoch: saves after batches 3, 6 (= epoch 2, batch 2)
    assert sorted(p for p in os.listdir(tmp_path) if p.startswith("b-")) == ["b-1-3.signcore", "b-2-2.signcore"]
    assert ck.save_freq == 3


def test_model_checkpoint_missing_monitor_and_bad_arguments(tmp_path):
    m = make_model()
    ck = callbacks.ModelCheckpoint(tmp_path / "x.signcore", save_best_only=True)
    with pytest.warns(UserWarning, match="Can save best model only with val_loss available"):
        fit(m, [ck], epochs=1)
    assert not (tmp_path / "x.signcore").exists()
    with pytest.raises(ValueError, match="save_freq"):
        callbacks.ModelCheckpoint("a.signcore", save_freq="sometimes")
    ck = callbacks.ModelCheckpoint(str(tmp_path / "{epoch}-{val_los}.signcore"))
    with pytest.raises(ValueError, match="val_los"):
        fit(make_model(), [Script(val_loss=[1.0]), ck], epochs=1)
    (tmp_path / "dir").mkdir()
    with pytest.raises(OSError, match="non-directory"):
        fit(make_model(), [callbacks.ModelCheckpoint(tmp_path / "dir")], epochs=1)


@pytest.mark.parametrize("pattern,values", [
    ("m-{epoch:02d}-{val_loss:.2f}.keras", {"epoch": 3, "val_loss": 0.123456}),
    ("{epoch}_{loss}", {"epoch": 12, "loss": 0.1}),
    ("{epoch:03}|{acc:.1%}|{acc:e}|{acc:.3g}|{acc:8.3f}|{acc:<8.2f}|{acc:+.1f}", {"epoch": 7, "acc": 0.98765}),
    ("{{literal}}-{epoch:>4d}-{x:.3}-{y:010.4f}", {"epoch": 5, "x": 2.0, "y": -3.14159}),
    ("{big}-{tiny}-{neg:.2e}", {"big": 1e16, "tiny": 1.5e-05, "neg": -0.000123}),
])
def test_checkpoint_path_formatting_matches_python(pattern, values):
    assert signcore._core.format_template(pattern, values) == pattern.format(**values)


# ------------------------------------------------------------------------------------------------
# LearningRateScheduler, CSVLogger, TerminateOnNaN, LambdaCallback

def test_learning_rate_scheduler(capsys):
    seen = []

    def schedule(epoch, lr):
        seen.append((epoch, lr))
        return lr if epoch < 2 else lr * 0.5

    m = make_model(lr=0.2)
    hist = fit(m, [callbacks.LearningRateScheduler(schedule, verbose=1)], epochs=4)
    assert [e for e, _ in seen] == [0, 1, 2, 3]
    assert seen[2][1] == pytest.approx(0.2) and seen[3][1] == pytest.approx(0.1)
    assert hist.history["learning_rate"] == [f32(0.2), f32(0.2), f32(0.1), f32(0.05)]
    out = capsys.readouterr().out
    assert "\nEpoch 3: LearningRateScheduler setting learning rate to 0.10000000149011612.\n" in out
    # The old one-argument form works too; a non-float result is an error.
    m = make_model()
    hist = fit(m, [callbacks.LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1))], epochs=2)
    assert hist.history["learning_rate"] == [f32(0.01), f32(0.02)]
    with pytest.raises(ValueError, match="should be a float"):
        fit(make_model(), [callbacks.LearningRateScheduler(lambda e, lr: 1)], epochs=1)


def test_csv_logger_writes_like_keras(tmp_path):
    path = tmp_path / "log.csv"
    m = make_model()
    x, y = data()
    hist = m.fit(x, y, batch_size=8, epochs=2, validation_data=(x, y), verbose=0, callbacks=[callbacks.CSVLogger(path)])
    raw = path.read_bytes().decode()
    lines = raw.split("\r\n")
    assert lines[0] == "epoch,accuracy,loss,val_accuracy,val_loss" and lines[-1] == ""
    h = hist.history
    for e in range(2):
        assert lines[1 + e] == ",".join([str(e)] + [repr(h[k][e]) for k in ("accuracy", "loss", "val_accuracy", "val_loss")])
    # append=True continues the file without a second header.
    m.fit(x, y, batch_size=8, epochs=1, verbose=0, validation_data=(x, y),
          callbacks=[callbacks.CSVLogger(path, separator=";", append=True)])
    lines = path.read_bytes().decode().split("\r\n")
    assert len(lines) == 5 and lines[3].startswith("0;") and lines[3].count(";") == 4
    m.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callbacks.CSVLogger(path)])
    assert path.read_bytes().decode().split("\r\n")[0] == "epoch,accuracy,loss"


def test_terminate_on_nan(capsys):
    class Poison(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2:
                logs["loss"] = float("nan")

    class Count(Callback):
        def __init__(self):
            super().__init__()
            self.batches = 0

        def on_train_batch_end(self, batch, logs=None):
            self.batches += 1

    count = Count()
    hist = fit(make_model(), [Poison(), callbacks.TerminateOnNaN(), count], epochs=5)
    assert hist.epoch == [0] and count.batches == 3
    assert "Batch 2: Invalid loss, terminating training\n" in capsys.readouterr().out
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 2"):
        fit(make_model(), [Poison(), callbacks.TerminateOnNaN(raise_error=True)], epochs=1)
    # A real divergence: linear regression with a learning rate far too large blows up.
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)).astype(np.float32), rng.normal(size=(32, 1)).astype(np.float32)
    signcore.utils.set_random_seed(1)
    m = signcore.Sequential([layers.Dense(1, input_shape=(4,))])
    m.compile(optimizer=signcore.optimizers.SGD(learning_rate=10.0), loss="mse")
    hist = m.fit(x, y, batch_size=8, epochs=50, verbose=0, callbacks=[callbacks.TerminateOnNaN()])
    assert len(hist.epoch) < 50 and not np.isfinite(hist.history["loss"][-1])
    assert np.all(np.isfinite(hist.history["loss"][:-1]))


def test_lambda_callback_and_batch_aliases():
    events = []
    cb = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: events.append(("epoch", e, sorted(logs))),
                                  on_batch_end=lambda b, logs: events.append(("batch", b)))
    fit(make_model(), [cb], epochs=1)
    assert events == [("batch", 0), ("batch", 1), ("batch", 2), ("batch", 3), ("epoch", 0, ["accuracy", "loss"])]

    class Both(Callback):  # on_train_batch_end wins over Keras 2's on_batch_end alias
        def __init__(self):
            super().__init__()
            self.calls = []

        def on_train_batch_end(self, batch, logs=None):
            self.calls.append("train_batch_end")

        def on_batch_end(self, batch, logs=None):
            self.calls.append("batch_end")

    both = Both()
    fit(make_model(), [both], epochs=1)
    assert both.calls == ["train_batch_end"] * 4
    with pytest.raises(TypeError):
        callbacks.LambdaCallback(on_epoch_end=3)


# ------------------------------------------------------------------------------------------------
# BackupAndRestore

# Resuming needs two changes in cpp/src/model.cpp (lead): fit starts from Callback::resume_epoch()
# after on_train_begin, and ArrayBatchSource draws each pass's permutation when the pass starts.
# Remove this marker when they are in.


class Interrupt(Callback):
    def __init__(self, at_epoch, at_batch=None):
        super().__init__()
        self.at_epoch, self.at_batch = at_epoch, at_batch
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        if self.at_batch is None and epoch == self.at_epoch:
            raise KeyboardInterrupt("simulated interruption")

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.at_epoch and batch == self.at_batch:
            raise KeyboardInterrupt("simulated interruption")


def dropout_model(seed=4, optimizer="adam"):
    signcore.utils.set_random_seed(seed)
    m = signcore.Sequential([layers.Dense(16, activation="relu", input_shape=(4,)), layers.Dropout(0.3),
                             layers.Dense(3, activation="softmax")])
    m.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def decay():
    # The new rate depends on the current one, so a resumed run needs the learning rate restored.
    return callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.7 if epoch > 0 else lr)


def resume_run(tmp_path, shuffle, interrupt, epochs=5):
    x, y = data(n=40)
    # Uninterrupted reference.
    ref = dropout_model()
    signcore.utils.set_random_seed(11)
    ref_hist = ref.fit(x, y, batch_size=8, epochs=epochs, shuffle=shuffle, verbose=0,
                       callbacks=[decay()])
    # Interrupted, then resumed in a new fit call (after other random draws in between).
    m = dropout_model()
    backup = callbacks.BackupAndRestore(tmp_path / "backup")
    signcore.utils.set_random_seed(11)
    with pytest.raises(KeyboardInterrupt):
        m.fit(x, y, batch_size=8, epochs=epochs, shuffle=shuffle, verbose=0,
              callbacks=[decay(), backup, interrupt])
    assert (tmp_path / "backup" / "latest.signcore").exists()
    signcore.utils.set_random_seed(12345)
    np.random.default_rng(0)
    hist = m.fit(x, y, batch_size=8, epochs=epochs, shuffle=shuffle, verbose=0,
                 callbacks=[decay(), backup])
    return ref, ref_hist, m, hist


@pytest.mark.parametrize("shuffle", [False, True])
def test_backup_and_restore_resumes_exactly(tmp_path, shuffle):
    ref, ref_hist, m, hist = resume_run(tmp_path, shuffle, Interrupt(at_epoch=3))
    assert hist.epoch == [3, 4]  # only the epochs that were left
    assert same(m.get_weights(), ref.get_weights())
    np.testing.assert_array_equal(hist.history["loss"], ref_hist.history["loss"][3:])
    assert m.optimizer.iterations == ref.optimizer.iterations
    assert m.optimizer.learning_rate == ref.optimizer.learning_rate
    assert not (tmp_path / "backup").exists()  # deleted once training finished


def test_backup_and_restore_mid_epoch_interruption(tmp_path):
    # Interrupted in the middle of epoch 2: the resumed fit redoes epoch 2 from the backup taken at
    # the end of epoch 1 and still ends exactly like the uninterrupted run.
    ref, ref_hist, m, hist = resume_run(tmp_path, True, Interrupt(at_epoch=2, at_batch=2))
    assert hist.epoch == [2, 3, 4]
    assert same(m.get_weights(), ref.get_weights())


def test_backup_and_restore_arguments(tmp_path):
    with pytest.raises(ValueError, match="Empty `backup_dir`"):
        callbacks.BackupAndRestore("")
    with pytest.raises(ValueError, match="save_freq"):
        callbacks.BackupAndRestore(tmp_path, save_freq=0)
    b = callbacks.BackupAndRestore(tmp_path / "keep", delete_checkpoint=False)
    fit(make_model(), [b], epochs=2)
    header = signcore.saving.read_header(tmp_path / "keep" / "latest.signcore")
    assert header["metadata"]["epoch"] == 2 and isinstance(header["metadata"]["rng_state"], str)
