"""Keypoint layouts of pose detectors and datasets, as data: joint names, left/right pairs, a skeleton
for plots, and conversions between layouts.

Joints with the same meaning have the same name in every layout (``left_shoulder``, ``right_ankle``, ...),
so a conversion picks joints by name. A joint the source lacks is built by a fixed affine combination of
source joints (weights summing to 1, so conversions commute with translation), e.g. COCO-17 -> H36M-17
as common 3D-lifting pipelines do it: pelvis = mid-hips, thorax = mid-shoulders, spine = their midpoint,
nose = mid-eyes and head_top extrapolated from the ears away from the shoulders (fitted on the training
motion capture: 21 mm mean error). Mocap and image annotators put hips and the neck in different places,
so converted joints carry a systematic offset against a dataset's own; they are for pipelines that need
the target layout's joint set, not a substitute for its ground truth.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .errors import InputError

__all__ = ["Layout", "get", "names", "convert", "from_joint_count"]


@dataclass(frozen=True)
class Layout:
    """A keypoint layout: `joints` in the detector's output order, `bones` (pairs of joint names) for
    plots. Left/right pairs follow from the names (``left_x`` <-> ``right_x``)."""

    name: str
    description: str
    joints: tuple[str, ...]
    bones: tuple[tuple[str, str], ...]

    @property
    def J(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        try:
            return self.joints.index(joint)
        except ValueError:
            raise InputError(f"layout {self.name!r} has no joint {joint!r}; "
                             f"its joints: {', '.join(self.joints)}") from None

    @property
    def skeleton(self) -> list[tuple[int, int]]:
        """Bones as joint index pairs."""
        return [(self.index(a), self.index(b)) for a, b in self.bones]

    @property
    def flip_pairs(self) -> list[tuple[int, int]]:
        """(left index, right index) for every joint that has a mirror image."""
        return [(i, self.joints.index("right_" + j[5:])) for i, j in enumerate(self.joints)
                if j.startswith("left_") and "right_" + j[5:] in self.joints]

    @property
    def mirror(self) -> np.ndarray:
        """Permutation (J,) that exchanges left and right joints."""
        perm = np.arange(self.J)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm


def _limbs(side: str) -> list[tuple[str, str]]:
    s = side + "_"
    return [(s + "shoulder", s + "elbow"), (s + "elbow", s + "wrist"), (s + "hip", s + "knee"),
            (s + "knee", s + "ankle")]


_SIDES = ("left", "right")
_FACE = [("nose", "left_eye"), ("nose", "right_eye"), ("left_eye", "left_ear"), ("right_eye", "right_ear")]
_FEET = [b for s in _SIDES for b in ((f"{s}_ankle", f"{s}_heel"), (f"{s}_ankle", f"{s}_big_toe"),
                                     (f"{s}_big_toe", f"{s}_small_toe"))]

_COCO17 = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
           "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
           "right_knee", "left_ankle", "right_ankle")

_LAYOUTS = [
    Layout("h36m17", "Human3.6M 17 joints (3D lifting and the official MixSynthFormer h36m models)",
           ("pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "spine",
            "thorax", "nose", "head_top", "left_shoulder", "left_elbow", "left_wrist", "right_shoulder",
            "right_elbow", "right_wrist"),
           tuple([("pelvis", "right_hip"), ("pelvis", "left_hip"), ("pelvis", "spine"), ("spine", "thorax"),
                  ("thorax", "nose"), ("nose", "head_top"), ("thorax", "left_shoulder"),
                  ("thorax", "right_shoulder")] + _limbs("left") + _limbs("right"))),
    Layout("coco17", "COCO keypoints, the order of the COCO annotations (YOLO-pose, RTMPose, MMPose, ViTPose, "
           "AlphaPose)", _COCO17,
           tuple(_FACE + [("left_ear", "left_shoulder"), ("right_ear", "right_shoulder"),
                          ("left_shoulder", "right_shoulder"), ("left_hip", "right_hip"),
                          ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip")]
                 + _limbs("left") + _limbs("right"))),
    Layout("halpe26", "Halpe full body 26 (AlphaPose): COCO-17, head top, neck, hip centre and the feet",
           _COCO17 + ("head_top", "neck", "mid_hip", "left_big_toe", "right_big_toe", "left_small_toe",
                      "right_small_toe", "left_heel", "right_heel"),
           tuple(_FACE + [("nose", "head_top"), ("nose", "neck"), ("neck", "left_shoulder"),
                          ("neck", "right_shoulder"), ("neck", "mid_hip"), ("mid_hip", "left_hip"),
                          ("mid_hip", "right_hip")] + _limbs("left") + _limbs("right") + _FEET)),
    Layout("body25", "OpenPose BODY_25",
           ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
            "left_wrist", "mid_hip", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
            "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear", "left_big_toe", "left_small_toe",
            "left_heel", "right_big_toe", "right_small_toe", "right_heel"),
           tuple(_FACE + [("nose", "neck"), ("neck", "left_shoulder"), ("neck", "right_shoulder"),
                          ("neck", "mid_hip"), ("mid_hip", "left_hip"), ("mid_hip", "right_hip")]
                 + _limbs("left") + _limbs("right") + _FEET)),
    Layout("blazepose33", "MediaPipe BlazePose 33 landmarks",
           ("nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
            "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
            "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
            "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
            "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
            "left_foot_index", "right_foot_index"),
           tuple([b for s in _SIDES for b in ((f"{s}_eye_inner", "nose"), (f"{s}_eye_inner", f"{s}_eye"),
                                              (f"{s}_eye", f"{s}_eye_outer"), (f"{s}_eye_outer", f"{s}_ear"))]
                 + [("mouth_left", "mouth_right"), ("left_shoulder", "right_shoulder"),
                          ("left_hip", "right_hip"), ("left_shoulder", "left_hip"),
                          ("right_shoulder", "right_hip")] + _limbs("left") + _limbs("right")
                 + [b for s in _SIDES for b in ((f"{s}_wrist", f"{s}_pinky"), (f"{s}_wrist", f"{s}_index"),
                                                (f"{s}_wrist", f"{s}_thumb"), (f"{s}_ankle", f"{s}_heel"),
                                                (f"{s}_heel", f"{s}_foot_index"))])),
]
LAYOUTS: Mapping[str, Layout] = {layout.name: layout for layout in _LAYOUTS}

# Joints that a layout may be missing, as affine combinations of other joints (weights sum to 1). Tried in
# order; a formula is used only when the source has all its joints.
_HEAD_TOP_FROM_EARS = 1.51  # head_top = ears + 0.51 (ears - shoulders), least squares on motion_train.npz
DERIVED: Mapping[str, list[dict[str, float]]] = {
    "pelvis": [{"mid_hip": 1.0}, {"left_hip": 0.5, "right_hip": 0.5}],
    "mid_hip": [{"pelvis": 1.0}, {"left_hip": 0.5, "right_hip": 0.5}],
    "thorax": [{"neck": 1.0}, {"left_shoulder": 0.5, "right_shoulder": 0.5}],
    "neck": [{"thorax": 1.0}, {"left_shoulder": 0.5, "right_shoulder": 0.5}],
    "spine": [{"left_hip": 0.25, "right_hip": 0.25, "left_shoulder": 0.25, "right_shoulder": 0.25}],
    "head_top": [{"left_ear": _HEAD_TOP_FROM_EARS / 2, "right_ear": _HEAD_TOP_FROM_EARS / 2,
                  "left_shoulder": (1 - _HEAD_TOP_FROM_EARS) / 2, "right_shoulder": (1 - _HEAD_TOP_FROM_EARS) / 2}],
}
# H36M-17's "nose" is the midpoint of the eyes (it sits between them in the motion capture it comes from).
_H36M_NOSE = {"left_eye": 0.5, "right_eye": 0.5}


def names() -> list[str]:
    """The layouts msf knows, by name."""
    return list(LAYOUTS)


def get(layout: str | Layout) -> Layout:
    if isinstance(layout, Layout):
        return layout
    try:
        return LAYOUTS[layout]
    except (KeyError, TypeError):
        raise InputError(f"unknown keypoint layout {layout!r}; known: {', '.join(LAYOUTS)}") from None


def from_joint_count(J: int) -> Layout:
    """The 2D detector layout with J joints (17 -> coco17, 25 -> body25, 26 -> halpe26, 33 -> blazepose33)."""
    by_count = {17: "coco17", 25: "body25", 26: "halpe26", 33: "blazepose33"}
    if J not in by_count:
        raise InputError(f"no known detector layout has {J} keypoints (known: "
                         + ", ".join(f"{n} {c}" for c, n in by_count.items()) + ")")
    return LAYOUTS[by_count[J]]


def conversion_matrix(source: str | Layout, target: str | Layout) -> np.ndarray:
    """(J_target, J_source) matrix W with target = W @ source per coordinate; every row sums to 1."""
    src, dst = get(source), get(target)
    W = np.zeros((dst.J, src.J))
    for i, joint in enumerate(dst.joints):
        if dst.name == "h36m17" and src.name != "h36m17" and joint == "nose":
            formulas = [_H36M_NOSE]
        elif joint in src.joints:
            formulas = [{joint: 1.0}]
        else:
            formulas = DERIVED.get(joint, [])
        formula = next((f for f in formulas if all(j in src.joints for j in f)), None)
        if formula is None:
            raise InputError(f"cannot convert {src.name} keypoints to {dst.name}: {src.name} has no {joint!r} "
                             "and no joints it could be built from")
        for j, w in formula.items():
            W[i, src.joints.index(j)] = w
    return W


def convert(keypoints, source: str | Layout, target: str | Layout, scores=None):
    """keypoints (..., J_source, D) in `source` layout -> (..., J_target, D) in `target`.

    A joint built from several source joints is missing (NaN) where any of them is. With `scores`
    (..., J_source), returns (keypoints, scores) with each target joint's score the lowest of the source
    joints it is built from."""
    W = conversion_matrix(source, target)
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim < 2 or kp.shape[-2] != W.shape[1]:
        raise InputError(f"keypoints for layout {get(source).name!r} must have shape (..., {W.shape[1]}, D), "
                         f"got {kp.shape}")
    used = W != 0
    # NaN must spread to every joint built from a missing one (0 * NaN would not be enough for exact picks).
    out = np.einsum("ts,...sd->...td", W, np.nan_to_num(kp, nan=0.0))
    missing = np.isnan(kp).any(axis=-1)                                   # (..., J_source)
    out[(missing[..., None, :] & used).any(axis=-1)] = np.nan
    if scores is None:
        return out
    sc = np.asarray(scores, dtype=np.float64)
    if sc.shape != kp.shape[:-1]:
        raise InputError(f"scores must have shape {kp.shape[:-1]} (one per keypoint), got {sc.shape}")
    sc_out = np.where(used, sc[..., None, :], np.inf).min(axis=-1)
    return out, sc_out
