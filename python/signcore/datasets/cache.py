"""Where datasets live, how they are downloaded, unpacked and unpickled safely.

Folders, in the order the loaders search them:

1. the ``path`` argument of a loader;
2. ``$SIGNCORE_DATA`` (a folder holding ``cifar-10-batches-py``, ``fer2013``, ... or the archives);
3. the cache, ``$SIGNCORE_CACHE`` or ``~/.cache/signcore``, where downloads and unpacked archives go
   (``<cache>/datasets``).

Every write is atomic: a download goes to a temporary file in the destination folder, is checked
against its checksum and only then renamed into place; an archive is unpacked into a temporary
folder that is renamed into place once complete. An interrupted download or extraction therefore
never leaves a half-written file that a later run would trust.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile

__all__ = [
    "cache_dir",
    "data_dir",
    "extract_archive",
    "file_hash",
    "get_file",
    "is_archive",
    "restricted_load",
    "atomic_open",
    "atomic_write_bytes",
]

_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip")


def cache_dir(subdir=None):
    """The cache folder: ``$SIGNCORE_CACHE`` or ``~/.cache/signcore`` (plus ``subdir``), created."""
    root = os.environ.get("SIGNCORE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "signcore")
    path = os.path.join(root, subdir) if subdir else root
    os.makedirs(path, exist_ok=True)
    return path


def data_dir():
    """``$SIGNCORE_DATA`` when set (a folder of local datasets), else None."""
    path = os.environ.get("SIGNCORE_DATA")
    return os.path.expanduser(path) if path else None


def file_hash(path, algorithm="sha256", chunk_size=1 << 20):
    """Hex digest of a file ("sha256" or "md5")."""
    return _digest(path, algorithm, chunk_size)


def _digest(path, algorithm, chunk_size=1 << 20):
    h = _hasher(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            h.update(block)
    return h.hexdigest()


def _hasher(algorithm):
    if algorithm not in ("sha256", "md5"):
        raise ValueError(f"hash_algorithm must be 'sha256', 'md5' or 'auto'. Received: {algorithm!r}")
    return hashlib.new(algorithm)


def _algorithm_for(file_hash_value, algorithm):
    if algorithm != "auto":
        return algorithm
    return "sha256" if len(file_hash_value) == 64 else "md5"  # Keras's rule for "auto"


def get_file(fname, origin, file_hash=None, hash_algorithm="auto", cache_subdir="datasets", extract=False,
             cache_dir=None, timeout=60.0):
    """Download ``origin`` into the cache once and return the local path (as keras.utils.get_file).

    A cached file whose checksum matches is reused without any network access; one that does not
    match is downloaded again. The download is written to a temporary file beside the destination,
    verified, and renamed into place, so a partial download is never mistaken for the real file.

    Args:
        fname: file name inside the cache folder (e.g. "cifar-10-python.tar.gz").
        origin: URL to download from when the file is not cached.
        file_hash: expected md5 or sha256 hex digest; None skips verification.
        hash_algorithm: "md5", "sha256", or "auto" (sha256 for 64 hex digits, md5 otherwise).
        cache_subdir: folder under the cache root.
        extract: if True, unpack the archive next to it and return the folder it was unpacked into.
        cache_dir: cache root to use instead of ``$SIGNCORE_CACHE`` / ``~/.cache/signcore``.
        timeout: seconds to wait on the network before giving up.

    Returns:
        The path of the file, or of the unpacked folder when ``extract`` is True.

    Raises:
        OSError: the download failed (no internet, HTTP error) or the file's checksum is wrong.
    """
    root = os.fspath(cache_dir) if cache_dir is not None else _cache_root()
    folder = os.path.join(root, cache_subdir) if cache_subdir else root
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, fname)
    expected = file_hash.lower() if file_hash else None
    algorithm = _algorithm_for(expected, hash_algorithm) if expected else None
    if not _cached_ok(path, expected, algorithm):
        _download(origin, path, expected, algorithm, timeout)
    if extract:
        target = os.path.join(folder, _archive_stem(fname))
        return extract_archive(path, target)
    return path


_cache_root = cache_dir


def _cached_ok(path, expected, algorithm):
    if not os.path.isfile(path):
        return False
    return expected is None or _digest(path, algorithm) == expected


def _download(origin, path, expected, algorithm, timeout):
    folder = os.path.dirname(path)
    h = _hasher(algorithm) if expected else None
    fd, tmp = tempfile.mkstemp(prefix=".download-", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(origin, timeout=timeout) as response:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        out.write(block)
                        if h is not None:
                            h.update(block)
            except (urllib.error.URLError, OSError, ValueError) as e:
                raise OSError(f"Could not download {origin} to {path}: {e}. Without internet access, copy "
                              f"the file there yourself (or pass a local path to the loader).") from e
        if h is not None and h.hexdigest() != expected:
            raise OSError(f"The file downloaded from {origin} has {algorithm} {h.hexdigest()}, expected "
                          f"{expected}: the download is damaged or the file has changed. Nothing "
                          f"was written to {path}.")
        os.replace(tmp, path)
        tmp = None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
    return path


def is_archive(path):
    """Whether ``path`` names an archive the loaders can unpack (tar, tar.gz/bz2/xz, zip)."""
    return str(path).lower().endswith(_ARCHIVE_SUFFIXES)


def _archive_stem(name):
    base = os.path.basename(os.fspath(name))
    for suffix in _ARCHIVE_SUFFIXES:
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return base + ".d"


def _check_member(name, dest):
    target = os.path.realpath(os.path.join(dest, name))
    if os.path.isabs(name) or not (target == dest or target.startswith(dest + os.sep)):
        raise OSError(f"Refusing to unpack '{name}': it would be written outside {dest}")


def extract_archive(archive, target=None):
    """Unpack ``archive`` into the folder ``target`` (atomically) and return ``target``.

    An existing ``target`` is returned as it is (it was completed by an earlier call: the folder
    only appears once fully unpacked). Members that would land outside ``target`` (absolute paths,
    ``..``, links pointing out) are refused.

    Args:
        archive: a .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz or .zip file.
        target: destination folder; default ``<cache>/extracted/<archive name>-<size>-<mtime>``.
    """
    archive = os.fspath(archive)
    if not os.path.isfile(archive):
        raise FileNotFoundError(f"No such archive: '{archive}'")
    if target is None:
        st = os.stat(archive)
        target = os.path.join(cache_dir("extracted"), f"{_archive_stem(archive)}-{st.st_size}-{st.st_mtime_ns}")
    target = os.path.abspath(os.fspath(target))
    if os.path.isdir(target):
        return target
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".extract-", dir=parent)
    try:
        real_tmp = os.path.realpath(tmp)
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for name in z.namelist():
                    _check_member(name, real_tmp)
                z.extractall(tmp)
        else:
            try:
                tar = tarfile.open(archive)
            except tarfile.TarError as e:
                raise OSError(f"'{archive}' is not a readable tar or zip archive: {e}") from e
            with tar:
                for member in tar.getmembers():
                    _check_member(member.name, real_tmp)
                    if member.islnk() or member.issym():
                        _check_member(os.path.join(os.path.dirname(member.name), member.linkname), real_tmp)
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(tmp, filter="data")
                else:  # pragma: no cover - Python without extraction filters
                    tar.extractall(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not os.path.isdir(target):  # another process did not win the race: a real error
                raise
        else:
            tmp = None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


@contextlib.contextmanager
def atomic_open(path):
    """Open a temporary file beside ``path`` for binary writing; on success it replaces ``path``.

    If the block raises, the temporary file is removed and ``path`` is left as it was.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    with atomic_open(path) as f:
        f.write(data)


# ------------------------------------------------------------------------------------------------
# Safe unpickling

# What the dataset pickles (CIFAR-10 batches, feature pickles) legitimately refer to: NumPy arrays,
# dtypes and scalars, and the helper Python uses for bytes in protocol 2 pickles.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"Refusing to load '{module}.{name}' from a pickle: dataset files may only hold dicts, lists, "
            f"tuples, strings, bytes, numbers and NumPy arrays. If you trust this file, load it with "
            f"pickle.load yourself.")


def restricted_load(file, encoding="ASCII"):
    """``pickle.load`` that only rebuilds plain containers, numbers, strings, bytes and NumPy arrays.

    Any other global (a class or function, e.g. ``os.system``) raises ``pickle.UnpicklingError``
    instead of running, so a tampered dataset file cannot execute code.

    Args:
        file: a binary file object.
        encoding: as pickle.load (CIFAR-10's Python 2 batches need "bytes").
    """
    return _RestrictedUnpickler(file, encoding=encoding).load()
