"""The public API: accepted layouts and dtypes, clear errors for bad input, backend selection."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

import msf
from helpers import HAS_CPP, OFFICIAL, official_config, random_state_dict, requires_cpp

CONFIG = official_config(*OFFICIAL["pw3d"])  # K=10, Q=5, P=42: T=51, 6 keyframes
POSE = {"skeleton": "test14", "joints": [f"j{i}" for i in range(14)], "dims": 3, "units": "mm"}


@pytest.fixture(scope="module")
def refiner(backend):
    model = msf.Model.from_tensors(random_state_dict(CONFIG, seed=1), {"pose": json.dumps(POSE)})
    return msf.Refiner(model, backend)


@pytest.fixture(scope="module")
def keyframes():
    return np.random.default_rng(2).standard_normal((4, 6, 42)) * 300


def test_properties(refiner, backend):
    assert refiner.backend == backend
    assert refiner.config.T == 51 and refiner.config.n_keyframes == 6 and refiner.config.K == 10
    assert refiner.pose["units"] == "mm"


def test_every_layout_gives_the_same_numbers(refiner, keyframes):
    batched = refiner.refine(keyframes)
    assert batched.shape == (4, 51, 42) and batched.dtype == np.float32
    np.testing.assert_array_equal(refiner.refine(keyframes.reshape(4, 6, 14, 3)), batched.reshape(4, 51, 14, 3))
    single = refiner.refine(keyframes[1])
    assert single.shape == (51, 42)
    np.testing.assert_allclose(single, batched[1], rtol=0, atol=1e-5 * np.abs(batched).max())
    assert refiner.refine(keyframes[1].reshape(6, 14, 3)).shape == (51, 14, 3)


def test_dtypes_and_memory_layouts(refiner, keyframes):
    expected = refiner.refine(keyframes.astype(np.float32))
    np.testing.assert_array_equal(refiner.refine(keyframes), expected)               # float64 in
    np.testing.assert_array_equal(refiner.refine(np.asfortranarray(keyframes)), expected)
    wide = np.zeros((4, 6, 84))
    wide[:, :, ::2] = keyframes
    np.testing.assert_array_equal(refiner.refine(wide[:, :, ::2]), expected)         # strided view
    np.testing.assert_array_equal(refiner.refine(keyframes.tolist()), expected)        # nested lists
    ints = np.round(keyframes).astype(np.int32)
    np.testing.assert_array_equal(refiner.refine(ints), refiner.refine(ints.astype(np.float32)))


def test_input_is_not_modified(refiner, keyframes):
    kf = keyframes.astype(np.float32)
    before = kf.copy()
    refiner.refine(kf)
    np.testing.assert_array_equal(kf, before)


def test_empty_batch(refiner):
    assert refiner.refine(np.zeros((0, 6, 42))).shape == (0, 51, 42)


@pytest.mark.parametrize("shape", [(5, 42), (7, 42), (6, 41), (6, 14, 2), (6, 7, 6), (2, 6, 43), (2, 5, 42),
                                   (6,), (), (1, 1, 6, 42), (2, 6, 14, 4), (0, 42)])
def test_wrong_shapes_name_the_expected_shape(refiner, shape):
    with pytest.raises(msf.InputError, match=r"\(6, 42\).*\(6, 14, 3\).*\(B, 6, 42\)"):
        refiner.refine(np.zeros(shape))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1e300])
def test_non_finite_values_are_refused(refiner, keyframes, value):
    bad = keyframes.copy()
    bad[2, 3, 7] = value
    with pytest.raises(msf.InputError, match="window 2, keyframe 3"):
        refiner.refine(bad)


@pytest.mark.parametrize("bad", [np.array([["a"] * 42] * 6), np.zeros((6, 42), complex), np.zeros((6, 42), bool),
                                 np.array([None] * 6), [[1, 2], [3]], "keyframes", None])
def test_non_numeric_input_is_refused(refiner, bad):
    with pytest.raises(msf.InputError):
        refiner.refine(bad)


def test_errors_are_value_errors_and_share_a_base():
    assert issubclass(msf.InputError, ValueError) and issubclass(msf.InputError, msf.Error)
    assert issubclass(msf.WeightsError, ValueError) and issubclass(msf.WeightsError, msf.Error)


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(0, 3), layout=st.sampled_from(["flat", "joints"]), batched=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64, np.int16]), seed=st.integers(0, 2**31))
def test_output_layout_mirrors_input(refiner, batch, layout, batched, dtype, seed):
    pose = (42,) if layout == "flat" else (14, 3)
    shape = ((batch,) if batched else ()) + (6,) + pose
    kf = (np.random.default_rng(seed).standard_normal(shape) * 100).astype(dtype)
    out = refiner.refine(kf)
    assert out.shape == ((batch,) if batched else ()) + (51,) + pose and out.dtype == np.float32
    assert np.isfinite(out).all()


def test_backend_names():
    names = msf.backends()
    assert "numpy" in names and (("cpp" in names) == HAS_CPP)
    model = msf.Model.from_tensors(random_state_dict(CONFIG))
    with pytest.raises(msf.InputError, match="unknown backend 'gpu'") as e:  # a bad argument
        msf.Refiner(model, "gpu")
    assert isinstance(e.value, msf.BackendError)  # what it was before errors.py's rule: still caught as that
    assert msf.Refiner(model, "numpy").backend == "numpy"
    if HAS_CPP:
        assert msf.Refiner(model, "cpp").backend == "cpp"


def run_python(code: str, **env) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, **env}, check=True)
    return result.stdout.strip() + result.stderr


def test_environment_variable_sets_auto(tmp_path):
    path = tmp_path / "m.safetensors"
    msf.weights.write(path, random_state_dict(CONFIG))
    code = f"import msf; print(msf.Refiner.load({str(path)!r}).backend)"
    assert run_python(code, MSF_BACKEND="numpy").startswith("numpy")
    if HAS_CPP:
        assert run_python(code, MSF_BACKEND="cpp").startswith("cpp")
    assert "unknown backend" in subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                               env={**os.environ, "MSF_BACKEND": "tpu"}).stderr


def test_missing_extension_falls_back_with_one_warning(tmp_path):
    path = tmp_path / "m.safetensors"
    msf.weights.write(path, random_state_dict(CONFIG))
    code = ("import sys; sys.modules['msf._core'] = None\n"
            "import warnings, msf\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            f"    a = msf.Refiner.load({str(path)!r}); b = msf.Refiner.load({str(path)!r})\n"
            "print(a.backend, b.backend, msf.backends(), len(w), w[0].message)\n"
            "try:\n"
            f"    msf.Refiner.load({str(path)!r}, backend='cpp')\n"
            "except msf.BackendError as e:\n"
            "    print('refused:', e)\n")
    env = {k: v for k, v in os.environ.items() if k != "MSF_BACKEND"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.startswith("numpy numpy ['numpy'] 1 msf: the C++ extension is not built"), out
    assert "refused: the C++ backend is not available" in out


@requires_cpp
def test_concurrent_calls_match_serial(refiner, keyframes):
    from concurrent.futures import ThreadPoolExecutor
    inputs = [keyframes * (i + 1) for i in range(16)]
    serial = [refiner.refine(k) for k in inputs]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(refiner.refine, inputs))
    for s, p in zip(serial, parallel):
        np.testing.assert_array_equal(s, p)


@requires_cpp
@pytest.mark.parametrize("threads", [0, 2, 3, 64])
def test_threads_give_identical_results(keyframes, threads):
    model = msf.Model.from_tensors(random_state_dict(CONFIG, seed=1))
    batch = np.concatenate([keyframes] * 5)  # 20 windows: uneven splits over 3 threads
    np.testing.assert_array_equal(msf.Refiner(model, "cpp", threads=threads).refine(batch),
                                  msf.Refiner(model, "cpp", threads=1).refine(batch))


@pytest.mark.parametrize("batch", [1, 7, 20, 61])
def test_numpy_threads_give_identical_results(keyframes, monkeypatch, batch):
    """The NumPy backend splits a call's windows over its threads: the same numbers, bit for bit, for any
    thread count, also where a chunk splits into parts and across several chunks (with a chunk of 8
    windows: 61 windows are 8 chunks, over 2 threads parts of 4, the last one short)."""
    from msf import backend as backend_
    model = msf.Model.from_tensors(random_state_dict(CONFIG, seed=1))
    kf = np.concatenate([keyframes * (i + 1) for i in range(-(-batch // 4))])[:batch]
    serial = msf.Refiner(model, "numpy", threads=1).refine(kf)
    for threads in (2, 3, 0, 64):
        np.testing.assert_array_equal(msf.Refiner(model, "numpy", threads=threads).refine(kf), serial)
    alone = np.stack([msf.Refiner(model, "numpy").refine(k) for k in kf])  # every window on its own
    np.testing.assert_array_equal(alone, serial)
    monkeypatch.setattr(backend_, "_NUMPY_CHUNK", 8)
    for threads in (1, 2, 0):
        assert np.array_equal(msf.Refiner(model, "numpy", threads=threads).refine(kf), serial), threads


def test_numpy_threads_run_concurrently(keyframes, monkeypatch):
    """threads=N really runs N parts at once (each waits for the others at a barrier)."""
    import threading

    from msf import backend as backend_
    model = msf.Model.from_tensors(random_state_dict(CONFIG, seed=1))
    barrier, seen = threading.Barrier(3, timeout=30), set()
    forward = backend_.model_forward

    def waiting_forward(*args):
        seen.add(threading.get_ident())
        barrier.wait()
        return forward(*args)

    monkeypatch.setattr(backend_, "model_forward", waiting_forward)
    out = msf.Refiner(model, "numpy", threads=3).refine(np.concatenate([keyframes] * 3))  # 12 windows: 3 parts
    assert len(seen) == 3 and out.shape == (12, 51, 42)


@pytest.mark.parametrize("name", ["numpy", pytest.param("cpp", marks=requires_cpp)])
def test_threads_report_the_first_overflowing_window(keyframes, name):
    """Windows 7 and 13 of 20 overflow float32 (keyframes of 3e38): every thread count names window 7."""
    model = msf.Model.from_tensors(random_state_dict(CONFIG, seed=1))
    kf = np.concatenate([keyframes] * 5)
    kf[[13, 7]] = 3e38
    for threads in (1, 2, 3, 0):
        with pytest.raises(msf.InputError, match="NaN or infinite for window 7: the forward overflowed"):
            msf.Refiner(model, name, threads=threads).refine(kf)


@pytest.mark.parametrize("name", ["numpy", pytest.param("cpp", marks=requires_cpp)])
@pytest.mark.parametrize("threads", [-1, 1.5, "2", True, None])
def test_bad_thread_counts_are_refused(name, threads):
    """A bad thread count is a bad argument: InputError (a ValueError), on both backends."""
    with pytest.raises(msf.InputError, match=r"threads must be an integer >= 0 \(0: one per core\)") as e:
        msf.Refiner(msf.Model.from_tensors(random_state_dict(CONFIG)), name, threads=threads)
    assert isinstance(e.value, ValueError) and not isinstance(e.value, msf.BackendError)


@pytest.mark.parametrize("name", ["numpy", pytest.param("cpp", marks=requires_cpp)])
def test_thread_counts_of_any_integer_type_and_size(keyframes, name):
    model = msf.Model.from_tensors(random_state_dict(CONFIG, seed=1))
    serial = msf.Refiner(model, name).refine(keyframes)
    for threads in (np.int64(2), 2**40):  # NumPy integers; more threads than a C int holds: one per window
        np.testing.assert_array_equal(msf.Refiner(model, name, threads=threads).refine(keyframes), serial)


@settings(max_examples=30, deadline=None)
@given(exponent=st.integers(-45, 38), weight_exponent=st.integers(-10, 25), seed=st.integers(0, 2**31))
@example(exponent=0, weight_exponent=20, seed=0)  # issue 11: weights x 1e20 gave all-NaN frames on cpp
def test_output_is_finite_or_an_input_error(backend, exponent, weight_exponent, seed):
    """Any finite float32 keyframes and weights, tiny to near float32's limit: finite frames or an InputError
    saying the forward overflowed (non-finite output is never returned, on either backend)."""
    tensors = {k: v * 10.0 ** weight_exponent for k, v in random_state_dict(CONFIG, seed=1).items()}
    refiner = msf.Refiner(msf.Model.from_tensors(tensors), backend)
    kf = np.random.default_rng(seed).standard_normal((2, 6, 42)) * 10.0 ** exponent
    kf = np.clip(kf, -3e38, 3e38).astype(np.float32)
    try:
        out = refiner.refine(kf)
    except msf.InputError as e:
        assert "overflowed float32" in str(e) and "window" in str(e)
    else:
        assert np.isfinite(out).all()


def test_repr_names_config_and_backend(refiner, backend):
    text = repr(refiner)
    c = refiner.config
    assert text.startswith("Refiner(") and f"K={c.K}" in text and f"P={c.P}" in text and repr(backend) in text


def test_a_path_too_long_is_a_weights_error():
    """Path.exists() raised OSError (ENAMETOOLONG) for a name too long to be a path."""
    with pytest.raises(msf.WeightsError, match="no weights file"):
        msf.Refiner.load("x" * 5000)
