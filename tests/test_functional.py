"""The functional API: Input, layers called on symbolic tensors, Model(inputs, outputs), several
inputs, explicit masks, and graph errors."""
import numpy as np
import pytest

import signcore
from signcore import Input, Model, layers


def test_functional_equals_sequential():
    signcore.utils.set_random_seed(0)
    inp = Input((5,))
    x = layers.Dense(4, activation="relu")(inp)
    out = layers.Dense(3, activation="softmax")(x)
    assert x.shape == (None, 4) and out.shape == (None, 3)
    model = Model(inp, out)
    seq = signcore.Sequential([layers.Dense(4, activation="relu", input_shape=(5,)), layers.Dense(3, activation="softmax")])
    seq.set_weights(model.get_weights())
    data = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(data, verbose=0), seq.predict(data, verbose=0))
    assert model.name.startswith("functional")
    assert [l.name for l in model.layers] == [l.name for l in model.layers]


def test_two_inputs_model_trains_like_the_equivalent_sequential():
    a, b = Input((3,), name="a"), Input((4,), name="b")
    ha = layers.Dense(8, activation="tanh")(a)  # a branch that does not reach the output: not in the model
    hb = layers.Dense(8, activation="tanh")(b)
    out = layers.Dense(1, activation="sigmoid")(hb)
    model = Model([a, b], out)
    seq = signcore.Sequential([layers.Dense(8, activation="tanh", input_shape=(4,)), layers.Dense(1, activation="sigmoid")])
    assert len(model.layers) == 2
    w = model.get_weights()
    seq.set_weights(w)
    for m in (model, seq):
        m.compile(optimizer=signcore.optimizers.SGD(learning_rate=0.5), loss="binary_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    xa, xb = rng.normal(size=(64, 3)).astype(np.float32), rng.normal(size=(64, 4)).astype(np.float32)
    y = (xb[:, 0] > 0).astype(np.float32)
    hist = model.fit([xa, xb], y, epochs=20, batch_size=16, shuffle=False, verbose=0)
    seq.fit(xb, y, epochs=20, batch_size=16, shuffle=False, verbose=0)
    for got, want in zip(model.get_weights(), seq.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert hist.history["accuracy"][-1] > 0.9
    assert model.predict((xa, xb), verbose=0).shape == (64, 1)
    with pytest.raises(ValueError, match="expects 2 inputs"):
        model.predict([xa], verbose=0)
    del ha


def test_graph_errors():
    a, b = Input((3,)), Input((3,))
    out = layers.Dense(2)(b)
    with pytest.raises(ValueError, match="Graph disconnected"):
        Model(a, out)
    with pytest.raises(TypeError, match="symbolic"):
        layers.Dense(2)(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="Input"):
        Model(out, layers.Dense(1)(out))
    with pytest.raises(ValueError, match="positive integers"):
        Input((0, 3))
    with pytest.raises(ValueError, match="dtype"):
        Input((3,), dtype="int8")
    with pytest.raises(ValueError, match="needs both"):
        Model()


def test_shape_errors_surface_at_call_time():
    inp = Input((4,))
    with pytest.raises(ValueError, match="Reshape|reshape"):
        layers.Reshape((3, 2))(inp)


def test_mask_input_is_accepted_and_fed_as_bool():
    feats, mask = Input((6, 2)), Input((6,), dtype="bool")
    out = layers.Dense(3)(feats, mask=mask)
    model = Model([feats, mask], out)
    x = np.ones((2, 6, 2), np.float32)
    m = np.ones((2, 6), bool)
    assert model.predict([x, m], verbose=0).shape == (2, 6, 3)
    assert model._core.input_dtypes == ["float32", "bool"]


def test_functional_model_with_mask_saves_and_loads(tmp_path):
    feats, mask = Input((6, 2), name="feats"), Input((6,), dtype="bool", name="mask")
    out = layers.Dense(3)(layers.Dense(4, activation="relu")(feats, mask=mask))
    model = Model([feats, mask], out)
    model.compile(optimizer="adam", loss="mse")
    x, m = np.random.default_rng(1).normal(size=(4, 6, 2)).astype(np.float32), np.ones((4, 6), bool)
    model.train_on_batch([x, m], np.zeros((4, 6, 3), np.float32))
    path = tmp_path / "f.signcore"
    model.save(path)
    loaded = signcore.models.load_model(path)
    assert type(loaded) is Model
    assert loaded._core.nodes[0][2] == -2  # the explicit mask (model input 1) survived
    np.testing.assert_array_equal(loaded.predict([x, m], verbose=0), model.predict([x, m], verbose=0))
