"""Whole videos: keyframe_indices, recover() on any length, normalisation, missing joints, streaming."""
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import msf
from helpers import OFFICIAL, official_config, random_state_dict
from tolerances import MODEL_ATOL_OF_MAX, assert_close

CONFIG = official_config(*OFFICIAL["pw3d"])  # K=10, Q=5, T=51, P=42 = 14 x 3
K, T = CONFIG.K, CONFIG.T
POSE_3D = {"joints": [f"j{i}" for i in range(14)], "dims": 3, "units": "mm", "root_relative": True,
           "root_joints": [2, 3]}
LENGTHS = [1, 2, K, K + 1, T - 1, T, T + 1, 3 * T + 7]


def linear_interpolation_model(config, pose=None) -> msf.Model:
    """A model whose output is exactly linear interpolation between its keyframes (encoder output zeroed)."""
    tensors = random_state_dict(config, seed=11)
    t = np.arange(config.T) / config.K
    weight = np.maximum(0, 1 - np.abs(t[:, None] - np.arange(config.n_keyframes)[None, :]))
    tensors.update({"l_interp.weight": weight, "l_interp.bias": np.zeros(config.T),
                    "fc.weight": np.zeros_like(tensors["fc.weight"]), "fc.bias": np.zeros(config.P)})
    return msf.Model.from_tensors(tensors, {"pose": json.dumps(pose)} if pose else None)


@pytest.fixture(scope="module")
def refiner(backend):
    return msf.Refiner(msf.Model.from_tensors(random_state_dict(CONFIG, seed=9), {"pose": json.dumps(POSE_3D)}),
                       backend)


@pytest.fixture(scope="module")
def linear(backend):
    return msf.Refiner(linear_interpolation_model(CONFIG, POSE_3D), backend)


def detections(n, seed=0, tracks=None):
    m = len(msf.keyframe_indices(n, K))
    shape = ((tracks,) if tracks else ()) + (m, 14, 3)
    return np.random.default_rng(seed).standard_normal(shape) * 200 + 1500


def linear_motion(frames, seed=0):
    rng = np.random.default_rng(seed)
    start, velocity = rng.standard_normal((14, 3)) * 300, rng.standard_normal((14, 3)) * 5
    return start + velocity * np.asarray(frames, dtype=np.float64)[:, None, None]


@given(n=st.integers(1, 2000), k=st.integers(1, 30))
def test_keyframe_indices(n, k):
    idx = msf.keyframe_indices(n, k)
    assert idx[0] == 0 and idx[-1] == n - 1 and len(idx) <= -(-(n - 1) // k) + 1
    assert (np.diff(idx) > 0).all() and (idx[:-1] % k == 0).all()


@pytest.mark.parametrize("n", [0, -1, 2.5, None, True, np.bool_(True)])
def test_keyframe_indices_refuse_bad_lengths(n):
    with pytest.raises(msf.InputError):
        msf.keyframe_indices(n, 10)


@pytest.mark.parametrize("n", LENGTHS)
def test_every_length_and_layout(refiner, n):
    kf = detections(n)
    out = refiner.recover(kf, n)
    assert out.shape == (n, 14, 3) and out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_array_equal(refiner.recover(kf.reshape(len(kf), 42), n), out.reshape(n, 42))
    both = refiner.recover(np.stack([kf, kf[::-1]]), n)
    assert both.shape == (2, n, 14, 3)
    np.testing.assert_array_equal(both[0], out)
    np.testing.assert_array_equal(both[1], refiner.recover(kf[::-1], n))


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("stride", [1, 2, 5])
def test_linear_motion_is_reproduced_exactly(linear, n, stride):
    """With a linear-interpolation model, any length (short, off-grid end) reproduces linear motion."""
    truth = linear_motion(np.arange(n))
    out = linear.recover(truth[msf.keyframe_indices(n, K)], n, stride=stride)
    assert_close(out, truth, atol_of_max=MODEL_ATOL_OF_MAX, what=f"n={n} stride={stride}")


def test_one_window_is_exactly_refine(backend):
    model = msf.Model.from_tensors(random_state_dict(CONFIG, seed=4))  # no pose convention: no normalisation
    r = msf.Refiner(model, backend)
    kf = np.random.default_rng(3).standard_normal((CONFIG.n_keyframes, 42)) * 100
    np.testing.assert_array_equal(r.recover(kf, T), r.refine(kf))


def test_translation_moves_the_output_rigidly(refiner):
    kf = detections(3 * T + 7)
    shift = np.array([2500.0, -700.0, 4000.0])
    assert_close(refiner.recover(kf + shift, 3 * T + 7), refiner.recover(kf, 3 * T + 7) + shift,
                 atol=1e-3, what="translation (float32 output of ~5 m coordinates: 1e-3 mm)")


def test_missing_joints_and_keyframes_are_filled(linear):
    n = 3 * T + 7
    truth = linear_motion(np.arange(n), seed=2)
    kf = truth[msf.keyframe_indices(n, K)].copy()
    kf[0, 5] = np.nan          # first keyframe: held from the joint's next detection
    kf[4, 2, 1] = np.nan       # one coordinate marks the whole joint missing
    kf[7] = np.nan             # a whole keyframe
    kf[8, 3] = np.nan
    kf[-1, 9] = np.nan         # the off-grid last one
    out = linear.recover(kf, n)
    assert np.isfinite(out).all()
    # between detections the fill is linear, so linear motion is exact there; at the ends a missing
    # joint is held from its nearest detection (not extrapolated), so only the other joints are exact
    assert_close(out[K:-K], truth[K:-K], atol_of_max=MODEL_ATOL_OF_MAX, what="filled interior")
    assert_close(out[0, 5], truth[K, 5], atol_of_max=MODEL_ATOL_OF_MAX, what="held at the start")


def test_joint_missing_everywhere_is_refused(refiner):
    kf = detections(100)
    kf[:, 4] = np.nan
    with pytest.raises(msf.InputError, match=r"joints \[4\]"):
        refiner.recover(kf, 100)


@pytest.mark.parametrize("n", [1, K + 1, T, 3 * T + 7])
@pytest.mark.parametrize("stride", [1, 3])
def test_stream_equals_offline(refiner, backend, n, stride):
    kf = detections(n, seed=n)
    if len(kf) > 2:
        kf[len(kf) // 2, 3] = np.nan
    offline = refiner.recover(kf, n, stride=stride)
    stream = refiner.stream(stride=stride)
    off_grid = (n - 1) % K != 0
    parts = [stream.push(k) for k in (kf[:-1] if off_grid else kf)]
    parts.append(stream.finish(n, kf[-1] if off_grid else None))
    online = np.concatenate(parts)
    if backend == "cpp":  # windows are computed bit-identically alone or in a batch
        np.testing.assert_array_equal(online, offline)
    assert_close(online, offline, atol_of_max=MODEL_ATOL_OF_MAX, what="stream vs recover")
    if n > 2 * T:  # frames come out before the end, with the documented latency
        ready = np.cumsum([len(p) for p in parts[:-1]])
        pushed = np.arange(1, len(ready) + 1)
        latest = (pushed - 1) * K  # frame of the detection just pushed
        assert ready.max() > 0 and (ready <= np.maximum(0, latest - (CONFIG.Q + 1) * K + K)).all()


def test_stream_errors(refiner):
    s = refiner.stream()
    with pytest.raises(msf.InputError, match="before any push"):
        s.finish()
    s.push(detections(1)[0])
    with pytest.raises(msf.InputError, match="need"):
        s.finish(25)  # off-grid end without last_keyframe
    with pytest.raises(msf.InputError, match="shape"):
        s.push(np.zeros((13, 3)))
    with pytest.raises(msf.InputError, match="not an array"):
        s.push([[1.0, 2.0, 3.0], [4.0]])
    assert s.finish().shape == (1, 14, 3)
    with pytest.raises(msf.InputError, match="finished"):
        s.push(detections(1)[0])


def test_wrong_keyframe_count_and_arguments(refiner):
    with pytest.raises(msf.InputError, match="keyframe_indices"):
        refiner.recover(detections(100)[:-1], 100)
    with pytest.raises(msf.InputError, match="stride"):
        refiner.recover(detections(100), 100, stride=CONFIG.Q + 1)
    with pytest.raises(msf.InputError, match="infinite"):
        refiner.recover(np.full((11, 14, 3), np.inf), 101)
    with pytest.raises(msf.InputError, match="shape"):
        refiner.recover(np.zeros((11, 13, 3)), 101)
    with pytest.raises(msf.InputError, match="image_size"):
        refiner.recover(detections(100), 100, image_size=(640, 480))


def test_metres_given_to_a_millimetre_model_warn(refiner):
    with pytest.warns(RuntimeWarning, match="metres"):
        refiner.recover(detections(100) / 1000, 100)


def test_2d_image_normalisation(backend):
    config = official_config(10, 1, 30, 16, 2)  # jhmdb-like: 15 joints x 2D
    pose = {"joints": [f"j{i}" for i in range(15)], "dims": 2, "units": "px", "image_normalised": True}
    r = msf.Refiner(msf.Model.from_tensors(random_state_dict(config, seed=5), {"pose": json.dumps(pose)}), backend)
    n = 37
    kf = np.random.default_rng(1).uniform(0, 1, (len(msf.keyframe_indices(n, 10)), 15, 2)) * [640, 480]
    with pytest.raises(msf.InputError, match="image_size"):
        r.recover(kf, n)
    out = r.recover(kf, n, image_size=(640, 480))
    assert out.shape == (n, 15, 2)
    assert_close(r.recover(kf * 2, n, image_size=(1280, 960)), out * 2, atol_of_max=MODEL_ATOL_OF_MAX,
                 what="scale covariance")


JHMDB_LIKE = official_config(10, 1, 30, 16, 2)  # 15 joints x 2D, image-normalised
POSE_2D = {"joints": [f"j{i}" for i in range(15)], "dims": 2, "units": "px", "image_normalised": True}


@pytest.fixture(scope="module")
def refiner_2d(backend):
    return msf.Refiner(msf.Model.from_tensors(random_state_dict(JHMDB_LIKE, seed=5), {"pose": json.dumps(POSE_2D)}),
                       backend)


def detections_2d(n, scale=640.0, seed=1):
    return np.random.default_rng(seed).uniform(0, 1, (len(msf.keyframe_indices(n, 10)), 15, 2)) * scale


def stream_all(refiner, kf, n, **kwargs):
    s = refiner.stream(**kwargs)
    off_grid = (n - 1) % refiner.config.K != 0
    parts = [s.push(k) for k in (kf[:-1] if off_grid else kf)]
    return np.concatenate(parts + [s.finish(n, kf[-1] if off_grid else None)])


@pytest.mark.parametrize("path", ["recover", "stream"])
def test_values_beyond_float32_are_refused(refiner, path):
    """issue 11: with the NumPy backend recover(keyframes * 1e39) returned non-finite frames with a warning."""
    kf = detections(101) * 1e39
    run = (lambda: refiner.recover(kf, 101)) if path == "recover" else (lambda: stream_all(refiner, kf, 101))
    with pytest.raises(msf.InputError, match="beyond float32 range"):
        run()


@pytest.mark.parametrize("path", ["recover", "stream"])
def test_keyframes_that_overflow_once_normalised_are_refused(refiner, path):
    """Within float32 range, but root-relative coordinates overflow it: refused at the window boundary."""
    kf = detections(101)
    kf[:, :] = 3e38
    kf[:, 2:4] = -3e38  # the root joints: other joints are 6e38 from the root
    run = (lambda: refiner.recover(kf, 101)) if path == "recover" else (lambda: stream_all(refiner, kf, 101))
    with pytest.raises(msf.InputError, match="window starting at frame 0, normalised for the model"):
        run()


@pytest.mark.parametrize("path", ["recover", "stream"])
def test_image_size_that_overflows_the_output_is_refused(refiner_2d, path):
    """issue 11: 2D image_size=(1e300, 1e300) returned non-finite frames on both backends."""
    n = 37
    kf = detections_2d(n)
    with pytest.raises(msf.InputError, match="image_size"):
        refiner_2d.recover(kf, n, image_size=(1e300, 1e300))
    big = (3e38, 3e38)  # within float32, but the model's output times it is not
    run = ((lambda: refiner_2d.recover(kf * 1e35, n, image_size=big)) if path == "recover" else
           (lambda: stream_all(refiner_2d, kf * 1e35, n, image_size=big)))
    with pytest.raises(msf.InputError, match="exceeds float32 range .*image_size"):
        run()


@settings(max_examples=40, deadline=None)
@given(scale=st.integers(-45, 39), size=st.integers(-45, 39), n=st.sampled_from([1, 12, 37]),
       stream=st.booleans())
def test_recover_never_returns_non_finite_frames(refiner_2d, scale, size, n, stream):
    """Any keyframe magnitude and image size: finite frames or an InputError saying why, never NaN."""
    kf = detections_2d(n, 10.0 ** scale)
    image_size = (10.0 ** size, 10.0 ** size)
    try:
        out = stream_all(refiner_2d, kf, n, image_size=image_size) if stream else \
            refiner_2d.recover(kf, n, image_size=image_size)
    except msf.InputError as e:
        assert "float32" in str(e) or "image_size" in str(e)
    else:
        assert out.shape == (n, 15, 2) and np.isfinite(out).all()


@pytest.mark.parametrize("image_size", [(1j, 1), ("1920", "1080"), (True, 1), (1920, False), (0, 1080),
                                        (-1, 1080), (np.nan, 1080), (np.inf, 1), (1e300, 1), (10**400, 1),
                                        (1920,), (1920, 1080, 1), "1920x1080", 1920, None])
def test_bad_image_sizes_are_input_errors(refiner_2d, image_size):
    kf = detections_2d(37)
    with pytest.raises(msf.InputError, match="image_size"):
        refiner_2d.recover(kf, 37, image_size=image_size)
    with pytest.raises(msf.InputError, match="image_size"):
        refiner_2d.stream(image_size=image_size)  # refused at once, not at the first push


def test_good_image_sizes(refiner_2d):
    kf = detections_2d(37)
    expected = refiner_2d.recover(kf, 37, image_size=(640, 480))
    for size in [(640.0, 480.0), np.array([640, 480]), [np.float32(640), np.int16(480)]]:
        np.testing.assert_array_equal(refiner_2d.recover(kf, 37, image_size=size), expected)


@pytest.mark.parametrize("stride", [0, -1, True, False, 2.0, "2", CONFIG.Q + 1])
def test_bad_strides_are_input_errors(refiner, stride):
    """issue 11: stride=0 silently meant 1 and stride=True was accepted."""
    with pytest.raises(msf.InputError, match=f"stride must be an integer from 1 to Q = {CONFIG.Q}"):
        refiner.recover(detections(101), 101, stride=stride)
    with pytest.raises(msf.InputError, match="stride"):
        refiner.stream(stride=stride)


@pytest.mark.parametrize("n", [True, 0, -5, 101.0, "101", None])
def test_bad_lengths_are_input_errors(refiner, n):
    with pytest.raises(msf.InputError, match="n_frames must be an integer >= 1"):
        refiner.recover(detections(1), n)
    s = refiner.stream()
    s.push(detections(1)[0])
    if n is not None:
        with pytest.raises(msf.InputError, match="n_frames must be an integer >= 1"):
            s.finish(n)


def test_huge_lengths_are_refused_before_allocating(refiner):
    """issue 11: recover(kf, 10**9) allocated 1.5 GB before its error; Stream.finish(10**12) raised MemoryError."""
    import tracemalloc
    kf = detections(101)
    tracemalloc.start()
    try:
        with pytest.raises(msf.InputError, match="expected 100000001"):
            refiner.recover(kf, 10**9)
        s = refiner.stream()
        s.push(kf[0])
        with pytest.raises(msf.InputError, match="1000000000000 frames need 100000000001 keyframes"):
            s.finish(10**12)
        with pytest.raises(msf.InputError, match="expected 100000000000001"):
            refiner.recover(kf, np.int64(10**15))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_empty_batch_of_tracks_is_an_input_error(refiner):
    """issue 11: it was a NumPy ValueError from np.stack."""
    with pytest.raises(msf.InputError, match=r"hold no tracks.*N >= 1"):
        refiner.recover(np.zeros((0, 11, 14, 3)), 101)
    with pytest.raises(msf.InputError, match="hold no tracks"):
        refiner.recover(np.zeros((0, 11, 42)), 101)


def test_flat_keyframes_stream(refiner):
    """Pushing (P,) keyframes returns (F, P) frames, also when F = 0."""
    kf = detections(3 * T + 7)
    flat = stream_all(refiner, kf.reshape(len(kf), 42), 3 * T + 7)
    np.testing.assert_array_equal(flat, stream_all(refiner, kf, 3 * T + 7).reshape(-1, 42))


def test_low_scores_are_missing_joints(refiner_2d):
    """scores below min_score give exactly what NaN at those joints gives; NaN scores keep their joints;
    (M, J, 3) (x, y, score) keyframes are the same as keyframes plus scores; tracks take (N, M, J) scores."""
    n = 37
    kf = detections_2d(n)
    scores = np.random.default_rng(3).uniform(0.5, 1.0, kf.shape[:2])
    scores[1, 4] = 0.2
    scores[2, 7] = np.nan
    gone = kf.copy()
    gone[1, 4] = np.nan
    want = refiner_2d.recover(gone, n, image_size=(640, 480))
    got = refiner_2d.recover(kf, n, image_size=(640, 480), scores=scores)
    assert np.array_equal(got, want)
    assert np.array_equal(refiner_2d.recover(np.concatenate([kf, scores[..., None]], -1), n, image_size=(640, 480)),
                          want)
    assert np.array_equal(refiner_2d.recover(kf, n, image_size=(640, 480), scores=scores, min_score=0.1),
                          refiner_2d.recover(kf, n, image_size=(640, 480)))
    both = refiner_2d.recover(np.stack([kf, gone]), n, image_size=(640, 480), scores=np.stack([scores, scores]))
    assert np.array_equal(both[0], want) and np.array_equal(both[1], want)


@pytest.mark.parametrize("scores, min_score, match", [
    (np.ones((4, 15)), 0.3, "scores have shape"),
    (np.full((5, 15), np.inf), 0.3, "infinite"),
    (np.ones((5, 15)), float("nan"), "min_score"),
    (np.ones((5, 15)), "0.3", "min_score"),
    (np.array([["a"] * 15] * 5), 0.3, "dtype"),
])
def test_bad_scores_are_input_errors(refiner_2d, scores, min_score, match):
    with pytest.raises(msf.InputError, match=match):
        refiner_2d.recover(detections_2d(41), 41, image_size=(640, 480), scores=scores, min_score=min_score)


def test_scores_twice_are_refused(refiner_2d):
    kf = detections_2d(41)
    with pytest.raises(msf.InputError, match="one of them"):
        refiner_2d.recover(np.concatenate([kf, np.ones(kf.shape[:2])[..., None]], -1), 41, image_size=(640, 480),
                           scores=np.ones(kf.shape[:2]))


def _chunk_lengths(per_call: int, stride: int) -> list[int]:
    """Video lengths whose window count is around 1 and 2 chunks of per_call windows."""
    lengths = set()
    for windows in (per_call - 1, per_call, per_call + 1, 2 * per_call, 2 * per_call + 1):
        grid = (max(1, windows) - 1) * stride + CONFIG.Q + 1  # grid points giving that many regular windows
        for n in ((grid - 1) * K + 1, (grid - 1) * K, (grid - 1) * K + 2):
            lengths.add(max(1, n))
    return sorted(lengths)


@pytest.mark.parametrize("per_call", [1, 2, 3, 5])
@pytest.mark.parametrize("stride", [1, 2])
def test_chunked_recover_equals_one_call(refiner, monkeypatch, per_call, stride):
    """recover runs WINDOWS_PER_CALL windows at a time: any chunk size gives the same frames, bit for bit,
    at lengths around chunk boundaries, for several tracks (batched into one call), with missing joints,
    low scores and look-ahead blocks (SCAN_ROWS) smaller than the gaps; and they equal Stream's."""
    from msf import recover
    for n in _chunk_lengths(per_call, stride):
        kf = detections(n, seed=n, tracks=3)
        rng = np.random.default_rng(n)
        kf[rng.random(kf.shape[:-1]) < 0.2] = np.nan
        kf[1, 1:-1, 5] = np.nan  # a gap across every chunk, between detections at both ends
        kf[1, [0, -1], 5] = 1500.0
        kf[2, :, 7] = 1000.0
        scores = rng.uniform(0.2, 1.0, kf.shape[:-1])
        scores[1, [0, -1], 5] = 1.0
        monkeypatch.setattr(recover, "WINDOWS_PER_CALL", 10**9)
        monkeypatch.setattr(recover, "SCAN_ROWS", 4096)
        whole = refiner.recover(kf, n, stride=stride, scores=scores)
        monkeypatch.setattr(recover, "WINDOWS_PER_CALL", per_call * 3)  # per_call windows per track
        monkeypatch.setattr(recover, "SCAN_ROWS", 2)
        np.testing.assert_array_equal(refiner.recover(kf, n, stride=stride, scores=scores), whole, err_msg=f"n={n}")
        masked = np.where((scores < 0.3)[..., None], np.nan, kf)
        for t in range(3):
            np.testing.assert_array_equal(refiner.recover(masked[t], n, stride=stride), whole[t], err_msg=f"n={n}")
            np.testing.assert_array_equal(stream_all(refiner, masked[t], n, stride=stride), whole[t],
                                          err_msg=f"n={n}: stream")


def test_recover_memory_is_bounded():
    """Beyond its input and output, recover holds a bounded amount of memory (chunks of windows), whatever
    the video's length: a stand-in for the model keeps this fast on either backend."""
    import tracemalloc

    from msf import recover
    from msf.pose import PoseConvention
    config = CONFIG

    def stand_in(windows):  # (B, Q+1, P) -> (B, T, P): each window's first keyframe, repeated
        return np.repeat(windows[:, :1], config.T, axis=1)

    peaks = []
    for n in (20_001, 200_001):
        kf = detections(n)
        kf[::7, 3] = np.nan
        tracemalloc.start()
        out = recover.recover(config, stand_in, PoseConvention.from_metadata(POSE_3D), kf, n)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        peaks.append(peak - out.nbytes)
    assert peaks[1] < 16 << 20 and peaks[1] < peaks[0] + (2 << 20), f"working memory {peaks} bytes"


def test_a_push_that_raises_leaves_the_stream_as_it_was(refiner_2d):
    """The window that takes a keyframe overflowing float32 once normalised is refused; the stream goes on
    as if that keyframe had never been pushed (it had counted it, and every later push failed)."""
    n, size = 61, (1e-30, 1e-30)
    kf = detections_2d(n) * 1e-30
    bad = kf[6] * 1e40  # the 7th keyframe: Q = 1, so the window of grid points 5 and 6 runs on its push
    s = refiner_2d.stream(image_size=size)
    parts = [s.push(k) for k in kf[:6]]
    with pytest.raises(msf.InputError, match="window starting at frame 50"):
        s.push(bad)
    assert s.pushed == 6
    parts += [s.push(k) for k in kf[6:]] + [s.finish()]
    np.testing.assert_array_equal(np.concatenate(parts), refiner_2d.recover(kf, n, image_size=size))


def test_a_failed_finish_can_be_retried(refiner):
    """finish() refusing a joint never detected leaves the stream open for the missing detections."""
    kf = detections(31)
    first = kf.copy()
    first[:-1, 5] = np.nan
    s = refiner.stream()
    parts = [s.push(k) for k in first[:-1]]
    with pytest.raises(msf.InputError, match=r"joints \[5\] are missing"):
        s.finish()
    parts += [s.push(first[-1]), s.finish()]
    np.testing.assert_array_equal(np.concatenate(parts), refiner.recover(first, 31))
    with pytest.raises(msf.InputError, match="already called"):
        s.finish()  # a second finish gave an empty array


def test_streams_take_scored_keypoints_as_recover_does(refiner_2d):
    """(J, 3) = x, y, score keyframes: joints scored below min_score are missing, in streams as in recover."""
    n = 61
    rng = np.random.default_rng(3)
    kf = np.concatenate([detections_2d(n), rng.uniform(0, 1, (len(msf.keyframe_indices(n, 10)), 15, 1))], axis=2)
    kf[:, 0, 2] = 0.9  # joint 0 is seen everywhere, so the live stream's first keyframe is complete
    kf[0, :, 2] = 0.9
    for min_score in (0.3, 0.6):
        expected = refiner_2d.recover(kf, n, image_size=(640, 480), min_score=min_score)
        got = stream_all(refiner_2d, kf, n, image_size=(640, 480), min_score=min_score)
        np.testing.assert_array_equal(got, expected)
        assert refiner_2d.stream(latency="keyframe", image_size=(640, 480), min_score=min_score).push(kf[0]).shape \
            == (1, 15, 2)
    with pytest.raises(msf.InputError, match="min_score"):
        refiner_2d.stream(image_size=(640, 480), min_score=float("nan"))


def test_arrays_that_would_be_misread_are_refused(refiner, refiner_2d):
    masked = np.ma.masked_array(detections(21), mask=False)
    masked.mask[1, 3] = True
    with pytest.raises(msf.InputError, match="masked array"):
        refiner.recover(masked, 21)  # np.asarray dropped the mask: the values under it were used
    with pytest.raises(msf.InputError, match="image_size"):
        refiner_2d.recover(detections_2d(37), 37, image_size={640: 1, 480: 2})  # its keys were used
    with pytest.raises(msf.InputError, match=r"expected \(M, 14, 3\) or \(M, 42\) for one person, "
                                             r"\(N, M, 14, 3\) or \(N, M, 42\) for N people"):
        refiner.recover(detections(21)[None, None], 21)
    with pytest.raises(msf.InputError, match=r"keyframe: shape \(13, 3\); expected \(14, 3\) or \(42,\)"):
        refiner.stream().push(np.zeros((13, 3)))


def test_a_long_stream_holds_bounded_state(refiner):
    """A stream kept every detection and the sums of every frame: ~5 KB per keyframe, 60 MB an hour at
    30 fps. It now holds what a later push or finish reads (a gap in a joint holds back to its last
    detection), and gives the same frames."""
    kf = detections(15001)  # 1501 keyframes
    kf[500:700, 4] = np.nan  # a 200-keyframe gap
    s = refiner.stream()
    parts, held = [], []
    for k in kf:
        parts.append(s.push(k))
        held.append(len(s._track.raw.items) + len(s._track.counts) // K)
    parts.append(s.finish())
    np.testing.assert_array_equal(np.concatenate(parts), refiner.recover(kf, 15001))
    bound = 2 * (CONFIG.Q + 2) + 4 + 2  # keyframes held plus frames held / K, without a gap
    assert max(held[:500] + held[800:]) <= bound and max(held) >= 200
