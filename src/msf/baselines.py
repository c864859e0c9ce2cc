"""Baselines msf is compared with: linear and natural-cubic-spline interpolation between keyframes (`msf plot`,
benchmarks/accuracy.py, benchmarks/live.py, and tools/train.py for its interpolation matrices all use these)."""
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


def cubic_spline_interpolation(keyframes: np.ndarray, indices: np.ndarray, n: int) -> np.ndarray:
    """Natural cubic spline through (indices, keyframes) (M, J, D), complete -> (n, J, D); linear when fewer
    than 3 keyframes."""
    if len(indices) < 3:
        return linear_interpolation(keyframes, indices, n)
    y = keyframes.reshape(len(keyframes), -1)
    h = np.diff(indices).astype(np.float64)
    m = len(indices)
    # second derivatives: tridiagonal system with zero curvature at both ends
    a = np.zeros((m, m))
    rhs = np.zeros_like(y)
    a[0, 0] = a[-1, -1] = 1
    for i in range(1, m - 1):
        a[i, i - 1:i + 2] = h[i - 1], 2 * (h[i - 1] + h[i]), h[i]
        rhs[i] = 6 * ((y[i + 1] - y[i]) / h[i] - (y[i] - y[i - 1]) / h[i - 1])
    second = np.linalg.solve(a, rhs)
    t = np.arange(n)
    seg = np.clip(np.searchsorted(indices, t, side="right") - 1, 0, m - 2)
    x0, hs = indices[seg], h[seg]
    u = ((t - x0) / hs)[:, None]
    out = ((1 - u) * y[seg] + u * y[seg + 1]
           + ((1 - u) ** 3 - (1 - u)) * hs[:, None] ** 2 / 6 * second[seg]
           + (u ** 3 - u) * hs[:, None] ** 2 / 6 * second[seg + 1])
    return out.reshape((n,) + keyframes.shape[1:])
