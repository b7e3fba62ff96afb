"""Keras's image preprocessing (``keras.preprocessing.image``), with the work done in C++.

``ImageDataGenerator`` takes Keras's arguments and defaults; ``flow`` and ``flow_from_directory``
return iterators that ``Model.fit``, ``evaluate`` and ``predict`` consume directly: worker threads
decode, resize, augment and standardize the next batches while the model trains. The iterators are
also Python sequences (``len(it)``, ``it[i]``, ``next(it)``) yielding ``(x, y)`` batches, ``x``
float32 ``(N, H, W, C)``.

What matches Keras exactly (see ``cpp/include/signcore/data/augment.hpp`` and ``image.hpp``):
the random parameters (NumPy's legacy generator, reseeded with ``seed + batches seen`` as Keras
does, so the same seed gives the same shuffles and transforms), the affine warp (scipy's order-1
sampling and fill modes), the brightness and channel shifts, ``standardize``, Pillow's colour
conversion and resizing in ``load_img``, the file listing, class indices and validation split.
Pixels decoded by OpenCV can differ from Pillow's by a level or two for some JPEGs.

Differences: ``data_format`` is channels-last only, ``dtype`` float32 only, ``zca_whitening``,
``sample_weight`` and ``save_to_dir`` are not supported (they raise). The iterators take two extra
keyword arguments: ``workers`` (threads preparing batches; default ``signcore.get_num_threads()``,
0 = prepare batches on the calling thread) and ``max_queue_size`` (batches prepared ahead, 4).
A ``preprocessing_function`` is Python, so it runs on the thread that asks for the batch.
"""
from __future__ import annotations

import math
import numbers
import os
import warnings

import numpy as np

from .. import _core

__all__ = [
    "ImageDataGenerator", "DirectoryIterator", "NumpyArrayIterator", "load_img", "img_to_array",
    "array_to_img", "save_img", "image_dataset_from_directory",
]

_FLOW_FORMATS = ("png", "jpg", "jpeg", "bmp", "ppm", "tif", "tiff")  # Keras: suffixes, no dot
_DATASET_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")
_MAX_NAMED = 10  # file names listed in one warning


def _default_workers(workers):
    if workers is None:
        return _core.get_num_threads()
    if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 0:
        raise ValueError(f"workers must be a non-negative integer. Received: workers={workers!r}")
    return int(workers)


def _positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{what} must be a positive integer. Received: {what}={value!r}")
    return int(value)


def _check_seed(seed):
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer between 0 and 2**32 - 1. Received: seed={seed!r}")
    return int(seed)


def _fallback_seed():
    # Without a seed Keras draws from NumPy's global generator; drawing our starting seed from it
    # keeps np.random.seed / signcore.utils.set_random_seed in control.
    return int(np.random.randint(0, 2**32, dtype=np.int64))


def _check_channels_last(data_format):
    if data_format not in (None, "channels_last"):
        raise ValueError("signcore's image pipeline is channels-last only: data_format must be None or "
                         f"'channels_last'. Received: data_format={data_format!r}")


def _check_dtype(dtype):
    if dtype is not None and np.dtype(dtype) != np.float32:
        raise ValueError(f"signcore's image pipeline produces float32 only. Received: dtype={dtype!r}")


def _target_size(size, what="target_size"):
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = (size, size)
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise ValueError(f"{what} must be a tuple of 2 integers (height, width). Received: {what}={size!r}")
    return (_positive_int(size[0], what), _positive_int(size[1], what))


def _shift_spec(r, what):
    """Keras's reading of width_shift_range / height_shift_range, as a dict for the C++ config."""
    if isinstance(r, (list, tuple, np.ndarray)):
        values = np.asarray(r, dtype=np.float64).ravel()
        if values.size == 0:
            return None
        return {"choices": [float(v) for v in values], "fraction": bool(np.max(values) < 1)}
    if isinstance(r, bool) or not isinstance(r, numbers.Number):
        raise ValueError(f"{what} must be a float, an int or a list of numbers. Received: {what}={r!r}")
    if not r:
        return None
    if isinstance(r, numbers.Integral) and r > 0:
        # np.random.choice(n): a pixel count in 0..n-1, then a random sign.
        return {"choices": [float(v) for v in range(int(r))], "fraction": False}
    return {"range": float(r), "fraction": bool(r < 1)}


class ImageDataGenerator:
    """Generate batches of image data with real-time data augmentation, as Keras's.

    Args:
        featurewise_center: subtract the dataset mean (per channel, from ``fit``).
        samplewise_center: subtract each image's mean.
        featurewise_std_normalization: divide by the dataset std (per channel, from ``fit``).
        samplewise_std_normalization: divide each image by its std (+ 1e-6).
        zca_whitening: not supported (raises NotImplementedError when True).
        zca_epsilon: accepted for compatibility.
        rotation_range: degrees; the angle is uniform in ``(-rotation_range, rotation_range)``.
        width_shift_range, height_shift_range: float (a fraction of the size when < 1, pixels
            otherwise), int (pixels from ``0..n-1`` with a random sign) or a list of values.
        brightness_range: ``(low, high)``: a factor uniform in that range, applied as PIL's
            ``ImageEnhance.Brightness`` on the 8-bit image.
        shear_range: shear angle in degrees, uniform in ``(-shear_range, shear_range)``.
        zoom_range: float ``z`` (zoom uniform in ``[1 - z, 1 + z]``, drawn separately for x and
            y) or ``[low, high]``.
        channel_shift_range: the same random offset added to every channel, clipped to the image's
            range.
        fill_mode: ``"constant"``, ``"nearest"`` (default), ``"reflect"`` or ``"wrap"``, as scipy.
        cval: value outside the image when ``fill_mode="constant"``.
        horizontal_flip, vertical_flip: flip with probability 0.5.
        rescale: multiply the data by this value after the transforms (None or 0: no rescaling).
        preprocessing_function: called on each image after its transform, before the rest of
            ``standardize``; it takes and returns a rank-3 array of the same shape.
        data_format: ``None`` or ``"channels_last"``.
        validation_split: fraction reserved for ``subset="validation"`` (strictly in (0, 1)).
        interpolation_order: 1 (bilinear, default) or 0 (nearest) for the warp.
        dtype: ``None`` or ``"float32"``.
    """

    def __init__(self, featurewise_center=False, samplewise_center=False, featurewise_std_normalization=False,
                 samplewise_std_normalization=False, zca_whitening=False, zca_epsilon=1e-6, rotation_range=0,
                 width_shift_range=0.0, height_shift_range=0.0, brightness_range=None, shear_range=0.0,
                 zoom_range=0.0, channel_shift_range=0.0, fill_mode="nearest", cval=0.0, horizontal_flip=False,
                 vertical_flip=False, rescale=None, preprocessing_function=None, data_format=None,
                 validation_split=0.0, interpolation_order=1, dtype=None):
        _check_channels_last(data_format)
        _check_dtype(dtype)
        if zca_whitening:
            raise NotImplementedError("zca_whitening is not supported by signcore's ImageDataGenerator")
        self.featurewise_center = bool(featurewise_center)
        self.samplewise_center = bool(samplewise_center)
        self.featurewise_std_normalization = bool(featurewise_std_normalization)
        self.samplewise_std_normalization = bool(samplewise_std_normalization)
        self.zca_whitening = False
        self.zca_epsilon = zca_epsilon
        self.rotation_range = rotation_range
        self.width_shift_range = width_shift_range
        self.height_shift_range = height_shift_range
        self.shear_range = shear_range
        self.channel_shift_range = channel_shift_range
        self.fill_mode = fill_mode
        self.cval = cval
        self.horizontal_flip = bool(horizontal_flip)
        self.vertical_flip = bool(vertical_flip)
        self.rescale = rescale
        self.preprocessing_function = preprocessing_function
        self.data_format = "channels_last"
        self.dtype = "float32"
        self.interpolation_order = interpolation_order
        self.channel_axis, self.row_axis, self.col_axis = 3, 1, 2
        if validation_split and not 0 < validation_split < 1:
            raise ValueError(f"`validation_split` must be strictly between 0 and 1.  Received: {validation_split}")
        self._validation_split = validation_split
        self.mean = None
        self.std = None
        self.zca_whitening_matrix = None

        if isinstance(zoom_range, (float, int)) and not isinstance(zoom_range, bool):
            self.zoom_range = [1 - zoom_range, 1 + zoom_range]
        elif (isinstance(zoom_range, (list, tuple)) and len(zoom_range) == 2
              and all(isinstance(v, (float, int)) for v in zoom_range)):
            self.zoom_range = [zoom_range[0], zoom_range[1]]
        else:
            raise ValueError(f"`zoom_range` should be a float or a tuple or list of two floats. Received: {zoom_range}")
        if featurewise_std_normalization and not featurewise_center:
            self.featurewise_center = True
            warnings.warn("This ImageDataGenerator specifies `featurewise_std_normalization`, which overrides "
                          "setting of `featurewise_center`.")
        if samplewise_std_normalization and not samplewise_center:
            self.samplewise_center = True
            warnings.warn("This ImageDataGenerator specifies `samplewise_std_normalization`, which overrides "
                          "setting of `samplewise_center`.")
        if brightness_range is not None:
            if not isinstance(brightness_range, (tuple, list)) or len(brightness_range) != 2:
                raise ValueError(f"`brightness_range should be tuple or list of two floats. Received: {brightness_range}")
        self.brightness_range = brightness_range
        if preprocessing_function is not None and not callable(preprocessing_function):
            raise TypeError(f"preprocessing_function must be callable. Received: {preprocessing_function!r}")
        self._core_config()  # validates the rest (fill_mode, interpolation_order, shift ranges)

    # --- configuration handed to C++ ----------------------------------------------------------
    def _core_config(self, image_shape=None):
        """The settings as the C++ pipeline reads them; featurewise statistics broadcast to the
        image shape when one is given."""
        fill_mode = self.fill_mode
        if fill_mode not in ("constant", "nearest", "reflect", "wrap"):
            raise ValueError("fill_mode must be one of 'constant', 'nearest', 'reflect' or 'wrap'. "
                             f"Received: fill_mode={fill_mode!r}")
        if self.interpolation_order not in (0, 1):
            raise ValueError("interpolation_order must be 0 (nearest) or 1 (bilinear). "
                             f"Received: interpolation_order={self.interpolation_order!r}")
        config = {
            "rotation_range": float(self.rotation_range or 0),
            "width_shift": _shift_spec(self.width_shift_range, "width_shift_range"),
            "height_shift": _shift_spec(self.height_shift_range, "height_shift_range"),
            "shear_range": float(self.shear_range or 0),
            "zoom_low": float(self.zoom_range[0]),
            "zoom_high": float(self.zoom_range[1]),
            "channel_shift_range": float(self.channel_shift_range or 0),
            "horizontal_flip": self.horizontal_flip,
            "vertical_flip": self.vertical_flip,
            "brightness_range": None if self.brightness_range is None else [float(v) for v in self.brightness_range],
            "fill_mode": fill_mode,
            "cval": float(self.cval),
            "interpolation_order": int(self.interpolation_order),
            "rescale": float(self.rescale) if self.rescale else 0.0,
            "samplewise_center": self.samplewise_center,
            "samplewise_std_normalization": self.samplewise_std_normalization,
            "featurewise_center": self.featurewise_center,
            "featurewise_std_normalization": self.featurewise_std_normalization,
            "mean": None,
            "std": None,
        }
        for key in ("mean", "std"):
            value = getattr(self, key)
            if value is None:
                continue
            value = np.asarray(value, dtype=np.float32)
            if image_shape is not None:
                try:
                    value = np.broadcast_to(value, tuple(image_shape))
                except ValueError:
                    raise ValueError(f"The generator's {key} of shape {value.shape} does not broadcast to the "
                                     f"image shape {tuple(image_shape)}") from None
            config[key] = np.ascontiguousarray(value).ravel()
        return config

    def _warn_unfitted(self):
        if self.featurewise_center and self.mean is None:
            warnings.warn("This ImageDataGenerator specifies `featurewise_center`, but it hasn't been fit on any "
                          "training data. Fit it first by calling `.fit(numpy_data)`.")
        if self.featurewise_std_normalization and self.std is None:
            warnings.warn("This ImageDataGenerator specifies `featurewise_std_normalization`, but it hasn't been "
                          "fit on any training data. Fit it first by calling `.fit(numpy_data)`.")

    # --- iterators ----------------------------------------------------------------------------
    def flow(self, x, y=None, batch_size=32, shuffle=True, sample_weight=None, seed=None, save_to_dir=None,
             save_prefix="", save_format="png", ignore_class_split=False, subset=None, *, workers=None,
             max_queue_size=4):
        """Batches of augmented images from arrays: a ``NumpyArrayIterator`` yielding ``(x, y)``
        (or ``x`` when ``y`` is None)."""
        return NumpyArrayIterator(x, y, self, batch_size=batch_size, shuffle=shuffle, sample_weight=sample_weight,
                                  seed=seed, save_to_dir=save_to_dir, save_prefix=save_prefix,
                                  save_format=save_format, ignore_class_split=ignore_class_split, subset=subset,
                                  workers=workers, max_queue_size=max_queue_size)

    def flow_from_directory(self, directory, target_size=(256, 256), color_mode="rgb", classes=None,
                            class_mode="categorical", batch_size=32, shuffle=True, seed=None, save_to_dir=None,
                            save_prefix="", save_format="png", follow_links=False, subset=None,
                            interpolation="nearest", keep_aspect_ratio=False, *, workers=None, max_queue_size=4):
        """Batches of augmented images from a folder with one sub-folder per class: a
        ``DirectoryIterator`` (``class_indices``, ``classes``, ``filenames``, ``samples``)."""
        return DirectoryIterator(directory, self, target_size=target_size, color_mode=color_mode, classes=classes,
                                 class_mode=class_mode, batch_size=batch_size, shuffle=shuffle, seed=seed,
                                 save_to_dir=save_to_dir, save_prefix=save_prefix, save_format=save_format,
                                 follow_links=follow_links, subset=subset, interpolation=interpolation,
                                 keep_aspect_ratio=keep_aspect_ratio, workers=workers,
                                 max_queue_size=max_queue_size)

    # --- per-image API --------------------------------------------------------------------------
    def standardize(self, x):
        """Apply the normalisation (preprocessing_function, rescale, samplewise and featurewise
        steps) to an image or a batch, in place when ``x`` is a writeable float32 array; returns it.
        A batch is normalised as one sample by the samplewise steps, as in Keras."""
        if self.preprocessing_function:
            x = self.preprocessing_function(x)
        if not (isinstance(x, np.ndarray) and x.dtype == np.float32 and x.flags.c_contiguous and x.flags.writeable):
            x = np.array(x, dtype=np.float32)
        if x.ndim == 0:
            raise ValueError("standardize needs an image (H, W, C) or a batch (N, H, W, C). Received a scalar")
        self._warn_unfitted()
        config = self._core_config()
        channels = x.shape[-1]
        for key in ("mean", "std"):
            value = getattr(self, key)
            if value is not None and config[key] is not None and config[key].size != channels:
                config[key] = np.ascontiguousarray(np.broadcast_to(np.asarray(value, np.float32), x.shape)).ravel()
        _core.image_standardize(config, x)
        return x

    def get_random_transform(self, img_shape, seed=None):
        """Random transform parameters for an image of shape ``img_shape`` (H, W, C), drawn from
        NumPy's global generator (reseeded with ``seed`` when given), exactly as Keras draws them."""
        if seed is not None:
            np.random.seed(seed)
        state = np.random.get_state()
        if state[0] != "MT19937":
            raise RuntimeError(f"NumPy's global generator is not MT19937. Received: {state[0]}")
        params, key, pos = _core.image_get_random_transform(self._core_config(), int(img_shape[0]),
                                                             int(img_shape[1]), state[1], int(state[2]))
        np.random.set_state(("MT19937", key, pos, state[3], state[4]))
        return params

    def apply_transform(self, x, transform_parameters):
        """Apply the transform described by ``transform_parameters`` (a dict as returned by
        ``get_random_transform``) to one image ``x`` (H, W, C); returns a new float32 array."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 3:
            raise ValueError(f"apply_transform needs one image (H, W, C). Received shape {x.shape}")
        return _core.image_apply_transform(self._core_config(), x, dict(transform_parameters))

    def random_transform(self, x, seed=None):
        """A randomly transformed copy of one image ``x`` (H, W, C)."""
        x = np.asarray(x, dtype=np.float32)
        return self.apply_transform(x, self.get_random_transform(x.shape, seed))

    def fit(self, x, augment=False, rounds=1, seed=None):
        """Compute the featurewise mean and std of sample data ``x`` (N, H, W, C), after
        ``rescale`` (and, with ``augment``, over ``rounds`` randomly transformed copies)."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 4:
            raise ValueError("Input to `.fit()` should have rank 4. Got array with shape: " + str(x.shape))
        if x.shape[3] not in {1, 3, 4}:
            warnings.warn('Expected input to be images (as Numpy array) following the data format convention '
                          '"channels_last" (channels on axis 3), i.e. expected either 1, 3 or 4 channels on axis 3. '
                          f"However, it was passed an array with shape {x.shape} ({x.shape[3]} channels).")
        if seed is not None:
            np.random.seed(seed)
        scale = np.float32(self.rescale) if self.rescale else None
        if augment:
            rounds = _positive_int(rounds, "rounds")
            x = np.copy(x)
            if scale is not None:
                x *= scale
            ax = np.zeros((rounds * x.shape[0],) + x.shape[1:], dtype=np.float32)
            for r in range(rounds):
                for i in range(x.shape[0]):
                    ax[i + r * x.shape[0]] = self.random_transform(x[i])
            x = ax
            if self.featurewise_center:
                self.mean = np.mean(x, axis=(0, 1, 2)).reshape(1, 1, -1)
                x -= self.mean
            if self.featurewise_std_normalization:
                self.std = np.std(x, axis=(0, 1, 2)).reshape(1, 1, -1)
            return
        # Without augmentation: the same statistics, accumulated in float64 chunk by chunk instead
        # of on a full float32 copy of the data.
        count = x.shape[0] * x.shape[1] * x.shape[2]
        channels = x.shape[3]
        chunk = max(1, 2**22 // max(1, x[0].size))

        def scaled(part):
            part = part.astype(np.float64)
            return part * scale if scale is not None else part

        total = np.zeros(channels)
        for s in range(0, x.shape[0], chunk):
            total += scaled(x[s:s + chunk]).sum(axis=(0, 1, 2))
        mean = total / count
        if self.featurewise_center:
            self.mean = mean.astype(np.float32).reshape(1, 1, channels)
        if self.featurewise_std_normalization:
            center = self.mean.reshape(-1).astype(np.float64) if self.featurewise_center else mean
            sq = np.zeros(channels)
            for s in range(0, x.shape[0], chunk):
                sq += ((scaled(x[s:s + chunk]) - center) ** 2).sum(axis=(0, 1, 2))
            var = sq / count - (mean - center) ** 2
            self.std = np.sqrt(np.maximum(var, 0)).astype(np.float32).reshape(1, 1, channels)


# ---------------------------------------------------------------------------------------------
# Iterators


class _IteratorMixin:
    """Keras's Iterator behaviour on top of the C++ iterators: ``it[i]``, ``next(it)``, ``reset()``."""

    def _start(self):
        self._cursor = 0
        if self.image_data_generator is not None and self.image_data_generator.preprocessing_function:
            self._set_preprocessing_function(self.image_data_generator.preprocessing_function)

    def __getitem__(self, idx):
        n = len(self)
        if isinstance(idx, bool) or not isinstance(idx, numbers.Integral):
            raise TypeError(f"Batch indices must be integers. Received: {idx!r}")
        if idx >= n or idx < -n:
            raise ValueError(f"Asked to retrieve element {idx}, but the Sequence has length {n}")
        if idx < 0:
            idx += n
        x, y, ids = self._batch(int(idx))
        return self._output(x, y, ids)

    def __iter__(self):
        return self

    def __next__(self):
        """The next batch; after the last batch of a pass the data is reshuffled (Keras's iterators
        never stop)."""
        n = len(self)
        if n == 0:
            raise ValueError("This iterator has no samples, so it yields no batches")
        batch = self[self._cursor % n]
        self._cursor = (self._cursor + 1) % n
        if self._cursor == 0:
            self.on_epoch_end()
        return batch

    next = __next__

    def reset(self):
        """Restart ``next()`` at the first batch (Keras's ``reset``)."""
        self._cursor = 0

    @property
    def batch_index(self):
        return self._cursor

    @property
    def n(self):
        return self.samples

    def close(self):
        """Stop the worker threads now (they restart when a batch is asked for)."""
        self._stop_workers()

    def __repr__(self):
        return (f"<{type(self).__name__}: {self.samples} images, batch_size={self.batch_size}, "
                f"{len(self)} batches, workers={self.workers}>")


def _list_files(directory, formats, follow_links):
    """Files under ``directory`` in Keras's order (os.walk roots sorted, then names sorted) whose
    lower-cased name ends with one of ``formats``; also the names that were skipped."""
    kept, skipped = [], []
    for root, _, files in sorted(os.walk(directory, followlinks=follow_links), key=lambda t: t[0]):
        for fname in sorted(files):
            (kept if fname.lower().endswith(formats) else skipped).append(os.path.join(root, fname))
    return kept, skipped


def _warn_skipped(skipped, base, formats):
    if not skipped:
        return
    names = [os.path.relpath(p, base) for p in skipped[:_MAX_NAMED]]
    more = f" and {len(skipped) - _MAX_NAMED} more" if len(skipped) > _MAX_NAMED else ""
    warnings.warn(f"Skipped {len(skipped)} file(s) in '{base}' that are not images of a supported type "
                  f"({', '.join(formats)}): {', '.join(names)}{more}", stacklevel=3)


class DirectoryIterator(_IteratorMixin, _core.DirectoryIterator):
    """Batches of images from a directory with one sub-folder per class (Keras's DirectoryIterator).

    Attributes (as Keras): ``class_indices`` (name -> index), ``classes`` (int32 label per file),
    ``filenames`` (paths relative to ``directory``), ``filepaths``, ``samples``, ``num_classes``,
    ``image_shape``. Files are the ones whose name ends with png, jpg, jpeg, bmp, ppm, tif or tiff
    (any case), listed recursively and sorted; other files are skipped with a warning naming them.
    An unreadable or corrupt image raises OSError naming the file when its batch is prepared.
    """

    allowed_class_modes = {"categorical", "binary", "sparse", "input", None}
    white_list_formats = _FLOW_FORMATS

    def __init__(self, directory, image_data_generator=None, target_size=(256, 256), color_mode="rgb",
                 classes=None, class_mode="categorical", batch_size=32, shuffle=True, seed=None, data_format=None,
                 save_to_dir=None, save_prefix="", save_format="png", follow_links=False, subset=None,
                 interpolation="nearest", keep_aspect_ratio=False, dtype=None, *, workers=None, max_queue_size=4):
        _check_channels_last(data_format)
        _check_dtype(dtype)
        if save_to_dir is not None:
            raise NotImplementedError("save_to_dir is not supported by signcore's iterators")
        if color_mode not in {"rgb", "rgba", "grayscale"}:
            raise ValueError(f'Invalid color mode: {color_mode}; expected "rgb", "rgba", or "grayscale".')
        if class_mode not in self.allowed_class_modes:
            raise ValueError(f"Invalid class_mode: {class_mode}; expected one of: {self.allowed_class_modes}")
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f"Invalid interpolation method {interpolation} specified. Supported methods are "
                             f"{', '.join(_INTERPOLATIONS)}")
        self.target_size = _target_size(target_size)
        gen = image_data_generator if image_data_generator is not None else ImageDataGenerator()
        self.image_data_generator = gen
        if subset is not None:
            vs = gen._validation_split
            if subset == "validation":
                split = (0, vs)
            elif subset == "training":
                split = (vs, 1)
            else:
                raise ValueError(f'Invalid subset name: {subset};expected "training" or "validation"')
        else:
            split = None
        self.split, self.subset = split, subset
        self.directory, self.color_mode, self.class_mode = directory, color_mode, class_mode
        self.data_format, self.dtype, self.interpolation = "channels_last", "float32", interpolation
        self.keep_aspect_ratio, self.seed, self.shuffle = bool(keep_aspect_ratio), _check_seed(seed), bool(shuffle)
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"flow_from_directory: '{directory}' is not a directory")

        if not classes:
            classes = [d for d in sorted(os.listdir(directory)) if os.path.isdir(os.path.join(directory, d))]
            hidden = [d for d in classes if d.startswith(".")]
            if hidden:
                warnings.warn(f"Hidden folder(s) {hidden} in '{directory}' are used as classes (Keras does the "
                              "same); delete them or pass classes=[...] if they are not classes.", stacklevel=3)
        classes = list(classes)
        self.num_classes = len(classes)
        self.class_indices = dict(zip(classes, range(len(classes))))

        self.filenames, labels, skipped, empty = [], [], [], []
        for name in classes:
            class_dir = os.path.join(directory, name)
            if not os.path.isdir(class_dir):
                warnings.warn(f"Class folder '{class_dir}' does not exist: class '{name}' has no images",
                              stacklevel=3)
                continue
            files, skip = _list_files(class_dir, _FLOW_FORMATS, follow_links)
            skipped += skip
            if split:
                start, stop = int(split[0] * len(files)), int(split[1] * len(files))
                files = files[start:stop]
            if not files:
                empty.append(name)
            dirname = os.path.basename(class_dir)
            for path in files:
                self.filenames.append(os.path.join(dirname, os.path.relpath(path, class_dir)))
                labels.append(self.class_indices[name])
        _warn_skipped(skipped, directory, _FLOW_FORMATS)
        if empty and len(empty) < len(classes):
            warnings.warn(f"Class folder(s) {empty} in '{directory}' hold no images"
                          f"{' for this subset' if split else ''}: those classes get no samples", stacklevel=3)
        self.classes = np.asarray(labels, dtype=np.int32)
        self._filepaths = [os.path.join(directory, f) for f in self.filenames]
        print(f"Found {len(self.filenames)} images belonging to {self.num_classes} classes.")
        if not self.filenames:
            warnings.warn(f"No images found in '{directory}' (supported: {', '.join(_FLOW_FORMATS)}); the "
                          "iterator yields no batches", stacklevel=3)
        gen._warn_unfitted()
        channels = {"rgb": 3, "rgba": 4, "grayscale": 1}[color_mode]
        _core.DirectoryIterator.__init__(
            self, self._filepaths, [int(c) for c in labels], self.num_classes,
            class_mode if class_mode is not None else "none", color_mode, self.target_size[0], self.target_size[1],
            interpolation, self.keep_aspect_ratio, gen._core_config(self.target_size + (channels,)),
            _positive_int(batch_size, "batch_size"), self.shuffle, self.seed, _fallback_seed(),
            _default_workers(workers), _positive_int(max_queue_size, "max_queue_size"))
        self._start()

    @property
    def filepaths(self):
        """Absolute (or directory-relative) paths of every image, in order."""
        return self._filepaths

    @property
    def labels(self):
        return self.classes

    @property
    def sample_weight(self):
        return None

    def _output(self, x, y, ids):
        return x if y is None else (x, y)


class NumpyArrayIterator(_IteratorMixin, _core.NumpyArrayIterator):
    """Batches of augmented images from arrays (Keras's NumpyArrayIterator, made by ``flow``).

    ``x`` (N, H, W, C) is kept as it is when it is uint8 or float32 (no copy); other types are
    converted to float32. Batches are ``(x, y[indices])`` with ``y`` in its own dtype, or ``x``
    alone when ``y`` is None.
    """

    def __init__(self, x, y, image_data_generator=None, batch_size=32, shuffle=False, sample_weight=None,
                 seed=None, data_format=None, save_to_dir=None, save_prefix="", save_format="png", subset=None,
                 ignore_class_split=False, dtype=None, *, workers=None, max_queue_size=4):
        _check_channels_last(data_format)
        _check_dtype(dtype)
        if save_to_dir is not None:
            raise NotImplementedError("save_to_dir is not supported by signcore's iterators")
        if sample_weight is not None:
            raise NotImplementedError("sample_weight is not supported by signcore's image iterators yet")
        if isinstance(x, (tuple, list)):
            raise NotImplementedError("flow() with x = (images, extra inputs) is not supported; pass the images array")
        gen = image_data_generator if image_data_generator is not None else ImageDataGenerator()
        self.image_data_generator = gen
        x = np.asarray(x)
        if y is not None and len(x) != len(y):
            raise ValueError("`x` (images tensor) and `y` (labels) should have the same length. "
                             f"Found: x.shape = {np.asarray(x).shape}, y.shape = {np.asarray(y).shape}")
        if subset is not None:
            if subset not in {"training", "validation"}:
                raise ValueError(f'Invalid subset name: {subset}; expected "training" or "validation".')
            split_idx = int(len(x) * gen._validation_split)
            if (y is not None and not ignore_class_split
                    and not np.array_equal(np.unique(y[:split_idx]), np.unique(y[split_idx:]))):
                raise ValueError("Training and validation subsets have different number of classes after the split. "
                                 "If your numpy arrays are sorted by the label, you might want to shuffle them.")
            sl = slice(None, split_idx) if subset == "validation" else slice(split_idx, None)
            x = x[sl]
            if y is not None:
                y = y[sl]
        if x.ndim != 4:
            raise ValueError(f"Input data in `NumpyArrayIterator` should have rank 4. You passed an array with shape "
                             f"{x.shape}")
        if x.shape[3] not in {1, 3, 4}:
            warnings.warn('NumpyArrayIterator is set to use the data format convention "channels_last" (channels on '
                          "axis 3), i.e. expected either 1, 3, or 4 channels on axis 3. However, it was passed an "
                          f"array with shape {x.shape} ({x.shape[3]} channels).")
        if x.dtype not in (np.uint8, np.float32):
            x = x.astype(np.float32)
        self.x = np.ascontiguousarray(x)
        self.y = None if y is None else np.asarray(y)
        y_core = None
        if self.y is not None:
            try:
                y_core = np.ascontiguousarray(self.y, dtype=np.float32)
            except (TypeError, ValueError):
                y_core = None  # non-numeric labels: Python iteration only
        self.seed, self.shuffle = _check_seed(seed), bool(shuffle)
        self.data_format, self.dtype = "channels_last", "float32"
        gen._warn_unfitted()
        _core.NumpyArrayIterator.__init__(
            self, self.x, y_core, gen._core_config(self.x.shape[1:]), _positive_int(batch_size, "batch_size"),
            self.shuffle, self.seed, _fallback_seed(), _default_workers(workers),
            _positive_int(max_queue_size, "max_queue_size"))
        self._start()

    def _output(self, x, y, ids):
        return x if self.y is None else (x, self.y[ids])


# ---------------------------------------------------------------------------------------------
# Image files <-> arrays (keras.utils.load_img and friends)


def _pil():
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        raise ImportError("This function returns or takes PIL images: install Pillow (pip install pillow)") from None
    return Image


def load_img(path, color_mode="rgb", target_size=None, interpolation="nearest", keep_aspect_ratio=False):
    """Load an image file as a PIL image, as Keras's ``load_img``.

    The file is decoded by signcore (OpenCV) and converted and resized like Pillow does it, so
    ``img_to_array(load_img(p, target_size=s))`` equals what ``flow_from_directory`` feeds the model
    before augmentation.

    Args:
        path: the file.
        color_mode: ``"grayscale"``, ``"rgb"`` or ``"rgba"``.
        target_size: ``None`` (original size) or ``(height, width)``.
        interpolation: ``"nearest"``, ``"bilinear"``, ``"bicubic"``, ``"lanczos"``, ``"box"`` or
            ``"hamming"``.
        keep_aspect_ratio: crop the centred region with the target's aspect ratio before resizing.

    Returns:
        A ``PIL.Image.Image`` (mode ``L``, ``RGB`` or ``RGBA``).
    """
    if color_mode not in ("grayscale", "rgb", "rgba"):
        raise ValueError(f"color_mode must be 'grayscale', 'rgb' or 'rgba'. Received: color_mode={color_mode!r}")
    h, w = (0, 0) if target_size is None else _target_size(target_size)
    arr = _core.image_load(os.fspath(path), color_mode, h, w, interpolation, bool(keep_aspect_ratio))
    Image = _pil()
    if arr.shape[2] == 1:
        return Image.fromarray(arr[:, :, 0], "L")
    return Image.fromarray(arr, "RGBA" if arr.shape[2] == 4 else "RGB")


def img_to_array(img, data_format=None, dtype=None):
    """A PIL image (or array) as a float32 (H, W, C) array, as Keras's ``img_to_array``."""
    _check_channels_last(data_format)
    x = np.asarray(img, dtype=dtype or "float32")
    if x.ndim == 2:
        x = x.reshape((x.shape[0], x.shape[1], 1))
    elif x.ndim != 3:
        raise ValueError(f"Unsupported image shape: {x.shape}")
    return x


def array_to_img(x, data_format=None, scale=True, dtype=None):
    """A (H, W, C) array as a PIL image, as Keras's ``array_to_img`` (scaled to 0..255 by default)."""
    _check_channels_last(data_format)
    Image = _pil()
    x = np.asarray(x, dtype=dtype or "float32")
    if x.ndim != 3:
        raise ValueError(f"Expected image array to have rank 3 (single image). Got array with shape: {x.shape}")
    if scale:
        x = x - np.min(x)
        x_max = np.max(x)
        if x_max != 0:
            x /= x_max
        x *= 255
    if x.shape[2] == 4:
        return Image.fromarray(x.astype("uint8"), "RGBA")
    if x.shape[2] == 3:
        return Image.fromarray(x.astype("uint8"), "RGB")
    if x.shape[2] == 1:
        if np.max(x) > 255:
            return Image.fromarray(x[:, :, 0].astype("int32"), "I")
        return Image.fromarray(x[:, :, 0].astype("uint8"), "L")
    raise ValueError(f"Unsupported channel number: {x.shape[2]}")


def save_img(path, x, data_format=None, file_format=None, scale=True, **kwargs):
    """Save a (H, W, C) array as an image file, as Keras's ``save_img``."""
    img = array_to_img(x, data_format=data_format, scale=scale)
    if img.mode == "RGBA" and (file_format == "jpg" or file_format == "jpeg"
                               or str(path).lower().endswith((".jpg", ".jpeg"))):
        warnings.warn("The JPG format does not support RGBA images, converting to RGB.")
        img = img.convert("RGB")
    img.save(path, format=file_format, **kwargs)


# ---------------------------------------------------------------------------------------------
# image_dataset_from_directory


class ImageDataset(tuple):
    """``(x, y)`` arrays from ``image_dataset_from_directory``, with Keras's dataset attributes
    ``class_names`` and ``file_paths``. Unpack it: ``x, y = image_dataset_from_directory(...)``."""

    class_names = None
    file_paths = None

    @property
    def x(self):
        return self[0]

    @property
    def y(self):
        return self[1]


def _index_directory(directory, labels, formats, class_names, shuffle, seed, follow_links, verbose):
    """Keras's dataset_utils.index_directory: file paths, labels and class names."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"image_dataset_from_directory: '{directory}' is not a directory")
    if labels == "inferred":
        subdirs = [d for d in sorted(os.listdir(directory))
                   if os.path.isdir(os.path.join(directory, d)) and not d.startswith(".")]
        if class_names is not None:
            if not set(class_names).issubset(set(subdirs)):
                raise ValueError("The `class_names` passed did not match the names of the subdirectories of the target "
                                 f"directory. Expected: {subdirs} (or a subset of it), but received: "
                                 f"class_names={class_names}")
            subdirs = list(class_names)
    else:
        subdirs = [""]
        if class_names is not None:
            raise ValueError("When `labels=None` (no labels), argument `class_names` cannot be specified."
                             if labels is None else
                             "When argument `labels` is specified, argument `class_names` cannot be specified "
                             "(the `class_names` will be the sorted list of labels).")
    class_indices = dict(zip(subdirs, range(len(subdirs))))
    filenames, found, skipped, empty = [], [], [], []
    for subdir in subdirs:
        base = os.path.join(directory, subdir)
        files, skip = _list_files(base, formats, follow_links)
        skipped += skip
        if not files and labels == "inferred":
            empty.append(subdir)
        dirname = os.path.basename(base)
        for path in files:
            filenames.append(os.path.join(dirname, os.path.relpath(path, base)))
            found.append(class_indices[subdir])
    _warn_skipped(skipped, directory, formats)
    if empty and len(empty) < len(subdirs):
        warnings.warn(f"Class folder(s) {empty} in '{directory}' hold no images: those classes get no samples",
                      stacklevel=3)
    if labels == "inferred":
        labels = np.asarray(found, dtype=np.int32)
        class_names = subdirs
    elif labels is None:
        class_names = None
    else:
        if len(labels) != len(filenames):
            raise ValueError("Expected the lengths of `labels` to match the number of files in the target directory. "
                             f"len(labels) is {len(labels)} while we found {len(filenames)} files in directory "
                             f"{directory}.")
        class_names = [str(label) for label in sorted(set(labels))]
    if verbose:
        if labels is None:
            print(f"Found {len(filenames)} files.")
        else:
            print(f"Found {len(filenames)} files belonging to {len(class_names)} classes.")
    file_paths = [os.path.join(directory, f) for f in filenames]
    if shuffle:
        if seed is None:
            seed = np.random.randint(1e6)
        np.random.RandomState(seed).shuffle(file_paths)
        if labels is not None:
            labels = np.array(labels)
            np.random.RandomState(seed).shuffle(labels)
    return file_paths, labels, class_names


def _split(samples, labels, validation_split, subset):
    """Keras's get_training_or_validation_split: the validation files are the last fraction."""
    if not validation_split:
        return samples, labels
    num_val = int(validation_split * len(samples))
    if subset == "training":
        print(f"Using {len(samples) - num_val} files for training.")
        return samples[:len(samples) - num_val], None if labels is None else labels[:len(samples) - num_val]
    if subset == "validation":
        print(f"Using {num_val} files for validation.")
        return samples[len(samples) - num_val:], None if labels is None else labels[len(samples) - num_val:]
    raise ValueError(f'`subset` must be either "training" or "validation", received: {subset}')


def image_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None, color_mode="rgb",
                                 batch_size=32, image_size=(256, 256), shuffle=True, seed=None, validation_split=None,
                                 subset=None, interpolation="bilinear", follow_links=False, crop_to_aspect_ratio=False,
                                 pad_to_aspect_ratio=False, data_format=None, verbose=True, *, workers=None):
    """Load a folder of images (one sub-folder per class) into arrays, as Keras's function does
    into a dataset.

    Files ending in .bmp, .gif, .jpeg, .jpg or .png are read (GIF is not decodable here and raises),
    decoded and resized in C++ on ``workers`` threads like ``tf.image.resize`` (no antialiasing,
    values 0..255). With ``shuffle`` the files are shuffled once with ``seed`` exactly as Keras
    shuffles them; the validation subset is the last ``validation_split`` of that order.

    Args:
        directory: the folder.
        labels: ``"inferred"`` (from the sub-folders), ``None``, or a list of integer labels (one
            per file, in sorted path order).
        label_mode: ``"int"`` (int32), ``"categorical"`` (float32 one-hot), ``"binary"`` (float32
            (N, 1)) or ``None``.
        class_names: explicit class order (sub-folder names).
        color_mode: ``"grayscale"``, ``"rgb"`` or ``"rgba"``.
        batch_size: accepted for compatibility; the arrays hold every image.
        image_size: ``(height, width)``.
        shuffle, seed: shuffle the files once (a seed is required with ``validation_split``).
        validation_split, subset: ``"training"``, ``"validation"`` or ``"both"``.
        interpolation: ``"bilinear"``, ``"nearest"``, ``"bicubic"`` or ``"area"``.
        follow_links: follow symbolic links to sub-folders.
        crop_to_aspect_ratio: crop the centred region with the target aspect ratio before resizing.
        pad_to_aspect_ratio: not supported (raises).
        data_format: ``None`` or ``"channels_last"``.
        verbose: print the number of files found.
        workers: decoding threads (default ``signcore.get_num_threads()``).

    Returns:
        An ``ImageDataset`` ``(x, y)`` with ``x`` float32 (N, H, W, C), ``y`` per ``label_mode``,
        and ``.class_names``, ``.file_paths``; ``x`` alone when there are no labels; a pair of them
        for ``subset="both"``.
    """
    if labels not in ("inferred", None):
        if not isinstance(labels, (list, tuple)):
            raise ValueError("`labels` argument should be a list/tuple of integer labels, of the same size as the "
                             "number of image files in the target directory. If you wish to infer the labels from "
                             'the subdirectory names in the target directory, pass `labels="inferred"`. If you '
                             "wish to get a dataset that only contains images (no labels), pass `labels=None`. "
                             f"Received: labels={labels}")
        if class_names:
            raise ValueError(f'You can only pass `class_names` if `labels="inferred"`. Received: labels={labels}, '
                             f"and class_names={class_names}")
    if label_mode not in {"int", "categorical", "binary", None}:
        raise ValueError('`label_mode` argument must be one of "int", "categorical", "binary", or None. '
                         f"Received: label_mode={label_mode}")
    if labels is None or label_mode is None:
        labels, label_mode = None, None
    if color_mode not in ("rgb", "rgba", "grayscale"):
        raise ValueError('`color_mode` must be one of {"rgb", "rgba", "grayscale"}. '
                         f"Received: color_mode={color_mode}")
    image_size = _target_size(image_size, "image_size")
    interpolation = str(interpolation).lower()
    if interpolation not in ("bilinear", "nearest", "bicubic", "area"):
        raise ValueError("Argument `interpolation` should be one of ('bilinear', 'nearest', 'bicubic', 'area') in "
                         f"signcore. Received: interpolation={interpolation}")
    if pad_to_aspect_ratio:
        raise NotImplementedError("pad_to_aspect_ratio is not supported; use crop_to_aspect_ratio=True")
    _check_channels_last(data_format)
    if validation_split and not 0 < validation_split < 1:
        raise ValueError(f"`validation_split` must be between 0 and 1, received: {validation_split}")
    if (validation_split or subset) and not (validation_split and subset):
        raise ValueError("If `subset` is set, `validation_split` must be set, and inversely.")
    if subset not in ("training", "validation", "both", None):
        raise ValueError(f'`subset` must be either "training", "validation" or "both", received: {subset}')
    if validation_split and shuffle and seed is None:
        raise ValueError("If using `validation_split` and shuffling the data, you must provide a `seed` argument, "
                         "to make sure that there is no overlap between the training and validation subset.")
    if seed is None:
        seed = np.random.randint(1e6)
    paths, labels, class_names = _index_directory(directory, labels, _DATASET_FORMATS, class_names, shuffle, seed,
                                                  follow_links, verbose)
    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError(f'When passing `label_mode="binary"`, there must be exactly 2 class_names. Received: '
                         f"class_names={class_names}")
    workers = _default_workers(workers)

    def build(p, lab):
        if not p:
            raise ValueError(f"No images found in directory {directory}. Allowed formats: {_DATASET_FORMATS}")
        x = _core.image_load_batch(list(p), color_mode, image_size[0], image_size[1], interpolation,
                                   bool(crop_to_aspect_ratio), max(1, workers))
        if lab is None:
            return x
        lab = np.asarray(lab)
        if label_mode == "int":
            y = lab.astype(np.int32)
        elif label_mode == "binary":
            y = lab.astype(np.float32).reshape(-1, 1)
        else:
            y = np.zeros((len(lab), len(class_names)), dtype=np.float32)
            y[np.arange(len(lab)), lab.astype(np.int64)] = 1.0
        ds = ImageDataset((x, y))
        ds.class_names, ds.file_paths = class_names, list(p)
        return ds

    if subset == "both":
        train = _split(paths, labels, validation_split, "training")
        val = _split(paths, labels, validation_split, "validation")
        return build(*train), build(*val)
    return build(*_split(paths, labels, validation_split, subset))
