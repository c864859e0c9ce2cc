"""Whole sequences from keyframe detections: filling missing joints, normalisation, windows, overlap mean.

A video of n frames has detections on `keyframe_indices(n, K)`: frames 0, K, 2K, ... and the last frame.
They are placed on the grid of frames 0, K, ..., (G-1)K, G = ceil((n-1)/K) + 1; an off-grid last
detection (at n-1, between grid points) gives the last grid point by linear extrapolation through the
two last detections, so that a linear motion is reproduced exactly at frame n-1. Windows of Q+1 grid
keyframes start every `stride` grid points (stride*K frames; 1 as in the official evaluation), plus one
window aligned to the end of the grid when the regular ones do not reach it; each frame is the mean of
the windows covering it. A grid shorter than one window is padded by repeating its last keyframe.

Offline `recover` and the `Stream` share this code: recover pushes every detection, then finishes. So
they share its checks too: detections are numbers within float32 range (NaN = missing), every window
the model sees is finite in float32 after normalisation (Track._run_windows), the backend refuses a
forward that overflows, and the frames given back are finite in the user's units (Track._emit).
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, Mapping

import numpy as np

from .config import Config
from .errors import InputError
from .inputs import is_integer, real_array

RefineWindows = Callable[[np.ndarray], np.ndarray]  # (B, Q+1, P) float32 -> (B, T, P) float32
FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_n_frames(n_frames, what: str = "n_frames") -> int:
    """n_frames as an int; InputError unless it is an integer >= 1 (a bool is not a length)."""
    if not is_integer(n_frames) or n_frames < 1:
        raise InputError(f"{what} must be an integer >= 1, the video's length in frames; got {n_frames!r}")
    return int(n_frames)


def check_stride(stride, Q: int) -> int:
    """stride as an int (None: the default, 1); InputError unless 1 <= stride <= Q."""
    if stride is None:
        return 1
    if not is_integer(stride) or not 1 <= stride <= Q:
        raise InputError(f"stride must be an integer from 1 to Q = {Q} (windows start every stride*K frames and "
                         f"must overlap or touch; omit it for the default, 1), got {stride!r}")
    return int(stride)


def keyframe_count(n_frames: int, K: int) -> int:
    """len(keyframe_indices(n_frames, K)) without building them: ceil((n_frames - 1) / K) + 1."""
    return -(-(check_n_frames(n_frames) - 1) // K) + 1


def keyframe_indices(n_frames: int, K: int) -> np.ndarray:
    """The frames to run the detector on: 0, K, 2K, ... and the last frame, n_frames - 1.

    Never more than ceil((n_frames - 1) / K) + 1 of them. n_frames >= 1, K >= 1.
    """
    n_frames = check_n_frames(n_frames)
    if not is_integer(K) or K < 1:
        raise InputError(f"K must be an integer >= 1, got {K!r}")
    indices = np.arange(0, n_frames, K)
    return indices if indices[-1] == n_frames - 1 else np.append(indices, n_frames - 1)


def _real_numbers(value, count: int) -> np.ndarray | None:
    """value as `count` finite-or-not float64 numbers, or None when it is anything else (strings, bools,
    complex numbers, a wrong count)."""
    if isinstance(value, np.ndarray):
        return value.astype(np.float64) if value.dtype.kind in "fiu" and value.shape == (count,) else None
    try:
        items = list(value)
    except TypeError:
        return None
    if len(items) != count or not all(is_integer(v) or isinstance(v, (float, np.floating)) for v in items):
        return None
    try:
        return np.array([float(v) for v in items], dtype=np.float64)
    except OverflowError:  # an int beyond float range
        return None


def check_image_size(image_size, dims: int) -> np.ndarray:
    """image_size as dims float64 numbers; InputError unless they are positive, finite and within float32."""
    size = _real_numbers(image_size, dims)
    if size is None or not np.isfinite(size).all() or (size <= 0).any() or (size > FLOAT32_MAX).any():
        raise InputError(f"image_size must be (width, height) in pixels: {dims} positive numbers (within float32 "
                         f"range), e.g. image_size=(1920, 1080); got {image_size!r}")
    return size


class Normaliser:
    """The model's pose convention applied to (J, D) poses in the user's units, and undone on the output.

    3D root-relative models: the mean of the root joints is subtracted from each keyframe; the output gets
    the root trajectory (linear between keyframes) added back. 2D image-normalised models: coordinates
    are divided by image_size (width, height) and multiplied back.
    """

    def __init__(self, pose: Mapping, shape: tuple[int, int], image_size=None):
        self.shape = shape
        J, D = shape
        self.roots = None
        if pose.get("root_relative"):
            roots = pose.get("root_joints", [0])
            if not roots or not all(isinstance(r, int) and 0 <= r < J for r in roots):
                raise InputError(f"the model's root_joints {roots!r} do not index {J} joints")
            self.roots = list(roots)
        self.scale = None
        if pose.get("image_normalised"):
            if image_size is None:
                raise InputError("this model takes 2D keypoints normalised by the image size: pass "
                                 "image_size=(width, height) in pixels")
            self.scale = check_image_size(image_size, D)
        elif image_size is not None:
            raise InputError("image_size was given, but this model's pose convention has no image "
                             "normalisation (its keyframes are used as they are)")
        self.units = pose.get("units") if pose.get("dims") == D else None

    def forward(self, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """pose (J, D) float64, complete -> (normalised (J, D), offset (D,) to add back)."""
        offset = pose[self.roots].mean(axis=0) if self.roots else np.zeros(pose.shape[1])
        normalised = pose - offset
        if self.scale is not None:
            normalised = normalised / self.scale
        return normalised, offset

    def forward_many(self, poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """forward on poses (N, R, J, D) at once, element by element the same arithmetic ->
        (normalised (N, R, J, D), offsets (N, R, D))."""
        roots = self.roots
        offsets = poses[:, :, roots].mean(axis=2) if roots else np.zeros(poses.shape[:2] + poses.shape[3:])
        normalised = poses - offsets[:, :, None, :]
        if self.scale is not None:
            normalised = normalised / self.scale
        return normalised, offsets

    def inverse(self, frames: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """frames (F, J, D) normalised, offsets (F, D) -> (F, J, D) in the user's units."""
        if self.scale is not None:
            frames = frames * self.scale
        return frames + offsets[:, None, :]

    def check_units(self, normalised: np.ndarray, stacklevel: int = 5) -> None:
        """Warns when root-relative magnitudes suggest metres given to a millimetre model; stacklevel: of
        the caller's frame (the default: the user's Stream.push)."""
        if self.units == "mm" and self.roots and 0 < np.abs(normalised).max() < 10:
            warnings.warn("keyframes look like metres (root-relative coordinates all below 10) but this "
                          "model expects millimetres: multiply by 1000", RuntimeWarning, stacklevel=stacklevel)


class Track:
    """One person's keyframes -> every frame, incrementally. See the module docstring for the rules."""

    def __init__(self, config: Config, refine_windows: RefineWindows, normaliser: Normaliser, stride: int = 1):
        self.config, self.refine_windows, self.normaliser, self.stride = config, refine_windows, normaliser, stride
        J = normaliser.shape[0]
        self.raw: list[np.ndarray] = []          # (J, D) float64 as pushed, missing joints filled in place
        self.times: list[int] = []               # frame of each detection
        self.pending: list[list[int]] = [[] for _ in range(J)]  # detections where joint j awaits a fill
        self.last_valid = [-1] * J
        self.grid: list[np.ndarray] = []          # normalised, complete keyframes (P,) of determined detections
        self.offsets: list[np.ndarray] = []       # (D,) added back to each determined detection's frames
        self.next_window = 0                      # grid index where the next regular window starts
        self.last_window = -1
        self.sums = np.zeros((0, config.P))               # per frame: sum and count of window outputs
        self.counts = np.zeros(0)
        self.emitted = 0
        self.finished = False

    def extend(self, poses: np.ndarray, frames) -> np.ndarray:
        """poses (M, J, D) in user units (NaN = missing joint) detected at `frames` -> newly final frames
        (F, J, D), in order."""
        if self.finished:
            raise InputError("this stream is finished; start a new one")
        for pose, frame in zip(poses, frames):
            i = len(self.raw)
            missing = np.isnan(pose).any(axis=1)
            self.raw.append(np.array(pose, dtype=np.float64))
            self.times.append(int(frame))
            for j in np.flatnonzero(~missing):
                self._fill(j, i)
            for j in np.flatnonzero(missing):
                self.pending[j].append(i)
        self._determine()
        starts = list(range(self.next_window, len(self.grid) - self.config.Q, self.stride))
        self._run_windows(self.grid, starts)
        if starts:
            self.next_window = starts[-1] + self.stride
        return self._emit(self._final_frames())

    def finish(self, n_frames: int) -> np.ndarray:
        """Ends the sequence at n_frames; returns the remaining frames (F, J, D)."""
        self.finished = True
        never = [j for j, v in enumerate(self.last_valid) if v < 0]
        if never:
            raise InputError(f"joints {never} are missing (NaN) in every keyframe: nothing to fill them from")
        for j, waiting in enumerate(self.pending):  # trailing gaps hold the last detection
            for k in waiting:
                self.raw[k][j] = self.raw[self.last_valid[j]][j]
            waiting.clear()
        self._determine()
        K, Q = self.config.K, self.config.Q
        grid = list(self.grid)
        if self.times[-1] % K:  # off-grid last detection: extrapolate the grid point after it
            t0, t1 = self.times[-2], self.times[-1]
            grid[-1] = grid[-1] + (grid[-1] - grid[-2]) * ((math.ceil(t1 / K) * K - t1) / (t1 - t0))
        if len(grid) < Q + 1:
            grid += [grid[-1]] * (Q + 1 - len(grid))
        starts = list(range(self.next_window, len(grid) - Q, self.stride))
        if max(starts + [self.last_window]) + Q < len(grid) - 1:
            starts.append(len(grid) - 1 - Q)
        self._run_windows(grid, starts)
        return self._emit(n_frames)

    def _fill(self, j: int, i: int) -> None:
        """Joint j was detected at detection i: fill its gap since the previous detection of j."""
        last = self.last_valid[j]
        for k in self.pending[j]:
            if last < 0:  # before the first detection of j: nearest value
                self.raw[k][j] = self.raw[i][j]
            else:
                w = (self.times[k] - self.times[last]) / (self.times[i] - self.times[last])
                self.raw[k][j] = self.raw[last][j] + (self.raw[i][j] - self.raw[last][j]) * w
        self.pending[j].clear()
        self.last_valid[j] = i

    def _determine(self) -> None:
        """Normalises the detections whose every joint is known (a prefix of those pushed)."""
        ready = min([w[0] for w in self.pending if w] + [len(self.raw)])
        for i in range(len(self.grid), ready):
            if i == len(self.raw) - 1 and self.times[i] % self.config.K and not self.finished:
                break  # an off-grid detection is only ever the last one, placed by finish()
            normalised, offset = self.normaliser.forward(self.raw[i])
            if i == 0:
                self.normaliser.check_units(normalised)
            self.grid.append(normalised.reshape(-1))
            self.offsets.append(offset)

    def _run_windows(self, grid: list[np.ndarray], starts: list[int]) -> None:
        if not starts:
            return
        Q, K, T = self.config.Q, self.config.K, self.config.T
        with np.errstate(over="ignore"):  # beyond float32 becomes inf, refused just below
            windows = np.stack([np.stack(grid[s:s + Q + 1]) for s in starts]).astype(np.float32)
        # The boundary recover() and Stream share: the model sees only finite float32 keyframes. Inputs are
        # within float32 range (_as_poses), but root subtraction, division by image_size and the off-grid
        # extrapolation can still leave it.
        finite = np.isfinite(windows).all(axis=(1, 2))
        if not finite.all():
            start = starts[int(np.argmin(finite))] * K
            raise InputError(f"the keyframes of the window starting at frame {start}, normalised for the model "
                             f"(root joints subtracted, divided by image_size, or the off-grid last keyframe "
                             f"extrapolated), exceed float32 range; give keyframes in the units the model "
                             f"expects ({self.normaliser.units or 'see Refiner.pose'}) and a plausible image_size")
        out = self.refine_windows(windows)
        end = (starts[-1] * K) + T
        if len(self.counts) < end:
            grow = max(end, 2 * len(self.counts)) - len(self.counts)
            self.sums = np.concatenate([self.sums, np.zeros((grow, self.config.P))])
            self.counts = np.concatenate([self.counts, np.zeros(grow)])
        for s, frames in zip(starts, out):
            self.sums[s * K:s * K + T] += frames
            self.counts[s * K:s * K + T] += 1
        self.last_window = starts[-1]

    def _final_frames(self) -> int:
        # a window appended at the end covers grid points >= G_final - 1 - Q >= len(grid) - 1 - Q
        return max(0, (len(self.grid) - 1 - self.config.Q) * self.config.K)

    def _emit(self, upto: int) -> np.ndarray:
        J, D = self.normaliser.shape
        frames = np.arange(self.emitted, upto)
        mean = (self.sums[frames] / self.counts[frames, None]).reshape(-1, J, D)
        offsets = np.zeros((len(frames), D))
        if len(frames):  # root trajectory, linear between the detections around these frames
            lo = frames[0] // self.config.K
            hi = min(len(self.offsets), frames[-1] // self.config.K + 2)
            times = np.asarray(self.times[lo:hi], dtype=np.float64)
            known = np.asarray(self.offsets[lo:hi])
            offsets = np.stack([np.interp(frames, times, known[:, d]) for d in range(D)], axis=1)
        self.emitted = upto
        with np.errstate(over="ignore", invalid="ignore"):
            result = self.normaliser.inverse(mean, offsets).astype(np.float32)
        finite = np.isfinite(result).all(axis=(1, 2))
        if not finite.all():  # the model's output is finite: only scaling back by image_size can overflow
            raise InputError(f"frame {int(frames[np.argmin(finite)])} in the input's units exceeds float32 range "
                             f"(the model's output multiplied by image_size); give a plausible image_size")
        return result


def _as_poses(keyframes, shape: tuple[int, int] | None, P: int, leading: int, what: str) -> np.ndarray:
    """keyframes with `leading` leading axes then (J, D) or (P,) -> float64 (..., J, D); InputError otherwise."""
    array = real_array(keyframes, what).astype(np.float64)
    if np.isinf(array).any():
        raise InputError(f"{what} contain infinite values; use NaN for missing joints")
    if (np.abs(array) > FLOAT32_MAX).any():  # NaN compares False: missing joints pass
        first = tuple(int(i) for i in np.argwhere(np.abs(array) > FLOAT32_MAX)[0])
        raise InputError(f"{what} contain values beyond float32 range (|x| > {FLOAT32_MAX:.3g}, first at index "
                         f"{first}); msf computes in float32: give poses in the model's units")
    return array.reshape(array.shape[:leading] + _pose_shape(array.shape, shape, P, leading, what))


def _pose_shape(full: tuple[int, ...], shape: tuple[int, int] | None, P: int, leading: int,
                what: str) -> tuple[int, int]:
    """The (J, D) of keyframes of shape `full` (`leading` axes, then (J, D) or (P,)); InputError otherwise."""
    tail = full[leading:]
    if len(tail) == 1 and tail[0] == P:  # without a pose convention, flat poses are P joints of 1 value
        return shape or (P, 1)
    if len(tail) == 2 and tail[0] * tail[1] == P and shape in (None, tail):
        return tail
    J, D = shape or ("J", "D")
    raise InputError(f"{what} have shape {full}; expected {leading} leading axes then ({J}, {D}) or "
                     f"({P},) with P = J*D = {P}")


MIN_SCORE = 0.3  # joints scored below it are missing: the usual visibility cut of COCO-style detectors


def _split_scores(array: np.ndarray, scores, min_score, shape: tuple[int, int] | None
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """(keyframes, checked scores or None), views of what was given: joints scored below min_score are
    missing (recover reads them as NaN). Scores come from `scores` (the keyframes' shape without its last
    axis) or, for a 2D model given (..., J, 3), from the last of (x, y, score); a NaN score is unknown
    and keeps its joint."""
    if shape is not None and shape[1] == 2 and array.ndim in (3, 4) and array.shape[-2:] == (shape[0], 3):
        if scores is not None:
            raise InputError(f"keyframes of shape {array.shape} hold (x, y, score) per joint and scores= was "
                             f"given too: pass one of them")
        array, scores = array[..., :2], array[..., 2]
    if scores is None:
        return array, None
    if not (is_integer(min_score) or isinstance(min_score, (float, np.floating))) or not math.isfinite(min_score):
        raise InputError(f"min_score must be a finite number (joints scored below it are missing), got {min_score!r}")
    scores = real_array(scores, "scores")
    if scores.shape != array.shape[:-1]:
        raise InputError(f"scores have shape {scores.shape}; expected {array.shape[:-1]}, one per joint of the "
                         f"keyframes {array.shape}")
    if scores.dtype.kind == "f" and any(np.isinf(block).any() for _, block in _blocks(scores, 1)):
        raise InputError("scores contain infinite values; use NaN for an unknown score")
    return array, scores


WINDOWS_PER_CALL = 64   # recover: windows per backend call, all tracks together (bounds its working memory)
SCAN_ROWS = 4096        # recover: keyframes per block when it checks its input or looks ahead for a detection


def _blocks(array: np.ndarray, leading: int, rows: int = SCAN_ROWS):
    """(index of the block's first element, block) over `array` in C order, `rows` entries of axis
    leading-1 at a time: whole-array checks without whole-array temporaries. An array of fewer axes is
    one block."""
    if array.ndim < leading:
        yield (0,) * array.ndim, array
        return
    for prefix in np.ndindex(*array.shape[:leading - 1]):
        for lo in range(0, array.shape[leading - 1], rows):
            yield prefix + (lo,), array[prefix + (slice(lo, lo + rows),)]


def _check_values(array: np.ndarray, leading: int, what: str, scores=None, min_score=None) -> None:
    """_as_poses's value checks, block by block, on `array` with joints scored below min_score missing."""
    def masked():
        for start, block in _blocks(array, leading):
            block = np.array(block, dtype=np.float64)
            if scores is not None:
                low = scores[start[:-1] + (slice(start[-1], start[-1] + len(block)),)] < min_score \
                    if array.ndim >= leading else scores < min_score
                block[np.broadcast_to(low[..., None], block.shape)] = np.nan
            yield start, block
    if any(np.isinf(block).any() for _, block in masked()):
        raise InputError(f"{what} contain infinite values; use NaN for missing joints")
    for start, block in masked():
        big = np.abs(block) > FLOAT32_MAX  # NaN compares False: missing joints pass
        if big.any():
            first = tuple(int(i) for i in np.argwhere(big)[0])
            if array.ndim >= leading:
                first = tuple(int(i) for i in start[:-1]) + (int(start[-1]) + first[0],) + first[1:]
            raise InputError(f"{what} contain values beyond float32 range (|x| > {FLOAT32_MAX:.3g}, first at index "
                             f"{first}); msf computes in float32: give poses in the model's units")


class _Video:
    """recover's work on N tracks of one video, in bounded pieces: keyframes are filled and normalised in
    order, once each; windows run WINDOWS_PER_CALL at a time (every track's in one backend call); frames
    are written to `out` as soon as no later window covers them. The arithmetic is Track's, element by
    element and in the same order, so the frames are bit-identical to Stream's (and to one window at a
    time): chunk sizes change only what is computed together, never how."""

    def __init__(self, config: Config, refine_windows: RefineWindows, normaliser: Normaliser, values: np.ndarray,
                 scores, min_score, n_frames: int, stride: int):
        self.config, self.refine_windows, self.normaliser = config, refine_windows, normaliser
        self.values, self.scores, self.min_score = values, scores, min_score  # (N, M, J, D); (N, M[, J]) or None
        self.n_frames, self.stride = n_frames, stride
        self.N, self.M, self.J, self.D = values.shape
        self.prev = np.full((self.N, self.J), -1)  # last detection of each joint among the keyframes filled
        self.next = self._first_detections()      # a detection at or after next_from, or M for none
        self.next_from = np.zeros((self.N, self.J), dtype=np.int64)
        self.filled = 0                           # keyframes [row0, filled) are held, normalised:
        self.row0 = 0
        self.grid = np.zeros((self.N, 0, config.P))   # (N, rows, P) float64
        self.offsets = np.zeros((self.N, 0, self.D))  # (N, rows, D), added back to their frames

    def _times(self, rows: np.ndarray) -> np.ndarray:
        return np.where(rows == self.M - 1, self.n_frames - 1, rows * self.config.K)

    def _read(self, track, lo: int, hi: int, joint=None) -> np.ndarray:
        """keyframes [lo, hi) of `track` (a slice or an index) as float64, joints scored low set to NaN."""
        index = (track, slice(lo, hi)) if joint is None else (track, slice(lo, hi), joint)
        block = self.values[index].astype(np.float64)
        if self.scores is not None:
            s = self.scores[(track, slice(lo, hi)) + ((joint,) if joint is not None and self.scores.ndim == 3 else ())]
            low = s < self.min_score
            if self.scores.ndim == 2 and joint is None:  # one score per flat keyframe: all of its joints
                low = low[..., None]
            block[np.broadcast_to(low[..., None], block.shape)] = np.nan
        return block

    def _detected(self, track, lo: int, hi: int, joint=None) -> np.ndarray:
        return ~np.isnan(self._read(track, lo, hi, joint)).any(axis=-1)

    def _first_detections(self) -> np.ndarray:
        first = np.full((self.N, self.J), self.M)
        rows = max(1, SCAN_ROWS // self.N)
        for lo in range(0, self.M, rows):
            todo = first == self.M
            if not todo.any():
                break
            seen = self._detected(slice(None), lo, min(self.M, lo + rows))
            found = seen.any(axis=1) & todo
            first[found] = lo + seen.argmax(axis=1)[found]
        for t in range(self.N):
            never = [j for j in range(self.J) if first[t, j] == self.M]
            if never:
                raise InputError(f"joints {never} are missing (NaN) in every keyframe: nothing to fill them from")
        return first

    def _next_detection(self, t: int, j: int, start: int) -> int:
        """The first keyframe >= start where track t detected joint j, or M."""
        if self.next_from[t, j] <= start <= self.next[t, j]:
            return int(self.next[t, j])
        found = self.M
        for lo in range(start, self.M, SCAN_ROWS):
            seen = self._detected(t, lo, min(self.M, lo + SCAN_ROWS), j)
            if seen.any():
                found = lo + int(seen.argmax())
                break
        self.next[t, j], self.next_from[t, j] = found, start
        return found

    def _fill(self, hi: int) -> None:
        """Fills, normalises and holds keyframes [filled, hi) (Track._fill, _determine and finish's holds)."""
        lo = self.filled
        poses = self._read(slice(None), lo, hi)  # (N, R, J, D)
        valid = ~np.isnan(poses).any(axis=3)
        rows = np.arange(lo, hi)
        if not valid.all():
            at = np.broadcast_to(rows[None, :, None], valid.shape)
            prev = np.maximum(np.maximum.accumulate(np.where(valid, at, -1), axis=1), self.prev[:, None, :])
            nxt = np.minimum.accumulate(np.where(valid, at, self.M)[:, ::-1], axis=1)[:, ::-1].copy()
            for t, j in zip(*np.nonzero(nxt[:, -1] == self.M)):  # a gap running past this block
                gap = nxt[t, :, j] == self.M
                nxt[t, gap, j] = self._next_detection(int(t), int(j), hi)
            t_i, r_i, j_i = np.nonzero(~valid)
            p, q, k = prev[t_i, r_i, j_i], nxt[t_i, r_i, j_i], rows[r_i]
            before = self.values[t_i, np.maximum(p, 0), j_i].astype(np.float64)
            after = self.values[t_i, np.minimum(q, self.M - 1), j_i].astype(np.float64)
            tp, tq, tk = self._times(p), self._times(q), self._times(k)
            w = ((tk - tp) / np.where(q < self.M, tq - tp, 1))[:, None]
            with np.errstate(over="ignore", invalid="ignore"):
                between = before + (after - before) * w
            filled = np.where((p < 0)[:, None], after, np.where((q >= self.M)[:, None], before, between))
            poses[t_i, r_i, j_i] = filled
        self.prev = np.maximum(self.prev, np.where(valid, rows[None, :, None], -1).max(axis=1))
        normalised, offsets = self.normaliser.forward_many(poses)
        if lo == 0:
            for t in range(self.N):
                self.normaliser.check_units(normalised[t, 0], stacklevel=7)
        self.grid = np.concatenate([self.grid, normalised.reshape(self.N, hi - lo, -1)], axis=1)
        self.offsets = np.concatenate([self.offsets, offsets], axis=1)
        self.filled = hi

    def _hold(self, lo: int, hi: int) -> None:
        """Keyframes [lo, hi) held (filled as needed), earlier ones dropped, except the two the off-grid
        extrapolation reads."""
        if hi > self.filled:
            self._fill(hi)
        keep = min(lo, max(0, self.M - 2))
        if keep > self.row0:
            self.grid, self.offsets = self.grid[:, keep - self.row0:], self.offsets[:, keep - self.row0:]
            self.row0 = keep

    def _grid(self, lo: int, hi: int) -> np.ndarray:
        """Grid points [lo, hi) (N, hi - lo, P): the keyframes, the off-grid last one extrapolated to the
        grid point after it, then padding by repetition (Track.finish)."""
        c, M = self.config, self.M
        grid = self.grid[:, max(lo, self.row0) - self.row0:min(hi, M) - self.row0]
        if hi >= M and (self.n_frames - 1) % c.K:
            t0, t1 = (M - 2) * c.K, self.n_frames - 1
            last, before = self.grid[:, M - 1 - self.row0], self.grid[:, M - 2 - self.row0]
            grid = grid.copy()
            grid[:, -1] = last + (last - before) * ((math.ceil(t1 / c.K) * c.K - t1) / (t1 - t0))
        if hi > M:
            grid = np.concatenate([grid, np.repeat(grid[:, -1:], hi - M, axis=1)], axis=1)
        return grid

    def run(self, out: np.ndarray) -> None:
        """Every frame into out (N, n_frames, J, D) float32."""
        K, Q, T, P = self.config.K, self.config.Q, self.config.T, self.config.P
        length = max(self.M, Q + 1)  # grid points, padded
        starts = list(range(0, length - Q, self.stride))
        if starts[-1] + Q < length - 1:
            starts.append(length - 1 - Q)
        per_call = max(1, WINDOWS_PER_CALL // self.N)
        sums, counts, base = np.zeros((self.N, 0, P)), np.zeros(0), 0  # frames [base, base + len(counts))
        for a in range(0, len(starts), per_call):
            chunk = starts[a:a + per_call]
            first, last = chunk[0], chunk[-1]
            self._hold(first, min(self.M, last + Q + 1))
            grid = self._grid(first, last + Q + 1)
            view = np.lib.stride_tricks.sliding_window_view(grid, Q + 1, axis=1)  # (N, G - Q, P, Q + 1)
            with np.errstate(over="ignore"):  # beyond float32 becomes inf, refused just below
                windows = np.ascontiguousarray(np.swapaxes(view[:, [s - first for s in chunk]], 2, 3),
                                               dtype=np.float32).reshape(-1, Q + 1, P)
            finite = np.isfinite(windows).all(axis=(1, 2))
            if not finite.all():  # Track._run_windows's check and message
                start = chunk[int(np.argmin(finite)) % len(chunk)] * K
                raise InputError(f"the keyframes of the window starting at frame {start}, normalised for the model "
                                 f"(root joints subtracted, divided by image_size, or the off-grid last keyframe "
                                 f"extrapolated), exceed float32 range; give keyframes in the units the model "
                                 f"expects ({self.normaliser.units or 'see Refiner.pose'}) and a plausible image_size")
            frames = self.refine_windows(windows).reshape(self.N, len(chunk), T, P)
            end = last * K + T
            grown = np.zeros((self.N, end - base, P))
            grown[:, :sums.shape[1]] = sums
            sums, counts = grown, np.concatenate([counts, np.zeros(end - base - len(counts))])
            for i, s in enumerate(chunk):
                sums[:, s * K - base:s * K - base + T] += frames[:, i]
                counts[s * K - base:s * K - base + T] += 1
            upto = starts[a + per_call] * K if a + per_call < len(starts) else self.n_frames
            self._emit(out, sums[:, :upto - base], counts[:upto - base], base)
            sums, counts, base = sums[:, upto - base:], counts[upto - base:], upto

    def _emit(self, out: np.ndarray, sums: np.ndarray, counts: np.ndarray, base: int) -> None:
        """Frames [base, base + len(counts)) from their window sums: Track._emit for every track."""
        if not len(counts):
            return
        K, D = self.config.K, self.D
        frames = np.arange(base, base + len(counts))
        mean = (sums / counts[None, :, None]).reshape(self.N, len(frames), self.J, D)
        lo, hi = frames[0] // K, min(self.M, frames[-1] // K + 2)
        times = self._times(np.arange(lo, hi)).astype(np.float64)
        known = self.offsets[:, lo - self.row0:hi - self.row0]
        for t in range(self.N):
            offsets = np.stack([np.interp(frames, times, known[t, :, d]) for d in range(D)], axis=1)
            with np.errstate(over="ignore", invalid="ignore"):
                result = self.normaliser.inverse(mean[t], offsets).astype(np.float32)
            finite = np.isfinite(result).all(axis=(1, 2))
            if not finite.all():  # Track._emit's check and message
                raise InputError(f"frame {int(frames[np.argmin(finite)])} in the input's units exceeds float32 "
                                 f"range (the model's output multiplied by image_size); give a plausible image_size")
            out[t, base:base + len(frames)] = result


def recover(config: Config, refine_windows: RefineWindows, pose: Mapping, shape: tuple[int, int] | None,
            keyframes, n_frames: int, image_size=None, stride: int | None = None, scores=None,
            min_score: float = MIN_SCORE) -> np.ndarray:
    """See Refiner.recover. Memory beyond the input and the output is bounded (chunks of WINDOWS_PER_CALL
    windows); the frames equal Stream's bit for bit."""
    n_frames = check_n_frames(n_frames)
    stride = check_stride(stride, config.Q)
    count = keyframe_count(n_frames, config.K)  # checked before anything of size n_frames is allocated
    array = real_array(keyframes, "keyframes")
    array, scores = _split_scores(array, scores, min_score, shape)
    tracks = array.ndim == 4 or (array.ndim == 3 and array.shape[1:] == (count, config.P))
    leading = 2 if tracks else 1
    _check_values(array, leading, "keyframes", scores, min_score)
    pose_shape = _pose_shape(array.shape, shape, config.P, leading, "keyframes")
    values = array.reshape(array.shape[:leading] + pose_shape)  # splits the last axis only: a view
    if not tracks:
        values, scores = values[None], None if scores is None else scores[None]
    if values.shape[1] != count:
        raise InputError(f"{values.shape[1]} keyframes given for {n_frames} frames with K = {config.K}: expected "
                         f"{count}, the detections on msf.keyframe_indices({n_frames}, {config.K}) "
                         f"(frames 0, {config.K}, ... and the last frame)")
    if len(values) == 0:
        raise InputError(f"keyframes of shape {array.shape} hold no tracks: pass at least one person's keyframes, "
                         f"(M, J, D) or (N >= 1, M, J, D)")
    normaliser = Normaliser(pose, pose_shape, image_size)
    result = np.empty((len(values), n_frames) + pose_shape, dtype=np.float32)
    _Video(config, refine_windows, normaliser, values, scores, min_score, n_frames, stride).run(result)
    if array.ndim == (3 if tracks else 2):  # flat (..., P) in, flat out
        result = result.reshape(result.shape[:2] + (config.P,))
    return result if tracks else result[0]


class Stream:
    """Online refinement of one person: push keyframes as the detector produces them, get final frames.

    push(keyframe) takes the detection on the next grid frame (0, K, 2K, ...) as (J, D) or (P,) in the
    user's units (NaN for missing joints) and returns the frames that became final, (F, J, D) float32
    (or (F, P) when pushed flat), in order. finish(n_frames=None, last_keyframe=None) ends the video and
    returns the rest; last_keyframe is the detection on the last frame when n_frames - 1 is not a
    multiple of K. The concatenated output equals Refiner.recover on the same detections.

    Latency: frame f is returned by the push of the detection at frame f + (Q+1)K to f + (Q+2)K (a frame
    is final once no window can still cover it); a missing joint delays its keyframe until the joint is
    detected again.
    """

    def __init__(self, config: Config, refine_windows: RefineWindows, pose: Mapping,
                 shape: tuple[int, int] | None, image_size=None, stride: int | None = None):
        self._config, self._refine, self._pose, self._shape = config, refine_windows, pose, shape
        self._image_size, self._stride = image_size, check_stride(stride, config.Q)
        if shape is not None:  # the pose convention's checks of image_size, now rather than at the first push
            Normaliser(pose, shape, image_size)
        self._track: Track | None = None
        self._flat = False

    def _poses(self, keyframe) -> np.ndarray:
        poses = _as_poses(real_array(keyframe, "keyframe")[None], self._shape, self._config.P, 1, "keyframe")
        if self._track is None:
            self._flat = np.ndim(keyframe) == 1
            self._track = Track(self._config, self._refine,
                                Normaliser(self._pose, poses.shape[1:], self._image_size), self._stride)
        elif poses.shape[1:] != self._track.normaliser.shape:
            raise InputError(f"keyframe shape {np.shape(keyframe)} differs from the first keyframe's")
        return poses

    def _out(self, frames: np.ndarray) -> np.ndarray:
        return frames.reshape(len(frames), self._config.P) if self._flat else frames

    @property
    def pushed(self) -> int:
        """Keyframes pushed so far."""
        return len(self._track.raw) if self._track else 0

    def push(self, keyframe) -> np.ndarray:
        poses = self._poses(keyframe)
        return self._out(self._track.extend(poses, [self.pushed * self._config.K]))

    def finish(self, n_frames: int | None = None, last_keyframe=None) -> np.ndarray:
        K = self._config.K
        if self._track is None:
            raise InputError("finish() before any push(): a video needs at least one keyframe")
        n_frames = (self.pushed - 1) * K + 1 if n_frames is None else check_n_frames(n_frames)
        expected = keyframe_count(n_frames, K)
        off_grid = (n_frames - 1) % K != 0
        if off_grid != (last_keyframe is not None) or self.pushed + off_grid != expected:
            raise InputError(f"{n_frames} frames need {expected} keyframes (msf.keyframe_indices({n_frames}, {K}))"
                             f"{', the last one passed as last_keyframe' if off_grid else ''}; "
                             f"{self.pushed} were pushed"
                             f"{' and a last_keyframe given' if last_keyframe is not None else ''}")
        head = self._track.extend(self._poses(last_keyframe), [n_frames - 1]) if off_grid else None
        tail = self._track.finish(n_frames)
        return self._out(tail if head is None else np.concatenate([head, tail]))
