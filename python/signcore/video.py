"""Video clips as frame sequences, clip datasets, and per-frame features from any signcore model.

Decoding is OpenCV's (FFmpeg) in C++, without the GIL; several clips decode in parallel.

Frame sampling: a clip with n decodable frames gives ``num_frames`` = T frames at indices
``floor(k * (n - 1) / (T - 1) + 0.5)`` for k = 0..T-1 (that is ``np.linspace(0, n - 1, T)`` rounded half
up; the first and last frames are always kept; T = 1 keeps frame 0). A clip with fewer than T frames
gives all its frames, in order, followed by zero frames, and its mask is False for that padding.
n is the number of frames that really decode (a container's frame count is only trusted once the
clip has been read through). Frames are read sequentially, never by seeking.

Frames are RGB, channels-last, float32 in [0, 1]; ``size`` is (height, width), as Keras's
``image_size``. Resizing is OpenCV's (default bilinear) on the 8-bit frame; with
``crop_to_aspect_ratio=True`` the largest centred region with the target's aspect ratio is cut out
first, so nothing is stretched.

Example (the ConvLSTM2D experiment's input):
    >>> frames, masks, labels, class_names = signcore.video.clip_dataset("clips/manifest.csv", num_frames=20,
    ...                                                                  size=(150, 150))
    >>> frames.shape
    (42, 20, 150, 150, 3)

Example (building the feature pickle from your own videos):
    >>> features = signcore.video.extract_features(cnn, frames, masks)           # (N, 20, F)
    >>> splits = signcore.datasets.make_feature_splits(features, masks, labels, class_names)
    >>> signcore.datasets.save_feature_pickle("preprocessed_videos.pkl", *splits)
"""
from __future__ import annotations

import csv
import numbers
import os

import numpy as np

from . import _core

__all__ = [
    "VIDEO_EXTENSIONS",
    "clip_dataset",
    "count_frames",
    "extract_features",
    "feature_extractor",
    "list_clips",
    "load_frames",
    "sample_indices",
    "video_info",
]

#: File extensions taken as video clips when listing a folder (case-insensitive).
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")

_PATH_COLUMNS = ("path", "video_path", "video_name", "video", "file", "filename")
_LABEL_COLUMNS = ("label", "gloss", "class", "tag", "word")


# ------------------------------------------------------------------------------------------------
# Arguments

def _path(p, what="path"):
    try:
        return os.fspath(p)
    except TypeError:
        raise TypeError(f"{what} must be a str or os.PathLike. Received: {what}={p!r}") from None


def _num_frames(n):
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n <= 0:
        raise ValueError(f"num_frames must be a positive integer. Received: num_frames={n!r}")
    return int(n)


def _size(size, allow_none):
    if size is None:
        if not allow_none:
            raise ValueError("size must be (height, width) when loading several clips. Received: size=None")
        return 0, 0
    try:
        h, w = size
        ok = all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in (h, w))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"size must be (height, width) with two positive integers"
                         f"{' or None' if allow_none else ''}. Received: size={size!r}")
    return int(h), int(w)


# ------------------------------------------------------------------------------------------------
# One clip

def video_info(path):
    """Container metadata: dict with frame_count (the container's estimate, 0 if unknown), fps, width, height."""
    return _core.video_info(_path(path))


def count_frames(path):
    """The number of frames that actually decode (reads the whole clip)."""
    return int(_core.count_video_frames(_path(path)))


def sample_indices(frame_count, num_frames=20):
    """Indices of the frames ``load_frames`` takes from a clip of ``frame_count`` frames (see module doc)."""
    if isinstance(frame_count, bool) or not isinstance(frame_count, numbers.Integral) or frame_count < 0:
        raise ValueError(f"frame_count must be a non-negative integer. Received: frame_count={frame_count!r}")
    return np.asarray(_core.sample_frame_indices(int(frame_count), _num_frames(num_frames)), dtype=np.int64)


def load_frames(path, num_frames=20, size=(150, 150), interpolation="bilinear", crop_to_aspect_ratio=False):
    """Read a clip as ``num_frames`` frames sampled uniformly over it.

    Args:
        path: the video file (any container/codec FFmpeg reads: MP4/H.264, AVI, MOV, WebM, ...).
        num_frames: frames to return (T).
        size: (height, width) of the returned frames; None keeps the clip's own size.
        interpolation: "bilinear" (default), "nearest", "bicubic" or "area".
        crop_to_aspect_ratio: centre-crop to the aspect ratio of ``size`` before resizing.

    Returns:
        (frames, mask): frames ``(T, height, width, 3)`` float32 RGB in [0, 1]; mask ``(T,)`` bool,
        False for the zero frames that pad a clip shorter than T.

    Raises:
        FileNotFoundError: no such file.
        OSError: the file cannot be opened or decoded as a video (the message names it).
    """
    h, w = _size(size, allow_none=True)
    frames, mask, _ = _core.load_video_frames(_path(path), _num_frames(num_frames), h, w, str(interpolation),
                                              bool(crop_to_aspect_ratio))
    return frames, mask


# ------------------------------------------------------------------------------------------------
# Clip datasets

def list_clips(source, class_names=None, path_column=None, label_column=None, extensions=VIDEO_EXTENSIONS,
               skip_unlabelled=True):
    """The clips and labels of a dataset: (paths, labels (N,) int64, class_names).

    Args:
        source: a folder with one sub-folder of clips per class (found recursively, sorted by path), or
            a CSV file with a path column and a label column (paths relative to the CSV's folder, as in
            WLASL manifests or Keras's video recipe, whose CSV has ``video_name`` and ``tag``).
        class_names: the classes, in label order. Default: every sub-folder, or every label in the
            CSV, sorted. With a CSV, rows whose label is not in ``class_names`` are left out.
        path_column, label_column: CSV column names; default the first present of
            path/video_path/video_name/video/file/filename and label/gloss/class/tag/word.
        extensions: file extensions counted as clips in a folder.
        skip_unlabelled: leave out CSV rows with an empty label (otherwise they are an error).
    """
    source = _path(source, "source")
    if os.path.isdir(source):
        return _list_folder(source, class_names, extensions)
    if os.path.isfile(source):
        return _list_csv(source, class_names, path_column, label_column, skip_unlabelled)
    raise FileNotFoundError(f"No such folder or CSV file: '{source}'")


def _list_folder(folder, class_names, extensions):
    found = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    names = found if class_names is None else [str(c) for c in class_names]
    missing = [c for c in names if c not in found]
    if missing:
        raise ValueError(f"class_names {missing} have no folder in '{folder}'. Folders found: {found}")
    if not names:
        raise ValueError(f"'{folder}' has no class sub-folders (expected <folder>/<class>/<clips>)")
    exts = tuple(e.lower() for e in extensions)
    paths, labels = [], []
    for label, name in enumerate(names):
        root = os.path.join(folder, name)
        files = []
        for dirpath, dirnames, filenames in os.walk(root):
            files += [os.path.join(dirpath, f) for f in filenames if f.lower().endswith(exts)]
        for p in sorted(files):
            paths.append(p)
            labels.append(label)
    if not paths:
        raise ValueError(f"No video files ({', '.join(extensions)}) found under '{folder}'")
    return paths, np.asarray(labels, dtype=np.int64), names


def _pick_column(header, wanted, candidates, what, source):
    if wanted is not None:
        if wanted not in header:
            raise ValueError(f"'{source}' has no column '{wanted}'. Received columns: {header}")
        return wanted
    lower = {h.strip().lower(): h for h in header}
    for c in candidates:
        if c in lower:
            return lower[c]
    raise ValueError(f"'{source}' has no {what} column (looked for {list(candidates)}); name it with "
                     f"{what}_column=... Received columns: {header}")


def _list_csv(source, class_names, path_column, label_column, skip_unlabelled):
    with open(source, newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        pcol = _pick_column(header, path_column, _PATH_COLUMNS, "path", source)
        lcol = _pick_column(header, label_column, _LABEL_COLUMNS, "label", source)
        rows = []
        for line, row in enumerate(reader, start=2):
            p, label = (row.get(pcol) or "").strip(), (row.get(lcol) or "").strip()
            if not p:
                raise ValueError(f"'{source}', line {line}: empty '{pcol}'")
            if not label:
                if skip_unlabelled:
                    continue
                raise ValueError(f"'{source}', line {line}: clip '{p}' has no label in column '{lcol}'")
            rows.append((p, label))
    names = sorted({label for _, label in rows}) if class_names is None else [str(c) for c in class_names]
    index = {n: i for i, n in enumerate(names)}
    base = os.path.dirname(os.path.abspath(source))
    paths, labels = [], []
    for p, label in rows:
        if label in index:
            paths.append(p if os.path.isabs(p) else os.path.join(base, p))
            labels.append(index[label])
    if not paths:
        raise ValueError(f"'{source}' lists no labelled clips" + (f" of the classes {names}" if class_names else ""))
    return paths, np.asarray(labels, dtype=np.int64), names


def clip_dataset(source, num_frames=20, size=(150, 150), class_names=None, path_column=None, label_column=None,
                 interpolation="bilinear", crop_to_aspect_ratio=False, extensions=VIDEO_EXTENSIONS,
                 skip_unlabelled=True, return_paths=False):
    """Load a labelled set of clips into memory, for ConvLSTM2D models or feature extraction.

    Args:
        source: a class-per-sub-folder folder of clips, or a CSV listing them (see list_clips).
        num_frames: frames per clip (T), sampled as load_frames does.
        size: (height, width) of every frame.
        class_names, path_column, label_column, extensions, skip_unlabelled: see list_clips.
        interpolation, crop_to_aspect_ratio: see load_frames.
        return_paths: also return the clip paths, in sample order.

    Returns:
        (frames, masks, labels, class_names): frames ``(N, T, height, width, 3)`` float32 in [0, 1],
        masks ``(N, T)`` bool, labels ``(N,)`` int64 ids into class_names; plus the paths when
        ``return_paths``.

    Raises:
        FileNotFoundError: a listed clip is missing (checked before any decoding).
        OSError: a clip cannot be decoded (the message names the first one).
    """
    paths, labels, names = list_clips(source, class_names, path_column, label_column, extensions, skip_unlabelled)
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"{len(missing)} clip(s) listed in '{_path(source)}' do not exist, e.g. '{missing[0]}'")
    h, w = _size(size, allow_none=False)
    frames, masks, _ = _core.load_video_batch(paths, _num_frames(num_frames), h, w, str(interpolation),
                                              bool(crop_to_aspect_ratio))
    out = (frames, masks, labels, names)
    return out + (paths,) if return_paths else out


# ------------------------------------------------------------------------------------------------
# Per-frame features

_CLASSIFIER_ACTIVATIONS = ("softmax", "sigmoid")


def _is_classifier(layer):
    name = layer.class_name
    if name in ("Dense", "Activation"):
        return str(layer.get_config().get("activation")) in _CLASSIFIER_ACTIVATIONS
    return name == "Softmax"


def feature_extractor(model, layer_name=None):
    """A new model computing ``model``'s output at ``layer_name`` (with copies of its weights).

    The new model holds fresh copies of the layers needed (rebuilt from their configs, weights
    copied), so ``model`` is left untouched and can still be trained; later training of ``model``
    does not change the extractor.

    Args:
        model: a built signcore model (Sequential or functional).
        layer_name: the layer whose output is wanted. None: the input of the final classifier (a
            Dense/Activation layer with softmax or sigmoid activation) when the model ends with one,
            else the model output.

    Returns:
        A signcore model (Sequential when the part kept is a chain).
    """
    from .models import Model

    core = getattr(model, "_core", None)
    if core is None:
        raise TypeError(f"Expected a signcore model. Received: {type(model).__name__}")
    if not core.built:
        model._require_built("layers to extract features from")
        core = model._core
    nodes = core.nodes
    if layer_name is None:
        target = core.output_node
        layer, inputs, _ = nodes[target]
        if _is_classifier(layer):
            if len(inputs) != 1 or inputs[0] < 0:
                raise ValueError(f"Model '{model.name}' is a single classifier layer: there is no earlier layer "
                                 f"to take features from. Pass layer_name=...")
            target = inputs[0]
    else:
        matches = [k for k, (layer, _, _) in enumerate(nodes) if layer.name == layer_name]
        if not matches:
            raise ValueError(f"No such layer: '{layer_name}'. Layers of model '{model.name}': "
                             f"{[n[0].name for n in nodes]}")
        target = matches[-1]

    needed, stack = set(), [target]
    while stack:
        k = stack.pop()
        if k < 0 or k in needed:
            continue
        needed.add(k)
        _, inputs, mask = nodes[k]
        stack += list(inputs) + ([mask] if mask is not None else [])
    input_ids = sorted({-1 - r for k in needed for r in list(nodes[k][1]) + [nodes[k][2]]
                        if r is not None and r < 0})

    sub = _core.Model(_core.unique_name(f"{model.name}_features"))
    names, shapes, dtypes = core.input_names, core.input_shapes, core.input_dtypes
    refs = {-1 - i: sub.add_input(names[i], list(shapes[i]), dtypes[i]) for i in input_ids}
    copies = {}
    for k in sorted(needed):  # nodes are stored in a topological order
        layer, inputs, mask = nodes[k]
        copy = _core.layer_from_config(layer.class_name, layer.get_config())
        copies[layer.name] = copy
        refs[k] = sub.add_node(copy, [refs[r] for r in inputs], None if mask is None else refs[mask])
    sub.set_output(refs[target])
    sub.build()

    values = {}
    for info in core.weights_info():
        values.setdefault(info["layer"], []).append(info["index"])
    for info in sub.weights_info():
        sub.set_weight(info["index"], core.get_weight(values[info["layer"]].pop(0)))
    return Model._from_core(sub)


def extract_features(model, frames, masks=None, layer_name=None, batch_size=32, verbose=0):
    """Run every real frame of every clip through ``model`` up to ``layer_name``: per-frame features.

    Args:
        model: a built signcore model taking single frames, input (H, W, C) (e.g. a CNN).
        frames: ``(N, T, H, W, C)`` clips (or one clip, ``(T, H, W, C)``).
        masks: ``(N, T)`` bool (or ``(T,)``); frames whose mask is False are not run through the
            model and their features are zeros. None: every frame is real.
        layer_name: layer whose output is the feature (see feature_extractor; default the input of
            the final softmax/sigmoid classifier, or the model output).
        batch_size: frames per forward pass.
        verbose: progress display of the forward passes (0 silent).

    Returns:
        ``(N, T, F)`` float32 (``(T, F)`` for one clip), F the size of the layer's output per frame
        (flattened when it has several axes).
    """
    frames = np.asarray(frames)
    single = frames.ndim == 4
    if single:
        frames = frames[None]
        masks = None if masks is None else np.asarray(masks)[None]
    if frames.ndim != 5:
        raise ValueError(f"frames must be (N, T, H, W, C) clips or one (T, H, W, C) clip. "
                         f"Received: shape {frames.shape}")
    n, t = frames.shape[:2]
    if masks is None:
        masks = np.ones((n, t), bool)
    masks = np.asarray(masks)
    if masks.shape != (n, t):
        raise ValueError(f"masks must have shape {(n, t)} to match frames {frames.shape}. "
                         f"Received: shape {masks.shape}")
    masks = masks.astype(bool)
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer. Received: batch_size={batch_size!r}")
    extractor = feature_extractor(model, layer_name)
    in_shapes = extractor._core.input_shapes
    if len(in_shapes) != 1:
        raise ValueError(f"The feature extractor needs one input (a frame); this part of '{model.name}' takes "
                         f"{len(in_shapes)} inputs")
    if tuple(in_shapes[0]) != tuple(frames.shape[2:]):
        raise ValueError(f"Model '{model.name}' takes frames of shape {tuple(in_shapes[0])}. Received: frames of "
                         f"shape {tuple(frames.shape[2:])}; load the clips with size=(height, width) to match")
    feature_size = int(np.prod(extractor._core.output_shape))
    out = np.zeros((n * t, feature_size), np.float32)
    flat = frames.reshape((n * t,) + frames.shape[2:])
    real = np.flatnonzero(masks.reshape(-1))
    chunk = max(int(batch_size), 1) * 8  # bounded extra memory: a few batches of frames at a time
    for start in range(0, len(real), chunk):
        idx = real[start:start + chunk]
        y = extractor.predict(np.ascontiguousarray(flat[idx], dtype=np.float32), batch_size=batch_size,
                              verbose=verbose)
        out[idx] = y.reshape(len(idx), feature_size)
    out = out.reshape(n, t, feature_size)
    return out[0] if single else out
