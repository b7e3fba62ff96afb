"""Optimizers against a float64 NumPy reference written from the Keras 3 update rules
(keras/src/optimizers/{sgd,adam,rmsprop,adagrad,adadelta,base_optimizer}.py), on 20-step
trajectories over three weight tensors with gradients from a quadratic loss at the current weights.
"""
import math
import pickle

import numpy as np
import pytest

import signcore
from signcore import _core
from signcore import optimizers as O

SHAPES = [(4, 3), (5,), (2, 3, 2)]
STEPS = 20

# Keras 3 defaults, written out here (not read from signcore) so a wrong default fails.
KERAS_DEFAULTS = {
    "SGD": {"name": "SGD", "learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
    "Adam": {"name": "adam", "learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7,
             "amsgrad": False},
    "RMSprop": {"name": "rmsprop", "learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7,
                "centered": False},
    "Adagrad": {"name": "adagrad", "learning_rate": 0.001, "initial_accumulator_value": 0.1,
                "epsilon": 1e-7},
    "Adadelta": {"name": "adadelta", "learning_rate": 0.001, "rho": 0.95, "epsilon": 1e-7},
}
COMMON = {"weight_decay": None, "clipnorm": None, "clipvalue": None, "global_clipnorm": None}


# --- the reference ------------------------------------------------------------------------------

class Reference:
    """One Keras optimizer in float64 NumPy: clip, decoupled weight decay, update, t += 1."""

    def __init__(self, cls, kwargs):
        self.cls = cls
        self.h = {**KERAS_DEFAULTS[cls], **COMMON, **kwargs}
        self.slots = {}
        self.t = 0  # Keras's `iterations`

    def _slot(self, i, key, shape, init=0.0):
        return self.slots.setdefault((i, key), np.full(shape, init, dtype=np.float64))

    def _clip(self, grads):
        h = self.h
        if h["clipnorm"]:
            c = h["clipnorm"]
            return [g * c / max(np.sqrt(np.sum(g * g)), c) for g in grads]
        if h["global_clipnorm"]:
            c = h["global_clipnorm"]
            norm = np.sqrt(sum(np.sum(g * g) for g in grads))
            return [g * c * min(1.0 / norm, 1.0 / c) for g in grads]
        if h["clipvalue"]:
            c = h["clipvalue"]
            return [np.clip(g, -c, c) for g in grads]
        return grads

    def step(self, weights, grads, trainable, lr):
        idx = [i for i in range(len(weights)) if trainable[i]]
        clipped = self._clip([grads[i] for i in idx])
        if self.h["weight_decay"]:
            for i in idx:
                weights[i] = weights[i] - weights[i] * self.h["weight_decay"] * lr
        for i, g in zip(idx, clipped):
            weights[i] = getattr(self, "_" + self.cls.lower())(i, weights[i], g, lr)
        self.t += 1

    def _sgd(self, i, w, g, lr):
        mu = self.h["momentum"]
        if mu == 0:
            return w - lr * g
        v = self._slot(i, "v", w.shape)
        v[...] = mu * v - lr * g
        return w + (mu * v - lr * g if self.h["nesterov"] else v)

    def _adam(self, i, w, g, lr):
        b1, b2, eps = self.h["beta_1"], self.h["beta_2"], self.h["epsilon"]
        t = self.t + 1
        m, v = self._slot(i, "m", w.shape), self._slot(i, "v", w.shape)
        m[...] = b1 * m + (1 - b1) * g
        v[...] = b2 * v + (1 - b2) * g * g
        if self.h["amsgrad"]:
            vh = self._slot(i, "vh", w.shape)
            vh[...] = np.maximum(vh, v)
            v = vh
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        return w - alpha * m / (np.sqrt(v) + eps)

    def _rmsprop(self, i, w, g, lr):
        rho, mu, eps = self.h["rho"], self.h["momentum"], self.h["epsilon"]
        v = self._slot(i, "v", w.shape)
        v[...] = rho * v + (1 - rho) * g * g
        if self.h["centered"]:
            a = self._slot(i, "a", w.shape)
            a[...] = rho * a + (1 - rho) * g
            inc = lr * g / np.sqrt(v - a * a + eps)
        else:
            inc = lr * g / np.sqrt(v + eps)
        if mu > 0:
            mom = self._slot(i, "mom", w.shape)
            mom[...] = mu * mom + inc
            return w - mom
        return w - inc

    def _adagrad(self, i, w, g, lr):
        acc = self._slot(i, "acc", w.shape, self.h["initial_accumulator_value"])
        acc += g * g
        return w - lr * g / np.sqrt(acc + self.h["epsilon"])

    def _adadelta(self, i, w, g, lr):
        rho, eps = self.h["rho"], self.h["epsilon"]
        ag, ad = self._slot(i, "ag", w.shape), self._slot(i, "ad", w.shape)
        ag[...] = rho * ag + (1 - rho) * g * g
        delta = -np.sqrt(ad + eps) / np.sqrt(ag + eps) * g
        ad[...] = rho * ad + (1 - rho) * delta * delta
        return w + lr * delta


# --- trajectories --------------------------------------------------------------------------------

def _problem(shapes, seed=0):
    rng = np.random.default_rng(seed)
    w0 = [rng.normal(0.0, 1.0, s) for s in shapes]
    curv = [rng.uniform(0.5, 2.0, s) for s in shapes]
    centre = [rng.normal(0.0, 2.0, s) for s in shapes]
    phase = [rng.uniform(0.0, 2 * np.pi, s) for s in shapes]

    def grad(weights, t):
        # L_t(w) = sum 0.5 * curv * (w - centre)^2 + 0.5 * sin(t + phase) * w
        return [(c * (w - z) + 0.5 * np.sin(t + p)).astype(np.float32)
                for w, c, z, p in zip(weights, curv, centre, phase)]

    return w0, grad


def run_trajectory(opt, cls, kwargs, shapes=SHAPES, steps=STEPS, trainable=None, lr_at=None):
    """Runs `opt` and the reference side by side; returns (signcore weights, reference weights, w0)."""
    trainable = trainable or [True] * len(shapes)
    w0, grad = _problem(shapes)
    ps = _core.ParameterSet([list(s) for s in shapes])
    for i, flag in enumerate(trainable):
        ps.set_trainable(i, flag)
    ps.set_values([w.astype(np.float32) for w in w0])
    ref = Reference(cls, kwargs)
    ref_w = [w.astype(np.float32).astype(np.float64) for w in w0]
    lr = opt.learning_rate
    for t in range(steps):
        if lr_at and t in lr_at:
            lr = lr_at[t]
            opt.learning_rate = lr
        g = grad([w.astype(np.float64) for w in ps.values()], t)  # at signcore's current weights
        ps.set_grads(g)
        opt.apply_to(ps)
        ref.step(ref_w, [x.astype(np.float64) for x in g], trainable, lr)
    assert opt.iterations == steps
    return ps.values(), ref_w, w0


CASES = [
    ("SGD", {}),
    ("SGD", {"learning_rate": 0.1}),
    ("SGD", {"learning_rate": 0.05, "momentum": 0.9}),
    ("SGD", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"learning_rate": 0.05, "nesterov": True}),  # no momentum: plain SGD, as in Keras
    ("Adam", {}),
    ("Adam", {"learning_rate": 0.05}),
    ("Adam", {"learning_rate": 0.05, "amsgrad": True}),
    # a large epsilon tells Keras's form (epsilon outside the bias correction) from PyTorch's
    ("Adam", {"learning_rate": 0.05, "beta_1": 0.8, "beta_2": 0.95, "epsilon": 0.1}),
    ("RMSprop", {}),
    ("RMSprop", {"learning_rate": 0.01, "epsilon": 0.1}),
    ("RMSprop", {"learning_rate": 0.01, "momentum": 0.5}),
    ("RMSprop", {"learning_rate": 0.01, "centered": True}),
    ("RMSprop", {"learning_rate": 0.01, "rho": 0.8, "momentum": 0.5, "centered": True}),
    ("Adagrad", {}),
    ("Adagrad", {"learning_rate": 0.1, "initial_accumulator_value": 0.0}),
    ("Adagrad", {"learning_rate": 0.1, "initial_accumulator_value": 2.0, "epsilon": 0.1}),
    ("Adadelta", {}),
    ("Adadelta", {"learning_rate": 1.0, "rho": 0.9, "epsilon": 1e-3}),
    # clipping (gradients here have norms of several units, elements up to ~5)
    ("SGD", {"learning_rate": 0.05, "momentum": 0.9, "clipnorm": 0.5}),
    ("Adam", {"learning_rate": 0.05, "clipnorm": 0.5}),
    ("SGD", {"learning_rate": 0.05, "clipvalue": 0.3}),
    ("RMSprop", {"learning_rate": 0.01, "clipvalue": 0.3}),
    ("SGD", {"learning_rate": 0.05, "global_clipnorm": 1.0}),
    ("Adam", {"learning_rate": 0.05, "global_clipnorm": 1.0}),
    ("SGD", {"learning_rate": 0.05, "global_clipnorm": 1e3}),  # above the norm: no clipping
    # decoupled weight decay, before the update
    ("SGD", {"learning_rate": 0.05, "momentum": 0.9, "weight_decay": 0.1}),
    ("Adam", {"learning_rate": 0.05, "weight_decay": 0.2}),
    ("Adadelta", {"learning_rate": 1.0, "weight_decay": 0.05, "clipnorm": 1.0}),
]


def _ids(case):
    cls, kw = case
    return cls + "-" + "-".join(f"{k}={v}" for k, v in kw.items())


def _assert_close(got, ref, w0):
    for g, r, w in zip(got, ref, w0):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=2e-6)
        # and the displacement itself, so a near-zero step cannot hide behind the weights' size
        np.testing.assert_allclose(g - w.astype(np.float32), r - w.astype(np.float32).astype(np.float64),
                                   rtol=2e-4, atol=2e-6)


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_trajectory_matches_keras_rule(case):
    cls, kwargs = case
    opt = getattr(O, cls)(**kwargs)
    got, ref, w0 = run_trajectory(opt, cls, kwargs)
    _assert_close(got, ref, w0)
    # the trajectory moved: a no-op optimizer would not pass (Adadelta's default steps are tiny)
    moved = max(np.max(np.abs(g - w)) for g, w in zip(got, w0))
    assert moved > (1e-5 if (cls, kwargs) == ("Adadelta", {}) else 1e-3)


def test_clipping_is_active_in_the_cases_above():
    # The clip thresholds above bind: the same runs without clipping end elsewhere.
    clipped, _, _ = run_trajectory(O.SGD(learning_rate=0.05, clipvalue=0.3), "SGD", {"learning_rate": 0.05})
    plain, _, _ = run_trajectory(O.SGD(learning_rate=0.05), "SGD", {"learning_rate": 0.05})
    assert max(np.max(np.abs(a - b)) for a, b in zip(clipped, plain)) > 1e-2
    w0, grad = _problem(SHAPES)
    g = grad(w0, 0)
    assert max(np.sqrt(np.sum(x.astype(np.float64) ** 2)) for x in g) > 2.0
    assert np.sqrt(sum(np.sum(x.astype(np.float64) ** 2) for x in g)) > 3.0


@pytest.mark.parametrize("cls,kwargs", [
    ("Adam", {"learning_rate": 0.05, "global_clipnorm": 1.0, "weight_decay": 0.1}),
    ("SGD", {"learning_rate": 0.05, "momentum": 0.9, "clipnorm": 0.5}),
    ("RMSprop", {"learning_rate": 0.01, "centered": True}),
])
def test_non_trainable_weight_untouched(cls, kwargs):
    trainable = [True, False, True]
    opt = getattr(O, cls)(**kwargs)
    got, ref, w0 = run_trajectory(opt, cls, kwargs, trainable=trainable)
    np.testing.assert_array_equal(got[1], w0[1].astype(np.float32))
    # the reference leaves it out of the global norm as well
    _assert_close([got[0], got[2]], [ref[0], ref[2]], [w0[0], w0[2]])


def test_gradient_buffer_is_not_modified_by_clipping():
    ps = _core.ParameterSet([[3], [2]])
    grads = [np.array([3.0, -4.0, 12.0], np.float32), np.array([0.5, -0.25], np.float32)]
    ps.set_values([np.zeros(3, np.float32), np.zeros(2, np.float32)])
    ps.set_grads(grads)
    O.SGD(learning_rate=1.0, clipnorm=1.0).apply_to(ps)
    for a, b in zip(ps.grads(), grads):
        np.testing.assert_array_equal(a, b)
    # hand-computed: |g0| = 13 -> g0 / 13; |g1| < 1 -> unchanged
    np.testing.assert_allclose(ps.values()[0], -grads[0] / 13.0, rtol=1e-6)
    np.testing.assert_allclose(ps.values()[1], -grads[1], rtol=1e-6)


def test_first_steps_by_hand():
    # Keras's docstring examples: SGD(0.1) on loss w^2/2 from w=1 -> 0.9; with momentum 0.9 the
    # second step is 0.18; RMSprop(0.1) from w=10 -> 9.683772.
    ps = _core.ParameterSet([[1]])
    opt = O.SGD(learning_rate=0.1, momentum=0.9)
    ps.set_values([np.array([1.0], np.float32)])
    ps.set_grads(ps.values())
    opt.apply_to(ps)
    w1 = ps.values()[0][0]
    ps.set_grads(ps.values())
    opt.apply_to(ps)
    assert w1 == pytest.approx(0.9, abs=1e-7)
    assert w1 - ps.values()[0][0] == pytest.approx(0.18, abs=1e-6)

    ps.set_values([np.array([10.0], np.float32)])
    ps.set_grads(ps.values())
    O.RMSprop(learning_rate=0.1).apply_to(ps)
    assert ps.values()[0][0] == pytest.approx(9.683772, abs=1e-5)

    # Adam's first step is lr * sign(g) (up to epsilon), whatever the gradient's size
    ps.set_values([np.array([10.0], np.float32)])
    ps.set_grads([np.array([123.0], np.float32)])
    O.Adam(learning_rate=0.01).apply_to(ps)
    assert ps.values()[0][0] == pytest.approx(9.99, abs=1e-6)


@pytest.mark.parametrize("cls,kwargs", [
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9}),
    ("Adam", {"learning_rate": 0.05, "weight_decay": 0.1}),
    ("Adagrad", {"learning_rate": 0.1}),
])
def test_learning_rate_change_takes_effect_at_next_step(cls, kwargs):
    opt = getattr(O, cls)(**kwargs)
    got, ref, w0 = run_trajectory(opt, cls, kwargs, lr_at={5: 0.01, 12: 0.003})
    _assert_close(got, ref, w0)
    assert opt.learning_rate == 0.003


def test_learning_rate_property():
    opt = O.SGD()
    assert opt.learning_rate == 0.01
    opt.learning_rate = 0.005
    assert opt.learning_rate == 0.005
    assert opt.get_config()["learning_rate"] == 0.005
    opt.learning_rate = np.float32(0.25)
    assert opt.learning_rate == 0.25
    opt.learning_rate = 0.0  # a schedule may reach zero
    with pytest.raises(ValueError, match="learning_rate=-0.1"):
        opt.learning_rate = -0.1
    with pytest.raises(ValueError, match="learning_rate"):
        opt.learning_rate = float("nan")

    # exactly lr * g after a change
    ps = _core.ParameterSet([[2]])
    ps.set_values([np.array([1.0, 2.0], np.float32)])
    ps.set_grads([np.array([1.0, -2.0], np.float32)])
    opt = O.SGD(learning_rate=0.5)
    opt.apply_to(ps)
    opt.learning_rate = 0.25
    opt.apply_to(ps)
    np.testing.assert_allclose(ps.values()[0], [1.0 - 0.75, 2.0 + 1.5], rtol=1e-7)
    assert opt.iterations == 2


def test_iterations_and_built():
    opt = O.Adam()
    assert opt.iterations == 0 and not opt.built
    ps = _core.ParameterSet([[3]])
    for k in range(4):
        ps.set_grads([np.ones(3, np.float32)])
        opt.apply_to(ps)
        assert opt.iterations == k + 1
    assert opt.built


@pytest.mark.parametrize("make,expected", [
    (lambda: O.SGD(), lambda p: 2),
    (lambda: O.SGD(momentum=0.9), lambda p: p + 2),
    (lambda: O.SGD(momentum=0.9, nesterov=True), lambda p: p + 2),
    (lambda: O.Adam(), lambda p: 2 * p + 2),
    (lambda: O.Adam(amsgrad=True), lambda p: 3 * p + 2),
    (lambda: O.RMSprop(), lambda p: p + 2),
    (lambda: O.RMSprop(momentum=0.5), lambda p: 2 * p + 2),
    (lambda: O.RMSprop(centered=True), lambda p: 2 * p + 2),
    (lambda: O.RMSprop(momentum=0.5, centered=True), lambda p: 3 * p + 2),
    (lambda: O.Adagrad(), lambda p: p + 2),
    (lambda: O.Adadelta(), lambda p: 2 * p + 2),
])
def test_variable_count(make, expected):
    opt = make()
    for p in (0, 1, 7, 101_770):
        assert opt.variable_count(p) == expected(p)


# --- configuration --------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", sorted(KERAS_DEFAULTS))
def test_defaults_match_keras(cls):
    config = getattr(O, cls)().get_config()
    assert config == {**KERAS_DEFAULTS[cls], **COMMON}


CONFIG_CASES = [
    O.SGD(learning_rate=0.3, momentum=0.7, nesterov=True, clipnorm=2.0, name="s"),
    O.Adam(learning_rate=0.002, beta_1=0.8, beta_2=0.99, epsilon=1e-5, amsgrad=True, weight_decay=0.01),
    O.RMSprop(learning_rate=0.01, rho=0.8, momentum=0.3, epsilon=1e-6, centered=True, clipvalue=0.5),
    O.Adagrad(learning_rate=0.2, initial_accumulator_value=0.5, epsilon=1e-4, global_clipnorm=3.0),
    O.Adadelta(learning_rate=1.0, rho=0.9, epsilon=1e-6, weight_decay=0.001, name="ad"),
]


@pytest.mark.parametrize("opt", CONFIG_CASES, ids=lambda o: type(o).__name__)
def test_get_config_round_trip(opt):
    config = opt.get_config()
    clone = type(opt)(**config)
    assert type(clone) is type(opt)
    assert clone.get_config() == config
    assert type(opt).from_config(config).get_config() == config
    assert O.get(O.serialize(opt)).get_config() == config
    assert _core.make_optimizer(type(opt).__name__.lower(), config).get_config() == config
    # values are reported as given, not as their float32 images
    for key in ("learning_rate", "weight_decay", "clipnorm", "clipvalue", "global_clipnorm"):
        if config[key] is not None:
            assert config[key] == getattr(opt, key) and len(repr(config[key])) < 8
    # the clone steps identically
    a, b = type(opt)(**config), clone
    pa, pb = _core.ParameterSet([[6]]), _core.ParameterSet([[6]])
    for t in range(3):
        g = np.linspace(-2, 3, 6).astype(np.float32) * (t + 1)
        pa.set_grads([g])
        pb.set_grads([g])
        a.apply_to(pa)
        b.apply_to(pb)
    np.testing.assert_array_equal(pa.values()[0], pb.values()[0])


def test_hyperparameter_properties():
    opt = O.RMSprop(rho=0.8, momentum=0.3, epsilon=1e-6, centered=True, clipvalue=0.5, name="r")
    assert (opt.rho, opt.momentum, opt.epsilon, opt.centered) == (0.8, 0.3, 1e-6, True)
    assert (opt.clipvalue, opt.clipnorm, opt.global_clipnorm, opt.weight_decay) == (0.5, None, None, None)
    assert opt.name == "r"
    assert O.Adam(beta_2=0.98).beta_2 == 0.98
    assert O.SGD(momentum=0.5, nesterov=True).nesterov is True
    assert O.Adagrad(initial_accumulator_value=0.3).initial_accumulator_value == 0.3


def test_get_resolves_names_case_insensitively():
    for name, cls in [("sgd", O.SGD), ("ADAM", O.Adam), ("RMSprop", O.RMSprop), ("adagrad", O.Adagrad),
                      ("AdaDelta", O.Adadelta)]:
        opt = O.get(name)
        assert type(opt) is cls
        assert opt.get_config() == {**KERAS_DEFAULTS[cls.__name__], **COMMON}
    opt = O.Adam()
    assert O.get(opt) is opt
    assert isinstance(O.get("sgd"), O.Optimizer)


def test_get_rejects_bad_identifiers():
    with pytest.raises(ValueError, match="adamw"):
        O.get("adamw")
    with pytest.raises(TypeError, match="3"):
        O.get(3)
    with pytest.raises(TypeError):
        O.get(None)


def test_keras_full_config_is_accepted():
    # Keras 3 writes these keys into every optimizer config; their "off" values are accepted.
    config = {**KERAS_DEFAULTS["Adam"], **COMMON, "use_ema": False, "ema_momentum": 0.99,
              "ema_overwrite_frequency": None, "loss_scale_factor": None, "gradient_accumulation_steps": None}
    opt = O.get({"module": "keras.optimizers", "class_name": "Adam", "config": config, "registered_name": None})
    assert type(opt) is O.Adam
    with pytest.raises(ValueError, match="use_ema"):
        _core.make_optimizer("adam", {"use_ema": True})


@pytest.mark.parametrize("make,match", [
    (lambda: O.Adam(learning_rate=-1.0), "learning_rate=-1"),
    (lambda: O.RMSprop(learning_rate=float("nan")), "learning_rate=nan"),
    (lambda: O.SGD(momentum=1.5), "momentum=1.5"),
    (lambda: O.SGD(momentum=-0.1), "momentum=-0.1"),
    (lambda: O.Adam(beta_1=1.0), "beta_1=1"),
    (lambda: O.Adam(beta_2=-0.1), "beta_2=-0.1"),
    (lambda: O.Adam(epsilon=-1e-7), "epsilon=-1e-07"),
    (lambda: O.RMSprop(rho=1.5), "rho=1.5"),
    (lambda: O.RMSprop(momentum=-0.5), "momentum=-0.5"),
    (lambda: O.Adadelta(rho=-0.1), "rho=-0.1"),
    (lambda: O.Adagrad(initial_accumulator_value=-1.0), "initial_accumulator_value=-1"),
    (lambda: O.SGD(clipnorm=1.0, clipvalue=1.0), "Only one of .*clipnorm=1, clipvalue=1, global_clipnorm=None"),
    (lambda: O.Adam(clipnorm=1.0, global_clipnorm=2.0), "Only one of"),
    (lambda: O.Adam(clipvalue=0.5, global_clipnorm=2.0), "Only one of"),
    (lambda: O.SGD(clipnorm=-1.0), "clipnorm=-1"),
    (lambda: O.SGD(clipvalue=0.0), "clipvalue=0"),
    (lambda: O.Adam(weight_decay=-0.1), "weight_decay=-0.1"),
    (lambda: _core.make_optimizer("adam", {"beta_3": 0.5}), "beta_3"),
    (lambda: _core.make_optimizer("sgd", {"momentum": 0.5, "rho": 0.9}), "rho"),
    (lambda: _core.make_optimizer("nadam"), "nadam"),
])
def test_bad_arguments_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_argument_types():
    with pytest.raises(TypeError, match="beta_1"):
        _core.make_optimizer("adam", {"beta_1": "high"})
    with pytest.raises(TypeError, match="nesterov"):
        _core.make_optimizer("sgd", {"nesterov": 1})
    with pytest.raises(TypeError):
        O.Adam(foo=1.0)
    with pytest.raises(TypeError):
        O.SGD(learning_rate="fast")


def test_parameter_set_checks_shapes():
    ps = _core.ParameterSet([[2, 2], [3]])
    with pytest.raises(ValueError, match=r"\(2, 2\).*\(4,\)"):
        ps.set_values([np.zeros(4), np.zeros(3)])
    with pytest.raises(ValueError, match="2"):
        ps.set_grads([np.zeros((2, 2))])
    with pytest.raises(ValueError, match="index=5"):
        ps.set_trainable(5, False)


# --- state ----------------------------------------------------------------------------------------

def test_pickle_mid_trajectory_continues_identically():
    w0, grad = _problem(SHAPES)
    opt = O.Adam(learning_rate=0.05, amsgrad=True, clipnorm=1.0)
    ps = _core.ParameterSet([list(s) for s in SHAPES])
    ps.set_values([w.astype(np.float32) for w in w0])
    for t in range(5):
        ps.set_grads(grad(ps.values(), t))
        opt.apply_to(ps)
    copy = pickle.loads(pickle.dumps(opt))
    assert type(copy) is O.Adam and copy.iterations == 5 and copy.built
    assert copy.get_config() == opt.get_config()
    ps2 = _core.ParameterSet([list(s) for s in SHAPES])
    ps2.set_values(ps.values())
    for t in range(5, 10):
        for p, o in ((ps, opt), (ps2, copy)):
            p.set_grads(grad(p.values(), t))
            o.apply_to(p)
    for a, b in zip(ps.values(), ps2.values()):
        np.testing.assert_array_equal(a, b)


@pytest.fixture
def restore_threads():
    n = signcore._core.get_num_threads()
    yield
    signcore._core.set_num_threads(n)


@pytest.mark.parametrize("opt_factory", [
    lambda: O.Adam(learning_rate=0.01, global_clipnorm=10.0, weight_decay=0.01),
    lambda: O.RMSprop(centered=True, momentum=0.5, clipnorm=5.0),
])
def test_result_does_not_depend_on_thread_count(opt_factory, restore_threads):
    # Large enough (200k elements) for the update and the norms to be split across threads.
    shapes = [(400, 500), (7,)]
    rng = np.random.default_rng(1)
    w = [rng.normal(size=s).astype(np.float32) for s in shapes]
    grads = [[rng.normal(size=s).astype(np.float32) for s in shapes] for _ in range(3)]
    results = []
    for threads in (1, 2, 3):
        signcore._core.set_num_threads(threads)
        opt = opt_factory()
        ps = _core.ParameterSet([list(s) for s in shapes])
        ps.set_values(w)
        for g in grads:
            ps.set_grads(g)
            opt.apply_to(ps)
        results.append(ps.values())
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
