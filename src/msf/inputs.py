"""Checks on user-supplied arrays shared by refine, recover and streaming: dtypes, pose shapes, float32
range, detector scores."""
from __future__ import annotations

import math

import numpy as np

from .errors import InputError

FLOAT32_MAX = float(np.finfo(np.float32).max)
MIN_SCORE = 0.3  # joints scored below it are missing: the usual visibility cut of COCO-style detectors
SCAN_ROWS = 4096  # keyframes per block when recover checks its input or looks ahead for a detection


def real_array(value, what: str) -> np.ndarray:
    """np.asarray(value), refusing ragged nesting and dtypes that are not real numbers (ints, floats)."""
    if isinstance(value, np.ma.MaskedArray):  # np.asarray would drop the mask and keep the values under it
        raise InputError(f"{what}: a masked array; pass a plain array with NaN for missing joints "
                         f"(masked.filled(np.nan))")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise InputError(f"{what}: not an array ({e})") from None
    if array.dtype.kind not in "fiu":
        raise InputError(f"{what}: dtype {array.dtype}; expected real numbers (float32 or float64)")
    return array


def is_integer(value) -> bool:
    """A Python or NumPy integer, not a bool (a bool is not a count)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def as_poses(keyframes, shape: tuple[int, int] | None, P: int, axes: tuple[str, ...], what: str) -> np.ndarray:
    """keyframes with leading axes named `axes` then (J, D) or (P,) -> float64 (..., J, D); InputError otherwise."""
    array = real_array(keyframes, what).astype(np.float64)
    if np.isinf(array).any():
        raise InputError(f"{what}: infinite values; use NaN for missing joints")
    if (np.abs(array) > FLOAT32_MAX).any():  # NaN compares False: missing joints pass
        first = tuple(int(i) for i in np.argwhere(np.abs(array) > FLOAT32_MAX)[0])
        raise InputError(f"{what}: values beyond float32 range (|x| > {FLOAT32_MAX:.3g}, first at index "
                         f"{first}); msf computes in float32: give poses in the model's units")
    return array.reshape(array.shape[:len(axes)] + pose_shape(array.shape, shape, P, axes, what))


def pose_shape(full: tuple[int, ...], shape: tuple[int, int] | None, P: int, axes: tuple[str, ...],
               what: str) -> tuple[int, int]:
    """The (J, D) of keyframes of shape `full` (leading axes named `axes`, then (J, D) or (P,)); InputError
    otherwise."""
    tail = full[len(axes):] if len(full) >= len(axes) else ()
    if len(tail) == 1 and tail[0] == P:  # without a pose convention, flat poses are P joints of 1 value
        return shape or (P, 1)
    if len(tail) == 2 and tail[0] * tail[1] == P and shape in (None, tail):
        return tail
    raise InputError(f"{what}: shape {full}; expected {pose_forms(shape, P, axes)}")


def pose_forms(shape: tuple[int, int] | None, P: int, axes: tuple[str, ...]) -> str:
    """The accepted shapes in words, e.g. "(M, 17, 3) or (M, 51)"."""
    J, D = shape or ("J", "D")
    lead = "".join(f"{a}, " for a in axes)
    flat = f"({lead}{P})" if axes else f"({P},)"
    return f"({lead}{J}, {D}) or {flat}" + ("" if shape else f" with J*D = {P}")


def check_min_score(min_score, what: str = "min_score") -> None:
    if not (is_integer(min_score) or isinstance(min_score, (float, np.floating))) or not math.isfinite(min_score):
        raise InputError(f"{what} must be a finite number (joints scored below it are missing), got {min_score!r}")


def pushed_pose(keyframe, shape: tuple[int, int] | None, P: int, min_score) -> np.ndarray:
    """A keyframe pushed to a stream, (J, D) or (P,), or a 2D model's (J, 3) = (x, y, score), -> float64
    (J, D); joints scored below min_score are missing (NaN), as recover reads them."""
    array, scores = split_scores(real_array(keyframe, "keyframe")[None], None, min_score, shape)
    pose = as_poses(array[0], shape, P, (), "keyframe")
    if scores is not None:
        pose[scores[0] < min_score] = np.nan
    return pose


def split_scores(array: np.ndarray, scores, min_score, shape: tuple[int, int] | None
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
    check_min_score(min_score)
    scores = real_array(scores, "scores")
    if scores.shape != array.shape[:-1]:
        flat = shape is not None and shape[0] > 1 and array.shape[-1] == shape[0] * shape[1]
        each = ("one per flat keyframe (give the keyframes as (..., J, D) for one score per joint)" if flat
                else "one per joint")
        raise InputError(f"scores have shape {scores.shape}; expected {array.shape[:-1]}, {each} of the keyframes "
                         f"{array.shape}")
    if scores.dtype.kind == "f" and any(np.isinf(block).any() for _, block in _blocks(scores, 1)):
        raise InputError("scores contain infinite values; use NaN for an unknown score")
    return array, scores


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


def check_values(array: np.ndarray, leading: int, what: str, scores=None, min_score=None) -> None:
    """as_poses's value checks, block by block, on `array` with joints scored below min_score missing."""
    def masked():
        for start, block in _blocks(array, leading):
            block = np.array(block, dtype=np.float64)
            if scores is not None:
                low = scores[start[:-1] + (slice(start[-1], start[-1] + len(block)),)] < min_score \
                    if array.ndim >= leading else scores < min_score
                block[np.broadcast_to(low[..., None], block.shape)] = np.nan
            yield start, block
    if any(np.isinf(block).any() for _, block in masked()):
        raise InputError(f"{what}: infinite values; use NaN for missing joints")
    for start, block in masked():
        big = np.abs(block) > FLOAT32_MAX  # NaN compares False: missing joints pass
        if big.any():
            first = tuple(int(i) for i in np.argwhere(big)[0])
            if array.ndim >= leading:
                first = tuple(int(i) for i in start[:-1]) + (int(start[-1]) + first[0],) + first[1:]
            raise InputError(f"{what}: values beyond float32 range (|x| > {FLOAT32_MAX:.3g}, first at index "
                             f"{first}); msf computes in float32: give poses in the model's units")
