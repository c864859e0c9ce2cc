"""Short-term motion prediction (paper §3.6): the next frames of a motion from its last observed frames.

A prediction model is the official architecture as a keyframe model with K = 1: its Q + 1 = T inputs are
the observed poses followed by the last observed pose repeated (the coarse fill of the future), its T
outputs the whole sequence, of which the future frames are the prediction. The weight file says so in
its metadata key "prediction": {"history_frames": H, "future_frames": F, "fps": ...} with H + F = T.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .backend import RefineWindows
from .config import Config
from .errors import InputError, WeightsError
from .inputs import FLOAT32_MAX, is_integer, real_array
from .normalise import Normaliser
from .pose import PoseConvention
from .weights import loads

METADATA_KEY = "prediction"


@dataclass(frozen=True)
class Prediction:
    """history_frames observed poses in, up to future_frames predicted out, sampled at fps."""

    history_frames: int
    future_frames: int
    fps: float


def read_prediction(metadata: Mapping[str, str], config: Config) -> Prediction | None:
    """The prediction setting a weight file declares, or None for a keyframe model; WeightsError when the
    declaration is malformed or does not fit the model's sizes."""
    text = metadata.get(METADATA_KEY)
    if text is None:
        return None
    fields = loads(text, f"metadata {METADATA_KEY!r}")  # as strictly as config and pose, and as the C++ loader
    h, f, fps = (fields.get(k) for k in ("history_frames", "future_frames", "fps")) if isinstance(fields, dict) \
        else (None, None, None)
    try:
        rate = float(fps) if is_integer(fps) or isinstance(fps, float) else np.nan
    except OverflowError:  # an integer beyond float range
        rate = np.inf
    if not (is_integer(h) and is_integer(f) and np.isfinite(rate) and rate >= np.finfo(np.float64).tiny) or \
            config.K != 1 or h < 2 or f < 1 or h + f != config.T:
        raise WeightsError(f"metadata {METADATA_KEY!r} must be {{\"history_frames\": H, \"future_frames\": F, "
                           f"\"fps\": f}} with integers H >= 2, F >= 1, H + F = T (here {config.T}) and f a positive "
                           f"normal number, for a model of K = 1 (here {config.K}); got {text[:200]!r}")
    return Prediction(h, f, rate)


def predict(config: Config, forward: RefineWindows, convention: PoseConvention, spec: Prediction, history,
            n_future: int, image_size=None) -> np.ndarray:
    """history (H, J, D) or (N, H, J, D) (or P for J, D), H >= spec.history_frames, in the model's units at
    spec.fps -> (n_future, J, D) or (N, n_future, J, D) float32: the frames after the last observed one.
    Root-relative models predict the pose about the root; the root itself moves on at its last velocity."""
    h, P, pose_shape = spec.history_frames, config.P, convention.shape
    if not is_integer(n_future) or not 1 <= n_future <= spec.future_frames:
        raise InputError(f"n_future must be an integer in 1..{spec.future_frames} (this model predicts up to "
                         f"{spec.future_frames} frames, {1000 * spec.future_frames / spec.fps:.0f} ms at "
                         f"{spec.fps:g} fps), got {n_future!r}")
    array = real_array(history, "history")
    if array.ndim in (2, 3) and array.shape[-1] == P and pose_shape is not None:
        batched, poses, shape_out = array.ndim == 3, array.reshape(array.shape[:-1] + pose_shape), (P,)
    elif array.ndim in (3, 4) and array.shape[-2] * array.shape[-1] == P and \
            pose_shape in (None, array.shape[-2:]):
        batched, poses, shape_out = array.ndim == 4, array, array.shape[-2:]
    else:
        J, D = pose_shape or ("J", "D")
        raise InputError(f"history has shape {array.shape}; this model expects (H, {J}, {D}) or (N, H, {J}, {D}) "
                         f"(or {P} for {J}, {D}) with H >= {h} observed frames at {spec.fps:g} fps")
    poses = poses[None] if not batched else poses
    if poses.shape[0] == 0:
        raise InputError("history holds no motions (its leading axis is 0)")
    if poses.shape[1] < h:
        raise InputError(f"history has {poses.shape[1]} frames; this model needs the last {h} observed frames "
                         f"(at {spec.fps:g} fps)")
    observed = poses[:, -h:].astype(np.float64)
    if not np.isfinite(observed).all():
        raise InputError(f"the last {h} frames of history contain NaN or infinite values; prediction needs "
                         f"complete poses (fill missing joints first, e.g. with recover())")
    if (np.abs(observed) > FLOAT32_MAX).any():
        raise InputError(f"the last {h} frames of history hold values beyond float32 range (|x| > "
                         f"{FLOAT32_MAX:.3g}); msf computes in float32: give poses in the model's units")
    normaliser = Normaliser(convention, observed.shape[-2:], image_size)
    normalised, offsets = normaliser.forward_many(observed)  # (N, h, J, D), (N, h, D)
    inputs = np.concatenate([normalised, np.repeat(normalised[:, -1:], spec.future_frames, axis=1)], axis=1)
    with np.errstate(over="ignore"):
        inputs32 = np.ascontiguousarray(inputs.reshape(len(inputs), config.T, P), dtype=np.float32)
    if not np.isfinite(inputs32).all():
        raise InputError("history values are beyond float32 range after normalisation")
    pose_dims = observed.shape[-2:]
    out = forward(inputs32)[:, h:h + n_future].reshape((-1,) + pose_dims).astype(np.float64)
    steps = np.arange(1, n_future + 1, dtype=np.float64)[None, :, None]
    root_path = offsets[:, -1:] + steps * (offsets[:, -1:] - offsets[:, -2:-1])  # (N, n_future, D)
    frames = normaliser.inverse(out, root_path.reshape(-1, root_path.shape[-1]))  # every motion's frames at once
    with np.errstate(over="ignore"):
        result = frames.astype(np.float32)
    if not np.isfinite(result).all():
        raise InputError("predicted frames are beyond float32 range")
    result = result.reshape((len(inputs), n_future) + shape_out)
    return result if batched else result[0]
