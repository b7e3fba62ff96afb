"""Core layers (Dense, Activation, Dropout, Flatten, Reshape) and the activations: gradient checks
by finite differences (tests/gradcheck.py), hand-computed forwards, NumPy written from the Keras
equations, Dropout statistics, Keras-style arguments, names, configs and error messages."""
import math

import numpy as np
import pytest

from gradcheck import check_layer

import signcore
from signcore import _core, activations, layers

ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh", "softmax", "leaky_relu", "elu", "gelu", "selu",
               "softplus", "softsign", "silu", "hard_sigmoid", "exponential"]
# Points where an activation's derivative jumps: finite differences must stay clear of them.
KINKS = {"relu": [0.0], "leaky_relu": [0.0], "elu": [0.0], "selu": [0.0], "hard_sigmoid": [-3.0, 3.0]}
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def clear_of_kinks(z, activation, margin=0.05):
    return all(np.min(np.abs(z - k)) > margin for k in KINKS.get(activation, []))


def np_activation(name, x):
    """The Keras 3 definitions, in float64 NumPy."""
    x = np.asarray(x, dtype=np.float64)
    if name == "linear":
        return x
    if name == "relu":
        return np.maximum(x, 0)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if name == "tanh":
        return np.tanh(x)
    if name == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if name == "leaky_relu":
        return np.where(x > 0, x, 0.2 * x)
    if name == "elu":
        return np.where(x > 0, x, np.exp(x) - 1)
    if name == "gelu":
        return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    if name == "selu":
        return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(x) - 1))
    if name == "softplus":
        return np.log1p(np.exp(x))
    if name == "softsign":
        return x / (1 + np.abs(x))
    if name == "silu":
        return x / (1 + np.exp(-x))
    if name == "hard_sigmoid":
        return np.clip(x + 3, 0, 6) / 6
    if name == "exponential":
        return np.exp(x)
    raise KeyError(name)


def dense_case(activation, f=4, u=3, batch=3, seed=0, lead=()):
    """Inputs and flat (kernel, bias) whose pre-activations stay clear of the activation's kinks."""
    rng = np.random.default_rng(seed)
    for _ in range(200):
        x = rng.normal(size=(batch,) + lead + (f,))
        w = rng.normal(scale=0.7, size=(f, u))
        b = rng.normal(scale=0.5, size=u)
        if clear_of_kinks(x @ w + b, activation):
            return x, w, b
    raise RuntimeError("no kink-free case found")


# ----- gradient checks ------------------------------------------------------------------------------

@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_gradcheck_each_activation(activation):
    x, w, b = dense_case(activation)
    layer = layers.Dense(3, activation=activation)
    harness, _ = check_layer(layer, [(4,)], inputs=[x], params=np.concatenate([w.ravel(), b]))
    # The forward is the Keras equation too.
    y = harness.forward([x.astype(np.float32)])
    np.testing.assert_allclose(y, np_activation(activation, x.astype(np.float32) @ w + b),
                               rtol=1e-5, atol=1e-5)


def test_dense_gradcheck_without_bias_and_rank3_input():
    x, w, _ = dense_case("tanh", f=5, u=2, lead=(4,))
    layer = layers.Dense(2, activation="tanh", use_bias=False)
    harness, _ = check_layer(layer, [(4, 5)], inputs=[x], params=w.ravel())
    assert harness.output_shape == (4, 2)
    assert [n for n, *_ in harness.weights] == [layer.name + "/kernel"]
    # Dense on (N, T, F) is Dense on every (N*T, F) row.
    y = harness.forward([x.astype(np.float32)])
    np.testing.assert_allclose(y, np.tanh(x.astype(np.float32) @ w), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_layer_gradcheck(activation):
    rng = np.random.default_rng(1)
    for _ in range(200):
        x = rng.normal(scale=1.5, size=(3, 2, 5))
        if clear_of_kinks(x, activation):
            break
    layer = layers.Activation(activation)
    harness, _ = check_layer(layer, [(2, 5)], inputs=[x])
    y = harness.forward([x.astype(np.float32)])
    np.testing.assert_allclose(y, np_activation(activation, x.astype(np.float32)), rtol=1e-5, atol=1e-6)


def test_dropout_gradcheck_in_training_mode():
    layer = layers.Dropout(0.4)
    harness, _ = check_layer(layer, [(5, 6)], training=True, seed=7)
    x = np.ones((3, 5, 6), dtype=np.float32)
    y = harness.forward([x], training=True, seed=7)
    assert np.any(y == 0) and np.any(y != 0)  # the check really ran with a mask


def test_dropout_gradcheck_with_noise_shape():
    layer = layers.Dropout(0.5, noise_shape=(None, 1, 4))
    check_layer(layer, [(3, 4)], training=True, seed=3, batch=4)


def test_flatten_and_reshape_gradcheck():
    h, _ = check_layer(layers.Flatten(), [(2, 3, 4)])
    assert h.output_shape == (24,)
    h, _ = check_layer(layers.Reshape((4, -1)), [(2, 6)])
    assert h.output_shape == (4, 3)


# ----- forward values --------------------------------------------------------------------------------

def test_dense_hand_computed_forward():
    layer = layers.Dense(3)
    h = _core.LayerHarness(layer, [[2]])
    layer.set_weights([np.array([[1, 2, 3], [4, 5, 6]], np.float32), np.array([0.5, -1, 0], np.float32)])
    y = h.forward([np.array([[1, 2], [-1, 0.5]], np.float32)])
    # [1*1 + 2*4 + 0.5, 1*2 + 2*5 - 1, 1*3 + 2*6 + 0], [-1 + 2 + 0.5, -2 + 2.5 - 1, -3 + 3 + 0]
    np.testing.assert_allclose(y, [[9.5, 11, 15], [1.5, -0.5, 0]], rtol=0, atol=1e-6)
    dx, = h.backward(np.array([[1, 0, 0], [0, 1, 1]], np.float32))
    np.testing.assert_allclose(dx, [[1, 4], [5, 11]], atol=1e-6)  # dy W^T
    kernel_grad, bias_grad = np.split(h.param_grads(), [6])
    # x^T dy = [[1, -1], [2, 0.5]] @ [[1, 0, 0], [0, 1, 1]]
    np.testing.assert_allclose(kernel_grad.reshape(2, 3), [[1, -1, -1], [2, 0.5, 0.5]], atol=1e-6)
    np.testing.assert_allclose(bias_grad, [1, 1, 1], atol=1e-6)


def test_reshape_and_flatten_keep_row_major_order():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    h = _core.LayerHarness(layers.Reshape((2, 2, 3)), [[3, 4]])
    np.testing.assert_array_equal(h.forward([x]), x.reshape(2, 2, 2, 3))
    h = _core.LayerHarness(layers.Flatten(), [[3, 4]])
    np.testing.assert_array_equal(h.forward([x]), x.reshape(2, 12))
    np.testing.assert_array_equal(h.backward(x.reshape(2, 12))[0], x)


def test_softmax_is_stable_for_large_logits():
    z = np.array([[1000.0, 1001.0, 1002.0], [-1000.0, 0.0, 1000.0]], dtype=np.float32)
    y = activations.softmax(z)
    np.testing.assert_allclose(y[0], np_activation("softmax", [0.0, 1.0, 2.0]), rtol=1e-6)
    np.testing.assert_allclose(y[1], [0, 0, 1], atol=1e-7)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_functions_on_numpy(name):
    x = np.linspace(-5, 5, 41).reshape(1, 41)
    fn = getattr(activations, name)
    np.testing.assert_allclose(fn(x), np_activation(name, x), rtol=2e-6, atol=2e-6)
    assert activations.get(name) is fn
    # The backward binding agrees with the finite difference of the forward (away from kinks).
    x = x[:, [i for i in range(41) if clear_of_kinks(x[0, i], name, 0.05)]]
    dy = np.random.default_rng(0).normal(size=x.shape)
    dx = _core._activation_backward(name, x.astype(np.float32), dy.astype(np.float32))
    eps = 1e-3
    num = (np_activation(name, x + eps) - np_activation(name, x - eps)) / (2 * eps)
    if name == "softmax":  # full Jacobian per row: dx = J^T dy
        num = np.array([(np_activation(name, x + eps * e) - np_activation(name, x - eps * e)).ravel() @ dy.ravel()
                        / (2 * eps) for e in np.eye(x.shape[1])]).reshape(x.shape)
    else:
        num = num * dy
    np.testing.assert_allclose(dx, num, rtol=1e-3, atol=1e-4)


def test_keras3_activation_defaults():
    np.testing.assert_allclose(activations.leaky_relu(np.array([-1.0, 2.0])), [-0.2, 2.0])
    np.testing.assert_allclose(activations.hard_sigmoid(np.array([-3.0, 0.0, 1.5, 3.0])), [0, 0.5, 0.75, 1])
    # exact gelu, not the tanh approximation: gelu(1) = Phi(1) = 0.841344746
    np.testing.assert_allclose(activations.gelu(np.array([1.0])), [0.8413447460685429], rtol=1e-6)
    np.testing.assert_allclose(activations.selu(np.array([-1.0, 1.0])),
                               [SELU_SCALE * SELU_ALPHA * (math.exp(-1) - 1), SELU_SCALE], rtol=1e-6)
    assert activations.get(None) is activations.linear
    assert activations.get("swish") is activations.silu
    assert activations.serialize(activations.swish) == "silu"
    with pytest.raises(ValueError, match="leaky_relu"):
        activations.leaky_relu(np.ones(2), negative_slope=0.3)
    with pytest.raises(ValueError, match="nope"):
        activations.get("nope")


# ----- Dropout ---------------------------------------------------------------------------------------

def test_dropout_is_identity_at_inference():
    h = _core.LayerHarness(layers.Dropout(0.5), [[10]])
    x = np.random.default_rng(0).normal(size=(4, 10)).astype(np.float32)
    np.testing.assert_array_equal(h.forward([x], training=False), x)
    dy = np.ones_like(x)
    np.testing.assert_array_equal(h.backward(dy)[0], dy)


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8])
def test_dropout_keeps_one_minus_rate_and_scales(rate):
    h = _core.LayerHarness(layers.Dropout(rate), [[1000]])
    x = np.full((20, 1000), 2.0, dtype=np.float32)
    y = h.forward([x], training=True, seed=11)
    kept = y != 0
    # 20000 Bernoulli draws: the kept fraction is within 4 standard deviations of 1 - rate.
    sd = math.sqrt(rate * (1 - rate) / kept.size)
    assert abs(kept.mean() - (1 - rate)) < 4 * sd
    np.testing.assert_allclose(y[kept], 2.0 / (1 - rate), rtol=1e-6)
    # Backward routes dy through the same mask and scale.
    dx, = h.backward(np.ones_like(x))
    np.testing.assert_allclose(dx, y / 2.0, rtol=1e-6)


def test_dropout_mask_is_the_same_on_any_thread_count_and_uncorrelated():
    """The mask is made in parallel from one draw (dropout.cpp): the same on 1 and 2 threads, and
    its values independent: neighbours uncorrelated, each quarter of the mask at the rate."""
    x = np.ones((4, 50000), dtype=np.float32)
    masks = []
    old = signcore.get_num_threads()
    try:
        for threads in (1, 2):
            signcore.set_num_threads(threads)
            h = _core.LayerHarness(layers.Dropout(0.3), [[50000]])
            masks.append(h.forward([x], training=True, seed=3) != 0)
    finally:
        signcore.set_num_threads(old)
    np.testing.assert_array_equal(masks[0], masks[1])
    kept = masks[0].ravel().astype(np.float64)
    sd = math.sqrt(0.3 * 0.7 / (kept.size / 4))
    for part in np.split(kept, 4):
        assert abs(part.mean() - 0.7) < 4 * sd
    for lag in (1, 2, 8, 50000):  # next value, next channel block, next sample
        r = np.corrcoef(kept[:-lag], kept[lag:])[0, 1]
        assert abs(r) < 4 / math.sqrt(kept.size)


def test_dropout_masks_depend_on_the_seed_and_rate_zero_is_identity():
    h = _core.LayerHarness(layers.Dropout(0.5), [[50]])
    x = np.ones((4, 50), dtype=np.float32)
    a = h.forward([x], training=True, seed=1)
    b = h.forward([x], training=True, seed=1)
    c = h.forward([x], training=True, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    h0 = _core.LayerHarness(layers.Dropout(0.0), [[50]])
    np.testing.assert_array_equal(h0.forward([x], training=True, seed=1), x)


def test_dropout_with_own_seed_is_reproducible():
    x = np.ones((8, 40), dtype=np.float32)
    ys = []
    for _ in range(2):
        h = _core.LayerHarness(layers.Dropout(0.5, seed=42), [[40]])
        # ctx seeds differ: the layer's own engine decides the mask.
        ys.append([h.forward([x], training=True, seed=s) for s in (1, 2)])
    np.testing.assert_array_equal(ys[0][0], ys[1][0])
    np.testing.assert_array_equal(ys[0][1], ys[1][1])
    assert not np.array_equal(ys[0][0], ys[0][1])  # the engine advances between calls


def test_dropout_noise_shape_shares_the_mask_along_broadcast_axes():
    h = _core.LayerHarness(layers.Dropout(0.5, noise_shape=(None, 1, 6)), [[5, 6]])
    y = h.forward([np.ones((4, 5, 6), np.float32)], training=True, seed=5)
    for t in range(1, 5):
        np.testing.assert_array_equal(y[:, t, :], y[:, 0, :])
    assert np.any(y == 0) and np.any(y == 2.0)
    with pytest.raises(ValueError, match="noise_shape"):
        _core.LayerHarness(layers.Dropout(0.5, noise_shape=(None, 3, 6)), [[5, 6]])


# ----- arguments, names, configs and errors ---------------------------------------------------------

def test_auto_names_count_up():
    first, second = layers.Dense(2), layers.Dense(2)
    n = 0 if first.name == "dense" else int(first.name.rsplit("_", 1)[1])
    assert first.name == ("dense" if n == 0 else f"dense_{n}")
    assert second.name == f"dense_{n + 1}"
    assert layers.Dense(2, name="head").name == "head"
    assert layers.Dropout(0.1).name.startswith("dropout")
    assert repr(first) == f"<Dense name={first.name}, built=False>"


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="units=0"):
        layers.Dense(0)
    with pytest.raises(ValueError, match="units=-3"):
        layers.Dense(-3)
    with pytest.raises(ValueError, match="units"):
        layers.Dense("ten")
    with pytest.raises(ValueError, match="activation='relux'"):
        layers.Dense(3, activation="relux")
    with pytest.raises(ValueError, match="activation"):
        layers.Activation(lambda x: x)
    with pytest.raises(ValueError, match="rate=1.5"):
        layers.Dropout(rate=1.5)
    with pytest.raises(ValueError, match="rate"):
        layers.Dropout(1.0)
    with pytest.raises(ValueError, match="rate"):
        layers.Dropout(-0.1)
    with pytest.raises(TypeError, match=r"Unrecognized keyword arguments passed to Dense: \{'foo': 1\}"):
        layers.Dense(3, foo=1)
    with pytest.raises(ValueError, match="Unrecognized keyword arguments passed to Flatten"):
        layers.Flatten(bar=2)  # Keras 3 raises ValueError here: the error is both
    with pytest.raises(ValueError, match="initializer='glorot'"):
        layers.Dense(3, kernel_initializer="glorot")
    with pytest.raises(ValueError, match="float32"):
        layers.Dense(3, dtype="float64")
    with pytest.raises(ValueError, match="kernel_regularizer"):
        layers.Dense(3, kernel_regularizer="l2")
    with pytest.raises(ValueError, match="target_shape"):
        layers.Reshape((-1, -1))
    with pytest.raises(ValueError, match="target_shape"):
        layers.Reshape((0, 3))
    with pytest.raises(ValueError, match="data_format"):
        layers.Flatten(data_format="channels_first")


def test_shape_errors_at_build_and_forward():
    with pytest.raises(ValueError, match=r"input_shape=\(None, 2, 6\), target_shape=\(5, -1\)"):
        _core.LayerHarness(layers.Reshape((5, -1)), [[2, 6]])
    with pytest.raises(ValueError, match="total size"):
        _core.LayerHarness(layers.Reshape((4, 4)), [[2, 6]])
    h = _core.LayerHarness(layers.Dense(3), [[4]])
    with pytest.raises(ValueError, match=r"\(2, 5\)"):
        h.forward([np.zeros((2, 5), np.float32)])
    with pytest.raises(ValueError, match="expects 1 input"):
        _core.LayerHarness(layers.Dense(3), [[4], [4]])


def test_keras_keywords_and_properties():
    d = layers.Dense(4, "relu", False, "he_normal", input_shape=(7,), trainable=False, name="d0")
    assert (d.units, d.use_bias, d.trainable, d.input_shape_hint) == (4, False, False, (7,))
    assert d.activation is activations.relu
    assert layers.Dense(4, input_dim=9).input_shape_hint == (9,)
    assert layers.Dense(4, activation=activations.swish).get_config()["activation"] == "silu"
    assert layers.Dense(4, kernel_initializer=signcore.initializers.HeNormal()).get_config()[
        "kernel_initializer"] == "he_normal"
    assert layers.Dense(4, dtype="float32").built is False
    with pytest.raises(AttributeError, match="output shape"):
        _ = d.output_shape
    with pytest.raises(ValueError, match="isn't built"):
        d.count_params()
    assert d.get_weights() == []


def test_get_config_round_trip():
    for layer in [layers.Dense(5, activation="gelu", use_bias=False, kernel_initializer="orthogonal"),
                  layers.Activation("softmax"), layers.Dropout(0.3, noise_shape=(None, 1, 4), seed=9),
                  layers.Flatten(), layers.Reshape((3, -1))]:
        cfg = layer.get_config()
        clone = type(layer).from_config(cfg)
        assert type(clone) is type(layer)
        assert clone.get_config() == cfg
        assert layers.deserialize(layers.serialize(layer)).get_config() == cfg
    cfg = layers.Dense(5, activation="relu", name="out").get_config()
    assert {k: cfg[k] for k in ("name", "trainable", "units", "activation", "use_bias",
                                "kernel_initializer", "bias_initializer")} == {
        "name": "out", "trainable": True, "units": 5, "activation": "relu", "use_bias": True,
        "kernel_initializer": "glorot_uniform", "bias_initializer": "zeros"}
    assert layers.Dropout(0.3).get_config()["noise_shape"] is None
    frozen = layers.Dense.from_config(dict(cfg, trainable=False, name="frozen"))
    assert (frozen.trainable, frozen.name) == (False, "frozen")
    keras3 = layers.Dense.from_config({"units": 2, "name": "k3", "kernel_initializer": {
        "module": "keras.initializers", "class_name": "HeNormal", "config": {"seed": None}}})
    assert keras3.get_config()["kernel_initializer"] == "HeNormal"
    with pytest.raises(ValueError, match="Dense config"):
        layers.Dense.from_config({"name": "no_units"})
    assert layers.Reshape((3, -1)).get_config()["target_shape"] == [3, -1]
    # A layer given an input shape keeps it through get_config / from_config (the sizes come back
    # from Python as signed integers), and a malformed one is refused with the value.
    first = layers.Conv2D(4, 3, input_shape=(8, 8, 3))
    cfg = first.get_config()
    assert cfg["batch_input_shape"] == [None, 8, 8, 3]
    assert layers.Conv2D.from_config(cfg).input_shape_hint == (8, 8, 3)
    with pytest.raises(ValueError, match=r"batch_input_shape .*\[null,8,0,3\]"):
        layers.Conv2D.from_config(dict(cfg, batch_input_shape=[None, 8, 0, 3]))


def test_weights_after_build_and_set_weights_validation():
    layer = layers.Dense(3)
    h = _core.LayerHarness(layer, [[4]])
    assert layer.built and layer.output_shape == (None, 3) and layer.count_params() == 15
    kernel, bias = layer.get_weights()
    assert kernel.shape == (4, 3) and bias.shape == (3,)
    np.testing.assert_array_equal(bias, 0)
    limit = math.sqrt(6 / 7)
    assert np.all(np.abs(kernel) <= limit) and np.abs(kernel).max() > 0
    new = [np.arange(12, dtype=np.float32).reshape(4, 3), np.ones(3)]
    layer.set_weights(new)
    np.testing.assert_array_equal(layer.get_weights()[0], new[0])
    np.testing.assert_array_equal(h.param_values(), np.concatenate([new[0].ravel(), new[1]]))
    with pytest.raises(ValueError, match=r"\(4, 3\).*Received: shape=\(3, 4\)"):
        layer.set_weights([np.zeros((3, 4)), np.zeros(3)])
    with pytest.raises(ValueError, match="length 1.*expecting 2"):
        layer.set_weights([np.zeros((4, 3))])
    np.testing.assert_array_equal(layer.get_weights()[0], new[0])  # unchanged after the errors


def test_trainable_false_accumulates_no_weight_gradient():
    layer = layers.Dense(3, activation="tanh")
    h = _core.LayerHarness(layer, [[4]])
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    h.forward([x])
    h.backward(np.ones((5, 3), np.float32))
    assert np.abs(h.param_grads()).sum() > 0
    layer.trainable = False
    assert [w[2] for w in h.weights] == [False, False]
    h.forward([x])
    dx, = h.backward(np.ones((5, 3), np.float32))
    np.testing.assert_array_equal(h.param_grads(), 0)
    assert np.abs(dx).sum() > 0  # the input gradient still flows
    layer.trainable = True
    assert [w[2] for w in h.weights] == [True, True]


def test_layer_is_built_once():
    layer = layers.Dense(2)
    _core.LayerHarness(layer, [[3]])
    with pytest.raises(ValueError, match="already"):
        _core.LayerHarness(layer, [[3]])
