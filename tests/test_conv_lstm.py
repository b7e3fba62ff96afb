"""ConvLSTM2D: the output and every gradient against a PyTorch composition of the Keras equations,
finite-difference gradient checks (masks, go_backwards, strides, dropout), dropout semantics,
parameter counts, initialisation, configs, saving and errors.

The PyTorch reference is written here from the Keras 3 equations, independently of signcore's
im2col: `torch.nn.functional.conv2d` on NCHW with the weights permuted (kh, kw, C, 4F) -> (4F, C, kh,
kw), TensorFlow's "same" padding done by an explicit `F.pad` (the odd pixel after), the recurrent
convolution always stride 1 and "same", gates i, f, c, o, h_0 = c_0 = 0, and the Keras masking rule
(a masked step carries h and c over, and its output is the carried h).
"""
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import signcore
from gradcheck import check_layer, check_masked_layer
from signcore import _core, layers


def seed_of(*parts):
    return zlib.crc32(repr(parts).encode())


# ----- the PyTorch reference ---------------------------------------------------------------------


def tf_pad(size, k, stride, dilation, padding):
    """(before, after, out) of TensorFlow's padding rule along one axis."""
    span = (k - 1) * dilation + 1
    if padding == "valid":
        return 0, 0, (size - span) // stride + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2, out


def conv(x, w, stride, dilation, padding):
    """x: (N, C, H, W), w: Keras (kh, kw, C, G) -> (N, G, OH, OW)."""
    kh, kw = w.shape[0], w.shape[1]
    ph = tf_pad(x.shape[2], kh, stride[0], dilation[0], padding)
    pw = tf_pad(x.shape[3], kw, stride[1], dilation[1], padding)
    x = TF.pad(x, (pw[0], pw[1], ph[0], ph[1]))
    return TF.conv2d(x, w.permute(3, 2, 0, 1), stride=stride, dilation=dilation)


def torch_conv_lstm(x, kernel, rec, bias, *, strides=(1, 1), padding="valid", dilation=(1, 1),
                    return_sequences=False, go_backwards=False, mask=None, dp=None, rdp=None,
                    activation=torch.tanh, recurrent_activation=torch.sigmoid):
    """x: (N, T, H, W, C) torch tensor; dp (4, N, H, W, C) / rdp (4, N, OH, OW, F): dropout masks
    per gate, the same at every step. Returns channels-last (N, [T,] OH, OW, F)."""
    n, t_len = x.shape[:2]
    f = kernel.shape[-1] // 4
    xs = x.permute(0, 1, 4, 2, 3)  # (N, T, C, H, W)
    h = c = None
    outs = []
    for s in range(t_len):
        t = t_len - 1 - s if go_backwards else s
        xt = xs[:, t]
        if dp is None:
            zx = conv(xt, kernel, strides, dilation, padding)
        else:
            zx = torch.cat([conv(xt * dp[k].permute(0, 3, 1, 2), kernel[..., k * f:(k + 1) * f],
                                 strides, dilation, padding) for k in range(4)], dim=1)
        if h is None:
            h = torch.zeros(n, f, zx.shape[2], zx.shape[3], dtype=x.dtype)
            c = torch.zeros_like(h)
        if rdp is None:
            zh = conv(h, rec, (1, 1), (1, 1), "same")
        else:
            zh = torch.cat([conv(h * rdp[k].permute(0, 3, 1, 2), rec[..., k * f:(k + 1) * f],
                                 (1, 1), (1, 1), "same") for k in range(4)], dim=1)
        z = zx + zh + bias.view(1, -1, 1, 1)
        zi, zf, zc, zo = torch.split(z, f, dim=1)
        i, fg, o = recurrent_activation(zi), recurrent_activation(zf), recurrent_activation(zo)
        c_new = fg * c + i * activation(zc)
        h_new = o * activation(c_new)
        if mask is not None:
            m = torch.as_tensor(np.asarray(mask, bool)[:, t]).view(n, 1, 1, 1)
            h_new, c_new = torch.where(m, h_new, h), torch.where(m, c_new, c)
        h, c = h_new, c_new
        outs.append(h)
    y = torch.stack(outs, dim=1).permute(0, 1, 3, 4, 2) if return_sequences else h.permute(0, 2, 3, 1)
    return y


def torch_run(x, weights, dy, **kw):
    """Output and [dx, d kernel, d recurrent_kernel, d bias] in float64 through autograd."""
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tw = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in weights]
    y = torch_conv_lstm(tx, *tw, **kw)
    (y * torch.as_tensor(dy, dtype=torch.float64)).sum().backward()
    return y.detach().numpy(), [tx.grad.numpy()] + [w.grad.numpy() for w in tw]


def signcore_run(layer, x, dy, *, weights=None, rng=None, mask=None, training=False, seed=0):
    """Output, [dx, d kernel, d recurrent_kernel, d bias], the weights and dy (drawn from rng when
    None), through LayerHarness."""
    h = _core.LayerHarness(layer, [list(x.shape[1:])])
    if weights is None:
        values = rng.normal(scale=0.4, size=h.param_values().size).astype(np.float32)
        h.set_param_values(values)
    else:
        h.set_param_values(np.concatenate([np.ravel(w) for w in weights]).astype(np.float32))
    y = h.forward([x.astype(np.float32)], training=training, seed=seed, mask=mask)
    if dy is None:  # a random upstream gradient
        dy = rng.normal(size=y.shape)
    dx, = h.backward(dy.astype(np.float32))
    flat = h.param_grads()
    grads, ws = [dx], []
    values = h.param_values()
    for _name, shape, _trainable, offset, size in h.weights:
        grads.append(flat[offset:offset + size].reshape(shape))
        ws.append(values[offset:offset + size].reshape(shape))
    return y, grads, ws, dy


def compare_with_torch(layer_kw, shape, *, batch, seed, mask=None, tol=(2e-4, 2e-5)):
    rng = np.random.default_rng(seed)
    layer = layers.ConvLSTM2D(**layer_kw)
    x = rng.normal(size=(batch,) + tuple(shape)).astype(np.float32)
    y, grads, weights, dy = signcore_run(layer, x, None, rng=rng, mask=mask)
    kw = {k: layer_kw[k] for k in ("return_sequences", "go_backwards", "padding") if k in layer_kw}
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    kw["strides"] = pair(layer_kw.get("strides", 1))
    kw["dilation"] = pair(layer_kw.get("dilation_rate", 1))
    y_ref, grads_ref = torch_run(x, weights, dy, mask=mask, **kw)
    rtol, atol = tol
    np.testing.assert_allclose(y, y_ref, rtol=rtol, atol=atol, err_msg="output")
    for name, g, g_ref in zip(["dx", "d kernel", "d recurrent_kernel", "d bias"], grads, grads_ref):
        np.testing.assert_allclose(g, g_ref, rtol=rtol, atol=10 * atol, err_msg=name)


# ----- forward and gradients against PyTorch -----------------------------------------------------

TORCH_CASES = [
    # (layer arguments, per-sample input shape (T, H, W, C), batch)
    (dict(filters=3, kernel_size=3), (4, 6, 7, 2), 2),
    (dict(filters=2, kernel_size=3, padding="same", return_sequences=True), (3, 5, 5, 3), 2),
    (dict(filters=4, kernel_size=(3, 2), strides=2, padding="same"), (3, 7, 6, 2), 3),
    (dict(filters=2, kernel_size=3, strides=(2, 1), return_sequences=True, go_backwards=True),
     (4, 9, 6, 1), 1),
    (dict(filters=3, kernel_size=2, dilation_rate=2, padding="same", return_sequences=True),
     (3, 6, 5, 2), 2),
    (dict(filters=2, kernel_size=3, dilation_rate=(2, 1)), (2, 7, 5, 3), 2),
    (dict(filters=5, kernel_size=1), (3, 4, 3, 3), 2),
    (dict(filters=3, kernel_size=3, padding="same"), (1, 5, 4, 2), 2),  # T = 1
    (dict(filters=2, kernel_size=4, padding="same", go_backwards=True), (3, 5, 7, 2), 1),  # even kernel
]


@pytest.mark.torch
@pytest.mark.parametrize("layer_kw,shape,batch", TORCH_CASES)
def test_against_torch(layer_kw, shape, batch):
    compare_with_torch(layer_kw, shape, batch=batch, seed=seed_of(layer_kw, shape, batch))


MASK_4x5 = np.array([[1, 1, 0, 1, 1],   # a gap; step 2 masked for the whole batch
                     [0, 1, 0, 1, 0],   # masked from the start and at the end
                     [1, 1, 0, 0, 0],   # ends early
                     [1, 1, 0, 1, 1]], bool)


@pytest.mark.torch
@pytest.mark.parametrize("return_sequences,go_backwards", [(False, False), (True, False),
                                                           (True, True), (False, True)])
def test_against_torch_with_mask(return_sequences, go_backwards):
    kw = dict(filters=2, kernel_size=3, padding="same", return_sequences=return_sequences,
              go_backwards=go_backwards)
    compare_with_torch(kw, (5, 5, 4, 2), batch=4, mask=MASK_4x5,
                       seed=seed_of("mask", return_sequences, go_backwards))


def test_fully_masked_batch_gives_zeros():
    layer = layers.ConvLSTM2D(2, 3, return_sequences=True)
    h = _core.LayerHarness(layer, [[3, 5, 5, 1]])
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 5, 1)).astype(np.float32)
    y = h.forward([x], mask=np.zeros((2, 3), bool))
    assert y.shape == (2, 3, 3, 3, 2) and np.all(y == 0)
    dx, = h.backward(np.ones_like(y))
    assert np.all(dx == 0) and np.all(h.param_grads() == 0)


# ----- finite-difference gradient checks ---------------------------------------------------------


def check_masked(layer, shape, *, batch, mask=None, training=False, seed=0, rng, max_checks=60):
    check_masked_layer(layer, shape, batch=batch, rng=rng, mask=mask, training=training, seed=seed,
                       scale=0.4, max_checks=max_checks)


@pytest.mark.parametrize("layer_kw", [
    dict(),
    dict(return_sequences=True),
    dict(padding="same"),
    dict(padding="same", return_sequences=True, go_backwards=True),
    dict(strides=2, padding="same"),
    dict(strides=2, return_sequences=True),
    dict(go_backwards=True),
], ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()) or "default")
def test_generic_gradient_check(layer_kw):
    layer = layers.ConvLSTM2D(2, 3, **layer_kw)
    check_layer(layer, [(3, 5, 6, 2)], batch=2, max_checks=50,
                rng=np.random.default_rng(seed_of("generic", layer_kw)))


@pytest.mark.parametrize("return_sequences,go_backwards", [(False, False), (True, False), (True, True)])
def test_gradients_with_mask(return_sequences, go_backwards):
    rng = np.random.default_rng(seed_of("masked", return_sequences, go_backwards))
    layer = layers.ConvLSTM2D(2, 3, padding="same", return_sequences=return_sequences,
                              go_backwards=go_backwards)
    check_masked(layer, (5, 4, 4, 2), batch=4, mask=MASK_4x5, rng=rng)


def test_gradients_with_activations_needing_their_input():
    # gelu / silu derivatives need the pre-activation: the layer keeps z and c (another path).
    rng = np.random.default_rng(5)
    layer = layers.ConvLSTM2D(2, 3, activation="gelu", recurrent_activation="silu", padding="same",
                              return_sequences=True)
    check_masked(layer, (4, 4, 4, 1), batch=4, mask=MASK_4x5[:, :4], rng=rng)


def test_gradients_with_dropout_in_training():
    # The harness reseeds the engine on every forward, so the masks repeat between evaluations.
    rng = np.random.default_rng(8)
    layer = layers.ConvLSTM2D(2, 3, padding="same", dropout=0.3, recurrent_dropout=0.4,
                              return_sequences=True)
    check_masked(layer, (4, 4, 4, 2), batch=4, mask=MASK_4x5[:, :4], training=True, seed=7, rng=rng)
    layer = layers.ConvLSTM2D(3, 2, strides=2, dropout=0.25)
    check_masked(layer, (3, 6, 5, 2), batch=2, training=True, seed=3, rng=rng)


def test_no_bias():
    layer = layers.ConvLSTM2D(2, 3, use_bias=False, return_sequences=True)
    check_layer(layer, [(3, 5, 5, 1)], batch=2, max_checks=40, rng=np.random.default_rng(11))
    assert [w.shape for w in layer.get_weights()] == [(3, 3, 1, 8), (3, 3, 2, 8)]


def test_frozen_layer_still_gives_dx():
    layer = layers.ConvLSTM2D(2, 3, return_sequences=True, trainable=False)
    h = _core.LayerHarness(layer, [[3, 5, 5, 1]])
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 5, 1)).astype(np.float32)
    y = h.forward([x])
    dx, = h.backward(np.ones_like(y))
    assert np.all(h.param_grads() == 0) and np.abs(dx).sum() > 0


# ----- dropout semantics -------------------------------------------------------------------------

N_DP, SHAPE_DP, F_DP, RATE, RREC = 3, (3, 5, 6, 2), 3, 0.3, 0.4


def extraction_layer(dropout, recurrent_dropout):
    return layers.ConvLSTM2D(F_DP, 3, padding="same", activation=None, recurrent_activation=None,
                             dropout=dropout, recurrent_dropout=recurrent_dropout,
                             return_sequences=True)


def set_probe_weights(h, *, w=None, u=None, b=None):
    """kernel / recurrent_kernel zero except the centre tap blocks in w / u: {gate: (rows, F)}."""
    _, _, c, g = h.weights[0][1]
    f = g // 4
    kernel = np.zeros((3, 3, c, g), np.float32)
    rec = np.zeros((3, 3, f, g), np.float32)
    bias = np.zeros(g, np.float32)
    for k, blk in (w or {}).items():
        kernel[1, 1, :, k * f:(k + 1) * f] = blk
    for k, blk in (u or {}).items():
        rec[1, 1, :, k * f:(k + 1) * f] = blk
    for k, v in (b or {}).items():
        bias[k * f:(k + 1) * f] = v
    h.set_param_values(np.concatenate([kernel.ravel(), rec.ravel(), bias]))


def extract_masks(dropout, recurrent_dropout, seed):
    """The dropout masks a layer with these rates draws for a batch of N_DP inputs of SHAPE_DP
    under harness seed `seed`, read back through linear probe layers (same shapes, so the same
    draws): dp (4, N, H, W, C) and rdp (4, N, H, W, F), or None for a zero rate."""
    _, hh, ww, c = SHAPE_DP
    eye_in = np.eye(c, F_DP, dtype=np.float32)
    dp = rdp = None
    if dropout:
        dp = np.zeros((4, N_DP, hh, ww, c), np.float32)
        for k in range(4):
            h = _core.LayerHarness(extraction_layer(dropout, recurrent_dropout), [[2, hh, ww, c]])
            # gate k reads x * dp_k through the identity; the others are constants (f = 0)
            set_probe_weights(h, w={k: eye_in}, b={g: 1.0 for g in (0, 2, 3) if g != k})
            y = h.forward([np.ones((N_DP, 2, hh, ww, c), np.float32)], training=True, seed=seed)
            # k = f: c_2 = dp_f * c_1 + 1 with c_1 = 1; otherwise h_1 = dp_k
            dp[k] = (y[:, 1] - 1 if k == 1 else y[:, 0])[..., :c]
    if recurrent_dropout:
        rdp = np.zeros((4, N_DP, hh, ww, F_DP), np.float32)
        x = np.zeros((N_DP, 2, hh, ww, c), np.float32)
        x[:, 0, ..., 0] = 1  # drives h_1 = c_1 = 1 through the `driver` gate, then x_2 = 0
        for k in range(4):
            h = _core.LayerHarness(extraction_layer(0.0, recurrent_dropout), [[2, hh, ww, c]])
            driver = 0 if k == 1 else k
            w = np.zeros((c, F_DP), np.float32)
            w[0] = 1
            set_probe_weights(h, w={driver: w}, u={k: np.eye(F_DP, dtype=np.float32)},
                              b={g: 1.0 for g in (0, 2, 3) if g not in (k, driver)})
            y = h.forward([x], training=True, seed=seed)
            np.testing.assert_allclose(y[:, 0], 1, rtol=1e-6)
            rdp[k] = y[:, 1]  # h_2 = rdp_k * h_1
    return dp, rdp


@pytest.mark.torch
@pytest.mark.parametrize("dropout,recurrent_dropout", [(RATE, 0.0), (0.0, RREC)])
def test_dropout_matches_torch_with_the_same_masks(dropout, recurrent_dropout):
    seed = 17
    dp, rdp = extract_masks(dropout, recurrent_dropout, seed)
    for m, rate in ((dp, dropout), (rdp, recurrent_dropout)):
        if m is None:
            continue
        assert np.all(np.isclose(m, 0) | np.isclose(m, 1 / (1 - rate), rtol=1e-6))
        assert 0.5 * rate < np.mean(m == 0) < 1.5 * rate
        assert not all(np.array_equal(m[0], m[k]) for k in range(1, 4))  # one mask per gate
    rng = np.random.default_rng(3)
    layer = layers.ConvLSTM2D(F_DP, 3, padding="same", dropout=dropout,
                              recurrent_dropout=recurrent_dropout, return_sequences=True)
    x = rng.normal(size=(N_DP,) + SHAPE_DP).astype(np.float32)
    dy = rng.normal(size=(N_DP, SHAPE_DP[0], SHAPE_DP[1], SHAPE_DP[2], F_DP))
    y, grads, weights, _ = signcore_run(layer, x, dy, rng=rng, training=True, seed=seed)
    y_ref, grads_ref = torch_run(x, weights, dy, padding="same", return_sequences=True,
                                 dp=None if dp is None else torch.as_tensor(dp, dtype=torch.float64),
                                 rdp=None if rdp is None else torch.as_tensor(rdp, dtype=torch.float64))
    np.testing.assert_allclose(y, y_ref, rtol=2e-4, atol=2e-5)
    for g, g_ref in zip(grads, grads_ref):
        np.testing.assert_allclose(g, g_ref, rtol=2e-4, atol=2e-4)


def test_dropout_only_in_training_and_deterministic():
    x = np.random.default_rng(0).normal(size=(2, 3, 6, 6, 2)).astype(np.float32)
    plain = layers.ConvLSTM2D(3, 3, return_sequences=True, name="plain_cl")
    h0 = _core.LayerHarness(plain, [[3, 6, 6, 2]])
    dropped = layers.ConvLSTM2D(3, 3, return_sequences=True, dropout=0.4, recurrent_dropout=0.3)
    h1 = _core.LayerHarness(dropped, [[3, 6, 6, 2]])
    dropped.set_weights(plain.get_weights())
    ref = h0.forward([x], training=True)
    np.testing.assert_array_equal(h1.forward([x], training=False), ref)  # inference: no dropout
    a = h1.forward([x], training=True, seed=4)
    assert not np.allclose(a, ref)
    np.testing.assert_array_equal(h1.forward([x], training=True, seed=4), a)
    assert not np.array_equal(h1.forward([x], training=True, seed=5), a)


def test_dropout_in_a_model_is_reproducible_under_set_random_seed():
    x = np.random.default_rng(1).normal(size=(2, 3, 6, 6, 2)).astype(np.float32)
    y = np.random.default_rng(2).normal(size=(2, 4, 4, 3)).astype(np.float32)

    def train():
        signcore.utils.set_random_seed(123)
        model = signcore.Sequential([signcore.Input((3, 6, 6, 2)),
                                     layers.ConvLSTM2D(3, 3, dropout=0.3, recurrent_dropout=0.3)])
        model.compile(optimizer="sgd", loss="mse")
        model.fit(x, y, epochs=2, batch_size=2, verbose=0)
        return model.get_weights(), model.predict(x, verbose=0)

    (w1, p1), (w2, p2) = train(), train()
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(p1, p2)


def test_layer_seed_gives_own_masks():
    x = np.ones((2, 2, 5, 5, 1), np.float32)
    outs = []
    for seed, harness_seed in ((5, 0), (5, 1)):
        layer = layers.ConvLSTM2D(2, 3, dropout=0.5, seed=seed)
        h = _core.LayerHarness(layer, [[2, 5, 5, 1]])
        layer.set_weights([w * 0 + 0.1 for w in layer.get_weights()])
        outs.append(h.forward([x], training=True, seed=harness_seed))
    np.testing.assert_array_equal(outs[0], outs[1])
    assert layers.ConvLSTM2D(2, 3, seed=5).get_config()["seed"] == 5


# ----- weights, parameter counts, initialisation -------------------------------------------------


@pytest.mark.parametrize("filters,in_shape,expected", [
    (4, (20, 150, 150, 3), 1024),
    (8, (20, 74, 74, 4), 3488),
    (14, (20, 36, 36, 8), 11144),
    (16, (20, 17, 17, 14), 17344),
])
def test_seed_model_parameter_counts(filters, in_shape, expected):
    layer = layers.ConvLSTM2D(filters, (3, 3), activation="tanh", recurrent_dropout=0.2,
                              return_sequences=True)
    model = signcore.Sequential([signcore.Input(in_shape), layer])
    assert layer.count_params() == expected
    t, hh, ww, c = in_shape
    assert layer.output_shape == (None, t, hh - 2, ww - 2, filters)
    assert [w.shape for w in layer.get_weights()] == [(3, 3, c, 4 * filters),
                                                      (3, 3, filters, 4 * filters), (4 * filters,)]


def test_initial_weights():
    signcore.utils.set_random_seed(0)
    layer = layers.ConvLSTM2D(6, (3, 2))
    _core.LayerHarness(layer, [[2, 8, 8, 5]])
    kernel, rec, bias = layer.get_weights()
    assert kernel.shape == (3, 2, 5, 24) and rec.shape == (3, 2, 6, 24) and bias.shape == (24,)
    # glorot_uniform: limit sqrt(6 / (fan_in + fan_out)), fans times the receptive field
    limit = np.sqrt(6 / (6 * 5 + 6 * 24))
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.8 * limit
    # orthogonal over (kh * kw * F, 4F) = (36, 24): orthonormal columns
    m = rec.reshape(-1, 24).astype(np.float64)
    np.testing.assert_allclose(m.T @ m, np.eye(24), atol=1e-5)
    # unit_forget_bias: i | f | c | o = 0 | 1 | 0 | 0
    np.testing.assert_array_equal(bias, np.r_[np.zeros(6), np.ones(6), np.zeros(12)])
    layer = layers.ConvLSTM2D(3, 3, unit_forget_bias=False, bias_initializer="ones")
    _core.LayerHarness(layer, [[2, 5, 5, 1]])
    np.testing.assert_array_equal(layer.get_weights()[2], np.ones(12))


def test_names_and_summary():
    a, b = layers.ConvLSTM2D(2, 3), layers.ConvLSTM2D(2, 3)
    assert a.name.startswith("conv_lstm2d") and b.name.startswith("conv_lstm2d") and a.name != b.name
    model = signcore.Sequential([signcore.Input((3, 8, 8, 1)),
                                 layers.ConvLSTM2D(2, 3, name="conv_lstm2d")])
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "conv_lstm2d (ConvLSTM2D)" in text
    assert "(None, 6, 6, 2)" in text
    assert f"{4 * 2 * 9 * (1 + 2) + 8:,}" in text


def test_mask_in_a_model():
    # The mask passes from the first layer (return_sequences) to the second; masked steps change
    # nothing, whatever the frames hold.
    inp = signcore.Input((4, 6, 6, 1))
    mask_in = signcore.Input((4,), dtype="bool")
    y = layers.ConvLSTM2D(2, 3, return_sequences=True)(inp, mask=mask_in)
    y = layers.ConvLSTM2D(2, 3)(y)
    model = signcore.Model([inp, mask_in], y)
    x = np.random.default_rng(0).normal(size=(2, 4, 6, 6, 1)).astype(np.float32)
    m = np.array([[1, 1, 1, 0], [1, 0, 1, 0]], bool)
    p = model.predict([x, m], verbose=0)
    x2 = x.copy()
    x2[~m] = 9.0
    np.testing.assert_allclose(model.predict([x2, m], verbose=0), p, rtol=1e-6)
    # Without return_sequences the mask stops: a following layer sees none.
    assert layers.ConvLSTM2D(2, 3).return_sequences is False


# ----- configs, saving, errors -------------------------------------------------------------------


def test_config_round_trip():
    layer = layers.ConvLSTM2D(5, (3, 2), strides=(2, 1), padding="same", dilation_rate=1,
                              activation="relu", recurrent_activation="hard_sigmoid",
                              use_bias=False, kernel_initializer="he_normal",
                              recurrent_initializer="glorot_uniform", unit_forget_bias=False,
                              dropout=0.1, recurrent_dropout=0.2, seed=3, return_sequences=True,
                              go_backwards=True, name="clstm")
    cfg = layer.get_config()
    assert cfg["filters"] == 5 and tuple(cfg["kernel_size"]) == (3, 2)
    assert tuple(cfg["strides"]) == (2, 1) and cfg["padding"] == "same"
    assert cfg["data_format"] == "channels_last" and tuple(cfg["dilation_rate"]) == (1, 1)
    assert cfg["activation"] == "relu" and cfg["recurrent_activation"] == "hard_sigmoid"
    assert cfg["return_state"] is False and cfg["stateful"] is False
    clone = layers.ConvLSTM2D.from_config(cfg)
    assert clone.get_config() == cfg
    again = layers.deserialize(layers.serialize(layer))
    assert type(again).__name__ == "ConvLSTM2D" and again.get_config() == cfg
    assert layers.ConvLSTM2D.from_config({"filters": 2, "kernel_size": 3}).kernel_size == (3, 3)


def test_save_and_load(tmp_path):
    signcore.utils.set_random_seed(1)
    model = signcore.Sequential([
        signcore.Input((3, 8, 8, 2)),
        layers.ConvLSTM2D(3, 3, padding="same", return_sequences=True, recurrent_dropout=0.2),
        layers.ConvLSTM2D(2, 3, strides=2),
        layers.Flatten(),
        layers.Dense(2, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(4, 3, 8, 8, 2)).astype(np.float32)
    model.fit(x, np.array([0, 1, 0, 1]), epochs=1, batch_size=2, verbose=0)
    path = tmp_path / "clstm.keras"
    model.save(path)
    loaded = signcore.saving.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [l.class_name for l in loaded.layers][:2] == ["ConvLSTM2D", "ConvLSTM2D"]


@pytest.mark.parametrize("kwargs,needle", [
    (dict(filters=0, kernel_size=3), "filters=0"),
    (dict(filters=-2, kernel_size=3), "filters=-2"),
    (dict(filters=2, kernel_size=3, padding="full"), "padding='full'"),
    (dict(filters=2, kernel_size=3, data_format="channels_first"), "data_format='channels_first'"),
    (dict(filters=2, kernel_size=3, dropout=1.0), "dropout=1.0"),
    (dict(filters=2, kernel_size=3, dropout=-0.1), "dropout=-0.1"),
    (dict(filters=2, kernel_size=3, recurrent_dropout=1.5), "recurrent_dropout=1.5"),
    (dict(filters=2, kernel_size=0), "kernel_size=0"),
    (dict(filters=2, kernel_size=3, strides=(2, 2), dilation_rate=2), "dilation_rate"),
    (dict(filters=2, kernel_size=3, activation="nope"), "nope"),
])
def test_bad_arguments(kwargs, needle):
    with pytest.raises(ValueError, match=None) as e:
        layers.ConvLSTM2D(**kwargs)
    assert needle in str(e.value)


def test_return_state_and_stateful_are_not_supported():
    with pytest.raises(ValueError, match="return_state=True is not supported"):
        layers.ConvLSTM2D(2, 3, return_state=True)
    with pytest.raises(NotImplementedError, match="stateful"):
        layers.ConvLSTM2D(2, 3, stateful=True)


def test_bad_input_shapes():
    with pytest.raises(ValueError, match=r"ndim=4"):
        _core.LayerHarness(layers.ConvLSTM2D(2, 3), [[8, 8, 3]])
    with pytest.raises(ValueError, match=r"ndim=6"):
        _core.LayerHarness(layers.ConvLSTM2D(2, 3), [[2, 8, 8, 3, 1]])
    with pytest.raises(ValueError, match=r"\(None, 4, 2, 2, 1\)"):
        _core.LayerHarness(layers.ConvLSTM2D(2, 3), [[4, 2, 2, 1]])
    h = _core.LayerHarness(layers.ConvLSTM2D(2, 3), [[3, 6, 6, 1]])
    with pytest.raises(ValueError, match=r"\(2, 3, 6, 5, 1\)"):
        h.forward([np.zeros((2, 3, 6, 5, 1), np.float32)])
    with pytest.raises(ValueError, match=r"mask shape=\(2, 4\)"):
        h.forward([np.zeros((2, 3, 6, 6, 1), np.float32)], mask=np.ones((2, 4), bool))
    # A model fed the wrong frame size fails with a ValueError, not a crash.
    model = signcore.Sequential([signcore.Input((3, 6, 6, 1)), layers.ConvLSTM2D(2, 3)])
    with pytest.raises(ValueError):
        model.predict(np.zeros((1, 3, 7, 6, 1), np.float32), verbose=0)
