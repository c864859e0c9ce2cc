"""Keypoint files of 2D pose detectors: read them into person tracks, write results back in the same formats.

    from msf import detectors
    d = detectors.read("alphapose-results.json")      # format sniffed; layout from the joint count
    for t in d.tracks:                                # one PersonTrack per person
        t.frames, t.keypoints, t.scores               # (M,), (M, J, 2) pixels (NaN = not detected), (M, J)
    detectors.write("recovered.json", d)              # same format as read, readable by the user's tools

Formats (what each tool writes, and what is accepted):

``coco``
    COCO keypoint results / AlphaPose ``alphapose-results.json``: a JSON list of
    ``{"image_id", "category_id", "keypoints": [x, y, c, ...] (3 J numbers), "score"}``, optionally with
    ``"track_id"`` (PoseTrack style) or AlphaPose's ``"idx"`` (PoseFlow track) and ``"box"``.
    The frame is ``image_id`` when it is an integer (COCO), else the last run of digits in the stem of
    the file name (AlphaPose writes ``"0.jpg"``, ``"1.jpg"``, ... for a video; ``"frame_000123.png"``
    -> 123). One file uses one kind of id; ids of both kinds, a name without digits, or two names
    that give the same frame (``a_1.jpg``, ``b_1.jpg``) are an InputError. ``category_id`` is not read.
    ``track_id`` is a track id wherever it is given; ``idx`` only where it is unique within every frame
    (untracked AlphaPose runs give every person the same ``idx``), else the people are associated.
    The writer writes integer ``image_id`` (the frame) and ``track_id``.
``openpose``
    OpenPose ``--write_json`` output: a folder with one ``<name>_<frame:012d>_keypoints.json`` per video
    frame (frame = the digits before ``_keypoints.json``), each ``{"version", "people": [{"person_id":
    [-1], "pose_keypoints_2d": [x, y, c, ...], ...}]}``; ``person_id`` other than -1 (OpenPose's
    tracking) is a track id. A single such file is one frame (frame 0). ``pose_keypoints`` (the key of
    early OpenPose JSON, version 0.1) is read as ``pose_keypoints_2d``. The writer writes a folder
    (``<folder name>_<frame>_keypoints.json`` for every frame, version 1.3 with the empty face/hand
    arrays) or, for a path ending in ``.json`` and a single frame 0, one file.
``mmpose``
    MMPose prediction JSON: ``MMPoseInferencer(..., pred_out_dir=...)`` writes for a video a list
    ``[{"frame_id": i, "instances": [...]}]`` with frame_id 0, 1, ... (every frame), and for an image a
    bare list of instances; the demo scripts (``demo/topdown_demo_with_mmdet.py --save-predictions``)
    write ``{"meta_info": {...}, "instance_info": <either of those lists>}`` and count video frames
    from 1. An instance is ``{"keypoints": [[x, y], ...], "keypoint_scores": [...], "bbox": [[x1, y1,
    x2, y2]], "bbox_score"}`` (bbox optional); an extra ``"track_id"`` is read as a track id. frame_id is
    taken as written (the demo's first frame is frame 1). An image's bare instance list is frame 0. The
    writer writes the inferencer's video form for every frame, with ``track_id`` in each instance.
``ultralytics``
    ``Results.summary()`` / ``Results.to_json()`` of a pose model (pixels, the default
    ``normalize=False``): per frame a list of ``{"name", "class", "confidence", "box": {"x1", "y1", "x2",
    "y2"}, "track_id" (model.track), "keypoints": {"x": [...], "y": [...], "visible": [...]}}``
    (``visible``, the keypoint confidence, absent for models without it). A file is one frame's list
    (frame 0), a list of such lists (frame = position, every frame of the video), or
    ``[{"frame": i, "results": [...]}, ...]``. The writer writes the list of per-frame lists.
    :func:`from_ultralytics` takes the in-memory ``Results`` objects instead.

Shared rules:

- A joint at exactly x = y = 0 is "not detected" in every format (OpenPose and COCO write ``0, 0, 0``;
  ultralytics zeroes the position of joints with confidence below 0.5): its position reads as NaN and
  its score is kept as written. Writers write a NaN position as ``0, 0`` with its score, so a joint
  really at pixel (0, 0) would read back as missing.
- Scores are kept as written (low scores included; the caller decides what to drop). Where the file
  gives none (ultralytics without ``visible``, mmpose without ``keypoint_scores``) scores are NaN;
  writers omit them again where the format allows and write 0 where it needs a number (coco, openpose).
  A person's own score (coco ``score``, mmpose ``bbox_score``, ultralytics ``confidence``) is written as
  the mean score of its detected joints (0 without any).
- Several people: one track per track id where the file gives them, otherwise :func:`associate`.
  People without an id in a file where others have one are associated among themselves and get integer
  ids above the largest one in the file. A track id twice in one frame is an InputError. With
  association, a person with no detected joint has no position and is dropped.
- Frames without a detection of a person are absent from its track; ``n_frames`` is set where the file
  holds every frame of the video (an OpenPose folder or mmpose/ultralytics list numbered 0..N-1, an
  ultralytics per-frame list, a single frame), else None. ``image_size`` only comes from
  :func:`from_ultralytics` (``orig_shape``): none of the files records it.
- Coordinates are taken as pixels; formats that can write normalized coordinates (OpenPose's
  ``--keypoint_scale``, ultralytics ``normalize=True``) are read as they are.
- Floats are written with Python's ``repr`` (shortest round-trip form), so ``read(write(d))`` gives
  ``d`` back exactly (with ``n_frames`` filled in where the format stores every frame, and NaN scores as
  0 in coco/openpose). Files are written atomically (a temporary file in the same folder, then
  ``os.replace``).
- Malformed input (not JSON, nesting deeper than 64, NaN/Infinity, non-numbers, coordinates beyond float32
  range, wrong lengths, mixed joint counts, negative or huge frame ids, duplicate frame/track pairs) raises
  :class:`msf.InputError` naming the file and the position in it.
"""
from __future__ import annotations

import json
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from . import layouts as _layouts
from .errors import InputError
from .inputs import check_values, is_integer, real_array
from .keyframes import check_n_frames as _check_length
from .normalise import check_image_size

__all__ = ["FORMATS", "Detections", "PersonTrack", "associate", "from_ultralytics", "read", "sniff", "write"]

FORMATS = ("coco", "openpose", "mmpose", "ultralytics")
MAX_DEPTH = 64              # deepest JSON nesting read (formats need 6); far below Python's recursion limit
MAX_FRAME = 10_000_000      # largest frame index accepted (writers write every frame up to the last)
GATE = 0.5                  # association gate, in box sizes
_DEFAULT_LAYOUT = {"openpose": "body25"}   # layout of a file without any person; coco17 otherwise


# ----------------------------------------------------------------------------------------------------------
# data


def _track_key(tid):
    return (0, tid, "") if isinstance(tid, int) else (1, 0, tid)


@dataclass(eq=False)
class PersonTrack:
    """One person over the frames where a detector found it.

    track_id: the file's track id, or 0, 1, ... assigned by association. frames: (M,) int64 frame
    indices, strictly increasing. keypoints: (M, J, 2) float64 pixels, NaN where a joint is missing.
    scores: (M, J) float64 confidence, NaN where the file gives none (None -> all NaN)."""

    track_id: int | str
    frames: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray | None = None

    def __post_init__(self):
        tid = self.track_id
        if not (is_integer(tid) or (isinstance(tid, str) and tid)):
            raise InputError(f"track_id must be an int or a non-empty str (as files give them), got {tid!r}")
        self.track_id = int(tid) if isinstance(tid, (int, np.integer)) else tid
        frames = np.asarray(self.frames)
        if frames.ndim != 1 or not (np.issubdtype(frames.dtype, np.integer)
                                    or (np.issubdtype(frames.dtype, np.floating) and np.all(np.isfinite(frames))
                                        and np.all(frames == np.round(frames)))):
            raise InputError(f"track {self.track_id!r}: frames must be a 1-D array of integers, got "
                             f"{frames.dtype} {frames.shape}")
        if frames.size and not (0 <= frames.min() <= frames.max() <= MAX_FRAME  # in range before the cast
                                and np.all(np.diff(frames.astype(np.int64)) > 0)):
            raise InputError(f"track {self.track_id!r}: frames must be from 0 to {MAX_FRAME} (as in detector files) "
                             "and strictly increasing")
        frames = frames.astype(np.int64)
        kp = _float_array(self.keypoints, f"track {self.track_id!r}: keypoints")
        if kp.ndim != 3 or kp.shape[0] != frames.size or kp.shape[2] != 2:
            raise InputError(f"track {self.track_id!r}: keypoints must have shape ({frames.size}, J, 2), "
                             f"got {kp.shape}")
        check_values(kp, 1, f"track {self.track_id!r}: keypoints")
        if self.scores is None:
            sc = np.full(kp.shape[:2], np.nan)
        else:
            sc = _float_array(self.scores, f"track {self.track_id!r}: scores")
            if sc.shape != kp.shape[:2]:
                raise InputError(f"track {self.track_id!r}: scores must have shape {kp.shape[:2]}, got {sc.shape}")
            if np.isinf(sc).any():
                raise InputError(f"track {self.track_id!r}: scores must be finite or NaN")
        self.frames, self.keypoints, self.scores = frames, kp, sc

    @property
    def J(self) -> int:
        return self.keypoints.shape[1]

    def __eq__(self, other):
        if not isinstance(other, PersonTrack):
            return NotImplemented
        return (type(self.track_id) is type(other.track_id) and self.track_id == other.track_id
                and np.array_equal(self.frames, other.frames)
                and self.keypoints.shape == other.keypoints.shape
                and np.array_equal(self.keypoints, other.keypoints, equal_nan=True)
                and np.array_equal(self.scores, other.scores, equal_nan=True))

    __hash__ = None  # mutable

    def __repr__(self):
        span = f"frames {self.frames[0]}..{self.frames[-1]}" if self.frames.size else "no frames"
        return f"PersonTrack({self.track_id!r}, {self.frames.size} detections, {span}, J={self.J})"


def _float_array(x, what):
    return real_array(x, what).astype(np.float64)


def check_n_frames(n_frames, what: str = "n_frames") -> int:
    """n_frames as an int; InputError unless it is an integer from 1 to MAX_FRAME + 1, the frames a detector
    file may number (the writers write every one of them)."""
    n_frames = _check_length(n_frames, what)
    if n_frames > MAX_FRAME + 1:
        raise InputError(f"{what} must be at most {MAX_FRAME + 1} (frames 0 to {MAX_FRAME}: the longest video msf "
                         f"reads or writes as detector files), got {n_frames}")
    return n_frames


@dataclass
class Detections:
    """The people in one detector file. layout: msf.layouts name ("coco17", "halpe26", "body25",
    "blazepose33"); tracks sorted by track id (ints before strings); n_frames: frames in the video where
    the file says so, else None; image_size: (width, height) px where known; format: the file format."""

    layout: str
    tracks: list
    n_frames: int | None = None
    image_size: tuple | None = None
    format: str = "coco"

    def __post_init__(self):
        lay = _layouts.get(self.layout)
        self.layout = lay.name
        try:
            self.tracks = list(self.tracks)
        except TypeError:
            raise InputError(f"tracks must be a list of PersonTrack objects, got {type(self.tracks).__name__}") \
                from None
        ids = set()
        for t in self.tracks:
            if not isinstance(t, PersonTrack):
                raise InputError(f"tracks must be PersonTrack objects, got {type(t).__name__}")
            if t.J != lay.J:
                raise InputError(f"track {t.track_id!r} has {t.J} joints, layout {lay.name} has {lay.J}")
            key = _track_key(t.track_id)
            if key in ids:
                raise InputError(f"track id {t.track_id!r} appears twice")
            ids.add(key)
        if self.n_frames is not None:
            if not is_integer(self.n_frames) or not 0 <= self.n_frames <= MAX_FRAME + 1:
                raise InputError(f"n_frames must be an int from 0 to {MAX_FRAME + 1} (frames 0 to {MAX_FRAME}: the "
                                 f"longest video msf reads or writes as detector files) or None, got {self.n_frames!r}")
            self.n_frames = int(self.n_frames)
            last = max((int(t.frames[-1]) for t in self.tracks if t.frames.size), default=-1)
            if last >= self.n_frames:
                raise InputError(f"n_frames is {self.n_frames} but a track has frame {last}")
        if self.image_size is not None:
            self.image_size = tuple(check_image_size(self.image_size, 2).tolist())
        if self.format not in FORMATS:
            raise InputError(f"unknown detector format {self.format!r}; known: {', '.join(FORMATS)}")

    def frame_count(self) -> int:
        """n_frames where known, else one past the last frame with a detection (0 without any)."""
        if self.n_frames is not None:
            return self.n_frames
        return max((int(t.frames[-1]) + 1 for t in self.tracks if t.frames.size), default=0)


# ----------------------------------------------------------------------------------------------------------
# JSON and value checks

# A string up to its closing quote or the end of the text: it never fails to match, so blanking strings is
# one pass however the text is malformed (a pattern that needs the closing quote retries from every quote
# of an unterminated string: 20 s for 80 KB of \").
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_CONSTANT = re.compile(r"NaN|-?Infinity")


def _blank_strings(text: str) -> str:
    """text with every string literal's contents replaced by spaces (same length, same offsets)."""
    return _STRING.sub(lambda m: '"' + " " * (len(m.group()) - 2) + '"' if len(m.group()) > 1 else '"', text)


def _max_depth(blank: str) -> int:
    b = np.frombuffer(blank.encode("utf-8", "replace"), dtype=np.uint8)
    depth, best, chunk = 0, 0, 1 << 22
    for i in range(0, b.size, chunk):
        part = b[i:i + chunk]
        step = ((part == 0x5B) | (part == 0x7B)).astype(np.int32) - ((part == 0x5D) | (part == 0x7D))
        if step.any():
            run = np.cumsum(step) + depth
            best = max(best, int(run.max()))
            depth = int(run[-1])
    return best


def _line_col(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    return f"line {line} column {offset - (text.rfind(chr(10), 0, offset) + 1) + 1}"


class _Constant(Exception):
    pass


def _reject_constant(name):
    raise _Constant(name)


def _load_json(path: Path, name: str):
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"{name}: cannot read: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{name}: not UTF-8 text (byte {e.start})") from None
    blank = _blank_strings(text)
    depth = _max_depth(blank)
    if depth > MAX_DEPTH:
        raise InputError(f"{name}: JSON nested {depth} levels deep, more than the {MAX_DEPTH} read")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except _Constant as e:
        m = _CONSTANT.search(blank)
        at = f" at {_line_col(text, m.start())}" if m else ""
        raise InputError(f"{name}: non-finite number {e.args[0]}{at} (JSON has no NaN or Infinity)") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{name}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise InputError(f"{name}: JSON nested too deeply") from None
    except ValueError as e:                                # e.g. an integer of more than 4300 digits
        raise InputError(f"{name}: not readable JSON: {e}") from None


def _short(v) -> str:
    s = json.dumps(v) if isinstance(v, (str, int, float, bool, type(None))) else type(v).__name__
    return s if len(s) <= 40 else s[:37] + "..."


def _num(v, where: str) -> float:
    if type(v) not in (int, float):
        raise InputError(f"{where}: expected a number, got {_short(v)}")
    try:
        f = float(v)
    except OverflowError:
        raise InputError(f"{where}: number too large") from None
    if not math.isfinite(f):
        raise InputError(f"{where}: non-finite number {v!r}")
    return f


def _numbers(v, where: str, what: str) -> np.ndarray:
    """A JSON list of finite numbers as float64."""
    if not isinstance(v, list):
        raise InputError(f"{where}: {what} must be a list of numbers, got {_short(v)}")
    for k, x in enumerate(v):
        if type(x) not in (int, float):
            raise InputError(f"{where}: {what}[{k}] is {_short(x)}, not a number")
    try:
        a = np.array(v, dtype=np.float64)
    except OverflowError:
        raise InputError(f"{where}: {what} has a number too large for a float") from None
    if a.size and not np.isfinite(a).all():
        k = int(np.flatnonzero(~np.isfinite(a))[0])
        raise InputError(f"{where}: {what}[{k}] is not finite ({v[k]!r})")
    return a.reshape(len(v))


def _frame_id(v, where: str, what: str = "frame id") -> int:
    if type(v) is float and v.is_integer():
        v = int(v)
    if type(v) is not int:
        raise InputError(f"{where}: {what} must be an integer, got {_short(v)}")
    if v < 0:
        raise InputError(f"{where}: negative {what} {v}")
    if v > MAX_FRAME:
        raise InputError(f"{where}: {what} {v} is beyond the {MAX_FRAME} frames read")
    return v


def _track_id(v, where: str, what: str = "track id"):
    if type(v) is float and v.is_integer():
        v = int(v)
    if type(v) is int or (type(v) is str and v):
        return v
    raise InputError(f"{where}: {what} must be an integer or a non-empty string, got {_short(v)}")


def _field(d: dict, key: str, where: str):
    if key not in d:
        raise InputError(f"{where}: no {key!r}")
    return d[key]


def _obj(v, where: str, what: str) -> dict:
    if not isinstance(v, dict):
        raise InputError(f"{where}: {what} must be a JSON object, got {_short(v)}")
    return v


def _list(v, where: str, what: str) -> list:
    if not isinstance(v, list):
        raise InputError(f"{where}: {what} must be a list, got {_short(v)}")
    return v


# ----------------------------------------------------------------------------------------------------------
# building tracks


class _Person:
    __slots__ = ("frame", "tid", "kp", "sc", "where", "pos")

    def __init__(self, frame, tid, kp, sc, where, pos):
        self.frame, self.tid, self.kp, self.sc, self.where, self.pos = frame, tid, kp, sc, where, pos


def _resolve_layout(name: str, J: int | None, layout, fmt: str) -> str:
    if layout is not None:
        lay = _layouts.get(layout)
        if J is not None and lay.J != J:
            raise InputError(f"{name}: people have {J} keypoints, layout {lay.name} has {lay.J}")
        return lay.name
    if J is None:
        return _DEFAULT_LAYOUT.get(fmt, "coco17")
    try:
        return _layouts.from_joint_count(J).name
    except InputError as e:
        raise InputError(f"{name}: {e}") from None


def _build(name: str, people: list, fmt: str, layout, n_frames, image_size=None) -> Detections:
    J, first = None, None
    for p in people:
        if J is None:
            J, first = p.kp.shape[0], p.pos
        elif p.kp.shape[0] != J:
            raise InputError(f"{p.where}: {p.kp.shape[0]} keypoints, but {first} has {J} "
                             "(one file holds one keypoint layout)")
    lay = _resolve_layout(name, J, layout, fmt)
    for p in people:
        check_values(p.kp, 1, f"{p.where}: keypoints")  # msf computes in float32, as refine and recover check
        gone = (p.kp[:, 0] == 0) & (p.kp[:, 1] == 0)
        p.kp[gone] = np.nan
    groups: dict = {}
    seen: dict = {}
    untracked = []
    for p in people:
        if p.tid is None:
            untracked.append(p)
            continue
        key = (p.frame, _track_key(p.tid))
        if key in seen:
            raise InputError(f"{p.where}: track {p.tid!r} appears twice in frame {p.frame} (also at {seen[key]})")
        seen[key] = p.pos
        groups.setdefault(_track_key(p.tid), (p.tid, []))[1].append(p)
    tracks = [_track(tid, ps) for tid, ps in groups.values()]
    if untracked:
        start = max((t for t, _ in groups.values() if isinstance(t, int)), default=-1) + 1
        by_frame: dict = {}
        for p in untracked:
            by_frame.setdefault(p.frame, []).append(p)
        for k, members in enumerate(_associate(sorted(by_frame.items()), GATE, None)):
            tracks.append(_track(start + k, members))
    tracks.sort(key=lambda t: _track_key(t.track_id))
    return Detections(lay, tracks, n_frames=n_frames, image_size=image_size, format=fmt)


def _track(tid, people) -> PersonTrack:
    people = sorted(people, key=lambda p: p.frame)
    J = people[0].kp.shape[0]
    return PersonTrack(tid, np.array([p.frame for p in people], dtype=np.int64),
                       np.stack([p.kp for p in people]).reshape(len(people), J, 2),
                       np.stack([p.sc for p in people]).reshape(len(people), J))


def _every_frame(frames: list) -> int | None:
    """len(frames) when the frames are exactly 0..N-1 in some order, else None."""
    return len(frames) if sorted(frames) == list(range(len(frames))) else None


# ----------------------------------------------------------------------------------------------------------
# association


BOX_SCORE = 0.3             # joints scored below this do not shape a person's box in association


def _box(kp: np.ndarray, sc: np.ndarray):
    ok = np.isfinite(kp).all(axis=1)
    if not ok.any():
        return None
    sure = ok & ~(sc < BOX_SCORE)                          # NaN scores count as sure
    if sure.sum() >= 2:
        ok = sure
    pts = kp[ok]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    return (lo + hi) / 2, float((hi - lo).max())


def _associate(frames_people, gate: float, max_gap) -> list:
    """[(frame, [person with .kp]), ...] sorted by frame -> list of tracks, each a list of persons."""
    busy = [f for f, ps in frames_people if ps]
    if max_gap is None:
        steps = np.diff(busy)
        max_gap = 5 * max(int(np.median(steps)) if steps.size else 1, 1)
    tracks: list = []   # each: [members, observations (frame, centre, size)]
    for f, ps in frames_people:
        boxes = [_box(p.kp, p.sc) for p in ps]
        cand = []
        for ti, (_, obs) in enumerate(tracks):
            f1, c1, s1 = obs[-1]
            if f - f1 > max_gap:
                continue
            if len(obs) >= 2:
                f0, c0, _ = obs[-2]
                pred = c1 + (c1 - c0) * ((f - f1) / (f1 - f0))
            else:
                pred = c1
            for pi, b in enumerate(boxes):
                if b is None:
                    continue
                c, s = b
                d = float(np.hypot(*(c - pred))) / max(s1, s, 1e-9)
                if d <= gate:
                    cand.append((d, ti, pi))
        cand.sort()
        taken_t, taken_p = set(), set()
        for d, ti, pi in cand:
            if ti in taken_t or pi in taken_p:
                continue
            taken_t.add(ti)
            taken_p.add(pi)
            tracks[ti][0].append(ps[pi])
            tracks[ti][1].append((f, *boxes[pi]))
        for pi, b in enumerate(boxes):
            if b is not None and pi not in taken_p:
                tracks.append([[ps[pi]], [(f, *b)]])
    return [members for members, _ in tracks]


def associate(people_per_frame, *, gate: float = GATE, max_gap: int | None = None) -> list:
    """Link the people of each frame into tracks by nearest bounding box.

    people_per_frame: [(frame, [(keypoints (J, 2), scores (J,) or None), ...]), ...], one entry per
    frame (any order, each frame once). Returns PersonTracks with ids 0, 1, ... in order of first
    appearance.

    The rule: a person's box is the bounding box of its detected (finite) joints scored at least 0.3
    (or without a score; all detected joints when fewer than two are), its size the longer side. Frames
    are visited in order. A track's expected centre in frame f is its last centre moved on at the
    velocity between its last two detections (its last centre if it has one). For every track
    seen within the last ``max_gap`` frames (default: 5 times the median spacing of the frames that
    have people) and every person of frame f, the cost is the distance between expected and actual
    centre divided by the larger of the two box sizes; pairs with cost above ``gate`` (default 0.5) are
    never linked. Pairs are then linked greedily, cheapest first (ties: earlier track, then earlier
    person), each track and each person at most once, so two people of one frame never share a track.
    A person linked to no track starts a new one. A person with no detected joint has no box and is
    dropped. When in doubt the rule splits (a new track) rather than merges.
    """
    if not (is_integer(gate) or isinstance(gate, (float, np.floating))) or not gate >= 0:
        raise InputError(f"gate must be a non-negative number, got {gate!r}")
    if max_gap is not None and (isinstance(max_gap, bool) or not isinstance(max_gap, (int, np.integer)) or max_gap < 1):
        raise InputError(f"max_gap must be a positive int or None, got {max_gap!r}")
    try:
        entries = list(people_per_frame)
    except TypeError:
        raise InputError("people_per_frame must be a list of (frame, people)") from None
    by_frame: dict = {}
    J = None
    for i, entry in enumerate(entries):
        try:
            f, people = entry
        except (TypeError, ValueError):
            raise InputError(f"people_per_frame[{i}] must be a (frame, people) pair") from None
        f = _frame_id(int(f) if isinstance(f, np.integer) else f, f"people_per_frame[{i}]", "frame")
        if f in by_frame:
            raise InputError(f"people_per_frame[{i}]: frame {f} appears twice")
        persons = []
        if isinstance(people, (str, bytes)) or not isinstance(people, Iterable):
            raise InputError(f"people_per_frame[{i}] (frame {f}): people must be a list of (keypoints, scores) "
                             f"pairs, got {type(people).__name__}")
        for k, item in enumerate(people):
            where = f"people_per_frame[{i}] (frame {f}): person {k}"
            try:
                kp, sc = item
            except (TypeError, ValueError):
                raise InputError(f"{where}: must be a (keypoints, scores) pair") from None
            kp = _float_array(kp, f"{where}: keypoints")
            if kp.ndim != 2 or kp.shape[1] != 2 or (J is not None and kp.shape[0] != J):
                raise InputError(f"{where}: keypoints must have shape ({'J' if J is None else J}, 2), got {kp.shape}")
            check_values(kp, 1, f"{where}: keypoints")
            J = kp.shape[0]
            sc = np.full(J, np.nan) if sc is None else _float_array(sc, f"{where}: scores")
            if sc.shape != (J,):
                raise InputError(f"{where}: scores must have shape ({J},), got {sc.shape}")
            persons.append(_Person(f, None, kp.copy(), sc.copy(), where, where))
        by_frame[f] = persons
    tracks = _associate(sorted(by_frame.items()), float(gate), None if max_gap is None else int(max_gap))
    return [_track(k, members) for k, members in enumerate(tracks)]


# ----------------------------------------------------------------------------------------------------------
# readers

_DIGITS = re.compile(r"(\d+)(?!.*\d)")


def _frame_from_name(image_id: str, where: str) -> int:
    base = image_id.replace("\\", "/").rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    m = _DIGITS.search(stem)
    if m is None:
        raise InputError(f"{where}: image_id {_short(image_id)} has no frame number (no digits in the file name)")
    return _frame_id(int(m.group(1)), where, "frame number in image_id")


def _read_coco(obj, name: str, layout) -> Detections:
    entries = _list(obj, name, "a COCO/AlphaPose results file")
    people = []
    kind = None          # "int" | "name", from the first entry
    names: dict = {}     # frame -> (image_id, position) for file-name ids
    idx_seen: dict = {}
    idx_usable = True
    J = None
    for i, e in enumerate(entries):
        pos = f"entry {i}"
        where = f"{name}: {pos}"
        e = _obj(e, where, "each entry")
        iid = _field(e, "image_id", where)
        this = "name" if isinstance(iid, str) else "int"
        if kind is None:
            kind = this
        elif this != kind:
            raise InputError(f"{where}: image_id {_short(iid)} is a {'file name' if this == 'name' else 'number'} "
                             f"but entry 0 has a {'file name' if kind == 'name' else 'number'}: cannot order frames "
                             "of both kinds")
        if this == "int":
            frame = _frame_id(iid, where, "image_id")
        else:
            frame = _frame_from_name(iid, where)
            other = names.setdefault(frame, (iid, pos))
            if other[0] != iid:
                raise InputError(f"{where}: image_id {_short(iid)} and {_short(other[0])} ({other[1]}) both give "
                                 f"frame {frame}: cannot tell the frames apart")
        flat = _numbers(_field(e, "keypoints", where), where, "keypoints")
        if flat.size == 0 or flat.size % 3 or (J is not None and flat.size != 3 * J):
            expect = "3*J (x, y, score per joint)" if J is None else f"{3 * J} (3*J, J = {J} as in entry 0)"
            raise InputError(f"{where}: keypoints has {flat.size} numbers, expected {expect}")
        J = flat.size // 3
        if "score" in e:
            _num(e["score"], f"{where}: score")
        tid = None
        if "track_id" in e:
            tid = _track_id(e["track_id"], where, "track_id")
        elif "idx" in e and idx_usable:
            v = e["idx"]
            if isinstance(v, list) and len(v) == 1:
                v = v[0]
            if type(v) is float and v.is_integer():
                v = int(v)
            if type(v) is int or (type(v) is str and v):
                if idx_seen.setdefault((frame, _track_key(v)), i) != i:
                    idx_usable = False
                tid = ("idx", v)
            else:
                idx_usable = False
        kp = flat.reshape(J, 3)
        people.append(_Person(frame, tid, kp[:, :2].copy(), kp[:, 2].copy(), where, pos))
    for p in people:
        if isinstance(p.tid, tuple):
            p.tid = p.tid[1] if idx_usable else None
    return _build(name, people, "coco", layout, None)


def _openpose_people(obj, fname: str, frame: int) -> list:
    obj = _obj(obj, fname, "an OpenPose file")
    plist = _list(_field(obj, "people", fname), fname, "people")
    out = []
    for k, person in enumerate(plist):
        pos = f"people[{k}]"
        where = f"{fname}: {pos}"
        person = _obj(person, where, "each person")
        key = "pose_keypoints" if "pose_keypoints" in person and "pose_keypoints_2d" not in person \
            else "pose_keypoints_2d"
        flat = _numbers(_field(person, key, where), where, key)
        if flat.size == 0 or flat.size % 3:
            raise InputError(f"{where}: {key} has {flat.size} numbers, expected 3*J (x, y, c per joint)"
                             + (" (OpenPose ran without the body model?)" if flat.size == 0 else ""))
        tid = None
        if "person_id" in person:
            v = person["person_id"]
            if isinstance(v, list) and len(v) == 1:
                v = v[0]
            if not (type(v) is int and v == -1):
                tid = _track_id(v, where, "person_id")
        kp = flat.reshape(-1, 3)
        out.append(_Person(frame, tid, kp[:, :2].copy(), kp[:, 2].copy(), where, f"{Path(fname).name}: {pos}"))
    return out


_OPENPOSE_NAME = re.compile(r"(\d+)_keypoints\.json$")


_FOLDER = object()


def _read_openpose(path: Path, name: str, obj, layout) -> Detections:
    if obj is not _FOLDER:                                 # a single file: one frame
        return _build(name, _openpose_people(obj, name, 0), "openpose", layout, 1)
    files = sorted(p for p in path.iterdir() if p.name.endswith("_keypoints.json") and p.is_file())
    if not files:
        raise InputError(f"{name}: no OpenPose *_keypoints.json files in the folder")
    people, frames = [], {}
    for f in files:
        fname = str(f)
        m = _OPENPOSE_NAME.search(f.name)
        if m is None:
            raise InputError(f"{fname}: no frame number before _keypoints.json")
        frame = _frame_id(int(m.group(1)), fname, "frame number")
        if frame in frames:
            raise InputError(f"{fname}: frame {frame} again (also {frames[frame]}): one folder holds one video")
        frames[frame] = f.name
        people += _openpose_people(_load_json(f, fname), fname, frame)
    return _build(name, people, "openpose", layout, _every_frame(list(frames)))


def _mmpose_instances(instances, name: str, pos0: str, frame: int) -> list:
    """pos0: the frame's position ("instance_info[3] (frame_id 5)"), or "" for an image's bare list."""
    out = []
    for k, inst in enumerate(_list(instances, f"{name}: {pos0}" if pos0 else name, "instances")):
        pos = f"{pos0}: instances[{k}]" if pos0 else f"instances[{k}]"
        where = f"{name}: {pos}"
        inst = _obj(inst, where, "each instance")
        rows = _list(_field(inst, "keypoints", where), where, "keypoints")
        if not rows:
            raise InputError(f"{where}: keypoints is empty")
        kp = np.empty((len(rows), 2))
        for j, row in enumerate(rows):
            if isinstance(row, list) and len(row) == 3 and all(type(x) in (int, float) for x in row):
                raise InputError(f"{where}: keypoints[{j}] has 3 numbers: 3D keypoints are not 2D detections")
            if not isinstance(row, list) or len(row) != 2:
                raise InputError(f"{where}: keypoints[{j}] must be [x, y], got {_short(row)}")
            kp[j] = _numbers(row, where, f"keypoints[{j}]")
        if "keypoint_scores" in inst:
            sc = _numbers(inst["keypoint_scores"], where, "keypoint_scores")
            if sc.size != kp.shape[0]:
                raise InputError(f"{where}: keypoint_scores has {sc.size} values, expected {kp.shape[0]} "
                                 "(one per keypoint)")
        else:
            sc = np.full(kp.shape[0], np.nan)
        if "bbox_score" in inst:
            _num(inst["bbox_score"], f"{where}: bbox_score")
        tid = _track_id(inst["track_id"], where, "track_id") if "track_id" in inst else None
        out.append(_Person(frame, tid, kp, sc, where, pos))
    return out


def _is_frame_entry(e) -> bool:
    return isinstance(e, dict) and "instances" in e


def _read_mmpose(obj, name: str, layout) -> Detections:
    label = "entry"
    if isinstance(obj, dict):
        if "instance_info" not in obj:
            raise InputError(f"{name}: an MMPose prediction object needs 'instance_info'")
        obj = _list(obj["instance_info"], name, "instance_info")
        label = "instance_info"
    entries = _list(obj, name, "an MMPose prediction file")
    if entries and not _is_frame_entry(entries[0]):       # an image's bare instance list: one frame
        return _build(name, _mmpose_instances(entries, name, "instance_info" if label == "instance_info" else "", 0),
                      "mmpose", layout, 1)
    people, frames = [], {}
    for i, e in enumerate(entries):
        where = f"{name}: {label}[{i}]"
        e = _obj(e, where, "each frame")
        if not _is_frame_entry(e):
            raise InputError(f"{where}: no 'instances' (a frame is {{\"frame_id\", \"instances\"}})")
        frame = _frame_id(_field(e, "frame_id", where), where, "frame_id")
        if frame in frames:
            raise InputError(f"{where}: frame_id {frame} again (also {label}[{frames[frame]}])")
        frames[frame] = i
        people += _mmpose_instances(e["instances"], name, f"{label}[{i}] (frame_id {frame})", frame)
    return _build(name, people, "mmpose", layout, _every_frame(list(frames)) if frames else None)


def _ultralytics_frame(dets, name: str, pos0: str, frame: int) -> list:
    out = []
    for k, det in enumerate(_list(dets, f"{name}: {pos0}", "a frame's results")):
        pos = f"{pos0}: detection {k}"
        where = f"{name}: {pos}"
        det = _obj(det, where, "each detection")
        if "keypoints" not in det:
            raise InputError(f"{where}: no 'keypoints' (the output of a detection model, not a pose model?)")
        kd = _obj(det["keypoints"], where, "keypoints")
        x = _numbers(_field(kd, "x", f"{where}: keypoints"), where, "keypoints.x")
        y = _numbers(_field(kd, "y", f"{where}: keypoints"), where, "keypoints.y")
        if x.size == 0 or x.size != y.size:
            raise InputError(f"{where}: keypoints.x has {x.size} values and keypoints.y {y.size}: expected J each")
        if "visible" in kd:
            sc = _numbers(kd["visible"], where, "keypoints.visible")
            if sc.size != x.size:
                raise InputError(f"{where}: keypoints.visible has {sc.size} values, expected {x.size}")
        else:
            sc = np.full(x.size, np.nan)
        if "confidence" in det:
            _num(det["confidence"], f"{where}: confidence")
        tid = _track_id(det["track_id"], where, "track_id") if "track_id" in det else None
        out.append(_Person(frame, tid, np.stack([x, y], axis=1), sc, where, pos))
    return out


def _read_ultralytics(obj, name: str, layout) -> Detections:
    entries = _list(obj, name, "an ultralytics results file")
    if not entries:
        return _build(name, [], "ultralytics", layout, None)
    people = []
    if isinstance(entries[0], list):                       # one list per frame, frame = position
        for i, dets in enumerate(entries):
            if not isinstance(dets, list):
                raise InputError(f"{name}: frame {i}: expected a list of detections like the other frames, "
                                 f"got {_short(dets)}")
            people += _ultralytics_frame(dets, name, f"frame {i}", i)
        return _build(name, people, "ultralytics", layout, len(entries))
    if isinstance(entries[0], dict) and "results" in entries[0]:
        frames = {}
        for i, e in enumerate(entries):
            where = f"{name}: entry {i}"
            e = _obj(e, where, "each frame")
            frame = _frame_id(_field(e, "frame", where), where, "frame")
            if frame in frames:
                raise InputError(f"{where}: frame {frame} again (also entry {frames[frame]})")
            frames[frame] = i
            people += _ultralytics_frame(_field(e, "results", where), name, f"entry {i} (frame {frame})", frame)
        return _build(name, people, "ultralytics", layout, _every_frame(list(frames)))
    return _build(name, _ultralytics_frame(entries, name, "frame 0", 0), "ultralytics", layout, 1)


def _classify(obj) -> str | None:
    if isinstance(obj, dict):
        if "people" in obj:
            return "openpose"
        if "instance_info" in obj:
            return "mmpose"
        return None
    if not isinstance(obj, list):
        return None
    first = next((e for e in obj if not (isinstance(e, list) and not e)), None)
    if first is None:
        return None
    if isinstance(first, list):
        first = first[0]
        return "ultralytics" if isinstance(first, dict) and isinstance(first.get("keypoints"), dict) else None
    if not isinstance(first, dict):
        return None
    if "image_id" in first and "keypoints" in first:
        return "coco"
    if "instances" in first and "frame_id" in first:
        return "mmpose"
    if "results" in first and "frame" in first:
        return "ultralytics"
    kp = first.get("keypoints")
    if isinstance(kp, dict):
        return "ultralytics"
    if isinstance(kp, list) and kp and isinstance(kp[0], list):
        return "mmpose"
    return None


def sniff(path) -> str | None:
    """The format of a detector file or folder ("coco", "openpose", "mmpose", "ultralytics"), or None when
    it is not one (or cannot be told, e.g. an empty list)."""
    p = Path(path)
    try:
        if p.is_dir():
            return "openpose" if any(c.name.endswith("_keypoints.json") and c.is_file() for c in p.iterdir()) else None
        if not p.is_file():
            return None
        return _classify(_load_json(p, str(p)))
    except (InputError, OSError):
        return None


def _check_format(format) -> None:
    if format is not None and format not in FORMATS:
        raise InputError(f"unknown detector format {format!r}; known: {', '.join(FORMATS)}")


def read(path, format: str | None = None, layout: str | None = None) -> Detections:
    """Read a detector file (or an OpenPose folder) into Detections.

    format: one of FORMATS, sniffed when None. layout: a msf.layouts name, else from the joint count
    (17 coco17, 25 body25, 26 halpe26, 33 blazepose33); a file without people gets `layout` or the
    format's usual one (body25 for openpose, coco17 otherwise)."""
    _check_format(format)
    p = Path(path)
    name = str(path)
    if p.is_dir():
        if format not in (None, "openpose"):
            raise InputError(f"{name} is a folder: only OpenPose output (openpose) is a folder of files")
        return _read_openpose(p, name, _FOLDER, layout)
    if not p.is_file():
        raise InputError(f"{name}: no such file or folder")
    obj = _load_json(p, name)
    fmt = format or _classify(obj)
    if fmt is None:
        raise InputError(f"{name}: cannot tell which detector wrote this file; pass format= one of "
                         f"{', '.join(FORMATS)}")
    if fmt == "coco":
        return _read_coco(obj, name, layout)
    if fmt == "openpose":
        return _read_openpose(p, name, obj, layout)
    if fmt == "mmpose":
        return _read_mmpose(obj, name, layout)
    return _read_ultralytics(obj, name, layout)


# ----------------------------------------------------------------------------------------------------------
# in-memory ultralytics results


def _to_numpy(x, what: str) -> np.ndarray:
    if hasattr(x, "cpu"):
        x = x.cpu()
    if hasattr(x, "numpy"):
        x = x.numpy()
    return _float_array(x, what)


def from_ultralytics(results: Iterable[Any], layout: str | None = None) -> Detections:
    """Detections from ultralytics ``Results`` of a pose model, one per frame in order (e.g. the list
    ``model.track(video)`` returns, or its ``stream=True`` generator). Reads ``r.keypoints.xy`` (N, J, 2),
    ``r.keypoints.conf`` (N, J) or None, ``r.boxes.id`` (N,) or None (tracking), ``r.orig_shape``
    (height, width); torch tensors or numpy arrays. Joints at (0, 0), where ultralytics puts the ones it
    scores below 0.5, are NaN with their score kept. Without ids the people are associated."""
    if not isinstance(results, Iterable):
        raise InputError(f"from_ultralytics needs the Results of each frame (a list or generator), got "
                         f"{type(results).__name__}")
    people, sizes = [], set()
    n = 0
    for i, r in enumerate(results):
        n = i + 1
        where = f"ultralytics results: frame {i}"
        kps = getattr(r, "keypoints", None)
        boxes = getattr(r, "boxes", None)
        if kps is None:
            if boxes is not None and len(boxes):
                raise InputError(f"{where}: no keypoints (the results of a detection model, not a pose model?)")
            continue
        xy = _to_numpy(kps.xy, f"{where}: keypoints.xy")
        if xy.size == 0:
            continue
        if xy.ndim != 3 or xy.shape[2] != 2:
            raise InputError(f"{where}: keypoints.xy must have shape (N, J, 2), got {xy.shape}")
        N, J = xy.shape[:2]
        conf = getattr(kps, "conf", None)
        if conf is None:
            sc = np.full((N, J), np.nan)
        else:
            sc = _to_numpy(conf, f"{where}: keypoints.conf")
            if sc.size != N * J:
                raise InputError(f"{where}: keypoints.conf has shape {sc.shape}, expected ({N}, {J})")
            sc = sc.reshape(N, J)
        ids = None
        if boxes is not None and getattr(boxes, "id", None) is not None:
            ids = _to_numpy(boxes.id, f"{where}: boxes.id").reshape(-1)
            if ids.size != N:
                raise InputError(f"{where}: boxes.id has {ids.size} ids for {N} people")
        if not (np.isfinite(xy).all() and np.isfinite(sc[~np.isnan(sc)]).all()):
            raise InputError(f"{where}: keypoints must be finite")
        shape = getattr(r, "orig_shape", None)
        if shape is not None:
            try:
                h, w = (float(v) for v in shape)
                sizes.add((w, h))
            except (TypeError, ValueError, OverflowError):
                raise InputError(f"{where}: orig_shape must be (height, width), got {shape!r}") from None
        for k in range(N):
            tid = None
            if ids is not None:
                if not (np.isfinite(ids[k]) and ids[k] == round(ids[k])):
                    raise InputError(f"{where}: boxes.id[{k}] is {ids[k]}, not an integer")
                tid = int(ids[k])
            people.append(_Person(i, tid, xy[k].copy(), sc[k].copy(), f"{where}: person {k}", f"frame {i}: person {k}"))
    return _build("ultralytics results", people, "ultralytics", layout, n,
                  sizes.pop() if len(sizes) == 1 else None)


# ----------------------------------------------------------------------------------------------------------
# writers


def _atomic_write(path: Path, text: str) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:  # name the output's folder (missing, not writable), not the temporary file in it
        raise OSError(e.errno, e.strerror, str(folder)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _dumps(obj) -> str:
    return json.dumps(obj, allow_nan=False) + "\n"


def _xy(kp: np.ndarray) -> list:
    """(J, 2) -> [[x, y], ...] python floats, NaN -> 0."""
    return np.where(np.isnan(kp), 0.0, kp).tolist()


def _zero_nan(sc: np.ndarray) -> list:
    return np.where(np.isnan(sc), 0.0, sc).tolist()


def _person_score(kp: np.ndarray, sc: np.ndarray) -> float:
    ok = np.isfinite(kp).all(axis=1) & np.isfinite(sc)
    return float(sc[ok].mean()) if ok.any() else 0.0


def _bbox(kp: np.ndarray) -> list:
    ok = np.isfinite(kp).all(axis=1)
    if not ok.any():
        return [0.0, 0.0, 0.0, 0.0]
    lo, hi = kp[ok].min(axis=0), kp[ok].max(axis=0)
    return [float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])]


def _per_frame(d: Detections) -> list:
    """[[(track_id, keypoints (J, 2), scores (J,)), ...] for every frame 0..frame_count-1]."""
    frames: list = [[] for _ in range(d.frame_count())]
    for t in d.tracks:
        for m, f in enumerate(t.frames):
            frames[f].append((t.track_id, t.keypoints[m], t.scores[m]))
    return frames


def _write_coco(d: Detections) -> str:
    out = []
    for f, people in enumerate(_per_frame(d)):
        for tid, kp, sc in people:
            flat = np.concatenate([np.where(np.isnan(kp), 0.0, kp), np.where(np.isnan(sc), 0.0, sc)[:, None]], axis=1)
            out.append({"image_id": f, "category_id": 1, "keypoints": flat.reshape(-1).tolist(),
                        "score": _person_score(kp, sc), "track_id": tid})
    return "[" + ",\n".join(json.dumps(e, allow_nan=False) for e in out) + "]\n"


def _openpose_frame(people) -> dict:
    empty = {k: [] for k in ("face_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d",
                             "pose_keypoints_3d", "face_keypoints_3d", "hand_left_keypoints_3d",
                             "hand_right_keypoints_3d")}
    out = []
    for tid, kp, sc in people:
        flat = np.concatenate([np.where(np.isnan(kp), 0.0, kp), np.where(np.isnan(sc), 0.0, sc)[:, None]], axis=1)
        out.append({"person_id": [tid], "pose_keypoints_2d": flat.reshape(-1).tolist(), **empty})
    return {"version": 1.3, "people": out}


def _write_openpose(path: Path, d: Detections) -> None:
    frames = _per_frame(d)
    if path.suffix == ".json" and not path.is_dir():
        if len(frames) > 1:
            raise InputError(f"{path}: one OpenPose file holds one frame, these detections have {len(frames)}; "
                             "write to a folder")
        _atomic_write(path, _dumps(_openpose_frame(frames[0] if frames else [])))
        return
    path.mkdir(parents=True, exist_ok=True)
    prefix = path.resolve().name or "frame"
    names = [f"{prefix}_{f:012d}_keypoints.json" for f in range(len(frames))]
    ours = set(names)
    stale = sorted(c.name for c in path.iterdir() if c.name.endswith("_keypoints.json") and c.name not in ours)
    if stale:
        raise InputError(f"{path}: already holds other OpenPose files ({stale[0]}"
                         f"{f' and {len(stale) - 1} more' if len(stale) > 1 else ''}); they would mix with these "
                         "frames: write to an empty folder")
    for fname, people in zip(names, frames):
        _atomic_write(path / fname, _dumps(_openpose_frame(people)))


def _write_mmpose(d: Detections) -> str:
    out = []
    for f, people in enumerate(_per_frame(d)):
        insts = []
        for tid, kp, sc in people:
            inst = {"keypoints": _xy(kp)}
            if not np.isnan(sc).all():
                inst["keypoint_scores"] = _zero_nan(sc)
            inst["bbox"] = [_bbox(kp)]
            inst["bbox_score"] = _person_score(kp, sc)
            inst["track_id"] = tid
            insts.append(inst)
        out.append({"frame_id": f, "instances": insts})
    return "[" + ",\n".join(json.dumps(e, allow_nan=False) for e in out) + "]\n"


def _write_ultralytics(d: Detections) -> str:
    out = []
    for people in _per_frame(d):
        dets = []
        for tid, kp, sc in people:
            x1, y1, x2, y2 = _bbox(kp)
            xy = np.where(np.isnan(kp), 0.0, kp)
            kd = {"x": xy[:, 0].tolist(), "y": xy[:, 1].tolist()}
            if not np.isnan(sc).all():
                kd["visible"] = _zero_nan(sc)
            dets.append({"name": "person", "class": 0, "confidence": _person_score(kp, sc),
                         "box": {"x1": x1, "y1": y1, "x2": x2, "y2": y2}, "track_id": tid, "keypoints": kd})
        out.append(dets)
    return "[" + ",\n".join(json.dumps(e, allow_nan=False) for e in out) + "]\n"


def write(path, detections: Detections, format: str | None = None) -> None:
    """Write detections in a detector's format (default: detections.format) so the user's tools read
    them: every frame 0..frame_count()-1 where the format lists frames (openpose, mmpose, ultralytics),
    one entry per detection (coco). Atomic per file."""
    if not isinstance(detections, Detections):
        raise InputError(f"write() needs a Detections, got {type(detections).__name__}")
    _check_format(format)
    fmt = format or detections.format
    p = Path(path)
    if fmt == "openpose":
        _write_openpose(p, detections)
        return
    if p.is_dir():
        raise InputError(f"{path} is a folder; {fmt} results are one file")
    text = {"coco": _write_coco, "mmpose": _write_mmpose, "ultralytics": _write_ultralytics}[fmt](detections)
    _atomic_write(p, text)
