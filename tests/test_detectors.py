"""msf.detectors: detector file readers/writers on fixtures in each tool's real format.

The fixtures are written here, by plain JSON code independent of msf's writers, from the validation
motion capture (COCO-17 / BODY_25 built from the 17 joints and the extra points as the data README says)
seen by a pinhole camera in a 1920x1080 image, with detector-like scores, missing joints, several
people, empty frames and the tools' own conventions (AlphaPose "N.jpg" image ids, OpenPose 0, 0, 0 for
an undetected joint and one file per frame, the MMPose demo's frame ids from 1, ultralytics' positions
zeroed below confidence 0.5 and rounding to 5 decimals).
"""
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from helpers import MOTION_VAL
from msf import InputError, detectors as det, layouts
from msf.detectors import Detections, PersonTrack

W, H, FOCAL = 1920, 1080, 1100.0


# ----------------------------------------------------------------------------------------------------------
# motion capture -> detector-like 2D people


@pytest.fixture(scope="module")
def mocap():
    if not MOTION_VAL.exists():
        pytest.skip(f"validation motion capture {MOTION_VAL} is not present")
    with np.load(MOTION_VAL) as d:
        names17 = [str(n) for n in d["joint_names"]]
        extra_names = [str(n) for n in d["extra_joint_names"]]
        seqs = [(d[f"seq_{i:04d}"].astype(np.float64), d[f"extra_{i:04d}"].astype(np.float64)) for i in range(4)]
    return names17, extra_names, seqs


def _points(mocap, i: int, layout: str) -> np.ndarray:
    """(T, J, 3) mm of sequence i in `layout`, joints picked by name (nose = nose tip, neck = mid-shoulders,
    mid_hip = mid-hips), root-centred horizontally."""
    names17, extra_names, seqs = mocap
    seq, extra = seqs[i]
    src = {n: seq[:, k] for k, n in enumerate(names17)}
    src.update({n: extra[:, k] for k, n in enumerate(extra_names)})
    src["nose"] = src["nose_tip"]
    src["neck"] = (src["left_shoulder"] + src["right_shoulder"]) / 2
    src["mid_hip"] = (src["left_hip"] + src["right_hip"]) / 2
    pts = np.stack([src[j] for j in layouts.get(layout).joints], axis=1)
    root = seq[:, :1, :].copy()
    root[..., 1] = 0.0                                   # keep height, remove walking across the floor
    return pts - root


def _project(pts: np.ndarray, x_path, depth: float) -> np.ndarray:
    """Pinhole camera 1.0 m high looking along +Z at people `depth` mm away, moved along x_path (T,) mm."""
    X = pts[..., 0] + np.asarray(x_path, dtype=np.float64)[:, None]
    Y = pts[..., 1] - 1000.0
    Z = pts[..., 2] + depth
    return np.stack([FOCAL * X / Z + W / 2, -FOCAL * Y / Z + H / 2], axis=-1)


def _person(mocap, i, layout, T, x_path=0.0, depth=4500.0, seed=0, missing=0.05):
    """(T, J, 2) pixels with NaN for missing joints, (T, J) scores in [0.02, 1) (some low)."""
    pts = _points(mocap, i, layout)[:T]
    kp = _project(pts, np.broadcast_to(np.asarray(x_path, dtype=np.float64), (T,)), depth)
    rng = np.random.default_rng(seed)
    scores = np.clip(rng.beta(5, 1.5, size=kp.shape[:2]), 0.02, 0.999)
    scores[rng.random(scores.shape) < 0.1] = rng.uniform(0.02, 0.2)        # low scores
    kp[rng.random(scores.shape) < missing] = np.nan
    return kp, scores


def _r(x, nd):
    return [round(float(v), nd) for v in x]


# ----------------------------------------------------------------------------------------------------------
# writers of the tools' formats (test side, independent of msf.detectors)


def _coco_entries(people, image_id=lambda f: f"{f}.jpg", ids=None, nd=4):
    """people: {pid: (frames, kp, sc)} -> AlphaPose results entries (missing joint = 0, 0, 0)."""
    out = []
    frames = sorted({int(f) for fr, _, _ in people.values() for f in fr})
    for f in frames:
        for pid, (fr, kp, sc) in people.items():
            m = np.flatnonzero(fr == f)
            if not m.size:
                continue
            k, s = kp[m[0]], sc[m[0]]
            flat = []
            for (x, y), c in zip(k, s):
                flat += [0, 0, 0] if np.isnan(x) else [round(float(x), nd), round(float(y), nd), round(float(c), nd)]
            ok = ~np.isnan(k[:, 0])
            lo, hi = k[ok].min(0), k[ok].max(0)
            e = {"image_id": image_id(f), "category_id": 1, "keypoints": flat,
                 "score": round(float(s[ok].mean()) + 1.2, 4), "box": _r([lo[0], lo[1], *(hi - lo)], 2)}
            if ids is not None:
                e[ids] = pid
            out.append(e)
    return out


def _expected(kp, sc, nd, zero_scores_missing=True, snd=None):
    """What a reader should give for values written with nd decimals (scores snd, default nd) and missing
    joints as 0, 0, 0."""
    k = np.round(kp, nd)
    s = np.round(sc, nd if snd is None else snd)
    if zero_scores_missing:
        s = np.where(np.isnan(kp[..., 0]), 0.0, s)
    return k, s


def _write_openpose_folder(folder: Path, people, n_frames, person_ids=False, nd=3):
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(n_frames):
        plist = []
        for pid, (fr, kp, sc) in people.items():
            m = np.flatnonzero(fr == f)
            if not m.size:
                continue
            flat = []
            for (x, y), c in zip(kp[m[0]], sc[m[0]]):
                flat += [0, 0, 0] if np.isnan(x) else [round(float(x), nd), round(float(y), nd), round(float(c), 6)]
            plist.append({"person_id": [pid if person_ids else -1], "pose_keypoints_2d": flat,
                          "face_keypoints_2d": [], "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": [],
                          "pose_keypoints_3d": [], "face_keypoints_3d": [], "hand_left_keypoints_3d": [],
                          "hand_right_keypoints_3d": []})
        (folder / f"clip_{f:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": plist}))


def _mmpose_frames(people, n_frames, first=0, track_ids=False):
    """MMPose prediction frames (inferencer: first=0; demo: first=1). MMPose predicts every joint: a missing
    joint here is a low-score guess near the true place, as a heatmap model gives."""
    out = []
    for f in range(n_frames):
        insts = []
        for pid, (fr, kp, sc) in people.items():
            m = np.flatnonzero(fr == f)
            if not m.size:
                continue
            k, s = kp[m[0]], sc[m[0]]
            lo, hi = np.nanmin(k, 0), np.nanmax(k, 0)
            inst = {"keypoints": [[float(x), float(y)] for x, y in k],
                    "keypoint_scores": [float(c) for c in s],
                    "bbox": [[float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])]], "bbox_score": 0.93}
            if track_ids:
                inst["track_id"] = pid
            insts.append(inst)
        out.append({"frame_id": f + first, "instances": insts})
    return out


def _ultra_frame(people, f, track_ids=False, nd=5):
    """Results.summary() of one frame: positions of joints scored below 0.5 zeroed as ultralytics does."""
    dets = []
    for pid, (fr, kp, sc) in people.items():
        m = np.flatnonzero(fr == f)
        if not m.size:
            continue
        k, s = kp[m[0]].copy(), sc[m[0]]
        k[(s < 0.5) | np.isnan(k[:, 0])] = 0.0
        lo, hi = np.nanmin(kp[m[0]], 0), np.nanmax(kp[m[0]], 0)
        d = {"name": "person", "class": 0, "confidence": 0.91,
             "box": {"x1": round(float(lo[0]), nd), "y1": round(float(lo[1]), nd),
                     "x2": round(float(hi[0]), nd), "y2": round(float(hi[1]), nd)}}
        if track_ids:
            d["track_id"] = pid
        d["keypoints"] = {"x": _r(k[:, 0], nd), "y": _r(k[:, 1], nd), "visible": _r(s, nd)}
        dets.append(d)
    return dets


def _one(mocap, layout="coco17", T=40, seed=0, missing=0.05):
    kp, sc = _person(mocap, 0, layout, T, x_path=np.linspace(-600, 600, T), seed=seed, missing=missing)
    return {0: (np.arange(T), kp, sc)}


def _crossing(mocap, T=60, layout="coco17", gaps=True):
    """Two people walking past each other (the far one behind), each missing from some frames."""
    a_kp, a_sc = _person(mocap, 1, layout, T, x_path=np.linspace(-2200, 2200, T), depth=4200, seed=1)
    b_kp, b_sc = _person(mocap, 2, layout, T, x_path=np.linspace(2600, -2600, T), depth=6500, seed=2)
    fa, fb = np.arange(T), np.arange(T)
    if gaps:
        fa = np.delete(fa, [5, 6, 2 * T // 3])
        fb = np.delete(fb, [0, 1, T // 3, T // 2 + 3])
    return {7: (fa, a_kp[fa], a_sc[fa]), 3: (fb, b_kp[fb], b_sc[fb])}


def _guess(kp):
    """Missing joints replaced by the centre of the person's other joints, as a heatmap model guesses
    something near the body for every joint."""
    centre = np.nanmean(kp, axis=1, keepdims=True)
    return np.where(np.isnan(kp), centre, kp)


def _dump(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj, indent=1))
    return path


def _match(track: PersonTrack, people, nd, zero_missing=True, atol=0.0, snd=None):
    """The person id whose (rounded) truth the track equals at every one of its frames, else None."""
    for pid, (fr, kp, sc) in people.items():
        if not np.isin(track.frames, fr).all():
            continue
        m = np.searchsorted(fr, track.frames)
        k, s = _expected(kp[m], sc[m], nd, zero_missing, snd)
        if np.allclose(track.keypoints, k, atol=atol, rtol=0, equal_nan=True) and \
                np.allclose(track.scores, s, atol=max(atol, 1e-12), rtol=0, equal_nan=True):
            return pid
    return None


# ----------------------------------------------------------------------------------------------------------
# readers on each format


def test_coco_alphapose_fixture(mocap, tmp_path):
    people = _one(mocap)
    p = _dump(tmp_path / "alphapose-results.json", _coco_entries(people))
    assert det.sniff(p) == "coco"
    d = det.read(p)
    assert (d.format, d.layout, d.n_frames, d.image_size) == ("coco", "coco17", None, None)
    [t] = d.tracks
    assert t.track_id == 0
    fr, kp, sc = people[0]
    np.testing.assert_array_equal(t.frames, fr)
    k, s = _expected(kp, sc, 4)
    np.testing.assert_array_equal(np.isnan(t.keypoints), np.isnan(kp))
    np.testing.assert_allclose(t.keypoints, k, equal_nan=True, atol=0, rtol=0)
    np.testing.assert_allclose(t.scores, s, atol=0, rtol=0)
    assert (t.scores < 0.2).any()                                        # low scores are kept


def test_coco_integer_ids_and_halpe(mocap, tmp_path):
    people = _one(mocap, "halpe26", T=12)
    p = _dump(tmp_path / "res.json", _coco_entries(people, image_id=lambda f: 1000 + f))
    d = det.read(p)
    assert d.layout == "halpe26"
    np.testing.assert_array_equal(d.tracks[0].frames, 1000 + np.arange(12))
    p2 = _dump(tmp_path / "res2.json", _coco_entries(people, image_id=lambda f: f"video/frame_{f:06d}.png"))
    np.testing.assert_array_equal(det.read(p2).tracks[0].frames, np.arange(12))
    assert det.read(p, layout="halpe26").layout == "halpe26"
    with pytest.raises(InputError, match="26 keypoints, layout coco17 has 17"):
        det.read(p, layout="coco17")


def test_openpose_folder_fixture(mocap, tmp_path):
    T = 30
    people = _one(mocap, "body25", T=T)
    fr, kp, sc = people[0]
    keep = np.setdiff1d(fr, [3, 4, 17])                                    # frames with nobody in them
    people = {0: (keep, kp[keep], sc[keep])}
    folder = tmp_path / "op"
    _write_openpose_folder(folder, people, T)
    (folder / "notes.txt").write_text("not a frame")
    assert det.sniff(folder) == "openpose"
    assert det.sniff(folder / "clip_000000000000_keypoints.json") == "openpose"
    d = det.read(folder)
    assert (d.format, d.layout, d.n_frames) == ("openpose", "body25", T)
    assert _match(d.tracks[0], people, 3, snd=6) == 0
    np.testing.assert_array_equal(d.tracks[0].frames, keep)
    one = det.read(folder / "clip_000000000005_keypoints.json")
    assert one.n_frames == 1 and one.tracks[0].frames.tolist() == [0]


def test_mmpose_inferencer_and_demo_fixtures(mocap, tmp_path):
    T = 25
    people = _one(mocap, T=T, missing=0.0)                              # a heatmap model places every joint
    fr, kp, sc = people[0]
    people = {0: (fr[fr != 9], kp[fr != 9], sc[fr != 9])}
    p = _dump(tmp_path / "video.json", _mmpose_frames(people, T))
    assert det.sniff(p) == "mmpose"
    d = det.read(p)
    assert (d.format, d.layout, d.n_frames) == ("mmpose", "coco17", T)
    t = d.tracks[0]
    np.testing.assert_array_equal(t.frames, people[0][0])
    np.testing.assert_array_equal(t.keypoints, people[0][1])
    np.testing.assert_array_equal(t.scores, people[0][2])
    demo = _dump(tmp_path / "results_video.json", {"meta_info": {"dataset_name": "coco", "num_keypoints": 17},
                                                   "instance_info": _mmpose_frames(people, T, first=1)})
    assert det.sniff(demo) == "mmpose"
    dd = det.read(demo)
    np.testing.assert_array_equal(dd.tracks[0].frames, people[0][0] + 1)     # frame_id as written
    assert dd.n_frames is None
    image = _dump(tmp_path / "000123.json", _mmpose_frames(people, 1)[0]["instances"])
    assert det.sniff(image) == "mmpose"
    di = det.read(image)
    assert di.n_frames == 1 and di.tracks[0].frames.tolist() == [0]


def test_ultralytics_fixture(mocap, tmp_path):
    T = 30
    people = _one(mocap, T=T)
    fr, kp, sc = people[0]
    keep = fr[(fr < 10) | (fr > 12)]
    people = {0: (keep, kp[keep], sc[keep])}
    video = [_ultra_frame(people, f) for f in range(T)]
    p = _dump(tmp_path / "yolo.json", video)
    assert det.sniff(p) == "ultralytics"
    d = det.read(p)
    assert (d.format, d.layout, d.n_frames) == ("ultralytics", "coco17", T)
    t = d.tracks[0]
    np.testing.assert_array_equal(t.frames, keep)
    gone = (people[0][2] < 0.5) | np.isnan(people[0][1][..., 0])
    np.testing.assert_array_equal(np.isnan(t.keypoints[..., 0]), gone)      # zeroed by ultralytics -> NaN
    np.testing.assert_allclose(t.keypoints[~gone], np.round(people[0][1][~gone], 5), rtol=0, atol=1e-9)
    np.testing.assert_allclose(t.scores, np.round(people[0][2], 5), rtol=0, atol=1e-12)
    single = _dump(tmp_path / "frame.json", video[0])
    assert det.sniff(single) == "ultralytics"
    assert det.read(single).n_frames == 1
    framed = _dump(tmp_path / "framed.json", [{"frame": 2 * f, "results": v} for f, v in enumerate(video)])
    assert det.sniff(framed) == "ultralytics"
    np.testing.assert_array_equal(det.read(framed).tracks[0].frames, 2 * keep)
    no_vis = [[{k: v for k, v in x.items()} | {"keypoints": {"x": x["keypoints"]["x"], "y": x["keypoints"]["y"]}}
               for x in fr_] for fr_ in video]
    assert np.isnan(det.read(_dump(tmp_path / "novis.json", no_vis)).tracks[0].scores).all()


# ----------------------------------------------------------------------------------------------------------
# round trips


def _fixture_files(mocap, tmp_path):
    """One realistic multi-person file per format, with and without ids."""
    T = 40
    people = _crossing(mocap, T=T)
    files = {}
    files["coco"] = _dump(tmp_path / "ap.json", _coco_entries(people))
    files["coco_idx"] = _dump(tmp_path / "ap_idx.json", _coco_entries(people, ids="idx"))
    _write_openpose_folder(tmp_path / "op", _crossing(mocap, T=T, layout="body25"), T)
    files["openpose"] = tmp_path / "op"
    files["mmpose"] = _dump(tmp_path / "mm.json", _mmpose_frames(
        {k: (f, _guess(kp), s) for k, (f, kp, s) in people.items()}, T, track_ids=True))
    files["ultralytics"] = _dump(tmp_path / "ul.json", [_ultra_frame(people, f, track_ids=True) for f in range(T)])
    return files


@pytest.mark.parametrize("name", ["coco", "coco_idx", "openpose", "mmpose", "ultralytics"])
def test_round_trip_same_format(mocap, tmp_path, name):
    src = _fixture_files(mocap, tmp_path)[name]
    d = det.read(src)
    assert len(d.tracks) == 2
    out = tmp_path / ("out" if d.format == "openpose" else "out.json")
    det.write(out, d)
    assert det.sniff(out) == d.format
    back = det.read(out)
    expect = Detections(d.layout, d.tracks, d.frame_count() if d.format != "coco" else d.n_frames, d.image_size,
                        d.format)
    assert back == expect
    det.write(out, back)                                                 # overwriting our own output is fine
    assert det.read(out) == expect
    assert not [c for c in tmp_path.rglob(".*.tmp")]                    # no temporary files left


@pytest.mark.parametrize("target", det.FORMATS)
def test_round_trip_across_formats(mocap, tmp_path, target):
    files = _fixture_files(mocap, tmp_path)
    for name in ("coco_idx", "openpose", "ultralytics"):
        d = det.read(files[name])
        out = tmp_path / f"x_{name}_{target}" if target == "openpose" else tmp_path / f"x_{name}.{target}.json"
        det.write(out, d, format=target)
        back = det.read(out)
        assert back.format == target and back.layout == d.layout
        assert [t.track_id for t in back.tracks] == [t.track_id for t in d.tracks]
        for a, b in zip(back.tracks, d.tracks):
            np.testing.assert_array_equal(a.frames, b.frames)
            np.testing.assert_array_equal(a.keypoints, b.keypoints)
            nan_ok = target in ("coco", "openpose")                      # NaN scores are written as 0 there
            np.testing.assert_array_equal(a.scores, np.where(np.isnan(b.scores), 0.0, b.scores) if nan_ok else b.scores)


def test_recovered_track_round_trip(tmp_path):
    """What the CLI writes after recovery: every frame filled, float values at full precision."""
    rng = np.random.default_rng(5)
    T = 17
    tracks = [PersonTrack(0, np.arange(T), rng.uniform(0, 1920, (T, 17, 2)) / 3.0, rng.uniform(0, 1, (T, 17))),
              PersonTrack(4, np.arange(3, T), rng.uniform(0, 1080, (T - 3, 17, 2)) * math.pi,
                          rng.uniform(0, 1, (T - 3, 17)))]
    for fmt in det.FORMATS:
        d = Detections("coco17", tracks, n_frames=T + 2, image_size=(1920, 1080), format=fmt)
        out = tmp_path / (fmt if fmt == "openpose" else f"{fmt}.json")
        det.write(out, d)
        back = det.read(out)
        assert back.tracks == tracks                                     # bit-exact floats (repr)
        assert back.n_frames == (None if fmt == "coco" else T + 2)
    single = Detections("coco17", [PersonTrack(1, [0], tracks[0].keypoints[:1], None)], format="openpose")
    det.write(tmp_path / "one_keypoints.json", single)
    back = det.read(tmp_path / "one_keypoints.json")
    np.testing.assert_array_equal(back.tracks[0].keypoints, single.tracks[0].keypoints)
    with pytest.raises(InputError, match="one frame"):
        det.write(tmp_path / "many.json", Detections("coco17", tracks, format="openpose"))


# ----------------------------------------------------------------------------------------------------------
# several people, ids and association


@pytest.mark.parametrize("name", ["coco_idx", "mmpose", "ultralytics"])
def test_track_ids_are_kept(mocap, tmp_path, name):
    people = _crossing(mocap, T=40)
    d = det.read(_fixture_files(mocap, tmp_path)[name])
    assert sorted(t.track_id for t in d.tracks) == [3, 7]
    for t in d.tracks:
        fr = people[t.track_id][0]
        np.testing.assert_array_equal(t.frames, fr)


def test_openpose_person_ids(mocap, tmp_path):
    people = _crossing(mocap, T=30, layout="body25")
    _write_openpose_folder(tmp_path / "op", people, 30, person_ids=True)
    d = det.read(tmp_path / "op")
    assert [t.track_id for t in d.tracks] == [3, 7]
    for t in d.tracks:
        assert _match(t, people, 3, snd=6) == t.track_id


@pytest.mark.parametrize("step", [1, 4])
def test_association_keeps_crossing_people_apart(mocap, tmp_path, step):
    """No ids: two people crossing in front of each other (with missed frames) stay two tracks, each one
    person's keypoints throughout; also when only every 4th frame is detected (keyframes)."""
    T = 60
    people = _crossing(mocap, T=T)
    people = {k: (f[f % step == 0], kp[f % step == 0], s[f % step == 0]) for k, (f, kp, s) in people.items()}
    d = det.read(_dump(tmp_path / "ap.json", _coco_entries(people)))
    assert len(d.tracks) == 2
    assert sorted(_match(t, people, 4) for t in d.tracks) == [3, 7]
    assert [t.track_id for t in d.tracks] == [0, 1]


def test_association_new_person_after_the_first_left(mocap, tmp_path):
    a_kp, a_sc = _person(mocap, 0, "coco17", 20, x_path=-2000.0, seed=3)
    b_kp, b_sc = _person(mocap, 3, "coco17", 20, x_path=1800.0, seed=4)
    people = {0: (np.arange(10), a_kp[:10], a_sc[:10]), 1: (np.arange(30, 40), b_kp[:10], b_sc[:10])}
    d = det.read(_dump(tmp_path / "ap.json", _coco_entries(people)))
    assert sorted(_match(t, people, 4) for t in d.tracks) == [0, 1]


def test_associate_api(mocap):
    a, sa = _person(mocap, 0, "coco17", 10, x_path=-1500.0, seed=6, missing=0)
    b, sb = _person(mocap, 1, "coco17", 10, x_path=1500.0, seed=7, missing=0)
    frames = [(f, [(b[f], sb[f]), (a[f], sa[f])] if f % 2 else [(a[f], sa[f]), (b[f], None)]) for f in range(10)]
    tracks = det.associate(frames)
    assert len(tracks) == 2
    np.testing.assert_array_equal(tracks[0].keypoints, a)
    np.testing.assert_array_equal(tracks[1].keypoints, b)
    assert np.isnan(tracks[1].scores[0]).all() and not np.isnan(tracks[1].scores[1]).any()
    # the same person twice in one frame (a tie): one continues the track, the other starts a new one
    tie = det.associate([(0, [(a[0], sa[0])]), (1, [(a[1], sa[1]), (a[1], sa[1])])])
    assert [t.frames.tolist() for t in tie] == [[0, 1], [1]]
    # a jump of more than the gate starts a new track; a gap longer than max_gap too
    far = a[1] + np.array([900.0, 0.0])
    assert len(det.associate([(0, [(a[0], None)]), (1, [(far, None)])])) == 2
    assert len(det.associate([(0, [(a[0], None)]), (1, [(a[0], None)]), (9, [(a[0], None)])], max_gap=3)) == 2
    assert len(det.associate([(0, [(a[0], None)]), (1, [(a[0], None)]), (9, [(a[0], None)])], max_gap=8)) == 1
    # a person without any detected joint has no box and is dropped
    assert det.associate([(0, [(np.full((17, 2), np.nan), None)])]) == []
    with pytest.raises(InputError, match="frame 0 appears twice"):
        det.associate([(0, []), (0, [])])
    with pytest.raises(InputError, match=r"shape \(17, 2\)"):
        det.associate([(0, [(a[0], None)]), (1, [(a[0][:5], None)])])


def test_association_ignores_low_score_joints_far_off(mocap, tmp_path):
    """MMPose/AlphaPose place every joint; a joint they are unsure of can be far off. Its low score keeps
    it out of the person's box, so the person is not split into several tracks."""
    T = 40
    people = _crossing(mocap, T=T)
    rng = np.random.default_rng(9)
    noisy = {}
    for pid, (fr, kp, sc) in people.items():
        kp, sc = _guess(kp), sc.copy()
        junk = rng.random(sc.shape) < 0.03
        kp[junk] = rng.uniform(0, 1080, (junk.sum(), 2))
        sc[junk] = rng.uniform(0.01, 0.1, junk.sum())
        noisy[pid] = (fr, kp, sc)
    d = det.read(_dump(tmp_path / "mm.json", _mmpose_frames(noisy, T)))
    assert len(d.tracks) == 2
    assert sorted(_match(t, noisy, 12, zero_missing=False, atol=1e-9) for t in d.tracks) == [3, 7]


def test_mixed_ids_and_untracked(mocap, tmp_path):
    people = _crossing(mocap, T=20, gaps=False)
    frames = [_ultra_frame(people, f, track_ids=f >= 5) for f in range(20)]      # tracker confirms at frame 5
    d = det.read(_dump(tmp_path / "ul.json", frames))
    ids = sorted(t.track_id for t in d.tracks)
    assert ids[:2] == [3, 7] and all(i > 7 for i in ids[2:]) and len(ids) == 4
    assert sum(t.frames.size for t in d.tracks) == 40


# ----------------------------------------------------------------------------------------------------------
# from_ultralytics


class _Tensor:
    """A stand-in for a torch tensor: .cpu().numpy()."""

    def __init__(self, a):
        self.a = np.asarray(a)

    def cpu(self):
        return self

    def numpy(self):
        return self.a


class _NS:
    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __len__(self):
        return len(self.__dict__.get("data", []))


def test_from_ultralytics(mocap):
    people = _crossing(mocap, T=12, gaps=False)
    results = []
    for f in range(12):
        xy, conf, ids = [], [], []
        for pid, (fr, kp, sc) in people.items():
            k = np.where(np.isnan(kp[f]), 0.0, kp[f])
            k[sc[f] < 0.5] = 0.0
            xy.append(k), conf.append(sc[f]), ids.append(pid)
        wrap = _Tensor if f % 2 else np.asarray
        results.append(_NS(keypoints=_NS(xy=wrap(np.array(xy, dtype=np.float32)), conf=wrap(np.array(conf))),
                           boxes=_NS(id=wrap(np.array(ids, dtype=np.float32)), data=ids), orig_shape=(H, W)))
    results.append(_NS(keypoints=_NS(xy=np.zeros((0, 17, 2)), conf=None), boxes=_NS(id=None, data=[]),
                       orig_shape=(H, W)))
    d = det.from_ultralytics(iter(results))
    assert (d.format, d.layout, d.n_frames, d.image_size) == ("ultralytics", "coco17", 13, (1920.0, 1080.0))
    assert [t.track_id for t in d.tracks] == [3, 7]
    for t in d.tracks:
        fr, kp, sc = people[t.track_id]
        gone = np.isnan(kp[..., 0]) | (sc < 0.5)
        np.testing.assert_array_equal(np.isnan(t.keypoints[..., 0]), gone)
        np.testing.assert_allclose(t.keypoints[~gone], kp[~gone].astype(np.float32), rtol=0, atol=0)
    untracked = [_NS(keypoints=r.keypoints, boxes=_NS(id=None, data=[1, 2]), orig_shape=r.orig_shape)
                 for r in results[:-1]]
    d2 = det.from_ultralytics(untracked)
    assert len(d2.tracks) == 2 and [t.track_id for t in d2.tracks] == [0, 1]
    with pytest.raises(InputError, match="frame 0: no keypoints"):
        det.from_ultralytics([_NS(keypoints=None, boxes=_NS(data=[1]))])
    with pytest.raises(InputError, match="boxes.id has 1 ids for 2 people"):
        det.from_ultralytics([_NS(keypoints=results[0].keypoints, boxes=_NS(id=np.array([1.0]), data=[1]))])


# ----------------------------------------------------------------------------------------------------------
# malformed files


def _coco17_entry(i=0):
    return {"image_id": f"{i}.jpg", "category_id": 1, "keypoints": [100.0 + i, 200.0, 0.9] * 17, "score": 2.5}


MALFORMED = [
    # (file name, content (str = raw text), format, message pattern)
    ("predictions.json", "[{\"image_id\": 1, ", None, r"predictions\.json: not valid JSON: .* line 1"),
    ("predictions.json", [_coco17_entry(i) for i in range(17)] + [{**_coco17_entry(17), "keypoints": [1.0] * 50}],
     None, r"predictions\.json: entry 17: keypoints has 50 numbers, expected 51"),
    ("p.json", [{**_coco17_entry(), "keypoints": [1.0] * 50}], "coco",
     r"p\.json: entry 0: keypoints has 50 numbers, expected 3\*J"),
    ("p.json", [{**_coco17_entry(), "keypoints": [1.0, "2", 3.0] * 17}], None,
     r"entry 0: keypoints\[1\] is \"2\", not a number"),
    ("p.json", [{**_coco17_entry(), "keypoints": [1.0, True, 3.0] * 17}], None, r"keypoints\[1\] is true"),
    ("p.json", [_coco17_entry(0), {**_coco17_entry(1), "keypoints": [1.0, 2.0, 3.0] * 26}], None,
     r"entry 1: keypoints has 78 numbers, expected 51"),
    ("p.json", [{**_coco17_entry(), "image_id": -4}], "coco", r"entry 0: negative image_id -4"),
    ("p.json", [_coco17_entry(0), {**_coco17_entry(), "image_id": 3}], None,
     r"entry 1: image_id 3 is a number but entry 0"),
    ("p.json", [{**_coco17_entry(), "image_id": "a_1.jpg"}, {**_coco17_entry(), "image_id": "b_1.jpg"}], None,
     r"entry 1: image_id \"b_1.jpg\" and \"a_1.jpg\" \(entry 0\) both give frame 1"),
    ("p.json", [{**_coco17_entry(), "image_id": "cat.jpg"}], None,
     r"entry 0: image_id \"cat.jpg\" has no frame number"),
    ("p.json", [{**_coco17_entry(), "track_id": 2}, {**_coco17_entry(), "track_id": 2}], None,
     r"entry 1: track 2 appears twice in frame 0 \(also at entry 0\)"),
    ("p.json", [{**_coco17_entry(), "track_id": [1, 2]}], None, r"entry 0: track_id must be"),
    ("p.json", [{**_coco17_entry(), "score": "high"}], None, r"entry 0: score: expected a number"),
    ("p.json", '[{"image_id": 0, "keypoints": [NaN, 1, 1], "score": 1}]', "coco",
     r"p\.json: non-finite number NaN at line 1 column 32"),
    ("p.json", '[{"image_id": 0, "keypoints": [1e400, 1, 1], "score": 1}]', "coco",
     r"entry 0: keypoints\[0\] is not finite"),
    ("p.json", '[{"image_id": 0, "keypoints": [-Infinity, 1, 1]}]', "coco", r"non-finite number -Infinity"),
    ("p.json", "[" * 65 + "]" * 65, None, r"p\.json: JSON nested 65 levels deep, more than the 64 read"),
    ("p.json", "[" * 999 + "]" * 999, None, r"p\.json: JSON nested 999 levels deep, more than the 64 read"),
    ("p.json", [{**_coco17_entry(), "keypoints": [1.0, 2.0, 0.5] * 18}], None,
     r"p\.json: no known detector layout has 18"),
    ("p.json", [{"image_id": 0}], "coco", r"entry 0: no 'keypoints'"),
    ("p.json", {"people": [{"pose_keypoints_2d": [1.0, 2.0]}]}, None,
     r"p\.json: people\[0\]: pose_keypoints_2d has 2 numbers"),
    ("p.json", {"people": [{"pose_keypoints_2d": []}]}, None, r"body model"),
    ("p.json", {"people": {"pose_keypoints_2d": []}}, None, r"p\.json: people must be a list"),
    ("p.json", {"people": [{"person_id": [4], "pose_keypoints_2d": [1, 2, 3] * 25},
                           {"person_id": [4], "pose_keypoints_2d": [1, 2, 3] * 25}]}, None,
     r"people\[1\]: track 4 appears twice"),
    ("p.json", [{"frame_id": 0, "instances": [{"keypoints": [[1, 2]] * 17, "keypoint_scores": [0.5] * 16}]}], None,
     r"entry\[0\] \(frame_id 0\): instances\[0\]: keypoint_scores has 16 values, expected 17"),
    ("p.json", {"meta_info": {}, "instance_info": [{"frame_id": 1, "instances": []}, {"frame_id": 1, "instances": []}]},
     None, r"instance_info\[1\]: frame_id 1 again"),
    ("p.json", [{"frame_id": -1, "instances": []}], None, r"entry\[0\]: negative frame_id -1"),
    ("p.json", [{"frame_id": 0, "instances": [{"keypoints": [[1, 2, 3]] * 17}]}], None, r"3D keypoints"),
    ("p.json", [{"frame_id": 0, "instances": [{"keypoints": [[1, 2]] * 17}, {"keypoints": [[1, 2]] * 26}]}], None,
     r"instances\[1\]: 26 keypoints, but entry\[0\] \(frame_id 0\): instances\[0\] has 17"),
    ("p.json", [{"frame_id": 10 ** 12, "instances": []}], "mmpose", r"frame_id 1000000000000 is beyond"),
    ("p.json", [[{"keypoints": {"x": [1.0] * 17, "y": [1.0] * 16}}]], None,
     r"frame 0: detection 0: keypoints\.x has 17 values and keypoints\.y 16"),
    ("p.json", [[], [{"name": "person", "box": {}}]], "ultralytics", r"frame 1: detection 0: no 'keypoints'"),
    ("p.json", [[], {"a": 1}], "ultralytics", r"frame 1: expected a list of detections"),
    ("p.json", [{"frame": 0, "results": []}, {"frame": 0, "results": []}], None, r"entry 1: frame 0 again"),
    ("p.json", {"some": "thing"}, None, r"cannot tell which detector wrote this file"),
    ("p.json", '[{"image_id": 0, "keypoints": [' + "9" * 5000 + ', 1, 1]}]', "coco", r"p\.json: not readable JSON"),
    ("p.json", [{"keypoints": [[1, 2]] * 17}, {"keypoints": [[1, 2]] * 17, "keypoint_scores": 0.5}], "mmpose",
     r"p\.json: instances\[1\]: keypoint_scores must be a list"),
    ("p.json", b"\xff\xfe\x00garbage", None, r"not UTF-8"),
]


@pytest.mark.parametrize("fname,content,fmt,pattern", MALFORMED)
def test_malformed_files(tmp_path, fname, content, fmt, pattern):
    p = tmp_path / fname
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(InputError, match=pattern) as e:
        det.read(p, format=fmt)
    assert str(p) in str(e.value)


def test_depth_limit_is_64(tmp_path):
    """The documented limit is what is read, whatever Python's recursion limit (999 levels used to end in
    RecursionError, "nested too deeply", under a documented limit of 1000)."""
    assert det.MAX_DEPTH == 64 and "nesting deeper than 64" in det.__doc__
    p = tmp_path / "deep.json"
    p.write_text("[" * 64 + "]" * 64)
    with pytest.raises(InputError, match="cannot tell which detector") as e:          # parsed: read, not refused
        det.read(p)
    assert "nested" not in str(e.value)
    p.write_text('[{"image_id": "x[[[[[[.jpg"}]')                            # brackets in strings do not count
    with pytest.raises(InputError, match="no frame number"):
        det.read(p, format="coco")


def test_openpose_folder_errors(tmp_path):
    person = {"people": [{"person_id": [-1], "pose_keypoints_2d": [1, 2, 0.5] * 25}]}
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no OpenPose"):
        det.read(tmp_path / "empty")
    assert det.sniff(tmp_path / "empty") is None
    two = tmp_path / "two"
    two.mkdir()
    (two / "a_000000000001_keypoints.json").write_text(json.dumps(person))
    (two / "b_000000000001_keypoints.json").write_text(json.dumps(person))
    with pytest.raises(InputError, match=r"b_000000000001_keypoints\.json: frame 1 again"):
        det.read(two)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x_000000000000_keypoints.json").write_text(json.dumps(person))
    (bad / "x_000000000001_keypoints.json").write_text(
        json.dumps({"people": [{"pose_keypoints_2d": [1, "a", 0.5] * 25}]}))
    with pytest.raises(InputError, match=r"x_000000000001_keypoints\.json: people\[0\]: pose_keypoints_2d\[1\]"):
        det.read(bad)
    with pytest.raises(InputError, match="is a folder"):
        det.read(bad, format="coco")
    # writing into a folder with other OpenPose files would mix two videos
    d = det.read(tmp_path / "bad" / "x_000000000000_keypoints.json")
    with pytest.raises(InputError, match="already holds other OpenPose files"):
        det.write(two, Detections("body25", d.tracks, format="openpose"))


def test_read_argument_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        det.read(tmp_path / "missing.json")
    with pytest.raises(InputError, match="unknown detector format"):
        det.read(tmp_path / "missing.json", format="yolo")
    with pytest.raises(InputError, match="unknown keypoint layout"):
        det.read(_dump(tmp_path / "e.json", [_coco17_entry()]), layout="nope")
    with pytest.raises(InputError, match="needs a Detections"):
        det.write(tmp_path / "x.json", [])
    with pytest.raises(InputError, match="strictly increasing"):
        PersonTrack(0, [2, 1], np.zeros((2, 17, 2)), None)
    with pytest.raises(InputError, match="shape"):
        PersonTrack(0, [0, 1], np.zeros((2, 17, 3)), None)
    with pytest.raises(InputError, match="17 joints, layout body25 has 25"):
        Detections("body25", [PersonTrack(0, [0], np.zeros((1, 17, 2)))])
    with pytest.raises(InputError, match="n_frames is 1 but a track has frame 4"):
        Detections("coco17", [PersonTrack(0, [4], np.zeros((1, 17, 2)))], n_frames=1)



def test_constructor_and_helper_argument_errors():
    """Bad arguments are InputErrors naming the argument, not OverflowError, TypeError, ValueError or a
    ComplexWarning with the imaginary part dropped; ids and frames are held to what files may hold."""
    cases = [
        (lambda: Detections("coco17", [], image_size=(10 ** 400, 1)), r"image_size must be \(width, height\)"),
        (lambda: Detections("coco17", None), "tracks must be a list of PersonTrack objects, got NoneType"),
        (lambda: Detections("coco17", [], n_frames=10 ** 8), "n_frames must be an int from 0 to 10000001"),
        (lambda: PersonTrack(0, [0, 1], np.zeros((2, 17, 2), complex)), "track 0: keypoints: dtype complex128"),
        (lambda: PersonTrack("", [0, 1], np.zeros((2, 17, 2))), "track_id must be an int or a non-empty str"),
        (lambda: PersonTrack(0, [0, 10 ** 12], np.zeros((2, 17, 2))), "frames must be from 0 to 10000000"),
        (lambda: PersonTrack(0, np.array([5, 3], np.uint64), np.zeros((2, 17, 2))), "strictly increasing"),
        (lambda: det.associate([(0, [])], gate="x"), "gate must be a non-negative number, got 'x'"),
        (lambda: det.associate([(0, None)]), r"people_per_frame\[0\] \(frame 0\): people must be a list"),
        (lambda: det.from_ultralytics(5), "from_ultralytics needs the Results of each frame"),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for make, message in cases:
            with pytest.raises(InputError, match=message):
                make()


def test_coordinates_beyond_float32_are_refused(tmp_path):
    """msf computes in float32 (inputs.check_values): 1e308 px used to be read, then overflowed to inf box
    centres in association with a RuntimeWarning."""
    huge = np.full((17, 2), 1e308)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match=r"people_per_frame\[1\] \(frame 10\): person 0: keypoints: values "
                                             r"beyond float32 range"):
            det.associate([(0, [(np.ones((17, 2)), None)]), (10, [(-huge, None)])])
        with pytest.raises(InputError, match="track 0: keypoints: values beyond float32 range"):
            PersonTrack(0, [0], huge[None])
        p = _dump(tmp_path / "big.json", [_coco17_entry(0), {**_coco17_entry(1), "keypoints": [1e308, 2.0, 0.9] * 17}])
        with pytest.raises(InputError, match=r"big\.json: entry 1: keypoints: values beyond float32 range"):
            det.read(p)
        ok = {**_coco17_entry(0), "keypoints": [3e38, 2.0, 0.9] * 17}            # within float32: read as given
        assert det.read(_dump(tmp_path / "ok.json", [ok])).tracks[0].keypoints[0, 0, 0] == 3e38


def test_write_into_a_missing_folder_names_the_folder(tmp_path):
    """The error named the temporary file ('.x.json.rf603ww8.tmp') instead of the folder that is missing."""
    d = Detections("coco17", [PersonTrack(0, [0], np.ones((1, 17, 2)))])
    with pytest.raises(FileNotFoundError) as e:
        det.write(tmp_path / "missing" / "x.json", d)
    assert str(tmp_path / "missing") in str(e.value) and ".tmp" not in str(e.value)


def test_people_recover_argument_errors_are_raised_once():
    """An argument's own error comes once, up front, not as a warning for every person followed by "no person
    could be recovered"; wrong types are InputErrors too, and n_frames is held to the readers' limit."""
    import msf
    from msf import people
    refiner = msf.Refiner.load(_cli_model())
    lay = refiner.pose["skeleton"]
    J = layouts.get(lay).J
    rng = np.random.default_rng(0)
    d = Detections(lay, [PersonTrack(k, np.arange(0, 51, 10), 500 + 20 * rng.standard_normal((6, J, 2)),
                                     np.full((6, J), 0.9)) for k in range(3)])
    cases = [
        (dict(image_size=None), r"image_size must be \(width, height\) in pixels"),
        (dict(image_size=(0, 0)), r"image_size must be \(width, height\) in pixels"),
        (dict(stride=0), "stride must be an integer from 1 to Q"),
        (dict(min_score=float("nan")), "min_score must be a finite number"),
        (dict(n_frames="200"), "n_frames must be an integer >= 1"),
        (dict(n_frames=10 ** 12), "n_frames must be at most 10000001"),
        (dict(format="csv"), "unknown detector format 'csv'"),                 # after every person
        (dict(progress=5), "progress must be a function"),                      # a TypeError at the first person
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                      # not one warning per person
        for change, message in cases:
            with pytest.raises(InputError, match=message):
                people.recover(refiner, d, **{"image_size": (W, H), **change})
        with pytest.raises(InputError, match=r"detections must be a msf\.detectors\.Detections .*got list"):
            people.recover(refiner, [1, 2], image_size=(W, H))
    assert det.check_n_frames(10 ** 7 + 1) == Detections(lay, [], n_frames=10 ** 7 + 1).n_frames  # the limit itself


def test_empty_files(tmp_path):
    d = det.read(_dump(tmp_path / "e.json", []), format="coco")
    assert d.tracks == [] and d.layout == "coco17"
    assert det.sniff(tmp_path / "e.json") is None                                # an empty list: cannot tell
    d = det.read(_dump(tmp_path / "op.json", {"version": 1.3, "people": []}))
    assert (d.layout, d.n_frames, d.tracks) == ("body25", 1, [])
    d = det.read(_dump(tmp_path / "ul.json", [[], [], []]), format="ultralytics", layout="coco17")
    assert d.n_frames == 3 and d.tracks == []
    d = det.read(_dump(tmp_path / "mm.json", [{"frame_id": i, "instances": []} for i in range(4)]))
    assert d.n_frames == 4 and d.tracks == []


def test_sniff(tmp_path):
    assert det.sniff(tmp_path / "absent.json") is None
    assert det.sniff(_dump(tmp_path / "cfg.json", {"K": 10})) is None
    (tmp_path / "text.json").write_text("hello")
    assert det.sniff(tmp_path / "text.json") is None
    assert det.sniff(_dump(tmp_path / "nums.json", [1, 2, 3])) is None
    assert det.sniff(_dump(tmp_path / "c.json", [_coco17_entry()])) == "coco"
    assert det.sniff(_dump(tmp_path / "u.json", [[], [{"keypoints": {"x": [], "y": []}}]])) == "ultralytics"


# ----------------------------------------------------------------------------------------------------------
# property tests: garbage and mutated files raise InputError or read cleanly

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10 ** 20, 10 ** 20) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(
        st.sampled_from(["image_id", "keypoints", "score", "track_id", "idx", "people", "pose_keypoints_2d",
                         "person_id", "frame_id", "instances", "keypoint_scores", "instance_info", "frame",
                         "results", "x", "y", "visible", "meta_info", "bbox", "confidence"]) | st.text(max_size=4),
        kids, max_size=5),
    max_leaves=30)


def _survives(path: Path, fmt):
    try:
        d = det.read(path, format=fmt)
    except InputError:
        return
    assert isinstance(d, Detections)
    for t in d.tracks:
        assert t.keypoints.shape[1:] == (layouts.get(d.layout).J, 2)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values, fmt=st.sampled_from([None, *det.FORMATS]))
def test_garbage_json_never_crashes(tmp_path, value, fmt):
    p = tmp_path / "garbage.json"
    p.write_text(json.dumps(value))
    _survives(p, fmt)
    assert det.sniff(p) in (None, *det.FORMATS)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            yield from _paths(v, prefix + (i,))


def _valid_documents():
    kp17 = [[100.0 + j, 50.0 + 2 * j] for j in range(17)]
    return [
        [_coco17_entry(i) | {"track_id": i % 2} for i in range(3)],
        {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": [1.0, 2.0, 0.5] * 25}] * 2},
        {"meta_info": {},
         "instance_info": [{"frame_id": f, "instances": [{"keypoints": kp17, "keypoint_scores": [0.5] * 17,
                                                          "bbox": [[0, 0, 5, 5]], "bbox_score": 0.9}]}
                           for f in range(3)]},
        [[{"name": "person", "class": 0, "confidence": 0.9, "box": {"x1": 0, "y1": 0, "x2": 1, "y2": 1}, "track_id": t,
           "keypoints": {"x": [1.0] * 17, "y": [2.0] * 17, "visible": [0.9] * 17}} for t in range(2)]
         for _ in range(3)],
    ]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.sampled_from(range(4)), pick=st.integers(0, 10 ** 6), value=json_values,
       fmt=st.sampled_from([None, *det.FORMATS]))
def test_mutated_files_never_crash(tmp_path, doc, pick, value, fmt):
    obj = _valid_documents()[doc]
    paths = list(_paths(obj))[1:]
    path = paths[pick % len(paths)]
    target = obj
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = value
    p = tmp_path / "mutated.json"
    p.write_text(json.dumps(obj))
    _survives(p, fmt)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200))
def test_random_bytes_never_crash(tmp_path, data):
    p = tmp_path / "bytes.json"
    p.write_bytes(data)
    _survives(p, None)


# ----------------------------------------------------------------------------------------------------------
# msf recover on detector files: reader -> recover -> writer


def _cli_model():
    """The shipped 2D model for COCO keypoints where this checkout has it, else the H36M one (then the
    keypoints are converted coco17 -> h36m17 on the way in)."""
    import msf
    return "coco17-2d" if "coco17-2d" in msf.models() else "h36m17-2d"


def _expected_recovery(refiner, d: Detections, track: PersonTrack, K: int, min_score: float):
    """What `msf recover` must give for one read track: the model on its keyframe-grid detections in the
    model's layout, low scores dropped, from its first to its last grid detection."""
    n = d.frame_count()
    grid = np.append(np.arange(0, n, K), n - 1) if (n - 1) % K else np.arange(0, n, K)
    target = refiner.pose["skeleton"]
    kp, sc = track.keypoints, track.scores
    if d.layout != target:
        kp, sc = layouts.convert(kp, d.layout, target, sc)
    on = np.isin(track.frames, grid)
    frames = track.frames[on]
    span = grid[(grid >= frames[0]) & (grid <= frames[-1])]
    poses = np.full((len(span),) + kp.shape[1:], np.nan)
    poses[np.searchsorted(span, frames)] = np.where((sc[on] < min_score)[..., None], np.nan, kp[on])
    return span[0], refiner.recover(poses, int(span[-1] - span[0] + 1), image_size=(W, H))


@pytest.mark.parametrize("name", ["coco", "coco_idx", "openpose", "mmpose", "ultralytics"])
def test_cli_recover_detector_files(mocap, tmp_path, name, capsys):
    """Every format through `msf recover`: the output is in the input's format, one track per person, every
    frame of its span, equal to Refiner.recover on that person's keyframes (low scores missing)."""
    import msf
    from msf.cli import main
    src = _fixture_files(mocap, tmp_path)[name]
    d = det.read(src)
    model = _cli_model()
    out = tmp_path / ("out" if d.format == "openpose" else "out.json")
    assert main(["recover", str(src), "-o", str(out), "--model", model, "--image-size", str(W), str(H)]) == 0
    err = capsys.readouterr().err
    assert "between keyframes and were not used" in err                 # the fixtures detect every frame
    refiner = msf.Refiner.load(model)
    back = det.read(out, layout=refiner.pose["skeleton"])      # 17 joints read as coco17 unless told
    assert back.format == d.format and back.layout == refiner.pose["skeleton"] and len(back.tracks) == len(d.tracks)
    for got, track in zip(back.tracks, d.tracks):
        first, want = _expected_recovery(refiner, d, track, refiner.config.K, 0.3)
        assert got.track_id == track.track_id and got.frames[0] == first and len(got.frames) == len(want)
        worst = np.abs(got.keypoints - want).max()
        assert worst <= 1e-6 * max(W, H), (track.track_id, worst)           # written with repr: exact floats
        assert np.all((got.scores >= 0) & (got.scores <= 1)), got.scores


def test_cli_recover_keyframes_only_and_scores(mocap, tmp_path, capsys):
    """A detector run on keyframes only (frames 0, 10, ..., 40): no warning, and a joint scored under
    --min-score counts as missing (the same frames as with that joint absent)."""
    from msf.cli import main
    people = _one(mocap, T=41, missing=0.0)
    frames, kp, sc = people[0]
    keep = np.arange(0, 41, 10)
    sc = sc.copy()
    sc[keep] = np.maximum(sc[keep], 0.5)
    low = sc.copy()
    low[keep[2], 5] = 0.1
    gone = kp.copy()
    gone[keep[2], 5] = np.nan
    results = {}
    for label, (k, s) in {"low": (kp, low), "gone": (gone, sc)}.items():
        src = _dump(tmp_path / f"{label}.json", _coco_entries({0: (keep, k[keep], s[keep])}, image_id=lambda f: f))
        out = tmp_path / f"{label}-out.json"
        assert main(["recover", str(src), "-o", str(out), "--model", _cli_model(), "--image-size", str(W), str(H),
                     "--n-frames", "41"]) == 0
        assert "warning" not in capsys.readouterr().err
        results[label] = det.read(out).tracks[0]
    assert np.array_equal(results["low"].keypoints, results["gone"].keypoints)
    assert results["low"].frames.tolist() == list(range(41))


def test_cli_recover_detections_off_the_grid(mocap, tmp_path, capsys):
    """Detections on frames 1, 11, 21, ... are not on any keyframe: a clear error, not a guess."""
    from msf.cli import main
    frames, kp, sc = _one(mocap, T=41, missing=0.0)[0]
    keep = np.arange(1, 41, 10)
    src = _dump(tmp_path / "shifted.json", _coco_entries({0: (keep, kp[keep], sc[keep])}, image_id=lambda f: f))
    assert main(["recover", str(src), "-o", str(tmp_path / "o.json"), "--model", _cli_model(),
                 "--image-size", str(W), str(H)]) == 1
    err = capsys.readouterr().err
    assert "no detection is on a keyframe" in err and "1, 11, 21" in err, err
    assert not (tmp_path / "o.json").exists()


def test_cli_recover_detector_file_needs_a_2d_model(mocap, tmp_path, capsys):
    from msf.cli import main
    src = _fixture_files(mocap, tmp_path)["coco"]
    assert main(["recover", str(src), "-o", str(tmp_path / "o.json"), "--model", "h36m17-3d"]) == 1
    assert "use a 2D model" in capsys.readouterr().err


def test_an_unterminated_string_is_blanked_in_one_pass(tmp_path):
    """The string pattern matched only up to a closing quote: on an unterminated string of \\" it failed
    and was retried from every quote (20 s for 80 KB). It now always matches, to the end of the text."""
    text = '[{"image_id": "' + '\\"' * 40000 + ']'
    match = det._STRING.match(text, 14)  # at the unterminated string's quote
    assert match.end() == len(text)
    path = tmp_path / "unterminated.json"
    path.write_text(text)
    with pytest.raises(InputError, match="not valid JSON"):
        det.read(path)
