"""Train a small MLP on scikit-learn's bundled handwritten digits: `python -m signcore.demo`.

Everything needed ships with the packages (no download, no dataset folder): 1797 grey 8x8 images of
the digits 0-9, split 80/20 into a fixed, stratified training and test set. The demo prints the
build configuration, the model summary, trains with Keras's progress bar, then prints the test
accuracy and the confusion matrix, and saves the training curves to results/ when matplotlib is
installed.

Usage:

    python -m signcore.demo [--epochs 20] [--batch-size 32] [--seed 0] [--threads N]
"""
import argparse
import collections
import os
import sys
import time

import numpy as np

Digits = collections.namedtuple("Digits", ["x_train", "y_train", "x_test", "y_test", "class_names"])


def load_digits_data(test_size=0.2, seed=0):
    """Loads scikit-learn's handwritten digits, scaled to [0, 1] and split deterministically.

    Args:
        test_size: Fraction of the 1797 samples kept for the test set.
        seed: Seed of the (stratified) split; the same seed always gives the same split.

    Returns:
        A `Digits` namedtuple: `x_train`, `x_test` float32 of shape (N, 64) (8x8 pixels flattened,
        divided by 16), `y_train`, `y_test` int64 class ids in 0..9, and `class_names` ("0".."9").
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)  # x: (1797, 64), pixel values 0..16 -> [0, 1]
    y = bunch.target.astype(np.int64)  # y: (1797,)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y)
    class_names = [str(c) for c in bunch.target_names]
    return Digits(np.ascontiguousarray(x_train), y_train, np.ascontiguousarray(x_test), y_test,
                  class_names)


def build_model(num_features, num_classes, name="digits_mlp"):
    """The demo's MLP: Input -> Dense(128, relu) -> Dense(64, relu) -> Dense(classes, softmax)."""
    import signcore
    from signcore import layers

    return signcore.Sequential(
        [
            signcore.Input(shape=(num_features,)),
            layers.Dense(128, activation="relu", name="hidden_1"),
            layers.Dense(64, activation="relu", name="hidden_2"),
            layers.Dense(num_classes, activation="softmax", name="probabilities"),
        ],
        name=name,
    )


def format_confusion_matrix(cm, class_names):
    """Renders a confusion matrix as a text table: rows are true classes, columns predictions."""
    cm = np.asarray(cm)
    names = [str(n) for n in class_names]
    width = max(max(len(n) for n in names), len(str(int(cm.max()))) if cm.size else 1, 3)
    head = "true \\ pred"
    lines = [f"{head:>{len(head)}} " + " ".join(f"{n:>{width}}" for n in names)]
    for name, row in zip(names, cm):
        lines.append(f"{name:>{len(head)}} " + " ".join(f"{int(v):>{width}}" for v in row))
    return "\n".join(lines)


def save_history_plot(history, path):
    """Plots loss and accuracy per epoch (training and validation) into a PNG; returns the path."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    h = history.history
    epochs = np.arange(1, len(h["loss"]) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("loss", "accuracy")):
        if key in h:
            ax.plot(epochs, h[key], marker="o", label=f"training {key}")
        if f"val_{key}" in h:
            ax.plot(epochs, h[f"val_{key}"], marker="o", label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("signcore demo: MLP on the digits data")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m signcore.demo",
        description="Train a small MLP on scikit-learn's bundled handwritten digits with signcore.")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (default: 20)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size (default: 32)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the initial weights and the shuffling (default: 0); the "
                             "train/test split is always the same")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for OpenBLAS and signcore (default: all cores)")
    parser.add_argument("--results-dir", default="results",
                        help="where the history plot goes (default: ./results)")
    parser.add_argument("--no-plot", action="store_true", help="do not save the history plot")
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)

    import signcore
    from signcore import metrics, utils

    if args.threads is not None:
        signcore.set_num_threads(args.threads)
    utils.set_random_seed(args.seed)

    print("== signcore configuration")
    signcore.show_config()

    data = load_digits_data()
    num_classes = len(data.class_names)
    print(f"\n== data: scikit-learn digits, {data.x_train.shape[0]} training and "
          f"{data.x_test.shape[0]} test images of 8x8 pixels, {num_classes} classes\n")

    model = build_model(data.x_train.shape[1], num_classes)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.summary()

    print(f"\n== training: {args.epochs} epochs, batch size {args.batch_size}, "
          f"{signcore.get_num_threads()} thread(s), 10% of the training data for validation")
    start = time.perf_counter()
    history = model.fit(data.x_train, data.y_train, batch_size=args.batch_size, epochs=args.epochs,
                        validation_split=0.1, verbose=1)
    seconds = time.perf_counter() - start
    seen = args.epochs * int(data.x_train.shape[0] * (1 - 0.1))  # Keras keeps the first 90%
    print(f"trained in {seconds:.2f} s ({seen / seconds:,.0f} samples/s including validation)")

    print("\n== test set")
    test_loss, test_accuracy = model.evaluate(data.x_test, data.y_test, batch_size=256, verbose=0)
    probabilities = model.predict(data.x_test, batch_size=256, verbose=0)
    y_pred = np.argmax(probabilities, axis=-1)
    print(f"test loss {test_loss:.4f}, test accuracy {test_accuracy:.4f} "
          f"({int(np.sum(y_pred == data.y_test))}/{len(data.y_test)} correct)")
    cm = metrics.confusion_matrix(data.y_test, y_pred, num_classes=num_classes)
    print("\nconfusion matrix (rows: true digit, columns: predicted digit)")
    print(format_confusion_matrix(cm, data.class_names))

    if not args.no_plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("\n(matplotlib is not installed: no history plot)")
        else:
            path = save_history_plot(history, os.path.join(args.results_dir, "demo_history.png"))
            print(f"\nhistory plot saved to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
