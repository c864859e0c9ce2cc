"""The low-latency stream (Refiner.stream(latency="keyframe")): bounded delay, the frames of the window
ending on each detection, missing joints held, clear errors."""
import json

import numpy as np
import pytest

import msf
from helpers import OFFICIAL, official_config, random_state_dict
from tolerances import MODEL_ATOL_OF_MAX, assert_close

CONFIG = official_config(*OFFICIAL["pw3d"])  # K=10, Q=5, T=51, P=42 = 14 x 3
K, Q = CONFIG.K, CONFIG.Q
POSE_3D = {"joints": [f"j{i}" for i in range(14)], "dims": 3, "units": "mm", "root_relative": True,
           "root_joints": [2, 3]}


@pytest.fixture(scope="module")
def plain(backend):
    """No pose convention: keyframes go to the model as they are."""
    return msf.Refiner(msf.Model.from_tensors(random_state_dict(CONFIG, seed=3)), backend)


@pytest.fixture(scope="module")
def rooted(backend):
    return msf.Refiner(msf.Model.from_tensors(random_state_dict(CONFIG, seed=4), {"pose": json.dumps(POSE_3D)}),
                       backend)


def keyframes(m, seed=0):
    return np.random.default_rng(seed).normal(0, 300, (m, 14, 3))


def test_each_frame_within_k_frames_of_its_detection(plain):
    """The push of the detection at frame qK returns exactly frames (q-1)K+1 .. qK (frame 0 first): no
    frame waits more than `latency` = K frames, and every frame comes out once."""
    stream = plain.stream(latency="keyframe")
    assert stream.latency == K
    emitted = 0
    for q, pose in enumerate(keyframes(3 * Q + 2)):
        out = stream.push(pose)
        first, last = emitted, emitted + len(out) - 1
        assert last == q * K and q * K - first <= stream.latency, (q, first, last)
        emitted += len(out)
    assert stream.pushed == 3 * Q + 2


def test_frames_are_those_of_the_window_ending_on_the_detection(plain):
    kf = keyframes(2 * Q + 3, seed=1)
    stream = plain.stream(latency="keyframe")
    pushed = [stream.push(p) for p in kf]
    for q in range(Q, len(kf)):
        want = plain.refine(kf[q - Q:q + 1])[(Q - 1) * K + 1:Q * K + 1]
        assert_close(pushed[q], want, atol_of_max=MODEL_ATOL_OF_MAX, what=f"push {q}")
    for q in range(1, Q):  # a video shorter than a window: padded by repeating its newest keyframe
        window = np.concatenate([kf[:q + 1], np.repeat(kf[q:q + 1], Q - q, axis=0)])
        assert_close(pushed[q], plain.refine(window)[(q - 1) * K + 1:q * K + 1], atol_of_max=MODEL_ATOL_OF_MAX,
                     what=f"short push {q}")
    assert_close(pushed[0], plain.refine(np.repeat(kf[:1], Q + 1, axis=0))[:1], atol_of_max=MODEL_ATOL_OF_MAX,
                 what="first push")


def test_translation_moves_the_output_rigidly(rooted):
    kf = keyframes(Q + 4, seed=2)
    shift = np.array([1000.0, -250.0, 40.0])
    s1, s2 = rooted.stream(latency="keyframe"), rooted.stream(latency="keyframe")
    a = np.concatenate([s1.push(p) for p in kf])
    b = np.concatenate([s2.push(p + shift) for p in kf])
    assert_close(b, a + shift, atol_of_max=MODEL_ATOL_OF_MAX, what="translated")


def test_missing_joints_hold_their_last_detection(plain):
    kf = keyframes(Q + 3, seed=3)
    gone = kf.copy()
    gone[4, 7] = np.nan
    held = kf.copy()
    held[4, 7] = kf[3, 7]
    s_gone, s_held = plain.stream(latency="keyframe"), plain.stream(latency="keyframe")
    assert np.array_equal(np.concatenate([s_gone.push(p) for p in gone]),
                          np.concatenate([s_held.push(p) for p in held]))


def test_errors(plain, rooted):
    with pytest.raises(msf.InputError, match="first keyframe"):
        first = keyframes(1)[0]
        first[2] = np.nan
        plain.stream(latency="keyframe").push(first)
    with pytest.raises(msf.InputError, match="stride"):
        plain.stream(latency="keyframe", stride=2)
    with pytest.raises(msf.InputError, match="latency"):
        plain.stream(latency="frame")
    s = plain.stream(latency="keyframe")
    s.push(keyframes(1)[0])
    with pytest.raises(msf.InputError, match="differs"):
        s.push(keyframes(1)[0].reshape(-1))
    with pytest.raises(msf.InputError):
        plain.stream(latency="keyframe").push(np.full((14, 3), np.inf))


def test_a_push_that_raises_leaves_the_stream_as_it_was(rooted):
    """A keyframe beyond float32 once normalised is refused; the next pushes give what they would have given
    had it never been pushed (it was counted and kept in the window)."""
    kf = keyframes(8)
    fresh = rooted.stream(latency="keyframe")
    expected = [fresh.push(k) for k in kf]
    bad = np.full((14, 3), 3e38)
    bad[2:4] = -3e38  # the root joints: the others are 6e38 from the root
    s = rooted.stream(latency="keyframe")
    got = [s.push(k) for k in kf[:4]]
    with pytest.raises(msf.InputError, match="exceeds float32 range"):
        s.push(bad)
    assert s.pushed == 4
    first = rooted.stream(latency="keyframe")
    with pytest.raises(msf.InputError, match="exceeds float32 range"):  # was an AttributeError on a first push
        first.push(bad)
    assert first.pushed == 0
    got += [s.push(k) for k in kf[4:]]
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


def test_image_size_is_checked_when_the_stream_is_made():
    config = official_config(10, 1, 30, 16, 2)
    pose = {"joints": [f"j{i}" for i in range(15)], "dims": 2, "units": "px", "image_normalised": True}
    refiner = msf.Refiner(msf.Model.from_tensors(random_state_dict(config, seed=5), {"pose": json.dumps(pose)}))
    for size in [None, (0, 480), (640,)]:
        with pytest.raises(msf.InputError, match="image_size"):
            refiner.stream(latency="keyframe", image_size=size)  # was refused at the first push only
