"""Every numeric tolerance of the test suite, in one place, with its justification.

Comparisons are per element: |actual - ref| <= atol + rtol * |ref|; on failure the worst element is printed.

float32 has unit roundoff u = 2**-24 ~ 6e-8. A dot product of length n accumulated in float32 errs by
at most ~n*u*sum|x_i w_i| and typically ~sqrt(n)*u*sum|x_i w_i|; the model's reductions have n <= 512.
"""
import numpy as np

# Single operators (C++ float32 and NumPy float32) against the NumPy reference evaluated in float64.
# sqrt(512) * u * (scale of the terms) ~ 1.4e-6 of the scale; 1e-5 of the output's largest magnitude
# leaves headroom for the worst of a few thousand elements, and 1e-5 relative covers the exp/erf ulps.
KERNEL_RTOL = 1e-5
KERNEL_ATOL_OF_MAX = 1e-5
# Results near the bottom of float32's normal range (e.g. GELU of x << 0) may be subnormal or flushed to
# zero: the vectorised exp returns 0 below e^-87.3, and its callers scale that by factors up to ~10.
KERNEL_ATOL = 16 * float(np.finfo(np.float32).tiny)



def gelu_rtol(x):
    """Per-element relative bound for float32 GELU: KERNEL_RTOL, plus the function's conditioning. For x << 0,
    GELU(x) ~ exp(-x^2/2), so the rounding of x (and of x/sqrt 2) alone moves it by ~x^2 ulps; any float32
    GELU, libm's erfc included, errs that much (1e-5 relative at x = -13)."""
    x = np.asarray(x, dtype=np.float64)
    return KERNEL_RTOL + 4 * 2.0 ** -24 * (1 + x * x)


def dot_atol(a, b, bias=0.0):
    """Per-element bound for out = a @ b + bias in float32: a sum of K products errs by up to ~K*u times the
    sum of the terms' magnitudes, |a| @ |b| + |bias|, whatever the result's own size (cancellation).
    KERNEL_RTOL of that sum covers K <= 512 with the headroom stated above."""
    magnitude = np.abs(np.asarray(a, np.float64)) @ np.abs(np.asarray(b, np.float64)) + np.abs(bias)
    return KERNEL_RTOL * magnitude


def synth_attention_atol(s, value_w, value_b):
    """Per-element bound for SynthAttention's out = A @ V, s (N, D): A's rows are a softmax (non-negative,
    summing to 1), so out errs by at most V's largest error plus KERNEL_RTOL of |V|. When d < N, V =
    value_w (d, N) @ s + value_b is a sum of N terms that may cancel (with d = 1 every output is that one
    sum): bounded like dot_atol by the terms' magnitude, not by the result's. When d = N, V is s itself."""
    if value_w.shape[0] >= value_w.shape[1]:
        return 0.0
    magnitude = np.abs(np.asarray(value_w, np.float64)) @ np.abs(np.asarray(s, np.float64)) + \
        np.abs(np.asarray(value_b, np.float64))[:, None]
    return KERNEL_RTOL * float(magnitude.max())


def layer_norm_atol(x, weight, eps=1e-5):
    """Per-row bound for LayerNorm of float32 rows x (rows, C): the float32 mean errs by up to ~C*u*max|x|,
    centring carries that error into every element, and the division by sqrt(var + eps) amplifies it.
    Rows with a large offset and a small spread are ill-conditioned for any float32 implementation."""
    x = np.asarray(x, dtype=np.float64)
    u = 2.0 ** -24
    scale = np.abs(x).max(axis=-1, keepdims=True) / np.sqrt(x.var(axis=-1, keepdims=True) + eps)
    return 2 * x.shape[-1] * u * scale * np.abs(weight).max()


# The whole model (the contract): max abs error <= 1e-5 * max |output| against the official model
# in float64. L <= 5 post-norm blocks chain ~8 reductions each; LayerNorm renormalises so errors add
# rather than compound: measured ~4e-7 of max |output| on the official configs, 25x below the bound.
MODEL_ATOL_OF_MAX = 1e-5

# erf/erfc in float64 (msf.reference): Numerical Recipes' Chebyshev fit for erfc, fractional error < 1.2e-7,
# so erf = 1 - erfc errs by < 1.2e-7 absolute and erfc (hence GELU, written with erfc) by < 1.2e-7 relative.
ERF_ATOL = 1.5e-7
ERF_RTOL = 1.5e-7


def assert_close(actual, ref, *, rtol=0.0, atol=0.0, atol_of_max=0.0, what=""):
    """Per element |actual - ref| <= atol + atol_of_max * max|ref| + rtol * |ref|; names the worst element."""
    actual = np.asarray(actual, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert actual.shape == ref.shape, f"{what}: shape {actual.shape} != reference {ref.shape}"
    if ref.size == 0:
        return
    bound = atol + atol_of_max * np.abs(ref).max() + rtol * np.abs(ref)
    excess = np.abs(actual - ref) - bound
    worst = np.unravel_index(np.argmax(excess), ref.shape)
    assert excess[worst] <= 0 and np.isfinite(actual).all(), (
        f"{what}: worst element {worst}: got {actual[worst]!r}, reference {ref[worst]!r}, "
        f"|diff| {abs(actual[worst] - ref[worst]):.3g} > bound {np.broadcast_to(bound, ref.shape)[worst]:.3g} "
        f"(max |ref| {np.abs(ref).max():.3g})")
