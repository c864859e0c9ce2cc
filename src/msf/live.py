"""Live use: every frame within K frames of its detection (Refiner.stream(latency="keyframe")).

The offline Stream returns a frame once every window covering it has run, (Q+1)K to (Q+2)K frames after
it (3.4-3.7 s at 30 fps for K = Q = 10). LiveStream runs one window per detection instead, the one that
ends on it: when the detection at frame qK arrives, frames (q-1)K+1 .. qK come out of the window of
keyframes q-Q .. q, so no frame waits more than K frames for its detection (0.33 s at 30 fps, plus one
window's compute). Before Q keyframes exist the window is the video so far, padded by repeating its last
keyframe, as recover() pads a short video. The frames are those at the end of a window, which the
official model is trained on (every frame of each window counts in its loss) and which recover() also
uses at a video's end; in the middle of a video offline recovery averages more windows and is more
accurate: benchmarks/live.py measures both, and linear interpolation at the same latency.

Missing joints (NaN) cannot wait for a future detection here: a joint missing at a detection holds its
last detected position; a joint not yet detected at all is an InputError.
"""
from __future__ import annotations

import numpy as np

from .backend import RefineWindows
from .config import Config
from .errors import InputError
from .inputs import MIN_SCORE, check_min_score, pushed_pose
from .normalise import Normaliser
from .pose import PoseConvention


class LiveStream:
    """One person's detections on frames 0, K, 2K, ... in; each frame out within K frames of it.

    push(keyframe (J, D) or (P,), user units, NaN = missing joint; a 2D model also takes (J, 3) = x, y,
    score, joints scored below min_score missing) -> frames (F, J, D) (or (F, P)): frame 0 for the first
    push, then frames (q-1)K+1 .. qK for the q-th (K frames each). A push that raises leaves the stream as
    it was."""

    def __init__(self, config: Config, refine_windows: RefineWindows, convention: PoseConvention, image_size=None,
                 min_score: float = MIN_SCORE):
        self._config, self._refine, self._convention = config, refine_windows, convention
        self._image_size = image_size
        if convention.shape is not None:  # the convention's checks of image_size, now rather than at the first push
            Normaliser(convention, convention.shape, image_size)
        check_min_score(min_score)
        self._min_score = min_score
        self._normaliser: Normaliser | None = None
        self._flat = False
        self._last: np.ndarray | None = None   # last detection, missing joints held
        self._grid: list[np.ndarray] = []        # normalised keyframes (P,), the last Q+1 kept
        self._offsets: list[np.ndarray] = []     # (D,) root offsets of the last two keyframes
        self._pushed = 0

    @property
    def latency(self) -> int:
        """The most frames between a frame and the detection that releases it: K."""
        return self._config.K

    @property
    def pushed(self) -> int:
        return self._pushed

    def push(self, keyframe) -> np.ndarray:
        c = self._config
        pose = pushed_pose(keyframe, self._convention.shape, c.P, self._min_score)
        normaliser = self._normaliser or Normaliser(self._convention, pose.shape, self._image_size)
        if pose.shape != normaliser.shape:
            raise InputError(f"keyframe shape {np.shape(keyframe)} differs from the first keyframe's")
        missing = np.isnan(pose).any(axis=1)
        if missing.any():
            if self._last is None:
                raise InputError(f"joints {np.flatnonzero(missing).tolist()} are missing in the first keyframe of a "
                                 f"live stream: nothing earlier to hold them at")
            pose = np.where(missing[:, None], self._last, pose)
        normalised, offset = normaliser.forward(pose)
        q = self._pushed
        if q == 0:
            normaliser.check_units(normalised)
        grid = (self._grid + [normalised.reshape(-1)])[-(c.Q + 1):]
        offsets = (self._offsets + [offset])[-2:]
        window = grid + [grid[-1]] * (c.Q + 1 - len(grid))
        with np.errstate(over="ignore"):
            window = np.stack(window)[None].astype(np.float32)
        if not np.isfinite(window).all():
            raise InputError(f"the keyframe at frame {q * c.K}, normalised for the model (root joints subtracted, "
                             f"divided by image_size), exceeds float32 range; give keyframes in the model's units "
                             f"({normaliser.units or 'see Refiner.pose'}) and a plausible image_size")
        frames = self._refine(window)[0]
        end = (len(grid) - 1) * c.K                   # the new keyframe's frame within the window
        first = 0 if q == 0 else end - c.K + 1
        J, D = normaliser.shape
        out = frames[first:end + 1].reshape(-1, J, D).astype(np.float64)
        if len(offsets) == 2:  # root trajectory, linear between the two last detections
            w = (np.arange(first, end + 1) - (end - c.K))[:, None] / c.K
            roots = offsets[0] + (offsets[1] - offsets[0]) * w
        else:
            roots = np.broadcast_to(offsets[-1], (len(out), D))
        result = normaliser.inverse(out, roots)
        if not np.isfinite(result).all():
            raise InputError(f"frames up to {q * c.K} exceed float32 range in the input's units (the model's output "
                             f"multiplied by image_size); give a plausible image_size")
        if self._normaliser is None:
            self._normaliser, self._flat = normaliser, np.ndim(keyframe) == 1
        self._last, self._grid, self._offsets, self._pushed = pose, grid, offsets, q + 1
        result = result.astype(np.float32)
        return result.reshape(len(result), c.P) if self._flat else result
