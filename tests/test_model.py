"""The model API and the C++ batch loop: fit/evaluate/predict semantics, History, callbacks,
determinism, Ctrl-C, summary, and bad input. End-to-end numbers are checked against PyTorch and
against NumPy written from the Keras equations."""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import signcore
from signcore import layers
from signcore.callbacks import Callback


def make_data(n=96, f=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, f)).astype(np.float32)
    w = rng.normal(size=(f, classes))
    y = np.argmax(x @ w, axis=1).astype(np.int64)
    return x, y


def mlp(f=6, classes=3, hidden=8, seed=1, activation="tanh"):
    signcore.utils.set_random_seed(seed)
    return signcore.Sequential([
        layers.Dense(hidden, activation=activation, input_shape=(f,)),
        layers.Dense(classes, activation="softmax"),
    ])


# ------------------------------------------------------------------------------------------------
# End to end against independent implementations

def test_sgd_training_matches_pytorch():
    torch = pytest.importorskip("torch")
    x, y = make_data()
    model = mlp()
    model.compile(optimizer=signcore.optimizers.SGD(learning_rate=0.1, momentum=0.9), loss="sparse_categorical_crossentropy")
    w0 = model.get_weights()

    t1 = torch.nn.Linear(6, 8)
    t2 = torch.nn.Linear(8, 3)
    with torch.no_grad():
        t1.weight.copy_(torch.tensor(w0[0].T)); t1.bias.copy_(torch.tensor(w0[1]))
        t2.weight.copy_(torch.tensor(w0[2].T)); t2.bias.copy_(torch.tensor(w0[3]))
    params = list(t1.parameters()) + list(t2.parameters())
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    xt, yt = torch.tensor(x), torch.tensor(y)
    torch_losses = []
    for epoch in range(3):
        for b in range(0, len(x), 16):
            opt.zero_grad()
            probs = torch.softmax(t2(torch.tanh(t1(xt[b:b + 16]))), dim=1)
            loss = torch.nn.functional.nll_loss(torch.log(probs.clamp(1e-7, 1 - 1e-7)), yt[b:b + 16])
            loss.backward()
            opt.step()
            torch_losses.append(loss.item())

    hist = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    got = model.get_weights()
    want = [t1.weight.detach().numpy().T, t1.bias.detach().numpy(), t2.weight.detach().numpy().T, t2.bias.detach().numpy()]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
    # The epoch loss is the sample-weighted mean of the batch losses, as Keras reports it.
    per_epoch = np.array(torch_losses).reshape(3, -1).mean(axis=1)
    np.testing.assert_allclose(hist.history["loss"], per_epoch, rtol=1e-4)


def test_evaluate_and_predict_match_numpy_forward():
    x, y = make_data(n=50)
    model = mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    k1, b1, k2, b2 = model.get_weights()
    logits = np.tanh(x @ k1 + b1) @ k2 + b2
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(model.predict(x, batch_size=7, verbose=0), p, rtol=1e-5, atol=1e-6)
    loss, acc = model.evaluate(x, y, batch_size=7, verbose=0)
    want_loss = -np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1 - 1e-7)))
    assert loss == pytest.approx(want_loss, rel=1e-5)
    assert acc == pytest.approx(np.mean(p.argmax(1) == y), abs=1e-7)
    d = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(d) == ["loss", "accuracy"]


def test_train_on_batch_returns_pre_update_loss_and_updates_weights():
    x, y = make_data(n=20)
    model = mlp()
    model.compile(optimizer=signcore.optimizers.SGD(learning_rate=0.5), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    before_loss, _ = model.test_on_batch(x, y)
    loss, acc = model.train_on_batch(x, y)
    assert loss == pytest.approx(before_loss, rel=1e-6)
    after_loss, _ = model.test_on_batch(x, y)
    assert after_loss < before_loss


def test_fit_learns_and_history_has_keras_keys():
    x, y = make_data(n=300)
    model = mlp(hidden=16)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y, epochs=15, batch_size=16, validation_split=0.2, verbose=0)
    assert list(hist.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert hist.epoch == list(range(15))
    assert all(len(v) == 15 for v in hist.history.values())
    assert hist.history["loss"][-1] < hist.history["loss"][0] * 0.6
    assert hist.history["val_accuracy"][-1] > 0.8
    assert hist.model is model and model.history is hist
    assert hist.params == {"verbose": 0, "epochs": 15, "steps": 15}


def test_validation_split_uses_last_fraction_before_shuffling():
    x, y = make_data(n=100)
    model = mlp()
    model.compile(optimizer=signcore.optimizers.SGD(learning_rate=0.0), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y, epochs=1, validation_split=0.25, verbose=0)
    loss, acc = model.evaluate(x[75:], y[75:], verbose=0)
    assert hist.history["val_loss"][0] == pytest.approx(loss, rel=1e-6)
    assert hist.history["val_accuracy"][0] == pytest.approx(acc)


def test_one_hot_targets_with_categorical_crossentropy():
    x, y = make_data(n=120)
    model = mlp()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, signcore.utils.to_categorical(y, 3), epochs=5, verbose=0)
    assert "accuracy" in hist.history and hist.history["loss"][-1] < hist.history["loss"][0]


def test_initial_epoch_and_epochs_count():
    x, y = make_data(n=32)
    model = mlp()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    hist = model.fit(x, y, epochs=5, initial_epoch=3, verbose=0)
    assert hist.epoch == [3, 4]


# ------------------------------------------------------------------------------------------------
# Determinism

def trained_weights(seed, threads=None):
    x, y = make_data(n=64)
    model = mlp(seed=seed)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    signcore.utils.set_random_seed(seed)
    model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    return model.get_weights()


def test_same_seed_gives_bit_identical_weights():
    a, b = trained_weights(7), trained_weights(7)
    for wa, wb in zip(a, b):
        assert np.array_equal(wa, wb)
    c = trained_weights(8)
    assert not np.array_equal(a[0], c[0])


def test_dropout_and_shuffle_follow_the_seed():
    x, y = make_data(n=64)

    def run():
        signcore.utils.set_random_seed(3)
        m = signcore.Sequential([layers.Dense(16, activation="relu", input_shape=(6,)), layers.Dropout(0.5), layers.Dense(3, activation="softmax")])
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        m.fit(x, y, epochs=2, batch_size=8, verbose=0)
        return m.get_weights()

    for wa, wb in zip(run(), run()):
        assert np.array_equal(wa, wb)


def test_dropout_passes_its_input_through_in_inference_and_drops_in_training():
    """Inference forwards skip Dropout layers (Model::find_inference_identities): on the model's
    input, between layers and as the model's output, predictions are the plain layers' NumPy
    result; training steps still drop (the training loss differs from the inference one)."""
    rng = np.random.default_rng(4)
    w = rng.normal(size=(6, 4)).astype(np.float32)
    b = rng.normal(size=4).astype(np.float32)
    x = rng.normal(size=(32, 6)).astype(np.float32)
    y = rng.normal(size=(32, 4)).astype(np.float32)
    only = signcore.Sequential([layers.Input((6,)), layers.Dropout(0.5)])
    np.testing.assert_array_equal(only.predict_on_batch(x), x)
    m = signcore.Sequential([layers.Input((6,)), layers.Dropout(0.5), layers.Dropout(0.2),
                             layers.Dense(4), layers.Dropout(0.3)])
    m.compile(optimizer=signcore.optimizers.SGD(0.0), loss="mse")
    m.set_weights([w, b])
    expected = x @ w + b
    np.testing.assert_allclose(m.predict_on_batch(x), expected, rtol=1e-5, atol=1e-6)
    inference_loss = float(np.mean((expected - y) ** 2))
    np.testing.assert_allclose(m.test_on_batch(x, y), inference_loss, rtol=1e-5)
    assert abs(m.train_on_batch(x, y) - inference_loss) > 1e-3 * inference_loss
    np.testing.assert_allclose(m.predict_on_batch(x), expected, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# Callbacks and learning rate

class Recorder(Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin", None))

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", batch, sorted(logs)))

    def on_test_begin(self, logs=None):
        self.calls.append(("test_begin", None))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, dict(logs)))
        logs["custom"] = 42.0

    def on_train_end(self, logs=None):
        self.calls.append(("train_end", None))


def test_python_callback_hooks_order_and_logs():
    x, y = make_data(n=20)
    model = mlp()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rec = Recorder()
    hist = model.fit(x, y, batch_size=10, epochs=2, validation_data=(x, y), callbacks=[rec], verbose=0)
    kinds = [c[0] for c in rec.calls]
    assert kinds == ["train_begin", "epoch_begin", "batch_end", "batch_end", "test_begin", "epoch_end",
                     "epoch_begin", "batch_end", "batch_end", "test_begin", "epoch_end", "train_end"]
    assert rec.calls[2][2] == ["accuracy", "loss"]
    assert set(rec.calls[5][2]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert rec.model is model and rec.params["epochs"] == 2
    # A key a callback adds to the epoch logs reaches History, which runs after user callbacks.
    assert hist.history["custom"] == [42.0, 42.0]


def test_stop_training_from_callback():
    class StopAt(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.stop_training = True

    x, y = make_data(n=20)
    model = mlp()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    hist = model.fit(x, y, epochs=10, callbacks=[StopAt()], verbose=0)
    assert hist.epoch == [0, 1]


def test_learning_rate_written_from_a_callback_takes_effect_next_step():
    x, y = make_data(n=16)

    class ZeroLR(Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.model.optimizer.learning_rate = 0.0

    model = mlp()
    model.compile(optimizer=signcore.optimizers.SGD(learning_rate=0.5), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, callbacks=[ZeroLR()], verbose=0)
    after_first = model.get_weights()
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(after_first, model.get_weights()):
        assert np.array_equal(a, b)  # lr stayed 0: nothing moved after the first step
    assert model.optimizer.learning_rate == 0.0

    reference = mlp()
    reference.compile(optimizer=signcore.optimizers.SGD(learning_rate=0.5), loss="sparse_categorical_crossentropy")
    reference.train_on_batch(x[:8], y[:8])
    for a, b in zip(after_first, reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_exception_in_callback_propagates_and_model_stays_usable():
    class Boom(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                raise RuntimeError("boom from callback")

    x, y = make_data(n=40)
    model = mlp()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(RuntimeError, match="boom from callback"):
        model.fit(x, y, batch_size=8, callbacks=[Boom()], verbose=0)
    assert np.isfinite(model.predict(x, verbose=0)).all()
    model.fit(x, y, batch_size=8, verbose=0)


# ------------------------------------------------------------------------------------------------
# Ctrl-C

def test_keyboard_interrupt_stops_at_batch_boundary():
    class Interrupt(Callback):
        def __init__(self):
            super().__init__()
            self.batches = 0

        def on_train_batch_end(self, batch, logs=None):
            self.batches += 1
            if batch == 2:
                os.kill(os.getpid(), signal.SIGINT)

    x, y = make_data(n=200)
    model = mlp()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    cb = Interrupt()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=10, epochs=5, callbacks=[cb], verbose=0)
    assert cb.batches == 3  # stopped before batch 3 started
    assert np.isfinite(model.predict(x, verbose=0)).all()
    hist = model.fit(x, y, batch_size=10, epochs=1, verbose=0)  # still trainable
    assert np.isfinite(hist.history["loss"][0])


def test_sigint_from_outside_during_long_fit():
    script = textwrap.dedent("""
        import sys, numpy as np, signcore
        from signcore import layers
        from signcore.callbacks import Callback
        class Ready(Callback):
            def on_train_batch_end(self, batch, logs=None):
                if batch == 5:
                    print("training", flush=True)
        x = np.random.rand(20000, 64).astype("float32"); y = (x.sum(1) > 32).astype("float32")
        m = signcore.Sequential([layers.Dense(256, activation="relu", input_shape=(64,)), layers.Dense(1, activation="sigmoid")])
        m.compile(optimizer="adam", loss="binary_crossentropy")
        try:
            m.fit(x, y, epochs=1000, batch_size=32, callbacks=[Ready()], verbose=0)
        except KeyboardInterrupt:
            p = m.predict(x[:10], verbose=0)
            print("interrupted", bool(np.isfinite(p).all()), flush=True)
            sys.exit(0)
        sys.exit(3)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ))
    assert proc.stdout.readline().strip() == "training"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.strip() == "interrupted True"


# ------------------------------------------------------------------------------------------------
# summary, weights, layers

def test_summary_table_and_totals(capsys):
    model = signcore.Sequential([
        layers.Dense(512, input_shape=(4096,), name="First-Affine"),
        layers.Activation("relu", name="Fifth-Relu"),
        layers.Dropout(0.5, name="Third-Dropout"),
        layers.Dense(10, name="Final-Connected-Layer"),
        layers.Activation("softmax", name="Softmax"),
    ], name="seq")
    model.summary()
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == 'Model: "seq"'
    # Keras truncates the first column at 28 characters, exactly as seed 001 shows.
    assert "First-Affine (Dense)         (None, 512)               2097664   " in lines
    assert "Final-Connected-Layer (Dense (None, 10)                5130      " in lines
    assert "Total params: 2,102,794 (8.02 MB)" in lines  # Keras 3 adds the float32 size
    assert "Trainable params: 2,102,794 (8.02 MB)" in lines
    assert "Non-trainable params: 0 (0.00 B)" in lines
    assert not any(l.startswith("Optimizer params") for l in lines)
    assert model.count_params() == 2_102_794
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.train_on_batch(np.zeros((2, 4096), np.float32), np.array([1, 2]))
    printed = []
    model.summary(print_fn=printed.append)
    assert "Optimizer params: 4,205,590 (16.04 MB)" in printed  # Adam: 2P + 2
    # Keras 3 counts the optimizer's variables in the total once it is built.
    assert "Total params: 6,308,384 (24.06 MB)" in printed


def test_weights_views_and_layer_access():
    model = mlp()
    assert [w.shape for w in model.trainable_weights] == [(6, 8), (8,), (8, 3), (3,)]
    assert model.non_trainable_weights == []
    dense = model.get_layer(index=0)
    assert model.get_layer(dense.name) is dense
    kernel = model.weights[0]
    kernel.assign(np.ones((6, 8)))
    assert np.array_equal(model.get_weights()[0], np.ones((6, 8), np.float32))
    dense.trainable = False
    assert [w.shape for w in model.trainable_weights] == [(8, 3), (3,)]
    assert model.count_params() == 6 * 8 + 8 + 8 * 3 + 3
    with pytest.raises(ValueError, match="No such layer"):
        model.get_layer("nope")


def test_frozen_layer_does_not_move():
    x, y = make_data(n=32)
    model = mlp()
    model.layers[0].trainable = False
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    before = model.get_weights()
    model.fit(x, y, epochs=2, verbose=0)
    after = model.get_weights()
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])
    assert not np.array_equal(before[2], after[2])


def test_set_weights_round_trip_and_errors():
    model = mlp()
    w = [np.random.rand(*a.shape).astype(np.float32) for a in model.get_weights()]
    model.set_weights(w)
    for a, b in zip(model.get_weights(), w):
        assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="expects a list of 4 arrays.*Received: a list of 3"):
        model.set_weights(w[:3])
    bad = list(w)
    bad[2] = np.zeros((3, 8), np.float32)
    with pytest.raises(ValueError, match=r"shape \(8, 3\).*Received: an array of shape \(3, 8\)"):
        model.set_weights(bad)
    for a, b in zip(model.get_weights(), w):  # nothing changed by the failed call
        assert np.array_equal(a, b)


def test_build_from_data_and_input_object():
    model = signcore.Sequential([layers.Dense(4), layers.Dense(2)])
    with pytest.raises(ValueError, match="not yet been built"):
        model.summary()
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.zeros((8, 5), np.float32), np.zeros((8, 2), np.float32), verbose=0)
    assert model.count_params() == 5 * 4 + 4 + 4 * 2 + 2
    m2 = signcore.Sequential([signcore.Input((5,)), layers.Dense(3)])
    assert m2.count_params() == 18
    with pytest.raises(ValueError, match="no layers"):
        signcore.Sequential().build((None, 7))


def test_predict_output_is_a_numpy_array_of_the_right_shape():
    model = mlp()
    out = model.predict(np.zeros((5, 6), np.float32), verbose=0)
    assert isinstance(out, np.ndarray) and out.shape == (5, 3) and out.dtype == np.float32
    assert model.predict_on_batch(np.zeros((2, 6))).shape == (2, 3)
    assert model.predict(np.zeros((0, 6), np.float32), verbose=0).shape == (0, 3)


# ------------------------------------------------------------------------------------------------
# Bad input: clear exceptions, never a crash

@pytest.fixture
def compiled():
    model = mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_wrong_feature_shape(compiled):
    with pytest.raises(ValueError, match=r"\(None, 6\).*Received: \(10, 5\)"):
        compiled.fit(np.zeros((10, 5), np.float32), np.zeros(10), verbose=0)


def test_x_y_length_mismatch(compiled):
    with pytest.raises(ValueError, match="x has 10 samples, y has 9"):
        compiled.fit(np.zeros((10, 6), np.float32), np.zeros(9), verbose=0)


def test_nan_in_x(compiled):
    x = np.zeros((10, 6), np.float32)
    x[3, 2] = np.nan
    with pytest.raises(ValueError, match="1 NaN"):
        compiled.fit(x, np.zeros(10), verbose=0)


def test_wrong_dtype(compiled):
    with pytest.raises(TypeError, match="dtype <U1"):
        compiled.fit(np.array([["a"] * 6] * 4), np.zeros(4), verbose=0)
    with pytest.raises(TypeError, match="dtype object"):
        compiled.predict(np.array([[object()] * 6]), verbose=0)


def test_label_out_of_range(compiled):
    with pytest.raises(ValueError, match="7"):
        compiled.fit(np.zeros((4, 6), np.float32), np.array([0, 1, 7, 2]), verbose=0)


def test_unknown_strings():
    model = mlp()
    with pytest.raises(ValueError, match="adamm"):
        model.compile(optimizer="adamm", loss="mse")
    with pytest.raises(ValueError, match="not_a_loss"):
        model.compile(optimizer="adam", loss="not_a_loss")
    with pytest.raises(ValueError, match="accurracy"):
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accurracy"])
        model.fit(np.zeros((2, 6), np.float32), np.zeros(2), verbose=0)


def test_use_before_compile():
    model = mlp()
    for call in (lambda: model.fit(np.zeros((2, 6)), np.zeros(2), verbose=0),
                 lambda: model.evaluate(np.zeros((2, 6)), np.zeros(2), verbose=0),
                 lambda: model.train_on_batch(np.zeros((2, 6)), np.zeros(2))):
        with pytest.raises(RuntimeError, match="compile"):
            call()
    assert model.predict(np.zeros((2, 6)), verbose=0).shape == (2, 3)  # predict needs no compile


def test_bad_arguments(compiled):
    x, y = np.zeros((4, 6), np.float32), np.zeros(4)
    with pytest.raises(ValueError, match="batch_size=0"):
        compiled.fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        compiled.fit(x, y, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match="verbose"):
        compiled.fit(x, y, verbose=5)
    with pytest.raises(TypeError, match="Callback"):
        compiled.fit(x, y, callbacks=[object()], verbose=0)
    with pytest.raises(TypeError, match="layer instance"):
        signcore.Sequential([42])
    with pytest.raises(TypeError, match="foo"):
        compiled.compile(optimizer="adam", loss="mse", foo=1)


def test_shape_mismatch_between_layers_leaves_layers_reusable():
    dense = layers.Dense(4, input_shape=(3,))
    with pytest.raises(ValueError, match="Reshape|reshape"):
        signcore.Sequential([dense, layers.Reshape((3, 2))])
    again = signcore.Sequential([dense])
    again.build((None, 3))
    assert again.count_params() == 16


# ------------------------------------------------------------------------------------------------
# Progress output

def test_progress_bar_verbose_1_and_2(capfd):
    x, y = make_data(n=64)
    model = mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=16, epochs=2, verbose=1)
    out = capfd.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert "4/4 [==============================]" in out
    assert " - loss: " in out and " - accuracy: " in out and "/step" in out
    model.fit(x, y, batch_size=16, epochs=2, verbose=2)
    out = capfd.readouterr().out
    lines = [l for l in out.splitlines() if l.startswith("4/4")]
    assert len(lines) == 2 and "[" not in lines[0]
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert capfd.readouterr().out == ""
    model.evaluate(x, y, verbose=1)
    assert "2/2 [" in capfd.readouterr().out


def test_weights_exist_at_construction_and_follow_the_seed():
    signcore.utils.set_random_seed(5)
    a = signcore.Sequential([layers.Dense(3, input_shape=(2,))])
    signcore.utils.set_random_seed(5)
    b = signcore.Sequential([layers.Dense(3, input_shape=(2,))])
    np.testing.assert_array_equal(a.get_weights()[0], b.get_weights()[0])


def test_add_and_pop_on_a_built_model_keep_weights():
    model = signcore.Sequential([layers.Dense(4, input_shape=(3,)), layers.Dense(2)])
    before = model.get_weights()
    model.add(layers.Dense(5))
    after = model.get_weights()
    assert len(after) == 6 and after[4].shape == (2, 5)
    for a, b in zip(before, after[:4]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="Reshape|reshape"):
        model.add(layers.Reshape((7,)))
    assert len(model.layers) == 3  # the rejected layer is not kept, the model still works
    for a, b in zip(after, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.pop()
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.predict(np.ones((1, 3)), verbose=0).shape == (1, 2)


def test_metric_objects_in_compile_keep_their_arguments():
    x = np.linspace(-1, 1, 40, dtype=np.float32).reshape(-1, 1)
    y = (x[:, 0] > 0).astype(np.float32)
    model = signcore.Sequential([layers.Dense(1, activation="sigmoid", input_shape=(1,))])
    model.set_weights([np.array([[3.0]], np.float32), np.array([0.0], np.float32)])
    strict = signcore.metrics.BinaryAccuracy(threshold=0.7, name="strict_acc")
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy", strict])
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    p = 1 / (1 + np.exp(-3.0 * x[:, 0]))
    assert logs["accuracy"] == pytest.approx(np.mean((p > 0.5) == y))
    assert logs["strict_acc"] == pytest.approx(np.mean((p > 0.7) == y))
    assert model.metrics_names == ["loss", "accuracy", "strict_acc"]


# ----- profile ---------------------------------------------------------------------------------------

def small_cnn():
    signcore.utils.set_random_seed(0)
    m = signcore.Sequential([layers.Input((8, 8, 3)), layers.Conv2D(8, 3, activation="relu"),
                             layers.Flatten(), layers.Dense(4, activation="softmax")])
    return m


def test_layers_input_is_the_functional_input():
    assert layers.Input is signcore.Input
    m = small_cnn()
    assert m.input_shape == (None, 8, 8, 3)


def test_profile_times_every_layer_and_trains(capsys):
    m = small_cnn()
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((16, 8, 8, 3), dtype=np.float32)
    y = np.arange(16) % 4
    before = [w.copy() for w in m.get_weights()]
    r = m.profile(x, y, steps=3)
    assert [row[0] for row in r["layers"]] == [layer.name for layer in m.layers]
    assert [row[1] for row in r["layers"]] == ["Conv2D", "Flatten", "Dense"]
    assert all(row[2] > 0 for row in r["layers"])
    assert r["layers"][0][3] > 0 and r["layers"][2][3] > 0  # layers with weights: a backward pass
    assert r["optimizer_ms"] > 0
    parts = sum(f + b for _, _, f, b in r["layers"]) + r["loss_ms"] + r["optimizer_ms"]
    assert parts <= r["total_ms"] * 1.001
    assert any(not np.array_equal(a, b) for a, b in zip(before, m.get_weights()))  # 4 real steps
    out = capsys.readouterr().out
    assert "conv2d" in out.lower() and "step total" in out and "optimizer" in out

    p = m.profile(x, steps=2, print_table=False)  # predict: forward only, weights untouched
    weights = [w.copy() for w in m.get_weights()]
    m.profile(x, steps=2, print_table=False)
    assert all(np.array_equal(a, b) for a, b in zip(weights, m.get_weights()))
    assert all(row[3] == 0 for row in p["layers"]) and p["optimizer_ms"] == 0
    assert capsys.readouterr().out == ""


def test_profile_rejects_bad_calls():
    m = small_cnn()
    x = np.zeros((2, 8, 8, 3), np.float32)
    with pytest.raises(RuntimeError, match="compile"):
        m.profile(x, np.zeros(2))
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="steps=0"):
        m.profile(x, np.zeros(2), steps=0)
    with pytest.raises(ValueError, match=r"\(2, 7, 8, 3\)"):
        m.profile(np.zeros((2, 7, 8, 3), np.float32))
