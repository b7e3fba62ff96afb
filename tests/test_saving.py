"""The model file: round trips (model, weights, pickle) that continue training identically, the
documented layout (docs/FORMAT.md) checked with an independent reader, and clear errors for
missing, foreign, truncated, corrupt and mismatched files, with atomic writes."""
import json
import os
import pathlib
import pickle
import resource
import signal
import struct
import zlib

import numpy as np
import pytest

import signcore
from signcore import _core, layers, saving

N_FEATURES, N_CLASSES = 6, 3


def make_model(hidden=8, name=None):
    return signcore.Sequential([
        layers.Dense(hidden, activation="relu", input_shape=(N_FEATURES,)),
        layers.Dense(N_CLASSES, activation="softmax"),
    ], name=name)


@pytest.fixture(scope="module")
def data():
    r = np.random.default_rng(0)
    x = r.normal(size=(64, N_FEATURES)).astype(np.float32)
    y = r.integers(0, N_CLASSES, size=64).astype(np.float32)
    return x, y


@pytest.fixture()
def trained(data):
    """A compiled model after a few Adam steps (non-trivial optimizer state)."""
    x, y = data
    signcore.utils.set_random_seed(3)
    model = make_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
    return model


def weights_equal(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    return len(wa) == len(wb) and all(np.array_equal(u, v) for u, v in zip(wa, wb))


def optimizer_state(model):
    config, iterations, built, total, state = model.optimizer.__getstate__()
    return config, iterations, built, total, bytes(state)


def assert_same_model(a, b, x):
    assert [l.name for l in a.layers] == [l.name for l in b.layers]
    assert weights_equal(a, b)
    np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(x, verbose=0))


def assert_trains_identically(a, b, x, y):
    a.train_on_batch(x[:16], y[:16])
    b.train_on_batch(x[:16], y[:16])
    assert weights_equal(a, b)


def leftovers(folder, keep):
    return sorted(p.name for p in pathlib.Path(folder).iterdir() if p.name not in keep)


# --- round trips -------------------------------------------------------------------------------

@pytest.mark.parametrize("filename", ["model.signcore", "model.keras", "model.h5"])
def test_save_load_round_trip_continues_training_identically(trained, data, tmp_path, filename):
    x, y = data
    path = tmp_path / filename
    trained.save(path)  # os.PathLike accepted
    assert leftovers(tmp_path, keep=()) == [filename]  # no temporary file left behind
    loaded = signcore.models.load_model(str(path))
    assert isinstance(loaded, signcore.Sequential)
    assert_same_model(trained, loaded, x)
    assert loaded.metrics_names == trained.metrics_names == ["loss", "accuracy"]
    assert optimizer_state(loaded) == optimizer_state(trained)
    assert loaded.optimizer.iterations == trained.optimizer.iterations == 8
    assert loaded.optimizer.get_config() == trained.optimizer.get_config()
    assert_trains_identically(trained, loaded, x, y)
    # evaluate works straight away and agrees.
    assert loaded.evaluate(x, y, verbose=0) == trained.evaluate(x, y, verbose=0)


def test_include_optimizer_false_keeps_compile_but_not_state(trained, data, tmp_path):
    x, _ = data
    saving.save_model(trained, tmp_path / "m.signcore", include_optimizer=False)
    loaded = saving.load_model(tmp_path / "m.signcore")
    assert_same_model(trained, loaded, x)
    assert loaded.optimizer.get_config() == trained.optimizer.get_config()
    assert loaded.optimizer.iterations == 0 and not loaded.optimizer.built
    header = saving.read_header(tmp_path / "m.signcore")
    assert [t["kind"] for t in header["tensors"]] == ["weight"] * 4


def test_uncompiled_model_round_trip(data, tmp_path):
    x, _ = data
    model = make_model()
    model.build((None, N_FEATURES))
    model.save(tmp_path / "plain.signcore")
    loaded = saving.load_model(tmp_path / "plain.signcore")
    assert_same_model(model, loaded, x)
    assert saving.read_header(tmp_path / "plain.signcore")["compile"] is None
    with pytest.raises(RuntimeError):
        loaded.train_on_batch(x[:4], np.zeros(4))


def test_unbuilt_model_cannot_be_saved(tmp_path):
    model = signcore.Sequential([layers.Dense(3)])
    with pytest.raises(ValueError, match="not yet been built|not built"):
        model.save(tmp_path / "m.signcore")
    assert leftovers(tmp_path, keep=()) == []


def test_pickle_round_trip(trained, data):
    x, y = data
    blob = pickle.dumps(trained)
    # The pickle carries signcore's container as plain bytes, not pickled code objects.
    assert b"SIGNCORE" in blob
    clone = pickle.loads(blob)
    assert_same_model(trained, clone, x)
    assert optimizer_state(clone) == optimizer_state(trained)
    assert_trains_identically(trained, clone, x, y)
    again = saving.model_from_bytes(saving.model_to_bytes(clone))
    assert_same_model(clone, again, x)


def test_save_weights_load_weights(trained, data, tmp_path):
    x, _ = data
    path = tmp_path / "w.weights.signcore"
    trained.save_weights(path)
    other = make_model()  # same architecture, different layer names
    other.build((None, N_FEATURES))
    assert not weights_equal(trained, other)
    other.load_weights(path)
    assert weights_equal(trained, other)
    np.testing.assert_array_equal(other.predict(x, verbose=0), trained.predict(x, verbose=0))
    # Weights can also come from a full model file.
    trained.save(tmp_path / "full.signcore")
    third = make_model()
    third.build((None, N_FEATURES))
    third.load_weights(tmp_path / "full.signcore")
    assert weights_equal(trained, third)
    # A weights-only file is not a model.
    with pytest.raises(ValueError, match="weights only"):
        saving.load_model(path)


def test_wrong_architecture_weights_are_rejected_and_nothing_changes(trained, tmp_path):
    path = tmp_path / "w.signcore"
    trained.save_weights(path)
    wider = make_model(hidden=9)
    wider.build((None, N_FEATURES))
    before = wider.get_weights()
    with pytest.raises(ValueError, match=r"\(6, 8\) in the file.*\(6, 9\)"):
        wider.load_weights(path)
    assert all(np.array_equal(a, b) for a, b in zip(before, wider.get_weights()))
    deeper = signcore.Sequential([layers.Dense(8, input_shape=(N_FEATURES,)), layers.Dense(8),
                                  layers.Dense(N_CLASSES)])
    deeper.build((None, N_FEATURES))
    with pytest.raises(ValueError, match="the file has 4 weight tensors, the model has 6"):
        deeper.load_weights(path)


def test_overwrite_false(trained, tmp_path):
    path = tmp_path / "m.signcore"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="overwrite"):
        trained.save(path, overwrite=False)
    with pytest.raises(FileExistsError):
        saving.save_weights(trained, path, overwrite=False)
    assert path.read_bytes() == b"precious"


# --- the documented layout, read independently --------------------------------------------------

def test_file_layout_matches_the_format_document(trained, tmp_path):
    path = tmp_path / "m.signcore"
    trained.save(path)
    raw = path.read_bytes()
    assert raw[:8] == b"SIGNCORE"
    version, header_len = struct.unpack_from("<IQ", raw, 8)
    assert version == 1 == _core.FORMAT_VERSION
    header = json.loads(raw[20:20 + header_len].decode("utf-8"))
    assert (20 + header_len) % 64 == 0  # the data section is 64-byte aligned
    assert header["format"] == "signcore" and header["format_version"] == 1
    assert header["content"] == "model"
    assert len(raw) == 20 + header_len + header["data_nbytes"] + 4
    assert struct.unpack("<I", raw[-4:])[0] == zlib.crc32(raw[:-4])
    data = raw[20 + header_len:-4]
    weights = [t for t in header["tensors"] if t["kind"] == "weight"]
    names = [f"{layer.name}/{w}" for layer in trained.layers for w in ("kernel", "bias")]
    assert [t["name"] for t in weights] == names
    for t, w in zip(weights, trained.get_weights()):
        assert t["dtype"] == "float32" and tuple(t["shape"]) == w.shape
        stored = np.frombuffer(data, dtype="<f4", count=w.size, offset=t["offset"]).reshape(w.shape)
        np.testing.assert_array_equal(stored, w)
    (state,) = [t for t in header["tensors"] if t["kind"] == "optimizer_state"]
    assert state["shape"] == [2, sum(w.size for w in trained.get_weights())]  # Adam: m and v
    assert header["compile"]["optimizer"]["iterations"] == 8
    assert header["compile"]["loss"]["class_name"] == "SparseCategoricalCrossentropy"
    assert header["compile"]["metrics"] == ["accuracy"]
    assert [l["class_name"] for l in header["model"]["layers"]] == ["Dense", "Dense"]
    assert header["model"]["layers"][1]["inbound"] == [{"layer": 0}]
    assert header["model"]["inputs"][0]["shape"] == [N_FEATURES]
    assert _core.crc32(raw[:-4]) == zlib.crc32(raw[:-4])


# --- bad files ---------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    path = tmp_path / "nope.signcore"
    with pytest.raises(FileNotFoundError, match="nope.signcore"):
        saving.load_model(path)
    with pytest.raises(FileNotFoundError):
        make_model().load_weights(path)
    with pytest.raises(OSError, match="directory"):
        saving.load_model(tmp_path)


@pytest.fixture()
def saved(trained, tmp_path):
    path = tmp_path / "good.signcore"
    trained.save(path)
    return path, path.read_bytes()


def rewrite(path, raw):
    path.write_bytes(raw)
    return path


@pytest.mark.parametrize("where", ["magic", "version", "header_len", "header", "data", "crc"])
def test_flipped_byte_is_reported(saved, where):
    path, raw = saved
    header_len = struct.unpack_from("<Q", raw, 12)[0]
    pos = {"magic": 0, "version": 9, "header_len": 14, "header": 40,
           "data": 20 + header_len + 10, "crc": len(raw) - 2}[where]
    bad = bytearray(raw)
    bad[pos] ^= 0x5A
    rewrite(path, bytes(bad))
    expected = {"magic": "not a signcore model file", "version": "checksum",
                "header_len": "truncated or corrupt", "header": "checksum", "data": "checksum",
                "crc": "checksum"}[where]
    with pytest.raises(ValueError, match=expected) as info:
        saving.load_model(path)
    assert str(path) in str(info.value)


def test_random_corruption_never_crashes(saved):
    path, raw = saved
    r = np.random.default_rng(5)
    for pos in r.choice(len(raw), size=40, replace=False):
        bad = bytearray(raw)
        bad[pos] ^= 1 << int(r.integers(0, 8))
        with pytest.raises(ValueError, match="good.signcore"):
            saving.load_model(rewrite(path, bytes(bad)))


@pytest.mark.parametrize("keep", [0, 5, 12, 23, 100, -300, -1])
def test_truncated_file(saved, keep):
    path, raw = saved
    cut = raw[:keep] if keep >= 0 else raw[:len(raw) + keep]
    rewrite(path, cut)
    expected = "empty" if keep == 0 else "truncated"
    with pytest.raises(ValueError, match=expected) as info:
        saving.load_model(path)
    assert str(path) in str(info.value)
    with pytest.raises(ValueError):
        saving.model_from_bytes(cut)


@pytest.mark.parametrize("content,hint", [
    (bytes(np.random.default_rng(1).integers(0, 256, size=500, dtype=np.uint8)), "not a signcore"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "89 50 4e 47"),
    (b"\x89HDF\r\n\x1a\n" + b"\x00" * 100, "HDF5"),
    (b"PK\x03\x04" + b"\x00" * 100, "zip"),
    (pickle.dumps({"a": 1}, protocol=4), "pickle"),
])
def test_foreign_files(tmp_path, content, hint):
    path = rewrite(tmp_path / "foreign.keras", content)
    with pytest.raises(ValueError, match=hint):
        saving.load_model(path)
    with pytest.raises(ValueError, match="foreign.keras"):
        make_model().load_weights(path)


def patch_header(raw, edit):
    """Apply `edit` to the header text (same length) and fix the checksum: a valid container."""
    header_len = struct.unpack_from("<Q", raw, 12)[0]
    text = raw[20:20 + header_len].decode()
    new = edit(text)
    assert len(new) == len(text)
    body = raw[:20] + new.encode() + raw[20 + header_len:-4]
    return body + struct.pack("<I", zlib.crc32(body))


def test_newer_format_version(saved):
    path, raw = saved
    body = bytearray(raw[:-4])
    struct.pack_into("<I", body, 8, 2)
    rewrite(path, bytes(body) + struct.pack("<I", zlib.crc32(bytes(body))))
    with pytest.raises(ValueError, match="newer signcore"):
        saving.load_model(path)


def test_header_inconsistent_with_the_rebuilt_model(saved):
    path, raw = saved
    # A valid container whose layer config no longer matches its tensor table.
    rewrite(path, patch_header(raw, lambda t: t.replace('"units":8', '"units":9', 1)))
    with pytest.raises(ValueError, match=r"weight 0 .*\(6, 8\) in the file"):
        saving.load_model(path)
    # A tensor that claims more bytes than its shape holds.
    rewrite(path, patch_header(raw, lambda t: t.replace('"nbytes":192', '"nbytes":196', 1)))
    with pytest.raises(ValueError, match="nbytes 196"):
        saving.load_model(path)
    # Broken JSON.
    rewrite(path, patch_header(raw, lambda t: t.replace("{", "[", 1)))
    with pytest.raises(ValueError, match="not valid JSON"):
        saving.load_model(path)
    # An unknown layer class.
    rewrite(path, patch_header(raw, lambda t: t.replace('"Dense"', '"Dunce"', 1)))
    with pytest.raises(ValueError, match="Dunce"):
        saving.load_model(path)


# --- atomic writes -----------------------------------------------------------------------------

def test_failed_saves_leave_no_temporary_file_and_keep_the_old_one(trained, tmp_path):
    good = tmp_path / "good.signcore"
    trained.save(good)
    original = good.read_bytes()
    # A directory in the way.
    (tmp_path / "adir").mkdir()
    with pytest.raises(OSError, match="adir"):
        trained.save(tmp_path / "adir")
    # A folder that does not exist.
    with pytest.raises(OSError, match="no_such_folder"):
        trained.save(tmp_path / "no_such_folder" / "m.signcore")
    assert leftovers(tmp_path, keep=()) == ["adir", "good.signcore"]
    assert list((tmp_path / "adir").iterdir()) == []
    assert good.read_bytes() == original


def test_write_failure_midway_keeps_the_existing_file(trained, data, tmp_path):
    """The disk fills up (file size limit) while writing a bigger model over a good file."""
    good = tmp_path / "model.signcore"
    trained.save(good)
    original = good.read_bytes()
    big = signcore.Sequential([layers.Dense(256, input_shape=(N_FEATURES,)), layers.Dense(256),
                               layers.Dense(N_CLASSES)])
    big.build((None, N_FEATURES))
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (len(original) + 4096, hard))
        with pytest.raises(OSError, match="model.signcore"):
            big.save(good)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert good.read_bytes() == original
    assert leftovers(tmp_path, keep=()) == ["model.signcore"]
    loaded = saving.load_model(good)
    assert_same_model(trained, loaded, data[0])
    big.save(good)  # and a normal save still works afterwards
    assert weights_equal(saving.load_model(good), big)


def test_path_types(trained, tmp_path):
    with pytest.raises(TypeError, match="filepath"):
        trained.save(123)
    trained.save(os.fsencode(str(tmp_path / "b.signcore")).decode())
    assert (tmp_path / "b.signcore").exists()


def test_frozen_layers_dropout_and_changed_learning_rate_survive(data):
    x, _ = data
    y = np.eye(N_CLASSES, dtype=np.float32)[data[1].astype(int)]
    model = signcore.Sequential([layers.Dense(8, activation="relu", input_shape=(N_FEATURES,)),
                                 layers.Dropout(0.3), layers.Dense(N_CLASSES, activation="softmax")])
    model.layers[0].trainable = False
    model.compile(optimizer=signcore.optimizers.SGD(learning_rate=0.05, momentum=0.9),
                  loss="categorical_crossentropy", metrics=["categorical_accuracy"])
    model.fit(x, y, batch_size=16, verbose=0)
    model.optimizer.learning_rate = 0.02  # as a ReduceLROnPlateau callback would
    clone = pickle.loads(pickle.dumps(model))
    assert [l.trainable for l in clone.layers] == [False, True, True]
    assert len(clone.trainable_weights) == 2
    assert clone.optimizer.learning_rate == pytest.approx(0.02)
    assert clone.optimizer.get_config()["momentum"] == pytest.approx(0.9)
    assert optimizer_state(clone) == optimizer_state(model)
    assert clone.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
