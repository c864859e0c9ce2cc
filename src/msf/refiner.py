"""The public API: load a model, refine keyframe windows."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import backend as backends_, live, predict as predict_, recover as recover_, stream as stream_, weights
from .config import Config
from .errors import InputError, WeightsError
from .inputs import MIN_SCORE, real_array
from .model import Model
from .pose import PoseConvention

MODELS_DIR = Path(__file__).parent / "models"


def models() -> list[str]:
    """Names of the models shipped with msf, loadable with Refiner.load(name)."""
    return sorted(p.stem for p in MODELS_DIR.glob("*.safetensors"))


class Refiner:
    """A loaded MixSynthFormer bound to a backend.

    Thread safety: `refine` may be called from many threads at once on one Refiner (the C++ backend
    releases the GIL; no state is shared between calls).
    """

    def __init__(self, model: Model, backend: str = "auto", threads: int = 1):
        self._model = model
        self._prediction = predict_.read_prediction(model.metadata, model.config)
        self._backend = backends_.create(model, backend, threads)
        self._threads = threads
        self._origin: tuple = ("model", model)  # what a pickle holds; load() puts the file there instead

    @classmethod
    def load(cls, source: str | os.PathLike | bytes, backend: str = "auto", threads: int = 1) -> "Refiner":
        """source: a .safetensors path, the file's bytes, or a shipped model's name (see msf.models()).
        backend: "auto", "cpp" or "numpy". threads: each batch of windows is split over this many threads,
        in either backend (0: one per core; results are identical for any count). Raises WeightsError for a
        missing or malformed file, InputError for a bad threads value or an unknown backend name,
        BackendError for backend="cpp" where the C++ extension is not built.

        A Refiner pickles as what it was loaded from (the file's bytes, or a shipped model's name and the
        file's sha256 digest, checked when unpickled), its backend ("cpp" or "numpy", as resolved here)
        and threads, so it can be sent to other processes (spawn pools, Ray): unpickling loads it again,
        and its results are bit-identical."""
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            return cls._loaded(weights.parse(data), ("bytes", data), backend, threads)
        path = Path(source)
        exists = os.path.exists(path)  # False, not OSError, for a name too long to be a path
        if not exists and isinstance(source, str) and os.path.exists(MODELS_DIR / f"{source}.safetensors"):
            return _load_shipped(source, None, backend, threads)
        if not exists:
            raise WeightsError(f"no weights file {os.fspath(source)!r} and no shipped model of that name "
                               f"(shipped models: {_shipped_names()})")
        data, parsed = weights.read_with_bytes(path)
        return cls._loaded(parsed, ("bytes", data), backend, threads)

    @classmethod
    def _loaded(cls, parsed: weights.Weights, origin: tuple, backend: str, threads: int) -> "Refiner":
        refiner = cls(Model.from_weights(parsed), backend, threads)
        refiner._origin = origin
        return refiner

    def __reduce__(self):
        return _unpickle, (self._origin, self.backend, self._threads)

    @property
    def config(self) -> Config:
        """Hyper-parameters: K, Q, P, C, L, ... and T = K*Q + 1."""
        return self._model.config

    @property
    def backend(self) -> str:
        """"cpp" or "numpy"."""
        return self._backend.name

    @property
    def pose(self) -> Mapping[str, Any]:
        """The pose convention from the file's metadata (joints, dims, units, ...), as stored; {} when absent."""
        return self._model.pose

    @property
    def convention(self) -> PoseConvention:
        """The pose convention, typed: skeleton, joints, dims, units, root joints, image normalisation."""
        return self._model.convention

    @property
    def metadata(self) -> Mapping[str, str]:
        return self._model.metadata

    def refine(self, keyframes: Any) -> np.ndarray:
        """The official forward on keyframe windows: every frame of each window from its Q+1 keyframes.

        keyframes: poses at frames 0, K, ..., K*Q of each window, in the units and normalisation the model
        was trained with: (Q+1, P), (Q+1, J, D), (B, Q+1, P) or (B, Q+1, J, D), with P = J*D; any real
        dtype (computed in float32). Returns float32 of the same layout with Q+1 replaced by T = K*Q + 1.
        Raises InputError for a wrong shape, a non-numeric dtype or non-finite values, and when the forward
        overflows float32 (finite keyframes far outside the model's units, or weights no training produces):
        non-finite frames are never returned. Subnormal values count as zero (weights are flushed at load;
        the C++ forward flushes activations too).
        """
        c = self.config
        array = real_array(keyframes, "keyframes")
        batched, pose_dims = self._layout(array.shape)
        windows = array.reshape(((-1,) if batched else (1,)) + (c.n_keyframes, c.P))
        if windows.dtype == np.float32 and windows.flags.c_contiguous:
            flat = windows  # the common case, without the conversion's context manager (batch-1 latency)
        else:
            with np.errstate(over="ignore"):  # values beyond float32 become inf and are refused just below
                flat = np.ascontiguousarray(windows, dtype=np.float32)
        try:
            out = self._backend.forward(flat)
        except InputError:
            # Non-finite keyframes are looked for only here: both backends refuse them (the C++ core checks
            # its input, NumPy's non-finite output is refused), and the check costs ~1.5 us at batch 1
            if not np.isfinite(flat).all():
                window, keyframe = np.argwhere(~np.isfinite(flat).all(axis=2))[0]
                where = f"window {window}, keyframe {keyframe}" if batched else f"keyframe {keyframe}"
                raise InputError(f"keyframes contain NaN or infinite values (first at {where}, or out of "
                                 f"float32 range); fill missing detections before refine") from None
            raise
        shape = ((len(flat),) if batched else ()) + (c.T,) + pose_dims
        return out.reshape(shape)

    def recover(self, keyframes: Any, n_frames: int, *, image_size=None, stride: int | None = None,
                scores: Any = None, min_score: float = MIN_SCORE) -> np.ndarray:
        """Every frame of a video from detections on one frame in K, in the user's own units.

        keyframes: the poses detected on msf.keyframe_indices(n_frames, K) (frames 0, K, 2K, ... and the
        last frame): (M, J, D) or (M, P), or with a leading track axis (N, M, J, D) / (N, M, P) for several
        people; 3D in millimetres (camera or world coordinates), 2D in pixels. NaN marks a missing joint
        or keyframe: it is filled linearly from the same joint's neighbouring detections (held at the ends).
        n_frames: the video's length, any n >= 1. image_size: (width, height) in pixels, required by 2D
        models. stride: windows start every stride*K frames (1 <= stride <= Q; default 1, as in the
        official evaluation); overlapping windows are averaged.
        scores: the detector's confidence per joint, the keyframes' shape without its last axis ((M, J) or
        (N, M, J)); a joint scored below min_score (default 0.3) is missing, as NaN is; a NaN score keeps its
        joint. A 2D model also takes keyframes (..., J, 3) of (x, y, score), as detectors return them.
        Returns float32 (n_frames, J, D) (or (n_frames, P), or (N, n_frames, ...)), in the input's units.
        The model's normalisation (root-relative 3D, image-normalised 2D) is applied and undone here.
        Raises InputError naming the argument: n_frames not an integer >= 1 or not matching the keyframe
        count (checked arithmetically, before anything of size n_frames is allocated), stride not an integer
        in 1..Q, image_size not positive numbers within float32 range, no tracks, values beyond float32
        range before or after normalisation, and frames that would not be finite (see refine).
        """
        self._require_keyframe_model("recover")
        return recover_.recover(self.config, self._backend.forward, self.convention, keyframes, n_frames,
                                image_size=image_size, stride=stride, scores=scores, min_score=min_score)

    def stream(self, *, image_size=None, stride: int | None = None, latency: str = "window",
               min_score: float = MIN_SCORE):
        """An online recover() for one person, fed the detections on frames 0, K, 2K, ... one by one.

        latency="window" (default): msf.stream.Stream, exactly recover()'s frames, each (Q+1)K to (Q+2)K
        frames after it (push, finish). latency="keyframe": msf.live.LiveStream, each frame within K frames
        of its detection, from the window ending on the newest detection (push only; stride does not apply;
        a missing joint holds its last detection). A 2D model's stream also takes (J, 3) keyframes of x, y,
        score: joints scored below min_score are missing, as in recover()."""
        self._require_keyframe_model("stream")
        if latency == "keyframe":
            if stride is not None:
                raise InputError("stride applies to latency='window' streams only (a live stream runs one window "
                                 "per detection)")
            return live.LiveStream(self.config, self._backend.forward, self.convention, image_size=image_size,
                                   min_score=min_score)
        if latency != "window":
            raise InputError(f"latency must be 'window' (recover()'s frames) or 'keyframe' (each frame within K "
                             f"frames of its detection), got {latency!r}")
        return stream_.Stream(self.config, self._backend.forward, self.convention, image_size=image_size,
                              stride=stride, min_score=min_score)

    @property
    def prediction(self) -> predict_.Prediction | None:
        """For a motion-prediction model (e.g. "h36m17-3d-predict"): its history_frames, future_frames and
        fps; None for a keyframe model."""
        return self._prediction

    def predict(self, history: Any, n_future: int, *, image_size=None) -> np.ndarray:
        """The next n_future frames of a motion from its observed frames (paper §3.6), with a prediction model.

        history: (H, J, D) or (N, H, J, D) for N motions (or P = J*D for J, D), H >= prediction.history_frames
        observed frames sampled at prediction.fps, in the model's units (3D: millimetres); the last
        history_frames are used and must be complete (no NaN). n_future: 1..prediction.future_frames.
        image_size: (width, height) for image-normalised 2D models. Returns float32 (n_future, J, D) (or
        (N, n_future, ...)): the frames after the last observed one. Root-relative 3D models predict the
        pose about the root joint(s); the root moves on at its last observed velocity.
        Raises InputError for a keyframe model, a wrong shape, too few frames, NaN, or n_future out of range.
        """
        if self._prediction is None:
            raise InputError(f"this is a keyframe model (K={self.config.K}): predict needs a motion-prediction "
                             f"model, e.g. msf.Refiner.load('h36m17-3d-predict')")
        return predict_.predict(self.config, self._backend.forward, self.convention, self._prediction, history,
                                n_future, image_size=image_size)

    def _require_keyframe_model(self, what: str) -> None:
        if self._prediction is not None:
            raise InputError(f"this is a motion-prediction model ({self._prediction.history_frames} observed "
                             f"frames -> {self._prediction.future_frames} predicted): {what}() needs a keyframe "
                             f"model; use predict(history, n_future)")

    def __repr__(self) -> str:
        c, pose = self.config, self.convention
        parts = [pose.skeleton, f"{pose.dims}D" if pose.dims else None, pose.units]
        what = "".join(f" {p}" for p in parts if p)
        what = f",{what}" if what else ""
        return f"Refiner(K={c.K}, Q={c.Q}, P={c.P}, C={c.C}, L={c.L}{what}, backend={self.backend!r})"

    def _layout(self, shape: tuple[int, ...]) -> tuple[bool, tuple[int, ...]]:
        """(batched?, pose dims) for an accepted keyframe shape; InputError naming the expected shapes."""
        c = self.config
        q1, P = c.n_keyframes, c.P
        known = self.convention.shape
        if len(shape) == 2 and shape == (q1, P):
            return False, (P,)
        if len(shape) == 3 and shape[1:] == (q1, P):
            return True, (P,)
        if len(shape) == 3 and shape[0] == q1 and shape[1] * shape[2] == P and known in (None, shape[1:]):
            return False, shape[1:]
        if len(shape) == 4 and shape[1] == q1 and shape[2] * shape[3] == P and known in (None, shape[2:]):
            return True, shape[2:]
        J, D = known or ("J", "D")
        raise InputError(f"keyframes have shape {shape}; this model (K={c.K}, Q={c.Q}, P={P}) expects "
                         f"({q1}, {P}), ({q1}, {J}, {D}), (B, {q1}, {P}) or (B, {q1}, {J}, {D}): "
                         f"the Q+1 = {q1} keyframes at frames 0, {c.K}, ..., {c.K * c.Q} of each window")


def _shipped_names() -> str:
    return ", ".join(models()) or "none in this installation"


def _load_shipped(name: str, digest: str | None, backend: str, threads: int) -> Refiner:
    """A shipped model by name; with a digest (from a pickle), WeightsError unless this installation's
    file has that sha256, so that a worker never runs a different model than the one pickled."""
    path = MODELS_DIR / f"{name}.safetensors"
    if not path.exists():
        raise WeightsError(f"a pickled Refiner names the shipped model {name!r}, which this installation does "
                           f"not have (shipped models: {_shipped_names()}); install the same msf version")
    data, parsed = weights.read_with_bytes(path)
    found = hashlib.sha256(data).hexdigest()
    if digest is not None and found != digest:
        raise WeightsError(f"a pickled Refiner was loaded from the shipped model {name!r} with sha256 "
                           f"{digest[:16]}..., but this installation's {path} has sha256 {found[:16]}...: install "
                           f"the same msf version, or load the model from a file (a pickle then carries its bytes)")
    return Refiner._loaded(parsed, ("shipped", name, found), backend, threads)


def _unpickle(origin: tuple, backend: str, threads: int) -> Refiner:
    """Refiner.__reduce__'s inverse: loads the model again from what the pickle holds."""
    kind, *what = origin
    if kind == "model":
        return Refiner(what[0], backend, threads)
    if kind == "bytes":
        return Refiner.load(what[0], backend, threads)
    return _load_shipped(*what, backend, threads)
