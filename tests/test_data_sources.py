"""fit/evaluate/predict on data sources (Sequence objects and generators) instead of arrays: the same
C++ batch loop, so the same numbers as with arrays."""
import numpy as np
import pytest

import signcore
from signcore import layers


class Batches(signcore.utils.Sequence):
    def __init__(self, x, y=None, batch_size=8):
        self.x, self.y, self.bs = x, y, batch_size
        self.epochs_ended = 0

    def __len__(self):
        return -(-len(self.x) // self.bs)

    def __getitem__(self, i):
        s = slice(i * self.bs, (i + 1) * self.bs)
        return (self.x[s], self.y[s]) if self.y is not None else self.x[s]

    def on_epoch_end(self):
        self.epochs_ended += 1


def data(n=40):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 5)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


def model(seed=2):
    signcore.utils.set_random_seed(seed)
    m = signcore.Sequential([layers.Dense(6, activation="tanh", input_shape=(5,)), layers.Dense(2, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def test_sequence_training_equals_array_training():
    x, y = data()
    a, b = model(), model()
    seq = Batches(x, y)
    ha = a.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, validation_data=(x, y))
    hb = b.fit(seq, epochs=3, verbose=0, validation_data=(x, y))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-6)
    assert list(hb.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert seq.epochs_ended == 3
    assert hb.params["steps"] == 5
    np.testing.assert_array_equal(b.predict(Batches(x), verbose=0), b.predict(x, verbose=0))
    assert b.evaluate(seq, verbose=0) == pytest.approx(b.evaluate(x, y, verbose=0))


def test_generator_with_steps_per_epoch_and_keras2_aliases():
    x, y = data()

    def forever():
        while True:
            for i in range(0, 40, 10):
                yield x[i:i + 10], y[i:i + 10]

    m = model()
    hist = m.fit_generator(forever(), steps_per_epoch=4, epochs=2, verbose=0)
    assert hist.epoch == [0, 1]
    out = m.predict_generator((x[i:i + 10] for i in range(0, 40, 10)), steps=4)
    np.testing.assert_allclose(out, m.predict(x, verbose=0), rtol=1e-6)


def test_source_errors():
    x, y = data()
    m = model()
    with pytest.raises(ValueError, match="ran out after 2 batches"):
        m.fit(iter([(x[:8], y[:8]), (x[8:16], y[8:16])]), steps_per_epoch=3, verbose=0)
    with pytest.raises(ValueError, match="x only"):
        m.fit(Batches(x), verbose=0)
    with pytest.raises(ValueError, match=r"must have shape \(None, 5\).*\(8, 4\)"):
        m.fit(Batches(x[:, :4], y), verbose=0)
    with pytest.raises(ValueError, match="y must not be given"):
        m.fit(Batches(x, y), y, verbose=0)
    with pytest.raises(TypeError, match="dtype"):
        m.predict(iter([np.array([["a"] * 5])]), steps=1, verbose=0)


def test_short_epochs_continue_through_the_data_like_keras():
    x, y = data(n=40)  # 5 batches of 8
    seen = []

    class Recording(Batches):
        def __getitem__(self, i):
            seen.append(i)
            return super().__getitem__(i)

    src = Recording(x, y)
    model().fit(src, steps_per_epoch=3, epochs=3, verbose=0)
    assert seen == [0, 1, 2, 3, 4, 0, 1, 2, 3]  # epoch 2 continues at batch 3, then wraps
    assert src.epochs_ended == 1  # one full pass completed
