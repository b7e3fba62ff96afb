"""CIFAR-10: 60,000 32x32 colour images in 10 classes, as ``keras.datasets.cifar10``.

``load_data`` reads any of the three layouts the dataset is distributed in:

* the official Python version, ``cifar-10-batches-py/`` (pickled batches ``data_batch_1`` ...
  ``data_batch_5`` and ``test_batch``);
* the official binary version, ``cifar-10-batches-bin/`` (``data_batch_1.bin`` ... and
  ``test_batch.bin``; records of 1 label byte + 3,072 pixel bytes: 1,024 red, 1,024 green, 1,024
  blue, each row-major). Batches may hold any number of records, and a batch file may carry a
  suffix (``data_batch_1_first1017.bin``);
* image folders, ``train/<class>/*`` and ``test/<class>/*`` with the ten class names below; the
  samples come class by class (the original interleaving is not recorded in that layout).

Where: ``path`` when given (a folder or an archive of any layout), else ``$SIGNCORE_DATA``, else the
cache (``$SIGNCORE_CACHE`` or ``~/.cache/signcore``, under ``datasets``); when none has it and
``download`` is True, the canonical archive is downloaded from ``ORIGIN`` into the cache, its md5 is
checked against ``FILE_HASH`` and it is unpacked there, once.

The pickled batches are read with a restricted unpickler that only rebuilds dicts, lists, bytes,
numbers and NumPy arrays, so a tampered file cannot run code.
"""
from __future__ import annotations

import os
import re

import numpy as np

from . import cache
from .folders import list_image_files, read_images

__all__ = ["CLASS_NAMES", "FILE_HASH", "ORIGIN", "load_batch", "load_data"]

#: Where the official Python version of the dataset is downloaded from (only when not found locally).
ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
#: md5 of that archive.
FILE_HASH = "c58f30108f718f92721af3b95e74349a"
#: Name of the archive in the cache.
FNAME = "cifar-10-python.tar.gz"
#: Label i is CLASS_NAMES[i].
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

_RECORD = 1 + 3 * 32 * 32
_ARCHIVES = ("cifar-10-python.tar.gz", "cifar-10-binary.tar.gz")
_FOLDER_NAMES = ("cifar-10-batches-py", "cifar-10-batches-bin", "cifar10", "cifar-10", "cifar10_jpg")


def load_data(path=None, download=True):
    """Load CIFAR-10 (as keras.datasets.cifar10.load_data).

    Args:
        path: a folder holding one of the layouts (or a parent of one), or an archive of one;
            None searches ``$SIGNCORE_DATA`` and the cache, then downloads.
        download: whether to download the official archive when no local copy is found.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: x uint8 of shape (N, 32, 32, 3), channels-last
        RGB; y uint8 of shape (N, 1) holding class ids 0-9 (see CLASS_NAMES).

    Raises:
        FileNotFoundError: nothing found locally and ``download`` is False.
        OSError: the download failed or its checksum is wrong.
        ValueError: a file does not have the CIFAR-10 format (the message names it).
    """
    if path is not None:
        found = _locate(os.fspath(path), depth=2)
        if found is None:
            raise ValueError(f"No CIFAR-10 data found in '{os.fspath(path)}'. Expected the Python batches "
                             f"(data_batch_1..5, test_batch), the binary batches (data_batch_1.bin.., "
                             f"test_batch.bin), train/ and test/ image folders named {list(CLASS_NAMES)}, "
                             f"or an archive of one of these.")
        return _read(*found)
    searched = []
    for root in (cache.data_dir(), cache.cache_dir("datasets")):
        if root and os.path.isdir(root):
            searched.append(root)
            found = _locate(root, depth=2)
            if found is not None:
                return _read(*found)
    if not download:
        raise FileNotFoundError(f"CIFAR-10 was not found in {searched or 'any local folder'} and download=False. "
                                f"Set $SIGNCORE_DATA to a folder holding it or pass path=...")
    folder = cache.get_file(FNAME, ORIGIN, file_hash=FILE_HASH, hash_algorithm="md5", extract=True)
    found = _locate(folder, depth=2)
    if found is None:
        raise ValueError(f"The archive downloaded from {ORIGIN} (unpacked in '{folder}') does not hold "
                         f"the CIFAR-10 Python batches")
    return _read(*found)


# ------------------------------------------------------------------------------------------------
# Finding a layout

def _python_files(folder):
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    paths = [os.path.join(folder, n) for n in names]
    return paths if all(os.path.isfile(p) for p in paths) else None


def _binary_file(folder, stem, entries):
    exact = stem + ".bin"
    if exact in entries:
        return os.path.join(folder, exact)
    pattern = re.compile(re.escape(stem) + r"_[^/]*\.bin$")
    matches = sorted(e for e in entries if pattern.match(e))
    return os.path.join(folder, matches[0]) if len(matches) == 1 else None


def _binary_files(folder):
    try:
        entries = set(os.listdir(folder))
    except OSError:
        return None
    paths = [_binary_file(folder, f"data_batch_{i}", entries) for i in range(1, 6)]
    paths.append(_binary_file(folder, "test_batch", entries))
    return paths if all(p is not None for p in paths) else None


def _image_folders(folder):
    train, test = os.path.join(folder, "train"), os.path.join(folder, "test")
    if not (os.path.isdir(train) and os.path.isdir(test)):
        return None
    for split in (train, test):
        if not set(CLASS_NAMES) <= set(os.listdir(split)):
            return None
    return [train, test]


def _locate(path, depth):
    """(layout, paths) for the first layout found at `path` or below it (breadth first)."""
    if os.path.isfile(path) and cache.is_archive(path):
        return _locate(cache.extract_archive(path), depth)
    if not os.path.isdir(path):
        if os.path.exists(path):
            return None
        raise FileNotFoundError(f"No such file or directory: '{path}'")
    for layout, finder in (("python", _python_files), ("binary", _binary_files), ("folders", _image_folders)):
        files = finder(path)
        if files is not None:
            return layout, files
    if depth == 0:
        return None
    entries = sorted(os.listdir(path))
    preferred = [e for e in _FOLDER_NAMES if e in entries] + [e for e in entries if e not in _FOLDER_NAMES]
    for e in preferred:
        sub = os.path.join(path, e)
        if os.path.isdir(sub):
            found = _locate(sub, depth - 1)
            if found is not None:
                return found
    for e in _ARCHIVES:  # an official archive lying in a data folder
        if e in entries:
            return _locate(os.path.join(path, e), depth)
    return None


# ------------------------------------------------------------------------------------------------
# Reading

def _read(layout, files):
    if layout == "folders":
        parts = [_read_folder(f) for f in files]
    else:
        reader = load_batch if layout == "python" else _read_binary
        batches = [reader(f) for f in files]
        train = (np.concatenate([b[0] for b in batches[:5]]), np.concatenate([b[1] for b in batches[:5]]))
        parts = [train, batches[5]]
    return tuple((x, y.reshape(-1, 1)) for x, y in parts)


def load_batch(fpath):
    """Read one pickled batch of the Python version: (x (N, 32, 32, 3) uint8, y (N,) uint8)."""
    fpath = os.fspath(fpath)
    with open(fpath, "rb") as f:
        try:
            d = cache.restricted_load(f, encoding="bytes")
        except Exception as e:
            raise ValueError(f"'{fpath}' is not a CIFAR-10 Python batch: {e}") from e
    if not isinstance(d, dict):
        raise ValueError(f"'{fpath}' is not a CIFAR-10 Python batch: it holds a {type(d).__name__}, not a dict")
    d = {(k.decode("utf8") if isinstance(k, bytes) else k): v for k, v in d.items()}
    if "data" not in d or "labels" not in d:
        raise ValueError(f"'{fpath}' is not a CIFAR-10 Python batch: keys {sorted(map(str, d))} lack 'data'/'labels'")
    data = np.asarray(d["data"])
    labels = np.asarray(d["labels"])
    if data.ndim != 2 or data.shape[1] != _RECORD - 1 or labels.shape != (data.shape[0],):
        raise ValueError(f"'{fpath}': expected data of shape (N, 3072) and N labels. Received: data "
                         f"{data.shape}, labels {labels.shape}")
    return _images(data, fpath), _labels(labels, fpath)


def _read_binary(fpath):
    raw = np.fromfile(fpath, dtype=np.uint8)
    if raw.size == 0 or raw.size % _RECORD:
        raise ValueError(f"'{fpath}' is not a CIFAR-10 binary batch: its size, {raw.size} bytes, is not a "
                         f"multiple of the {_RECORD}-byte record")
    records = raw.reshape(-1, _RECORD)
    return _images(records[:, 1:], fpath), _labels(records[:, 0], fpath)


def _images(rows, fpath):
    # rows: (N, 3072) as R plane, G plane, B plane -> (N, 32, 32, 3)
    return np.ascontiguousarray(np.asarray(rows, dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def _labels(labels, fpath):
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"'{fpath}' has labels outside 0-9. Received: min {labels.min()}, max {labels.max()}")
    return labels.astype(np.uint8)


def _read_folder(split):
    paths, labels, _ = list_image_files(split, class_names=CLASS_NAMES)
    if not paths:
        raise ValueError(f"No images found in the CIFAR-10 folder '{split}'")
    x = read_images(paths, "rgb", None)
    if x.shape[1:] != (32, 32, 3):
        raise ValueError(f"CIFAR-10 images are 32x32. Received: {x.shape[1]}x{x.shape[2]} images in '{split}'")
    return x, labels.astype(np.uint8)
