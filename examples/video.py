"""A real video, a real detector, offline: MediaPipe Pose on one frame in K, msf for the rest.

    python examples/video.py [--video vtest.avi] [--out-dir build/video] [--model coco17-2d|h36m17-2d]
                             [--start 610] [--frames 101] [--crop X Y W H] [--scale 3]
                             [--keyframe-step S] [--frame walker|video]

Needs the `video` extra in its own venv (docs/video.md): mediapipe==0.10.21 (its wheel bundles the
BlazePose "full" model, so nothing is downloaded), numpy<2 and OpenCV. The default video is OpenCV's
street scene vtest.avi (Debian/Ubuntu package opencv-doc), 768x576 at 10 fps, walkers 80-120 px tall.

What it does:
1. Follows one walker. `--crop X Y W H` is the box around that walker on the first frame (`--start`;
   the defaults are the woman on the grass of vtest.avi, frames 610-710, ~115 px tall and alone there).
   The box keeps its size; on each keyframe its centre is the walker's torso predicted from the
   previous two keyframe detections (constant velocity), so finding the walker uses keyframe
   detections only; a detection whose torso is far from the prediction is someone else and dropped.
   The crop is upscaled `--scale` times (cubic) and given to MediaPipe Pose (BlazePose-33, static-image
   mode: every call is an independent detection, no tracking between calls; model_complexity=1, the
   bundled "full" model). Landmarks are mapped back to the video's pixels; `visibility` is the score.
2. Runs the detector on the keyframes only (msf.keyframe_indices: frames 0, K, 2K, ... and the last),
   converts BlazePose-33 to the model's layout with msf.layouts.convert and recovers every frame with
   msf (scores < 0.3 are missing joints), in coordinates relative to the walker's keyframe track
   (`--frame walker`, default) or in the video's pixels (`--frame video`); both are printed.
3. As the reference, also runs the same detector on every frame (the crop centred on the walker's
   track) and compares, on frames that are not keyframes: msf against the every-frame detector, and
   plain linear interpolation of the same keyframe detections against it. The every-frame detector is
   itself noisy (it is not ground truth): its own frame-to-frame jitter is printed too, as a floor
   below which no agreement figure can be read as accuracy.

Writes OUT_DIR/video-poses.npz (every array the figures come from) and OUT_DIR/video-contact-sheet.png
(12 crops, msf in orange, the every-frame detector in cyan, keyframes marked), and prints the figures.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import msf
from msf import layouts

VIDEO = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
DEFAULT_START = 610
DEFAULT_CROP = (243, 365, 240, 240)   # vtest.avi frame 610: the woman on the grass, alone there until ~720
MIN_SCORE = 0.3
MSF_COLOUR = (0, 140, 255)            # BGR orange
REF_COLOUR = (255, 220, 0)            # BGR cyan


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", type=Path, default=VIDEO, help=f"a video file OpenCV can read (default {VIDEO})")
    p.add_argument("--out-dir", type=Path, default=Path("build/video"), help="where the .npz and .png go")
    p.add_argument("--model", default=None, help="a shipped model's name or a .safetensors file (default: "
                   "coco17-2d when shipped, else h36m17-2d)")
    p.add_argument("--start", type=int, default=DEFAULT_START, help="first frame of the clip (default %(default)s)")
    p.add_argument("--frames", type=int, default=101, help="clip length in frames (default 101; fewer if the "
                   "video ends)")
    p.add_argument("--crop", type=int, nargs=4, metavar=("X", "Y", "W", "H"), default=DEFAULT_CROP,
                   help="box around the walker to follow on the first frame, in pixels (default %(default)s)")
    p.add_argument("--scale", type=float, default=3.0, help="upscaling of the crop before detection (default 3)")
    p.add_argument("--frame", choices=["walker", "video"], default="walker", help="coordinates msf works in: "
                   "relative to the walker's keyframe track (default) or the video's pixels; both are printed")
    p.add_argument("--keyframe-step", type=int, default=None, metavar="S", help="run the detector every S "
                   "frames (default K, the model's keyframe interval). With S != K msf works on the video's "
                   "timeline stretched K/S times, as if the video were K/S times faster (e.g. S=3 at 10 fps: the "
                   "model's K=10 at 33 fps, near the 30 fps it was trained at), and the clip is cut to end on a "
                   "keyframe")
    p.add_argument("--sheet-frames", type=int, default=12, help="crops on the contact sheet (default 12)")
    return p.parse_args(argv)


def default_model() -> str:
    return "coco17-2d" if "coco17-2d" in msf.models() else "h36m17-2d"


def read_frames(path: Path, start: int, count: int):
    import cv2
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        sys.exit(f"cannot open video {path}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    frames, index = [], 0
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        if index >= start:
            frames.append(frame)
        index += 1
    cap.release()
    if not frames:
        sys.exit(f"{path} has no frames from frame {start} on")
    return frames, fps


class Detector:
    """MediaPipe Pose (BlazePose-33) on a box of a frame: (33, 2) video pixels (NaN if nobody), (33,) scores."""

    def __init__(self, scale: float):
        import mediapipe as mp
        self.pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1,
                                           enable_segmentation=False, min_detection_confidence=0.5)
        self.scale = scale
        self.calls = 0
        self.seconds = 0.0

    def __call__(self, frame: np.ndarray, box) -> tuple[np.ndarray, np.ndarray]:
        import cv2
        x, y, w, h = box
        H, W = frame.shape[:2]
        # the box may leave the image: pad with black so that the crop keeps its size and position
        padded = cv2.copyMakeBorder(frame, h, h, w, w, cv2.BORDER_CONSTANT, value=0)
        crop = padded[y + h:y + 2 * h, x + w:x + 2 * w]
        big = cv2.resize(crop, None, fx=self.scale, fy=self.scale, interpolation=cv2.INTER_CUBIC)
        rgb = cv2.cvtColor(big, cv2.COLOR_BGR2RGB)
        t0 = time.perf_counter()
        result = self.pose.process(rgb)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        if result.pose_landmarks is None:
            return np.full((33, 2), np.nan), np.zeros(33)
        lm = result.pose_landmarks.landmark
        xy = np.array([[p.x * w + x, p.y * h + y] for p in lm])         # normalised crop -> video pixels
        scores = np.array([p.visibility for p in lm])
        off = (xy[:, 0] < 0) | (xy[:, 0] >= W) | (xy[:, 1] < 0) | (xy[:, 1] >= H)
        scores[off] = 0.0                                                  # guessed joints outside the video
        return xy, scores

    def close(self):
        self.pose.close()


TORSO = [11, 12, 23, 24]   # BlazePose-33 shoulders and hips


def centre_of(xy: np.ndarray, scores: np.ndarray):
    """The walker's centre: the mean of the confident shoulders and hips, or None."""
    good = [j for j in TORSO if scores[j] >= MIN_SCORE and np.isfinite(xy[j]).all()]
    return xy[good].mean(axis=0) if len(good) >= 2 else None


def box_at(centre, size) -> tuple[int, int, int, int]:
    w, h = size
    return int(round(centre[0] - w / 2)), int(round(centre[1] - h / 2)), int(w), int(h)


def interpolate_keyframes(values: np.ndarray, valid: np.ndarray, at: np.ndarray, n: int) -> np.ndarray:
    """Linear interpolation in time of keyframe poses (M, J, 2) at frames `at` -> (n, J, 2), per joint over
    its valid keyframes only (held at the ends), as recover() fills missing joints."""
    out = np.full((n,) + values.shape[1:], np.nan)
    t = np.arange(n)
    for j in range(values.shape[1]):
        ok = valid[:, j]
        if ok.any():
            for d in range(values.shape[2]):
                out[:, j, d] = np.interp(t, at[ok], values[ok, j, d])
    return out


def snap_to_keyframes(est: np.ndarray, kp: np.ndarray, valid: np.ndarray, keyframes: np.ndarray) -> np.ndarray:
    """est (n, J, 2) moved to pass through the keyframe detections: its residual on the keyframes,
    interpolated linearly in time, is added (per joint, over the valid keyframes). Uses keyframes only; it
    separates a constant offset of est from the shape of its motion between keyframes."""
    residual = np.where(valid[..., None], kp - est[keyframes], np.nan)
    return est + interpolate_keyframes(residual, valid, keyframes, len(est))


def draw(img: np.ndarray, xy: np.ndarray, ok: np.ndarray, skeleton, colour, thickness: int):
    import cv2
    for a, b in skeleton:
        if ok[a] and ok[b]:
            cv2.line(img, tuple(np.round(xy[a]).astype(int)), tuple(np.round(xy[b]).astype(int)), colour,
                     thickness, cv2.LINE_AA)
    for j in np.flatnonzero(ok):
        cv2.circle(img, tuple(np.round(xy[j]).astype(int)), thickness + 1, colour, -1, cv2.LINE_AA)


def contact_sheet(path: Path, frames, boxes, start: int, shown, keyframe_set, recovered, reference, ref_ok,
                  skeleton, step: int, cols: int = 6, side: int = 160):
    import cv2
    tiles = []
    for f in shown:
        x, y, w, h = boxes[f]
        padded = cv2.copyMakeBorder(frames[f], h, h, w, w, cv2.BORDER_CONSTANT, value=0)
        s = side / w
        tile = cv2.resize(padded[y + h:y + 2 * h, x + w:x + 2 * w], (side, int(round(h * s))),
                          interpolation=cv2.INTER_CUBIC)
        tile = (tile & 0xF8) | 4      # 5 bits per channel: the PNG stays small (grass compresses badly)
        to_tile = lambda p: (p - np.array([x, y])) * s  # noqa: E731
        draw(tile, to_tile(recovered[f]), np.isfinite(recovered[f]).all(axis=1), skeleton, MSF_COLOUR, 2)
        draw(tile, to_tile(reference[f]), ref_ok[f], skeleton, REF_COLOUR, 1)
        label = f"{start + f}" + (" keyframe" if f in keyframe_set else "")
        cv2.putText(tile, label, (5, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(tile, label, (5, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    sheet = np.vstack([np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)])
    legend = np.full((26, sheet.shape[1], 3), 255, np.uint8)
    cv2.putText(legend, f"orange: msf from keyframes (detector on 1 frame in {step})   cyan: detector on "
                "every frame (reference, itself noisy)", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.vstack([legend, sheet]), [cv2.IMWRITE_PNG_COMPRESSION, 9])


def distances(a: np.ndarray, b: np.ndarray, ok: np.ndarray) -> np.ndarray:
    d = np.linalg.norm(a - b, axis=-1)
    return d[ok & np.isfinite(d)]


def recover_in(refiner, frame: str, kp: np.ndarray, sc: np.ndarray, keyframes: np.ndarray, track: np.ndarray,
               size, video_size):
    """msf.recover and the linear baseline in the chosen coordinate frame, back in video pixels.

    "video": the video's pixels, image_size = the video's size (the walker is ~15% of its height, the low
    end of what the 2D model was trained on). "walker": coordinates relative to the walker's track (its
    keyframe centres, linear in between) in a box of the crop's size, image_size = that box: the walker
    fills ~40% of it, and a joint missing on some keyframes is held relative to the body, not at a fixed
    spot of the street. The track is added back to every frame afterwards."""
    n = len(track)
    if frame == "video":
        shift, image_size = np.zeros((n, 1, 2)), video_size
    else:
        shift, image_size = (track - np.asarray(size, float) / 2)[:, None, :], tuple(size)
    local = kp - shift[keyframes]
    K = refiner.config.K
    step = int(keyframes[1] - keyframes[0]) if len(keyframes) > 1 else K
    t0 = time.perf_counter()
    if step == K:
        out = refiner.recover(local, n, image_size=image_size, scores=sc, min_score=MIN_SCORE)
    else:   # keyframes every `step` frames: msf runs on a timeline stretched K/step times, sampled back
        virtual = refiner.recover(local, (n - 1) * K // step + 1, image_size=image_size, scores=sc,
                                  min_score=MIN_SCORE)
        at = np.arange(n) * K / step
        lo = np.floor(at).astype(int)
        hi = np.minimum(lo + 1, len(virtual) - 1)
        w = (at - lo)[:, None, None]
        out = (1 - w) * virtual[lo] + w * virtual[hi]
    seconds = time.perf_counter() - t0
    valid = (sc >= MIN_SCORE) & np.isfinite(local).all(axis=-1)
    return out + shift, interpolate_keyframes(local, valid, keyframes, n) + shift, seconds


def main(argv=None) -> int:
    args = parse_args(argv)
    model = args.model or default_model()
    refiner = msf.Refiner.load(model)
    target = refiner.pose.get("skeleton", "h36m17")
    layout = layouts.get(target)
    K = refiner.config.K

    frames, fps = read_frames(args.video, args.start, args.frames)
    n = len(frames)
    H, W = frames[0].shape[:2]
    step = args.keyframe_step or K
    if step != K:                     # the clip must end on a keyframe of the stretched timeline
        n = (n - 1) // step * step + 1
        frames = frames[:n]
        keyframes = np.arange(0, n, step)
    else:
        keyframes = msf.keyframe_indices(n, K)
    print(f"video {args.video.name}: {W}x{H}, {fps:g} fps, frames {args.start}..{args.start + n - 1} ({n}); "
          f"model {model} ({target}, K={K}, backend {refiner.backend}); detector MediaPipe Pose "
          f"(BlazePose-33, static-image mode, full model), crop {args.crop[2]}x{args.crop[3]} px upscaled "
          f"{args.scale:g}x; msf in the {args.frame!r} frame; detector every {step} frames")

    detector = Detector(args.scale)
    size = tuple(args.crop[2:])
    jump = 0.35 * min(size)           # a detection whose torso is this far from the expected one is someone else
    first = np.array(args.crop[:2], float) + np.array(size) / 2
    boxes: dict[int, tuple] = {}
    kp_xy = np.full((len(keyframes), 33, 2), np.nan)
    kp_sc = np.zeros((len(keyframes), 33))
    centres = []                      # (frame, centre) of the keyframe detections kept
    rejected = 0
    for i, f in enumerate(keyframes):
        if len(centres) >= 2:         # constant velocity from the last two keyframe detections
            (f0, c0), (f1, c1) = centres[-2:]
            guess = c1 + (c1 - c0) * (f - f1) / (f1 - f0)
        else:
            guess = centres[-1][1] if centres else first
        boxes[f] = box_at(guess, size)
        xy, sc = detector(frames[f], boxes[f])
        c = centre_of(xy, sc)
        if c is None or (centres and np.linalg.norm(c - guess) > jump):
            rejected += c is not None  # nobody, or another person: a missing keyframe (NaN), filled by msf
            continue
        kp_xy[i], kp_sc[i] = xy, sc
        centres.append((f, c))
    if len(centres) < 2:
        sys.exit("the detector found the walker on fewer than 2 keyframes: try another --crop or --start")
    cf = np.array([f for f, _ in centres], float)
    cc = np.array([c for _, c in centres])
    track = np.stack([np.interp(np.arange(n), cf, cc[:, d]) for d in range(2)], axis=-1)   # (n, 2)

    # the model's layout; scores < MIN_SCORE are missing joints
    kp_model, sc_model = layouts.convert(kp_xy, "blazepose33", target, kp_sc)
    # msf (and the baseline) need each joint on at least one keyframe; BlazePose guesses every landmark, so a
    # joint never scored >= MIN_SCORE is taken at its low-score guesses rather than failing
    never = ~((sc_model >= MIN_SCORE) & np.isfinite(kp_model).all(axis=-1)).any(axis=0)
    if never.any():
        sc_model[:, never] = np.where(np.isfinite(kp_model[:, never]).all(axis=-1), 1.0, 0.0)
        print(f"note: {', '.join(layout.joints[j] for j in np.flatnonzero(never))} scored < {MIN_SCORE} on every "
              "keyframe: their low-score positions are used")
    results = {fr: recover_in(refiner, fr, kp_model, sc_model, keyframes, track, size, (W, H))
               for fr in (args.frame, "video" if args.frame == "walker" else "walker")}
    recovered, linear, msf_seconds = results[args.frame]

    # reference: the detector on every frame, its crop centred on the walker's track
    ref_xy = np.full((n, 33, 2), np.nan)
    ref_sc = np.zeros((n, 33))
    for i, f in enumerate(keyframes):
        ref_xy[f], ref_sc[f] = kp_xy[i], kp_sc[i]       # the same call: static mode is deterministic
    ref_rejected = 0
    for f in range(n):
        if f in boxes:
            continue
        boxes[f] = box_at(track[f], size)
        xy, sc = detector(frames[f], boxes[f])
        c = centre_of(xy, sc)
        if c is not None and np.linalg.norm(c - track[f]) > jump:
            ref_rejected += 1         # someone else: not compared
            continue
        ref_xy[f], ref_sc[f] = xy, sc
    detector.close()
    ref_model, ref_sc_model = layouts.convert(ref_xy, "blazepose33", target, ref_sc)
    ref_ok = (ref_sc_model >= MIN_SCORE) & np.isfinite(ref_model).all(axis=-1)

    between = np.setdiff1d(np.arange(n), keyframes)
    mid = np.arange(1, n - 1)
    both = ref_ok[mid] & ref_ok[mid - 1] & ref_ok[mid + 1]
    d_jit = distances(ref_model[mid], (ref_model[mid - 1] + ref_model[mid + 1]) / 2, both)
    seen = np.isfinite(ref_model[..., 1]).all(axis=1)
    box_h = float(np.median(ref_model[seen, :, 1].max(axis=1) - ref_model[seen, :, 1].min(axis=1)))

    args.out_dir.mkdir(parents=True, exist_ok=True)
    npz = args.out_dir / "video-poses.npz"
    np.savez_compressed(
        npz, frames=np.arange(args.start, args.start + n), keyframes=args.start + keyframes, layout=target,
        image_size=np.array([W, H]), boxes=np.array([boxes[f] for f in range(n)]), track=track,
        coordinate_frame=args.frame, keyframe_blazepose33=kp_xy, keyframe_blazepose33_scores=kp_sc,
        keyframe_poses=kp_model, keyframe_scores=sc_model, msf=recovered, linear=linear,
        **{f"msf_{fr}_frame": r[0] for fr, r in results.items()},
        **{f"linear_{fr}_frame": r[1] for fr, r in results.items()},
        reference_blazepose33=ref_xy, reference_blazepose33_scores=ref_sc, reference=ref_model,
        reference_scores=ref_sc_model)
    shown = np.unique(np.linspace(0, n - 1, args.sheet_frames).round().astype(int))
    sheet = args.out_dir / "video-contact-sheet.png"
    contact_sheet(sheet, frames, boxes, args.start, shown, set(keyframes.tolist()), recovered, ref_model, ref_ok,
                  layout.skeleton, step)

    saved = n - len(keyframes)
    print(f"detector calls: {len(keyframes)} on keyframes for {n} frames, {saved} saved ({100 * saved / n:.0f}%); "
          f"the every-frame reference made {n}")
    print(f"time: detector {1000 * detector.seconds / detector.calls:.1f} ms per call (MediaPipe process() on "
          f"the upscaled crop, mean of {detector.calls} calls); msf {1000 * msf_seconds / n:.3f} ms per frame "
          f"({1000 * msf_seconds:.1f} ms for all {n}, one recover() call)")
    print(f"walker: median height {box_h:.0f} px; kept on {len(centres)}/{len(keyframes)} keyframes "
          f"({rejected} detections of someone else dropped), reference on {int(seen.sum())}/{n} frames "
          f"({ref_rejected} of someone else dropped)")
    print(f"distance to the every-frame detector on the {len(between)} non-keyframes, video pixels, over the "
          f"{int(ref_ok[between].sum())} joints it scores >= {MIN_SCORE}:")
    rows = [(f"msf from keyframes ({fr} frame)", r[0]) for fr, r in results.items()]
    kp_valid = (sc_model >= MIN_SCORE) & np.isfinite(kp_model).all(axis=-1)
    rows += [(f"msf snapped to keyframes ({fr} frame)", snap_to_keyframes(r[0], kp_model, kp_valid, keyframes))
             for fr, r in results.items()]
    rows += [(f"linear interpolation ({fr} frame)", r[1]) for fr, r in results.items()]
    for name, est in rows:
        d = distances(est[between], ref_model[between], ref_ok[between])
        print(f"  {name:39s} mean {d.mean():6.2f}  median {np.median(d):6.2f}  "
              f"(mean {100 * d.mean() / box_h:.1f}% of the walker's height)")
    on_key = distances(recovered[keyframes], kp_model, kp_valid)
    print(f"  {'msf on the keyframes themselves':39s} mean {on_key.mean():6.2f}  median {np.median(on_key):6.2f}  "
          f"(msf against the detections it was given, {args.frame} frame)")
    apart = distances(recovered, linear, np.isfinite(linear).all(axis=-1))
    print(f"  {'msf against linear interpolation':39s} mean {apart.mean():6.2f}  median {np.median(apart):6.2f}  "
          f"(how far msf's frames are from the baseline's, all frames, {args.frame} frame)")
    print(f"  {'every-frame detector, own jitter':39s} mean {d_jit.mean():6.2f}  median {np.median(d_jit):6.2f}  "
          "(to the mean of its neighbouring frames: a noise floor, not an accuracy)")
    print(f"wrote {npz} and {sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
