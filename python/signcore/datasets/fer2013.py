"""FER-2013 facial expressions: 35,887 48x48 greyscale faces in 7 emotions.

Two layouts are read:

* the Kaggle CSV, ``fer2013.csv`` (columns ``emotion``, ``pixels``, ``Usage``; the pixels are 2,304
  space-separated values). Rows whose Usage is "Training" form the training set; "PublicTest" and
  "PrivateTest" together form the test set. A CSV without a Usage column is all training data;
* image folders, ``train/<emotion>/*`` and ``test/<emotion>/*`` (as on Kaggle's image version).

Labels are FER-2013's own ids in both layouts (so that the two agree): 0 angry, 1 disgust, 2 fear,
3 happy, 4 sad, 5 surprise, 6 neutral; folder names are matched case-insensitively, with the usual
variants ("anger", "sadness", "surprised", ...). Note this is *not* the alphabetical order of the
folders that ``load_image_folder`` would give.

There is no download: the dataset is distributed through Kaggle, which needs an account. Put the
CSV or the folders under ``$SIGNCORE_DATA/fer2013`` (or the cache's ``datasets/fer2013``), or pass
``path``.
"""
from __future__ import annotations

import csv
import os

import numpy as np

from . import cache
from .folders import list_image_files, read_images

__all__ = ["CLASS_NAMES", "load_csv", "load_data"]

#: Label i is CLASS_NAMES[i] (FER-2013's ids).
CLASS_NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

_ALIASES = {
    "angry": 0, "anger": 0,
    "disgust": 1, "disgusted": 1,
    "fear": 2, "fearful": 2, "scared": 2,
    "happy": 3, "happiness": 3,
    "sad": 4, "sadness": 4,
    "surprise": 5, "surprised": 5,
    "neutral": 6,
}
_TEST_USAGES = ("PublicTest", "PrivateTest")
_SIDE = 48


def load_data(path=None):
    """Load FER-2013.

    Args:
        path: the CSV file, a folder with ``train/`` and ``test/`` emotion folders, a folder holding
            ``fer2013.csv``, or an archive of these; None searches ``$SIGNCORE_DATA`` and the cache.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: x uint8 (N, 48, 48), y uint8 (N,) with ids into
        CLASS_NAMES.
    """
    if path is not None:
        found = _locate(os.fspath(path), depth=2)
        if found is None:
            raise ValueError(f"No FER-2013 data found in '{os.fspath(path)}': expected fer2013.csv or train/ "
                             f"and test/ folders named after the emotions {list(CLASS_NAMES)}")
        return _read(found)
    searched = []
    for root in (cache.data_dir(), cache.cache_dir("datasets")):
        if root and os.path.isdir(root):
            for name in ("fer2013", "fer2013_jpg", "FER2013", "fer-2013"):
                candidate = os.path.join(root, name)
                if os.path.exists(candidate):
                    searched.append(candidate)
                    found = _locate(candidate, depth=2)
                    if found is not None:
                        return _read(found)
            csv_path = os.path.join(root, "fer2013.csv")
            if os.path.isfile(csv_path):
                return _read(("csv", csv_path))
    raise FileNotFoundError(
        "FER-2013 was not found (searched $SIGNCORE_DATA and the cache for fer2013/ or fer2013.csv"
        + (f": {searched}" if searched else "") + "). It is distributed through Kaggle, which needs an "
        "account: download it there and pass path=..., or put it in $SIGNCORE_DATA/fer2013.")


def load_csv(path):
    """Read the Kaggle CSV: (x (N, 48, 48) uint8, y (N,) uint8, usage (N,) str array).

    Rows keep the file's order. Without a Usage column every row is "Training". A CSV without the
    emotion column (Kaggle's unlabelled test.csv) is refused with a clear error.
    """
    path = os.fspath(path)
    with open(path, newline="") as f:
        reader = csv.reader(f)
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            raise ValueError(f"'{path}' is empty") from None
        if "pixels" not in header or "emotion" not in header:
            raise ValueError(f"'{path}' is not the FER-2013 CSV: expected columns 'emotion' and 'pixels'. "
                             f"Received: {header}")
        ie, ip = header.index("emotion"), header.index("pixels")
        iu = header.index("usage") if "usage" in header else None
        images, labels, usages = [], [], []
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                label = int(row[ie])
                pixels = np.fromstring(row[ip], dtype=np.uint8, sep=" ")  # text mode: not deprecated
            except (ValueError, IndexError) as e:
                raise ValueError(f"'{path}', line {line}: cannot read the emotion and pixels ({e})") from None
            if pixels.size != _SIDE * _SIDE or not 0 <= label < len(CLASS_NAMES):
                raise ValueError(f"'{path}', line {line}: expected an emotion 0-6 and {_SIDE * _SIDE} pixel values. "
                                 f"Received: emotion {row[ie]!r} and {pixels.size} values")
            images.append(pixels)
            labels.append(label)
            usages.append(row[iu].strip() if iu is not None else "Training")
    x = np.stack(images).reshape(-1, _SIDE, _SIDE) if images else np.zeros((0, _SIDE, _SIDE), np.uint8)
    return x, np.asarray(labels, dtype=np.uint8), np.asarray(usages)


def _emotion_folders(split):
    names = [d for d in sorted(os.listdir(split)) if os.path.isdir(os.path.join(split, d))]
    unknown = [d for d in names if d.lower() not in _ALIASES]
    if unknown or not names:
        return None
    return names


def _locate(path, depth):
    if os.path.isfile(path):
        if cache.is_archive(path):
            return _locate(cache.extract_archive(path), depth)
        return ("csv", path) if path.lower().endswith(".csv") else None
    if not os.path.isdir(path):
        raise FileNotFoundError(f"No such file or directory: '{path}'")
    train, test = os.path.join(path, "train"), os.path.join(path, "test")
    if os.path.isdir(train) and os.path.isdir(test) and _emotion_folders(train) and _emotion_folders(test):
        return ("folders", (train, test))
    csv_path = os.path.join(path, "fer2013.csv")
    if os.path.isfile(csv_path):
        return ("csv", csv_path)
    if depth > 0:
        for e in sorted(os.listdir(path)):
            sub = os.path.join(path, e)
            if os.path.isdir(sub):
                found = _locate(sub, depth - 1)
                if found is not None:
                    return found
    return None


def _read_split(split):
    names = _emotion_folders(split)
    paths, labels, _ = list_image_files(split, class_names=names)
    ids = np.asarray([_ALIASES[n.lower()] for n in names], dtype=np.uint8)
    x = read_images(paths, "grayscale", None) if paths else np.zeros((0, _SIDE, _SIDE, 1), np.uint8)
    if x.shape[1:3] != (_SIDE, _SIDE):
        raise ValueError(f"FER-2013 images are 48x48. Received: {x.shape[1]}x{x.shape[2]} images in '{split}'")
    return x[..., 0], ids[labels]


def _read(found):
    kind, where = found
    if kind == "folders":
        return tuple(_read_split(split) for split in where)
    x, y, usage = load_csv(where)
    train = usage == "Training"
    test = np.isin(usage, _TEST_USAGES)
    return (x[train], y[train]), (x[test], y[test])
