"""Saving and loading models: one file holding the architecture, the weights, the compile settings
and the optimizer state, in signcore's own format (docs/FORMAT.md).

The file is plain data (a JSON header and raw float32 tensors, with a checksum): loading it never
runs code, unlike pickle. Any file name works (``model.save("m.keras")`` or ``"m.h5"`` from Keras
code is accepted), but the content is always signcore's format, which Keras cannot read and which
cannot read Keras files. ``.signcore`` is the recommended extension.

Example:
    >>> model.save("digits.signcore")
    >>> same = signcore.saving.load_model("digits.signcore")
"""
import os

from . import _core

__all__ = [
    "save_model",
    "load_model",
    "save_weights",
    "load_weights",
    "model_to_bytes",
    "model_from_bytes",
    "read_header",
]


def _path(filepath):
    try:
        return os.fspath(filepath)
    except TypeError:
        raise TypeError(
            f"filepath must be a str or os.PathLike. Received: filepath={filepath!r}"
        ) from None


def _check_overwrite(path, overwrite):
    if not overwrite and os.path.exists(path):
        raise FileExistsError(
            f"'{path}' already exists and overwrite=False. Pass overwrite=True to replace it."
        )


def _built_core(model):
    """The model's built `_core.Model` (building it first when its input shape is known)."""
    core = getattr(model, "_core", None)
    if core is None:
        raise TypeError(f"Expected a signcore model. Received: {model!r}")
    if not core.built and hasattr(model, "_ensure_built"):
        model._ensure_built()  # raises a clear ValueError when the input shape is unknown
    return model._core


def _metadata(model):
    return {"python_class": type(model).__name__}


def save_model(model, filepath, overwrite=True, include_optimizer=True):
    """Saves a model to one file, as ``keras.saving.save_model`` (``model.save``) does.

    The write is atomic: the data goes to a temporary file in the same folder, which replaces
    ``filepath`` only once it is complete, so a failed save never leaves a damaged file.

    Args:
        model: A built signcore model.
        filepath: Where to write (str or os.PathLike); ``.signcore`` recommended.
        overwrite: If False and the file exists, raise FileExistsError instead of replacing it.
        include_optimizer: Whether to store the optimizer's state (slot variables and iteration
            count) so that training resumes exactly. The loss, metrics and optimizer settings are
            stored either way.

    Raises:
        ValueError: The model is not built yet.
        OSError: The file cannot be written (the previous file, if any, is left unchanged).
    """
    path = _path(filepath)
    _check_overwrite(path, overwrite)
    core = _built_core(model)
    _core.save_model(core, path, bool(include_optimizer), _metadata(model))


def load_model(filepath):
    """Loads a model written by ``save_model`` / ``model.save``.

    Args:
        filepath: The file (str or os.PathLike).

    Returns:
        The model, compiled with its saved loss, metrics and optimizer (state included) if it was
        compiled when saved.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not a signcore model file, truncated, corrupt, or a weights-only file; the
            message names the file and the problem.
    """
    core = _core.load_model(_path(filepath))
    return _wrap(core)


def _wrap(core):
    from .models import Model

    return Model._from_core(core)


def save_weights(model, filepath, overwrite=True):
    """Saves only the weights (in ``get_weights()`` order), as ``model.save_weights``.

    Args:
        model: A built signcore model.
        filepath: Where to write (str or os.PathLike).
        overwrite: If False and the file exists, raise FileExistsError.
    """
    path = _path(filepath)
    _check_overwrite(path, overwrite)
    _core.save_weights(_built_core(model), path)


def load_weights(model, filepath):
    """Loads weights saved by ``save_weights`` (or from a full model file) into ``model``.

    The model must have the same architecture: the number of weight tensors and each shape must
    match, in order (names may differ). Nothing is changed when they do not match.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not a signcore file, damaged, or weights that do not fit this model (the
            message lists both sides).
    """
    path = _path(filepath)
    _core.load_weights(_built_core(model), path)


def model_to_bytes(model, include_optimizer=True):
    """The bytes ``save_model`` would write (used for pickling)."""
    return _core.model_to_bytes(_built_core(model), bool(include_optimizer), _metadata(model))


def model_from_bytes(data):
    """Rebuilds a model from ``model_to_bytes`` output (used for unpickling)."""
    return _wrap(_core.model_from_bytes(bytes(data)))


def read_header(filepath):
    """The JSON header of a signcore file as a dict (format, model config, tensor table, ...)."""
    return _core.read_model_header(_path(filepath))
