"""Version, build configuration (OpenBLAS, threads) and the thread-count API."""
import pathlib
import re
import tomllib

import numpy as np
import pytest

import signcore


@pytest.fixture
def restore_threads():
    n = signcore.get_num_threads()
    yield n
    signcore.set_num_threads(n)


def test_version_matches_pyproject(repo_root):
    with open(repo_root / "pyproject.toml", "rb") as f:
        expected = tomllib.load(f)["project"]["version"]
    assert isinstance(signcore.__version__, str)
    assert signcore.__version__ == expected
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", signcore.__version__)


def test_show_config_returns_and_prints_everything(capsys):
    config = signcore.show_config()
    out = capsys.readouterr().out
    for key in ("signcore", "blas", "blas_library", "num_threads", "opencv", "compile_flags",
                "python", "numpy"):
        assert key in config, key
    assert config["signcore"] == signcore.__version__
    assert config["numpy"] == np.__version__
    assert re.match(r"\d+\.\d+", config["opencv"])
    assert "-O3" in config["compile_flags"]
    # Every value is in the printed report.
    for value in config.values():
        assert str(value) in out
    # print_out=False is silent and returns the same facts.
    again = signcore.show_config(print_out=False)
    assert capsys.readouterr().out == ""
    assert again == config


def test_blas_is_openblas_not_reference():
    config = signcore.show_config(print_out=False)
    # The string comes from OpenBLAS itself (openblas_get_config), so OpenBLAS is what is linked.
    assert config["blas"].startswith("OpenBLAS")
    assert re.search(r"OpenBLAS \d+\.\d+", config["blas"])
    assert "openblas" in config["blas_library"].lower()
    # Debian's reference BLAS lives in .../blas/libblas.so*; it must be neither linked nor loaded.
    assert "/blas/libblas" not in config["blas_library"]
    maps = pathlib.Path("/proc/self/maps")
    if maps.exists():
        loaded = maps.read_text()
        assert "libopenblas" in loaded
        assert not re.search(r"/blas/libblas\.so", loaded)


def test_show_config_reports_thread_count(restore_threads, capsys):
    signcore.set_num_threads(1)
    assert signcore.show_config(print_out=False)["num_threads"] == 1
    target = 3 if restore_threads != 3 else 2
    signcore.set_num_threads(target)
    config = signcore.show_config()
    assert config["num_threads"] == target
    assert re.search(rf"^threads\s+{target}$", capsys.readouterr().out, re.M)


def test_num_threads_round_trip(restore_threads):
    assert restore_threads >= 1
    for n in (1, 2, 5, 1):
        signcore.set_num_threads(n)
        assert signcore.get_num_threads() == n


def test_num_threads_rejects_non_positive(restore_threads):
    before = signcore.get_num_threads()
    with pytest.raises(ValueError, match="Received: n=0"):
        signcore.set_num_threads(0)
    with pytest.raises(ValueError, match="Received: n=-2"):
        signcore.set_num_threads(-2)
    # A rejected call changes nothing.
    assert signcore.get_num_threads() == before


@pytest.mark.parametrize("preset, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_import_makes_openmp_threads_sleep_unless_the_user_chose(preset, expected):
    """signcore sets OMP_WAIT_POLICY=PASSIVE before libgomp loads (spinning OpenMP threads starve
    OpenBLAS's on small machines); a value the user set is left alone."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    code = "import signcore, os; print(signcore.show_config(print_out=False)['omp_wait_policy'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected
