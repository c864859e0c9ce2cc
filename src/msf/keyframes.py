"""The keyframe grid: which frames are detected, and where they sit among the windows.

A video of n frames has detections on `keyframe_indices(n, K)`: frames 0, K, 2K, ... and the last frame.
They are placed on the grid of frames 0, K, ..., (G-1)K, G = ceil((n-1)/K) + 1; an off-grid last
detection (at n-1, between grid points) gives the last grid point by linear extrapolation through the
two last detections, so that a linear motion is reproduced exactly at frame n-1. Windows of Q+1 grid
keyframes start every `stride` grid points (stride*K frames; 1 as in the official evaluation), plus one
window aligned to the end of the grid when the regular ones do not reach it; each frame is the mean of
the windows covering it. A grid shorter than one window is padded by repeating its last keyframe.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import InputError
from .inputs import is_integer


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


def on_grid(frames, K: int):
    """Whether frames (an int or an int array) are grid points 0, K, 2K, ..."""
    return frames % K == 0


def last_off_grid(n_frames: int, K: int) -> bool:
    """Whether the last frame, n_frames - 1, is between grid points: its detection is then the off-grid
    last keyframe, which the grid gets by extrapolation (`extrapolate_to_grid`)."""
    return not on_grid(n_frames - 1, K)


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
    return np.append(indices, n_frames - 1) if last_off_grid(n_frames, K) else indices


def extrapolate_to_grid(last, before, t0: int, t1: int, K: int):
    """The grid point after an off-grid last detection `last` at frame t1, on the line through it and
    `before` (the detection at frame t0): keyframes (..., P) in, the same shape out."""
    return last + (last - before) * ((math.ceil(t1 / K) * K - t1) / (t1 - t0))
