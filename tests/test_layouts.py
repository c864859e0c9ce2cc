"""Keypoint layouts (msf.layouts): joint sets, left/right pairs, skeletons and conversions."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import msf
from helpers import MOTION_VAL
from msf import layouts


@pytest.mark.parametrize("name", layouts.names())
def test_layout_is_consistent(name):
    layout = layouts.get(name)
    assert len(set(layout.joints)) == layout.J
    for a, b in layout.flip_pairs:
        assert layout.joints[a].startswith("left_") and layout.joints[b] == "right_" + layout.joints[a][5:]
    mirror = layout.mirror
    assert sorted(mirror) == list(range(layout.J)) and (mirror[mirror] == np.arange(layout.J)).all()
    # every joint is drawn, and the drawing is connected (BlazePose's own leaves the face and mouth apart)
    edges = layout.skeleton
    assert {i for e in edges for i in e} == set(range(layout.J))
    if name == "blazepose33":
        return
    reached, frontier = {0}, [0]
    while frontier:
        j = frontier.pop()
        for a, b in edges:
            for x, y in ((a, b), (b, a)):
                if x == j and y not in reached:
                    reached.add(y)
                    frontier.append(y)
    assert reached == set(range(layout.J))


def _convertible(source, target):
    try:
        layouts.conversion_matrix(source, target)
        return True
    except msf.InputError:
        return False


def test_detector_layouts_by_joint_count():
    assert layouts.from_joint_count(17).name == "coco17"
    assert layouts.from_joint_count(25).name == "body25"
    assert layouts.from_joint_count(26).name == "halpe26"
    assert layouts.from_joint_count(33).name == "blazepose33"
    with pytest.raises(msf.InputError, match="18 keypoints"):
        layouts.from_joint_count(18)


def test_coco_order_is_the_annotation_order():
    coco = layouts.get("coco17").joints
    assert coco[:5] == ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
    assert coco[5:] == tuple(f"{s}_{j}" for j in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
                             for s in ("left", "right"))


@pytest.mark.parametrize("source", ["halpe26", "body25", "blazepose33"])
def test_detector_layouts_convert_to_coco_by_name(source):
    src = layouts.get(source)
    kp = np.random.default_rng(0).normal(size=(4, src.J, 2))
    out = layouts.convert(kp, source, "coco17")
    for i, joint in enumerate(layouts.get("coco17").joints):
        np.testing.assert_array_equal(out[:, i], kp[:, src.index(joint)])


def test_coco_to_h36m_formulas():
    coco = layouts.get("coco17")
    kp = np.random.default_rng(1).normal(size=(3, 17, 3))
    out = layouts.convert(kp, "coco17", "h36m17")
    h36m = layouts.get("h36m17")
    j = {name: kp[:, coco.index(name)] for name in coco.joints}
    np.testing.assert_allclose(out[:, h36m.index("pelvis")], (j["left_hip"] + j["right_hip"]) / 2)
    np.testing.assert_allclose(out[:, h36m.index("thorax")], (j["left_shoulder"] + j["right_shoulder"]) / 2)
    np.testing.assert_allclose(out[:, h36m.index("spine")], (out[:, 0] + out[:, h36m.index("thorax")]) / 2)
    np.testing.assert_allclose(out[:, h36m.index("nose")], (j["left_eye"] + j["right_eye"]) / 2)
    np.testing.assert_array_equal(out[:, h36m.index("left_wrist")], j["left_wrist"])


@settings(max_examples=30, deadline=None)
@given(st.sampled_from([(s, t) for s in layouts.names() for t in layouts.names() if _convertible(s, t)]),
       st.floats(-1e4, 1e4), st.floats(-1e4, 1e4))
def test_conversions_commute_with_translation(pair, dx, dy):
    source, target = pair
    kp = np.random.default_rng(2).normal(size=(2, layouts.get(source).J, 2)) * 100
    shift = np.array([dx, dy])
    np.testing.assert_allclose(layouts.convert(kp + shift, source, target),
                               layouts.convert(kp, source, target) + shift, atol=1e-6 * (1 + abs(dx) + abs(dy)))


def test_missing_joints_and_scores_propagate():
    kp = np.random.default_rng(3).normal(size=(2, 17, 2))
    scores = np.full((2, 17), 0.9)
    kp[0, layouts.get("coco17").index("left_hip")] = np.nan
    scores[1, layouts.get("coco17").index("right_shoulder")] = 0.2
    out, sc = layouts.convert(kp, "coco17", "h36m17", scores)
    h36m = layouts.get("h36m17")
    missing = {h36m.joints[i] for i in np.flatnonzero(np.isnan(out[0]).any(axis=-1))}
    assert missing == {"pelvis", "spine", "left_hip"}
    assert not np.isnan(out[1]).any()
    assert sc[1, h36m.index("thorax")] == pytest.approx(0.2) and sc[1, h36m.index("head_top")] == pytest.approx(0.2)
    assert sc[1, h36m.index("pelvis")] == pytest.approx(0.9)


def test_impossible_conversion_names_the_joint():
    with pytest.raises(msf.InputError, match="h36m17 has no 'left_eye'"):
        layouts.convert(np.zeros((1, 17, 2)), "h36m17", "coco17")
    with pytest.raises(msf.InputError, match="unknown keypoint layout"):
        layouts.get("coco18")
    with pytest.raises(msf.InputError, match=r"\(\.\.\., 17, D\)"):
        layouts.convert(np.zeros((1, 18, 2)), "coco17", "h36m17")


@pytest.mark.skipif(not MOTION_VAL.exists(), reason="../shared/data is not beside the checkout")
def test_coco_to_h36m_on_motion_capture():
    """COCO-17 built from the mocap points, converted to H36M-17: limbs exact, derived joints close."""
    data = np.load(MOTION_VAL)
    h36m, extra = data["seq_0000"].astype(np.float64), data["extra_0000"].astype(np.float64)
    names = [str(n) for n in data["extra_joint_names"]]
    points = {n: h36m[:, i] for i, n in enumerate(layouts.get("h36m17").joints)}
    points.update({("nose" if n == "nose_tip" else n): extra[:, i] for i, n in enumerate(names)})
    coco = np.stack([points[j] for j in layouts.get("coco17").joints], axis=1)
    out = layouts.convert(coco, "coco17", "h36m17")
    error = np.linalg.norm(out - h36m, axis=-1).mean(axis=0)                 # mm per joint
    by_name = dict(zip(layouts.get("h36m17").joints, error))
    assert max(by_name[j] for j in by_name if j.startswith(("left_", "right_"))) < 1e-3
    assert by_name["nose"] < 1e-2            # the mocap's H36M nose is the mid-eyes point
    assert by_name["head_top"] < 40 and by_name["pelvis"] < 40 and by_name["thorax"] < 80
