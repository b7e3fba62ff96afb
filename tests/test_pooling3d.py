"""MaxPooling3D, AveragePooling3D, GlobalAveragePooling3D and GlobalMaxPooling3D: gradient checks for
every padding / stride mode, forward and dx against PyTorch ("valid") and against a NumPy loop
written from the Keras rules ("same": asymmetric padding, the average over the real cells only),
the seed video model's shapes, configs, names and error messages."""
import itertools
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import signcore
from signcore import _core, layers

from gradcheck import check_layer
from test_pooling import distinct_inputs, keras_same_pad

# (pool_size, strides, padding, per-sample input shape (D, H, W, C)): odd sizes, overlapping
# windows, gaps, anisotropic windows, "same" with odd and even padding totals.
POOL3D_CASES = [
    ((2, 2, 2), None, "valid", (4, 4, 4, 2)),
    ((1, 2, 2), None, "valid", (3, 5, 4, 2)),
    ((3, 2, 3), (2, 1, 2), "valid", (5, 4, 7, 1)),
    ((2, 2, 2), (3, 3, 3), "valid", (5, 7, 6, 2)),
    ((2, 3, 2), (1, 2, 2), "same", (3, 5, 5, 2)),
    ((3, 3, 3), (2, 2, 2), "same", (5, 4, 6, 1)),
    ((2, 2, 2), None, "same", (3, 3, 5, 2)),
]
CASE_IDS = ["x".join(map(str, p)) + f"-s{s}-{pad}-{shape}" for p, s, pad, shape in POOL3D_CASES]


def numpy_pool3d(kind, x, pool, strides, padding):
    """Reference from the Keras rules, a plain loop: each output cell reduces the real input cells
    of its window (padding cut off). x: (N, D, H, W, C)."""
    strides = strides or pool
    ranges = []
    for a in range(3):
        n, k, s = x.shape[1 + a], pool[a], strides[a]
        if padding == "same":
            before = keras_same_pad(n, k, s)[0]
            starts = [o * s - before for o in range(-(-n // s))]
        else:
            starts = [o * s for o in range((n - k) // s + 1)]
        ranges.append([(max(b, 0), min(b + k, n)) for b in starts])
    y = np.zeros((x.shape[0],) + tuple(len(r) for r in ranges) + (x.shape[4],))
    for (i, rd), (j, rh), (k, rw) in itertools.product(*(list(enumerate(r)) for r in ranges)):
        win = x[:, rd[0]:rd[1], rh[0]:rh[1], rw[0]:rw[1], :]
        y[:, i, j, k] = win.max(axis=(1, 2, 3)) if kind == "max" else win.mean(axis=(1, 2, 3))
    return y


def torch_pool3d(kind, x_ndhwc, pool, strides):
    """Valid padding through torch on NCDHW."""
    x = x_ndhwc.permute(0, 4, 1, 2, 3)
    y = (F.max_pool3d if kind == "max" else F.avg_pool3d)(x, pool, strides or pool)
    return y.permute(0, 2, 3, 4, 1)


def pool_layer(kind, pool, strides, padding):
    cls = layers.MaxPooling3D if kind == "max" else layers.AveragePooling3D
    return cls(pool_size=pool, strides=strides, padding=padding)


# ----- gradient checks ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, training", [("max", False), ("max", True), ("average", False)])
@pytest.mark.parametrize("pool, strides, padding, shape", POOL3D_CASES, ids=CASE_IDS)
def test_pooling3d_gradcheck(kind, training, pool, strides, padding, shape):
    layer = pool_layer(kind, pool, strides, padding)
    harness, _ = check_layer(layer, [shape], batch=2, training=training,
                             input_fn=lambda shapes, rng: [distinct_inputs((2,) + shapes[0], rng)])
    s = strides or pool
    expect = tuple(-(-shape[a] // s[a]) if padding == "same" else (shape[a] - pool[a]) // s[a] + 1
                   for a in range(3)) + (shape[3],)
    assert tuple(harness.output_shape) == expect


@pytest.mark.parametrize("kind", ["max", "average"])
def test_pooling3d_gradcheck_batch_one(kind):
    check_layer(pool_layer(kind, (2, 3, 2), (1, 2, 1), "same"), [(3, 4, 3, 3)], batch=1,
                input_fn=lambda shapes, rng: [distinct_inputs((1,) + shapes[0], rng)])


@pytest.mark.parametrize("kind, training", [("average", False), ("max", False), ("max", True)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling3d_gradcheck(kind, training, keepdims):
    cls = layers.GlobalMaxPooling3D if kind == "max" else layers.GlobalAveragePooling3D
    harness, _ = check_layer(cls(keepdims=keepdims), [(3, 2, 4, 3)], batch=2, training=training,
                             input_fn=lambda shapes, rng: [distinct_inputs((2,) + shapes[0], rng)])
    assert tuple(harness.output_shape) == ((1, 1, 1, 3) if keepdims else (3,))


# ----- against independent references ------------------------------------------------------------------

def run_layer(layer, x, dy_seed=0, training=True):
    h = _core.LayerHarness(layer, [list(x.shape[1:])])
    y = h.forward([x.astype(np.float32)], training=training)
    dy = np.random.default_rng(dy_seed).normal(size=y.shape).astype(np.float32)
    dx, = h.backward(dy)
    return y, dy, dx


@pytest.mark.torch
@pytest.mark.parametrize("kind", ["max", "average"])
@pytest.mark.parametrize("pool, strides, padding, shape",
                         [c for c in POOL3D_CASES if c[2] == "valid"],
                         ids=[i for i, c in zip(CASE_IDS, POOL3D_CASES) if c[2] == "valid"])
def test_pooling3d_valid_matches_torch(kind, pool, strides, padding, shape):
    rng = np.random.default_rng(zlib.crc32(repr((kind, pool, strides, shape)).encode()))
    x = distinct_inputs((3,) + shape, rng).astype(np.float32)
    y, dy, dx = run_layer(pool_layer(kind, pool, strides, padding), x)
    tx = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    ty = torch_pool3d(kind, tx, pool, strides)
    ty.backward(torch.from_numpy(dy.astype(np.float64)))
    assert y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-6, atol=1e-6, err_msg="forward")
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-6, atol=1e-6, err_msg="dL/dx")


@pytest.mark.parametrize("kind", ["max", "average"])
@pytest.mark.parametrize("pool, strides, padding, shape", POOL3D_CASES, ids=CASE_IDS)
def test_pooling3d_matches_numpy_reference(kind, pool, strides, padding, shape):
    rng = np.random.default_rng(zlib.crc32(repr((kind, pool, strides, padding, shape)).encode()))
    x = distinct_inputs((2,) + shape, rng).astype(np.float32)
    y, dy, dx = run_layer(pool_layer(kind, pool, strides, padding), x)
    ref = numpy_pool3d(kind, x.astype(np.float64), pool, strides, padding)
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)
    # dx: the reference is linear in x around this point (fixed arg-max / fixed divisors), so its
    # vector-Jacobian product is the gradient of sum(dy * ref(x)), taken by finite differences of
    # the exact float64 reference in a few random places.
    flat = x.astype(np.float64).reshape(-1)
    for i in rng.choice(flat.size, size=min(40, flat.size), replace=False):
        hi, lo = flat.copy(), flat.copy()
        hi[i] += 1e-3
        lo[i] -= 1e-3
        num = (np.sum(dy * numpy_pool3d(kind, hi.reshape(x.shape), pool, strides, padding)) -
               np.sum(dy * numpy_pool3d(kind, lo.reshape(x.shape), pool, strides, padding))) / 2e-3
        assert abs(dx.reshape(-1)[i] - num) < 1e-4, (i, dx.reshape(-1)[i], num)


@pytest.mark.torch
def test_same_padding_matches_torch_when_symmetric():
    # 5x5x5, pool 3, stride 2, "same": 3 outputs per axis, one padded cell on each side, so torch's
    # own symmetric padding applies (count_include_pad=False for the average).
    rng = np.random.default_rng(3)
    x = distinct_inputs((2, 5, 5, 5, 3), rng).astype(np.float32)
    for kind in ("max", "average"):
        y, dy, dx = run_layer(pool_layer(kind, (3, 3, 3), (2, 2, 2), "same"), x)
        tx = torch.from_numpy(x.astype(np.float64)).permute(0, 4, 1, 2, 3).requires_grad_()
        if kind == "max":
            ty = F.max_pool3d(tx, 3, 2, padding=1)
        else:
            ty = F.avg_pool3d(tx, 3, 2, padding=1, count_include_pad=False)
        ty.backward(torch.from_numpy(dy.astype(np.float64)).permute(0, 4, 1, 2, 3))
        np.testing.assert_allclose(y, ty.detach().permute(0, 2, 3, 4, 1).numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(dx, tx.grad.permute(0, 2, 3, 4, 1).numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.torch
def test_seed_video_shape_matches_torch():
    # The seed video model: MaxPooling3D((1, 2, 2)) on (N, 20, 148, 148, 4) -> (N, 20, 74, 74, 4).
    x = np.random.default_rng(5).normal(size=(2, 20, 148, 148, 4)).astype(np.float32)
    layer = layers.MaxPooling3D(pool_size=(1, 2, 2), padding="valid")
    y, dy, dx = run_layer(layer, x)
    assert y.shape == (2, 20, 74, 74, 4)
    tx = torch.from_numpy(x).requires_grad_()
    ty = torch_pool3d("max", tx, (1, 2, 2), None)
    ty.backward(torch.from_numpy(dy))
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(dx, tx.grad.numpy())
    model = signcore.Sequential([layers.MaxPooling3D((1, 2, 2), input_shape=(20, 148, 148, 4))])
    model.build()
    assert tuple(model.layers[0].output_shape) == (None, 20, 74, 74, 4)


def test_global_pooling3d_matches_numpy():
    x = np.random.default_rng(2).normal(size=(3, 2, 5, 4, 6)).astype(np.float32)
    for cls, ref in ((layers.GlobalAveragePooling3D, x.mean(axis=(1, 2, 3))),
                     (layers.GlobalMaxPooling3D, x.max(axis=(1, 2, 3)))):
        h = _core.LayerHarness(cls(), [[2, 5, 4, 6]])
        np.testing.assert_allclose(h.forward([x]), ref, rtol=1e-6, atol=1e-6)
        hk = _core.LayerHarness(cls(keepdims=True), [[2, 5, 4, 6]])
        assert hk.forward([x]).shape == (3, 1, 1, 1, 6)


def test_pooling3d_hand_computed_same_average_divides_by_real_cells():
    # (1, 1, 3, 1) "same", pool 2 along the width: windows {0, 1} and {2} (the pad is after).
    x = np.array([1.0, 2.0, 4.0], dtype=np.float32).reshape(1, 1, 1, 3, 1)
    h = _core.LayerHarness(layers.AveragePooling3D((1, 1, 2), padding="same"), [[1, 1, 3, 1]])
    np.testing.assert_allclose(h.forward([x]).reshape(-1), [1.5, 4.0])
    h = _core.LayerHarness(layers.MaxPooling3D((1, 1, 2), padding="same"), [[1, 1, 3, 1]])
    np.testing.assert_allclose(h.forward([-x]).reshape(-1), [-1.0, -4.0])  # the pad never wins


def test_pooling3d_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(4, 6, 9, 9, 8)).astype(np.float32)
    cases = [layers.MaxPooling3D(3, 2, "same"), layers.AveragePooling3D(3, 2, "same"),
             layers.GlobalAveragePooling3D(), layers.GlobalMaxPooling3D()]
    before = signcore.get_num_threads()
    try:
        for layer in cases:
            h = _core.LayerHarness(layer, [[6, 9, 9, 8]])
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


# ----- configs, arguments, errors ----------------------------------------------------------------------

@pytest.mark.parametrize("cls", [layers.MaxPooling3D, layers.AveragePooling3D])
def test_pooling3d_arguments_and_config(cls):
    layer = cls((1, 2, 3), strides=(1, 1, 2), padding="SAME", name="p3")
    assert layer.pool_size == (1, 2, 3) and layer.strides == (1, 1, 2) and layer.padding == "same"
    assert layer.data_format == "channels_last"
    assert cls().pool_size == (2, 2, 2) and cls().strides == (2, 2, 2)
    assert cls(3).pool_size == (3, 3, 3)
    config = layer.get_config()
    assert config == {"name": "p3", "trainable": True, "pool_size": [1, 2, 3], "padding": "same",
                      "strides": [1, 1, 2], "data_format": "channels_last"}
    clone = cls.from_config(config)
    assert type(clone) is cls and clone.get_config() == config
    assert layers.deserialize(layers.serialize(layer)).get_config() == config
    assert layers.MaxPool3D is layers.MaxPooling3D and layers.AvgPool3D is layers.AveragePooling3D


@pytest.mark.parametrize("cls", [layers.GlobalAveragePooling3D, layers.GlobalMaxPooling3D])
def test_global_pooling3d_config(cls):
    layer = cls(keepdims=True, name="g3")
    config = layer.get_config()
    assert config == {"name": "g3", "trainable": True, "data_format": "channels_last", "keepdims": True}
    assert cls.from_config(config).get_config() == config


def test_automatic_names():
    assert layers.MaxPooling3D().name.startswith("max_pooling3d")
    assert layers.AveragePooling3D().name.startswith("average_pooling3d")
    assert layers.GlobalAveragePooling3D().name.startswith("global_average_pooling3d")
    assert layers.GlobalMaxPooling3D().name.startswith("global_max_pooling3d")


@pytest.mark.parametrize("kwargs, match", [
    (dict(pool_size=0), r"pool_size.*Received: pool_size=0"),
    (dict(pool_size=(2, 2)), r"pool_size.*tuple of 3.*\(2, 2\)"),
    (dict(pool_size=(2, -1, 2)), r"pool_size=\(2, -1, 2\)"),
    (dict(strides=(1, 2)), r"strides=\(1, 2\)"),
    (dict(padding="full"), r"padding.*Received: padding='full'"),
    (dict(data_format="channels_first"), r"channels_last.*Received: data_format='channels_first'"),
])
@pytest.mark.parametrize("cls", [layers.MaxPooling3D, layers.AveragePooling3D])
def test_pooling3d_argument_errors(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_pooling3d_input_errors_name_what_was_received():
    with pytest.raises(ValueError, match=r"pool_size \(3, 3, 3\).*input_shape=\(None, 4, 2, 5, 1\)"):
        _core.LayerHarness(layers.MaxPooling3D(3), [[4, 2, 5, 1]])
    for layer in (layers.MaxPooling3D(), layers.AveragePooling3D(), layers.GlobalMaxPooling3D()):
        with pytest.raises(ValueError, match=r"\(None, depth, height, width, channels\).*"
                                             r"input_shape=\(None, 8, 8, 3\)"):
            _core.LayerHarness(layer, [[8, 8, 3]])
    with pytest.raises(ValueError, match=r"input_shape=\(None, 4, 0, 4, 2\)"):
        _core.LayerHarness(layers.MaxPooling3D(), [[4, 0, 4, 2]])
    h = _core.LayerHarness(layers.MaxPooling3D(), [[4, 4, 4, 2]])
    with pytest.raises(ValueError, match=r"4, 4, 4, 2\).*shape=\(1, 4, 4, 2\)"):
        h.forward([np.zeros((1, 4, 4, 2), np.float32)])
