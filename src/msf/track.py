"""One person's detections -> every frame, incrementally: Stream's engine, and the arithmetic recover follows.

Missing joints are filled linearly between the same joint's detections (held at the ends); a detection is
normalised once all of its joints are known; windows run as soon as their keyframes are; a frame is given
back once no later window can cover it. The checks recover shares: every window the model sees is finite
in float32 after normalisation (Track._run_windows), and the frames given back are finite in the user's
units (Track._emit).
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from .backend import RefineWindows
from .config import Config
from .errors import InputError
from .keyframes import extrapolate_to_grid, on_grid
from .normalise import Normaliser


class _Held:
    """A list indexed from 0 of which only the items from `base` on are held: a Track drops what no later
    push or finish reads, so that a stream's memory stays bounded however long it runs."""

    def __init__(self, items=(), base: int = 0):
        self.items, self.base = list(items), base

    def __len__(self) -> int:
        return self.base + len(self.items)

    def _at(self, i: int) -> int:
        if 0 <= i < self.base:
            raise IndexError(f"item {i} was dropped (items {self.base}.. are held)")
        return i - self.base if i >= 0 else i

    def __getitem__(self, i):
        if isinstance(i, slice):  # [a:b] with 0 <= a <= b
            return self.items[self._at(i.start):i.stop - self.base]
        return self.items[self._at(i)]

    def __setitem__(self, i: int, value) -> None:
        self.items[self._at(i)] = value

    def append(self, value) -> None:
        self.items.append(value)

    def copy(self) -> "_Held":
        return _Held(self.items, self.base)

    def drop_before(self, i: int) -> None:
        if i > self.base:
            del self.items[:i - self.base]
            self.base = i

    def truncate(self, n: int) -> None:
        del self.items[self._at(n):]


class Track:
    """One person's keyframes -> every frame, incrementally, by the rules of msf.keyframes."""

    def __init__(self, config: Config, refine_windows: RefineWindows, normaliser: Normaliser, stride: int = 1):
        self.config, self.refine_windows, self.normaliser, self.stride = config, refine_windows, normaliser, stride
        J = normaliser.shape[0]
        self.raw = _Held()                        # (J, D) float64 as pushed, missing joints filled in place
        self.times = _Held()                      # frame of each detection
        self.pending: list[list[int]] = [[] for _ in range(J)]  # detections where joint j awaits a fill
        self.last_valid = [-1] * J
        self.grid = _Held()                       # normalised, complete keyframes (P,) of determined detections
        self.offsets = _Held()                    # (D,) added back to each determined detection's frames
        self.next_window = 0                      # grid index where the next regular window starts
        self.frame0 = 0                           # frames [frame0, ...) have sums and counts:
        self.sums = np.zeros((0, config.P))       # per frame, sum and count of window outputs
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
        grid = self.grid.copy()
        if not on_grid(self.times[-1], K):  # off-grid last detection: extrapolate the grid point after it
            grid[-1] = extrapolate_to_grid(grid[-1], grid[-2], self.times[-2], self.times[-1], K)
        while len(grid) < Q + 1:
            grid.append(grid[-1])
        starts = list(range(self.next_window, len(grid) - Q, self.stride))
        last_run = self.next_window - self.stride  # the last regular window extend ran (< 0: none)
        if max(starts + [last_run]) + Q < len(grid) - 1:
            starts.append(len(grid) - 1 - Q)
        self._run_windows(grid, starts)
        return self._emit(n_frames)

    @contextmanager
    def atomic(self):
        """The extend and finish calls inside take effect together or, should one raise, not at all."""
        saved = self._saved()
        try:
            yield
        except BaseException:
            self._restore(saved)
            raise

    def _saved(self) -> tuple:
        """What extend and finish change: lengths of the lists they append to, copies of what they change in
        place (the detections awaiting a fill, the sums of frames not yet given back)."""
        waiting = {k: self.raw[k].copy() for w in self.pending for k in w}
        held = self.emitted - self.frame0
        return (len(self.raw), len(self.grid), waiting, [list(w) for w in self.pending], list(self.last_valid),
                self.next_window, self.emitted, self.finished, len(self.counts), self.sums[held:].copy(),
                self.counts[held:].copy())

    def _restore(self, saved: tuple) -> None:
        """The track as it was when `saved` was taken (trim runs outside atomic only)."""
        raw, grid, waiting, self.pending, self.last_valid, self.next_window, self.emitted, self.finished, \
            frames, sums, counts = saved
        for held, n in ((self.raw, raw), (self.times, raw), (self.grid, grid), (self.offsets, grid)):
            held.truncate(n)
        for k, pose in waiting.items():
            self.raw[k] = pose
        held = self.emitted - self.frame0
        self.sums, self.counts = self.sums[:frames], self.counts[:frames]
        self.sums[held:], self.counts[held:] = sums, counts

    def trim(self) -> None:
        """Drops the frames given back and the detections before the first one that a fill, a window, the
        root trajectory of a frame not yet given back or finish's extrapolation can still read."""
        reads = [self.next_window - self.stride + 1,  # finish's last window starts after the last regular one
                 self.emitted // self.config.K, len(self.grid) - 2]
        reads += [v for v in self.last_valid if v >= 0] + [w[0] for w in self.pending if w]
        keep = max(0, min(reads))
        for held in (self.raw, self.times, self.grid, self.offsets):
            held.drop_before(keep)
        if self.emitted > self.frame0:  # copies, so the memory of the frames dropped is freed
            drop = self.emitted - self.frame0
            self.sums, self.counts, self.frame0 = self.sums[drop:].copy(), self.counts[drop:].copy(), self.emitted

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
            if i == len(self.raw) - 1 and not on_grid(self.times[i], self.config.K) and not self.finished:
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
        # within float32 range (inputs.as_poses), but root subtraction, division by image_size and the off-grid
        # extrapolation can still leave it.
        finite = np.isfinite(windows).all(axis=(1, 2))
        if not finite.all():
            start = starts[int(np.argmin(finite))] * K
            raise InputError(f"the keyframes of the window starting at frame {start}, normalised for the model "
                             f"(root joints subtracted, divided by image_size, or the off-grid last keyframe "
                             f"extrapolated), exceed float32 range; give keyframes in the units the model "
                             f"expects ({self.normaliser.units or 'see Refiner.pose'}) and a plausible image_size")
        out = self.refine_windows(windows)
        end = starts[-1] * K + T - self.frame0
        if len(self.counts) < end:
            grow = max(end, 2 * len(self.counts)) - len(self.counts)
            self.sums = np.concatenate([self.sums, np.zeros((grow, self.config.P))])
            self.counts = np.concatenate([self.counts, np.zeros(grow)])
        for s, frames in zip(starts, out):  # every window starts at or after the first frame not given back
            at = s * K - self.frame0
            self.sums[at:at + T] += frames
            self.counts[at:at + T] += 1

    def _final_frames(self) -> int:
        # a window appended at the end covers grid points >= G_final - 1 - Q >= len(grid) - 1 - Q
        return max(0, (len(self.grid) - 1 - self.config.Q) * self.config.K)

    def _emit(self, upto: int) -> np.ndarray:
        J, D = self.normaliser.shape
        frames = np.arange(self.emitted, upto)
        mean = (self.sums[frames - self.frame0] / self.counts[frames - self.frame0, None]).reshape(-1, J, D)
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
