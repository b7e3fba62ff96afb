"""Conv3D: gradient checks, forward and every gradient against PyTorch's conv3d (kernel permuted from
Keras's (kd, kh, kw, C, F) to torch's (F, C, kd, kh, kw); Keras's asymmetric "same" padding applied
explicitly), strides, dilation, even kernels, batch 1, activations, chunking and threading modes,
Keras's output sizes, weights and config, errors, and a small video model that learns."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import signcore
from signcore import _core, layers

from gradcheck import check_layer
from test_conv import keras_padding

TORCH_ACTIVATIONS = {"linear": lambda z: z, "relu": F.relu, "tanh": torch.tanh,
                     "gelu": lambda z: F.gelu(z, approximate="none"), "sigmoid": torch.sigmoid}

# (D, H, W, C, filters, kernel, strides, dilation, padding, activation, use_bias, batch)
CASES = [
    (4, 5, 4, 2, 3, (3, 3, 3), (1, 1, 1), (1, 1, 1), "valid", "linear", True, 2),
    (5, 6, 5, 3, 2, (2, 3, 2), (2, 1, 2), (1, 1, 1), "valid", "tanh", True, 2),
    (5, 5, 6, 2, 4, (3, 3, 3), (2, 2, 2), (1, 1, 1), "same", "linear", True, 2),
    (3, 4, 5, 2, 3, (2, 2, 4), (1, 1, 1), (1, 1, 1), "same", "tanh", False, 2),  # even kernels
    (5, 4, 6, 1, 2, (3, 2, 2), (1, 1, 1), (2, 1, 2), "same", "sigmoid", True, 2),  # dilation
    (6, 5, 5, 2, 2, (2, 3, 3), (1, 1, 1), (2, 2, 1), "valid", "linear", True, 1),  # batch 1
    (4, 4, 4, 3, 5, (1, 1, 1), (1, 1, 1), (1, 1, 1), "valid", "gelu", True, 2),  # pointwise
    (3, 6, 6, 2, 3, (1, 3, 3), (1, 2, 2), (1, 1, 1), "same", "tanh", True, 3),  # per-frame 2-D
]


def case_id(c):
    return (f"{c[0]}x{c[1]}x{c[2]}x{c[3]}-f{c[4]}-k{''.join(map(str, c[5]))}-s{''.join(map(str, c[6]))}"
            f"-d{''.join(map(str, c[7]))}-{c[8]}-{c[9]}{'' if c[10] else '-nobias'}-n{c[11]}")


def case_data(case, seed=0):
    D, H, W, C, f, k, s, d, pad, act, bias, n = case
    rng = np.random.default_rng(seed + len(case_id(case)))
    x = rng.normal(size=(n, D, H, W, C))
    w = rng.normal(scale=0.4, size=k + (C, f))
    b = rng.normal(scale=0.3, size=(f,)) if bias else None
    return x, w, b


def make_layer(case):
    D, H, W, C, f, k, s, d, pad, act, bias, n = case
    return layers.Conv3D(f, k, strides=s, padding=pad, dilation_rate=d, activation=act, use_bias=bias)


def torch_conv3d(case, x, w, b, dy):
    """Forward, dx, dkernel, dbias through torch (float64), channels-last in and out."""
    D, H, W, C, f, k, s, d, pad, act, bias, n = case
    tx = torch.tensor(x, dtype=torch.float64).permute(0, 4, 1, 2, 3).requires_grad_()
    tw = torch.tensor(w, dtype=torch.float64).permute(4, 3, 0, 1, 2).requires_grad_()  # (F, C, kd, kh, kw)
    tb = torch.tensor(b, dtype=torch.float64).requires_grad_() if b is not None else None
    (fd, bd), (fh, bh), (fw, bw) = (keras_padding(size, k[a], s[a], d[a], pad)
                                    for a, size in enumerate((D, H, W)))
    z = F.conv3d(F.pad(tx, (fw, bw, fh, bh, fd, bd)), tw, tb, stride=s, dilation=d)
    ty = TORCH_ACTIVATIONS[act](z.permute(0, 2, 3, 4, 1))
    ty.backward(torch.tensor(dy, dtype=torch.float64))
    return (ty.detach().numpy(), tx.grad.permute(0, 2, 3, 4, 1).numpy(),
            tw.grad.permute(2, 3, 4, 1, 0).numpy(), None if tb is None else tb.grad.numpy())


def flat_params(w, b):
    return np.concatenate([w.ravel()] + ([] if b is None else [b]))


# relu is compared with torch (exactly, no finite differences) in the chunking test below; the
# gradient checks use smooth activations, whose pre-activations need no distance from a kink.

# ----- gradient checks ------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_conv3d_gradcheck(case):
    x, w, b = case_data(case)
    check_layer(make_layer(case), [case[:4]], inputs=[x], params=flat_params(w, b), max_checks=60,
                seed=1)


# ----- against PyTorch ------------------------------------------------------------------------------

def run_case(case, x, w, b, dy):
    layer = make_layer(case)
    h = _core.LayerHarness(layer, [list(case[:4])])
    layer.set_weights([w.astype(np.float32)] + ([] if b is None else [b.astype(np.float32)]))
    y = h.forward([x.astype(np.float32)], training=True)
    dx, = h.backward(dy.astype(np.float32))
    return y, dx, h.param_grads()


def assert_matches_torch(case, y, dx, g, x, w, b, dy, tol=dict(rtol=1e-4, atol=1e-4)):
    ty, tdx, tdw, tdb = torch_conv3d(case, x.astype(np.float32).astype(np.float64),
                                     w.astype(np.float32), None if b is None else b.astype(np.float32), dy)
    assert y.shape == ty.shape
    np.testing.assert_allclose(y, ty, **tol, err_msg="forward")
    np.testing.assert_allclose(dx, tdx, **tol, err_msg="dL/dx")
    np.testing.assert_allclose(g[:w.size].reshape(w.shape), tdw, **tol, err_msg="dL/dkernel")
    if b is not None:
        np.testing.assert_allclose(g[w.size:], tdb, **tol, err_msg="dL/dbias")


@pytest.mark.torch
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_conv3d_matches_torch(case):
    x, w, b = case_data(case)
    h = _core.LayerHarness(make_layer(case), [list(case[:4])])
    dy = np.random.default_rng(5).normal(size=(case[11],) + tuple(h.output_shape))
    y, dx, g = run_case(case, x, w, b, dy)
    assert_matches_torch(case, y, dx, g, x, w, b, dy)


@pytest.mark.torch
@pytest.mark.parametrize("chunk_bytes, pipelined, threads", [
    (64, False, 2), (4096, False, 2), (4096, True, 2), (1 << 30, True, 1), (20000, True, 3)])
def test_conv3d_chunking_and_threading_modes_match_torch(chunk_bytes, pipelined, threads):
    """Chunks inside one sample, chunks of whole samples, the pipelined mode: all the same numbers."""
    case = (4, 7, 6, 3, 4, (3, 3, 2), (1, 1, 1), (1, 1, 1), "same", "relu", True, 5)
    x, w, b = case_data(case, seed=3)
    dy = np.random.default_rng(6).normal(size=(5, 4, 7, 6, 4))
    old = (_core._conv_chunk_bytes(), _core._conv_pipelined(), signcore.get_num_threads())
    try:
        _core._set_conv_chunk_bytes(chunk_bytes)
        _core._set_conv_pipelined(pipelined)
        signcore.set_num_threads(threads)
        y, dx, g = run_case(case, x, w, b, dy)
    finally:
        _core._set_conv_chunk_bytes(old[0])
        _core._set_conv_pipelined(old[1])
        signcore.set_num_threads(old[2])
    assert_matches_torch(case, y, dx, g, x, w, b, dy)


# With filters a multiple of 8 the forward and the backward run direct_conv.cpp's kernels (the
# cases above have too few filters for them): depth taps, depth padding and dilation included.
@pytest.mark.torch
@pytest.mark.parametrize("case", [
    (4, 6, 7, 8, 16, (3, 3, 3), (1, 1, 1), (1, 1, 1), "same", "relu", True, 3),    # direct dx and dW
    (5, 5, 6, 3, 32, (3, 2, 3), (1, 1, 1), (2, 1, 1), "valid", "linear", True, 2), # RGB, depth dilation
    (4, 7, 6, 5, 8, (2, 3, 3), (2, 1, 2), (1, 1, 1), "same", "relu", False, 2),    # strided: dW direct
], ids=case_id)
@pytest.mark.parametrize("threads", [1, 2])
def test_conv3d_direct_kernels_match_torch(case, threads):
    x, w, b = case_data(case)
    h = _core.LayerHarness(make_layer(case), [list(case[:4])])
    dy = np.random.default_rng(5).normal(size=(case[11],) + tuple(h.output_shape))
    old = signcore.get_num_threads()
    try:
        signcore.set_num_threads(threads)
        assert _core._conv_direct() and _core._conv_direct_kernel_gradient()
        y, dx, g = run_case(case, x, w, b, dy)
    finally:
        signcore.set_num_threads(old)
    assert_matches_torch(case, y, dx, g, x, w, b, dy, tol=dict(rtol=1e-4, atol=2e-4))


@pytest.mark.parametrize("size, k, s, d, padding", [
    (7, 3, 1, 1, "valid"), (7, 3, 2, 1, "valid"), (8, 2, 3, 1, "valid"), (7, 3, 2, 1, "same"),
    (8, 4, 3, 1, "same"), (9, 3, 1, 3, "same"), (9, 3, 1, 2, "valid")])
def test_conv3d_output_shape_follows_keras(size, k, s, d, padding):
    layer = layers.Conv3D(2, (k, 1, k), strides=(s, 1, s), dilation_rate=(d, 1, d), padding=padding)
    span = (k - 1) * d + 1
    out = -(-size // s) if padding == "same" else (size - span) // s + 1
    h = _core.LayerHarness(layer, [[size, 3, size, 1]])
    assert tuple(h.output_shape) == (out, 3, out, 2)


def test_conv3d_weights_config_and_properties():
    layer = layers.Conv3D(6, (3, 2, 1), strides=2, padding="SAME", activation="relu", name="c3")
    assert layer.kernel_size == (3, 2, 1) and layer.strides == (2, 2, 2) and layer.padding == "same"
    assert layer.dilation_rate == (1, 1, 1) and layer.filters == 6 and layer.groups == 1
    assert layer.data_format == "channels_last" and layer.use_bias
    model = signcore.Sequential([signcore.Input((6, 8, 8, 4)), layer])
    w = layer.get_weights()
    assert [a.shape for a in w] == [(3, 2, 1, 4, 6), (6,)]
    assert layer.weight_names == ["c3/kernel", "c3/bias"]
    assert layer.count_params() == 3 * 2 * 1 * 4 * 6 + 6 == model.count_params()
    assert layer.output_shape == (None, 3, 4, 4, 6)
    np.testing.assert_array_equal(w[1], 0)
    limit = math.sqrt(6 / (3 * 2 * 4 + 3 * 2 * 6))  # glorot_uniform with Keras's conv fans
    assert np.abs(w[0]).max() <= limit and np.abs(w[0]).max() > 0.5 * limit
    c = layer.get_config()
    assert c["filters"] == 6 and c["kernel_size"] == [3, 2, 1] and c["strides"] == [2, 2, 2]
    assert c["padding"] == "same" and c["dilation_rate"] == [1, 1, 1] and c["groups"] == 1
    assert c["activation"] == "relu" and c["data_format"] == "channels_last" and c["use_bias"]
    assert layers.Conv3D.from_config(c).get_config() == c
    again = layers.deserialize(layers.serialize(layers.Conv3D(2, 1, name="z")))
    assert type(again) is layers.Conv3D and again.kernel_size == (1, 1, 1)
    assert layers.Conv3D(1, 1).name.startswith("conv3d") and layers.Convolution3D is layers.Conv3D


@pytest.mark.parametrize("kwargs, message", [
    (dict(filters=0, kernel_size=3), r"filters=0"),
    (dict(filters=4, kernel_size=3, padding="full"), r"padding='full'"),
    (dict(filters=4, kernel_size=3, groups=2), r"groups=2"),
    (dict(filters=4, kernel_size=3, strides=2, dilation_rate=2),
     r"strides=\(2, 2, 2\) and dilation_rate=\(2, 2, 2\)"),
    (dict(filters=4, kernel_size=3, data_format="channels_first"), r"channels_first"),
    (dict(filters=4, kernel_size=(3, 3)), r"kernel_size=\(3, 3\)"),
    (dict(filters=4, kernel_size=3, strides=(1, 0, 1)), r"strides=\(1, 0, 1\)"),
    (dict(filters=4, kernel_size=3, dilation_rate=(1, 1)), r"dilation_rate=\(1, 1\)"),
    (dict(filters=4, kernel_size=3, activation="nope"), r"nope"),
])
def test_conv3d_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        layers.Conv3D(**kwargs)


def test_conv3d_input_errors():
    with pytest.raises(ValueError, match=r"\(None, depth, height, width, channels\).*\(None, 9, 9, 1\)"):
        _core.LayerHarness(layers.Conv3D(2, 3), [[9, 9, 1]])
    with pytest.raises(ValueError, match=r"\(None, 2, 9, 9, 1\)"):  # depth 2 < kernel 3, valid
        _core.LayerHarness(layers.Conv3D(2, 3), [[2, 9, 9, 1]])
    with pytest.raises(ValueError, match=r"\(None, 4, 0, 4, 1\)"):
        _core.LayerHarness(layers.Conv3D(2, 1), [[4, 0, 4, 1]])
    h = _core.LayerHarness(layers.Conv3D(2, 3), [[4, 4, 4, 1]])
    with pytest.raises(ValueError, match=r"4, 4, 4, 1\).*shape=\(2, 4, 4, 4, 2\)"):
        h.forward([np.zeros((2, 4, 4, 4, 2), np.float32)])


# ----- a small video model learns ---------------------------------------------------------------------

def video_data(n, rng):
    """(n, 6, 8, 8, 1) clips of noise with a bright blob moving right (label 1) or left (0)."""
    x = rng.normal(scale=0.3, size=(n, 6, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 2, size=n)
    for i, lab in enumerate(y):
        r = rng.integers(1, 6)
        for t in range(6):
            c = t if lab == 1 else 7 - t
            x[i, t, r:r + 2, max(c - 1, 0):c + 1, 0] += 2.0
    return x, y.astype(np.int64)


@pytest.mark.parametrize("functional", [False, True])
def test_small_video_model_trains(functional):
    signcore.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y = video_data(96, rng)
    stack = [layers.Conv3D(4, 3, padding="same", activation="relu"),
             layers.MaxPooling3D((1, 2, 2)),
             layers.TimeDistributed(layers.Flatten()),
             layers.TimeDistributed(layers.Dropout(0.2)),
             layers.LSTM(8),
             layers.Dense(2, activation="softmax")]
    if functional:
        inp = signcore.Input((6, 8, 8, 1))
        h = inp
        for layer in stack:
            h = layer(h)
        model = signcore.Model(inp, h)
    else:
        model = signcore.Sequential([signcore.Input((6, 8, 8, 1))] + stack)
    assert model.layers[-4].output_shape == (None, 6, 64)
    model.compile(optimizer=signcore.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    hist = model.fit(x, y, epochs=6, batch_size=16, verbose=0)
    loss = hist.history["loss"]
    assert np.all(np.isfinite(loss)) and loss[-1] < 0.8 * loss[0]
