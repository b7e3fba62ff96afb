"""Metrics: Keras's resolution of "accuracy", values against NumPy, streaming over batches, and the
confusion matrix against scikit-learn."""
import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from signcore import _core, losses, metrics

rng = np.random.default_rng(42)


# --- resolution of "accuracy" (keras/src/trainers/compile_utils.py) ------------------------------

@pytest.mark.parametrize("y_true_shape,y_pred_shape,loss,expected", [
    ((32,), (32, 10), "sparse_categorical_crossentropy", "SparseCategoricalAccuracy"),  # lower rank
    ((32, 1), (32, 10), "sparse_categorical_crossentropy", "SparseCategoricalAccuracy"),  # last dim 1
    ((32, 10), (32, 10), "categorical_crossentropy", "CategoricalAccuracy"),
    ((32, 1), (32, 1), "binary_crossentropy", "BinaryAccuracy"),
    ((32,), (32, 1), "mse", "BinaryAccuracy"),  # one output column
    ((32, 3), (32, 3), "binary_crossentropy", "BinaryAccuracy"),  # multi-label: binary loss wins
    ((32, 3), (32, 3), None, "CategoricalAccuracy"),
    ((4, 5), (4, 5, 7), None, "SparseCategoricalAccuracy"),  # per-time-step labels
])
@pytest.mark.parametrize("name", ["accuracy", "acc"])
def test_accuracy_resolves_like_keras(y_true_shape, y_pred_shape, loss, expected, name):
    m = metrics.resolve(name, y_true_shape, y_pred_shape, loss)
    assert m.class_name == expected
    assert m.name == name  # the log key is the name given
    assert isinstance(m, getattr(metrics, expected))


@pytest.mark.parametrize("name,cls,key", [
    ("sparse_categorical_accuracy", "SparseCategoricalAccuracy", "sparse_categorical_accuracy"),
    ("categorical_accuracy", "CategoricalAccuracy", "categorical_accuracy"),
    ("binary_accuracy", "BinaryAccuracy", "binary_accuracy"),
    ("SparseCategoricalAccuracy", "SparseCategoricalAccuracy", "sparse_categorical_accuracy"),
    ("mse", "MeanSquaredError", "mse"),
    ("mean_absolute_error", "MeanAbsoluteError", "mean_absolute_error"),
])
def test_explicit_names(name, cls, key):
    m = metrics.resolve(name, (8, 1), (8, 3))
    assert m.class_name == cls and m.name == key
    assert metrics.get(name).class_name == cls


def test_unknown_metric_names_it():
    with pytest.raises(ValueError, match="'f1_scorez'"):
        metrics.resolve("f1_scorez", (8,), (8, 3))
    with pytest.raises(ValueError, match="'precision'"):
        metrics.get("precisionn")
    with pytest.raises(ValueError, match="resolved from the shapes"):
        metrics.get("accuracy")


def test_metric_name_for_compile():
    assert metrics.metric_name("accuracy") == "accuracy"
    assert metrics.metric_name(metrics.SparseCategoricalAccuracy()) == "sparse_categorical_accuracy"
    with pytest.raises(ValueError, match="threshold"):
        metrics.metric_name(metrics.BinaryAccuracy(threshold=0.7))
    with pytest.raises(TypeError):
        metrics.metric_name(3)


# --- values ------------------------------------------------------------------------------------------

def test_values_against_numpy():
    y_pred = rng.random((50, 6)).astype(np.float32)
    labels = rng.integers(0, 6, size=50)
    expected = np.mean(np.argmax(y_pred, 1) == labels)

    m = metrics.SparseCategoricalAccuracy()
    m.update_state(labels.astype(np.float32), y_pred)
    assert m.result() == pytest.approx(expected)
    m2 = metrics.SparseCategoricalAccuracy()
    m2.update_state(labels.reshape(-1, 1), y_pred)
    assert m2.result() == pytest.approx(expected)

    c = metrics.CategoricalAccuracy()
    c.update_state(np.eye(6, dtype=np.float32)[labels], y_pred)
    assert c.result() == pytest.approx(expected)

    p = rng.random((40, 3)).astype(np.float32)
    t = rng.integers(0, 2, size=(40, 3)).astype(np.float32)
    b = metrics.BinaryAccuracy()
    b.update_state(t, p)
    assert b.result() == pytest.approx(np.mean((p > 0.5) == t))
    b7 = metrics.BinaryAccuracy(threshold=0.7)
    b7.update_state(t, p)
    assert b7.result() == pytest.approx(np.mean((p > 0.7) == t))
    assert b7.get_config()["threshold"] == 0.7

    mse = metrics.MeanSquaredError()
    mse.update_state(t, p)
    assert mse.result() == pytest.approx(np.mean((p.astype(np.float64) - t) ** 2))


def test_hand_computed_accuracy_and_ties():
    y_pred = np.array([[0.1, 0.8, 0.1], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.9, 0.05, 0.05]], np.float32)
    m = metrics.SparseCategoricalAccuracy()
    # argmax (first on ties): 1, 0, 2, 0 -> labels 1, 1, 2, 2: two hits of four.
    m.update_state(np.array([1, 1, 2, 2]), y_pred)
    assert m.result() == 0.5
    b = metrics.BinaryAccuracy()
    b.update_state(np.array([[1.0], [0.0], [1.0]]), np.array([[0.5], [0.2], [0.51]]))
    assert b.result() == pytest.approx(2 / 3)  # 0.5 is not above the threshold


def test_streaming_over_batches_equals_the_whole():
    y_pred = rng.random((103, 4)).astype(np.float32)
    labels = rng.integers(0, 4, size=103).astype(np.float32)
    whole = metrics.SparseCategoricalAccuracy()
    whole.update_state(labels, y_pred)
    streamed = metrics.SparseCategoricalAccuracy()
    for start in range(0, 103, 32):  # uneven last batch
        streamed.update_state(labels[start:start + 32], y_pred[start:start + 32])
    assert streamed.result() == pytest.approx(whole.result(), rel=1e-12)
    assert whole.result() == pytest.approx(np.mean(np.argmax(y_pred, 1) == labels))

    t = rng.integers(0, 2, size=(103, 2)).astype(np.float32)
    whole_b, streamed_b = metrics.BinaryAccuracy(), metrics.BinaryAccuracy()
    whole_b.update_state(t, y_pred[:, :2])
    for start in range(0, 103, 10):
        streamed_b.update_state(t[start:start + 10], y_pred[start:start + 10, :2])
    assert streamed_b.result() == pytest.approx(whole_b.result(), rel=1e-12)

    streamed.reset_state()
    assert streamed.result() == 0.0
    streamed.update_state(labels[:5], y_pred[:5])
    assert streamed.result() == pytest.approx(np.mean(np.argmax(y_pred[:5], 1) == labels[:5]))


def test_mean_metric():
    m = metrics.Mean(name="loss")
    m.update_state(np.array([1.0, 2.0, 3.0]))
    m.update_state(np.array([10.0]))
    assert m.result() == pytest.approx(4.0) and m.count == 4 and m.name == "loss"


def test_metric_shape_errors():
    with pytest.raises(ValueError, match=r"y_true.shape=\(3, 2\), y_pred.shape=\(3, 4\)"):
        metrics.CategoricalAccuracy().update_state(np.zeros((3, 2)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"y_true.shape=\(5,\), y_pred.shape=\(3, 4\)"):
        metrics.SparseCategoricalAccuracy().update_state(np.zeros(5), np.zeros((3, 4)))


# --- confusion matrix ----------------------------------------------------------------------------

@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"])
def test_confusion_matrix_matches_sklearn(normalize):
    y_true = rng.integers(0, 5, size=200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 5, size=200))
    y_pred[y_pred == 3] = 4  # class 3 never predicted: an empty column
    y_true[y_true == 1] = 2  # class 1 never true: an empty row
    want = sk_confusion_matrix(y_true, y_pred, labels=range(5), normalize=normalize)
    got = metrics.confusion_matrix(y_true, y_pred, num_classes=5, normalize=normalize)
    assert got.shape == (5, 5)
    if normalize is None:
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want)
    else:
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    # Float labels and 2-D predictions (probabilities: argmax) give the same matrix.
    scores = np.eye(5, dtype=np.float32)[y_pred] * 0.7 + 0.05
    got2 = metrics.confusion_matrix(y_true.astype(np.float32), scores, normalize=normalize)
    np.testing.assert_allclose(got2, want, rtol=1e-12)


def test_confusion_matrix_by_hand_and_inference():
    cm = metrics.confusion_matrix([0, 1, 2, 2, 2], [0, 2, 2, 2, 1])
    np.testing.assert_array_equal(cm, [[1, 0, 0], [0, 0, 1], [0, 1, 2]])
    # num_classes inferred as max + 1 over both arrays.
    assert metrics.confusion_matrix([0, 1], [3, 1]).shape == (4, 4)
    assert metrics.confusion_matrix([0, 1], [0, 1], num_classes=6).shape == (6, 6)
    np.testing.assert_array_equal(_core.confusion_matrix([1, 1], [0, 1], 2), [[0, 0], [1, 1]])


def test_confusion_matrix_errors():
    with pytest.raises(ValueError, match=r"y_true\[1\]=1.5"):
        metrics.confusion_matrix(np.array([0.0, 1.5]), [0, 1])
    with pytest.raises(ValueError, match="label=-1"):
        metrics.confusion_matrix([0, -1], [0, 1], num_classes=3)
    with pytest.raises(ValueError, match="label=3"):
        metrics.confusion_matrix([0, 3], [0, 1], num_classes=3)
    with pytest.raises(ValueError, match=r"len\(labels\)=3, len\(predictions\)=2"):
        metrics.confusion_matrix([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="normalize='rows'"):
        metrics.confusion_matrix([0, 1], [0, 1], normalize="rows")


def test_losses_module_binary_flag_drives_accuracy():
    # The loss object (not only its name) is accepted by resolve, as compile passes it.
    m = metrics.resolve("accuracy", (16, 4), (16, 4), losses.BinaryCrossentropy())
    assert m.class_name == "BinaryAccuracy"


def test_pickle_keeps_running_totals():
    import pickle

    m = metrics.BinaryAccuracy(name="bin", threshold=0.3)
    m.update_state(np.array([[1.0], [0.0]]), np.array([[0.4], [0.2]]))
    again = pickle.loads(pickle.dumps(m))
    assert type(again) is metrics.BinaryAccuracy
    assert (again.name, again.threshold, again.result()) == ("bin", 0.3, 1.0)
    again.update_state(np.array([[1.0]]), np.array([[0.1]]))
    assert again.result() == pytest.approx(2 / 3)
    s = pickle.loads(pickle.dumps(metrics.SparseCategoricalAccuracy(name="acc")))
    assert s.name == "acc" and s.result() == 0.0
