"""signcore: Keras's vocabulary for small image, sign-language and video classifiers, with the
layers, the training loop, the optimisers and the data pipeline in C++.

    import signcore
    from signcore import layers

    model = signcore.Sequential([layers.Dense(64, activation="relu", input_shape=(64,)),
                                 layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=10, validation_split=0.2)
"""
import os as _os

# A development build (scripts/dev_build.sh) can be used in place of the installed extension.
_dev_build = _os.environ.get("SIGNCORE_DEV_BUILD")
if _dev_build:
    __path__.insert(0, _dev_build)  # noqa: F821 (package __path__)

# libgomp's threads spin for a while after every parallel loop unless told otherwise. signcore's
# loops alternate with OpenBLAS's own threads, and on a small machine each spinning pool starves the
# other: one 48x48 prediction on 2 busy cores took 10-16 ms spinning, 1 ms passive. libgomp reads the
# variable once, when the extension loads it, so it is set here (a user's own value wins).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import _core  # noqa: E402
from . import (activations, backend, callbacks, datasets, initializers, layers,  # noqa: E402
               losses, metrics, models, optimizers, preprocessing, saving, utils, video)
from ._config import show_config  # noqa: E402
from .functional import Input  # noqa: E402
from .models import Model, Sequential  # noqa: E402
from . import applications, lr_finder, plot  # noqa: E402  (after models: they use them)

Model.lr_find = lr_finder.lr_find
layers.Input = Input  # keras.layers.Input is keras.Input

__version__ = _core.__version__  # from pyproject.toml, compiled in

set_num_threads = _core.set_num_threads
get_num_threads = _core.get_num_threads

__all__ = [
    "Input", "Model", "Sequential", "activations", "applications", "backend", "callbacks", "datasets",
    "get_num_threads", "initializers", "layers", "losses", "lr_finder", "metrics", "models", "optimizers", "plot",
    "preprocessing", "saving", "set_num_threads", "show_config", "utils", "video", "__version__",
]
