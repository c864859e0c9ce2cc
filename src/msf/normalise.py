"""The model's pose convention applied to poses in the user's units (root joints, image size), and undone."""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from .errors import InputError
from .inputs import FLOAT32_MAX, is_integer
from .pose import PoseConvention


def _real_numbers(value, count: int) -> np.ndarray | None:
    """value (an array, tuple or list) as `count` finite-or-not float64 numbers, or None when it is anything
    else (strings, bools, complex numbers, a wrong count, a dict)."""
    if isinstance(value, np.ndarray):
        return value.astype(np.float64) if value.dtype.kind in "fiu" and value.shape == (count,) else None
    if not isinstance(value, Sequence):  # a dict or set would give its keys
        return None
    items = list(value)
    if len(items) != count or not all(is_integer(v) or isinstance(v, (float, np.floating)) for v in items):
        return None
    try:
        return np.array([float(v) for v in items], dtype=np.float64)
    except OverflowError:  # an int beyond float range
        return None


def check_image_size(image_size, dims: int) -> np.ndarray:
    """image_size as dims float64 numbers; InputError unless they are positive, finite and within float32."""
    size = _real_numbers(image_size, dims)
    if size is None or not np.isfinite(size).all() or (size <= 0).any() or (size > FLOAT32_MAX).any():
        raise InputError(f"image_size must be (width, height) in pixels: {dims} positive numbers (within float32 "
                         f"range), e.g. image_size=(1920, 1080); got {image_size!r}")
    return size


class Normaliser:
    """The model's pose convention applied to (J, D) poses in the user's units, and undone on the output.

    3D root-relative models: the mean of the root joints is subtracted from each keyframe; the output gets
    the root trajectory (linear between keyframes) added back. 2D image-normalised models: coordinates
    are divided by image_size (width, height) and multiplied back.
    """

    def __init__(self, convention: PoseConvention, shape: tuple[int, int], image_size=None):
        """shape: the poses' (J, D), the convention's where it states one. image_size: (width, height) in
        pixels, required by (and only by) image-normalised conventions."""
        self.shape = shape
        J, D = shape
        self.roots = convention.root_indices(J)
        self.scale = None
        if convention.image_normalised:
            if image_size is None:
                raise InputError("this model takes 2D keypoints normalised by the image size: pass "
                                 "image_size=(width, height) in pixels")
            self.scale = check_image_size(image_size, D)
        elif image_size is not None:
            raise InputError("image_size was given, but this model's pose convention has no image "
                             "normalisation (its keyframes are used as they are)")
        self.units = convention.units if convention.dims == D else None

    def forward(self, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """pose (J, D) float64, complete -> (normalised (J, D), offset (D,) to add back)."""
        offset = pose[self.roots].mean(axis=0) if self.roots else np.zeros(pose.shape[1])
        normalised = pose - offset
        if self.scale is not None:
            normalised = normalised / self.scale
        return normalised, offset

    def forward_many(self, poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """forward on poses (N, R, J, D) at once, element by element the same arithmetic ->
        (normalised (N, R, J, D), offsets (N, R, D))."""
        roots = self.roots
        offsets = poses[:, :, roots].mean(axis=2) if roots else np.zeros(poses.shape[:2] + poses.shape[3:])
        normalised = poses - offsets[:, :, None, :]
        if self.scale is not None:
            normalised = normalised / self.scale
        return normalised, offsets

    def inverse(self, frames: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """frames (F, J, D) normalised, offsets (F, D) -> (F, J, D) in the user's units."""
        if self.scale is not None:
            frames = frames * self.scale
        return frames + offsets[:, None, :]

    def check_units(self, normalised: np.ndarray, stacklevel: int = 5) -> None:
        """Warns when root-relative magnitudes suggest metres given to a millimetre model; stacklevel: of
        the caller's frame (the default: the user's Stream.push)."""
        if self.units == "mm" and self.roots and 0 < np.abs(normalised).max() < 10:
            warnings.warn("keyframes look like metres (root-relative coordinates all below 10) but this "
                          "model expects millimetres: multiply by 1000", RuntimeWarning, stacklevel=stacklevel)
