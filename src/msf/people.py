"""Every frame of every person in a detector's file: detections -> Refiner.recover per track -> detections.

    from msf import detectors, people
    found = detectors.read("alphapose-results.json")
    done = people.recover(msf.Refiner.load("coco17-2d"), found, image_size=(1920, 1080))
    detectors.write("recovered.json", done)                      # every frame, the same format

Each person is recovered from its first to its last detection on the keyframe grid (frames 0, K, 2K, ...
and the video's last frame): the model takes keyframes only, so detections between them are not used (a
warning counts them). Keypoints are converted to the model's layout first (e.g. halpe26 -> coco17, coco17 ->
h36m17; msf.layouts). Joints scored below `min_score` are missing, filled as recover fills NaN. Scores of
the recovered frames are the keyframe scores interpolated linearly in time (a missing or low-scored
keyframe joint counts 0, a detection without a score 1), so a recovered joint is trusted as much as the
detections it rests on. A person who cannot be recovered (no keyframe detection, a joint never detected)
is left out with a warning naming it.
"""
from __future__ import annotations

import warnings

import numpy as np

from . import layouts
from .detectors import FORMATS, Detections, PersonTrack, check_n_frames
from .errors import InputError
from .inputs import MIN_SCORE, check_min_score
from .keyframes import check_stride, keyframe_indices, on_grid
from .normalise import check_image_size


def model_layout(refiner) -> str:
    """The msf.layouts name of a 2D model's keypoints; InputError for a model that does not take pixels."""
    convention = refiner.convention
    skeleton, units = convention.skeleton, convention.units
    if not convention.image_normalised or skeleton not in layouts.names():
        raise InputError(f"detector files hold 2D keypoints in pixels: use a 2D model of a keypoint layout "
                         f"({', '.join(layouts.names())}), e.g. coco17-2d; this one is "
                         f"{skeleton or 'without a skeleton'} in {'unknown units' if units is None else units}")
    return skeleton


def _recover_track(refiner, track: PersonTrack, grid: np.ndarray, image_size, stride, min_score) -> PersonTrack:
    used = np.isin(track.frames, grid)
    frames, keypoints, scores = track.frames[used], track.keypoints[used], track.scores[used]
    span = grid[(grid >= frames[0]) & (grid <= frames[-1])]
    poses = np.full((len(span),) + keypoints.shape[1:], np.nan)
    span_scores = np.full(poses.shape[:2], np.nan)
    at = np.searchsorted(span, frames)
    poses[at], span_scores[at] = keypoints, scores
    n = int(span[-1] - span[0] + 1)
    out = refiner.recover(poses, n, image_size=image_size, stride=stride, scores=span_scores, min_score=min_score)
    trusted = np.where(np.isnan(poses).any(axis=2) | (span_scores < min_score), 0.0,
                       np.nan_to_num(span_scores, nan=1.0))
    every = np.arange(n)
    out_scores = np.stack([np.interp(every, span - span[0], trusted[:, j]) for j in range(trusted.shape[1])], 1)
    return PersonTrack(track.track_id, every + span[0], out, out_scores)


def recover(refiner, detections: Detections, *, image_size, n_frames: int | None = None, stride: int | None = None,
            min_score: float = MIN_SCORE, format: str | None = None, name: str = "detections",
            progress=None) -> Detections:
    """Detections (any layout msf.layouts converts to the model's) -> every frame of every person.

    image_size: (width, height) px. n_frames: the video's length (default: the file's, else one past the
    last detection). format: of the result (default the input's). name: how messages call the input.
    progress: called with 1 after each person. Raises InputError when no detection is on the K-frame grid
    (the detector ran on other frames), n_frames is shorter than the detections, or no one is left."""
    target = model_layout(refiner)
    if not isinstance(detections, Detections):
        raise InputError(f"detections must be a msf.detectors.Detections (detectors.read gives one), got "
                         f"{type(detections).__name__}")
    # the arguments' own errors once, here, rather than as every person's warning
    check_image_size(image_size, 2)
    check_stride(stride, refiner.config.Q)
    check_min_score(min_score)
    if n_frames is not None:
        n_frames = check_n_frames(n_frames)
    if format is not None and format not in FORMATS:
        raise InputError(f"unknown detector format {format!r}; known: {', '.join(FORMATS)}")
    if progress is not None and not callable(progress):
        raise InputError(f"progress must be a function called with 1 after each person, got {progress!r}")
    if detections.layout != target:
        converted = []
        for t in detections.tracks:
            kp, sc = layouts.convert(t.keypoints, detections.layout, target, t.scores)
            converted.append(PersonTrack(t.track_id, t.frames, kp, sc))
        detections = Detections(target, converted, detections.n_frames, detections.image_size, detections.format)
    K = refiner.config.K
    last = detections.frame_count()
    n_frames = last if n_frames is None else n_frames
    if last < 1:
        raise InputError(f"{name}: no person detected on any frame: nothing to recover")
    if n_frames < last:
        raise InputError(f"{name}: the video has {n_frames} frames but there are detections on frame {last - 1}")
    grid = keyframe_indices(n_frames, K)
    all_frames = np.concatenate([t.frames for t in detections.tracks])
    if not on_grid(all_frames, K).any():  # the last frame alone always fits: judge the K-frame grid
        raise InputError(f"{name}: no detection is on a keyframe (frames 0, {K}, {2 * K}, ... and the last, "
                         f"{n_frames - 1}; K = {K} for this model); the file's first frames with detections are "
                         f"{', '.join(map(str, np.unique(all_frames)[:5]))}: run the detector on frames 0, {K}, "
                         f"{2 * K}, ... or renumber the frames")
    between = int((~np.isin(all_frames, grid)).sum())  # off the grid, and not the last frame
    if between:
        warnings.warn(f"{name}: {between} of {all_frames.size} detections are on frames between keyframes and "
                      f"were not used (the model takes frames 0, {K}, {2 * K}, ... and the last, {n_frames - 1}; "
                      f"K = {K})", RuntimeWarning)
    tracks = []
    for track in detections.tracks:
        if progress is not None:
            progress(1)
        if not np.isin(track.frames, grid).any():
            warnings.warn(f"{name}: person {track.track_id!r} has no detection on a keyframe; left out",
                          RuntimeWarning)
            continue
        try:
            tracks.append(_recover_track(refiner, track, grid, image_size, stride, min_score))
        except InputError as e:  # e.g. a joint never detected: the others still get their people
            warnings.warn(f"{name}: person {track.track_id!r} left out: {e}", RuntimeWarning)
    if not tracks:
        raise InputError(f"{name}: no person could be recovered (see the warnings above)")
    return Detections(target, tracks, n_frames, detections.image_size, format or detections.format)
