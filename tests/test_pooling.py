"""MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D and SpatialDropout2D:
gradient checks for every padding / stride / keepdims mode, hand-computed cases, PyTorch for the
forward and dx (Keras's asymmetric "same" padding reproduced with an explicit pad), tie-breaking,
thread-count independence, Keras-style arguments, configs and error messages."""
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import signcore
from signcore import _core, layers

from gradcheck import check_layer

# (pool_size, strides, padding, per-sample input shape); odd sizes, overlapping windows (stride <
# pool), gaps (stride > pool), non-square windows, "same" with odd and even padding totals.
POOL_CASES = [
    ((2, 2), None, "valid", (4, 4, 3)),
    ((3, 3), (2, 2), "valid", (7, 6, 2)),
    ((2, 2), (3, 3), "valid", (7, 8, 2)),
    ((2, 3), (1, 2), "same", (5, 7, 2)),
    ((3, 3), (2, 2), "same", (5, 6, 3)),
    ((2, 2), None, "same", (5, 5, 1)),
    ((3, 2), (1, 1), "same", (4, 3, 2)),
]
CASE_IDS = [f"{p[0]}x{p[1]}-s{s}-{pad}-{shape}" for p, s, pad, shape in POOL_CASES]


def distinct_inputs(shape, rng, spacing=0.05):
    """Values all at least `spacing` apart (a shuffled grid), so no window has a tie and a
    finite-difference step of 5e-3 never changes which value is the maximum."""
    n = int(np.prod(shape))
    return (rng.permutation(n) - n / 2).astype(np.float64).reshape(shape) * spacing


def keras_same_pad(size, pool, stride):
    """(before, after) padding of Keras/TF "same": total max((out-1)s + k - n, 0), extra after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + pool - size, 0)
    return total // 2, total - total // 2


def torch_pool(kind, x_nhwc, pool, strides, padding):
    """Keras pooling through torch on NCHW: explicit asymmetric padding; padded cells are -inf for
    max and excluded from the average's divisor (sum of real cells / count of real cells)."""
    strides = strides or pool
    x = x_nhwc.permute(0, 3, 1, 2)
    if padding == "same":
        (t, b), (l, r) = (keras_same_pad(x.shape[2], pool[0], strides[0]),
                          keras_same_pad(x.shape[3], pool[1], strides[1]))
        if kind == "max":
            x = F.pad(x, (l, r, t, b), value=-float("inf"))
            y = F.max_pool2d(x, pool, strides)
        else:
            ones = F.pad(torch.ones_like(x[:1, :1]), (l, r, t, b))
            x = F.pad(x, (l, r, t, b))
            y = F.avg_pool2d(x, pool, strides) / F.avg_pool2d(ones, pool, strides)
    else:
        y = (F.max_pool2d if kind == "max" else F.avg_pool2d)(x, pool, strides)
    return y.permute(0, 2, 3, 1)


def pool_layer(kind, pool, strides, padding):
    cls = layers.MaxPooling2D if kind == "max" else layers.AveragePooling2D
    return cls(pool_size=pool, strides=strides, padding=padding)


# ----- gradient checks ---------------------------------------------------------------------------------

# Max pooling records the arg-max in a training forward and finds it again in backward after an
# inference forward: both paths are checked.
@pytest.mark.parametrize("kind, training", [("max", False), ("max", True), ("average", False)])
@pytest.mark.parametrize("pool, strides, padding, shape", POOL_CASES, ids=CASE_IDS)
def test_pooling_gradcheck(kind, training, pool, strides, padding, shape):
    layer = pool_layer(kind, pool, strides, padding)
    harness, _ = check_layer(layer, [shape], batch=2, training=training,
                             input_fn=lambda shapes, rng: [distinct_inputs((2,) + shapes[0], rng)])
    out_h = -(-shape[0] // (strides or pool)[0]) if padding == "same" else \
        (shape[0] - pool[0]) // (strides or pool)[0] + 1
    assert harness.output_shape[0] == out_h


@pytest.mark.parametrize("kind", ["max", "average"])
def test_pooling_gradcheck_batch_one(kind):
    check_layer(pool_layer(kind, (3, 3), (2, 2), "same"), [(6, 5, 4)], batch=1,
                input_fn=lambda shapes, rng: [distinct_inputs((1,) + shapes[0], rng)])


@pytest.mark.parametrize("kind, training", [("average", False), ("max", False), ("max", True)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling_gradcheck(kind, training, keepdims):
    cls = layers.GlobalAveragePooling2D if kind == "average" else layers.GlobalMaxPooling2D
    harness, _ = check_layer(cls(keepdims=keepdims), [(3, 5, 4)], batch=3, training=training,
                             input_fn=lambda shapes, rng: [distinct_inputs((3,) + shapes[0], rng)])
    assert harness.output_shape == ((1, 1, 4) if keepdims else (4,))


# ----- against PyTorch ------------------------------------------------------------------------------

@pytest.mark.torch
@pytest.mark.parametrize("kind", ["max", "average"])
@pytest.mark.parametrize("pool, strides, padding, shape", POOL_CASES, ids=CASE_IDS)
def test_pooling_matches_torch(kind, pool, strides, padding, shape):
    rng = np.random.default_rng(zlib.crc32(repr((kind, pool, strides, padding, shape)).encode()))
    x = distinct_inputs((3,) + shape, rng).astype(np.float32)
    h = _core.LayerHarness(pool_layer(kind, pool, strides, padding), [list(shape)])
    y = h.forward([x], training=True)
    dy = rng.normal(size=y.shape).astype(np.float32)
    dx, = h.backward(dy)

    tx = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    ty = torch_pool(kind, tx, pool, strides, padding)
    ty.backward(torch.from_numpy(dy.astype(np.float64)))
    assert y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-6, atol=1e-6, err_msg="forward")
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-6, atol=1e-6, err_msg="dL/dx")


@pytest.mark.torch
def test_same_padding_matches_torch_own_padding_when_symmetric():
    # 5x5, pool 3, stride 2, "same": 3 outputs, one padded cell on each side, so torch's own
    # symmetric padding applies directly (count_include_pad=False for the average).
    rng = np.random.default_rng(17)
    x = distinct_inputs((2, 5, 5, 3), rng).astype(np.float32)
    tx = torch.from_numpy(x.astype(np.float64)).permute(0, 3, 1, 2)
    want = {"max": F.max_pool2d(tx, 3, 2, padding=1),
            "average": F.avg_pool2d(tx, 3, 2, padding=1, count_include_pad=False)}
    for kind, ty in want.items():
        h = _core.LayerHarness(pool_layer(kind, (3, 3), (2, 2), "same"), [[5, 5, 3]])
        np.testing.assert_allclose(h.forward([x]), ty.permute(0, 2, 3, 1).numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.torch
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling_matches_torch(keepdims):
    rng = np.random.default_rng(5)
    x = distinct_inputs((4, 6, 7, 5), rng).astype(np.float32)
    for cls, fn in [(layers.GlobalAveragePooling2D, lambda t: t.mean(dim=(1, 2), keepdim=keepdims)),
                    (layers.GlobalMaxPooling2D, lambda t: t.amax(dim=(1, 2), keepdim=keepdims))]:
        h = _core.LayerHarness(cls(keepdims=keepdims), [[6, 7, 5]])
        y = h.forward([x])
        dy = rng.normal(size=y.shape).astype(np.float32)
        dx, = h.backward(dy)
        tx = torch.from_numpy(x.astype(np.float64)).requires_grad_()
        ty = fn(tx)
        ty.backward(torch.from_numpy(dy.astype(np.float64)))
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-6, atol=1e-7)


# ----- hand-computed cases ----------------------------------------------------------------------------

def test_max_pooling_hand_computed():
    x = np.array([[1, 5, 2, 0],
                  [3, 4, 8, 1],
                  [0, 2, 6, 7],
                  [9, 1, 3, 5]], np.float32).reshape(1, 4, 4, 1)
    h = _core.LayerHarness(layers.MaxPooling2D(), [[4, 4, 1]])
    np.testing.assert_array_equal(h.forward([x])[0, :, :, 0], [[5, 8], [9, 7]])
    dx, = h.backward(np.array([10, 20, 30, 40], np.float32).reshape(1, 2, 2, 1))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 10, 0, 0],
                                                   [0, 0, 20, 0],
                                                   [0, 0, 0, 40],
                                                   [30, 0, 0, 0]])


def test_average_pooling_same_divides_by_the_real_cells():
    # 3x3 input, pool 2, stride 2, "same": output 2x2, padding 1 row / column at the bottom / right.
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)
    h = _core.LayerHarness(layers.AveragePooling2D(padding="same"), [[3, 3, 1]])
    y = h.forward([x])[0, :, :, 0]
    np.testing.assert_allclose(y, [[(1 + 2 + 4 + 5) / 4, (3 + 6) / 2], [(7 + 8) / 2, 9]], rtol=1e-6)
    dx, = h.backward(np.array([4, 2, 2, 1], np.float32).reshape(1, 2, 2, 1))
    np.testing.assert_allclose(dx[0, :, :, 0], [[1, 1, 1], [1, 1, 1], [1, 1, 1]], rtol=1e-6)


def test_max_pooling_same_ignores_the_padding():
    # All-negative input: a zero-padded max would return 0 on the border windows.
    x = -np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)
    h = _core.LayerHarness(layers.MaxPooling2D(padding="same"), [[3, 3, 1]])
    np.testing.assert_array_equal(h.forward([x])[0, :, :, 0], [[-1, -3], [-7, -9]])


def test_max_pooling_ties_go_to_the_first_maximum_in_window_order():
    # Every window is constant: the gradient goes to its top-left cell (first in row-major order),
    # as PyTorch's CPU kernel and TensorFlow do.
    x = np.ones((1, 4, 4, 2), np.float32)
    h = _core.LayerHarness(layers.MaxPooling2D(), [[4, 4, 2]])
    h.forward([x])
    dx, = h.backward(np.ones((1, 2, 2, 2), np.float32))
    want = np.zeros((4, 4))
    want[::2, ::2] = 1
    for c in range(2):
        np.testing.assert_array_equal(dx[0, :, :, c], want)
    # The same rule for overlapping windows and for the global maximum.
    x = np.array([[0, 3, 3], [3, 1, 3], [2, 3, 0]], np.float32).reshape(1, 3, 3, 1)
    h = _core.LayerHarness(layers.MaxPooling2D(2, strides=1), [[3, 3, 1]])
    h.forward([x])
    dx, = h.backward(np.array([1, 10, 100, 1000], np.float32).reshape(1, 2, 2, 1))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 11, 0], [100, 0, 1000], [0, 0, 0]])
    h = _core.LayerHarness(layers.GlobalMaxPooling2D(), [[3, 3, 1]])
    h.forward([x])
    dx, = h.backward(np.array([[5]], np.float32))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 5, 0], [0, 0, 0], [0, 0, 0]])


def test_max_pooling_propagates_nan():
    x = np.zeros((1, 2, 2, 1), np.float32)
    x[0, 1, 0, 0] = np.nan
    for layer in (layers.MaxPooling2D(), layers.GlobalMaxPooling2D()):
        h = _core.LayerHarness(layer, [[2, 2, 1]])
        for training in (False, True):
            assert np.isnan(h.forward([x], training=training)).all()
            dx, = h.backward(np.ones((1, 1), np.float32).reshape(h.forward([x], training=training).shape))
            np.testing.assert_array_equal(dx.ravel(), [0, 0, 1, 0])  # the gradient follows the NaN


def test_global_pooling_hand_computed():
    x = np.arange(12, dtype=np.float32).reshape(1, 2, 3, 2)  # channel 0: 0,2,..,10; channel 1: 1,..,11
    h = _core.LayerHarness(layers.GlobalAveragePooling2D(), [[2, 3, 2]])
    np.testing.assert_allclose(h.forward([x]), [[5, 6]])
    dx, = h.backward(np.array([[6, 12]], np.float32))
    np.testing.assert_allclose(dx[0, :, :, 0], np.ones((2, 3)))
    np.testing.assert_allclose(dx[0, :, :, 1], 2 * np.ones((2, 3)))
    h = _core.LayerHarness(layers.GlobalMaxPooling2D(keepdims=True), [[2, 3, 2]])
    np.testing.assert_array_equal(h.forward([x]), [[[[10, 11]]]])


def test_global_average_pooling_is_accurate_on_large_images():
    rng = np.random.default_rng(3)
    x = (1000 + rng.normal(size=(2, 64, 64, 3))).astype(np.float32)
    h = _core.LayerHarness(layers.GlobalAveragePooling2D(), [[64, 64, 3]])
    np.testing.assert_allclose(h.forward([x]), x.astype(np.float64).mean(axis=(1, 2)), rtol=1e-7)


def test_pooling_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(8, 12, 12, 16)).astype(np.float32)
    cases = [layers.MaxPooling2D(3, 2, "same"), layers.AveragePooling2D(3, 2, "same"),
             layers.GlobalAveragePooling2D(), layers.GlobalMaxPooling2D()]
    before = signcore.get_num_threads()
    try:
        for layer in cases:
            h = _core.LayerHarness(layer, [[12, 12, 16]])
            results = []
            for n in (1, 3):
                signcore.set_num_threads(n)
                y = h.forward([x])
                dy = np.cos(np.arange(y.size, dtype=np.float32)).reshape(y.shape)
                results.append((y, h.backward(dy)[0]))
            np.testing.assert_array_equal(results[0][0], results[1][0])
            np.testing.assert_array_equal(results[0][1], results[1][1])
    finally:
        signcore.set_num_threads(before)


# ----- in a model, configs, arguments -----------------------------------------------------------------

def test_pooling_in_a_sequential_model():
    model = signcore.Sequential([
        layers.Reshape((6, 6, 2), input_shape=(72,)),
        layers.MaxPooling2D(),
        layers.AveragePooling2D(pool_size=2, padding="same"),
        layers.GlobalMaxPooling2D(keepdims=True),
        layers.GlobalAveragePooling2D(),
    ])
    model.build()
    assert [tuple(l.output_shape) for l in model.layers[1:]] == [
        (None, 3, 3, 2), (None, 2, 2, 2), (None, 1, 1, 2), (None, 2)]
    assert model.count_params() == 0
    x = np.random.default_rng(0).normal(size=(5, 72)).astype(np.float32)
    m = x.reshape(5, 3, 2, 3, 2, 2).max(axis=(2, 4))  # (5, 3, 3, 2)
    parts = [slice(0, 2), slice(2, 3)]  # "same" windows of 2 on 3 cells: {0, 1} and {2}
    a = np.stack([np.stack([m[:, r, c].mean(axis=(1, 2)) for c in parts], 1) for r in parts], 1)
    np.testing.assert_allclose(model.predict(x, verbose=0), a.max(axis=(1, 2)), rtol=1e-6)


@pytest.mark.parametrize("cls", [layers.MaxPooling2D, layers.AveragePooling2D])
def test_pooling_arguments_and_config(cls):
    layer = cls(3, strides=(1, 2), padding="SAME", name="p")
    assert layer.pool_size == (3, 3) and layer.strides == (1, 2) and layer.padding == "same"
    assert layer.data_format == "channels_last"
    assert cls().strides == (2, 2)  # strides None = pool_size
    config = layer.get_config()
    assert config == {"name": "p", "trainable": True, "pool_size": [3, 3], "padding": "same",
                      "strides": [1, 2], "data_format": "channels_last"}
    clone = cls.from_config(config)
    assert type(clone) is cls and clone.get_config() == config
    assert layers.deserialize(layers.serialize(layer)).get_config() == config
    assert cls(strides=None).get_config()["strides"] == [2, 2]
    assert layers.MaxPool2D is layers.MaxPooling2D and layers.AvgPool2D is layers.AveragePooling2D


@pytest.mark.parametrize("cls", [layers.GlobalAveragePooling2D, layers.GlobalMaxPooling2D])
def test_global_pooling_config(cls):
    layer = cls(keepdims=True, name="g")
    assert layer.keepdims and layer.data_format == "channels_last"
    config = layer.get_config()
    assert config == {"name": "g", "trainable": True, "data_format": "channels_last", "keepdims": True}
    assert cls.from_config(config).get_config() == config
    assert cls().get_config()["keepdims"] is False


def test_automatic_names():
    assert layers.MaxPooling2D().name.startswith("max_pooling2d")
    assert layers.AveragePooling2D().name.startswith("average_pooling2d")
    assert layers.GlobalAveragePooling2D().name.startswith("global_average_pooling2d")
    assert layers.GlobalMaxPooling2D().name.startswith("global_max_pooling2d")
    assert layers.SpatialDropout2D(0.1).name.startswith("spatial_dropout2d")


@pytest.mark.parametrize("kwargs, match", [
    (dict(pool_size=0), r"pool_size.*Received: pool_size=0"),
    (dict(pool_size=(2, 2, 2)), r"pool_size.*tuple of 2.*\(2, 2, 2\)"),
    (dict(pool_size=(2, -1)), r"pool_size=\(2, -1\)"),
    (dict(pool_size="2"), r"pool_size='2'"),
    (dict(strides=0), r"strides.*Received: strides=0"),
    (dict(strides=(1, 2, 3)), r"strides=\(1, 2, 3\)"),
    (dict(padding="full"), r"padding.*Received: padding='full'"),
    (dict(data_format="channels_first"), r"channels_last.*Received: data_format='channels_first'"),
])
@pytest.mark.parametrize("cls", [layers.MaxPooling2D, layers.AveragePooling2D])
def test_pooling_argument_errors(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_pooling_errors_name_what_was_received():
    with pytest.raises(ValueError, match="Unrecognized keyword arguments passed to MaxPooling2D.*pool"):
        layers.MaxPooling2D(pool=2)
    with pytest.raises(ValueError, match="Unrecognized keyword arguments passed to GlobalMaxPooling2D"):
        layers.GlobalMaxPooling2D(axis=1)
    with pytest.raises(ValueError, match="channels_last.*Received: data_format='channels_first'"):
        layers.GlobalAveragePooling2D(data_format="channels_first")
    # "valid" with a window larger than the image.
    with pytest.raises(ValueError, match=r"pool_size \(3, 3\).*input_shape=\(None, 2, 5, 1\)"):
        _core.LayerHarness(layers.MaxPooling2D(3), [[2, 5, 1]])
    # Images only.
    for layer in (layers.AveragePooling2D(), layers.GlobalMaxPooling2D(), layers.SpatialDropout2D(0.5)):
        with pytest.raises(ValueError, match=r"\(None, height, width, channels\).*input_shape=\(None, 8, 3\)"):
            _core.LayerHarness(layer, [[8, 3]])


# ----- SpatialDropout2D ------------------------------------------------------------------------------

def test_spatial_dropout_zeroes_whole_channels_and_scales():
    rate = 0.4
    x = np.random.default_rng(2).uniform(1, 2, size=(64, 5, 4, 16)).astype(np.float32)
    h = _core.LayerHarness(layers.SpatialDropout2D(rate), [[5, 4, 16]])
    y = h.forward([x], training=True, seed=11)
    # Per (sample, channel): the whole 5x4 map is either all 0 or all x / (1 - rate).
    dropped = (y == 0).reshape(64, 20, 16)
    assert np.all(dropped.all(axis=1) | ~dropped.any(axis=1))
    keep = ~dropped[:, 0, :].reshape(64, 1, 1, 16)
    scale = np.float32(1 / (1 - rate))
    np.testing.assert_allclose(y, np.where(keep, x * scale, 0), rtol=1e-6, atol=0)
    assert abs((~keep).mean() - rate) < 0.06  # 1024 maps
    # The gradient uses the same mask.
    dy = np.random.default_rng(3).normal(size=x.shape).astype(np.float32)
    dx, = h.backward(dy)
    np.testing.assert_allclose(dx, np.where(keep, dy * scale, 0), rtol=1e-6, atol=0)


def test_spatial_dropout_is_identity_at_inference_and_gradchecks_in_training():
    x = np.random.default_rng(4).normal(size=(3, 4, 4, 5)).astype(np.float32)
    h = _core.LayerHarness(layers.SpatialDropout2D(0.5), [[4, 4, 5]])
    np.testing.assert_array_equal(h.forward([x], training=False), x)
    np.testing.assert_array_equal(h.backward(x)[0], x)
    check_layer(layers.SpatialDropout2D(0.5), [(3, 4, 5)], training=True, seed=5, batch=4)


def test_spatial_dropout_seed_reproducibility():
    x = np.ones((4, 3, 3, 8), np.float32)

    def masks(layer_seed, n=2):
        h = _core.LayerHarness(layers.SpatialDropout2D(0.5, seed=layer_seed), [[3, 3, 8]])
        return [h.forward([x], training=True, seed=100 + i) for i in range(n)]

    a, b = masks(42), masks(42)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)  # the layer's own engine: independent of ctx seeds
    assert not np.array_equal(a[0], a[1])  # and it advances between calls
    h = _core.LayerHarness(layers.SpatialDropout2D(0.5), [[3, 3, 8]])
    np.testing.assert_array_equal(h.forward([x], training=True, seed=7), h.forward([x], training=True, seed=7))
    assert not np.array_equal(h.forward([x], training=True, seed=7), h.forward([x], training=True, seed=8))


def test_spatial_dropout_arguments_and_config():
    layer = layers.SpatialDropout2D(0.25, seed=3, name="sd")
    assert isinstance(layer, layers.Dropout) and layer.rate == 0.25 and layer.seed == 3
    config = layer.get_config()
    assert config == {"name": "sd", "trainable": True, "rate": 0.25, "seed": 3, "data_format": "channels_last"}
    assert layers.SpatialDropout2D.from_config(config).get_config() == config
    with pytest.raises(ValueError, match=r"rate.*Received: rate=1\.0"):
        layers.SpatialDropout2D(1.0)
    with pytest.raises(ValueError, match=r"rate.*Received: rate=-0\.5"):
        layers.SpatialDropout2D(-0.5)
    with pytest.raises(ValueError, match="channels_last.*Received: data_format='channels_first'"):
        layers.SpatialDropout2D(0.5, data_format="channels_first")
    with pytest.raises(ValueError, match="Unrecognized keyword arguments passed to SpatialDropout2D"):
        layers.SpatialDropout2D(0.5, noise_shape=(None, 1, 1, 3))


# Dropout's broadcast paths, shared with SpatialDropout2D: a contiguous run of broadcast axes
# ((N, 1, 1, C) and (N, 1)), and broadcast axes that are not contiguous (the general path).
@pytest.mark.parametrize("noise_shape, shape", [
    ((None, 1, 1, 3), (4, 5, 3)),
    ((None, 1), (7,)),
    ((None, 1, 4, 1), (3, 4, 2)),
    ((1, 3, 1, 2), (3, 4, 2)),
])
def test_dropout_broadcast_masks(noise_shape, shape):
    x = np.random.default_rng(1).uniform(1, 2, size=(6,) + shape).astype(np.float32)
    h = _core.LayerHarness(layers.Dropout(0.5, noise_shape=noise_shape), [list(shape)])
    y = h.forward([x], training=True, seed=3)
    keep = y != 0
    # The mask is constant along every axis where noise_shape is 1.
    for axis, d in enumerate(noise_shape):
        if d == 1:
            np.testing.assert_array_equal(keep, np.take(keep, [0], axis=axis).repeat(x.shape[axis], axis))
    assert keep.any() and not keep.all()
    np.testing.assert_allclose(y, np.where(keep, x * np.float32(2), 0), rtol=1e-6, atol=0)
    dy = np.random.default_rng(2).normal(size=x.shape).astype(np.float32)
    np.testing.assert_allclose(h.backward(dy)[0], np.where(keep, dy * np.float32(2), 0), rtol=1e-6, atol=0)


# ----- Convolution + MaxPooling in one inference pass (Model::fuse_poolings) ----------------------

def _conv_pool_model(fuse, conv_kw, pool_kw, input_shape, separate_relu=False, batch_norm=False):
    """Input -> Conv2D(**conv_kw) [-> Activation("relu")] [-> BatchNormalization] -> MaxPooling2D
    -> Flatten -> Dense(3), built with the pooling fusion on or off, from fixed random weights
    (gammas of both signs and one 0, moving statistics away from 0 and 1; batch_norm="frozen":
    a BatchNormalization with trainable=False)."""
    old = _core._fuse_poolings()
    try:
        _core._set_fuse_poolings(fuse)
        stack = [layers.Input(input_shape), layers.Conv2D(**conv_kw)]
        if separate_relu:
            stack.append(layers.Activation("relu"))
        if batch_norm:
            stack.append(layers.BatchNormalization())
        stack += [layers.MaxPooling2D(**pool_kw), layers.Flatten(), layers.Dense(3)]
        model = signcore.models.Sequential(stack)
        model.compile(optimizer=signcore.optimizers.SGD(0.005), loss="mse")
        model.build((None,) + input_shape)
    finally:
        _core._set_fuse_poolings(old)
    rng = np.random.default_rng(8)
    weights = [rng.normal(scale=0.4, size=w.shape).astype(np.float32) for w in model.get_weights()]
    if batch_norm:
        f = conv_kw["filters"]
        weights[2] = rng.choice([-1.0, 1.0], f).astype(np.float32) * rng.uniform(0.3, 1.5, f).astype(np.float32)
        weights[2][1] = 0.0  # the map is constant: every cell ties, the first one takes the gradient
        weights[5] = rng.uniform(0.3, 2.0, f).astype(np.float32)  # moving variance
    model.set_weights(weights)
    if batch_norm == "frozen":
        next(l for l in model.layers if isinstance(l, layers.BatchNormalization)).trainable = False
        model.compile(optimizer=signcore.optimizers.SGD(0.005), loss="mse")
    return model


# (conv arguments, pool arguments, input shape, separate Activation, BatchNormalization, fused)
CONV_POOLS = {
    # odd output: the last line and column of the convolution belong to no window
    "2x2_odd": (dict(filters=16, kernel_size=3, padding="same", activation="relu"), dict(pool_size=2),
                (9, 11, 3), False, False, True),
    # "same" pooling: the last windows are cut short; 8 filters (the narrower kernel block)
    "2x2_same_cut": (dict(filters=8, kernel_size=3, activation="relu"), dict(pool_size=2, padding="same"),
                     (10, 13, 5), False, False, True),
    # a relu of its own, windows 3 x 2, dilation, 24 filters
    "3x2_dilated_activation": (dict(filters=24, kernel_size=(3, 2), dilation_rate=2), dict(pool_size=(3, 2)),
                               (14, 9, 4), True, False, True),
    # no activation (negative values reach the pooling), stride-2 convolution
    "linear_strided": (dict(filters=16, kernel_size=3, strides=2, padding="same"), dict(pool_size=2),
                       (12, 12, 8), False, False, True),
    # conv -> BatchNormalization -> pool: the normalisation's inference map in between
    "batch_norm": (dict(filters=16, kernel_size=3, padding="same", activation="relu"), dict(pool_size=2),
                   (9, 10, 3), False, True, True),
    # the same with the normalisation frozen (its moving statistics in training too)
    "batch_norm_frozen": (dict(filters=16, kernel_size=3, padding="same", activation="relu"), dict(pool_size=2),
                          (9, 10, 3), False, "frozen", True),
    # Winograd F(2x2, 3x3) (8 input channels): its tile rows are the rows of windows; odd output
    # (5 tile rows, 4 rows of windows per image), "same" pooling whose last row has one line, and
    # through a BatchNormalization (in training the last row of windows writes three lines)
    "winograd_odd": (dict(filters=16, kernel_size=3, padding="same", activation="relu"), dict(pool_size=2),
                     (9, 11, 8), False, False, True),
    "winograd_same_cut": (dict(filters=8, kernel_size=3, activation="relu"), dict(pool_size=2, padding="same"),
                          (11, 12, 16), False, False, True),
    "winograd_batch_norm": (dict(filters=16, kernel_size=3, padding="same", activation="relu"),
                            dict(pool_size=2), (9, 10, 8), False, True, True),
    # not fused: overlapping windows, 6 filters (no direct kernel)
    "overlapping": (dict(filters=16, kernel_size=3, activation="relu"), dict(pool_size=3, strides=2),
                    (11, 11, 3), False, False, False),
    "six_filters": (dict(filters=6, kernel_size=3, activation="relu"), dict(pool_size=2),
                    (8, 8, 3), False, False, False),
}


@pytest.mark.parametrize("case", list(CONV_POOLS))
def test_convolution_computes_the_max_pooling_after_it_in_inference(case):
    """A convolution computes the MaxPooling that alone reads its output (directly, through an
    Activation or through a BatchNormalization; Model::fuse_poolings): in inference never writing
    its output, in training through a BatchNormalization with the window maxima and the
    normalisation's statistics taken while its lines are in cache. Predictions, losses, weights and moving statistics equal the unfused
    model's, with windows that drop or cut the last lines (whose lines still count in the
    statistics), no activation, gammas of both signs and 0, a frozen normalisation; profile() names
    the layers a convolution computes in inference; configurations it cannot run stay unfused."""
    conv_kw, pool_kw, shape, relu, bn, expect_fused = CONV_POOLS[case]
    fused = _conv_pool_model(True, conv_kw, pool_kw, shape, relu, bn)
    plain = _conv_pool_model(False, conv_kw, pool_kw, shape, relu, bn)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5,) + shape).astype(np.float32)
    y = rng.normal(size=(5, 3)).astype(np.float32)
    # Bit for bit, except that a training step with a BatchNormalization sums its statistics in
    # another order (line by line in the convolution, shifted by the moving mean): float rounding
    # (about 1e-7 after one step), which the steps amplify.
    same = np.testing.assert_array_equal if not bn else \
        (lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-4))
    np.testing.assert_array_equal(fused.predict_on_batch(x), plain.predict_on_batch(x))
    for _ in range(2):  # train (weights and moving statistics change), predict
        np.testing.assert_allclose(fused.train_on_batch(x, y), plain.train_on_batch(x, y), rtol=1e-5)
        same(fused.predict_on_batch(x), plain.predict_on_batch(x))
    for wa, wb in zip(fused.get_weights(), plain.get_weights()):
        same(wa, wb)
    same(fused.evaluate(x, y, verbose=0), plain.evaluate(x, y, verbose=0))

    conv = fused.layers[0].name
    inner = [l.name for l in fused.layers[1:-2] if l.__class__.__name__ != "Activation"]
    expected = {name: conv for name in inner} if expect_fused else {}
    assert fused.profile(x, None, steps=1, print_table=False)["computed_in"] == expected
    assert fused.profile(x, y, steps=1, print_table=False)["computed_in"] == {}
    assert plain.profile(x, None, steps=1, print_table=False)["computed_in"] == {}


@pytest.mark.torch
@pytest.mark.parametrize("case", ["2x2_odd", "winograd_odd"])
def test_convolution_with_pooling_in_inference_matches_torch(case):
    """The fused inference pass against PyTorch: relu convolution (direct, or Winograd with 8 input
    channels), 2 x 2 pooling of an odd-sized output (the last line and column dropped)."""
    conv_kw, pool_kw, shape, *_ = CONV_POOLS[case]
    model = _conv_pool_model(True, conv_kw, pool_kw, shape)
    x = np.random.default_rng(2).normal(size=(4,) + shape).astype(np.float32)
    k, cb, dw, db = (torch.tensor(w, dtype=torch.float64) for w in model.get_weights())
    t = torch.relu(F.conv2d(torch.tensor(x, dtype=torch.float64).permute(0, 3, 1, 2), k.permute(3, 2, 0, 1),
                            cb, padding=1))
    t = F.max_pool2d(t, 2)
    expected = (t.permute(0, 2, 3, 1).reshape(len(x), -1) @ dw + db).numpy()
    # Float32 sums of some thousand terms: the rounding scales with the outputs' magnitude (~40).
    np.testing.assert_allclose(model.predict_on_batch(x), expected, rtol=1e-5,
                               atol=1e-6 * np.abs(expected).max())


def test_convolution_with_pooling_follows_the_direct_kernel_switch():
    """Switching the direct kernel off after build leaves the chain to the layers one by one
    (can_pool_into is asked at every forward): the same predictions."""
    conv_kw, pool_kw, shape, *_ = CONV_POOLS["2x2_odd"]
    model = _conv_pool_model(True, conv_kw, pool_kw, shape)
    x = np.random.default_rng(3).normal(size=(3,) + shape).astype(np.float32)
    fused = model.predict_on_batch(x)
    assert model.profile(x, None, steps=1, print_table=False)["computed_in"]
    _core._set_conv_direct(False)
    try:
        assert model.profile(x, None, steps=1, print_table=False)["computed_in"] == {}
        np.testing.assert_allclose(model.predict_on_batch(x), fused, rtol=1e-5, atol=1e-5)
    finally:
        _core._set_conv_direct(True)
