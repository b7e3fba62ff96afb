"""signcore: Keras's vocabulary for small image, sign-language and video classifiers, with the
layers, the training loop, the optimisers and the data pipeline in C++.
"""
import os as _os

# A development build (cmake into build/dev) can be used in place of the installed extension.
_dev_build = _os.environ.get("SIGNCORE_DEV_BUILD")
if _dev_build:
    __path__.insert(0, _dev_build)  # noqa: F821 (package __path__)

from . import _core  # noqa: E402

__version__ = "0.1.0"
