"""Backends that run the model forward on (B, Q+1, P) float32 keyframes: C++ (`cpp`) and NumPy (`numpy`)."""
from __future__ import annotations

import os
import warnings

import numpy as np

from .errors import BackendError, InputError
from .model import Model
from .reference import model_forward

try:
    from . import _core
except ImportError:  # a source checkout or a wheel built without the extension
    _core = None

ENV_VAR = "MSF_BACKEND"
_NUMPY_CHUNK = 256  # windows per NumPy call at most
_NUMPY_CHUNK_FLOATS = 1 << 24  # and at most ~this many workspace floats per call (64 MB; several temporaries)
_warned_fallback = False


class NumpyBackend:
    """The pure-NumPy reference, float32 throughout."""

    name = "numpy"

    def __init__(self, model: Model, threads: int = 1):  # NumPy's BLAS has its own threads
        self._tensors = model.tensors
        self._config = model.config
        # Model.from_tensors capped workspace_floats, so one window always fits one call
        self._chunk = max(1, min(_NUMPY_CHUNK, _NUMPY_CHUNK_FLOATS // model.config.workspace_floats))
        self._max_abs_weight = max(float(np.abs(t).max(initial=0)) for t in model.tensors.values())

    def forward(self, keyframes: np.ndarray) -> np.ndarray:
        """keyframes (B, Q+1, P) float32 C-contiguous -> (B, T, P) float32; InputError (as the C++ core's
        NumericError) when the forward overflows float32."""
        out = np.empty((len(keyframes), self._config.T, self._config.P), dtype=np.float32)
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is detected on the output just below
            for i in range(0, len(keyframes), self._chunk):
                part = out[i:i + self._chunk]
                part[...] = model_forward(keyframes[i:i + self._chunk], self._tensors, self._config.L)
                finite = np.isfinite(part).all(axis=(1, 2))
                if not finite.all():
                    bad = i + int(np.argmin(finite))
                    raise InputError(overflow_message(bad, float(np.abs(keyframes[bad]).max()),
                                                      self._max_abs_weight))
        return out


def overflow_message(window: int, largest_keyframe: float, largest_weight: float) -> str:
    """The C++ core's NumericError message, for the NumPy backend."""
    return (f"the model's output is NaN or infinite for window {window}: the forward overflowed float32 "
            f"(largest |keyframe| there {largest_keyframe:.3g}, largest |weight| {largest_weight:.3g}); give "
            f"keyframes in the units and normalisation the model was trained with, and weights of a trained model")


class CppBackend:
    """The C++ core (msf._core); thread-safe, releases the GIL during the forward."""

    name = "cpp"

    def __init__(self, model: Model, threads: int = 1):
        if _core is None:
            raise BackendError("the C++ backend is not available: msf._core was not built "
                               "(reinstall with `pip install .` and a C++17 compiler, or use backend='numpy')")
        self._model = _core.Model(dict(model.tensors))
        self._threads = threads

    def forward(self, keyframes: np.ndarray) -> np.ndarray:
        """keyframes (B, Q+1, P) float32 C-contiguous -> (B, T, P) float32, windows split over the threads."""
        return self._model.refine(keyframes, self._threads)


_BACKENDS = {"cpp": CppBackend, "numpy": NumpyBackend}


def available() -> list[str]:
    """Names of the backends this installation can run, fastest first."""
    return [name for name in _BACKENDS if name != "cpp" or _core is not None]


def create(model: Model, backend: str = "auto", threads: int = 1) -> CppBackend | NumpyBackend:
    """backend: "cpp", "numpy", or "auto" (the MSF_BACKEND environment variable if set, else C++ when
    built, else NumPy with a one-time warning). threads: C++ threads per call (0: one per core)."""
    global _warned_fallback
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 0:
        raise BackendError(f"threads must be an integer >= 0 (0: one per core), got {threads!r}")
    if backend == "auto":
        backend = os.environ.get(ENV_VAR, "").strip().lower() or "auto"
    if backend == "auto":
        if _core is not None:
            return CppBackend(model, threads)
        if not _warned_fallback:
            warnings.warn("msf: the C++ extension is not built; using the (slower) NumPy backend",
                          RuntimeWarning, stacklevel=3)
            _warned_fallback = True
        return NumpyBackend(model)
    if backend not in _BACKENDS:
        raise BackendError(f"unknown backend {backend!r}: choose 'auto', 'cpp' or 'numpy' "
                           f"(also for ${ENV_VAR})")
    return _BACKENDS[backend](model, threads)
