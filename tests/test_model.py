"""The whole model on random configurations: the backend under test against the float64 reference."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import msf
from helpers import OFFICIAL, official_config, random_state_dict, requires_cpp
from msf.reference import model_forward
from tolerances import MODEL_ATOL_OF_MAX, assert_close


def reference64(tensors, config, keyframes):
    """The NumPy reference evaluated in float64: the oracle for float32 backends."""
    return model_forward(np.asarray(keyframes, np.float64),
                         {k: np.asarray(v, np.float64) for k, v in tensors.items()}, config.L)


configs = st.builds(
    lambda K, Q, D, J, C, L, r_t, r_c: official_config(K, Q, J * D, C, L, r_t, r_c),
    K=st.integers(1, 20), Q=st.integers(1, 10), D=st.sampled_from([2, 3]), J=st.integers(1, 24),
    C=st.sampled_from([8, 12, 16, 32, 33, 64, 128]), L=st.integers(1, 5),
    r_t=st.sampled_from([1, 2, 4]), r_c=st.sampled_from([1, 2, 8]),
).filter(lambda c: 11 <= c.T <= 101)


@settings(max_examples=25, deadline=None)
@given(config=configs, batch=st.sampled_from([1, 2, 7]), seed=st.integers(0, 2**31))
def test_random_configs_match_float64_reference(backend, config, batch, seed):
    tensors = random_state_dict(config, seed)
    refiner = msf.Refiner(msf.Model.from_tensors(tensors), backend)
    assert refiner.config == config
    keyframes = np.random.default_rng(seed + 1).standard_normal((batch, config.n_keyframes, config.P)) * 100
    out = refiner.refine(keyframes)
    assert out.dtype == np.float32 and out.shape == (batch, config.T, config.P)
    assert_close(out, reference64(tensors, config, keyframes), atol_of_max=MODEL_ATOL_OF_MAX,
                 what=f"{backend} {config}")


@pytest.mark.parametrize("name", sorted(OFFICIAL))
@pytest.mark.parametrize("reduce", [(4, 1), (1, 8)])  # other (r_t, r_c) are drawn by the random-config test
def test_official_configs_large_batch(backend, name, reduce):
    config = official_config(*OFFICIAL[name], *reduce)
    tensors = random_state_dict(config, seed=3)
    refiner = msf.Refiner(msf.Model.from_tensors(tensors), backend)
    keyframes = np.random.default_rng(4).standard_normal((101, config.n_keyframes, config.P)).astype(np.float32)
    out = refiner.refine(keyframes)
    assert_close(out, reference64(tensors, config, keyframes), atol_of_max=MODEL_ATOL_OF_MAX,
                 what=f"{backend} {name} {reduce}")
    # windows are independent: one window alone gives the result it gets inside the batch (bit for bit in
    # C++; NumPy's BLAS may block a batched product differently, so there only to rounding)
    alone = refiner.refine(keyframes[57])
    if backend == "cpp":
        np.testing.assert_array_equal(alone, out[57])
    assert_close(alone, out[57], atol_of_max=MODEL_ATOL_OF_MAX, what="window alone vs in batch")


@requires_cpp
@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_cpp_and_numpy_agree(name):
    config = official_config(*OFFICIAL[name])
    model = msf.Model.from_tensors(random_state_dict(config, seed=5))
    keyframes = np.random.default_rng(6).standard_normal((9, config.n_keyframes, config.P))
    numpy_out = msf.Refiner(model, "numpy").refine(keyframes)
    cpp_out = msf.Refiner(model, "cpp").refine(keyframes)
    assert_close(cpp_out, numpy_out, atol_of_max=MODEL_ATOL_OF_MAX, what=f"cpp vs numpy {name}")


def test_interpolation_only_model_reproduces_learned_interpolation(backend):
    """With the encoder's output head zeroed the model is exactly its l_interp interpolation."""
    config = official_config(*OFFICIAL["pw3d"])
    tensors = random_state_dict(config, seed=7)
    tensors["fc.weight"] = np.zeros_like(tensors["fc.weight"])
    tensors["fc.bias"] = np.zeros_like(tensors["fc.bias"])
    keyframes = np.random.default_rng(8).standard_normal((config.n_keyframes, config.P))
    out = msf.Refiner(msf.Model.from_tensors(tensors), backend).refine(keyframes)
    expected = tensors["l_interp.weight"] @ keyframes + tensors["l_interp.bias"][:, None]
    assert_close(out, expected, atol_of_max=MODEL_ATOL_OF_MAX, what="interpolation only")


def overflowing_model():
    """Finite weights (every weight x 1e20) whose activations overflow float32."""
    config = official_config(*OFFICIAL["pw3d"])
    return config, msf.Model.from_tensors({k: v * 1e20 for k, v in random_state_dict(config, seed=1).items()})


@pytest.mark.parametrize("threads", [1, 3])
def test_overflowing_weights_are_an_error_not_nan(backend, threads):
    config, model = overflowing_model()
    refiner = msf.Refiner(model, backend, threads=threads)
    kf = np.random.default_rng(2).standard_normal((4, config.n_keyframes, config.P))
    with pytest.raises(msf.InputError,
                       match=r"window 0: the forward overflowed float32 .*largest \|weight\| 1\.\d+e\+20"):
        refiner.refine(kf)
    with pytest.raises(msf.InputError, match="overflowed float32"):
        refiner.recover(kf[0], config.T)
    stream = refiner.stream()
    with pytest.raises(msf.InputError, match="overflowed float32"):
        for keyframe in np.concatenate([kf[0], kf[1]]):
            stream.push(keyframe)
        stream.finish()


def near_the_workspace_cap(K: int, C: int) -> dict:
    """A model with T = K + 1 frames, full-size temporal attention (d_t = T) and otherwise minimal sizes: its
    workspace (~T^2) outgrows 16 floats per weight (~T) near T = 2100."""
    T = K + 1
    config = msf.Config(K=K, Q=1, P=3, C=C, L=1, ffn_hidden=C, d_t=T, d_c=C, se_t=1, se_c=1, reweight_hidden=1)
    return {name: np.zeros(shape, np.float32) for name, shape in config.expected_shapes().items()}


def test_one_workspace_cap_for_both_backends(backend):
    """issue 11: a 1 MB file with K = 20000, Q = 1 cost the NumPy backend 6 GB and 19 s for one window."""
    tensors = near_the_workspace_cap(20000, 1)
    assert sum(t.size for t in tensors.values()) * 4 < 1 << 20
    with pytest.raises(msf.WeightsError, match="implausible model sizes: a window would need 400"):
        msf.Refiner(msf.Model.from_tensors(tensors), backend)


@requires_cpp
@settings(max_examples=30, deadline=None)
@given(K=st.integers(1900, 2400), C=st.sampled_from([1, 2, 4]))
def test_workspace_cap_is_the_same_formula_in_cpp(K, C):
    """Near the cap, Python (Config.workspace_floats) and the C++ loader give the same verdict, and for a
    refused model the same message, workspace and weight counts included."""
    from msf import _core
    tensors = near_the_workspace_cap(K, C)
    try:
        msf.Model.from_tensors(tensors)
        python = None
    except msf.WeightsError as e:
        python = str(e)
    try:
        _core.Model(tensors)
        cpp = None
    except msf.WeightsError as e:
        cpp = str(e)
    assert python == cpp


def test_subnormal_weights_are_zero(backend):
    """Subnormal weights are flushed at load by both backends (in C++ they would otherwise be ~100x slower):
    the output equals that of the same model with those weights zeroed, bit for bit. The interpolation and
    the head's bias are zeroed so that the output is the head's product alone, subnormal unless flushed."""
    config = official_config(*OFFICIAL["pw3d"])
    tensors = random_state_dict(config, seed=5)
    for name in ("l_interp.weight", "l_interp.bias", "fc.bias"):
        tensors[name] = np.zeros_like(tensors[name])
    tiny = dict(tensors, **{"fc.weight": np.sign(tensors["fc.weight"]) * 1e-40})
    zero = dict(tensors, **{"fc.weight": np.zeros_like(tensors["fc.weight"])})
    model = msf.Model.from_tensors(tiny)
    assert not np.any(model.tensors["fc.weight"])
    kf = np.random.default_rng(6).standard_normal((3, config.n_keyframes, config.P))
    out = msf.Refiner(model, backend).refine(kf)
    np.testing.assert_array_equal(out, msf.Refiner(msf.Model.from_tensors(zero), backend).refine(kf))
    assert not np.any(out)


@requires_cpp
@pytest.mark.parametrize("threads", [1, 3])
def test_cpp_flushes_subnormal_activations_and_restores_the_mode(threads):
    """Inside the C++ forward subnormals are zero (FTZ/DAZ, on every worker thread): with out = l_interp @
    keyframes, subnormal keyframes give exact zeros. The calling thread's own arithmetic keeps subnormals."""
    config = official_config(*OFFICIAL["pw3d"])
    tensors = random_state_dict(config, seed=7)
    for name in ("fc.weight", "fc.bias", "l_interp.bias"):
        tensors[name] = np.zeros_like(tensors[name])
    refiner = msf.Refiner(msf.Model.from_tensors(tensors), "cpp", threads=threads)
    kf = (np.random.default_rng(8).standard_normal((3, config.n_keyframes, config.P)) * 1e-39).astype(np.float32)
    assert np.any(kf) and not np.any(refiner.refine(kf))
    tiny = np.array([1e-39], np.float32)
    assert (tiny * np.float32(2))[0] != 0 and tiny[0] != 0  # FTZ/DAZ did not leak into this thread
