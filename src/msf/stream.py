"""Online refinement of one person (Refiner.stream): keyframes pushed one by one, frames out once final."""
from __future__ import annotations

import numpy as np

from .backend import RefineWindows
from .config import Config
from .errors import InputError
from .inputs import MIN_SCORE, check_min_score, pushed_pose
from .keyframes import check_n_frames, check_stride, keyframe_count, last_off_grid
from .normalise import Normaliser
from .pose import PoseConvention
from .track import Track


class Stream:
    """Online refinement of one person: push keyframes as the detector produces them, get final frames.

    push(keyframe) takes the detection on the next grid frame (0, K, 2K, ...) as (J, D) or (P,) in the
    user's units (NaN for missing joints; a 2D model also takes (J, 3) = x, y, score, joints scored below
    min_score missing) and returns the frames that became final, (F, J, D) float32 (or (F, P) when pushed
    flat), in order. finish(n_frames=None, last_keyframe=None) ends the video and returns the rest;
    last_keyframe is the detection on the last frame when n_frames - 1 is not a multiple of K. The
    concatenated output equals Refiner.recover on the same detections. A push or finish that raises leaves
    the stream as it was. Memory stays bounded however long the stream runs (a few windows' worth, more
    while a joint is missing: back to its last detection).

    Latency: frame f is returned by the push of the detection at frame f + (Q+1)K to f + (Q+2)K (a frame
    is final once no window can still cover it); a missing joint delays its keyframe until the joint is
    detected again.
    """

    def __init__(self, config: Config, refine_windows: RefineWindows, convention: PoseConvention,
                 image_size=None, stride: int | None = None, min_score: float = MIN_SCORE):
        self._config, self._refine, self._convention = config, refine_windows, convention
        self._image_size, self._stride = image_size, check_stride(stride, config.Q)
        check_min_score(min_score)
        self._min_score = min_score
        if convention.shape is not None:  # the convention's checks of image_size, now rather than at the first push
            Normaliser(convention, convention.shape, image_size)
        self._track: Track | None = None
        self._flat = False

    def _poses(self, keyframe) -> np.ndarray:
        pose = pushed_pose(keyframe, self._convention.shape, self._config.P, self._min_score)
        if not self.pushed:  # the first keyframe (or the first after one refused) fixes the shape
            self._flat = np.ndim(keyframe) == 1
            self._track = Track(self._config, self._refine,
                                Normaliser(self._convention, pose.shape, self._image_size), self._stride)
        elif pose.shape != self._track.normaliser.shape:
            raise InputError(f"keyframe shape {np.shape(keyframe)} differs from the first keyframe's")
        return pose[None]

    def _out(self, frames: np.ndarray) -> np.ndarray:
        return frames.reshape(len(frames), self._config.P) if self._flat else frames

    @property
    def pushed(self) -> int:
        """Keyframes pushed so far."""
        return len(self._track.raw) if self._track else 0

    def push(self, keyframe) -> np.ndarray:
        poses = self._poses(keyframe)
        with self._track.atomic():
            frames = self._track.extend(poses, [self.pushed * self._config.K])
        self._track.trim()
        return self._out(frames)

    def finish(self, n_frames: int | None = None, last_keyframe=None) -> np.ndarray:
        K = self._config.K
        if not self.pushed:
            raise InputError("finish() before any push(): a video needs at least one keyframe")
        if self._track.finished:
            raise InputError("finish() was already called: this stream is finished; start a new one")
        n_frames = (self.pushed - 1) * K + 1 if n_frames is None else check_n_frames(n_frames)
        expected = keyframe_count(n_frames, K)
        off_grid = last_off_grid(n_frames, K)
        if off_grid != (last_keyframe is not None) or self.pushed + off_grid != expected:
            raise InputError(f"{n_frames} frames need {expected} keyframes (msf.keyframe_indices({n_frames}, {K}))"
                             f"{', the last one passed as last_keyframe' if off_grid else ''}; "
                             f"{self.pushed} were pushed"
                             f"{' and a last_keyframe given' if last_keyframe is not None else ''}")
        poses = self._poses(last_keyframe) if off_grid else None
        with self._track.atomic():
            head = self._track.extend(poses, [n_frames - 1]) if off_grid else None
            tail = self._track.finish(n_frames)
        return self._out(tail if head is None else np.concatenate([head, tail]))
