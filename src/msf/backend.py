"""Backends that run the model forward on (B, Q+1, P) float32 keyframes: C++ (`cpp`) and NumPy (`numpy`)."""
from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np

from .errors import BackendError, InputError, UnknownBackendError
from .inputs import is_integer
from .model import Model
from .reference import model_forward

try:
    from . import _core
except ImportError:  # a source checkout or a wheel built without the extension
    _core = None

RefineWindows = Callable[[np.ndarray], np.ndarray]  # a backend's forward: (B, Q+1, P) float32 -> (B, T, P) float32
ENV_VAR = "MSF_BACKEND"
_NUMPY_CHUNK = 256  # windows per NumPy call at most
_NUMPY_CHUNK_FLOATS = 1 << 24  # and at most ~this many workspace floats per call (64 MB; several temporaries)
_MAX_THREADS = 2**31 - 1  # a C int
_warned_fallback = False


def check_threads(threads: object) -> int:
    """threads as an int >= 0 (0: one per core); InputError for anything else (bool, float, str, < 0)."""
    if not is_integer(threads) or threads < 0:
        raise InputError(f"threads must be an integer >= 0 (0: one per core), got {threads!r}")
    return int(threads)


def _resolve_threads(threads: object) -> int:
    """check_threads, with 0 replaced by the number of cores (os.cpu_count())."""
    return check_threads(threads) or os.cpu_count() or 1


class NumpyBackend:
    """The pure-NumPy reference, float32 throughout."""

    name = "numpy"

    def __init__(self, model: Model, threads: int = 1):
        self._tensors = model.tensors
        self._config = model.config
        self._threads = _resolve_threads(threads)
        # Model.from_tensors capped workspace_floats, so one window always fits one call
        self._chunk = max(1, min(_NUMPY_CHUNK, _NUMPY_CHUNK_FLOATS // model.config.workspace_floats))
        self._max_abs_weight = max(float(np.abs(t).max(initial=0)) for t in model.tensors.values())

    def forward(self, keyframes: np.ndarray) -> np.ndarray:
        """keyframes (B, Q+1, P) float32 C-contiguous -> (B, T, P) float32; InputError (as the C++ core's
        NumericError) when the forward overflows float32.

        With threads > 1 the windows are split into parts run on a thread pool (NumPy releases the GIL in
        its kernels). A window's result does not depend on the other windows of its call (msf.reference
        computes every product per window, see reference.linear.vector_product), so the results are the
        same bit for bit for any thread count. The parts running at once hold at most one serial chunk of
        windows, so the working memory does not grow with the thread count."""
        batch = len(keyframes)
        out = np.empty((batch, self._config.T, self._config.P), dtype=np.float32)
        workers = min(self._threads, batch, self._chunk)  # never more windows at once than one serial chunk
        size = self._chunk if workers <= 1 else max(1, min(self._chunk // workers, -(-batch // workers)))
        starts = range(0, batch, size)

        def run(i: int) -> int:
            """Windows [i, i+size) into out; the first whose output is not finite, else batch."""
            part = out[i:i + size]
            with np.errstate(over="ignore", invalid="ignore"):  # per thread; overflow is detected just below
                part[...] = model_forward(keyframes[i:i + size], self._tensors, self._config.L)
            finite = np.isfinite(part).all(axis=(1, 2))
            return batch if finite.all() else i + int(np.argmin(finite))

        if workers <= 1 or len(starts) == 1:
            bad = next((b for b in map(run, starts) if b < batch), batch)  # stops at the first overflow
        else:
            with ThreadPoolExecutor(max_workers=min(workers, len(starts))) as pool:
                bad = min(pool.map(run, starts))
        if bad < batch:
            raise InputError(overflow_message(bad, float(np.abs(keyframes[bad]).max()), self._max_abs_weight))
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
        self._threads = min(check_threads(threads), _MAX_THREADS)  # 0: the core's one per core; <= 1 per window

    def forward(self, keyframes: np.ndarray) -> np.ndarray:
        """keyframes (B, Q+1, P) float32 C-contiguous -> (B, T, P) float32, windows split over the threads."""
        return self._model.refine(keyframes, self._threads)


_BACKENDS = {"cpp": CppBackend, "numpy": NumpyBackend}


def available() -> list[str]:
    """Names of the backends this installation can run, fastest first."""
    return [name for name in _BACKENDS if name != "cpp" or _core is not None]


def create(model: Model, backend: str = "auto", threads: int = 1) -> CppBackend | NumpyBackend:
    """backend: "cpp", "numpy", or "auto" (the MSF_BACKEND environment variable if set, else C++ when
    built, else NumPy with a one-time warning). threads: each call's windows are split over this many
    threads (0: one per core), in either backend. Raises InputError for a bad threads value or an unknown
    backend name (UnknownBackendError, also a BackendError), BackendError for "cpp" where it is not built."""
    global _warned_fallback
    check_threads(threads)
    if backend == "auto":
        backend = os.environ.get(ENV_VAR, "").strip().lower() or "auto"
    if backend == "auto":
        if _core is not None:
            return CppBackend(model, threads)
        if not _warned_fallback:
            warnings.warn("msf: the C++ extension is not built; using the (slower) NumPy backend",
                          RuntimeWarning, stacklevel=3)
            _warned_fallback = True
        return NumpyBackend(model, threads)
    if backend not in _BACKENDS:
        raise UnknownBackendError(f"unknown backend {backend!r}: choose 'auto', 'cpp' or 'numpy' "
                                  f"(also for ${ENV_VAR})")
    return _BACKENDS[backend](model, threads)
