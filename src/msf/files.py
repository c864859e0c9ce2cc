"""Keyframe files for the command line: .npy, .npz (many sequences) and a simple JSON layout.

    .npy   one sequence: keyframes (M, J, D) or (M, P); NaN marks a missing value
    .npz   many sequences: one array per sequence name, as above; an optional integer `<name>_n_frames`
           gives that sequence's video length
    .json  {"n_frames": n, "keyframes": [[[x, y(, z)], ...joints], ...keyframes]}   (null: missing value)
           or {"sequences": {"name": {"n_frames": n, "keyframes": [...]}, ...}}

Keyframes are the detections on msf.keyframe_indices(n_frames, K): frames 0, K, 2K, ... and the last
frame. Without n_frames a video is taken to end on its last keyframe: n_frames = (M - 1) * K + 1.
Outputs use the same layouts with "frames" (n_frames, J, D) in place of "keyframes".

Outputs are written atomically (atomic_output): a file under its final name is always complete.

Entries of an .npz that are not keyframe sequences (not 2-D or 3-D arrays of numbers: metadata such as
`fps` or `joint_names`) are skipped with a RuntimeWarning naming them. JSON nested deeper than
MAX_JSON_DEPTH is refused before parsing.
"""
from __future__ import annotations

import json
import os
import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import InputError
from .inputs import is_integer
from .weights import json_depth

FORMATS = (".npy", ".npz", ".json")
N_FRAMES_SUFFIX = "_n_frames"
MAX_JSON_DEPTH = 64  # far beyond the 3 levels of keyframes, and far below Python's recursion limit
TEMPORARY_PREFIX = ".msf-tmp-"  # hidden folders .msf-tmp-<tag>-<name> hold outputs being written


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"{path}: unknown file type {suffix or '(none)'!r}; use .npy, .npz or .json")
    return suffix


def _json_array(value, where: str) -> np.ndarray:
    fix = f"{where}: keyframes must be nested lists of numbers (null for missing), (M, J, D) or (M, P)"
    try:
        cells = np.array(value, dtype=object)
    except ValueError:
        raise InputError(fix) from None
    bad = next((v for v in cells.ravel() if v is not None and type(v) not in (int, float)), None)
    if bad is not None:  # strings, booleans, objects, or lists left over where the nesting is ragged
        raise InputError(f"{fix}; found {type(bad).__name__} {str(bad)[:40]}") from None
    try:
        return np.array(value, dtype=np.float64)  # null -> nan
    except (TypeError, ValueError, OverflowError):  # an integer beyond float64
        raise InputError(f"{fix}; a value is beyond float64 range") from None


def _n_frames(value, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "iu":
        value = int(value)
    if not is_integer(value) or value < 1:
        raise InputError(f"{where}: n_frames must be one integer >= 1 (the video's length in frames), "
                         f"got {value!r}")
    return int(value)


def _is_sequence(array: np.ndarray) -> bool:
    return array.dtype.kind in "fiu" and array.ndim in (2, 3)


def _sequence(array: np.ndarray, where: str) -> np.ndarray:
    """array if it is a keyframe sequence (M >= 1, J, D) or (M >= 1, P) of numbers; InputError otherwise."""
    if not _is_sequence(array):
        raise InputError(f"{where}: keyframes must be an array (M, J, D) or (M, P) of numbers (NaN for missing "
                         f"values); got shape {array.shape}, dtype {array.dtype}")
    if len(array) == 0:
        raise InputError(f"{where}: no keyframes (shape {array.shape}): a sequence needs at least one keyframe, "
                         f"the detection on its first frame")
    return array


def _read_npz(path: Path) -> dict[str, tuple[np.ndarray, int | None]]:
    with np.load(path, allow_pickle=False) as data:
        arrays, skipped = {}, []
        for key in data.files:
            try:
                arrays[key] = data[key]
            except ValueError:  # an object array: a pickle, never loaded
                skipped.append(f"{key} (object array: pickles are not read)")
    out = {}
    for key, value in arrays.items():
        if key.endswith(N_FRAMES_SUFFIX):
            if key[:-len(N_FRAMES_SUFFIX)] not in arrays:
                skipped.append(f"{key} (no sequence {key[:-len(N_FRAMES_SUFFIX)]!r})")
        elif _is_sequence(value):
            n_frames = _n_frames(arrays.get(key + N_FRAMES_SUFFIX), f"{path}: {key}{N_FRAMES_SUFFIX}")
            out[key] = (_sequence(value, f"{path}: {key}"), n_frames)
        else:
            skipped.append(f"{key} (shape {value.shape}, dtype {value.dtype})")
    if skipped:
        warnings.warn(f"{path}: skipped {len(skipped)} entries that are not keyframe sequences (M, J, D) or "
                      f"(M, P) of numbers: {', '.join(skipped)}", RuntimeWarning, stacklevel=3)
    if not out:
        raise InputError(f"{path}: no keyframe sequences: expected arrays (M, J, D) or (M, P) of numbers, one "
                         f"per sequence name")
    return out


def read_keyframes(path: str | os.PathLike) -> dict[str, tuple[np.ndarray, int | None]]:
    """name -> (keyframes, n_frames or None); a single-sequence file gives the name ''."""
    path = Path(path)
    kind = _format(path)
    try:
        if kind == ".npy":
            return {"": (_sequence(np.load(path, allow_pickle=False), str(path)), None)}
        if kind == ".npz":
            return _read_npz(path)
        text = path.read_text(encoding="utf-8")
        # without a cap, json.loads recurses once per level and deep input ends in RecursionError
        if json_depth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            raise InputError(f"{path}: JSON nested deeper than {MAX_JSON_DEPTH} levels; keyframes need 3 "
                             f"(keyframes, joints, values)")
        document = json.loads(text)
    except InputError:
        raise
    except (ValueError, OSError, RecursionError) as e:  # RecursionError: a caller's stack already deep
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
        out[name] = (_sequence(_json_array(entry["keyframes"], where), where), _n_frames(entry.get("n_frames"), where))
    if not out:
        raise InputError(f"{path}: no keyframe sequences: 'sequences' is empty; expected at least one name mapped "
                         f"to {{'keyframes': (M, J, D) or (M, P), 'n_frames': ...}}")
    return out


def write_frames(path: str | os.PathLike, frames: dict[str, np.ndarray]) -> None:
    """name -> (n_frames, J, D) frames, in the format the extension names ('' = a single sequence)."""
    path = Path(path)
    kind = _format(path)
    if kind == ".npy" and len(frames) != 1:
        raise InputError(f"{path}: .npy holds one sequence but there are {len(frames)}; use .npz or .json")
    with atomic_output(path) as temporary:
        if kind == ".npy":
            np.save(temporary, next(iter(frames.values())))
        elif kind == ".npz":
            np.savez(temporary, **{name or "frames": f for name, f in frames.items()})
        else:
            as_list = {name: np.asarray(f, dtype=np.float64).tolist() for name, f in frames.items()}
            document = ({"frames": as_list[""]} if list(frames) == [""] else
                        {"sequences": {name: {"frames": f} for name, f in as_list.items()}})
            temporary.write_text(json.dumps(document), encoding="utf-8")


def temporary_folder(path: str | os.PathLike, tag: str | None = None) -> Path:
    """The hidden folder beside `path` in which atomic_output(path, tag) writes it (tag: default the pid)."""
    path = Path(path)
    return path.parent / f"{TEMPORARY_PREFIX}{os.getpid() if tag is None else tag}-{path.name}"


def remove(path: Path) -> None:
    """Removes a file or a folder tree; nothing when it is not there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_output(path: str | os.PathLike, tag: str | None = None) -> Iterator[Path]:
    """Where to write `path` (a file, or a folder such as OpenPose output) so that it appears complete or not
    at all: the block writes the yielded path, of the same name, inside temporary_folder(path, tag); when the
    block ends it is renamed onto `path` (replacing what is there), and the folder is removed in any case,
    also on an exception or KeyboardInterrupt."""
    path = Path(path)
    holder = temporary_folder(path, tag)
    remove(holder)
    try:
        holder.mkdir()
    except OSError as e:  # name the output's folder (missing, not writable), not the hidden one in it
        raise OSError(e.errno, e.strerror, str(path.parent)) from None
    try:
        written = holder / path.name
        yield written
        if path.is_dir() or (written.is_dir() and path.exists()):  # os.replace cannot swap these in one step
            os.replace(path, holder / f"{path.name}.old")
        os.replace(written, path)
    finally:
        remove(holder)
