"""Per-frame feature datasets for sequence models, and the pickle that carries them.

The pickle is the 7-tuple of Keras's video-classification recipe (and signcore's reference RNN
experiment)::

    (train_data, train_labels, val_data, val_labels, test_data, test_labels, class_vocab)

where each ``*_data`` is a pair ``(features, masks)``: features ``(N, MAX_SEQ_LENGTH, NUM_FEATURES)``
float32 and masks ``(N, MAX_SEQ_LENGTH)`` bool (True for a real frame, False for padding or a frame
to skip); each ``*_labels`` holds N integer class ids, shape (N, 1) as the recipe makes them (or
(N,)); ``class_vocab`` is the list of class names (``class_vocab[label]``). The file holds only
NumPy arrays, tuples, lists and strings, so ``pickle.load`` reads it without signcore.

Example (the reference experiment, on the WLASL landmark features):
    >>> splits = signcore.datasets.wlasl_landmarks_to_pickle("wlasl50_landmarks.npz", "preprocessed_videos.pkl")
    >>> (train_data, train_labels, val_data, val_labels,
    ...  test_data, test_labels, class_vocab) = signcore.datasets.load_feature_pickle("preprocessed_videos.pkl")
    >>> model.fit([train_data[0], train_data[1]], train_labels,
    ...           validation_data=([val_data[0], val_data[1]], val_labels))
"""
from __future__ import annotations

import collections
import numbers
import os
import pickle

import numpy as np

from . import cache

__all__ = [
    "FeatureSplits",
    "load_feature_pickle",
    "make_feature_splits",
    "pad_sequences_with_masks",
    "save_feature_pickle",
    "stratified_split",
    "wlasl_landmarks_to_pickle",
]

#: The loaded 7-tuple, with names (it unpacks exactly like the plain tuple).
FeatureSplits = collections.namedtuple(
    "FeatureSplits", ["train_data", "train_labels", "val_data", "val_labels", "test_data", "test_labels",
                      "class_vocab"])

_SPLITS = ("train", "val", "test")


# ------------------------------------------------------------------------------------------------
# Validation

def _check_features(data, where):
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        got = f"a {type(data).__name__}" + (f" of length {len(data)}" if hasattr(data, "__len__") else "")
        raise ValueError(f"{where} must be a pair (features, masks). Received: {got}")
    features, masks = np.asarray(data[0]), np.asarray(data[1])
    if features.ndim != 3 or features.dtype.kind != "f":
        raise ValueError(f"{where}[0] (features) must be a float array of shape (N, MAX_SEQ_LENGTH, NUM_FEATURES). "
                         f"Received: shape {features.shape}, dtype {features.dtype}")
    if masks.shape != features.shape[:2]:
        raise ValueError(f"{where}[1] (masks) must have shape {features.shape[:2]} (N, MAX_SEQ_LENGTH) to match "
                         f"the features. Received: shape {masks.shape}")
    if masks.dtype != np.bool_:
        if masks.dtype.kind not in "biu" or (masks.size and not np.isin(masks, (0, 1)).all()):
            raise ValueError(f"{where}[1] (masks) must be boolean (or 0/1 integers). Received: dtype {masks.dtype}")
        masks = masks.astype(bool)
    return np.ascontiguousarray(features, dtype=np.float32), np.ascontiguousarray(masks)


def _check_labels(labels, n, n_classes, where):
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{where} must hold integer class ids. Received: dtype {labels.dtype}")
    if labels.shape not in ((n,), (n, 1)):
        raise ValueError(f"{where} must have shape ({n},) or ({n}, 1), one id per sample. "
                         f"Received: shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"{where} must be ids in [0, {n_classes}) (len(class_vocab) = {n_classes}). "
                         f"Received: ids from {labels.min()} to {labels.max()}")
    return labels.astype(np.int64)


def _check_vocab(class_vocab):
    if isinstance(class_vocab, (str, bytes)) or not hasattr(class_vocab, "__len__"):
        raise ValueError(f"class_vocab must be a list of class names. Received: {type(class_vocab).__name__}")
    vocab = list(class_vocab)
    if not vocab or not all(isinstance(v, str) for v in vocab):
        kinds = sorted({type(v).__name__ for v in vocab})
        raise ValueError(f"class_vocab must be a non-empty list of strings. Received: {len(vocab)} items of "
                         f"type {kinds}")
    if len(set(vocab)) != len(vocab):
        dup = sorted({v for v in vocab if vocab.count(v) > 1})
        raise ValueError(f"class_vocab must not repeat names. Received duplicates: {dup}")
    return [str(v) for v in vocab]


def _check_splits(items, source):
    if not isinstance(items, (tuple, list)) or len(items) != 7:
        got = f"a {type(items).__name__}" + (f" of length {len(items)}" if hasattr(items, "__len__") else "")
        raise ValueError(f"{source} must hold the 7-tuple (train_data, train_labels, val_data, val_labels, "
                         f"test_data, test_labels, class_vocab). Received: {got}")
    vocab = _check_vocab(items[6])
    out, seq_shape = [], None
    for k, split in enumerate(_SPLITS):
        features, masks = _check_features(items[2 * k], f"{split}_data")
        if seq_shape is None:
            seq_shape = features.shape[1:]
        elif features.shape[1:] != seq_shape:
            raise ValueError(f"{split}_data features have (MAX_SEQ_LENGTH, NUM_FEATURES) = {features.shape[1:]} "
                             f"but train_data has {seq_shape}")
        labels = _check_labels(items[2 * k + 1], features.shape[0], len(vocab), f"{split}_labels")
        out += [(features, masks), labels]
    return FeatureSplits(*out, vocab)


# ------------------------------------------------------------------------------------------------
# The pickle

def save_feature_pickle(path, train_data, train_labels, val_data, val_labels, test_data, test_labels, class_vocab):
    """Write the 7-tuple to ``path`` as a pickle (atomically: a failed write leaves no file).

    The arguments are checked first (shapes, dtypes, label range), with errors naming the part
    and what it received. Features are stored as float32, masks as bool, labels as int64 in the
    shape given, and class_vocab as a list of str: a plain tuple that ``pickle.load`` reads with
    only NumPy installed.

    Args:
        path: output file (str or os.PathLike), e.g. "preprocessed_videos.pkl".
        train_data, val_data, test_data: pairs (features (N, T, F), masks (N, T)).
        train_labels, val_labels, test_labels: class ids, shape (N,) or (N, 1).
        class_vocab: the class names.
    """
    splits = _check_splits((train_data, train_labels, val_data, val_labels, test_data, test_labels, class_vocab),
                           "save_feature_pickle's arguments")
    with cache.atomic_open(path) as f:
        pickle.dump(tuple(splits), f, protocol=4)
    return os.fspath(path)


def load_feature_pickle(path):
    """Read and check a feature pickle written by save_feature_pickle or by Keras's recipe.

    Only plain data is unpickled (tuples, lists, strings, numbers and NumPy arrays): a pickle that
    refers to anything else is refused instead of executed.

    Returns:
        A FeatureSplits named tuple, which unpacks as the 7-tuple
        ``(train_data, train_labels, val_data, val_labels, test_data, test_labels, class_vocab)``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the content is not the 7-tuple (the message says which part is wrong and what
            it holds).
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        try:
            items = cache.restricted_load(f)
        except pickle.UnpicklingError as e:
            raise ValueError(f"'{path}' is not a feature pickle: {e}") from e
        except (EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
            raise ValueError(f"'{path}' is not a readable pickle ({type(e).__name__}: {e})") from e
    return _check_splits(items, f"'{path}'")


# ------------------------------------------------------------------------------------------------
# Building the splits

def pad_sequences_with_masks(sequences, max_seq_length=50, num_features=None):
    """Stack variable-length (t_i, F) sequences into padded features and masks.

    Sequences longer than ``max_seq_length`` keep their first ``max_seq_length`` frames (as Keras's
    video recipe); shorter ones are followed by zero frames whose mask is False.

    Returns:
        (features (N, max_seq_length, F) float32, masks (N, max_seq_length) bool).
    """
    max_seq_length = _positive_int(max_seq_length, "max_seq_length")
    seqs = [np.asarray(s, dtype=np.float32) for s in sequences]
    for i, s in enumerate(seqs):
        if s.ndim != 2:
            raise ValueError(f"Each sequence must be (frames, features). Received: sequence {i} of shape {s.shape}")
    if num_features is None:
        if not seqs:
            raise ValueError("No sequences given and num_features is unknown")
        num_features = seqs[0].shape[1]
    features = np.zeros((len(seqs), max_seq_length, num_features), np.float32)
    masks = np.zeros((len(seqs), max_seq_length), bool)
    for i, s in enumerate(seqs):
        if s.shape[1] != num_features:
            raise ValueError(f"All sequences must have {num_features} features. "
                             f"Received: sequence {i} has {s.shape[1]}")
        t = min(len(s), max_seq_length)
        features[i, :t] = s[:t]
        masks[i, :t] = True
    return features, masks


def _positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{what} must be a positive integer. Received: {what}={value!r}")
    return int(value)


def _fraction(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"{what} must be a number in [0, 1). Received: {what}={value!r}")
    return float(value)


def stratified_split(labels, val_fraction=0.15, test_fraction=0.15, seed=0):
    """Split sample indices into train / validation / test, class by class.

    Each class with n samples gives ``floor(n * test_fraction + 0.5)`` to test and
    ``floor(n * val_fraction + 0.5)`` to validation (at least one sample always stays in train), chosen
    at random with ``seed``; each returned index array is in a random (seeded) order.

    Returns:
        (train_idx, val_idx, test_idx) int64 arrays that partition ``range(len(labels))``.
    """
    val_fraction = _fraction(val_fraction, "val_fraction")
    test_fraction = _fraction(test_fraction, "test_fraction")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"val_fraction + test_fraction must be below 1. Received: {val_fraction} + {test_fraction}")
    labels = np.asarray(labels).reshape(len(labels), -1)[:, 0] if len(labels) else np.zeros(0, np.int64)
    rng = np.random.default_rng(seed)
    parts = ([], [], [])
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n = len(idx)
        n_test = min(int(np.floor(n * test_fraction + 0.5)), n - 1)
        n_val = min(int(np.floor(n * val_fraction + 0.5)), n - 1 - n_test)
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test:n_test + n_val])
        parts[0].append(idx[n_test + n_val:])
    return tuple(rng.permutation(np.concatenate(p)).astype(np.int64) if p else np.zeros(0, np.int64)
                 for p in parts)


def make_feature_splits(features, masks, labels, class_vocab, val_fraction=0.15, test_fraction=0.15, seed=0):
    """The 7-tuple from one set of sequences: a stratified split (see stratified_split).

    Args:
        features: (N, T, F) per-frame features (e.g. from signcore.video.extract_features).
        masks: (N, T) bool, True for real frames.
        labels: (N,) or (N, 1) integer class ids.
        class_vocab: class names (``class_vocab[label]``).

    Returns:
        A FeatureSplits; labels are (N, 1) int64 as in Keras's recipe.
    """
    features, masks = _check_features((features, masks), "(features, masks)")
    vocab = _check_vocab(class_vocab)
    labels = _check_labels(labels, features.shape[0], len(vocab), "labels").reshape(-1, 1)
    out = []
    for idx in stratified_split(labels[:, 0], val_fraction, test_fraction, seed):
        out += [(features[idx], masks[idx]), labels[idx]]
    return FeatureSplits(*out, vocab)


_EMPTY_FRAMES = ("mask", "drop", "keep")


def wlasl_landmarks_to_pickle(npz_path, out_path=None, max_seq_length=50, val_fraction=0.15, test_fraction=0.15,
                              seed=0, words=None, empty_frames="mask"):
    """Turn ``wlasl50_landmarks.npz`` (MediaPipe landmarks of WLASL clips) into the feature 7-tuple.

    The file holds ``features`` (clips, frames, 170) float32, ``labels`` (clips,) ids into
    ``glosses``, and ``glosses``. Every clip is one sample; clips are split train / validation /
    test stratified by word (stratified_split). Frames are padded with zeros up to
    ``max_seq_length`` (mask False), or cut to their first ``max_seq_length``.

    Frames whose features are all zero are those where no person was detected. By default they
    stay in place but are masked (``empty_frames="mask"``), so a masked RNN carries its state over
    them; ``"drop"`` removes them and moves the later frames forward; ``"keep"`` treats them as
    ordinary frames.

    Args:
        npz_path: the .npz file.
        out_path: where to write the pickle (atomically); None returns the splits without writing.
        max_seq_length: frames per sample (MAX_SEQ_LENGTH), 50 in the reference experiment.
        val_fraction, test_fraction: share of each word's clips for validation and test.
        seed: seed of the split.
        words: the glosses to keep (e.g. the reference experiment's words); None keeps all. Labels
            are renumbered 0..len-1 in the file's gloss order, which is class_vocab's order.
        empty_frames: "mask" (default), "drop" or "keep" (see above).

    Returns:
        FeatureSplits, with labels (N, 1) int64 and class_vocab the glosses.
    """
    if empty_frames not in _EMPTY_FRAMES:
        raise ValueError(f"empty_frames must be one of {_EMPTY_FRAMES}. Received: empty_frames={empty_frames!r}")
    max_seq_length = _positive_int(max_seq_length, "max_seq_length")
    npz_path = os.fspath(npz_path)
    with np.load(npz_path, allow_pickle=False) as d:
        missing = [k for k in ("features", "labels", "glosses") if k not in d.files]
        if missing:
            raise ValueError(f"'{npz_path}' lacks the arrays {missing}. Received arrays: {d.files}")
        features = np.asarray(d["features"], dtype=np.float32)
        labels = np.asarray(d["labels"])
        glosses = [str(g) for g in d["glosses"]]
    if features.ndim != 3 or labels.shape != (features.shape[0],) or labels.dtype.kind not in "iu":
        raise ValueError(f"'{npz_path}': expected features (clips, frames, features) and one integer label per "
                         f"clip. Received: features {features.shape}, labels {labels.shape} {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(glosses)):
        raise ValueError(f"'{npz_path}': labels must index the {len(glosses)} glosses. Received: "
                         f"{labels.min()}..{labels.max()}")
    if words is not None:
        words = [words] if isinstance(words, str) else [str(w) for w in words]
        unknown = [w for w in words if w not in glosses]
        if unknown:
            raise ValueError(f"words {unknown} are not in '{npz_path}'. Available: {glosses}")
        keep_ids = [i for i, g in enumerate(glosses) if g in set(words)]
        remap = np.full(len(glosses), -1, np.int64)
        remap[keep_ids] = np.arange(len(keep_ids))
        rows = np.flatnonzero(np.isin(labels, keep_ids))
        features, labels = features[rows], remap[labels[rows]]
        glosses = [glosses[i] for i in keep_ids]

    real = np.ones(features.shape[:2], bool) if empty_frames == "keep" else np.any(features != 0, axis=2)
    if empty_frames == "drop":
        seqs = [clip[ok] for clip, ok in zip(features, real)]
        padded, masks = pad_sequences_with_masks(seqs, max_seq_length, features.shape[2])
    else:
        t = min(features.shape[1], max_seq_length)
        padded = np.zeros((features.shape[0], max_seq_length, features.shape[2]), np.float32)
        masks = np.zeros((features.shape[0], max_seq_length), bool)
        padded[:, :t] = features[:, :t]
        masks[:, :t] = real[:, :t]
    splits = make_feature_splits(padded, masks, labels, glosses, val_fraction, test_fraction, seed)
    if out_path is not None:
        save_feature_pickle(out_path, *splits)
    return splits
