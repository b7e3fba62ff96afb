"""Initialisers: the Keras formulas (limits, truncated-normal standard deviations, fans for rank > 2),
orthogonality, constants, seeding, and errors. Expected values are computed here from the Keras
definitions; the draws are large enough that the statistical tolerances are many standard errors."""
import math

import numpy as np
import pytest

from signcore import _core, initializers, layers

TRUNC = 0.87962566103423978  # stddev of a unit normal truncated to [-2, 2]


def draw(name, shape, seed=0):
    out = _core._initialize(name, list(shape), seed)
    assert out.dtype == np.float32 and out.shape == tuple(shape)
    return out.astype(np.float64)


def fans(shape):
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


@pytest.mark.parametrize("name, scale, avg", [("glorot_uniform", 1, True), ("he_uniform", 2, False),
                                              ("lecun_uniform", 1, False)])
@pytest.mark.parametrize("shape", [(300, 200), (3, 3, 16, 32), (20000,)])
def test_uniform_variance_scaling_limits(name, scale, avg, shape):
    fan_in, fan_out = fans(shape)
    n = (fan_in + fan_out) / 2 if avg else fan_in
    limit = math.sqrt(3 * scale / n)
    w = draw(name, shape)
    assert np.abs(w).max() <= limit * (1 + 1e-6)
    assert np.abs(w).max() > 0.98 * limit
    assert abs(w.mean()) < 4 * limit / math.sqrt(3 * w.size)
    assert w.var() == pytest.approx(limit ** 2 / 3, rel=0.06)


@pytest.mark.parametrize("name, scale, avg", [("glorot_normal", 1, True), ("he_normal", 2, False),
                                              ("lecun_normal", 1, False)])
@pytest.mark.parametrize("shape", [(400, 150), (3, 3, 32, 64)])
def test_truncated_normal_variance_scaling(name, scale, avg, shape):
    fan_in, fan_out = fans(shape)
    n = (fan_in + fan_out) / 2 if avg else fan_in
    target = math.sqrt(scale / n)  # the std Keras aims for after truncation
    w = draw(name, shape, seed=3)
    assert w.std() == pytest.approx(target, rel=0.03)
    bound = 2 * target / TRUNC  # draws beyond two (untruncated) standard deviations are redrawn
    assert np.abs(w).max() <= bound * (1 + 1e-6)
    assert np.abs(w).max() > 0.97 * bound
    assert abs(w.mean()) < 4 * target / math.sqrt(w.size)


@pytest.mark.parametrize("shape", [(50, 20), (20, 50), (16, 16), (3, 4, 5), (2, 3, 8)])
def test_orthogonal(shape):
    q = draw("orthogonal", shape, seed=1).reshape(-1, shape[-1])
    rows, cols = q.shape
    if rows >= cols:
        np.testing.assert_allclose(q.T @ q, np.eye(cols), atol=1e-5)
    else:
        np.testing.assert_allclose(q @ q.T, np.eye(rows), atol=1e-5)
    with pytest.raises(ValueError, match="rank"):
        _core._initialize("orthogonal", [5], 0)


def test_constants_and_small_random_initialisers():
    np.testing.assert_array_equal(draw("zeros", (3, 4)), 0)
    np.testing.assert_array_equal(draw("ones", (5,)), 1)
    w = draw("random_normal", (200, 300))
    assert w.std() == pytest.approx(0.05, rel=0.02)
    assert abs(w.mean()) < 4 * 0.05 / math.sqrt(w.size)
    assert np.abs(w).max() > 0.2  # not truncated: 4+ sigma draws occur in 60000 samples
    u = draw("random_uniform", (200, 300))
    assert np.abs(u).max() <= 0.05 and np.abs(u).max() > 0.0499
    assert u.var() == pytest.approx(0.05 ** 2 / 3, rel=0.03)


def test_seeding_and_the_global_engine():
    np.testing.assert_array_equal(draw("he_normal", (10, 10), seed=5), draw("he_normal", (10, 10), seed=5))
    assert not np.array_equal(draw("he_normal", (10, 10), seed=5), draw("he_normal", (10, 10), seed=6))
    a = _core._initialize("glorot_uniform", [8, 8])
    b = _core._initialize("glorot_uniform", [8, 8])
    assert not np.array_equal(a, b)  # unseeded calls advance the global engine

    def built_dense():
        layer = layers.Dense(6, kernel_initializer="orthogonal", bias_initializer="random_uniform")
        _core.LayerHarness(layer, [[4]])
        return layer.get_weights()

    _core.set_random_seed(123)
    first = built_dense()
    _core.set_random_seed(123)
    second = built_dense()
    for x, y in zip(first, second):
        np.testing.assert_array_equal(x, y)
    assert np.abs(first[1]).max() > 0  # the bias initialiser was used


def test_python_initializer_objects():
    init = initializers.GlorotUniform(seed=7)
    np.testing.assert_array_equal(init((6, 4)), init((6, 4)))  # a seeded instance repeats, as Keras 3
    assert np.abs(init((6, 4))).max() <= math.sqrt(6 / 10)
    assert isinstance(initializers.get("HeNormal"), initializers.HeNormal)
    assert isinstance(initializers.get("he_normal"), initializers.HeNormal)
    assert initializers.serialize(initializers.Orthogonal()) == "orthogonal"
    np.testing.assert_array_equal(initializers.Ones()((2, 2)), 1)
    assert set(initializers.NAMES) == {initializers.serialize(initializers.get(n)) for n in initializers.NAMES}
    with pytest.raises(ValueError, match="stddev=0.1"):
        initializers.RandomNormal(stddev=0.1)
    with pytest.raises(ValueError, match="gain"):
        initializers.Orthogonal(gain=2.0)
    with pytest.raises(ValueError, match="initializer='xavier'"):
        initializers.get("xavier")
    with pytest.raises(ValueError, match="seed"):
        layers.Dense(3, kernel_initializer=initializers.HeNormal(seed=1))
    # Keras's class names are accepted as strings too.
    layer = layers.Dense(3, kernel_initializer="GlorotNormal")
    _core.LayerHarness(layer, [[5]])
    assert layer.get_weights()[0].shape == (5, 3)
