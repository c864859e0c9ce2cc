"""msf: fast CPU inference for MixSynthFormer keyframe pose refinement (ICCV 2023).

    import msf
    r = msf.Refiner.load("model.safetensors")     # backend="auto" | "cpp" | "numpy"
    frames = r.refine(keyframes)                  # (Q+1, P) -> (T, P), T = K*Q + 1
"""
from . import checkpoint  # noqa: F401  (msf.checkpoint stays loaded by `import msf`, as before)
from .backend import available as backends
from .config import Config
from .errors import (
    BackendError,
    CheckpointError,
    Error,
    InputError,
    LegacyFormatError,
    UnknownBackendError,
    WeightsError,
)
from .keyframes import keyframe_indices
from .model import Model
from .refiner import Refiner, models
from .stream import Stream
from .weights import Weights


def _version() -> str:
    """pyproject.toml's [project] version, the one source: from the installed package's metadata, else (a
    source checkout on sys.path, not installed) from pyproject.toml itself."""
    import importlib.metadata
    try:
        return importlib.metadata.version("msf")
    except importlib.metadata.PackageNotFoundError:
        import re
        from pathlib import Path
        try:
            text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8")
        except OSError:
            return "0+unknown"
        found = re.search(r'^version = "([^"]+)"$', text, re.MULTILINE)
        return found.group(1) if found else "0+unknown"


__version__ = _version()
__all__ = ["BackendError", "CheckpointError", "Config", "Error", "InputError", "LegacyFormatError", "Model", "Refiner",
           "Stream", "UnknownBackendError", "Weights", "WeightsError", "backends", "keyframe_indices", "models",
           "__version__"]
