"""Baselines msf is compared with: linear interpolation between keyframes (`msf plot`, benchmarks/accuracy.py,
benchmarks/live.py all use this one function)."""
from __future__ import annotations

import numpy as np


def linear_interpolation(keyframes: np.ndarray, indices: np.ndarray, n_frames: int) -> np.ndarray:
    """keyframes (M, J, D) at frames `indices` (NaN = missing) -> (n_frames, J, D), per value linear in time."""
    indices = np.asarray(indices)
    flat = keyframes.reshape(len(keyframes), -1)
    out = np.empty((n_frames, flat.shape[1]))
    for i in range(flat.shape[1]):
        known = np.isfinite(flat[:, i])
        out[:, i] = np.interp(np.arange(n_frames), indices[known], flat[known, i]) if known.any() else np.nan
    return out.reshape((n_frames,) + keyframes.shape[1:])
