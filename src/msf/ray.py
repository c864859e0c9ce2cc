"""Data sets on a Ray cluster through Ray Data (`pip install "msf[ray]"`): one Refiner per actor.

    import msf, msf.ray
    tracks = msf.ray.from_files(["videos/", "more/*.npz"])      # a ray.data.Dataset, one row per file
    done = msf.ray.recover(tracks, msf.Refiner.load("h36m17-3d"), actors=8)
    for row in done.iter_rows():                                # or done.write_parquet(...), etc.
        row["source"], row["sequence"], row["frames"], row["error"]

Rows of recover's result, one per sequence: "source" (the file's name relative to its argument, as
`msf recover IN... -o OUTDIR` names outputs; for arrays, the index as a string), "sequence" (the name
in an .npz/.json file; "" for one sequence), "keyframes" (M, P) float64 in the user's units, P = J * D
((M, J, D) flattened: Ray Data pads tensors of fewer dimensions within a column, so every row has two),
"n_frames" (the video's length; 0 when the file gives none: the video then ends on its last keyframe),
"error" ("" or why the row has no frames; a bad file or track fails its rows, not the data set).
recover adds "frames" (n_frames, P) float32, empty where "error" is set: Refiner.recover's numbers bit
for bit (reshape to (n_frames, J, D) with the model's pose["joints"] and pose["dims"]).

Files are read by the actors that recover them (reading in tasks of their own would need CPUs that
the actors hold), so their paths must be readable where those run (a shared file system). The msf
keyframe files are read (.npy, .npz, .json of msf.files), not detector files. Row order is kept only
if the Dataset's context says so (DataContext.execution_options.preserve_order).
This module imports ray; `import msf` never imports this module.
"""
from __future__ import annotations

import os
import warnings
from typing import Iterable, Sequence

import numpy as np
import ray.data

from .batch import expand
from .errors import Error, InputError
from .files import read_keyframes


def _error_row(source: str, error: str) -> dict:
    return {"source": source, "sequence": "", "keyframes": np.zeros((0, 0)), "n_frames": 0, "error": error}


def _read(path: str, source: str) -> list[dict]:
    """One file -> its sequences' rows; a file that cannot be read -> one row naming why."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skipped .npz entries: the rows say what was read
            sequences = read_keyframes(path)
    except (Error, OSError) as e:
        return [_error_row(source, str(e))]
    return [{"source": source, "sequence": name, "keyframes": _flat(kf), "n_frames": n or 0, "error": ""}
            for name, (kf, n) in sequences.items()]


def _flat(keyframes) -> np.ndarray:
    keyframes = np.asarray(keyframes, dtype=np.float64)
    return keyframes.reshape(len(keyframes), -1) if keyframes.ndim == 3 else keyframes


def from_files(inputs: Iterable[str | os.PathLike]) -> "ray.data.Dataset":
    """Files, folders (recursive) and globs, as `msf recover` takes them, -> one row per file ("path",
    "source"), read by recover. Raises msf.InputError here, on the driver, for an argument that names
    nothing."""
    return ray.data.from_items([{"path": str(path), "source": str(name)} for path, name in expand(inputs, None)])


def from_tracks(tracks: Sequence[np.ndarray], n_frames: Sequence[int] | None = None) -> "ray.data.Dataset":
    """Arrays of keyframes (M, J, D) or (M, P), one per track, with their videos' lengths (default: each
    ends on its last keyframe) -> one row each, "source" its index."""
    lengths = [0] * len(tracks) if n_frames is None else list(n_frames)
    if len(lengths) != len(tracks):
        raise InputError(f"{len(tracks)} tracks but {len(lengths)} n_frames")
    return ray.data.from_items([{"source": str(i), "sequence": "", "keyframes": _flat(kf), "n_frames": int(n),
                                 "error": ""} for i, (kf, n) in enumerate(zip(tracks, lengths))])


class Recover:
    """The callable class of Dataset.map_batches: each actor unpickles the Refiner once and recovers the
    rows of every batch it is given (rows of files: each file's sequences)."""

    def __init__(self, refiner, image_size=None, stride: int | None = None):
        self.refiner, self.image_size, self.stride = refiner, image_size, stride

    def __call__(self, batch: dict) -> dict:
        if "path" in batch:
            rows = [row for path, source in zip(batch["path"], batch["source"]) for row in _read(path, source)]
        else:
            rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
        for row in rows:
            row["frames"] = np.zeros((0, self.refiner.config.P), dtype=np.float32)
            if not row["error"]:
                n = int(row["n_frames"]) or (len(row["keyframes"]) - 1) * self.refiner.config.K + 1
                try:
                    row["frames"] = self.refiner.recover(row["keyframes"], n, image_size=self.image_size,
                                                         stride=self.stride)
                except Error as e:
                    row["error"] = str(e)
        return {key: _column([row[key] for row in rows]) for key in _COLUMNS}


_COLUMNS = ("source", "sequence", "keyframes", "n_frames", "error", "frames")


def _column(values: list) -> np.ndarray:
    """A batch column: arrays stacked when they have one shape, else an object array (ragged rows)."""
    if values and isinstance(values[0], np.ndarray) and len({v.shape for v in values}) > 1:
        column = np.empty(len(values), dtype=object)
        column[:] = values
        return column
    return np.stack(values) if values and isinstance(values[0], np.ndarray) else np.array(values)


def recover(dataset: "ray.data.Dataset", refiner, *, image_size=None, stride: int | None = None, actors: int = 1,
            batch_size: int = 8) -> "ray.data.Dataset":
    """Adds "frames" (and fills "error") to every row, with `actors` Ray actors (one CPU and one Refiner
    each) taking `batch_size` rows at a time. image_size, stride: as Refiner.recover. Lazy, as Ray
    Data is: nothing runs until the result is consumed."""
    return dataset.map_batches(Recover, fn_constructor_args=(refiner, image_size, stride),
                               compute=ray.data.ActorPoolStrategy(size=actors), batch_size=batch_size,
                               batch_format="numpy")
