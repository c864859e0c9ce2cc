"""Motion-capture data, detector-like keyframe noise and virtual cameras, shared by train.py and
benchmarks/accuracy.py (NumPy only). Data: ../shared/data/motion_{train,val}.npz (CMU, H36M-17, mm, 30 fps,
+Y up). Noise model (the evaluation protocol): per-joint Gaussian jitter, sparse large outliers, occasional
left/right swaps; 3D keyframe MPJPE about 50 mm at the detector-like mix. Training draws the noise of each
window from a range (`random_noise`), from clean keyframes to well beyond detector-like.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# H36M-17 left/right pairs: hips, knees, ankles, shoulders, elbows, wrists
LR_PAIRS = [(1, 4), (2, 5), (3, 6), (11, 14), (12, 15), (13, 16)]
MIRROR = np.arange(17)
for a, b in LR_PAIRS:
    MIRROR[a], MIRROR[b] = b, a
IMAGE_SIZE = (1000.0, 1000.0)  # the square evaluation image, pixels (width, height)
# Image sizes of real cameras and phones (landscape, portrait, 4:3, square), drawn in 2D training.
IMAGE_SIZES = [(1920.0, 1080.0), (1280.0, 720.0), (1080.0, 1920.0), (720.0, 1280.0), (640.0, 480.0),
               (480.0, 640.0), (1000.0, 1000.0), (1440.0, 1080.0), (3840.0, 2160.0), (854.0, 480.0)]


# Names of the mocap points in msf.layouts' vocabulary, where they differ (README of the data).
_POINT_NAMES = {"nose_tip": "nose"}
_H36M_AS = {"thorax": "neck", "pelvis": "mid_hip"}  # H36M joints that also stand for these


def load_sequences(split: str, layout: str = "h36m17") -> list[np.ndarray]:
    """Sequences (frames, J, 3) float64, mm, world coordinates, +Y up, in a keypoint layout of msf.layouts
    built from the 17 joints and the 23 extra points (for coco17: the nose tip, eyes, ears, then the
    shoulders, elbows, wrists, hips, knees and ankles, as the data's README says)."""
    from msf import layouts

    data = np.load(DATA / f"motion_{split}.npz")
    keys = sorted(k for k in data.files if k.startswith("seq_"))
    if layout == "h36m17":
        return [data[k].astype(np.float64) for k in keys]
    h36m = layouts.get("h36m17").joints
    points = {name: ("seq", i) for i, name in enumerate(h36m)}
    points.update({alias: points[name] for name, alias in _H36M_AS.items()})
    points.update({_POINT_NAMES.get(str(n), str(n)): ("extra", i) for i, n in enumerate(data["extra_joint_names"])})
    wanted = layouts.get(layout).joints
    missing = [j for j in wanted if j not in points]
    if missing:
        raise ValueError(f"the motion capture has no {missing} for layout {layout}")
    out = []
    for k in keys:
        arrays = {"seq": data[k], "extra": data["extra_" + k[4:]]}
        out.append(np.stack([arrays[points[j][0]][:, points[j][1]] for j in wanted], axis=1).astype(np.float64))
    return out


@dataclass(frozen=True)
class Noise:
    """Detector-like noise. sigma: per-axis Gaussian jitter; outliers: probability per joint of an extra
    offset of `outlier_size` (uniform in [0.5, 1.5] of it, random direction); swaps: probability per
    keyframe that left and right limbs are exchanged. Units: those of the poses (mm, or pixels for 2D)."""

    sigma: float
    outlier_rate: float
    outlier_size: float
    swap_rate: float

    def apply(self, poses: np.ndarray, rng: np.random.Generator, mirror: np.ndarray = MIRROR) -> np.ndarray:
        """poses (..., J, D) -> noisy copy; `mirror` is the layout's left/right permutation (H36M-17's)."""
        noisy = poses + rng.normal(0, self.sigma, poses.shape)
        direction = rng.normal(size=poses.shape)
        direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
        size = self.outlier_size * rng.uniform(0.5, 1.5, poses.shape[:-1] + (1,))
        noisy += (rng.random(poses.shape[:-1] + (1,)) < self.outlier_rate) * direction * size
        swap = rng.random(poses.shape[:-2]) < self.swap_rate
        noisy[swap] = noisy[swap][..., mirror, :]
        return noisy


NOISE_3D = Noise(sigma=20.0, outlier_rate=0.03, outlier_size=200.0, swap_rate=0.02)  # mm
CLEAN = Noise(sigma=0.0, outlier_rate=0.0, outlier_size=0.0, swap_rate=0.0)


def noise_2d(bbox_size: float, sigma: float = 0.03, outlier_rate: float = 0.03, swap_rate: float = 0.02) -> Noise:
    """2D detector noise scaled to the person's bounding-box size in pixels (sigma in fractions of it);
    the defaults are the detector-like mix."""
    return Noise(sigma=sigma * bbox_size, outlier_rate=outlier_rate, outlier_size=0.3 * bbox_size,
                 swap_rate=swap_rate)


def random_noise(rng: np.random.Generator, scale: float) -> Noise:
    """A training window's noise, from clean to well beyond detector-like: 15% clean keyframes; otherwise
    jitter sigma up to 2.25x the detector-like one (skewed to small values), outliers in 0..10% of the
    joints for 60% of the windows and left/right swaps in 0..5% of the keyframes for half of them.
    `scale` is the detector-like sigma in the poses' units (20 mm in 3D, 0.03 of the box in 2D); outliers
    are 10x it (x0.5-1.5)."""
    if rng.random() < 0.15:
        return CLEAN
    return Noise(sigma=2.25 * scale * rng.random() ** 1.5,
                 outlier_rate=rng.uniform(0, 0.10) if rng.random() < 0.6 else 0.0,
                 outlier_size=10 * scale,
                 swap_rate=rng.uniform(0, 0.05) if rng.random() < 0.5 else 0.0)


def random_camera(rng: np.random.Generator, target: np.ndarray):
    """A virtual camera looking at `target` (3,) mm: (rotation world->camera (3, 3), position (3,), focal px)."""
    yaw, pitch = rng.uniform(0, 2 * np.pi), np.deg2rad(rng.uniform(-5, 25))
    distance = rng.uniform(3000, 6000)
    forward = np.array([np.sin(yaw) * np.cos(pitch), -np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
    position = target - forward * distance
    right = np.cross(np.array([0.0, 1.0, 0.0]), forward)
    right /= np.linalg.norm(right)
    up = np.cross(forward, right)
    return np.stack([right, up, forward]), position, rng.uniform(800, 1400)


def project(poses: np.ndarray, camera, image_size=IMAGE_SIZE) -> np.ndarray:
    """poses (..., J, 3) world mm -> pixels (..., J, 2), image centre at image_size / 2, v pointing down."""
    rotation, position, focal = camera
    cam = (poses - position) @ rotation.T
    z = np.maximum(cam[..., 2:3], 100.0)
    uv = focal * cam[..., :2] / z
    return np.stack([uv[..., 0] + image_size[0] / 2, image_size[1] / 2 - uv[..., 1]], axis=-1)


def random_view(poses: np.ndarray, rng: np.random.Generator, image_size) -> np.ndarray:
    """poses (F, J, 3) world mm -> pixels (F, J, 2) in an image of image_size (width, height): a random
    camera (project), then zoomed so that the person's mean box height is 15-90% of the image height
    (zooming = changing the focal length, exact for a pinhole camera) and moved so that the mean box
    centre lies anywhere that keeps the mean box inside the image."""
    pixels = project(poses, random_camera(rng, poses.mean(axis=(0, 1))), image_size)
    width, height = image_size
    lo, hi = pixels.min(axis=1).mean(axis=0), pixels.max(axis=1).mean(axis=0)   # mean box corners (2,)
    zoom = rng.uniform(0.15, 0.9) * height / max(hi[1] - lo[1], 1e-6)
    zoom = min(zoom, 0.95 * width / max(hi[0] - lo[0], 1e-6))                    # narrow portrait images
    centre = (lo + hi) / 2
    half = zoom * (hi - lo) / 2
    target = rng.uniform(half, np.array([width, height]) - half)
    return (pixels - centre) * zoom + target


def bbox_size(poses_2d: np.ndarray) -> np.ndarray:
    """poses (..., F, J, 2) -> the larger side of the bounding box over joints, per frame (..., F)."""
    extent = poses_2d.max(axis=-2) - poses_2d.min(axis=-2)
    return extent.max(axis=-1)


def augment(window: np.ndarray, rng: np.random.Generator, mirror: np.ndarray = MIRROR) -> np.ndarray:
    """window (F, J, 3) world mm: rotation about the vertical axis, mirroring (`mirror`: the layout's
    left/right permutation), small scale change."""
    angle = rng.uniform(0, 2 * np.pi)
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    root = window[:, :1].mean(axis=0, keepdims=True)
    out = (window - root) @ rotation.T * rng.uniform(0.9, 1.1) + root
    if rng.random() < 0.5:
        out = out[:, mirror] * np.array([-1.0, 1.0, 1.0])
    return out


def resample(sequence: np.ndarray, start: float, speed: float, frames: int) -> np.ndarray:
    """Frames start, start + speed, ... of a sequence (F, J, D), linearly interpolated in time."""
    t = start + speed * np.arange(frames)
    i = np.minimum(np.floor(t).astype(int), len(sequence) - 2)
    w = (t - i)[:, None, None]
    return sequence[i] * (1 - w) + sequence[i + 1] * w
