"""BatchNormalization: gradient checks in training mode (batch statistics) and inference mode (moving
statistics), with and without center/scale, on (N, C), (N, H, W, C) and (N, T, H, W, C); the
forward and every gradient against PyTorch; the moving statistics against NumPy written from the
Keras equation (biased batch variance, `moving * momentum + batch * (1 - momentum)`); the layer in
a Sequential model (parameter counts, weight order, trainable=False = inference mode and frozen);
thread-count independence; arguments, configs and error messages."""
import io
import zlib
from contextlib import redirect_stdout

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import signcore
from signcore import _core, layers

from gradcheck import check_layer

SHAPES = [(5,), (3, 3, 4), (2, 3, 3, 2)]  # per sample: (C,), (H, W, C), (T, H, W, C)
BATCH = {1: 6, 3: 2, 4: 2}
CENTER_SCALE = [(True, True), (False, True), (True, False), (False, False)]


def bn_params(c, center, scale, rng):
    """Flat weights in declaration order: gamma (scale), beta (center), moving_mean, moving_variance."""
    parts = []
    if scale:
        parts.append(rng.uniform(0.5, 1.5, c))
    if center:
        parts.append(rng.normal(scale=0.5, size=c))
    parts += [rng.normal(scale=0.5, size=c), rng.uniform(0.5, 2.0, c)]
    return np.concatenate(parts)


def np_batch_norm(x, gamma, beta, mean, var, eps):
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def np_moments(x):
    axes = tuple(range(x.ndim - 1))
    return x.mean(axis=axes), x.var(axis=axes)  # the biased variance, as Keras


# ----- gradient checks -------------------------------------------------------------------------------

@pytest.mark.parametrize("center, scale", CENTER_SCALE)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
def test_batch_norm_gradcheck(shape, center, scale, training):
    rng = np.random.default_rng(zlib.crc32(repr((shape, center, scale, training)).encode()))
    layer = layers.BatchNormalization(center=center, scale=scale)
    params = bn_params(shape[-1], center, scale, rng)
    harness, _ = check_layer(layer, [shape], batch=BATCH[len(shape)], training=training, rng=rng,
                             params=params)
    names = [n.split("/")[-1] for n, *_ in harness.weights]
    assert names == (["gamma"] if scale else []) + (["beta"] if center else []) + \
        ["moving_mean", "moving_variance"]
    assert [t for _, _, t, *_ in harness.weights] == [True] * (scale + center) + [False, False]


def test_batch_norm_gradcheck_with_a_large_mean():
    # The statistics are shifted sums in double: an offset of 100 costs no precision in dx.
    rng = np.random.default_rng(8)
    x = 100 + rng.normal(size=(4, 3, 3, 3))
    check_layer(layers.BatchNormalization(), [(3, 3, 3)], inputs=[x], training=True, rng=rng,
                eps=1e-2, rtol=2e-2, atol=3e-3)


# ----- against PyTorch and NumPy ------------------------------------------------------------------------

@pytest.mark.torch
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
def test_batch_norm_matches_torch(shape, training):
    rng = np.random.default_rng(zlib.crc32(repr((shape, training)).encode()))
    c, n = shape[-1], 7
    x = rng.normal(loc=0.3, scale=2.0, size=(n,) + shape).astype(np.float32)
    gamma, beta, mm, mv = (p.astype(np.float32) for p in np.split(bn_params(c, True, True, rng), 4))
    momentum, eps = 0.9, 1e-3
    layer = layers.BatchNormalization(momentum=momentum, epsilon=eps)
    h = _core.LayerHarness(layer, [list(shape)])
    layer.set_weights([gamma, beta, mm, mv])
    y = h.forward([x], training=training)
    dy = rng.normal(size=y.shape).astype(np.float32)
    dx, = h.backward(dy)
    dgamma, dbeta = np.split(h.param_grads()[:2 * c], 2)

    # torch wants (N, C, ...): move the channel axis; momentum maps to 1 - keras_momentum.
    to_nc = lambda a: torch.from_numpy(np.moveaxis(a.astype(np.float64), -1, 1).copy())
    tx = to_nc(x).requires_grad_()
    tg = torch.from_numpy(gamma.astype(np.float64)).requires_grad_()
    tb = torch.from_numpy(beta.astype(np.float64)).requires_grad_()
    rm, rv = torch.from_numpy(mm.astype(np.float64)), torch.from_numpy(mv.astype(np.float64))
    ty = F.batch_norm(tx, rm, rv, tg, tb, training=training, momentum=1 - momentum, eps=eps)
    ty.backward(to_nc(dy))
    back = lambda t: np.moveaxis(t.detach().numpy(), 1, -1)

    np.testing.assert_allclose(y, back(ty), rtol=1e-5, atol=1e-5, err_msg="forward")
    np.testing.assert_allclose(dx, back(tx.grad), rtol=1e-4, atol=1e-5, err_msg="dL/dx")
    np.testing.assert_allclose(dgamma, tg.grad.numpy(), rtol=1e-5, atol=1e-4, err_msg="dL/dgamma")
    np.testing.assert_allclose(dbeta, tb.grad.numpy(), rtol=1e-5, atol=1e-4, err_msg="dL/dbeta")

    _, _, new_mm, new_mv = layer.get_weights()
    np.testing.assert_allclose(new_mm, rm.numpy(), rtol=1e-6, atol=1e-6, err_msg="moving_mean")
    if training:
        # torch's running_var takes the UNBIASED batch variance; Keras (and signcore) the biased one.
        _, var = np_moments(x.astype(np.float64))
        np.testing.assert_allclose(new_mv, mv * momentum + var * (1 - momentum), rtol=1e-6)
        m = x.size // c
        unbiased = (rv.numpy() - mv * momentum) / (1 - momentum)
        np.testing.assert_allclose(unbiased, var * m / (m - 1), rtol=1e-5)
    else:
        np.testing.assert_array_equal(new_mv, mv)


def test_moving_statistics_follow_the_keras_equation_over_several_steps():
    rng = np.random.default_rng(21)
    momentum = 0.8
    layer = layers.BatchNormalization(momentum=momentum)
    h = _core.LayerHarness(layer, [[4, 4, 3]])
    mm, mv = np.zeros(3), np.ones(3)  # Keras's initial moving statistics
    for step in range(5):
        x = rng.normal(loc=[1.0, -2.0, 5.0], scale=[0.5, 2.0, 3.0], size=(8, 4, 4, 3)).astype(np.float32)
        y = h.forward([x], training=True)
        mean, var = np_moments(x.astype(np.float64))
        np.testing.assert_allclose(y, np_batch_norm(x, 1, 0, mean, var, 1e-3), rtol=1e-5, atol=1e-5)
        mm = mm * momentum + mean * (1 - momentum)
        mv = mv * momentum + var * (1 - momentum)
        gamma, beta, got_mm, got_mv = layer.get_weights()
        np.testing.assert_allclose(got_mm, mm, rtol=1e-5, atol=1e-6, err_msg=f"moving_mean, step {step}")
        np.testing.assert_allclose(got_mv, mv, rtol=1e-5, err_msg=f"moving_variance, step {step}")
    # Inference normalises with the moving statistics and leaves them alone.
    x = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
    y = h.forward([x], training=False)
    np.testing.assert_allclose(y, np_batch_norm(x, gamma, beta, got_mm, got_mv, 1e-3), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(layer.get_weights()[2], got_mm)


def test_batch_norm_hand_computed():
    # One channel, values 1, 3: mean 2, biased variance 1, so with epsilon 0 the output is -1, 1.
    layer = layers.BatchNormalization(epsilon=0.0, momentum=0.5)
    h = _core.LayerHarness(layer, [[1]])
    np.testing.assert_allclose(h.forward([np.array([[1.0], [3.0]], np.float32)], training=True),
                               [[-1], [1]], atol=1e-7)
    np.testing.assert_allclose(layer.get_weights()[2:], [[1.0], [1.0]])  # 0.5*0 + 0.5*2, 0.5*1 + 0.5*1
    # dx = invstd (dy - mean(dy) - xh mean(dy xh)) with dy = (1, 0), xh = (-1, 1): (0, 0).
    dx, = h.backward(np.array([[1.0], [0.0]], np.float32))
    np.testing.assert_allclose(dx, [[0], [0]], atol=1e-7)
    np.testing.assert_allclose(h.param_grads()[:2], [-1, 1], atol=1e-7)  # dgamma = sum dy xh, dbeta


def test_batch_norm_is_accurate_for_a_large_mean():
    rng = np.random.default_rng(2)
    x = (1e4 + rng.normal(size=(64, 8, 8, 4))).astype(np.float32)
    layer = layers.BatchNormalization(momentum=0.0)
    h = _core.LayerHarness(layer, [[8, 8, 4]])
    y = h.forward([x], training=True)
    mean, var = np_moments(x.astype(np.float64))
    np.testing.assert_allclose(y, np_batch_norm(x.astype(np.float64), 1, 0, mean, var, 1e-3), atol=2e-3)
    np.testing.assert_allclose(layer.get_weights()[3], var, rtol=1e-5)  # momentum 0: the batch variance


def test_batch_norm_does_not_depend_on_the_thread_count():
    rng = np.random.default_rng(6)
    x = rng.normal(loc=3.0, size=(64, 16, 16, 8)).astype(np.float32)
    dy = rng.normal(size=x.shape).astype(np.float32)
    results = []
    before = signcore.get_num_threads()
    try:
        for n in (1, 3):
            signcore.set_num_threads(n)
            layer = layers.BatchNormalization()
            h = _core.LayerHarness(layer, [[16, 16, 8]])
            y = h.forward([x], training=True)
            dx, = h.backward(dy)
            results.append((y, dx, h.param_grads(), h.param_values()))
    finally:
        signcore.set_num_threads(before)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_empty_batch_is_harmless():
    layer = layers.BatchNormalization()
    h = _core.LayerHarness(layer, [[3]])
    assert h.forward([np.zeros((0, 3), np.float32)], training=True).shape == (0, 3)
    np.testing.assert_array_equal(layer.get_weights()[2:], [np.zeros(3), np.ones(3)])


# ----- in a model --------------------------------------------------------------------------------------

def bn_model(c=8):
    return signcore.Sequential([layers.Dense(c, input_shape=(4,)), layers.BatchNormalization(),
                                layers.Dense(2)])


def test_batch_norm_parameters_in_a_sequential_model():
    model = bn_model(8)
    model.build()
    bn = model.layers[1]
    assert bn.count_params() == 32  # 4C
    assert model.count_params() == (4 * 8 + 8) + 32 + (8 * 2 + 2)
    buf = io.StringIO()
    with redirect_stdout(buf):
        model.summary()
    text = buf.getvalue()
    assert "Non-trainable params: 16" in text  # 2C
    assert f"Trainable params: {model.count_params() - 16}" in text
    assert [w.split("/")[-1] for w in bn.weight_names] == ["gamma", "beta", "moving_mean", "moving_variance"]
    gamma, beta, mm, mv = bn.get_weights()
    for w, want in ((gamma, 1), (beta, 0), (mm, 0), (mv, 1)):
        assert w.shape == (8,)
        np.testing.assert_array_equal(w, want)
    assert len(model.non_trainable_weights) == 2
    # set_weights takes the same order.
    new = [np.full(8, v, np.float32) for v in (2, 3, 4, 5)]
    bn.set_weights(new)
    for got, want in zip(bn.get_weights(), new):
        np.testing.assert_array_equal(got, want)


def test_batch_norm_without_center_and_scale_in_a_model():
    model = signcore.Sequential([layers.BatchNormalization(center=False, scale=False, input_shape=(3,))])
    model.build()
    assert model.count_params() == 6
    assert [w.split("/")[-1] for w in model.layers[0].weight_names] == ["moving_mean", "moving_variance"]
    assert len(model.trainable_weights) == 0 and len(model.non_trainable_weights) == 2


def test_training_updates_the_moving_statistics_and_predict_uses_them():
    rng = np.random.default_rng(0)
    model = signcore.Sequential([layers.BatchNormalization(momentum=0.5, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse")
    x = rng.normal(loc=2.0, size=(16, 3)).astype(np.float32)
    model.train_on_batch(x, np.zeros((16, 3), np.float32))
    gamma, beta, mm, mv = model.layers[0].get_weights()
    mean, var = np_moments(x.astype(np.float64))
    np.testing.assert_allclose(mm, 0.5 * mean, rtol=1e-5)
    np.testing.assert_allclose(mv, 0.5 + 0.5 * var, rtol=1e-5)
    np.testing.assert_allclose(model.predict(x, verbose=0), np_batch_norm(x, gamma, beta, mm, mv, 1e-3),
                               rtol=1e-5, atol=1e-5)


def test_frozen_batch_norm_runs_in_inference_mode():
    rng = np.random.default_rng(1)
    model = bn_model(5)
    model.build()
    bn = model.layers[1]
    stats = [np.linspace(0.5, 1.5, 5), np.linspace(-1, 1, 5), np.linspace(-0.5, 0.5, 5), np.linspace(1, 3, 5)]
    bn.set_weights([s.astype(np.float32) for s in stats])
    bn.trainable = False
    assert len(model.trainable_weights) == 4 and len(model.non_trainable_weights) == 4
    model.compile(optimizer="sgd", loss="mse")
    x = rng.normal(size=(32, 4)).astype(np.float32)
    before = bn.get_weights()
    model.fit(x, rng.normal(size=(32, 2)).astype(np.float32), epochs=2, batch_size=8, verbose=0)
    for got, want in zip(bn.get_weights(), before):
        np.testing.assert_array_equal(got, want)  # gamma, beta and the moving statistics frozen
    # Even with training=True the frozen layer normalises with the moving statistics (Keras 3).
    h = _core.LayerHarness(layers.BatchNormalization(trainable=False), [[5]])
    h.layer.set_weights([s.astype(np.float32) for s in stats])
    z = rng.normal(size=(6, 5)).astype(np.float32)
    np.testing.assert_allclose(h.forward([z], training=True), np_batch_norm(z, *stats, 1e-3), rtol=1e-5,
                               atol=1e-5)
    dx, = h.backward(np.ones_like(z))
    np.testing.assert_allclose(dx, np.broadcast_to(stats[0] / np.sqrt(stats[3] + 1e-3), z.shape), rtol=1e-5)
    np.testing.assert_array_equal(h.param_grads(), 0)  # no gradient for frozen weights
    np.testing.assert_allclose(h.layer.get_weights()[2], stats[2], rtol=1e-7)


@pytest.mark.torch
def test_masked_batch_norm_uses_keras_masked_moments():
    # Masking -> Dense -> BatchNormalization -> Flatten: in training the statistics are Keras's masked
    # moments, sum(w x) / (sum(w) + 1e-7) and sum(w (x - mean)^2) / (sum(w) + 1e-7), and every step is
    # normalised with them. One SGD step is compared with torch autograd of that equation, which
    # checks the masked backward through the Dense weights. (Flatten drops the mask, so the loss is
    # a plain mean.)
    rng = np.random.default_rng(13)
    n, t, f, c = 5, 6, 3, 4
    x = rng.normal(size=(n, t, f)).astype(np.float32)
    x[0, 4:] = 0
    x[2, 1] = 0
    x[3, :2] = 0
    target = rng.normal(size=(n, t * c)).astype(np.float32)
    w0 = rng.normal(scale=0.5, size=(f, c)).astype(np.float32)
    b0 = rng.normal(scale=0.5, size=c).astype(np.float32)
    model = signcore.Sequential([_core.Masking(0.0, input_shape=(t, f)), layers.Dense(c),
                                 layers.BatchNormalization(momentum=0.5), layers.Flatten()])
    model.build()
    model.layers[1].set_weights([w0, b0])
    model.compile(optimizer=signcore.optimizers.SGD(learning_rate=0.1), loss="mse")
    loss = model.train_on_batch(x, target)

    keep = torch.from_numpy((x != 0).any(axis=-1).astype(np.float64))[..., None]  # (n, t, 1)
    tw = torch.from_numpy(w0.astype(np.float64)).requires_grad_()
    tb = torch.from_numpy(b0.astype(np.float64)).requires_grad_()
    gamma = torch.ones(c, dtype=torch.float64, requires_grad=True)
    beta = torch.zeros(c, dtype=torch.float64, requires_grad=True)
    z = (torch.from_numpy(x.astype(np.float64)) * keep) @ tw + tb
    total = keep.sum() + 1e-7
    mean = (keep * z).sum(dim=(0, 1)) / total
    var = (keep * (keep * z - mean) ** 2).sum(dim=(0, 1)) / total
    y = (z - mean) / torch.sqrt(var + 1e-3) * gamma + beta
    tloss = ((y.reshape(n, -1) - torch.from_numpy(target.astype(np.float64))) ** 2).mean()
    tloss.backward()

    assert loss == pytest.approx(tloss.item(), rel=1e-5)
    new_w, new_b = model.layers[1].get_weights()
    np.testing.assert_allclose(new_w, w0 - 0.1 * tw.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_b, b0 - 0.1 * tb.grad.numpy(), rtol=1e-5, atol=1e-6)
    new_gamma, new_beta, mm, mv = model.layers[2].get_weights()
    np.testing.assert_allclose(new_gamma, 1 - 0.1 * gamma.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_beta, -0.1 * beta.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mm, 0.5 * mean.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mv, 0.5 + 0.5 * var.detach().numpy(), rtol=1e-5)
    # The masked statistics differ from the plain ones here, so the check above is not vacuous.
    assert not np.allclose(mean.detach().numpy(), z.detach().numpy().mean(axis=(0, 1)), atol=1e-3)


# ----- arguments and configs -----------------------------------------------------------------------------

def test_batch_norm_config_round_trip():
    layer = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, center=False, gamma_initializer="zeros",
                                      name="bn")
    assert (layer.axis, layer.momentum, layer.epsilon, layer.center, layer.scale) == (-1, 0.9, 1e-5, False, True)
    config = layer.get_config()
    assert config == {"name": "bn", "trainable": True, "axis": -1, "momentum": 0.9, "epsilon": 1e-5,
                      "center": False, "scale": True, "beta_initializer": "zeros",
                      "gamma_initializer": "zeros", "moving_mean_initializer": "zeros",
                      "moving_variance_initializer": "ones"}
    assert layers.BatchNormalization.from_config(config).get_config() == config
    assert layers.deserialize(layers.serialize(layer)).get_config() == config
    assert layers.BatchNormalization().name.startswith("batch_normalization")
    # The last axis may also be named by its index (batch axis counted), as in Keras.
    _core.LayerHarness(layers.BatchNormalization(axis=3), [[4, 4, 2]])


@pytest.mark.parametrize("kwargs, match", [
    (dict(axis=0), r"last \(channel\) axis.*Received: axis=0"),
    (dict(momentum=1.5), r"momentum.*Received: momentum=1\.5"),
    (dict(momentum="high"), r"momentum.*Received: momentum='high'"),
    (dict(epsilon=-1e-3), r"epsilon.*Received: epsilon=-0\.001"),
    (dict(beta_initializer="nope"), r"nope"),
    (dict(gamma_regularizer="l2"), r"gamma_regularizer.*Received: gamma_regularizer='l2'"),
    (dict(synchronized=True), r"synchronized=True"),
    (dict(renorm=True), r"Unrecognized keyword arguments passed to BatchNormalization.*renorm"),
])
def test_batch_norm_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.BatchNormalization(**kwargs)


def test_batch_norm_build_errors():
    with pytest.raises(ValueError, match=r"axis=-1 or axis=3 for input_shape=\(None, 4, 4, 2\)\. Received: axis=1"):
        _core.LayerHarness(layers.BatchNormalization(axis=1), [[4, 4, 2]])
    with pytest.raises(ValueError, match=r"non-empty channel.*input_shape=\(None, 4, 0\)"):
        _core.LayerHarness(layers.BatchNormalization(), [[4, 0]])


def _conv_bn_pool(fuse, pool, frozen, input_shape=(9, 11, 3)):
    """Input -> Conv2D(relu) -> BatchNormalization -> MaxPooling2D(*pool) -> Flatten -> Dense, built
    with the normalisation fusion on or off, from fixed weights (gamma of both signs, so the pooled
    maximum of the normalised values is sometimes the minimum of the raw ones)."""
    old = _core._fuse_normalizations()
    try:
        _core._set_fuse_normalizations(fuse)
        size, strides, padding = pool
        model = signcore.models.Sequential([
            layers.Input(input_shape),
            layers.Conv2D(6, 3, padding="same", activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling2D(size, strides=strides, padding=padding),
            layers.Flatten(),
            layers.Dense(4),
        ])
        model.compile(optimizer=signcore.optimizers.SGD(0.05), loss="mse")
        model.build((None,) + input_shape)
    finally:
        _core._set_fuse_normalizations(old)
    rng = np.random.default_rng(5)
    weights = []
    for w in model.get_weights():
        weights.append(rng.normal(scale=0.4, size=w.shape).astype(np.float32))
    weights[2] = np.array([1.2, -0.8, 0.5, -1.5, 0.9, -0.3], np.float32)  # gamma
    weights[5] = rng.uniform(0.3, 2.0, 6).astype(np.float32)            # moving variance
    model.set_weights(weights)
    model.layers[1].trainable = not frozen
    if frozen:
        model.compile(optimizer=signcore.optimizers.SGD(0.05), loss="mse")
    return model


POOLS = [((2, 2), None, "valid"), ((3, 3), (2, 2), "same"), ((2, 3), (1, 2), "valid")]


def _train_alike(fused, plain, x, y, steps, rtol=1e-5, atol=1e-6):
    """`steps` training steps of both models give the same losses, then the same weights."""
    for _ in range(steps):
        np.testing.assert_allclose(fused.train_on_batch(x, y), plain.train_on_batch(x, y), rtol=1e-5)
    for a, b in zip(fused.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize("pool", POOLS, ids=["2x2", "3x3_s2_same", "2x3_s12"])
@pytest.mark.parametrize("frozen", [False, True], ids=["batch_stats", "frozen"])
def test_batch_norm_fused_into_max_pooling_trains_as_unfused(pool, frozen):
    """A BatchNormalization that only a MaxPooling reads is applied inside the pooling, and its
    backward takes the pooling's gradient scattered (Model::fuse_normalizations): predictions,
    three training steps (losses, every weight and the moving statistics) equal the unfused
    model's, with overlapping windows, "same" padding and negative gammas; the inference output
    matches PyTorch; profile() names the fused pairs."""
    fused = _conv_bn_pool(True, pool, frozen)
    plain = _conv_bn_pool(False, pool, frozen)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 9, 11, 3)).astype(np.float32)
    y = rng.normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(fused.predict_on_batch(x), plain.predict_on_batch(x), rtol=1e-6, atol=1e-6)
    # The fused backward sums in another order (a g1 + a g2 where windows overlap, instead of
    # a (g1 + g2)): float rounding only.
    _train_alike(fused, plain, x, y, 3, rtol=2e-4, atol=1e-5)

    # PyTorch, from the trained weights, in inference mode.
    k, cb, gamma, beta, mean, var, dw, db = (torch.tensor(w) for w in fused.get_weights())
    size, strides, padding = pool
    t = torch.relu(F.conv2d(torch.tensor(x).permute(0, 3, 1, 2), k.permute(3, 2, 0, 1), cb, padding=1))
    t = F.batch_norm(t, mean, var, gamma, beta, training=False, eps=1e-3)
    if padding == "same":  # Keras's "same": pad so that out = ceil(in / stride), with -inf
        pads = []
        for n, s, p in zip(t.shape[:1:-1], (strides or size)[::-1], size[::-1]):
            total = max((-(-n // s) - 1) * s + p - n, 0)
            pads += [total // 2, total - total // 2]
        t = F.pad(t, pads, value=-float("inf"))
    t = F.max_pool2d(t, size, stride=strides or size)
    expected = t.permute(0, 2, 3, 1).reshape(len(x), -1) @ dw + db
    np.testing.assert_allclose(fused.predict_on_batch(x), expected.numpy(), rtol=1e-4, atol=1e-4)

    bn, mp = fused.layers[1].name, fused.layers[2].name
    assert fused.profile(x, y, steps=1, print_table=False)["normalized_in"] == {bn: mp}
    assert plain.profile(x, y, steps=1, print_table=False)["normalized_in"] == {}


def test_batch_norm_fusion_only_where_it_is_safe():
    """No fusion when the normalisation is the model's output or feeds something other than a
    MaxPooling; a normalisation of the model's input fuses and matches the unfused model."""
    x = np.random.default_rng(1).normal(size=(4, 6, 6, 3)).astype(np.float32)
    out_bn = signcore.models.Sequential([layers.Input((6, 6, 3)), layers.Conv2D(4, 3), layers.BatchNormalization()])
    into_avg = signcore.models.Sequential([layers.Input((6, 6, 3)), layers.BatchNormalization(),
                                           layers.AveragePooling2D(2), layers.Flatten(), layers.Dense(2)])
    for m in (out_bn, into_avg):
        m.compile(optimizer="sgd", loss="mse")
        y = np.zeros((4,) + m.output_shape[1:], np.float32)
        assert m.profile(x, y, steps=1, print_table=False)["normalized_in"] == {}

    def first(fuse):
        old = _core._fuse_normalizations()
        try:
            _core._set_fuse_normalizations(fuse)
            signcore.utils.set_random_seed(3)
            m = signcore.models.Sequential([layers.Input((6, 6, 3)), layers.BatchNormalization(),
                                            layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(2)])
            m.compile(optimizer="sgd", loss="mse")
            m.build((None, 6, 6, 3))
        finally:
            _core._set_fuse_normalizations(old)
        return m
    fused, plain = first(True), first(False)
    y = np.ones((4, 2), np.float32)
    assert len(fused.profile(x, y, steps=1, print_table=False)["normalized_in"]) == 1
    fused.set_weights(plain.get_weights())  # profile() trained the fused one a step
    _train_alike(fused, plain, x, y, 2)
    np.testing.assert_allclose(fused.predict_on_batch(x), plain.predict_on_batch(x), rtol=1e-5, atol=1e-6)


def _conv_bn_dense(fuse, head):
    """Input -> `head` (conv layers ending in a relu, a tanh, ...) -> BatchNormalization -> Flatten
    -> Dense, built with the normalisation fusions on or off, from one seed."""
    old = _core._fuse_normalizations()
    try:
        _core._set_fuse_normalizations(fuse)
        signcore.utils.set_random_seed(11)
        inp = layers.Input((7, 6, 3))
        h = inp
        for layer in head():
            h = layer(h)
        out = layers.Dense(3)(layers.Flatten()(layers.BatchNormalization(name="bn")(h)))
        model = signcore.models.Model(inp, out)
        model.compile(optimizer=signcore.optimizers.SGD(0.05), loss="mse")
        model.predict_on_batch(np.zeros((1, 7, 6, 3), np.float32))  # builds it with the switch set
    finally:
        _core._set_fuse_normalizations(old)
    return model


@pytest.mark.parametrize("head,handed_off", [
    (lambda: [layers.Conv2D(5, 3, padding="same", activation="relu", name="c")], True),
    (lambda: [layers.Conv2D(5, 3, padding="same", name="c"), layers.Activation("relu")], True),
    (lambda: [layers.Conv2D(5, 3, padding="same", activation="tanh", name="c")], False),
    (lambda: [layers.Conv2D(5, 3, padding="same", name="c"), layers.Activation("relu"),
              layers.ZeroPadding2D(1)], False),
], ids=["conv_relu", "conv_then_activation", "conv_tanh", "padding_between"])
def test_relu_derivative_handed_to_batch_norm_trains_as_before(head, handed_off):
    """A BatchNormalization reading the relu output of a convolution (its own activation, or a fused
    Activation layer) applies the relu's derivative in its backward, and the convolution skips its
    own (Model::hand_off_relus): three training steps equal the model without the hand-off. Not
    done after a tanh, nor through a layer in between."""
    fused, plain = _conv_bn_dense(True, head), _conv_bn_dense(False, head)
    plain.set_weights(fused.get_weights())
    rng = np.random.default_rng(4)
    x = rng.normal(size=(6, 7, 6, 3)).astype(np.float32)
    y = rng.normal(size=(6, 3)).astype(np.float32)
    _train_alike(fused, plain, x, y, 3)
    report = fused.profile(x, y, steps=1, print_table=False)
    assert report["relu_derivative_in"] == (["bn"] if handed_off else [])
    assert plain.profile(x, y, steps=1, print_table=False)["relu_derivative_in"] == []


def test_fused_batch_norm_gradients_stay_accurate_for_a_large_beta():
    """With beta far larger than gamma, the pooled values hold x - mean to a few digits only
    (batch_norm.cpp); the fused backward then gathers x at the maxima, and one step's gradients
    match the unfused model's closely."""
    models = [_conv_bn_pool(fuse, POOLS[0], False) for fuse in (True, False)]
    for m in models:
        w = m.get_weights()
        w[2] = np.full(6, 0.01, np.float32)  # gamma
        w[3] = np.full(6, 50.0, np.float32)  # beta
        m.set_weights(w)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 9, 11, 3)).astype(np.float32)
    y = rng.normal(size=(5, 4)).astype(np.float32)
    for m in models:
        m.train_on_batch(x, y)
    for a, b in zip(*(m.get_weights() for m in models)):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
