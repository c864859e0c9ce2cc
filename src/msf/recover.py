"""Offline recovery of whole videos (Refiner.recover): Track's arithmetic on N tracks at once, in bounded pieces.

recover checks what Stream checks (msf.track): detections are numbers within float32 range (NaN =
missing), every window the model sees is finite in float32 after normalisation, the backend refuses a
forward that overflows, and the frames given back are finite in the user's units.
"""
from __future__ import annotations

import numpy as np

from .backend import RefineWindows
from .config import Config
from .errors import InputError
from .inputs import MIN_SCORE, SCAN_ROWS, check_values, pose_forms, pose_shape, real_array, split_scores
from .keyframes import check_n_frames, check_stride, extrapolate_to_grid, keyframe_count, last_off_grid
from .normalise import Normaliser
from .pose import PoseConvention

WINDOWS_PER_CALL = 64  # windows per backend call, all tracks together (bounds recover's working memory)


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
        if hi >= M and last_off_grid(self.n_frames, c.K):
            last, before = self.grid[:, M - 1 - self.row0], self.grid[:, M - 2 - self.row0]
            grid = grid.copy()
            grid[:, -1] = extrapolate_to_grid(last, before, (M - 2) * c.K, self.n_frames - 1, c.K)
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


def recover(config: Config, refine_windows: RefineWindows, convention: PoseConvention, keyframes, n_frames: int,
            image_size=None, stride: int | None = None, scores=None, min_score: float = MIN_SCORE) -> np.ndarray:
    """See Refiner.recover. Memory beyond the input and the output is bounded (chunks of WINDOWS_PER_CALL
    windows); the frames equal Stream's bit for bit."""
    shape = convention.shape
    n_frames = check_n_frames(n_frames)
    stride = check_stride(stride, config.Q)
    count = keyframe_count(n_frames, config.K)  # checked before anything of size n_frames is allocated
    array = real_array(keyframes, "keyframes")
    array, scores = split_scores(array, scores, min_score, shape)
    tracks = array.ndim == 4 or (array.ndim == 3 and array.shape[1:] == (count, config.P))
    leading = 2 if tracks else 1
    if array.ndim not in (2, 3, 4):
        raise InputError(f"keyframes: shape {array.shape}; expected {pose_forms(shape, config.P, ('M',))} for one "
                         f"person, {pose_forms(shape, config.P, ('N', 'M'))} for N people")
    check_values(array, leading, "keyframes", scores, min_score)
    poses = pose_shape(array.shape, shape, config.P, ("N", "M")[2 - leading:], "keyframes")
    values = array.reshape(array.shape[:leading] + poses)  # splits the last axis only: a view
    if not tracks:
        values, scores = values[None], None if scores is None else scores[None]
    if values.shape[1] != count:
        raise InputError(f"{values.shape[1]} keyframes given for {n_frames} frames with K = {config.K}: expected "
                         f"{count}, the detections on msf.keyframe_indices({n_frames}, {config.K}) "
                         f"(frames 0, {config.K}, ... and the last frame)")
    if len(values) == 0:
        raise InputError(f"keyframes of shape {array.shape} hold no tracks: pass at least one person's keyframes, "
                         f"(M, J, D) or (N >= 1, M, J, D)")
    normaliser = Normaliser(convention, poses, image_size)
    result = np.empty((len(values), n_frames) + poses, dtype=np.float32)
    _Video(config, refine_windows, normaliser, values, scores, min_score, n_frames, stride).run(result)
    if array.ndim == (3 if tracks else 2):  # flat (..., P) in, flat out
        result = result.reshape(result.shape[:2] + (config.P,))
    return result if tracks else result[0]
