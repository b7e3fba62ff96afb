"""Shared fixtures for the whole suite.

The suite tests the *installed* signcore (run pytest from the repository root, e.g. `make test`), or a
development build when SIGNCORE_DEV_BUILD points at one. Nothing here skips tests: a missing
dependency or data folder is an error, not a skip.
"""
import os
import pathlib
import signal

# Plots must never try to open a window (CI has no display); set before anything imports matplotlib.
os.environ["MPLBACKEND"] = "Agg"

# A process started in the background by a non-interactive shell (as some CI runners and nohup-style
# launchers do) inherits SIGINT *ignored*, and Python then installs no KeyboardInterrupt handler.
# Restore it so the Ctrl-C tests behave as in a terminal; subprocesses then start with the default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root():
    """The repository root (the folder holding pyproject.toml)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's bundled handwritten digits, split like the demo (no download needed).

    Returns a `signcore.demo.Digits` with `x_train` (1437, 64) and `x_test` (360, 64) float32 in
    [0, 1], `y_train` / `y_test` int64 class ids 0..9 (stratified, fixed split), and `class_names`.
    Treat the arrays as read-only: the fixture is shared by the whole session.
    """
    from signcore.demo import load_digits_data

    data = load_digits_data()
    for a in (data.x_train, data.y_train, data.x_test, data.y_test):
        a.setflags(write=False)
    return data


@pytest.fixture
def tmp(tmp_path):
    """A fresh empty directory (a pathlib.Path) for files a test writes."""
    return tmp_path


@pytest.fixture
def rng():
    """A NumPy generator with a fixed seed, so test inputs are the same on every run."""
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def shared_datasets():
    """Path of ../shared/datasets relative to the repository root (the course's dataset archives).

    Fails with a clear message when the folder is absent: tests that need it are not skipped.
    """
    path = (REPO_ROOT / ".." / "shared" / "datasets").resolve()
    if not path.is_dir():
        pytest.fail(
            f"The shared datasets folder is missing: expected {path} "
            f"(../shared/datasets next to the repository root {REPO_ROOT}).",
            pytrace=False,
        )
    return path
