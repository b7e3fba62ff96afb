"""Seed 001's user-written CyclicLR callback runs unchanged on signcore (only its imports differ),
and the built-in signcore.callbacks.CyclicLR does the same thing. The learning rates are checked
against the triangular / triangular2 / exp_range formulas computed by hand, and the rates are
checked to really drive training (the same weights as stepping by hand with those rates)."""
import numpy as np
import pytest

import signcore
from signcore import layers

# ---- The user's callback, as written for Keras (CustomCallback.py of seed 001). Only the imports
# ---- changed: `from keras.callbacks import *` / `from keras import backend as K` became these.
from signcore.callbacks import Callback
from signcore import backend as K


class CyclicLR(Callback):
    """This callback implements a cyclical learning rate policy (CLR).
    The method cycles the learning rate between two boundaries with
    some constant frequency, as detailed in this paper (https://arxiv.org/abs/1506.01186).
    """

    def __init__(self, base_lr=0.001, max_lr=0.006, step_size=2000., mode='triangular',
                 gamma=1., scale_fn=None, scale_mode='cycle'):
        super(CyclicLR, self).__init__()

        self.base_lr = base_lr
        self.max_lr = max_lr
        self.step_size = step_size
        self.mode = mode
        self.gamma = gamma
        if scale_fn == None:
            if self.mode == 'triangular':
                self.scale_fn = lambda x: 1.
                self.scale_mode = 'cycle'
            elif self.mode == 'triangular2':
                self.scale_fn = lambda x: 1/(2.**(x-1))
                self.scale_mode = 'cycle'
            elif self.mode == 'exp_range':
                self.scale_fn = lambda x: gamma**(x)
                self.scale_mode = 'iterations'
        else:
            self.scale_fn = scale_fn
            self.scale_mode = scale_mode
        self.clr_iterations = 0.
        self.trn_iterations = 0.
        self.history = {}

        self._reset()

    def _reset(self, new_base_lr=None, new_max_lr=None,
               new_step_size=None):
        """Resets cycle iterations.
        Optional boundary/step size adjustment.
        """
        if new_base_lr != None:
            self.base_lr = new_base_lr
        if new_max_lr != None:
            self.max_lr = new_max_lr
        if new_step_size != None:
            self.step_size = new_step_size
        self.clr_iterations = 0.

    def clr(self):
        cycle = np.floor(1+self.clr_iterations/(2*self.step_size))
        x = np.abs(self.clr_iterations/self.step_size - 2*cycle + 1)
        if self.scale_mode == 'cycle':
            return self.base_lr + (self.max_lr-self.base_lr)*np.maximum(0, (1-x))*self.scale_fn(cycle)
        else:
            return self.base_lr + (self.max_lr-self.base_lr)*np.maximum(0, (1-x))*self.scale_fn(self.clr_iterations)

    def on_train_begin(self, logs={}):
        logs = logs or {}

        if self.clr_iterations == 0:
            K.set_value(self.model.optimizer.lr, self.base_lr)
        else:
            K.set_value(self.model.optimizer.lr, self.clr())

    def on_batch_end(self, epoch, logs=None):

        logs = logs or {}
        self.trn_iterations += 1
        self.clr_iterations += 1

        self.history.setdefault('lr', []).append(K.get_value(self.model.optimizer.lr))
        self.history.setdefault('iterations', []).append(self.trn_iterations)

        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

        K.set_value(self.model.optimizer.lr, self.clr())
# ---- end of the user's code


BASE, MAX = 0.001, 0.006


def expected_rates(n, step, mode, gamma=1.0):
    """The rate each of n batches trains with, written out from the CLR formulas."""
    rates = []
    for it in range(n):  # batch i trains with the rate for it = i iterations done
        cycle = 1 + it // (2 * step)
        x = abs(it / step - 2 * cycle + 1)
        scale = {"triangular": 1.0, "triangular2": 0.5 ** (cycle - 1), "exp_range": gamma ** it}[mode]
        rates.append(BASE + (MAX - BASE) * max(0.0, 1 - x) * scale)
    return np.array(rates)


def data(n=32, f=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, f)).astype(np.float32)
    y = np.argmax(x @ rng.normal(size=(f, classes)), axis=1)
    return x, y


def model(seed=3):
    signcore.utils.set_random_seed(seed)
    m = signcore.Sequential([layers.Dense(6, activation="tanh", input_shape=(5,)), layers.Dense(3, activation="softmax")])
    m.compile(optimizer=signcore.optimizers.SGD(learning_rate=0.0001), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    return m


def test_triangular_rates_by_hand():
    # The numbers, written out: step 4, base 0.001, max 0.006.
    assert np.allclose(expected_rates(12, 4, "triangular"),
                       [0.001, 0.00225, 0.0035, 0.00475, 0.006, 0.00475, 0.0035, 0.00225, 0.001, 0.00225, 0.0035, 0.00475])


@pytest.mark.parametrize("mode,step,gamma", [("triangular", 4, 1.0), ("triangular2", 2, 1.0), ("exp_range", 3, 0.9)])
def test_seed_callback_runs_unchanged(mode, step, gamma):
    x, y = data()
    m = model()
    clr = CyclicLR(base_lr=BASE, max_lr=MAX, step_size=step, mode=mode, gamma=gamma)
    hist = m.fit(x, y, batch_size=8, epochs=3, callbacks=[clr], shuffle=False, verbose=0)
    np.testing.assert_allclose(clr.history["lr"], expected_rates(12, step, mode, gamma), rtol=1e-6)
    assert clr.history["iterations"] == list(range(1, 13))
    # The batch logs reached the callback: running loss and accuracy of each epoch.
    assert len(clr.history["loss"]) == 12 and len(clr.history["accuracy"]) == 12
    assert all(np.isfinite(clr.history["loss"]))
    assert clr.history["loss"][3] == pytest.approx(hist.history["loss"][0], rel=1e-12)  # last batch = epoch mean
    # K.get_value gives NumPy float32, as in Keras.
    assert isinstance(clr.history["lr"][0], np.float32)
    # The rate left in the optimizer is the one for the 13th batch.
    assert m.optimizer.learning_rate == pytest.approx(expected_rates(13, step, mode, gamma)[12], rel=1e-6)


def test_rates_really_drive_training():
    # Stepping by hand with the same rates (train_on_batch) gives the same weights.
    x, y = data()
    m = model()
    clr = CyclicLR(base_lr=BASE, max_lr=MAX, step_size=4)
    m.fit(x, y, batch_size=8, epochs=2, callbacks=[clr], shuffle=False, verbose=0)
    ref = model()
    for i, lr in enumerate(expected_rates(8, 4, "triangular")):
        ref.optimizer.learning_rate = lr
        b = (i % 4) * 8
        ref.train_on_batch(x[b:b + 8], y[b:b + 8])
    for a, b in zip(m.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_cycle_continues_across_fits_and_reset():
    x, y = data()
    m = model()
    clr = CyclicLR(base_lr=BASE, max_lr=MAX, step_size=4)
    m.fit(x, y, batch_size=8, epochs=1, callbacks=[clr], shuffle=False, verbose=0)
    m.fit(x, y, batch_size=8, epochs=1, callbacks=[clr], shuffle=False, verbose=0)
    np.testing.assert_allclose(clr.history["lr"], expected_rates(8, 4, "triangular"), rtol=1e-6)
    clr._reset(new_max_lr=0.011)
    assert clr.clr_iterations == 0 and clr.max_lr == 0.011
    m.fit(x, y, batch_size=8, epochs=1, callbacks=[clr], shuffle=False, verbose=0)
    assert clr.history["lr"][8] == pytest.approx(BASE, rel=1e-6)
    assert clr.history["lr"][10] == pytest.approx(BASE + 0.5 * (0.011 - BASE), rel=1e-6)
    assert clr.history["iterations"][-1] == 12


@pytest.mark.parametrize("mode,step,gamma", [("triangular", 4, 1.0), ("triangular2", 2, 1.0), ("exp_range", 3, 0.9)])
def test_builtin_cyclic_lr_matches_the_seed_callback(mode, step, gamma):
    x, y = data()
    user_model, builtin_model = model(), model()
    user = CyclicLR(base_lr=BASE, max_lr=MAX, step_size=step, mode=mode, gamma=gamma)
    builtin = signcore.callbacks.CyclicLR(base_lr=BASE, max_lr=MAX, step_size=step, mode=mode, gamma=gamma)
    user_model.fit(x, y, batch_size=8, epochs=3, callbacks=[user], shuffle=False, verbose=0)
    hist = builtin_model.fit(x, y, batch_size=8, epochs=3, callbacks=[builtin], shuffle=False, verbose=0)
    np.testing.assert_allclose(builtin.history["lr"], np.array(user.history["lr"], dtype=np.float64), rtol=1e-7)
    assert builtin.history["iterations"] == user.history["iterations"]
    np.testing.assert_allclose(builtin.history["loss"], user.history["loss"], rtol=1e-6)
    for a, b in zip(user_model.get_weights(), builtin_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
    # The built-in logs the rate of each epoch's last batch, as Keras 3 callbacks log learning_rate.
    np.testing.assert_allclose(hist.history["learning_rate"], np.array(builtin.history["lr"])[[3, 7, 11]])


def test_builtin_scale_fn_and_arguments():
    x, y = data()
    m = model()
    clr = signcore.callbacks.CyclicLR(base_lr=BASE, max_lr=MAX, step_size=2, scale_fn=lambda c: 1.0 / c,
                                      scale_mode="cycle")
    m.fit(x, y, batch_size=8, epochs=2, callbacks=[clr], shuffle=False, verbose=0)
    # cycle 1: amplitude 1, cycle 2: amplitude 1/2.
    expected = [BASE, BASE + 0.5 * (MAX - BASE), MAX, BASE + 0.5 * (MAX - BASE),
                BASE, BASE + 0.25 * (MAX - BASE), BASE + 0.5 * (MAX - BASE), BASE + 0.25 * (MAX - BASE)]
    np.testing.assert_allclose(clr.history["lr"], expected, rtol=1e-6)
    with pytest.raises(ValueError, match="mode"):
        signcore.callbacks.CyclicLR(mode="sawtooth")
    with pytest.raises(ValueError, match="step_size"):
        signcore.callbacks.CyclicLR(step_size=0)


def test_backend_get_set_value():
    m = model()
    lr = m.optimizer.lr
    assert isinstance(lr, float) and lr == pytest.approx(0.0001)
    assert K.get_value(lr) == np.float32(0.0001)
    K.set_value(m.optimizer.lr, 0.25)
    assert m.optimizer.learning_rate == 0.25
    m.optimizer.lr = 0.5  # Keras 2's attribute is writable too
    assert m.optimizer.learning_rate == 0.5
    assert lr == pytest.approx(0.0001)  # a value read earlier does not change
    with pytest.raises(TypeError, match="learning_rate = value"):
        K.set_value(m.optimizer.learning_rate, 0.1)
    with pytest.raises(TypeError, match="number"):
        K.set_value(m.optimizer.lr, "fast")
    with pytest.raises(ValueError):
        K.set_value(m.optimizer.lr, -1.0)
    assert K.get_value(np.float32(3.0)) == 3.0 and K.epsilon() == 1e-7
