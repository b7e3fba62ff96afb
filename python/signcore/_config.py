"""Build and runtime configuration: what signcore was compiled with and what it runs on."""
import os
import platform
import sys

from . import _core

__all__ = ["show_config"]


def show_config(print_out=True):
    """Prints and returns how signcore was built and what it is running with.

    Reports the signcore version, the BLAS library actually linked (OpenBLAS, with its version and
    the CPU kernel it selected), the number of threads in use, the OpenCV version, the compiler
    flags the C++ core was built with (it is compiled for the CPU that built it), and the Python
    and NumPy versions. Include the output in bug reports.

    Args:
        print_out: Whether to print the report. The dict is returned either way.

    Returns:
        A dict with the keys `"signcore"`, `"blas"`, `"blas_library"`, `"num_threads"`,
        `"omp_wait_policy"`, `"opencv"`, `"compile_flags"`, `"python"`, `"numpy"` and `"platform"`.

    Example:

    >>> import signcore
    >>> config = signcore.show_config()  # doctest: +SKIP
    >>> config["num_threads"]  # doctest: +SKIP
    2
    """
    import numpy

    from . import __version__

    build = dict(_core.build_config())
    config = {
        "signcore": __version__,
        "blas": build.get("blas", "unknown"),
        "blas_library": build.get("blas_library", "unknown"),
        "num_threads": int(_core.get_num_threads()),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "opencv": build.get("opencv", "unknown"),
        "compile_flags": build.get("compile_flags", "unknown"),
        "python": f"{platform.python_version()} ({sys.executable})",
        "numpy": numpy.__version__,
        "platform": f"{platform.system()} {platform.machine()}",
    }
    if print_out:
        labels = {
            "signcore": "signcore",
            "blas": "BLAS",
            "blas_library": "BLAS library",
            "num_threads": "threads",
            "omp_wait_policy": "OMP_WAIT_POLICY",
            "opencv": "OpenCV",
            "compile_flags": "compiled with",
            "python": "Python",
            "numpy": "NumPy",
            "platform": "platform",
        }
        width = max(len(v) for v in labels.values())
        for key, label in labels.items():
            print(f"{label:<{width}}  {config[key]}")
    return config
