"""signcore.plot renders every figure to a file without a display (Agg), and draws what it is given:
the history's values, the matrix's cells (absolute and normalised), the chosen samples and the
misclassified ones with their labels. lr_find runs an LR range test on a copy of the model and
leaves the model, its optimizer and the random state exactly as they were."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import signcore  # noqa: E402
from signcore import layers, lr_finder, plot  # noqa: E402

rng = np.random.default_rng(3)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def saved(fig, tmp_path, name):
    path = tmp_path / f"{name}.png"
    fig.savefig(path)
    assert path.stat().st_size > 2000
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    return path


HISTORY = {"loss": [1.2, 0.9, 0.7], "accuracy": [0.4, 0.6, 0.75], "val_loss": [1.1, 0.95, 0.8],
           "val_accuracy": [0.45, 0.55, 0.7], "learning_rate": [1e-3, 1e-3, 5e-4]}


def test_plot_history_draws_train_validation_and_learning_rate(tmp_path):
    fig = plot.plot_history(HISTORY)
    saved(fig, tmp_path, "history")
    loss_ax, acc_ax, lr_ax = fig.axes
    (train, val) = loss_ax.get_lines()
    assert list(train.get_ydata()) == HISTORY["loss"] and list(val.get_ydata()) == HISTORY["val_loss"]
    assert list(train.get_xdata()) == [1, 2, 3]
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["train", "validation"]
    assert list(acc_ax.get_lines()[1].get_ydata()) == HISTORY["val_accuracy"]
    assert lr_ax.get_yscale() == "log" and list(lr_ax.get_lines()[0].get_ydata()) == HISTORY["learning_rate"]
    # A real History object, and a chosen subset.
    x = rng.normal(size=(32, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=32)
    signcore.utils.set_random_seed(0)
    m = signcore.Sequential([layers.Dense(3, activation="softmax", input_shape=(4,))])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = m.fit(x, y, epochs=2, verbose=0)
    fig = plot.plot_history(hist, metrics=["accuracy"])
    assert len(fig.axes) == 1 and list(fig.axes[0].get_lines()[0].get_ydata()) == hist.history["accuracy"]
    with pytest.raises(ValueError, match="not in the history"):
        plot.plot_history(hist, metrics=["auc"])


def cell_texts(ax):
    return [t.get_text() for t in ax.texts]


def test_confusion_matrix_heatmap_absolute_and_normalised(tmp_path):
    cm = np.array([[5, 1, 0], [2, 6, 2], [0, 0, 4]])
    names = ["hello", "thanks", "yes"]
    ax = plot.plot_confusion_matrix(cm, class_names=names)
    saved(ax.figure, tmp_path, "cm")
    assert cell_texts(ax) == [str(v) for v in cm.ravel()]
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert ax.get_ylabel() == "True label" and ax.get_xlabel() == "Predicted label"
    np.testing.assert_array_equal(ax.images[0].get_array(), cm)
    # White text on dark cells (above half the maximum), black elsewhere.
    colors = [matplotlib.colors.to_hex(t.get_color()) for t in ax.texts]
    assert colors[4] == "#ffffff" and colors[1] == "#000000"
    ax = plot.plot_confusion_matrix(cm, class_names=names, normalize=True)
    saved(ax.figure, tmp_path, "cm_norm")
    rows = cm / cm.sum(axis=1, keepdims=True)
    assert cell_texts(ax) == [f"{v:.2f}" for v in rows.ravel()]
    np.testing.assert_allclose(ax.images[0].get_array(), rows)
    cols = plot.plot_confusion_matrix(cm, normalize="pred").images[0].get_array()
    np.testing.assert_allclose(cols, cm / cm.sum(axis=0, keepdims=True))
    with pytest.raises(ValueError, match="square"):
        plot.plot_confusion_matrix(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="class_names"):
        plot.plot_confusion_matrix(cm, class_names=["a"])


def images(n=60, classes=4):
    y = np.arange(n) % classes
    x = rng.random((n, 8, 8, 3)).astype(np.float32)
    return x, y


def test_plot_samples_grid(tmp_path):
    x, y = images()
    fig = plot.plot_samples(x, y, class_names={0: "a", 1: "b", 2: "c", 3: "d"}, per_class=3, seed=0)
    saved(fig, tmp_path, "samples")
    assert len(fig.axes) == 12
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["a", "b", "c", "d"]
    # Each column shows images of its class only.
    for k, ax in enumerate(fig.axes):
        cls = k % 4
        shown = ax.images[0].get_array()
        assert any(np.allclose(shown, x[i]) for i in np.flatnonzero(y == cls))
    gray = plot.plot_samples(rng.random((20, 64)), np.arange(20) % 2, per_class=2)  # flat 8x8 images
    assert gray.axes[0].images[0].get_array().shape == (8, 8)


def test_plot_misclassified_gallery(tmp_path):
    x, y = images(n=20)
    pred = y.copy()
    wrong = [1, 6, 13]
    pred[wrong] = (pred[wrong] + 1) % 4
    names = ["w", "x", "y", "z"]
    fig = plot.plot_misclassified(x, y, np.eye(4)[pred], class_names=names)
    saved(fig, tmp_path, "misclassified")
    used = [ax for ax in fig.axes if ax.images]
    assert len(used) == 3
    for ax, i in zip(used, wrong):
        assert ax.get_title() == f"pred: {names[pred[i]]}" and ax.get_xlabel() == f"true: {names[y[i]]}"
        np.testing.assert_allclose(ax.images[0].get_array(), x[i])
    assert plot.plot_misclassified(x, y, y) is None
    fig = plot.plot_misclassified(x, y, (y + 1) % 4, n=5, seed=1)
    assert len([ax for ax in fig.axes if ax.images]) == 5


def test_dashboard_of_seed_001(tmp_path):
    x, y = images(n=40, classes=3)
    pred = np.where(rng.random(40) < 0.7, y, (y + 1) % 3)
    cm = signcore.metrics.confusion_matrix(y, pred)
    hist = {"loss": [1.0, 0.8], "val_loss": [1.1, 0.9], "categorical_accuracy": [0.5, 0.6],
            "val_categorical_accuracy": [0.4, 0.55]}
    fig = plot.dashboard(hist, cm, labels=["plane", "car", "bird"], y_pred=pred, test_data=(x, y), seed=0)
    saved(fig, tmp_path, "dashboard")
    loss_ax, acc_ax, cm_ax = fig.axes[:3]
    assert loss_ax.get_title() == "Loss over Training Epochs" and len(loss_ax.get_lines()) == 2
    assert list(acc_ax.get_lines()[1].get_ydata()) == hist["val_categorical_accuracy"]
    np.testing.assert_allclose(cm_ax.images[0].get_array(), cm / cm.sum(axis=1, keepdims=True))
    samples = [ax for ax in fig.axes[3:] if ax.images]
    assert len(samples) == min(6, int((pred != y).sum()))
    for ax in samples:
        i = next(i for i in range(40) if np.allclose(ax.images[0].get_array(), x[i]))
        assert pred[i] != y[i]
    fig = plot.dashboard(hist, cm, labels=["plane", "car", "bird"])  # without samples
    assert len(fig.axes) == 3


def test_lr_find_leaves_the_model_untouched(tmp_path):
    x = rng.normal(size=(256, 6)).astype(np.float32)
    y = np.argmax(x @ rng.normal(size=(6, 3)), axis=1)
    signcore.utils.set_random_seed(0)
    m = signcore.Sequential([layers.Dense(16, activation="relu", input_shape=(6,)), layers.Dropout(0.2),
                             layers.Dense(3, activation="softmax")])
    m.compile(optimizer=signcore.optimizers.SGD(learning_rate=0.01, momentum=0.9),
              loss="sparse_categorical_crossentropy")
    m.fit(x, y, epochs=1, verbose=0)
    before = m.get_weights()
    iterations, lr = m.optimizer.iterations, m.optimizer.learning_rate
    state = signcore._core.get_rng_state()
    result = lr_finder.lr_find(m, x, y, batch_size=32, start_lr=1e-4, end_lr=10.0, num_steps=60, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, m.get_weights()))
    assert m.optimizer.iterations == iterations and m.optimizer.learning_rate == lr
    assert signcore._core.get_rng_state() == state
    # The rates grow geometrically from start_lr; the loss first falls then blows up.
    n = len(result.lrs)
    assert 10 < n <= 60 and result.lrs[0] == pytest.approx(1e-4)
    np.testing.assert_allclose(result.lrs, 1e-4 * (1e5) ** (np.arange(n) / 59))
    assert result.diverged or n == 60
    assert 1e-4 <= result.suggestion <= 10 and result.losses.min() < result.losses[0]
    # The smoothing is the bias-corrected moving average of the raw losses.
    avg, smooth = 0.0, []
    for i, v in enumerate(result.raw_losses):
        avg = 0.98 * avg + 0.02 * v
        smooth.append(avg / (1 - 0.98 ** (i + 1)))
    np.testing.assert_allclose(result.losses, smooth, rtol=1e-12)
    ax = result.plot()
    saved(ax.figure, tmp_path, "lr_find")
    assert ax.get_xscale() == "log"
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), result.lrs)
    with pytest.raises(ValueError, match="start_lr < end_lr"):
        lr_finder.lr_find(m, x, y, start_lr=1.0, end_lr=0.1)
