"""`msf plot`: a few skeleton frames and joint trajectories of keyframes, linear interpolation and msf's
output, as a PNG. Needs matplotlib (`pip install "msf[plot]"`)."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from .baselines import linear_interpolation
from .errors import BackendError

__all__ = ["linear_interpolation", "plot_sequence"]  # linear_interpolation: from msf.baselines


def plot_sequence(path: str | os.PathLike, keyframes: np.ndarray, indices: np.ndarray, refined: np.ndarray,
                  parents: Sequence[int] | None = None, joints: Sequence[int] = (), title: str = "") -> None:
    """keyframes (M, J, D) at `indices`, refined (n, J, D) -> PNG at `path`: 4 skeleton frames (x, y; the
    y axis up for 3D, down for 2D images) and the trajectories of `joints` (default: 3 of them)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BackendError('plotting (plot_sequence, `msf plot` on the command line) needs matplotlib: '
                           'pip install "msf[plot]" (or pip install matplotlib)') from None
    n, J, D = refined.shape
    linear = linear_interpolation(keyframes, indices, n)
    joints = list(joints) or sorted({J - 1, J // 2, max(0, J // 3)})
    frames = np.unique(np.linspace(0, n - 1, 4).round().astype(int))
    fig = plt.figure(figsize=(12, 7), layout="constrained")
    grid = fig.add_gridspec(2, max(len(frames), len(joints)))
    flip = 1.0 if D == 3 else -1.0  # 2D image coordinates point down
    for col, f in enumerate(frames):
        ax = fig.add_subplot(grid[0, col])
        for pose, style, label in ((linear[f], "--", "linear"), (refined[f], "-", "msf")):
            xy = pose[:, :2] * [1.0, flip]
            if parents is not None:
                for j, parent in enumerate(parents):
                    if parent >= 0:
                        ax.plot(xy[[parent, j], 0], xy[[parent, j], 1], style, color="C0" if label == "msf" else "C1")
            ax.plot(xy[:, 0], xy[:, 1], ".", color="C0" if label == "msf" else "C1", label=label)
        ax.set_title(f"frame {f}")
        ax.set_aspect("equal", adjustable="datalim")
        ax.tick_params(labelsize=7)
        if col == 0:
            ax.legend(fontsize=7)
    for col, j in enumerate(joints):
        ax = fig.add_subplot(grid[1, col])
        axis = 1 if D >= 2 else 0
        ax.plot(indices, keyframes[:, j, axis], "o", color="C2", markersize=4, label="keyframes")
        ax.plot(linear[:, j, axis], "--", color="C1", label="linear")
        ax.plot(refined[:, j, axis], "-", color="C0", label="msf")
        ax.set_title(f"joint {j}, coordinate {axis}")
        ax.set_xlabel("frame")
        ax.tick_params(labelsize=7)
        if col == 0:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=90)
    plt.close(fig)
