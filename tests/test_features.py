"""The per-frame feature pickle (the reference RNN experiment's 7-tuple) and the WLASL converter.

The converter runs on the real ../shared/datasets/wlasl50_landmarks.npz; every sample is traced
back to its source clip by its exact feature values, so the split, padding and masks are checked
against the file itself rather than against the converter's own bookkeeping.
"""
import os
import pickle

import numpy as np
import pytest

import signcore
from signcore import datasets, layers
from signcore.datasets import features as feat

SEED_WORDS = ["book", "drink", "computer", "before", "chair", "go", "clothes", "who", "candy", "cousin", "deaf",
              "fine", "help", "no", "thin"]


@pytest.fixture(scope="module")
def npz_path(shared_datasets):
    return shared_datasets / "wlasl50_landmarks.npz"


@pytest.fixture(scope="module")
def npz(npz_path):
    with np.load(npz_path) as d:
        return {k: d[k] for k in d.files}


@pytest.fixture(scope="module")
def splits(npz_path):
    return datasets.wlasl_landmarks_to_pickle(npz_path, seed=0)


def source_rows(npz, features):
    """Row of the npz each sample comes from (matching its first 30 frames exactly)."""
    lookup = {npz["features"][i].tobytes(): i for i in range(len(npz["features"]))}
    return np.array([lookup[f[:30].tobytes()] for f in features])


# ------------------------------------------------------------------------------------------------
# The WLASL converter

def test_converter_shapes_and_types(splits, npz):
    train_data, train_labels, val_data, val_labels, test_data, test_labels, class_vocab = splits
    assert class_vocab == [str(g) for g in npz["glosses"]] and len(class_vocab) == 50
    for (x, m), y, n in ((train_data, train_labels, 1000), (val_data, val_labels, 250), (test_data, test_labels, 250)):
        assert x.shape == (n, 50, 170) and x.dtype == np.float32
        assert m.shape == (n, 50) and m.dtype == np.bool_
        assert y.shape == (n, 1) and y.dtype == np.int64
        # 30 clips per word: floor(4.5 + 0.5) = 5 to validation, 5 to test, 20 to training
        assert np.bincount(y[:, 0], minlength=50).tolist() == [n // 50] * 50


def test_converter_is_a_stratified_partition_of_the_clips(splits, npz):
    rows = []
    for k in range(3):
        (x, m), y = splits[2 * k], splits[2 * k + 1]
        r = source_rows(npz, x)
        np.testing.assert_array_equal(y[:, 0], npz["labels"][r])  # each label is its clip's word
        rows.append(r)
    everything = np.concatenate(rows)
    assert sorted(everything.tolist()) == list(range(1500))  # every clip exactly once: no leakage


def test_converter_pads_and_masks_empty_frames(splits, npz):
    total_masked_real = 0
    for k in range(3):
        (x, m), y = splits[2 * k], splits[2 * k + 1]
        src = npz["features"][source_rows(npz, x)]
        assert not x[:, 30:].any() and not m[:, 30:].any()  # padding 30 -> 50
        np.testing.assert_array_equal(m[:, :30], np.abs(src).sum(axis=2) > 0)
        total_masked_real += int((~m[:, :30]).sum())
    assert total_masked_real == 3101  # the README's count of frames with no person detected


def test_converter_drop_moves_real_frames_forward(npz_path, npz):
    s = datasets.wlasl_landmarks_to_pickle(npz_path, seed=0, empty_frames="drop", words=["book", "go"])
    (x, m), y = s.train_data, s.train_labels
    lookup = {}
    for i in np.flatnonzero(np.isin(npz["labels"], [8, 22])):
        clip = npz["features"][i]
        lookup[clip[np.abs(clip).sum(axis=1) > 0].tobytes()] = i
    for xi, mi in zip(x, m):
        n = int(mi.sum())
        assert mi.tolist() == [True] * n + [False] * (50 - n)
        assert xi[:n].tobytes() in lookup and not xi[n:].any()


def test_converter_keep_and_max_seq_length(npz_path):
    s = datasets.wlasl_landmarks_to_pickle(npz_path, max_seq_length=20, empty_frames="keep", words=["yes"])
    assert s.train_data[0].shape[1:] == (20, 170) and s.train_data[1].all()


def test_converter_words_subset(npz_path, npz):
    present = [w for w in SEED_WORDS if w in set(npz["glosses"].tolist())]
    assert len(present) == 10
    with pytest.raises(ValueError, match="candy"):
        datasets.wlasl_landmarks_to_pickle(npz_path, words=SEED_WORDS)
    s = datasets.wlasl_landmarks_to_pickle(npz_path, words=present, val_fraction=0.2, test_fraction=0.2, seed=5)
    assert s.class_vocab == sorted(present)  # the file's (alphabetical) gloss order
    n = [len(s.train_labels), len(s.val_labels), len(s.test_labels)]
    assert n == [180, 60, 60]
    gloss_of = {i: g for i, g in enumerate(npz["glosses"].tolist())}
    rows = source_rows(npz, s.test_data[0])
    assert [s.class_vocab[i] for i in s.test_labels[:, 0]] == [gloss_of[i] for i in npz["labels"][rows]]


def test_converter_seed_changes_the_split(npz_path):
    a = datasets.wlasl_landmarks_to_pickle(npz_path, seed=1, words=["yes", "no"])
    b = datasets.wlasl_landmarks_to_pickle(npz_path, seed=1, words=["yes", "no"])
    c = datasets.wlasl_landmarks_to_pickle(npz_path, seed=2, words=["yes", "no"])
    np.testing.assert_array_equal(a.test_data[0], b.test_data[0])
    assert not np.array_equal(a.test_data[0], c.test_data[0])


def test_converter_errors(npz_path, tmp_path):
    with pytest.raises(ValueError, match="empty_frames"):
        datasets.wlasl_landmarks_to_pickle(npz_path, empty_frames="skip")
    with pytest.raises(ValueError, match="max_seq_length"):
        datasets.wlasl_landmarks_to_pickle(npz_path, max_seq_length=0)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(ValueError, match="lacks the arrays"):
        datasets.wlasl_landmarks_to_pickle(other)


# ------------------------------------------------------------------------------------------------
# The pickle

def test_pickle_round_trip_is_plain_data(splits, tmp_path):
    path = tmp_path / "preprocessed_videos.pkl"
    datasets.save_feature_pickle(path, *splits)
    with open(path, "rb") as f:
        raw = pickle.load(f)  # readable with pickle alone, as Keras's recipe does
    assert type(raw) is tuple and len(raw) == 7
    assert type(raw[0]) is tuple and type(raw[6]) is list and all(type(c) is str for c in raw[6])
    loaded = datasets.load_feature_pickle(path)
    (train_data, train_labels, val_data, val_labels, test_data, test_labels, class_vocab) = loaded
    for got, want in zip(loaded[:6], splits[:6]):
        if isinstance(want, tuple):
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
            assert got[1].dtype == np.bool_
        else:
            np.testing.assert_array_equal(got, want)
    assert class_vocab == splits.class_vocab
    assert class_vocab[test_labels[0][0]] in class_vocab  # the recipe's lookup works


def test_pickle_written_by_the_keras_recipe_loads(tmp_path, rng):
    # lists instead of tuples, a numpy string vocabulary, int32 labels of shape (N,)
    x = rng.random((4, 50, 8)).astype(np.float32)
    m = np.zeros((4, 50), bool)
    m[:, :10] = True
    items = ([x, m], np.array([0, 1, 2, 1], np.int32), [x[:1], m[:1]], np.array([[2]]), [x[:2], m[:2]],
             np.array([0, 0]), np.array(["a", "b", "c"]))
    path = tmp_path / "recipe.pkl"
    with open(path, "wb") as f:
        pickle.dump(items, f)
    loaded = datasets.load_feature_pickle(path)
    assert loaded.class_vocab == ["a", "b", "c"]
    assert loaded.train_labels.dtype == np.int64 and loaded.val_labels.shape == (1, 1)


@pytest.mark.parametrize("change,message", [
    (lambda t: t[:6], "7-tuple.*Received: a tuple of length 6"),
    (lambda t: (t[0][0],) + t[1:], r"train_data must be a pair \(features, masks\)"),
    (lambda t: ((t[0][0], t[0][1][:, :10]),) + t[1:], r"masks\) must have shape \(4, 50\).*Received: shape \(4, 10\)"),
    (lambda t: ((t[0][0].astype(np.int32), t[0][1]),) + t[1:], "must be a float array"),
    (lambda t: t[:1] + (np.array([0, 1, 2, 3]),) + t[2:], r"ids in \[0, 3\).*3"),
    (lambda t: t[:1] + (np.array([0.0, 1, 1, 1]),) + t[2:], "integer class ids"),
    (lambda t: t[:1] + (np.array([0, 1]),) + t[2:], r"train_labels must have shape \(4,\) or \(4, 1\)"),
    (lambda t: t[:2] + ((t[2][0][:, :, :5], t[2][1]),) + t[3:], "val_data features have"),
    (lambda t: t[:6] + (["a", "a", "b"],), "must not repeat"),
    (lambda t: t[:6] + ("abc",), "class_vocab must be a list"),
])
def test_pickle_validation_names_what_was_received(tmp_path, rng, change, message):
    x = rng.random((4, 50, 8)).astype(np.float32)
    m = np.ones((4, 50), bool)
    good = ((x, m), np.array([0, 1, 2, 1]), (x[:2], m[:2]), np.array([0, 2]), (x[:1], m[:1]), np.array([1]),
            ["a", "b", "c"])
    datasets.save_feature_pickle(tmp_path / "good.pkl", *good)  # the unchanged tuple is fine
    bad = change(good)
    path = tmp_path / "bad.pkl"
    with open(path, "wb") as f:
        pickle.dump(bad, f)
    with pytest.raises(ValueError, match=message):
        datasets.load_feature_pickle(path)
    if len(bad) == 7:
        with pytest.raises(ValueError, match=message):
            datasets.save_feature_pickle(tmp_path / "never.pkl", *bad)
        assert not (tmp_path / "never.pkl").exists()


def test_pickle_write_is_atomic(tmp_path, splits, monkeypatch):
    path = tmp_path / "features.pkl"
    path.write_bytes(b"previous content")

    def broken_dump(obj, f, protocol=None):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(feat.pickle, "dump", broken_dump)
    with pytest.raises(OSError, match="disk full"):
        datasets.save_feature_pickle(path, *splits)
    assert path.read_bytes() == b"previous content"
    assert os.listdir(tmp_path) == ["features.pkl"]  # no temporary file left behind


def test_pickle_loading_never_runs_code(tmp_path):
    marker = tmp_path / "was_run"

    class Exploit:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    path = tmp_path / "evil.pkl"
    with open(path, "wb") as f:
        pickle.dump((Exploit(),) * 7, f)
    with pytest.raises(ValueError, match="Refusing to load 'posix.mkdir'"):
        datasets.load_feature_pickle(path)
    assert not marker.exists()
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match="evil.pkl"):
        datasets.load_feature_pickle(path)


# ------------------------------------------------------------------------------------------------
# Helpers

def test_pad_sequences_with_masks():
    seqs = [np.ones((2, 3)), np.full((5, 3), 2.0), np.zeros((0, 3))]
    x, m = datasets.pad_sequences_with_masks(seqs, max_seq_length=4)
    assert x.shape == (3, 4, 3) and x.dtype == np.float32
    assert m.tolist() == [[True, True, False, False], [True] * 4, [False] * 4]
    assert x[0].tolist() == [[1.0] * 3] * 2 + [[0.0] * 3] * 2 and (x[1] == 2).all()
    with pytest.raises(ValueError, match="sequence 1 has 2"):
        datasets.pad_sequences_with_masks([np.ones((2, 3)), np.ones((2, 2))])


def test_stratified_split_counts(rng):
    labels = np.repeat([0, 1, 2], [10, 4, 1])
    tr, va, te = datasets.stratified_split(labels, val_fraction=0.2, test_fraction=0.25, seed=3)
    assert sorted(np.concatenate([tr, va, te]).tolist()) == list(range(15))
    # class 0: test floor(2.5+.5)=3, val 2; class 1: test 1, val 1; class 2: stays in training
    assert np.bincount(labels[te], minlength=3).tolist() == [3, 1, 0]
    assert np.bincount(labels[va], minlength=3).tolist() == [2, 1, 0]
    with pytest.raises(ValueError, match="below 1"):
        datasets.stratified_split(labels, 0.5, 0.5)


def test_make_feature_splits_from_extracted_features_trains_the_seed_model(tmp_path, rng):
    # The reference experiment's path: features + masks -> 7-tuple -> pickle -> two-input masked RNN.
    n, t, f = 60, 12, 6
    labels = np.arange(n) % 3
    x = rng.normal(size=(n, t, f)).astype(np.float32) + labels[:, None, None]
    masks = np.arange(t)[None, :] < rng.integers(4, t + 1, size=n)[:, None]
    x[~masks] = 0
    splits = datasets.make_feature_splits(x, masks, labels, ["a", "b", "c"], seed=1)
    path = tmp_path / "preprocessed_videos.pkl"
    datasets.save_feature_pickle(path, *splits)
    train_data, train_labels, val_data, val_labels, _, _, class_vocab = datasets.load_feature_pickle(path)
    signcore.utils.set_random_seed(0)
    features = signcore.Input((t, f))
    mask = signcore.Input((t,), dtype="bool")
    h = layers.SimpleRNN(8)(features, mask=mask)
    model = signcore.Model([features, mask], layers.Dense(len(class_vocab), activation="softmax")(h))
    model.compile(optimizer=signcore.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit([train_data[0], train_data[1]], train_labels, batch_size=8, epochs=15, verbose=0,
                        validation_data=([val_data[0], val_data[1]], val_labels))
    assert history.history["accuracy"][-1] > 0.8  # the classes are separable by their mean
