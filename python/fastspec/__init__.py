"""fastspec: speculative-decoding LLM inference engine (C++ core, CUDA backend, Python front end)."""
import os as _os

# Developer builds: FASTSPEC_CORE_DIR names a CMake build folder holding _core*.so, so a tree can be
# tested without reinstalling (see cmake/dev-build.sh). Installed packages ignore it when unset.
if _os.environ.get("FASTSPEC_CORE_DIR"):
    __path__.insert(0, _os.environ["FASTSPEC_CORE_DIR"])  # noqa: F821 (package __path__)

from . import _core  # noqa: E402
from ._core import FormatError, ModelError  # noqa: E402
from .inspect import inspect, ModelInfo  # noqa: E402
from . import models  # noqa: E402
from .tokenizer import Tokenizer  # noqa: E402
from .engine import Engine, Generation  # noqa: E402

__version__ = "0.1.0"


def cuda_available() -> bool:
    """True when the CUDA backend was built and at least one CUDA device is usable."""
    return _core.cuda_device_count() > 0


__all__ = ["Engine", "Generation", "Tokenizer", "inspect", "ModelInfo", "models", "FormatError", "ModelError", "cuda_available", "__version__"]
