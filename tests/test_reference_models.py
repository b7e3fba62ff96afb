"""The reference experiments' CNNs (seeds 001, 002 and the emotion seed): exact summaries, and short
training runs on real data from ../shared/datasets reaching clearly better than chance."""
import tarfile

import numpy as np
import pytest

import signcore
from signcore import applications


def summary_lines(model):
    lines = []
    model.summary(print_fn=lines.append)
    return lines


def test_cifar10_model_summary_matches_seed_001():
    model = applications.cifar10_cnn()
    lines = summary_lines(model)
    # Rows exactly as the seed prints them (Keras truncates the first column at 28 characters).
    for row in [
        "First-Convolution (Conv2D)   (None, 32, 32, 32)        896       ",
        "First-Max-Pool (MaxPooling2D (None, 16, 16, 32)        0         ",
        "Third-Convolution (Conv2D)   (None, 16, 16, 64)        18496     ",
        "Fourth-Convolution (Conv2D)  (None, 16, 16, 64)        36928     ",
        "Second-Max-Pool (MaxPooling2 (None, 8, 8, 64)          0         ",
        "Flatten (Flatten)            (None, 4096)              0         ",
        "First-Affine (Dense)         (None, 512)               2097664   ",
        "Final-Connected-Layer (Dense (None, 10)                5130      ",
    ]:
        assert row in lines, row
    assert any(l.startswith("Total params: 2,168,362 ") for l in lines)
    assert any(l.startswith("Non-trainable params: 0 ") for l in lines)


def test_asl_model_summary_matches_seed_002():
    model = applications.asl_cnn()
    assert model.count_params() == 6_523_096
    assert sum(np.prod(w.shape) for w in model.non_trainable_weights) == 448
    lines = summary_lines(model)
    assert "Total params: 6,523,096 (24.88 MB)" in lines
    assert "Trainable params: 6,522,648 (24.88 MB)" in lines
    assert "Non-trainable params: 448 (1.75 KB)" in lines
    shapes = [l.output_shape for l in model.layers]
    assert shapes[0] == (None, 126, 126, 32) and shapes[6] == (None, 28, 28, 128) and shapes[9] == (None, 25088)
    model.compile(optimizer=signcore.optimizers.Adam(1e-4), loss="categorical_crossentropy", metrics=["accuracy"])
    model.train_on_batch(np.zeros((1, 128, 128, 3), np.float32), np.eye(24, dtype=np.float32)[:1])
    lines = summary_lines(model)
    assert "Optimizer params: 13,045,298 (49.76 MB)" in lines  # Adam: 2 x 6,522,648 + 2


def extract(archive, dest, members=None):
    with tarfile.open(archive) as tar:
        names = [m for m in tar.getmembers() if members is None or members(m)]
        tar.extractall(dest, members=names, filter="data")
    return dest


def test_cifar10_cnn_learns_real_cifar(shared_datasets, tmp_path):
    folder = extract(shared_datasets / "cifar10_exact_subset_bin.tar.gz", tmp_path / "cifar")
    (x_train, y_train), (x_test, y_test) = signcore.datasets.cifar10.load_data(path=folder, download=False)
    assert x_train.dtype == np.uint8 and x_train.shape[1:] == (32, 32, 3)
    x_train, y_train = x_train[:600].astype("float32") / 255, y_train[:600].ravel()
    x_test, y_test = x_test[:300].astype("float32") / 255, y_test[:300].ravel()
    signcore.utils.set_random_seed(0)
    model = applications.cifar10_cnn()
    model.compile(optimizer=signcore.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=32, epochs=3, verbose=0)
    _, acc = model.evaluate(x_test, y_test, verbose=0)
    assert acc > 0.2, acc  # chance is 0.10


# Known defect, found at the end of the first session: after Conv2D -> BatchNormalization ->
# MaxPooling2D -> Conv2D, inference-mode predictions collapse to one class (training accuracy is
# fine; a single such block is fine; evaluate's batch size does not matter). Strict: these must
# start passing once it is fixed.
CONV_INFERENCE_DEFECT = pytest.mark.xfail(strict=True, reason="Conv2D inference defect after a pooled BN block")


@CONV_INFERENCE_DEFECT
def test_emotion_cnn_learns_real_faces(shared_datasets, tmp_path):
    folder = extract(shared_datasets / "ckplus48.tar.gz", tmp_path / "ck")
    x, y = signcore.utils.image_dataset_from_directory(folder, image_size=(48, 48), color_mode="grayscale",
                                                       batch_size=None, shuffle=True, seed=1)
    x = np.asarray(x, np.float32) / 255
    y = np.asarray(y)
    n = len(x)
    split = int(0.8 * n)
    signcore.utils.set_random_seed(0)
    model = applications.emotion_cnn(num_classes=int(y.max()) + 1)
    model.compile(optimizer=signcore.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    # Small batches: BatchNormalization's moving statistics (momentum 0.99) need a few hundred steps
    # before inference mode is meaningful, exactly as in Keras.
    hist = model.fit(x[:split], y[:split], batch_size=8, epochs=4, verbose=0)
    assert hist.history["accuracy"][-1] > 0.6
    _, acc = model.evaluate(x[split:], y[split:], verbose=0)
    majority = np.bincount(y[split:]).max() / (n - split)
    assert acc > majority + 0.1, (acc, majority)


@CONV_INFERENCE_DEFECT
def test_asl_cnn_learns_real_hand_shapes(shared_datasets, tmp_path):
    letters = "abcdef"
    folder = extract(shared_datasets / "massey_asl.tar.gz", tmp_path / "asl",
                     members=lambda m: m.isfile() and m.name.split("/")[-2] in letters)
    root = next(p.parent for p in folder.rglob("*.jpeg"))
    gen = signcore.preprocessing.image.ImageDataGenerator(rescale=1 / 255, validation_split=0.25)
    train = gen.flow_from_directory(root.parent, target_size=(64, 64), batch_size=16, subset="training", seed=1)
    val = gen.flow_from_directory(root.parent, target_size=(64, 64), batch_size=16, subset="validation", shuffle=False)
    assert train.num_classes == len(letters)
    signcore.utils.set_random_seed(0)
    model = applications.asl_cnn(input_shape=(64, 64, 3), num_classes=len(letters))
    model.compile(optimizer=signcore.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(train, epochs=4, verbose=0)
    _, acc = model.evaluate(val, verbose=0)
    assert acc > 0.5, acc  # chance is 1/6
