"""TimeDistributed: equals the wrapped layer applied to every time step alone (same weights) for
Dense, Conv2D, MaxPooling2D, Flatten and BatchNormalization (inference); gradient checks; dropout per
sample and step, reproducible under set_random_seed, identity at inference; the sequence mask passes
through to a following LSTM; weights, names, summary, trainable, config, save/load and pickle; the
seed video model's shapes; errors."""
import pickle

import numpy as np
import pytest

import signcore
from signcore import _core, layers

from gradcheck import check_layer

# (wrapped layer factory, per-step input shape)
INNER = {
    "dense": (lambda: layers.Dense(3, activation="tanh"), (4,)),
    "dense_on_images": (lambda: layers.Dense(2), (3, 2, 4)),
    "conv2d": (lambda: layers.Conv2D(3, (3, 2), strides=(2, 1), padding="same", activation="tanh"),
               (5, 4, 2)),
    "maxpool2d": (lambda: layers.MaxPooling2D((2, 2), padding="same"), (5, 3, 2)),
    "avgpool2d": (lambda: layers.AveragePooling2D(2, strides=1), (3, 4, 2)),
    "flatten": (lambda: layers.Flatten(), (2, 3, 2)),
    "batchnorm": (lambda: layers.BatchNormalization(), (3, 4)),
}


def distinct(shape, rng):
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2) * 0.05).reshape(shape)


def set_random_params(harness, rng):
    values = harness.param_values()
    harness.set_param_values(rng.uniform(0.5, 1.5, size=values.shape).astype(np.float32)
                             * rng.choice([-1, 1], size=values.shape))


@pytest.mark.parametrize("name", list(INNER))
def test_equals_the_layer_applied_to_every_step(name):
    make, step = INNER[name]
    rng = np.random.default_rng(len(name))
    T, N = 4, 3
    td = layers.TimeDistributed(make())
    h = _core.LayerHarness(td, [[T, *step]])
    set_random_params(h, rng)
    x = distinct((N, T) + step, rng).astype(np.float32)
    y = h.forward([x])
    # The wrapped layer alone, fresh, with the same weights, one step at a time.
    alone = _core.LayerHarness(make(), [list(step)])
    alone.set_param_values(h.param_values())
    steps = [alone.forward([np.ascontiguousarray(x[:, t])]) for t in range(T)]
    np.testing.assert_allclose(y, np.stack(steps, axis=1), rtol=1e-6, atol=1e-6)
    assert y.shape == (N, T) + tuple(alone.output_shape)
    assert tuple(h.output_shape) == (T,) + tuple(alone.output_shape)
    # dx and the weight gradients: the sums over the steps of the per-step ones.
    dy = rng.normal(size=y.shape).astype(np.float32)
    dx, = h.backward(dy)
    gw = np.zeros_like(h.param_grads())
    for t in range(T):
        alone.forward([np.ascontiguousarray(x[:, t])])
        dxt, = alone.backward(np.ascontiguousarray(dy[:, t]))
        np.testing.assert_allclose(dx[:, t], dxt, rtol=1e-5, atol=1e-6)
        gw += alone.param_grads()
    np.testing.assert_allclose(h.param_grads(), gw, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(INNER))
def test_gradcheck(name):
    make, step = INNER[name]
    check_layer(layers.TimeDistributed(make()), [(3,) + step], batch=2,
                input_fn=lambda shapes, rng: [distinct((2,) + shapes[0], rng)])


def test_gradcheck_batchnorm_in_training_and_dropout():
    # In training the folded batch (N T samples) gives BatchNormalization its statistics.
    check_layer(layers.TimeDistributed(layers.BatchNormalization()), [(3, 4)], batch=3, training=True)
    check_layer(layers.TimeDistributed(layers.Dropout(0.4)), [(3, 5)], batch=2, training=True, seed=4)


def test_batchnorm_training_uses_statistics_over_batch_and_steps():
    rng = np.random.default_rng(1)
    x = rng.normal(loc=2.0, size=(4, 3, 5)).astype(np.float32)
    h = _core.LayerHarness(layers.TimeDistributed(layers.BatchNormalization()), [[3, 5]])
    flat = x.reshape(-1, 5)
    expected = (flat - flat.mean(0)) / np.sqrt(flat.var(0) + 1e-3)
    np.testing.assert_allclose(h.forward([x], training=True).reshape(-1, 5), expected, rtol=1e-4, atol=1e-5)


# ----- dropout ----------------------------------------------------------------------------------------

def test_dropout_differs_per_step_and_is_identity_at_inference():
    h = _core.LayerHarness(layers.TimeDistributed(layers.Dropout(0.5)), [[6, 200]])
    x = np.ones((2, 6, 200), np.float32)
    y = h.forward([x], training=True, seed=3)
    assert set(np.unique(y)) <= {0.0, 2.0}
    kept = y != 0
    assert 0.35 < kept.mean() < 0.65
    for n in range(2):
        for t in range(1, 6):
            assert (kept[n, t] != kept[n, 0]).any(), "each step draws its own mask"
    assert (kept[0] != kept[1]).any(), "each sample draws its own mask"
    dx, = h.backward(np.full_like(x, 3.0))
    np.testing.assert_array_equal(dx, np.where(kept, 6.0, 0.0))
    np.testing.assert_array_equal(h.forward([x], training=False), x)


def train_with_dropout(seed):
    signcore.utils.set_random_seed(seed)
    model = signcore.Sequential([signcore.Input((4, 6)), layers.TimeDistributed(layers.Dropout(0.5)),
                                 layers.Flatten(), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4, 6)).astype(np.float32)
    model.fit(x, rng.normal(size=(16, 1)).astype(np.float32), epochs=2, batch_size=4, shuffle=False,
              verbose=0)
    return model.get_weights()[0], model.predict(x, verbose=0)


def test_dropout_is_deterministic_under_set_random_seed():
    (w1, p1), (w2, p2), (w3, _) = train_with_dropout(5), train_with_dropout(5), train_with_dropout(6)
    np.testing.assert_array_equal(w1, w2)
    np.testing.assert_array_equal(p1, p2)
    assert not np.array_equal(w1, w3)


# ----- masks -------------------------------------------------------------------------------------------

def test_mask_passes_through_to_a_following_lstm():
    rng = np.random.default_rng(4)
    N, T, Fi = 3, 6, 4
    x = rng.normal(size=(N, T, Fi)).astype(np.float32)
    keep = np.ones((N, T), bool)
    keep[0, 4:] = False
    keep[1, 1] = False
    keep[2, :2] = False
    x[~keep] = -1.0
    signcore.utils.set_random_seed(3)
    dense, lstm = layers.Dense(5, activation="tanh"), layers.LSTM(3)
    model = signcore.Sequential([signcore.Input((T, Fi)), layers.Masking(-1.0),
                                 layers.TimeDistributed(dense), lstm])
    got = model.predict(x, verbose=0)
    # The same LSTM given the mask explicitly, on the Dense outputs of the masked input.
    w, b = dense.get_weights()
    mid = np.tanh(np.where(keep[..., None], x, 0) @ w + b).astype(np.float32)
    alone = layers.LSTM(3)
    h = _core.LayerHarness(alone, [[T, 5]])
    alone.set_weights(lstm.get_weights())
    np.testing.assert_allclose(got, h.forward([mid], mask=keep), rtol=1e-5, atol=2e-6)
    unmasked = h.forward([mid])
    assert not np.allclose(got, unmasked, atol=1e-4), "the mask must make a difference"
    assert layers.TimeDistributed(layers.Dense(2)).supports_masking


# ----- weights, summary, config, saving ---------------------------------------------------------------

def test_weights_names_summary_and_trainable():
    td = layers.TimeDistributed(layers.Dense(3, name="proj"))
    model = signcore.Sequential([signcore.Input((5, 4)), td, layers.Dense(2)])
    assert td.name.startswith("time_distributed")
    assert td.weight_names == [f"{td.name}/proj/kernel", f"{td.name}/proj/bias"]
    assert [w.shape for w in td.get_weights()] == [(4, 3), (3,)]
    assert td.count_params() == 15 and model.count_params() == 15 + 8
    assert td.output_shape == (None, 5, 3)
    assert td.layer.name == "proj"
    lines = []
    model.summary(print_fn=lines.append)
    # The name column is 29 characters wide, as Keras 2's summary: "time_distributed (TimeDistri".
    row = next(line for line in lines if line.startswith(f"{td.name} (Time"))
    assert "(None, 5, 3)" in row and row.split()[-1] == "15"
    td.trainable = False
    assert not td.layer.trainable
    assert len(model.trainable_weights) == 2 and model.count_params() == 23


def test_seed_video_model_summary():
    model = signcore.Sequential([signcore.Input((20, 148, 148, 4)),
                                 layers.MaxPooling3D(pool_size=(1, 2, 2), padding="valid"),
                                 layers.TimeDistributed(layers.Dropout(0.2))])
    lines = []
    model.summary(print_fn=lines.append)
    row = next(line for line in lines if line.startswith("time_distributed"))
    assert row.startswith(f"{model.layers[1].name} (Time")
    assert "(None, 20, 74, 74, 4)" in row and row.split()[-1] == "0"
    x = np.random.default_rng(0).normal(size=(1, 20, 148, 148, 4)).astype(np.float32)
    y = model.predict(x, verbose=0)
    np.testing.assert_array_equal(y, x.reshape(1, 20, 74, 2, 74, 2, 4).max(axis=(3, 5)))


def test_config_round_trip():
    td = layers.TimeDistributed(layers.Conv2D(2, 3, name="c"), name="td")
    cfg = td.get_config()
    assert cfg["name"] == "td" and cfg["layer"]["class_name"] == "Conv2D"
    assert cfg["layer"]["config"]["name"] == "c"
    again = layers.deserialize(layers.serialize(td))
    assert type(again) is layers.TimeDistributed and again.get_config() == cfg
    assert layers.TimeDistributed.from_config(cfg).get_config() == cfg
    assert layers.TimeDistributed(layers.Dense(1)).name != layers.TimeDistributed(layers.Dense(1)).name


def build_video_model():
    return signcore.Sequential([
        signcore.Input((4, 6, 6, 2)),
        layers.TimeDistributed(layers.Conv2D(3, 3, activation="relu")),
        layers.TimeDistributed(layers.MaxPooling2D()),
        layers.TimeDistributed(layers.Flatten()),
        layers.TimeDistributed(layers.Dropout(0.2)),
        layers.LSTM(4),
        layers.Dense(2, activation="softmax"),
    ])


def test_save_load_and_pickle_round_trip(tmp_path):
    signcore.utils.set_random_seed(1)
    model = build_video_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 4, 6, 6, 2)).astype(np.float32)
    y = rng.integers(0, 2, size=6)
    model.fit(x, y, epochs=1, batch_size=3, verbose=0)
    expected = model.predict(x, verbose=0)
    path = tmp_path / "video.keras"
    model.save(str(path))
    again = signcore.saving.load_model(str(path))
    np.testing.assert_array_equal(again.predict(x, verbose=0), expected)
    assert [l.get_config() for l in again.layers] == [l.get_config() for l in model.layers]
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.predict(x, verbose=0), expected)
    # Training continues from the loaded model.
    again.fit(x, y, epochs=1, batch_size=3, verbose=0)


def test_functional_api():
    inp = signcore.Input((3, 5))
    out = layers.TimeDistributed(layers.Dense(2))(inp)
    assert out.shape == (None, 3, 2)
    model = signcore.Model(inp, layers.Flatten()(out))
    x = np.random.default_rng(0).normal(size=(2, 3, 5)).astype(np.float32)
    w, b = model.layers[0].get_weights()
    np.testing.assert_allclose(model.predict(x, verbose=0), (x @ w + b).reshape(2, 6), rtol=1e-5, atol=1e-6)


# ----- errors ------------------------------------------------------------------------------------------

def test_errors_name_what_was_received():
    with pytest.raises(TypeError, match=r"TimeDistributed.*Received: layer=3"):
        layers.TimeDistributed(3)
    with pytest.raises(TypeError, match=r"Received: layer='dense'"):
        layers.TimeDistributed("dense")
    with pytest.raises(ValueError, match=r"timesteps.*input_shape=\(None, 5\)"):
        _core.LayerHarness(layers.TimeDistributed(layers.Dense(2)), [[5]])
    # The wrapped layer's own checks, for one step.
    with pytest.raises(ValueError, match=r"input_shape=\(None, 4, 3\)"):
        _core.LayerHarness(layers.TimeDistributed(layers.Conv2D(2, 3)), [[2, 4, 3]])
    h = _core.LayerHarness(layers.TimeDistributed(layers.Dense(2)), [[3, 4]])
    with pytest.raises(ValueError, match=r"3, 4\).*shape=\(2, 4, 4\)"):
        h.forward([np.zeros((2, 4, 4), np.float32)])
    with pytest.raises(ValueError, match="Unrecognized keyword arguments passed to TimeDistributed"):
        layers.TimeDistributed(layers.Dense(2), units=3)
