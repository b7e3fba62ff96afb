"""Utilities: reproducibility and small helpers, as in keras.utils."""
from __future__ import annotations

import random as _random

import numpy as np

from . import _core

__all__ = ["Sequence", "PyDataset", "set_random_seed", "to_categorical"]


class Sequence:
    """Base class for batch datasets, as keras.utils.Sequence / PyDataset.

    Implement `__len__` (batches per epoch) and `__getitem__(index)` returning `(x, y)` (x an array or
    a list of arrays, one per model input); `on_epoch_end` runs after every epoch. Pass the object
    to `fit`, `evaluate` or `predict` in place of arrays.
    """

    def __len__(self):
        raise NotImplementedError

    def __getitem__(self, index):
        raise NotImplementedError

    def on_epoch_end(self):
        pass


PyDataset = Sequence


def set_random_seed(seed: int) -> None:
    """Seed signcore's initialisers, shuffling and dropout, and Python's and NumPy's generators.

    The same seed and data give bit-identical weights after `fit`, run after run (at a fixed
    thread count).

    Args:
        seed: a non-negative integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer. Received: seed={seed!r}")
    _core.set_random_seed(int(seed))
    _random.seed(int(seed))
    np.random.seed(int(seed) % (2**32))


def to_categorical(x, num_classes=None, dtype="float32"):
    """One-hot encode integer class labels, as keras.utils.to_categorical."""
    y = np.asarray(x)
    if y.dtype.kind not in "iuf" or (y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0)):
        raise ValueError(f"to_categorical needs integer class labels. Received dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y.reshape(y.shape[:-1])
    if y.size and y.min() < 0:
        raise ValueError(f"to_categorical needs non-negative labels. Received: {y.min()}")
    n = int(num_classes) if num_classes is not None else (int(y.max()) + 1 if y.size else 0)
    if y.size and y.max() >= n:
        raise ValueError(f"label {int(y.max())} is out of range for num_classes={n}")
    out = np.zeros(y.shape + (n,), dtype=dtype)
    np.put_along_axis(out, y[..., None], 1, axis=-1)
    return out


# Image files and folders (keras.utils.load_img, img_to_array, array_to_img, save_img,
# image_dataset_from_directory); implemented in signcore.preprocessing.image.
from .preprocessing.image import (array_to_img, image_dataset_from_directory, img_to_array,  # noqa: E402
                                  load_img, save_img)

__all__ += ["array_to_img", "image_dataset_from_directory", "img_to_array", "load_img", "save_img"]
