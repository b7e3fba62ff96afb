"""Losses: values and gradients against hand computation, NumPy written from Keras 3's equations,
PyTorch autograd, and central differences; clipping; label and shape validation."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gradcheck import check_gradient
from signcore import _core, losses

EPS = 1e-7
rng = np.random.default_rng(1234)


def probs(n, c, seed=0):
    """Rows of positive, *unnormalised* scores (the loss divides by the row sum)."""
    r = np.random.default_rng(seed)
    return r.uniform(0.05, 1.0, size=(n, c)).astype(np.float32)


def one_hot(labels, c):
    return np.eye(c, dtype=np.float32)[labels]


# --- NumPy references, written from keras/src/backend/numpy/nn.py -----------------------------

def np_cce(t, p, from_logits=False, label_smoothing=0.0):
    t = t.astype(np.float64)
    p = p.astype(np.float64)
    if label_smoothing:
        t = t * (1 - label_smoothing) + label_smoothing / t.shape[-1]
    if from_logits:
        m = p.max(-1, keepdims=True)
        logp = p - m - np.log(np.exp(p - m).sum(-1, keepdims=True))
    else:
        p = p / p.sum(-1, keepdims=True)
        logp = np.log(np.clip(p, EPS, 1 - EPS))
    return float(np.mean(-(t * logp).sum(-1)))


def np_bce(t, p, from_logits=False, label_smoothing=0.0):
    t = t.astype(np.float64)
    p = p.astype(np.float64)
    if label_smoothing:
        t = t * (1 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        e = np.maximum(p, 0) - p * t + np.log1p(np.exp(-np.abs(p)))
    else:
        p = np.clip(p, EPS, 1 - EPS)
        e = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    return float(np.mean(e.mean(-1)))


# --- torch references: autograd through exactly Keras's computation ---------------------------

def torch_value_grad(fn, p):
    pt = torch.tensor(p, dtype=torch.float64, requires_grad=True)
    v = fn(pt)
    v.backward()
    return v.item(), pt.grad.numpy()


def torch_cce_probs(t, label_smoothing=0.0):
    tt = torch.tensor(t, dtype=torch.float64)
    if label_smoothing:
        tt = tt * (1 - label_smoothing) + label_smoothing / tt.shape[-1]

    def fn(p):
        q = torch.clamp(p / p.sum(-1, keepdim=True), EPS, 1 - EPS)
        return -(tt * torch.log(q)).sum(-1).mean()
    return fn


# --- hand-computed ----------------------------------------------------------------------------

def test_categorical_crossentropy_by_hand_2x3():
    y_true = np.array([[0, 1, 0], [0, 0, 1]], np.float32)
    y_pred = np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]], np.float32)
    loss = losses.CategoricalCrossentropy()
    # Row 0: -log(0.95); row 1: -log(0.1); mean of the two.
    expected = (-math.log(0.95) - math.log(0.1)) / 2
    value, grad = loss._value_and_grad(y_true, y_pred)
    assert value == pytest.approx(expected, rel=1e-6)
    assert loss(y_true, y_pred) == pytest.approx(expected, rel=1e-6)
    # Rows sum to 1, so dL/dp_j = (g_j - sum_c g_c p_c) / 2 with g_c = -t_c / p_c (0 where clipped).
    # Row 0: g = (0, -1/0.95, 0 [p=0 is clipped]), sum g p = -1.
    # Row 1: g = (0, 0, -10), sum g p = -1.
    expected_grad = np.array([[1, 1 - 1 / 0.95, 1], [1, 1, 1 - 10]]) / 2
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-5, atol=1e-6)
    # Integer labels give the same loss.
    sparse = losses.SparseCategoricalCrossentropy()
    assert sparse(np.array([1, 2]), y_pred) == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(sparse._value_and_grad(np.array([1, 2]), y_pred)[1], expected_grad,
                               rtol=1e-5, atol=1e-6)


def test_binary_crossentropy_and_mse_by_hand():
    y_true = np.array([[1, 0], [0, 1]], np.float32)
    y_pred = np.array([[0.8, 0.4], [0.3, 0.9]], np.float32)
    per_row = [-(math.log(0.8) + math.log(0.6)) / 2, -(math.log(0.7) + math.log(0.9)) / 2]
    assert losses.BinaryCrossentropy()(y_true, y_pred) == pytest.approx(np.mean(per_row), rel=1e-6)
    # MSE: row 0 ((0.2)^2 + 0.4^2)/2 = 0.1; row 1 (0.3^2 + 0.1^2)/2 = 0.05.
    assert losses.MeanSquaredError()(y_true, y_pred) == pytest.approx(0.075, rel=1e-6)
    assert losses.MeanAbsoluteError()(y_true, y_pred) == pytest.approx((0.3 + 0.2) / 2, rel=1e-6)
    # MSE gradient 2 (p - t) / (D * N).
    _, g = losses.MeanSquaredError()._value_and_grad(y_true, y_pred)
    np.testing.assert_allclose(g, 2 * (y_pred - y_true) / 4, rtol=1e-6)


# --- NumPy from the Keras equations --------------------------------------------------------------

@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_categorical_matches_keras_equations(from_logits, label_smoothing):
    p = rng.normal(size=(7, 5)).astype(np.float32) if from_logits else probs(7, 5, seed=2)
    labels = rng.integers(0, 5, size=7)
    t = one_hot(labels, 5)
    loss = losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing)
    assert loss(t, p) == pytest.approx(np_cce(t, p, from_logits, label_smoothing), rel=1e-6)
    if label_smoothing == 0.0:
        sparse = losses.SparseCategoricalCrossentropy(from_logits=from_logits)
        assert sparse(labels.astype(np.float32), p) == pytest.approx(np_cce(t, p, from_logits), rel=1e-6)
        assert sparse(labels.reshape(-1, 1), p) == pytest.approx(np_cce(t, p, from_logits), rel=1e-6)


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_binary_matches_keras_equations(from_logits, label_smoothing):
    p = (rng.normal(size=(6, 3)) if from_logits else rng.uniform(0.01, 0.99, size=(6, 3))).astype(np.float32)
    t = rng.integers(0, 2, size=(6, 3)).astype(np.float32)
    loss = losses.BinaryCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing)
    assert loss(t, p) == pytest.approx(np_bce(t, p, from_logits, label_smoothing), rel=1e-6)


def test_rank3_averages_over_every_leading_axis():
    # (N, T, C): Keras's sum_over_batch_size divides by N * T.
    p = rng.uniform(0.1, 1, size=(2, 3, 4)).astype(np.float32)
    labels = rng.integers(0, 4, size=(2, 3))
    t = one_hot(labels, 4)
    expected = np_cce(t.reshape(6, 4), p.reshape(6, 4))
    assert losses.CategoricalCrossentropy()(t, p) == pytest.approx(expected, rel=1e-6)
    assert losses.SparseCategoricalCrossentropy()(labels, p) == pytest.approx(expected, rel=1e-6)
    mse = float(np.mean((p.astype(np.float64) - t) ** 2))
    assert losses.MeanSquaredError()(t, p) == pytest.approx(mse, rel=1e-6)


def test_logits_are_numerically_stable():
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -999.0, -1001.0]], np.float32)
    v, g = losses.CategoricalCrossentropy(from_logits=True)._value_and_grad(one_hot([0, 2], 3), z)
    assert np.isfinite(v) and np.all(np.isfinite(g))
    # Row 0: lse ~ 1000, loss 0. Row 1: -log softmax(z)[2] = 2 + log(1 + e + e^-... ) computed directly.
    row1 = -(-1001.0 - (-999.0 + math.log(math.exp(-1) + 1 + math.exp(-2))))
    assert v == pytest.approx(row1 / 2, rel=1e-6)
    b = losses.BinaryCrossentropy(from_logits=True)(np.array([[0.0], [1.0]]), np.array([[1000.0], [-1000.0]]))
    assert b == pytest.approx(1000.0, rel=1e-6)


# --- PyTorch: values and gradients -------------------------------------------------------------

@pytest.mark.torch
@pytest.mark.parametrize("label_smoothing", [0.0, 0.15])
def test_categorical_probs_value_and_grad_match_torch(label_smoothing):
    p = probs(8, 6, seed=5)
    p[0, 2] = 0.0  # a clipped entry
    t = one_hot(rng.integers(0, 6, size=8), 6)
    want_v, want_g = torch_value_grad(torch_cce_probs(t, label_smoothing), p)
    v, g = losses.CategoricalCrossentropy(label_smoothing=label_smoothing)._value_and_grad(t, p)
    assert v == pytest.approx(want_v, rel=1e-6)
    np.testing.assert_allclose(g, want_g, rtol=1e-5, atol=1e-7)


@pytest.mark.torch
def test_sparse_probs_value_and_grad_match_torch_nll():
    p = probs(9, 4, seed=6)
    labels = rng.integers(0, 4, size=9)

    def fn(pt):
        q = torch.clamp(pt / pt.sum(-1, keepdim=True), EPS, 1 - EPS)
        return F.nll_loss(torch.log(q), torch.tensor(labels))
    want_v, want_g = torch_value_grad(fn, p)
    v, g = losses.SparseCategoricalCrossentropy()._value_and_grad(labels.astype(np.float32), p)
    assert v == pytest.approx(want_v, rel=1e-6)
    np.testing.assert_allclose(g, want_g, rtol=1e-5, atol=1e-7)


@pytest.mark.torch
def test_logits_value_and_grad_match_torch_cross_entropy():
    z = rng.normal(scale=3, size=(10, 7)).astype(np.float32)
    labels = rng.integers(0, 7, size=10)
    want_v, want_g = torch_value_grad(lambda zt: F.cross_entropy(zt, torch.tensor(labels)), z)
    v, g = losses.SparseCategoricalCrossentropy(from_logits=True)._value_and_grad(labels, z)
    assert v == pytest.approx(want_v, rel=1e-6)
    np.testing.assert_allclose(g, want_g, rtol=1e-5, atol=1e-7)
    v2, g2 = losses.CategoricalCrossentropy(from_logits=True)._value_and_grad(one_hot(labels, 7), z)
    assert v2 == pytest.approx(want_v, rel=1e-6)
    np.testing.assert_allclose(g2, want_g, rtol=1e-5, atol=1e-7)
    # Label smoothing: torch's definition equals Keras's (t(1-s) + s/C).
    want_v, want_g = torch_value_grad(
        lambda zt: F.cross_entropy(zt, torch.tensor(labels), label_smoothing=0.2), z)
    v3, g3 = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2)._value_and_grad(
        one_hot(labels, 7), z)
    assert v3 == pytest.approx(want_v, rel=1e-6)
    np.testing.assert_allclose(g3, want_g, rtol=1e-5, atol=1e-7)


@pytest.mark.torch
def test_binary_value_and_grad_match_torch():
    p = rng.uniform(0.02, 0.98, size=(5, 3)).astype(np.float32)
    t = rng.integers(0, 2, size=(5, 3)).astype(np.float32)
    tt = torch.tensor(t, dtype=torch.float64)
    want_v, want_g = torch_value_grad(lambda pt: F.binary_cross_entropy(pt, tt), p)
    v, g = losses.BinaryCrossentropy()._value_and_grad(t, p)
    assert v == pytest.approx(want_v, rel=1e-6)
    np.testing.assert_allclose(g, want_g, rtol=1e-5, atol=1e-7)

    z = rng.normal(scale=4, size=(5, 3)).astype(np.float32)
    want_v, want_g = torch_value_grad(lambda zt: F.binary_cross_entropy_with_logits(zt, tt), z)
    v, g = losses.BinaryCrossentropy(from_logits=True)._value_and_grad(t, z)
    assert v == pytest.approx(want_v, rel=1e-6)
    np.testing.assert_allclose(g, want_g, rtol=1e-5, atol=1e-7)


@pytest.mark.torch
def test_mse_value_and_grad_match_torch():
    p = rng.normal(size=(6, 4)).astype(np.float32)
    t = rng.normal(size=(6, 4)).astype(np.float32)
    tt = torch.tensor(t, dtype=torch.float64)
    want_v, want_g = torch_value_grad(lambda pt: F.mse_loss(pt, tt), p)
    v, g = losses.MeanSquaredError()._value_and_grad(t, p)
    assert v == pytest.approx(want_v, rel=1e-6)
    np.testing.assert_allclose(g, want_g, rtol=1e-5, atol=1e-8)
    want_v, want_g = torch_value_grad(lambda pt: F.l1_loss(pt, tt), p)
    v, g = losses.MeanAbsoluteError()._value_and_grad(t, p)
    assert v == pytest.approx(want_v, rel=1e-6)
    np.testing.assert_allclose(g, want_g, rtol=1e-5, atol=1e-8)


# --- finite differences --------------------------------------------------------------------------

FD_CASES = [
    ("cce", lambda: losses.CategoricalCrossentropy(), "onehot"),
    ("cce_smooth", lambda: losses.CategoricalCrossentropy(label_smoothing=0.1), "onehot"),
    ("cce_logits", lambda: losses.CategoricalCrossentropy(from_logits=True), "onehot"),
    ("scce", lambda: losses.SparseCategoricalCrossentropy(), "sparse"),
    ("scce_logits", lambda: losses.SparseCategoricalCrossentropy(from_logits=True), "sparse"),
    ("bce", lambda: losses.BinaryCrossentropy(), "binary"),
    ("bce_logits", lambda: losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1), "binary"),
    ("mse", lambda: losses.MeanSquaredError(), "real"),
]


@pytest.mark.parametrize("case", FD_CASES, ids=[c[0] for c in FD_CASES])
def test_gradient_matches_finite_differences(case):
    _, make, kind = case
    loss = make()
    r = np.random.default_rng(7)
    n, c = 4, 5
    logits = "logits" in case[0]
    if kind == "binary":
        y_pred = (r.normal(size=(n, c)) if logits else r.uniform(0.1, 0.9, size=(n, c))).astype(np.float32)
        y_true = r.integers(0, 2, size=(n, c)).astype(np.float32)
    elif kind == "real":
        y_pred = r.normal(size=(n, c)).astype(np.float32)
        y_true = r.normal(size=(n, c)).astype(np.float32)
    else:
        y_pred = (r.normal(size=(n, c)) if logits else r.uniform(0.2, 1.0, size=(n, c))).astype(np.float32)
        labels = r.integers(0, c, size=n)
        y_true = labels.astype(np.float32) if kind == "sparse" else one_hot(labels, c)
    check_gradient(lambda p: loss(y_true, p), lambda p: [loss._value_and_grad(y_true, p)[1]],
                   [y_pred], eps=1e-3, rtol=2e-2, atol=1e-3, names=[f"{case[0]}: dL/dy_pred"])


# --- clipping ------------------------------------------------------------------------------------

def test_clipping_at_zero_and_one():
    cce = losses.CategoricalCrossentropy()
    exact = np.array([[0.0, 1.0, 0.0]], np.float32)
    # Right and certain: -log(1 - 1e-7); wrong and certain: -log(1e-7). Both clipped: zero gradient.
    v, g = cce._value_and_grad(np.array([[0, 1, 0]], np.float32), exact)
    assert v == pytest.approx(-math.log(1 - EPS), rel=1e-3)
    np.testing.assert_array_equal(g, 0.0)
    v, g = cce._value_and_grad(np.array([[1, 0, 0]], np.float32), exact)
    assert v == pytest.approx(-math.log(EPS), rel=1e-6)
    np.testing.assert_array_equal(g, 0.0)
    v, g = losses.SparseCategoricalCrossentropy()._value_and_grad(np.array([0.0]), exact)
    assert v == pytest.approx(-math.log(EPS), rel=1e-6)
    np.testing.assert_array_equal(g, 0.0)

    bce = losses.BinaryCrossentropy()
    p = np.array([[0.0, 1.0, 0.0, 1.0]], np.float32)
    t = np.array([[0.0, 1.0, 1.0, 0.0]], np.float32)
    v, g = bce._value_and_grad(t, p)
    assert v == pytest.approx((2 * -math.log(1 - EPS) + 2 * -math.log(EPS)) / 4, rel=1e-6)
    np.testing.assert_array_equal(g, 0.0)
    # Torch agrees when the clamp is written out.
    tt = torch.tensor(t, dtype=torch.float64)

    def fn(pt):
        c = torch.clamp(pt, EPS, 1 - EPS)
        return -(tt * torch.log(c) + (1 - tt) * torch.log(1 - c)).mean()
    want_v, want_g = torch_value_grad(fn, p)
    assert v == pytest.approx(want_v, rel=1e-6)
    np.testing.assert_array_equal(want_g, 0.0)


def test_loss_is_independent_of_the_thread_count():
    p = probs(3000, 10, seed=11)
    labels = rng.integers(0, 10, size=3000).astype(np.float32)
    loss = losses.SparseCategoricalCrossentropy()
    before = _core.get_num_threads()
    try:
        _core.set_num_threads(1)
        v1, g1 = loss._value_and_grad(labels, p)
        _core.set_num_threads(2)
        v2, g2 = loss._value_and_grad(labels, p)
    finally:
        _core.set_num_threads(before)
    assert v1 == v2
    np.testing.assert_array_equal(g1, g2)
    assert v1 == pytest.approx(np_cce(one_hot(labels.astype(int), 10), p), rel=1e-9)


# --- validation ----------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [3.0, -1.0, 1.5, float("nan")])
def test_sparse_rejects_bad_labels(bad):
    p = probs(3, 3)
    labels = np.array([0.0, bad, 1.0], np.float32)
    with pytest.raises(ValueError, match=r"label=" + ("nan" if math.isnan(bad) else f"{bad:g}")):
        losses.SparseCategoricalCrossentropy()(labels, p)


def test_shape_mismatches_name_both_shapes():
    with pytest.raises(ValueError, match=r"y_true.shape=\(2, 3\).*y_pred.shape=\(2, 4\)"):
        losses.CategoricalCrossentropy()(np.zeros((2, 3)), probs(2, 4))
    with pytest.raises(ValueError, match=r"one-hot labels need categorical_crossentropy.*y_true.shape=\(2, 3\), y_pred.shape=\(2, 3\)"):
        losses.SparseCategoricalCrossentropy()(one_hot([0, 1], 3), probs(2, 3))
    with pytest.raises(ValueError, match=r"sparse_categorical_crossentropy"):
        losses.CategoricalCrossentropy()(np.array([0.0, 1.0]), probs(2, 3))
    with pytest.raises(ValueError, match=r"y_true.shape=\(5,\), y_pred.shape=\(4, 1\)"):
        losses.BinaryCrossentropy()(np.zeros(5), np.full((4, 1), 0.5))
    # A trailing axis of 1 on either side is fine (Keras squeezes it).
    assert losses.BinaryCrossentropy()(np.zeros(4), np.full((4, 1), 0.5)) == pytest.approx(math.log(2), rel=1e-6)
    assert losses.MeanSquaredError()(np.ones((4, 1)), np.zeros(4)) == pytest.approx(1.0)


def test_constructor_validation():
    with pytest.raises(ValueError, match="label_smoothing=1.5"):
        losses.CategoricalCrossentropy(label_smoothing=1.5)
    with pytest.raises(ValueError, match="reduction"):
        losses.MeanSquaredError(reduction="sum")
    with pytest.raises(ValueError, match="axis=1"):
        losses.BinaryCrossentropy(axis=1)


# --- names and configs ---------------------------------------------------------------------------

@pytest.mark.parametrize("name,cls", [
    ("categorical_crossentropy", "CategoricalCrossentropy"),
    ("CategoricalCrossentropy", "CategoricalCrossentropy"),
    ("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy"),
    ("SparseCategoricalCrossentropy", "SparseCategoricalCrossentropy"),
    ("binary_crossentropy", "BinaryCrossentropy"),
    ("BinaryCrossentropy", "BinaryCrossentropy"),
    ("mean_squared_error", "MeanSquaredError"),
    ("mse", "MeanSquaredError"),
    ("MSE", "MeanSquaredError"),
    ("mae", "MeanAbsoluteError"),
])
def test_names_resolve(name, cls):
    loss = losses.get(name)
    assert loss.class_name == cls
    assert isinstance(loss, getattr(losses, cls))
    assert _core.make_loss(name, {}).class_name == cls


def test_flags_and_config_round_trip():
    assert losses.get("sparse_categorical_crossentropy").sparse
    assert not losses.get("categorical_crossentropy").sparse
    assert losses.get("binary_crossentropy").binary
    loss = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.25, name="my_cce")
    config = loss.get_config()
    assert config == {"name": "my_cce", "reduction": "sum_over_batch_size", "from_logits": True,
                      "label_smoothing": 0.25, "axis": -1}
    again = losses.get({"class_name": "CategoricalCrossentropy", "config": config})
    assert again.get_config() == config and again.name == "my_cce"
    z = rng.normal(size=(3, 4)).astype(np.float32)
    t = one_hot([0, 3, 1], 4)
    assert again(t, z) == loss(t, z)
    assert losses.get(loss) is loss


def test_unknown_names_and_types():
    with pytest.raises(ValueError, match="'hinge'"):
        losses.get("hinge")
    with pytest.raises(ValueError, match="bogus"):
        _core.make_loss("mse", {"bogus": 1})
    with pytest.raises(TypeError, match="custom Python loss"):
        losses.get(lambda y, p: 0.0)


def test_pickle_and_copy():
    import copy
    import pickle

    loss = losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.3, name="b")
    again = pickle.loads(pickle.dumps(loss))
    assert type(again) is losses.BinaryCrossentropy
    assert again.get_config() == loss.get_config()
    t = np.array([[1.0, 0.0]], np.float32)
    z = np.array([[0.3, -1.2]], np.float32)
    assert again(t, z) == loss(t, z)
    assert copy.deepcopy(losses.SparseCategoricalCrossentropy()).sparse
