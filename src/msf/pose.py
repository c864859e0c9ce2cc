"""Pose conventions: what the P numbers of a pose mean (skeleton, dims, units, root, 2D normalisation).

A convention is stored as JSON in a weight file's `pose` metadata:

    {"skeleton": str, "joints": [J names], "parents": [J ints, -1 for the root] (when known),
     "dims": D, "units": "mm" | "m" | "px" | "normalised" | "6d", "root_relative": bool,
     "root_joints": [joint indices whose mean is the root], "image_normalised": bool}

with J * D = P. D is 2 or 3 for joint positions and 6 for the 6D rotations of the SMPL variants.
`convention` writes that object; `PoseConvention.from_metadata` is the one reader of it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from . import layouts
from .errors import InputError, WeightsError


@dataclass(frozen=True)
class PoseConvention:
    """A weight file's `pose` metadata, typed; every field None (or False) where the file does not say.

    joints (J names) and dims (D) are both given, with J*D = P, or neither. root_joints are as stated (None:
    not stated, the root is joint 0); they are checked against the poses' J only when poses are normalised
    (`root_indices`), as a model without joints takes the J of its keyframes."""

    skeleton: str | None = None
    joints: tuple[str, ...] | None = None
    dims: int | None = None
    units: str | None = None            # "mm", "m", "px", "normalised" or "6d" (see UNITS)
    parents: tuple[int, ...] | None = None
    root_relative: bool = False
    root_joints: tuple[Any, ...] | None = None
    image_normalised: bool = False

    @classmethod
    def from_metadata(cls, pose: Mapping[str, Any], P: int | None = None) -> "PoseConvention":
        """The typed reading of the JSON object; with P, WeightsError unless joints and dims are absent or
        describe P values (as the C++ loader checks). A field of another type than its own is a WeightsError
        too (null: not stated), so that a malformed file is refused, never read as something else."""
        for key, (ok, expected) in _FIELD_TYPES.items():
            if pose.get(key) is not None and not ok(pose[key]):
                raise WeightsError(f"metadata pose {key!r} is {pose[key]!r}: expected {expected}")
        joints, dims = pose.get("joints"), pose.get("dims")
        if P is not None and ("joints" in pose or "dims" in pose):  # present, even as null, they must describe P
            if joints is None or dims is None or dims < 1 or len(joints) * dims != P:
                raise WeightsError(f"metadata pose has joints={joints!r}, dims={dims!r}: expected a list of J "
                                   f"joint names and D dims with J*D = P = {P}")
        known = joints is not None and dims is not None
        roots, parents = pose.get("root_joints"), pose.get("parents")
        if roots is not None and pose.get("root_relative") is True:
            roots = _stated_roots(roots, joints if known else None)
        return cls(skeleton=pose.get("skeleton"), joints=tuple(joints) if known else None,
                   dims=dims if known else None, units=pose.get("units"),
                   parents=None if parents is None else tuple(parents), root_relative=bool(pose.get("root_relative")),
                   root_joints=None if roots is None else tuple(roots),
                   image_normalised=bool(pose.get("image_normalised")))

    @property
    def shape(self) -> tuple[int, int] | None:
        """(J joints, D dims), or None when the file does not say."""
        return None if self.joints is None or self.dims is None else (len(self.joints), self.dims)

    def root_indices(self, J: int) -> list[int] | None:
        """The joints whose mean is subtracted from poses of J joints; None for poses that are not
        root-relative. InputError when the stated root joints do not index J joints."""
        if not self.root_relative:
            return None
        roots = [0] if self.root_joints is None else list(self.root_joints)
        if not roots or not all(isinstance(r, int) and 0 <= r < J for r in roots):
            raise InputError(f"the model's root_joints {roots!r} do not index {J} joints")
        return roots


def _stated_roots(roots: list, joints: list[str] | None) -> list[int]:
    """A root-relative file's root_joints as indices, names resolved by `joints`; WeightsError unless they
    are one or more distinct joints of the file's (any J's indices when it names no joints)."""
    named = {name: j for j, name in enumerate(joints or [])}
    indices = [named.get(r, -1) if isinstance(r, str) else r for r in roots]
    if not indices or min(indices) < 0 or (joints is not None and max(indices) >= len(joints)) or \
            len(set(indices)) < len(indices):
        within = f"of the file's {len(joints)} joints" if joints is not None else "joint indices >= 0"
        raise WeightsError(f"metadata pose root_joints {roots!r}: expected one or more distinct {within}")
    return indices


def _list_of(*types: type):
    return lambda v: isinstance(v, list) and all(isinstance(x, types) and not isinstance(x, bool) for x in v)


# The type of each pose field (docs/model.md §2), checked by PoseConvention.from_metadata.
_FIELD_TYPES = {
    "skeleton": (lambda v: isinstance(v, str), "a string"),
    "units": (lambda v: isinstance(v, str), "a string"),
    "joints": (_list_of(str), "a list of joint names"),
    "dims": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "parents": (_list_of(int), "a list of parent indices (-1: root)"),
    "root_joints": (_list_of(int, str), "a list of joint indices or names"),
    "root_relative": (lambda v: isinstance(v, bool), "true or false"),
    "image_normalised": (lambda v: isinstance(v, bool), "true or false"),
}


@dataclass(frozen=True)
class Skeleton:
    """joints: names in storage order; parents: index of each joint's parent (-1: root), or None when the
    skeleton has no tree; root_joints: joints whose mean is the root of root-relative 3D poses."""

    name: str
    joints: tuple[str, ...]
    parents: tuple[int, ...] | None
    root_joints: tuple[int, ...]


SKELETONS = {s.name: s for s in (
    Skeleton("h36m17",
             ("pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
              "spine", "thorax", "nose", "head_top", "left_shoulder", "left_elbow", "left_wrist",
              "right_shoulder", "right_elbow", "right_wrist"),
             (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15), (0,)),
    # JHMDB puppet joints in the dataset's order; the tree hangs from the neck.
    Skeleton("jhmdb15",
             ("neck", "belly", "face", "right_shoulder", "left_shoulder", "right_hip", "left_hip",
              "right_elbow", "left_elbow", "right_knee", "left_knee", "right_wrist", "left_wrist",
              "right_ankle", "left_ankle"),
             (-1, 0, 0, 0, 0, 1, 1, 3, 4, 5, 6, 7, 8, 9, 10), ()),
    # The 14 LSP joints used for 3DPW and AIST++ (SPIN, EFT, PARE); no pelvis joint, so the root is
    # the mid-point of the hips, and the tree hangs from the neck.
    Skeleton("lsp14",
             ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
              "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
              "neck", "head_top"),
             (1, 2, 12, 12, 3, 4, 7, 8, 12, 12, 9, 10, -1, 12), (2, 3)),
    Skeleton("smpl24-6d",
             ("pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
              "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
              "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
              "left_wrist", "right_wrist", "left_hand", "right_hand"),
             (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21), ()),
)}
# The keypoint layouts of detectors (msf.layouts) under their own names: 2D keypoints without a tree.
SKELETONS.update({name: Skeleton(name, layouts.get(name).joints, None, ())
                  for name in layouts.names() if name not in SKELETONS})
ALIASES = {"pw3d14": "lsp14", "smpl24": "smpl24-6d"}
GENERIC = "generic"  # joints named joint_0..joint_{J-1}, no tree; needs dims

# The pose of each official configuration (docs/model.md §1; msf.config.OFFICIAL_CONFIGS), by P: (skeleton,
# dims, image-normalised); tests/test_single_source.py checks that these are exactly the P of OFFICIAL_CONFIGS.
# Everything else follows the defaults by dims: 3D positions are root-relative millimetres, 2D ones are
# not root-relative, 6D rotations have units "6d".
OFFICIAL = {
    51: ("h36m17", 3, False),
    30: ("jhmdb15", 2, True),
    42: ("lsp14", 3, False),
    144: ("smpl24-6d", 6, False),
}
UNITS = {2: ("px", "normalised"), 3: ("mm", "m"), 6: ("6d",)}


def _names() -> str:
    return ", ".join([*SKELETONS, GENERIC])


def _root_joints(root_joints: Sequence[int | str], joints: Sequence[str]) -> list[int]:
    indices = []
    for j in root_joints:
        if isinstance(j, str) and not j.lstrip("-").isdigit():
            if j not in joints:
                raise InputError(f"root joint {j!r} is not a joint of this skeleton ({', '.join(joints)})")
            j = joints.index(j)
        j = int(j)
        if not 0 <= j < len(joints):
            raise InputError(f"root joint index {j} is out of range for {len(joints)} joints")
        indices.append(j)
    if len(set(indices)) != len(indices):
        raise InputError(f"root joints {list(root_joints)} repeat a joint")
    return indices


def _option(name: str, value: object = None) -> str:
    """A convert/convention option as both its callers spell it: "dims=5 (--dims 5 on the command line)"."""
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return f"{name}={value} ({flag if value else '--no-' + flag[2:]} on the command line)"
    if value is None:
        return f"{name} ({flag} on the command line)"
    return f"{name}={value!r} ({flag} {value} on the command line)"


def convention(P: int, *, skeleton: str | None = None, dims: int | None = None, units: str | None = None,
               root_joints: Sequence[int | str] | None = None, image_normalised: bool | None = None) -> dict:
    """The pose JSON object for a model with P values per pose. The skeleton defaults to P's official one;
    then 3D: mm, root-relative at the skeleton's root joints; 2D: not root-relative, divided by the image
    size where that is the official convention (JHMDB), else pixels; 6D: rotations ("6d").
    root_joints: indices or names; empty for poses that are not root-relative.
    Raises InputError naming the inconsistent option and what to pass instead."""
    official = OFFICIAL.get(P)
    if skeleton is None:
        if official is None:
            raise InputError(f"P = {P} is not an official configuration, so the pose convention cannot be "
                             f"guessed: pass skeleton (one of {_names()}) and, for {GENERIC}, dims; on the "
                             f"command line --skeleton and --dims")
        skeleton = official[0]
    skeleton = ALIASES.get(skeleton, skeleton)
    if skeleton == GENERIC:
        if dims is None:
            raise InputError(f"skeleton {GENERIC!r} needs {_option('dims')}: values per joint, 2, 3 or 6")
        if dims not in UNITS or P % dims:
            raise InputError(f"{_option('dims', dims)} does not divide P = {P} into joints of 2, 3 or 6 values")
        skel = Skeleton(GENERIC, tuple(f"joint_{j}" for j in range(P // dims)), None, ())
    elif skeleton in SKELETONS:
        skel = SKELETONS[skeleton]
    else:
        raise InputError(f"unknown skeleton {skeleton!r}: choose one of {_names()}")
    J = len(skel.joints)
    if P % J or P // J not in UNITS:
        raise InputError(f"skeleton {skel.name} has {J} joints, which does not divide P = {P} into 2, 3 or 6 "
                         f"values per joint: choose another skeleton, one of {_names()} (--skeleton on the "
                         f"command line)")
    if dims is not None and dims != P // J:
        raise InputError(f"{_option('dims', dims)} disagrees with P = {P} = {J} joints of {skel.name} "
                         f"x {P // J}")
    dims = P // J
    if image_normalised and dims != 2:
        raise InputError(f"image normalisation applies to 2D poses only; these are {dims}D")
    if units is None:
        if dims == 2:
            if image_normalised is None:
                image_normalised = official is not None and official == (skel.name, dims, True)
            units = "normalised" if image_normalised else "px"
        else:
            units = {3: "mm", 6: "6d"}[dims]
    if units not in UNITS[dims]:
        raise InputError(f"units {units!r} do not fit {dims}D values: choose {' or '.join(UNITS[dims])}")
    if image_normalised is None:
        image_normalised = units == "normalised"
    if image_normalised != (units == "normalised"):
        raise InputError(f"units {units!r} contradict {_option('image_normalised', image_normalised)}: 2D "
                         f"poses divided by the image size have units 'normalised'")
    if root_joints is None:
        root_joints = skel.root_joints if dims == 3 else ()
    roots = _root_joints(root_joints, skel.joints)
    pose = {"skeleton": skel.name, "joints": list(skel.joints)}
    if skel.parents is not None:
        pose["parents"] = list(skel.parents)
    pose.update({"dims": dims, "units": units, "root_relative": bool(roots), "root_joints": roots,
                 "image_normalised": image_normalised})
    return pose


def summary(pose: Mapping[str, Any] | PoseConvention) -> str:
    """One line for humans, e.g. 'h36m17: 17 joints x 3D, mm, root-relative at pelvis'; pose: the JSON
    object or its PoseConvention."""
    c = pose if isinstance(pose, PoseConvention) else PoseConvention.from_metadata(pose)
    if c == PoseConvention():
        return "not stated in the file"
    joints = c.joints or ()
    parts = [f"{c.skeleton or '?'}: {len(joints)} joints x {c.dims or '?'}D", c.units or "units not stated"]
    roots = c.root_joints or ()
    if c.root_relative and roots:
        names = [joints[j] if isinstance(j, int) and 0 <= j < len(joints) else str(j) for j in roots]
        parts.append("root-relative at " + ("the mean of " if len(names) > 1 else "") + " and ".join(names))
    if c.image_normalised:
        parts.append("divided by the image (width, height)")
    return ", ".join(parts)
