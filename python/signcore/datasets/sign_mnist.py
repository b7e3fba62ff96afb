"""Sign Language MNIST: 28x28 greyscale images of the 24 static ASL letters (no J or Z, which move).

Two layouts are read, for each split:

* Kaggle's CSV (``sign_mnist_train.csv`` / ``sign_mnist_test.csv``: a ``label`` column then
  ``pixel1`` ... ``pixel784``);
* image folders, ``<split folder>/<Letter>/*.png`` (e.g. ``sign_mnist_test/A/A(1003).png``). When
  every file is named ``<Letter>(<row>).<ext>``, the samples are returned in CSV row order;
  otherwise letter by letter, files sorted by name.

Labels follow the CSV: the letter's index in the alphabet (A=0 ... Y=24; 9 (J) and 25 (Z) never
occur), so a model needs 25 outputs. With ``contiguous_labels=True`` they are renumbered 0-23 in the
order of ``LETTERS``.
"""
from __future__ import annotations

import os
import re
import string

import numpy as np

from . import cache
from .folders import IMAGE_EXTENSIONS, read_images

__all__ = ["LETTERS", "load_data", "load_split"]

#: The 24 letters present, in label order when contiguous_labels=True.
LETTERS = "ABCDEFGHIKLMNOPQRSTUVWXY"
_ALPHABET = string.ascii_uppercase
_SIDE = 28
_ROW_NAME = re.compile(r"^([A-Za-z])\((\d+)\)\.[A-Za-z]+$")


def load_data(path=None, contiguous_labels=False):
    """Load both splits.

    Args:
        path: a folder holding ``sign_mnist_train`` and ``sign_mnist_test`` (each a CSV file, or a
            folder of letter folders, or a folder holding the CSV, as Kaggle's download), or an
            archive of it; None searches ``$SIGNCORE_DATA`` (and its ``sign_mnist`` folder) and the
            cache.
        contiguous_labels: renumber labels 0-23 (LETTERS order) instead of alphabet indices.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: x uint8 (N, 28, 28), y uint8 (N,).
    """
    if path is not None:
        roots = [os.fspath(path)]
    else:
        roots = []
        for root in (cache.data_dir(), cache.cache_dir("datasets")):
            if root:
                roots += [os.path.join(root, "sign_mnist"), os.path.join(root, "sign-language-mnist"), root]
    for root in roots:
        if os.path.isfile(root) and cache.is_archive(root):
            root = cache.extract_archive(root)
        if not os.path.isdir(root):
            if path is not None:
                raise FileNotFoundError(f"No such directory: '{root}'")
            continue
        train, test = _find_split(root, "train"), _find_split(root, "test")
        if train and test:
            return (load_split(train, contiguous_labels), load_split(test, contiguous_labels))
        if path is not None:
            have = [s for s, p in (("sign_mnist_train", train), ("sign_mnist_test", test)) if p]
            raise FileNotFoundError(
                f"'{root}' must hold sign_mnist_train and sign_mnist_test (CSV files or letter folders). "
                f"Found: {have or 'neither'}. To read a single split use sign_mnist.load_split(path).")
    raise FileNotFoundError("Sign Language MNIST was not found in $SIGNCORE_DATA or the cache. Download it from "
                            "Kaggle (datamunge/sign-language-mnist) and pass path=..., or use load_split(path) "
                            "for a single CSV or image folder.")


def _find_split(root, split):
    base = f"sign_mnist_{split}"
    for candidate in (os.path.join(root, base + ".csv"), os.path.join(root, base, base + ".csv"),
                      os.path.join(root, base)):
        if os.path.isfile(candidate):
            return candidate
        if os.path.isdir(candidate) and _letter_folders(candidate):
            return candidate
    return None


def _letter_folders(folder):
    names = [d for d in sorted(os.listdir(folder)) if os.path.isdir(os.path.join(folder, d))]
    return names if names and all(len(d) == 1 and d.upper() in _ALPHABET for d in names) else None


def load_split(path, contiguous_labels=False):
    """Load one split from a CSV file or a folder of letter folders: (x (N, 28, 28) uint8, y (N,) uint8)."""
    path = os.fspath(path)
    if os.path.isfile(path):
        x, y = _read_csv(path)
    elif os.path.isdir(path):
        x, y = _read_folders(path)
    else:
        raise FileNotFoundError(f"No such file or directory: '{path}'")
    if contiguous_labels:
        lut = np.full(26, 255, np.uint8)
        for i, letter in enumerate(LETTERS):
            lut[_ALPHABET.index(letter)] = i
        y = lut[y]
    return x, y


def _read_csv(path):
    with open(path) as f:
        header = f.readline().strip().split(",")
    if not header or header[0].strip().lower() != "label" or len(header) != 1 + _SIDE * _SIDE:
        raise ValueError(f"'{path}' is not a Sign Language MNIST CSV: expected a header 'label,pixel1,...,pixel784'. "
                         f"Received: {len(header)} columns starting {header[:3]}")
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    if data.shape[1] != 1 + _SIDE * _SIDE:
        raise ValueError(f"'{path}': expected {1 + _SIDE * _SIDE} values per row. Received: {data.shape[1]}")
    labels, pixels = data[:, 0], data[:, 1:]
    if data.size and (labels.min() < 0 or labels.max() > 25 or pixels.min() < 0 or pixels.max() > 255):
        raise ValueError(f"'{path}': labels must be 0-25 and pixels 0-255. Received: labels {labels.min()}-"
                         f"{labels.max()}, pixels {pixels.min()}-{pixels.max()}")
    return pixels.astype(np.uint8).reshape(-1, _SIDE, _SIDE), labels.astype(np.uint8)


def _read_folders(folder):
    letters = _letter_folders(folder)
    if not letters:
        raise ValueError(f"'{folder}' must hold one folder per letter (A, B, ...). "
                         f"Received: {sorted(os.listdir(folder))[:10]}")
    exts = tuple(IMAGE_EXTENSIONS)
    entries = []  # (row or None, letter index, file name, path)
    for d in letters:
        for name in sorted(os.listdir(os.path.join(folder, d))):
            if name.lower().endswith(exts):
                m = _ROW_NAME.match(name)
                row = int(m.group(2)) if m and m.group(1).upper() == d.upper() else None
                entries.append((row, _ALPHABET.index(d.upper()), name, os.path.join(folder, d, name)))
    if not entries:
        raise ValueError(f"No images found under '{folder}'")
    if all(e[0] is not None for e in entries):
        entries.sort(key=lambda e: e[0])  # the original CSV order
    x = read_images([e[3] for e in entries], "grayscale", None)
    return x[..., 0], np.asarray([e[1] for e in entries], dtype=np.uint8)
