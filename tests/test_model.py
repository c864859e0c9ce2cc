"""The whole model on random configurations: the backend under test against the float64 reference."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import msf
from conftest import OFFICIAL, official_config, random_state_dict, requires_cpp
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
