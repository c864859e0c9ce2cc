"""The NumPy reference operators against first principles (float64 math, the standard library)."""
import math

import numpy as np
from hypothesis import given, settings, strategies as st

from msf import reference as ref
from tolerances import ERF_ATOL, ERF_RTOL, assert_close


def test_erf_matches_math_erf_everywhere():
    x = np.concatenate([np.linspace(-8, 8, 200_001), [0.0, -0.0, 1e-30, -1e-30, 0.4999999, 0.5, 1e3, -1e3]])
    expected = np.array([math.erf(v) for v in x])
    assert_close(ref.erf(x), expected, atol=ERF_ATOL, what="erf float64")
    assert ref.erf(x.astype(np.float32)).dtype == np.float32
    assert np.isnan(ref.erf(np.array([np.nan]))).all()
    expected_c = np.array([math.erfc(v) for v in x])
    assert_close(ref.erfc(x), expected_c, rtol=ERF_RTOL, what="erfc float64 (relative, also in the tail)")
    assert_close(ref.erf(np.array([np.inf, -np.inf])), [1.0, -1.0], what="erf(+-inf)")


def test_gelu_is_exact_erf_form():
    x = np.linspace(-10, 10, 2001)
    expected = np.array([v * 0.5 * math.erfc(-v / math.sqrt(2)) for v in x])
    assert_close(ref.gelu(x), expected, rtol=ERF_RTOL, what="gelu, relative even for x << 0")


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 40), st.floats(-50, 50), st.integers(0, 2**31))
def test_softmax_rows_are_distributions_and_shift_invariant(rows, cols, shift, seed):
    x = np.random.default_rng(seed).standard_normal((rows, cols)) * 10
    p = ref.softmax(x)
    assert (p >= 0).all()
    assert_close(p.sum(axis=-1), np.ones(rows), atol=1e-12, what="row sums")
    assert_close(ref.softmax(x + shift), p, atol=1e-12, what="shift invariance")
    assert np.isfinite(ref.softmax(x * 1e6)).all()


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5), st.integers(2, 64), st.integers(0, 2**31))
def test_layer_norm_normalises(rows, C, seed):
    x = np.random.default_rng(seed).standard_normal((rows, C)) * 3 + 7
    y = ref.layer_norm(x, np.ones(C), np.zeros(C))
    assert_close(y.mean(axis=-1), np.zeros(rows), atol=1e-9, what="mean")
    assert_close((y * y).mean(axis=-1), x.var(axis=-1) / (x.var(axis=-1) + 1e-5), atol=1e-9, what="variance")


def test_synth_attention_unreduced_uses_the_input_as_values():
    rng = np.random.default_rng(0)
    N, D = 7, 5
    s = rng.standard_normal((N, D))
    p = {"dense.weight": rng.standard_normal((N, D)), "dense.bias": rng.standard_normal(N),
         "se.fc.0.weight": rng.standard_normal((1, N)), "se.fc.2.weight": rng.standard_normal((N, 1))}
    e = s @ p["dense.weight"].T + p["dense.bias"]
    gate = 1 / (1 + np.exp(-(p["se.fc.2.weight"] @ np.maximum(p["se.fc.0.weight"] @ e.mean(axis=1), 0))))
    a = np.exp(e * gate[:, None])
    a /= a.sum(axis=1, keepdims=True)
    assert_close(ref.synth_attention(s, p), a @ s, atol=1e-12, what="synth_attention d == N")
