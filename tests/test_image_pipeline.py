"""Image folders: flow_from_directory and image_dataset_from_directory against Keras's rules
(listing, class indices, splits, seeds) and Pillow's pixels (load_img), on generated folders and on
a slice of the real Massey ASL data; errors for unreadable files; training from the iterators."""
import os
import tarfile

import numpy as np
import pytest
from PIL import Image

import signcore
from signcore.preprocessing.image import ImageDataGenerator, img_to_array, load_img
from signcore.utils import image_dataset_from_directory

PIL_FILTERS = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC,
               "lanczos": Image.LANCZOS, "box": Image.BOX, "hamming": Image.HAMMING}


def pil_load(path, color_mode="rgb", target_size=None, interpolation="nearest", box=None):
    """Keras's load_img with Pillow, as a float32 (H, W, C) array."""
    img = Image.open(path)
    if color_mode == "grayscale":
        if img.mode not in ("L", "I;16", "I"):
            img = img.convert("L")
    elif img.mode != {"rgb": "RGB", "rgba": "RGBA"}[color_mode]:
        img = img.convert({"rgb": "RGB", "rgba": "RGBA"}[color_mode])
    if target_size is not None and img.size != (target_size[1], target_size[0]):
        img = img.resize((target_size[1], target_size[0]), PIL_FILTERS[interpolation], box=box)
    x = np.asarray(img, dtype=np.float32)
    return x[..., None] if x.ndim == 2 else x


def smooth_image(rng, h, w, c):
    yy, xx = np.mgrid[0:h, 0:w]
    base = (np.sin(xx / 3.0) + np.cos(yy / 4.0)) * 60 + 128
    return np.clip(np.stack([base + rng.normal(0, 25, (h, w)) for _ in range(c)], -1), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """root/a: 5 PNGs (one .PNG), root/b: 3 JPEGs + sub/b3.png + a text file, root/c: empty."""
    rng = np.random.default_rng(3)
    root = tmp_path_factory.mktemp("images")
    for d in ("a", "b/sub", "c"):
        (root / d).mkdir(parents=True)
    sizes = [(30, 40), (25, 25), (40, 30), (20, 20), (33, 27)]
    for i, (h, w) in enumerate(sizes):
        name = f"a{i}.PNG" if i == 3 else f"a{i}.png"
        Image.fromarray(smooth_image(rng, h, w, 3), "RGB").save(root / "a" / name)
    for i in range(3):
        Image.fromarray(smooth_image(rng, 36, 28, 3), "RGB").save(root / "b" / f"b{i}.jpg", quality=95)
    Image.fromarray(smooth_image(rng, 18, 22, 1)[..., 0], "L").save(root / "b" / "sub" / "b3.png")
    (root / "b" / "readme.txt").write_text("not an image")
    return root


EXPECTED_FILES = ["a/a0.png", "a/a1.png", "a/a2.png", "a/a3.PNG", "a/a4.png",
                  "b/b0.jpg", "b/b1.jpg", "b/b2.jpg", os.path.join("b", "sub", "b3.png")]


def test_listing_follows_keras(folder, capsys):
    with pytest.warns(UserWarning) as record:
        it = ImageDataGenerator().flow_from_directory(folder, target_size=(24, 32), batch_size=4)
    messages = " ".join(str(w.message) for w in record)
    assert "readme.txt" in messages  # skipped files are named
    assert "['c']" in messages  # and empty class folders
    assert "Found 9 images belonging to 3 classes." in capsys.readouterr().out
    assert it.class_indices == {"a": 0, "b": 1, "c": 2}
    assert it.filenames == EXPECTED_FILES
    assert it.filepaths == [os.path.join(folder, f) for f in EXPECTED_FILES]
    np.testing.assert_array_equal(it.classes, [0] * 5 + [1] * 4)
    assert it.classes.dtype == np.int32
    assert (it.samples, it.num_classes, len(it), it.image_shape) == (9, 3, 3, (24, 32, 3))


def test_given_classes_set_the_order(folder):
    it = ImageDataGenerator().flow_from_directory(folder, classes=["b", "a"], batch_size=4)
    assert it.class_indices == {"b": 0, "a": 1}
    assert it.filenames == EXPECTED_FILES[5:] + EXPECTED_FILES[:5]


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_unaugmented_batches_are_keras_pixels(folder, interpolation):
    gen = ImageDataGenerator(rescale=1 / 255)
    it = gen.flow_from_directory(folder, target_size=(24, 32), batch_size=9, shuffle=False,
                                 interpolation=interpolation)
    x, y = it[0]
    assert x.shape == (9, 24, 32, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(y, np.eye(3, dtype=np.float32)[it.classes])
    for i, f in enumerate(EXPECTED_FILES):
        ref = pil_load(folder / f, target_size=(24, 32), interpolation=interpolation) * np.float32(1 / 255)
        if f.endswith(".jpg"):  # OpenCV's and Pillow's JPEG decoders may round differently
            assert np.abs(x[i] - ref).mean() < 1.5 / 255 and np.abs(x[i] - ref).max() < 12 / 255
        else:
            np.testing.assert_array_equal(x[i], ref)


@pytest.mark.parametrize("interpolation", list(PIL_FILTERS))
@pytest.mark.parametrize("color_mode", ["rgb", "grayscale", "rgba"])
@pytest.mark.parametrize("target", [(24, 32), (9, 30), (60, 17)])
def test_load_img_equals_pillow(tmp_path, interpolation, color_mode, target):
    rng = np.random.default_rng(5)
    rgba = smooth_image(rng, 31, 37, 4)
    rgba[..., 3] = rng.integers(0, 256, (31, 37))  # semi-transparent: RGBA is premultiplied
    paths = [tmp_path / "rgb.png", tmp_path / "rgba.png", tmp_path / "grey.png"]
    Image.fromarray(smooth_image(rng, 29, 41, 3), "RGB").save(paths[0])
    Image.fromarray(rgba, "RGBA").save(paths[1])
    Image.fromarray(smooth_image(rng, 35, 26, 1)[..., 0], "L").save(paths[2])
    for p in paths:
        ours = img_to_array(load_img(p, color_mode=color_mode, target_size=target, interpolation=interpolation))
        np.testing.assert_array_equal(ours, pil_load(p, color_mode, target, interpolation), err_msg=str(p))


def test_load_img_keep_aspect_ratio_and_modes(tmp_path):
    rng = np.random.default_rng(6)
    p = tmp_path / "wide.png"
    Image.fromarray(smooth_image(rng, 30, 60, 3), "RGB").save(p)
    img = load_img(p, target_size=(20, 20), interpolation="bilinear", keep_aspect_ratio=True)
    np.testing.assert_array_equal(img_to_array(img), pil_load(p, "rgb", (20, 20), "bilinear", box=(15, 0, 45, 30)))
    assert load_img(p).size == (60, 30) and load_img(p, color_mode="grayscale").mode == "L"
    with pytest.raises(ValueError, match="interpolation"):
        load_img(p, target_size=(5, 5), interpolation="cubic")


def test_class_modes(folder):
    gen = ImageDataGenerator()
    kw = dict(target_size=(8, 8), batch_size=9, shuffle=False)
    _, y = gen.flow_from_directory(folder, class_mode="sparse", **kw)[0]
    np.testing.assert_array_equal(y, np.array([0] * 5 + [1] * 4, np.float32))
    _, y = gen.flow_from_directory(folder, class_mode="binary", **kw)[0]
    assert y.dtype == np.float32 and y.shape == (9,)
    x, y = gen.flow_from_directory(folder, class_mode="input", **kw)[0]
    np.testing.assert_array_equal(x, y)
    x = gen.flow_from_directory(folder, class_mode=None, **kw)[0]
    assert isinstance(x, np.ndarray) and x.shape == (9, 8, 8, 3)
    with pytest.raises(ValueError, match="class_mode"):
        gen.flow_from_directory(folder, class_mode="onehot")


def test_grayscale_and_rgba(folder):
    gen = ImageDataGenerator()
    x, _ = gen.flow_from_directory(folder, target_size=(10, 12), color_mode="grayscale", batch_size=9,
                                   shuffle=False)[0]
    assert x.shape == (9, 10, 12, 1)
    np.testing.assert_array_equal(x[0], pil_load(folder / EXPECTED_FILES[0], "grayscale", (10, 12)))
    x, _ = gen.flow_from_directory(folder, target_size=(10, 12), color_mode="rgba", batch_size=9, shuffle=False)[0]
    assert x.shape == (9, 10, 12, 4) and np.all(x[..., 3] == 255)


def test_validation_subset_is_the_first_fraction_of_each_class(folder):
    gen = ImageDataGenerator(validation_split=0.4)
    val = gen.flow_from_directory(folder, subset="validation", batch_size=4)
    train = gen.flow_from_directory(folder, subset="training", batch_size=4)
    assert val.filenames == ["a/a0.png", "a/a1.png", "b/b0.jpg"]  # int(0.4 * 5) = 2, int(0.4 * 4) = 1
    assert train.filenames == [f for f in EXPECTED_FILES if f not in val.filenames]
    with pytest.raises(ValueError, match="subset"):
        gen.flow_from_directory(folder, subset="test")


def test_seeded_shuffle_is_keras_order_and_reproducible(folder):
    gen = ImageDataGenerator()
    a = gen.flow_from_directory(folder, target_size=(12, 12), batch_size=9, shuffle=True, seed=7)
    b = gen.flow_from_directory(folder, target_size=(12, 12), batch_size=9, shuffle=True, seed=7, workers=0)
    xa, ya = a[0]
    xb, yb = b[0]
    np.testing.assert_array_equal(xa, xb)
    order = np.random.RandomState(7).permutation(9)  # Keras: reseed with seed + 0, then the order
    np.testing.assert_array_equal(ya.argmax(1), a.classes[order])
    for i, j in enumerate(order):
        if not EXPECTED_FILES[j].endswith(".jpg"):
            np.testing.assert_array_equal(xa[i], pil_load(folder / EXPECTED_FILES[j], target_size=(12, 12)))


def test_augmented_directory_batches_do_not_depend_on_workers(folder):
    gen = ImageDataGenerator(rescale=1 / 255, rotation_range=15, width_shift_range=0.1, height_shift_range=0.1,
                             zoom_range=0.1, horizontal_flip=True)
    runs = []
    for workers in (0, 1, 3):
        it = gen.flow_from_directory(folder, target_size=(16, 16), batch_size=4, seed=42, workers=workers)
        batches = []
        for _ in range(2):
            batches += [it[i][0] for i in range(len(it))]
            it.on_epoch_end()
        runs.append(batches)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)


def test_next_cycles_and_reset(folder):
    it = ImageDataGenerator().flow_from_directory(folder, target_size=(8, 8), batch_size=4, shuffle=False)
    sizes = [len(next(it)[0]) for _ in range(4)]
    assert sizes == [4, 4, 1, 4]
    it.reset()
    assert it.batch_index == 0
    np.testing.assert_array_equal(next(it)[0], it[0][0])


# ---------------------------------------------------------------------------------------------
# Bad files and folders


@pytest.fixture
def bad_folder(tmp_path):
    rng = np.random.default_rng(8)
    for c in ("x", "y"):
        (tmp_path / c).mkdir()
        for i in range(3):
            Image.fromarray(smooth_image(rng, 10, 10, 3), "RGB").save(tmp_path / c / f"{c}{i}.png")
    return tmp_path


def test_corrupt_image_raises_naming_the_file(bad_folder):
    (bad_folder / "y" / "y9.jpg").write_bytes(b"this is not a jpeg at all" * 10)
    it = ImageDataGenerator().flow_from_directory(bad_folder, target_size=(8, 8), batch_size=7, shuffle=False)
    with pytest.raises(OSError, match="y9.jpg"):
        it[0]
    model = signcore.Sequential([signcore.layers.Flatten(input_shape=(8, 8, 3)), signcore.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    with pytest.raises(OSError, match="y9.jpg"):  # from a worker thread, through the C++ loop
        model.fit(it, epochs=1, verbose=0)


def test_truncated_and_empty_images_raise(bad_folder):
    buf = bad_folder / "x" / "x0.png"
    jpg = bad_folder / "x" / "cut.jpg"
    Image.open(buf).save(jpg, quality=90)
    jpg.write_bytes(jpg.read_bytes()[:-200])
    (bad_folder / "y" / "empty.png").write_bytes(b"")
    gen = ImageDataGenerator()
    with pytest.raises(OSError, match="truncated.*cut.jpg"):
        load_img(jpg)
    with pytest.raises(OSError, match="empty.png.*empty|empty.*empty.png"):
        load_img(bad_folder / "y" / "empty.png")
    it = gen.flow_from_directory(bad_folder, target_size=(8, 8), batch_size=8, shuffle=False)
    with pytest.raises(OSError, match="cut.jpg"):
        it[0]


def test_missing_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ImageDataGenerator().flow_from_directory(tmp_path / "nowhere")
    (tmp_path / "only").mkdir()
    with pytest.warns(UserWarning, match="No images"):
        it = ImageDataGenerator().flow_from_directory(tmp_path)
    assert it.samples == 0 and len(it) == 0
    with pytest.raises(OSError, match="missing.png"):
        load_img(tmp_path / "missing.png")


# ---------------------------------------------------------------------------------------------
# Training from a folder


def test_fit_evaluate_predict_from_directory(tmp_path):
    rng = np.random.default_rng(9)
    for c, flip in (("bottom", True), ("top", False)):  # which half is bright
        (tmp_path / c).mkdir()
        for i in range(12):
            img = np.clip(np.where(np.arange(12)[:, None, None] < 6, 210, 40) + rng.normal(0, 25, (12, 12, 3)), 0, 255)
            Image.fromarray((img[::-1] if flip else img).astype(np.uint8), "RGB").save(tmp_path / c / f"{i}.png")
    signcore.utils.set_random_seed(1)
    gen = ImageDataGenerator(rescale=1 / 255, rotation_range=10, horizontal_flip=True)
    train = gen.flow_from_directory(tmp_path, target_size=(8, 8), batch_size=6, seed=3)
    model = signcore.Sequential([signcore.layers.Flatten(input_shape=(8, 8, 3)),
                                 signcore.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=signcore.optimizers.Adam(learning_rate=0.02), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(train, steps_per_epoch=3, epochs=10, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    test = ImageDataGenerator(rescale=1 / 255).flow_from_directory(tmp_path, target_size=(8, 8), batch_size=5,
                                                                   shuffle=False)
    loss, acc = model.evaluate(test, verbose=0)
    assert acc > 0.9
    probs = model.predict(test, verbose=0)
    assert probs.shape == (24, 2)
    np.testing.assert_array_equal(probs.argmax(1), test.classes)  # order follows .classes


# ---------------------------------------------------------------------------------------------
# Real data: a slice of Massey ASL (400x400 JPEGs)


@pytest.fixture(scope="session")
def asl_slice(tmp_path_factory, shared_datasets):
    """The first 6 images of classes a, b, c and d, extracted once per session."""
    root = tmp_path_factory.mktemp("massey_asl")
    wanted = {c: 0 for c in "abcd"}
    with tarfile.open(shared_datasets / "massey_asl.tar.gz") as tar:
        for m in tar:
            parts = m.name.split("/")
            if m.isfile() and len(parts) >= 2 and parts[-2] in wanted and wanted[parts[-2]] < 6:
                wanted[parts[-2]] += 1
                (root / parts[-2]).mkdir(exist_ok=True)
                (root / parts[-2] / parts[-1]).write_bytes(tar.extractfile(m).read())
            if all(v == 6 for v in wanted.values()):
                break
    return root


def test_seed_002_pipeline_on_massey_asl(asl_slice):
    train_gen = ImageDataGenerator(rescale=1.0 / 255, rotation_range=15, width_shift_range=0.1,
                                   height_shift_range=0.1, zoom_range=0.1)
    train = train_gen.flow_from_directory(asl_slice, target_size=(128, 128), batch_size=16,
                                          class_mode="categorical", shuffle=True, seed=42)
    assert train.class_indices == {"a": 0, "b": 1, "c": 2, "d": 3} and train.samples == 24 and len(train) == 2
    x, y = train[0]
    assert x.shape == (16, 128, 128, 3) and y.shape == (16, 4)
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.std() > 0.05
    np.testing.assert_array_equal(y.sum(1), 1)

    evaluation = ImageDataGenerator(rescale=1.0 / 255).flow_from_directory(
        asl_slice, target_size=(128, 128), batch_size=16, shuffle=False)
    x, _ = evaluation[0]
    for i in range(0, 16, 5):
        ref = pil_load(asl_slice / evaluation.filenames[i], target_size=(128, 128)) / 255
        diff = np.abs(x[i] - ref)
        assert diff.mean() < 1.5 / 255 and np.quantile(diff, 0.99) < 12 / 255, evaluation.filenames[i]


def test_image_dataset_from_directory_on_massey_asl(asl_slice, capsys):
    x, y = image_dataset_from_directory(asl_slice, image_size=(32, 32), seed=5)
    assert "Found 24 files belonging to 4 classes." in capsys.readouterr().out
    assert x.shape == (24, 32, 32, 3) and x.dtype == np.float32 and y.dtype == np.int32
    assert 0 <= x.min() and x.max() <= 255 and x.max() > 1  # not rescaled, as Keras
    np.testing.assert_array_equal(np.bincount(y), [6, 6, 6, 6])


# ---------------------------------------------------------------------------------------------
# image_dataset_from_directory


def tf_bilinear(img, h, w):
    """tf.image.resize(method="bilinear", antialias=False): half-pixel centres, clamped edges."""
    def axis(n_in, n_out):
        c = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        c = np.clip(c, 0, n_in - 1)
        lo = np.floor(c).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, c - lo
    r0, r1, fr = axis(img.shape[0], h)
    c0, c1, fc = axis(img.shape[1], w)
    img = img.astype(np.float64)
    top = img[r0][:, c0] * (1 - fc)[None, :, None] + img[r0][:, c1] * fc[None, :, None]
    bot = img[r1][:, c0] * (1 - fc)[None, :, None] + img[r1][:, c1] * fc[None, :, None]
    return top * (1 - fr)[:, None, None] + bot * fr[:, None, None]


def test_image_dataset_labels_order_and_split(folder):
    ds = image_dataset_from_directory(folder, image_size=(16, 20), seed=3, label_mode="int")
    x, y = ds
    assert x.shape == (9, 16, 20, 3)  # names are lower-cased before the suffix test: a3.PNG counts
    assert ds.class_names == ["a", "b", "c"]
    # Keras shuffles the sorted paths once with RandomState(seed).shuffle.
    expected = [os.path.join(folder, f) for f in EXPECTED_FILES]
    np.random.RandomState(3).shuffle(expected)
    assert ds.file_paths == expected
    np.testing.assert_array_equal(y, [0 if os.path.relpath(p, folder).startswith("a") else 1 for p in expected])
    png = [i for i, p in enumerate(expected) if p.endswith("a1.png")][0]
    ref = tf_bilinear(np.asarray(Image.open(expected[png]).convert("RGB")), 16, 20)
    np.testing.assert_allclose(x[png], ref, atol=2e-3)

    train, val = image_dataset_from_directory(folder, image_size=(8, 8), seed=3, validation_split=0.25,
                                              subset="both", label_mode="categorical")
    assert len(train.x) == 7 and len(val.x) == 2  # int(0.25 * 9) = 2, taken from the end
    assert train.file_paths + val.file_paths == expected
    assert train.y.shape == (7, 3) and train.y.dtype == np.float32
    with pytest.raises(ValueError, match="seed"):
        image_dataset_from_directory(folder, validation_split=0.2, subset="training")
    with pytest.raises(ValueError, match="binary"):
        image_dataset_from_directory(folder, label_mode="binary", seed=1)


def test_image_dataset_without_labels_and_errors(folder, tmp_path):
    x = image_dataset_from_directory(folder, labels=None, image_size=(8, 8), shuffle=False, verbose=False)
    assert isinstance(x, np.ndarray) and x.shape == (9, 8, 8, 3)
    gray = image_dataset_from_directory(folder, color_mode="grayscale", image_size=(8, 8), shuffle=False)
    assert gray.x.shape == (9, 8, 8, 1)
    (tmp_path / "k").mkdir()
    with pytest.raises(ValueError, match="No images found"):
        image_dataset_from_directory(tmp_path)
    (tmp_path / "k" / "bad.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(OSError, match="bad.png"):
        image_dataset_from_directory(tmp_path)
