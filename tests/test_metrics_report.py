"""classification_report against scikit-learn (text and dict), Precision / Recall against counts
written from Keras 3's definitions (and scikit-learn), top-k accuracy against NumPy, and the
streaming confusion-matrix metric, alone and inside compile/evaluate."""
import pickle

import numpy as np
import pytest
from sklearn import metrics as skm

import signcore
from signcore import layers, metrics

rng = np.random.default_rng(7)


# ------------------------------------------------------------------------------------------------
# classification_report

def noisy_labels(n=200, k=4):
    t = rng.integers(0, k, size=n)
    p = np.where(rng.random(n) < 0.6, t, rng.integers(0, k, size=n))
    return t, p


@pytest.mark.parametrize("digits", [2, 3])
def test_report_text_equals_sklearn(digits):
    t, p = noisy_labels()
    names = ["hello", "thank you", "yes", "no"]
    assert metrics.classification_report(t, p, digits=digits) == skm.classification_report(t, p, digits=digits)
    assert (metrics.classification_report(t, p, target_names=names, digits=digits)
            == skm.classification_report(t, p, target_names=names, digits=digits))


def test_report_dict_equals_sklearn():
    t, p = noisy_labels()
    ours = metrics.classification_report(t, p, output_dict=True)
    ref = skm.classification_report(t, p, output_dict=True)
    assert list(ours) == list(ref)
    assert ours["accuracy"] == pytest.approx(ref["accuracy"])
    for key in ref:
        if key != "accuracy":
            assert set(ours[key]) == set(ref[key])
            for field in ref[key]:
                assert ours[key][field] == pytest.approx(ref[key][field], abs=1e-12), (key, field)


def test_report_from_scores_and_one_hot_and_label_subset():
    t, p = noisy_labels()
    scores = np.eye(4)[p] * 0.7 + 0.1
    one_hot = np.eye(4)[t]
    assert metrics.classification_report(one_hot, scores) == skm.classification_report(t, p)
    # A subset of labels: the first average row is "micro avg" instead of "accuracy".
    ours = metrics.classification_report(t, p, labels=[0, 2])
    assert ours == skm.classification_report(t, p, labels=[0, 2])
    assert "micro avg" in ours


def test_report_zero_division():
    # Class 2 is never predicted and class 3 never occurs: ill-defined ratios.
    t = np.array([0, 0, 1, 1, 2, 2, 0, 1])
    p = np.array([0, 1, 1, 1, 0, 1, 3, 0])
    with pytest.warns(UserWarning, match="ill-defined"):
        ours = metrics.classification_report(t, p)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert ours == skm.classification_report(t, p)
    for zd in (0.0, 1.0):
        ours = metrics.classification_report(t, p, zero_division=zd, output_dict=True)
        ref = skm.classification_report(t, p, zero_division=zd, output_dict=True)
        assert list(ours) == list(ref)
        for key, value in ref.items():
            assert ours[key] == pytest.approx(value), key
        assert metrics.classification_report(t, p, zero_division=zd) == skm.classification_report(t, p, zero_division=zd)
    with pytest.raises(ValueError, match="target_names"):
        metrics.classification_report(t, p, target_names=["a", "b"])


# ------------------------------------------------------------------------------------------------
# Precision and Recall

def counts(pred, actual):
    return ((pred & actual).sum(), (pred & ~actual).sum(), (~pred & actual).sum())


def test_binary_precision_recall_streaming():
    y = rng.integers(0, 2, size=(50, 1)).astype(np.float32)
    s = rng.random((50, 1)).astype(np.float32)
    pm, rm = metrics.Precision(), metrics.Recall()
    for a in range(0, 50, 16):  # several batches: counts accumulate
        pm.update_state(y[a:a + 16], s[a:a + 16])
        rm.update_state(y[a:a + 16], s[a:a + 16])
    tp, fp, fn = counts(s[:, 0] > 0.5, y[:, 0] == 1)
    assert pm.result() == pytest.approx(tp / (tp + fp))
    assert rm.result() == pytest.approx(tp / (tp + fn))
    assert pm.result() == pytest.approx(skm.precision_score(y[:, 0], s[:, 0] > 0.5))
    pm.reset_state()
    assert pm.result() == 0.0  # nothing predicted positive yet


def test_precision_recall_threshold_top_k_class_id():
    y = np.eye(5)[rng.integers(0, 5, size=40)].astype(np.float32)
    s = rng.random((40, 5)).astype(np.float32)
    # Threshold: every element counts.
    p = metrics.Precision(thresholds=0.7)
    p.update_state(y, s)
    tp, fp, _ = counts(s > 0.7, y == 1)
    assert p.result() == pytest.approx(tp / (tp + fp))
    # top_k=1: only each row's highest score is a positive -> precision = recall = accuracy.
    top1 = np.zeros_like(s, dtype=bool)
    top1[np.arange(40), s.argmax(1)] = True
    p, r = metrics.Precision(top_k=1), metrics.Recall(top_k=1)
    p.update_state(y, s)
    r.update_state(y, s)
    acc = np.mean(s.argmax(1) == y.argmax(1))
    assert p.result() == pytest.approx(acc) and r.result() == pytest.approx(acc)
    # top_k=2 with a threshold on top.
    top2 = np.argsort(-s, axis=1, kind="stable")[:, :2]
    mask = np.zeros_like(s, dtype=bool)
    np.put_along_axis(mask, top2, True, axis=1)
    p = metrics.Precision(top_k=2, thresholds=0.5)
    p.update_state(y, s)
    tp, fp, _ = counts(mask & (s > 0.5), y == 1)
    assert p.result() == pytest.approx(tp / (tp + fp))
    # class_id: one class against the rest.
    r = metrics.Recall(class_id=3)
    r.update_state(y, s)
    tp, _, fn = counts(s[:, 3] > 0.5, y[:, 3] == 1)
    assert r.result() == pytest.approx(tp / (tp + fn))
    # Sparse labels are read as one-hot rows.
    r2 = metrics.Recall(class_id=3)
    r2.update_state(y.argmax(1).astype(np.float32), s)
    assert r2.result() == r.result()
    assert r.get_config()["class_id"] == 3 and r.name == "recall"
    with pytest.raises(ValueError, match="class_id"):
        metrics.Recall(class_id=9).update_state(y, s)
    with pytest.raises(ValueError, match="Only one threshold"):
        metrics.Precision(thresholds=[0.3, 0.6])


def test_precision_recall_in_compile_and_pickle():
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    signcore.utils.set_random_seed(0)
    m = signcore.Sequential([layers.Dense(1, activation="sigmoid", input_shape=(3,))])
    m.compile(optimizer="adam", loss="binary_crossentropy", metrics=[metrics.Precision(), "recall"])
    res = m.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    pred = m.predict(x, verbose=0)[:, 0] > 0.5
    assert res["precision"] == pytest.approx(skm.precision_score(y, pred, zero_division=0))
    assert res["recall"] == pytest.approx(skm.recall_score(y, pred, zero_division=0))
    p = metrics.Precision(thresholds=0.3, name="p30")
    p.update_state(y[:, None], m.predict(x, verbose=0))
    q = pickle.loads(pickle.dumps(p))
    assert q.result() == p.result() and q.name == "p30" and q.thresholds == pytest.approx(0.3)


# ------------------------------------------------------------------------------------------------
# Top-k accuracy

def test_top_k_accuracy_against_numpy_and_ties():
    s = rng.random((30, 6)).astype(np.float32)
    t = rng.integers(0, 6, size=30)
    for k in (1, 2, 5):
        rank = (s > s[np.arange(30), t][:, None]).sum(1)
        expected = np.mean(rank < k)
        m = metrics.SparseTopKCategoricalAccuracy(k=k)
        m.update_state(t.astype(np.float32)[:15], s[:15])
        m.update_state(t.astype(np.float32)[15:], s[15:])
        assert m.result() == pytest.approx(expected)
        c = metrics.TopKCategoricalAccuracy(k=k)
        c.update_state(np.eye(6, dtype=np.float32)[t], s)
        assert c.result() == pytest.approx(expected)
        assert metrics.top_k_accuracy(t, s, k=k) == pytest.approx(expected)
    assert metrics.top_k_accuracy(t, s, k=1) == pytest.approx(np.mean(s.argmax(1) == t))
    # Ties with the k-th score count as in (Keras's in_top_k); NaN never does.
    tie = np.array([[0.5, 0.5, 0.5, 0.1]], dtype=np.float32)
    m = metrics.SparseTopKCategoricalAccuracy(k=1)
    m.update_state(np.array([2.0], np.float32), tie)
    assert m.result() == 1.0
    m = metrics.SparseTopKCategoricalAccuracy(k=3)
    m.update_state(np.array([0.0], np.float32), np.array([[np.nan, 0.1, 0.2, 0.3]], np.float32))
    assert m.result() == 0.0
    assert metrics.SparseTopKCategoricalAccuracy().k == 5
    with pytest.raises(ValueError, match="k must be"):
        metrics.TopKCategoricalAccuracy(k=0)
    with pytest.raises(ValueError, match="class indices"):
        metrics.SparseTopKCategoricalAccuracy(k=1).update_state(np.array([7.0], np.float32), tie)


# ------------------------------------------------------------------------------------------------
# Confusion-matrix metric

def test_confusion_matrix_metric_streams_like_sklearn():
    t = rng.integers(0, 4, size=90)
    s = rng.random((90, 4)).astype(np.float32)
    cm = metrics.ConfusionMatrix(4)
    for a in range(0, 90, 32):
        cm.update_state(t[a:a + 32].astype(np.float32), s[a:a + 32])
    np.testing.assert_array_equal(cm.result(), skm.confusion_matrix(t, s.argmax(1), labels=range(4)))
    assert cm.result().dtype == np.int64 and not cm.scalar and metrics.Precision().scalar
    assert cm.accuracy() == pytest.approx(np.mean(t == s.argmax(1)))
    norm = metrics.ConfusionMatrix(4, normalize="true")
    norm.update_state(np.eye(4, dtype=np.float32)[t], s)  # one-hot labels too
    np.testing.assert_allclose(norm.result(), skm.confusion_matrix(t, s.argmax(1), normalize="true"))
    copy = pickle.loads(pickle.dumps(cm))
    np.testing.assert_array_equal(copy.result(), cm.result())
    cm.reset_state()
    assert cm.result().sum() == 0
    # Binary: one probability column, thresholded at 0.5.
    b = metrics.ConfusionMatrix(2)
    b.update_state(np.array([0, 1, 1, 0], np.float32), np.array([[0.2], [0.9], [0.4], [0.7]], np.float32))
    np.testing.assert_array_equal(b.result(), [[1, 1], [1, 1]])
    with pytest.raises(ValueError, match="num_classes"):
        metrics.ConfusionMatrix(3).update_state(t.astype(np.float32), s)


def test_confusion_matrix_metric_in_evaluate():
    x = rng.normal(size=(60, 4)).astype(np.float32)
    y = np.argmax(x @ rng.normal(size=(4, 3)), axis=1)
    signcore.utils.set_random_seed(1)
    m = signcore.Sequential([layers.Dense(3, activation="softmax", input_shape=(4,))])
    cm = metrics.ConfusionMatrix(3)
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy", cm])
    m.fit(x, y, epochs=2, batch_size=16, verbose=0)
    expected = skm.confusion_matrix(y, m.predict(x, verbose=0).argmax(1), labels=range(3))
    m.evaluate(x, y, batch_size=16, verbose=0)
    np.testing.assert_array_equal(cm.result(), expected)  # the state of the last evaluate
    # By name, sized from the model's output.
    r = metrics.resolve("confusion_matrix", (8,), (8, 3))
    assert r.class_name == "ConfusionMatrix" and r.num_classes == 3


def test_evaluate_returns_the_confusion_matrix():
    x = rng.normal(size=(60, 4)).astype(np.float32)
    y = np.argmax(x @ rng.normal(size=(4, 3)), axis=1)
    signcore.utils.set_random_seed(1)
    m = signcore.Sequential([layers.Dense(3, activation="softmax", input_shape=(4,))])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy", "confusion_matrix"])
    expected = skm.confusion_matrix(y, m.predict(x, verbose=0).argmax(1), labels=range(3))
    res = m.evaluate(x, y, verbose=0, return_dict=True)
    np.testing.assert_array_equal(res["confusion_matrix"], expected)
    loss, acc, cm = m.evaluate(x, y, verbose=0)
    np.testing.assert_array_equal(cm, expected)
    assert acc == pytest.approx(np.trace(expected) / 60)
    # Not a number: it stays out of History and the progress bar.
    assert "confusion_matrix" not in m.fit(x, y, epochs=1, verbose=0).history
