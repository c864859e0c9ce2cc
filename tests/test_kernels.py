"""Every C++ kernel against the NumPy reference (float64) on random shapes, values and edge sizes, through
msf._kernels (the test-only bindings; tests/test_isa.py tests MSF_ISA through the model)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from helpers import HAS_KERNELS, requires_kernels
from msf import reference as ref
from tolerances import (
    KERNEL_ATOL,
    KERNEL_ATOL_OF_MAX,
    KERNEL_RTOL,
    assert_close,
    dot_atol,
    gelu_rtol,
    layer_norm_atol,
    synth_attention_atol,
)

pytestmark = requires_kernels
if HAS_KERNELS:
    from msf import _core, _kernels as kernels

# sizes that are not multiples of any SIMD width, plus 1 and the official ones
size = st.one_of(st.integers(1, 9), st.integers(10, 140), st.sampled_from([11, 16, 17, 32, 51, 64, 101, 128, 256]))
seeds = st.integers(0, 2**32 - 1)
KERNEL = dict(rtol=KERNEL_RTOL, atol_of_max=KERNEL_ATOL_OF_MAX)
EXAMPLES = settings(max_examples=60, deadline=None)


def f32(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def f64(*arrays):
    return [a.astype(np.float64) for a in arrays]


@EXAMPLES
@given(size, size, size, st.booleans(), seeds)
def test_linear(M, K, N, with_bias, seed):
    rng = np.random.default_rng(seed)
    x, w, b = f32(rng, M, K), f32(rng, N, K, scale=K ** -0.5), f32(rng, N)
    expected = ref.linear(*f64(x, w), b.astype(np.float64) if with_bias else None)
    atol = dot_atol(x, w.T, b if with_bias else 0.0)
    for kernel in (kernels.linear, kernels.linear_naive):
        assert_close(kernel(x, w, b if with_bias else None), expected, **KERNEL, atol=atol, what=kernel.__name__)


@EXAMPLES
@given(st.integers(1, 3000), st.floats(0.01, 30), seeds)
def test_gelu(n, scale, seed):
    x = f32(np.random.default_rng(seed), n, scale=scale)
    for kernel in (kernels.gelu, kernels.gelu_naive):
        assert_close(kernel(x), ref.gelu(x.astype(np.float64)), **KERNEL, atol=KERNEL_ATOL, what=kernel.__name__)


def test_gelu_everywhere():
    """Every float32 magnitude from 1e-30 to 1e30 and the vectorised erfc's branch points."""
    mags = np.concatenate([np.geomspace(1e-30, 1e30, 20001), np.linspace(0, 20, 20001),
                           [0.5 * np.sqrt(2), 3e38]])
    x = np.concatenate([mags, -mags]).astype(np.float32)
    for kernel in (kernels.gelu, kernels.gelu_naive):
        assert_close(kernel(x), ref.gelu(x.astype(np.float64)), rtol=gelu_rtol(x), atol=KERNEL_ATOL,
                     what=kernel.__name__)


@EXAMPLES
@given(size, size, st.floats(0.01, 100), seeds)
def test_softmax(rows, cols, scale, seed):
    x = f32(np.random.default_rng(seed), rows, cols, scale=scale)
    out = kernels.softmax(x)
    assert_close(out, ref.softmax(x.astype(np.float64)), **KERNEL, what="softmax")
    out = kernels.softmax_columns(x)
    assert_close(out, ref.softmax(x.T.astype(np.float64)).T, **KERNEL, what="softmax_columns")


def test_softmax_columns_every_block_shape():
    """Every last-block shape of the hand-written column softmaxes (whole and partial vectors of 8 and 16,
    up to two blocks of 64 columns); test_isa runs this under every ISA."""
    rng = np.random.default_rng(5)
    for cols in range(1, 130):
        x = f32(rng, 7, cols, scale=3.0)
        assert_close(kernels.softmax_columns(x), ref.softmax(x.T.astype(np.float64)).T, **KERNEL,
                     what=f"softmax_columns, {cols} columns")


@EXAMPLES
@given(size, st.integers(1, 300), st.floats(0.01, 100), st.floats(-1e3, 1e3), seeds)
def test_layer_norm(rows, C, scale, offset, seed):
    rng = np.random.default_rng(seed)
    x = f32(rng, rows, C, scale=scale) + np.float32(offset)
    w, b = 1 + f32(rng, C, scale=0.1), f32(rng, C, scale=0.1)
    assert_close(kernels.layer_norm(x, w, b), ref.layer_norm(*f64(x, w, b)), rtol=KERNEL_RTOL,
                 atol_of_max=KERNEL_ATOL_OF_MAX, atol=layer_norm_atol(x, w),
                 what="layer_norm")
    # with a residual: LN(x + r), the sum formed in float32 as the C++ forward forms it
    r = f32(rng, rows, C, scale=scale)
    assert_close(kernels.layer_norm(x, w, b, r), ref.layer_norm(*f64(x + r, w, b)), rtol=KERNEL_RTOL,
                 atol_of_max=KERNEL_ATOL_OF_MAX, atol=layer_norm_atol(x + r, w), what="layer_norm with residual")


@EXAMPLES
@given(size, size, st.integers(1, 40), seeds)
def test_se_layer(N, d, H, seed):
    rng = np.random.default_rng(seed)
    e, w1, w2 = f32(rng, N, d), f32(rng, H, N, scale=N ** -0.5), f32(rng, N, H, scale=H ** -0.5)
    assert_close(kernels.se_layer(e, w1, w2), ref.se_layer(*f64(e, w1, w2)), **KERNEL, what="se_layer")


def synth_params(rng, N, D, d, H):
    return {"dense.weight": f32(rng, d, D, scale=D ** -0.5), "dense.bias": f32(rng, d, scale=0.1),
            "se.fc.0.weight": f32(rng, H, N, scale=N ** -0.5), "se.fc.2.weight": f32(rng, N, H, scale=H ** -0.5),
            "value_reduce.weight": f32(rng, d, N, scale=N ** -0.5), "value_reduce.bias": f32(rng, d, scale=0.1)}


@EXAMPLES
@given(size, size, st.data(), seeds)
def test_synth_attention(N, D, data, seed):
    d = data.draw(st.one_of(st.just(1), st.just(N), st.integers(1, N)), label="d")
    H = data.draw(st.integers(1, max(1, N // 2)), label="H")
    rng = np.random.default_rng(seed)
    s, p = f32(rng, N, D), synth_params(rng, N, D, d, H)
    expected = ref.synth_attention(s.astype(np.float64), {k: v.astype(np.float64) for k, v in p.items()})
    atol = synth_attention_atol(s, p["value_reduce.weight"], p["value_reduce.bias"])
    assert_close(kernels.synth_attention(s, p), expected, **KERNEL, atol=atol, what=f"synth_attention d={d} N={N}")
    assert_close(kernels.synth_attention(s, p, transposed_out=True), expected.T, **KERNEL, atol=atol,
                 what=f"synth_attention, transposed output, d={d} N={N}")


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 101), st.integers(2, 128), st.data(), seeds)
def test_mix_synth_attention(T, C, data, seed):
    rng = np.random.default_rng(seed)
    d_t = data.draw(st.integers(1, T), label="d_t")
    d_c = data.draw(st.integers(1, C), label="d_c")
    h = data.draw(st.integers(1, max(1, T // 2)), label="reweight hidden")
    p = {"synth_token." + k: v for k, v in synth_params(rng, T, C, d_t, max(1, T // 4)).items()}
    p.update({"synth_channel." + k: v for k, v in synth_params(rng, C, T, d_c, max(1, C // 4)).items()})
    p.update({"reweight.fc1.weight": f32(rng, h, T, scale=T ** -0.5), "reweight.fc1.bias": f32(rng, h, scale=0.1),
              "reweight.fc2.weight": f32(rng, 2 * T, h, scale=h ** -0.5), "reweight.fc2.bias": f32(rng, 2 * T),
              "proj.weight": f32(rng, C, C, scale=C ** -0.5), "proj.bias": f32(rng, C, scale=0.1)})
    z = f32(rng, T, C)
    expected = ref.mix_synth_attention(z.astype(np.float64), {k: v.astype(np.float64) for k, v in p.items()})
    assert_close(kernels.mix_synth_attention(z, p), expected, **KERNEL, what="mix_synth_attention")


ISAS = [name for name, _ in _core.isas()] if HAS_KERNELS else ["portable"]


@pytest.mark.parametrize("isa", ISAS)
@EXAMPLES
@given(size, size, size, st.booleans(), st.booleans(), st.booleans(), seeds)
def test_every_gemm_version(isa, M, K, N, with_col_bias, with_row_bias, a_transposed, seed):
    """Each ISA version of the GEMM (the dispatcher picks one; all are tested here), with a as it is or
    given transposed; skipped, not passed, for an ISA this CPU or build lacks."""
    if not dict(_core.isas())[isa]:
        pytest.skip(f"this CPU or build has no {isa}")
    rng = np.random.default_rng(seed)
    a, b = f32(rng, M, K), f32(rng, K, N, scale=K ** -0.5)
    col_bias = f32(rng, N) if with_col_bias else None
    row_bias = f32(rng, M) if with_row_bias else None
    expected = a.astype(np.float64) @ b + (0 if col_bias is None else col_bias) + (
        0 if row_bias is None else row_bias[:, None])
    out = kernels.gemm(np.ascontiguousarray(a.T) if a_transposed else a, b, col_bias, row_bias, isa=isa,
                       a_transposed=a_transposed)
    bias = (0 if col_bias is None else col_bias) + (0 if row_bias is None else row_bias[:, None])
    assert_close(out, expected, **KERNEL, atol=dot_atol(a, b, bias), what=f"gemm {isa}")


@pytest.mark.parametrize("isa", ISAS)
@EXAMPLES
@given(st.integers(2, 60), size, size, st.booleans(), st.booleans(), seeds)
def test_gemm_rows_do_not_depend_on_m(isa, M, K, N, with_row_bias, a_transposed, seed):
    """Each output row of every GEMM version has the same bits whether its product has M rows, one (the
    one-row path) or the rows from it on (other row blocks): a window's result never depends on its batch."""
    if not dict(_core.isas())[isa]:
        pytest.skip(f"this CPU or build has no {isa}")
    rng = np.random.default_rng(seed)
    a, b, col_bias = f32(rng, M, K), f32(rng, K, N, scale=K ** -0.5), f32(rng, N)
    row_bias = f32(rng, M) if with_row_bias else None

    def product(rows):
        a_rows = a[rows]
        return kernels.gemm(np.ascontiguousarray(a_rows.T) if a_transposed else a_rows, b, col_bias,
                            None if row_bias is None else row_bias[rows], isa=isa, a_transposed=a_transposed)

    whole = product(slice(0, M))
    start = int(rng.integers(1, M))
    np.testing.assert_array_equal(product(slice(start, M)), whole[start:], err_msg=f"rows {start}: of {M}")
    for m in {0, start, M - 1}:
        np.testing.assert_array_equal(product(slice(m, m + 1)), whole[m:m + 1], err_msg=f"row {m} alone")


@EXAMPLES
@given(size, size, st.integers(1, 140), st.booleans(), seeds)
def test_avx2_and_avx512_gemms_give_the_same_bits(M, K, N, a_transposed, seed):
    """The AVX2 and AVX-512 GEMMs sum each output over k in order with one FMA per term, whatever their tile
    shapes (6 x 16, 12 x 8 for a last panel of <= 8 columns, 8 x 32, 16 x 16, one-row tiles): the same bits."""
    available = dict(_core.isas())
    if not (available.get("avx2") and available.get("avx512")):
        pytest.skip("this CPU or build lacks AVX2 or AVX-512")
    rng = np.random.default_rng(seed)
    a, b, col_bias, row_bias = f32(rng, M, K), f32(rng, K, N, scale=K ** -0.5), f32(rng, N), f32(rng, M)
    a_in = np.ascontiguousarray(a.T) if a_transposed else a
    avx2, avx512 = (kernels.gemm(a_in, b, col_bias, row_bias, isa=isa, a_transposed=a_transposed)
                    for isa in ("avx2", "avx512"))
    np.testing.assert_array_equal(avx2.view(np.uint32), avx512.view(np.uint32), err_msg="AVX2 vs AVX-512 bits")
