"""Keyframe files for the command line: .npy, .npz (many sequences) and a simple JSON layout.

    .npy   one sequence: keyframes (M, J, D) or (M, P); NaN marks a missing value
    .npz   many sequences: one array per sequence name, as above; an optional integer `<name>_n_frames`
           gives that sequence's video length
    .json  {"n_frames": n, "keyframes": [[[x, y(, z)], ...joints], ...keyframes]}   (null: missing value)
           or {"sequences": {"name": {"n_frames": n, "keyframes": [...]}, ...}}

Keyframes are the detections on msf.keyframe_indices(n_frames, K): frames 0, K, 2K, ... and the last
frame. Without n_frames a video is taken to end on its last keyframe: n_frames = (M - 1) * K + 1.
Outputs use the same layouts with "frames" (n_frames, J, D) in place of "keyframes".
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .errors import InputError

FORMATS = (".npy", ".npz", ".json")
N_FRAMES_SUFFIX = "_n_frames"


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"{path}: unknown file type {suffix or '(none)'!r}; use .npy, .npz or .json")
    return suffix


def _json_array(value, where: str) -> np.ndarray:
    try:
        return np.array(value, dtype=np.float64)  # null -> nan
    except (TypeError, ValueError):
        raise InputError(f"{where}: keyframes must be nested lists of numbers (null for missing)") from None


def _n_frames(value, where: str) -> int | None:
    if value is None:
        return None
    n = np.asarray(value)
    if n.shape != () or n.dtype.kind not in "iu":
        raise InputError(f"{where}: n_frames must be one integer, got {value!r}")
    return int(n)


def read_keyframes(path: str | os.PathLike) -> dict[str, tuple[np.ndarray, int | None]]:
    """name -> (keyframes, n_frames or None); a single-sequence file gives the name ''."""
    path = Path(path)
    kind = _format(path)
    try:
        if kind == ".npy":
            return {"": (np.load(path, allow_pickle=False), None)}
        if kind == ".npz":
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            return {k: (v, _n_frames(arrays.get(k + N_FRAMES_SUFFIX), f"{path}: {k}{N_FRAMES_SUFFIX}"))
                    for k, v in arrays.items() if not k.endswith(N_FRAMES_SUFFIX)}
        document = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:
        raise InputError(f"{path}: cannot read keyframes: {e}") from None
    if not isinstance(document, dict):
        raise InputError(f"{path}: expected a JSON object with 'keyframes' or 'sequences'")
    if "sequences" in document:
        if not isinstance(document["sequences"], dict):
            raise InputError(f"{path}: 'sequences' must map names to {{'keyframes': ..., 'n_frames': ...}}")
        items = document["sequences"].items()
    else:
        items = [("", document)]
    out = {}
    for name, entry in items:
        where = f"{path}: {name or 'document'}"
        if not isinstance(entry, dict) or "keyframes" not in entry:
            raise InputError(f"{where}: missing 'keyframes'")
        out[name] = (_json_array(entry["keyframes"], where), _n_frames(entry.get("n_frames"), where))
    return out


def write_frames(path: str | os.PathLike, frames: dict[str, np.ndarray]) -> None:
    """name -> (n_frames, J, D) frames, in the format the extension names ('' = a single sequence)."""
    path = Path(path)
    kind = _format(path)
    if kind == ".npy":
        if len(frames) != 1:
            raise InputError(f"{path}: .npy holds one sequence but there are {len(frames)}; use .npz or .json")
        np.save(path, next(iter(frames.values())))
    elif kind == ".npz":
        np.savez(path, **{name or "frames": f for name, f in frames.items()})
    else:
        as_list = {name: np.asarray(f, dtype=np.float64).tolist() for name, f in frames.items()}
        document = ({"frames": as_list[""]} if list(frames) == [""] else
                    {"sequences": {name: {"frames": f} for name, f in as_list.items()}})
        path.write_text(json.dumps(document), encoding="utf-8")
