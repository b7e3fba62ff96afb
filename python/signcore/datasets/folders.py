"""Image-folder datasets as NumPy arrays: ``<directory>/<class name>/<image files>``.

This is the layout of Keras's ``image_dataset_from_directory`` and ``flow_from_directory``; here the
whole dataset is decoded at once (in C++, in parallel, with OpenCV) into a ``uint8`` array, as the
``keras.datasets`` loaders return their data.

Example:
    >>> x, y, class_names = signcore.datasets.load_image_folder("ckplus48", color_mode="grayscale")
    >>> x.shape, x.dtype, class_names[:3]
    ((981, 48, 48, 1), dtype('uint8'), ['anger', 'contempt', 'disgust'])
"""
from __future__ import annotations

import os

import numpy as np

from .. import _core

__all__ = ["IMAGE_EXTENSIONS", "list_image_files", "load_image_folder", "read_images"]

#: File extensions read as images (case-insensitive).
IMAGE_EXTENSIONS = (".bmp", ".jpeg", ".jpg", ".png", ".pgm", ".ppm", ".tif", ".tiff", ".webp")

_COLOR_MODES = ("grayscale", "rgb", "rgba")


def _size_arg(image_size, what="image_size"):
    """(height, width) as two positive ints, or (0, 0) for None (native size)."""
    if image_size is None:
        return 0, 0
    try:
        h, w = image_size
        ok = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in (h, w))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{what} must be None or (height, width) with two positive integers. "
                         f"Received: {what}={image_size!r}")
    return int(h), int(w)


def read_images(paths, color_mode="rgb", image_size=None, interpolation="bilinear", crop_to_aspect_ratio=False):
    """Decode image files into one ``(N, H, W, C)`` uint8 array (in C++, several files at a time).

    Each file is loaded as ``keras.utils.load_img`` loads it (Pillow's colour conversion and
    resampling, EXIF orientation ignored), through signcore's C++ image decoder.

    Args:
        paths: image file paths.
        color_mode: "rgb" (C = 3, RGB order), "grayscale" (C = 1) or "rgba" (C = 4).
        image_size: (height, width) to resize to; None keeps the native size, which must then be the
            same for every image.
        interpolation: Pillow's filter for resizing: "bilinear" (default), "nearest", "bicubic",
            "lanczos", "box" or "hamming".
        crop_to_aspect_ratio: centre-crop to the target aspect ratio before resizing.

    Raises:
        FileNotFoundError / OSError: a file is missing or cannot be decoded (the message names it).
        ValueError: sizes differ and no image_size was given.
    """
    if color_mode not in _COLOR_MODES:
        raise ValueError(f"color_mode must be one of {_COLOR_MODES}. Received: color_mode={color_mode!r}")
    paths = [os.fspath(p) for p in paths]
    h, w = _size_arg(image_size)
    return _core.load_images_u8(paths, color_mode, h, w, str(interpolation), bool(crop_to_aspect_ratio))


def list_image_files(directory, class_names=None, extensions=IMAGE_EXTENSIONS, follow_links=False):
    """The image files of a class-per-folder dataset, in Keras's order.

    Classes are the sub-folders of ``directory`` in alphanumeric order (or ``class_names``, in the
    order given); the files of a class are found recursively and sorted by their path relative to
    the class folder, as keras.utils.image_dataset_from_directory does.

    Returns:
        (paths, labels, class_names): paths as strings, labels an int32 array of class indices.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"No such directory: '{directory}'")
    found = sorted(d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d)))
    if class_names is None:
        class_names = found
    else:
        class_names = [str(c) for c in class_names]
        missing = [c for c in class_names if c not in found]
        if missing:
            raise ValueError(f"class_names {missing} have no folder in '{directory}'. "
                             f"Received: class_names={class_names}; folders found: {found}")
    if not class_names:
        raise ValueError(f"'{directory}' has no class sub-folders (expected <directory>/<class>/<images>)")
    exts = tuple(e.lower() for e in extensions)
    paths, labels = [], []
    for label, name in enumerate(class_names):
        root = os.path.join(directory, name)
        files = []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=follow_links):
            dirnames.sort()
            for f in filenames:
                if f.lower().endswith(exts):
                    files.append(os.path.relpath(os.path.join(dirpath, f), root))
        for rel in sorted(files):
            paths.append(os.path.join(root, rel))
            labels.append(label)
    return paths, np.asarray(labels, dtype=np.int32), list(class_names)


def load_image_folder(directory, image_size=None, color_mode="rgb", class_names=None, interpolation="bilinear",
                      crop_to_aspect_ratio=False, shuffle=False, seed=None, follow_links=False):
    """Load a class-per-folder image dataset into memory.

    Args:
        directory: folder holding one sub-folder of images per class.
        image_size: (height, width) to resize to; None (default) keeps the native size, which must
            then be the same for every image.
        color_mode: "rgb", "grayscale" or "rgba".
        class_names: the classes to load, in label order; default every sub-folder, sorted.
        interpolation: Pillow's resampling filter, as read_images.
        crop_to_aspect_ratio: centre-crop to the target aspect ratio before resizing.
        shuffle: shuffle the samples (with ``seed``) instead of keeping class-then-file order.
        seed: seed for the shuffle.
        follow_links: follow symbolic links to sub-folders.

    Returns:
        (x, y, class_names): x ``(N, H, W, C)`` uint8, y ``(N,)`` int32 class indices, and the class
        names (``class_names[y[i]]`` is the folder of sample i).
    """
    paths, labels, names = list_image_files(directory, class_names, follow_links=follow_links)
    if not paths:
        raise ValueError(f"No image files ({', '.join(IMAGE_EXTENSIONS)}) found under '{os.fspath(directory)}'")
    x = read_images(paths, color_mode, image_size, interpolation, crop_to_aspect_ratio)
    if shuffle:
        order = np.random.default_rng(seed).permutation(len(paths))
        x, labels = x[order], labels[order]
    return x, labels, names
