"""fastspec: speculative-decoding LLM inference engine (C++ core, CUDA backend, Python front end)."""
import os as _os

# Developer builds: FASTSPEC_CORE_DIR names a CMake build folder holding _core*.so, so a tree can be
# tested without reinstalling (see cmake/dev-build.sh; the sanitizer tests use it too). The file is
# loaded explicitly, ahead of any import hook (an editable install's finder would otherwise win).
# Installed packages ignore it when unset.
if _os.environ.get("FASTSPEC_CORE_DIR"):
    import glob as _glob
    import importlib.util as _ilu
    import sys as _sys

    _found = sorted(_glob.glob(_os.path.join(_os.environ["FASTSPEC_CORE_DIR"], "_core*.so")))
    if not _found:
        raise ImportError(f"FASTSPEC_CORE_DIR={_os.environ['FASTSPEC_CORE_DIR']} holds no _core*.so")
    _spec = _ilu.spec_from_file_location(__name__ + "._core", _found[0])
    _mod = _ilu.module_from_spec(_spec)
    _sys.modules[_spec.name] = _mod
    _spec.loader.exec_module(_mod)

from . import _core  # noqa: E402
from ._core import FormatError, ModelError  # noqa: E402
from .inspect import inspect, ModelInfo  # noqa: E402
from . import models  # noqa: E402
from .tokenizer import Tokenizer  # noqa: E402
from .engine import Engine, Generation  # noqa: E402
from .export_hf import export  # noqa: E402
from .quantizer import quantize  # noqa: E402  (imports torch only when it runs, method "awq")
from .perplexity_eval import perplexity  # noqa: E402

__version__ = "0.1.0"


def cuda_available() -> bool:
    """True when the CUDA backend was built and at least one CUDA device is usable."""
    return _core.cuda_device_count() > 0


__all__ = ["Engine", "Generation", "export", "quantize", "perplexity", "Tokenizer", "inspect", "ModelInfo", "models", "FormatError", "ModelError", "cuda_available", "__version__"]
