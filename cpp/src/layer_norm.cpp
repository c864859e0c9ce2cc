// LN(x) = (x - mean) / sqrt(var + 1e-5) * weight + bias over the channels, biased variance (nn.LayerNorm);
// x = in + residual, the sum of a block's residual connection and its sub-layer, formed here in one pass. The
// generic body serves the baseline and NEON; AVX-512 and AVX2 versions by hand do the same operations.
#include <cmath>

#include "kernels.hpp"
#include "vmath.hpp"

#ifdef MSF_X86
#include <immintrin.h>

#include "exp_x86.hpp"
#endif

namespace msf::kernels {

static MSF_INLINE void layer_norm_generic_body(float* out, const float* in, const float* residual, const float* weight,
                                               const float* bias, int rows, int C) {
    // out (rows, C), in (rows, C), residual (rows, C) or null, weight (C), bias (C). Rows go in blocks whose
    // statistics are independent loops (one row's reductions and square root are a long serial chain; a
    // block's overlap) and whose square roots vectorise.
    constexpr int kBlock = 16;
    for (int r0 = 0; r0 < rows; r0 += kBlock) {
        const int n = rows - r0 < kBlock ? rows - r0 : kBlock;
        const size_t first = static_cast<size_t>(r0) * C, count = static_cast<size_t>(n) * C;
        const float* x = in + first;
        if (residual) {  // out may alias residual: each element is read before it is written
            for (size_t i = 0; i < count; ++i) out[first + i] = in[first + i] + residual[first + i];
            x = out + first;
        }
        float mean[kBlock], inv_std[kBlock];
        for (int r = 0; r < n; ++r) mean[r] = vmath::sum(x + static_cast<size_t>(r) * C, C) / static_cast<float>(C);
        // two passes: the one-pass E[x^2] - mean^2 form cancels badly in float32
        for (int r = 0; r < n; ++r)
            inv_std[r] = vmath::sum_squared_deviation(x + static_cast<size_t>(r) * C, C, mean[r]) / static_cast<float>(C);
        for (int r = 0; r < n; ++r) inv_std[r] = 1.0f / std::sqrt(inv_std[r] + 1e-5f);
        for (int r = 0; r < n; ++r) {
            const float* xr = x + static_cast<size_t>(r) * C;
            float* y = out + first + static_cast<size_t>(r) * C;
            for (int c = 0; c < C; ++c) y[c] = (xr[c] - mean[r]) * inv_std[r] * weight[c] + bias[c];
        }
    }
}

#ifdef MSF_X86
MSF_INTRINSICS_BEGIN
namespace {

// The body's arithmetic by hand, value for value (the same sums in the same order: vmath::sum's 16 lanes, one
// step of 8, the tree l + 8, l + 4, l + 2, l + 1, then the tail; no FMA contraction, which the build turns
// off: tests/test_isa.py checks the bits), kRows rows at a time:
// one row's statistics are a ~140-cycle chain of reductions, divisions and a square root, and the compiled
// loop ran rows one after another (~1 cycle per element); kRows chains written side by side overlap. Each
// row is read three times from L1 (sum, squared deviations, output) with x = in + residual formed each
// time (the same rounding), so nothing is stored before the output and out may alias in or residual.
constexpr int kRows = 4;
#define MSF_EACH_ROW for (int j = 0; j < R; ++j)

// total / C. Where C is a power of two (every official config; POW2), 1/C is exact and total * (1/C) is the
// correctly rounded quotient: the division's bits without its latency, ~1/4 of a row's statistics chain
// (LayerNorm 51 x 32 with a residual, AVX2 on Zen 4: 0.57 -> 0.52 us). Chosen once per call: a run-time test
// inside the rows measured slower (0.68 us).
template <bool POW2>
MSF_INLINE float per_element(float total, int C) {
    return POW2 ? total * (1.0f / static_cast<float>(C)) : total / static_cast<float>(C);
}

MSF_INLINE bool power_of_two(int C) { return C > 0 && (C & (C - 1)) == 0; }

__attribute__((target("avx512f"), always_inline)) inline float combine16(__m512 acc) {
    const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(acc),
                                    _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1)));
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));  // (s4[0] + s4[2], s4[1] + s4[3])
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

// x = in (+ residual) at [i, i + 16) under mask m
template <bool RESIDUAL>
__attribute__((target("avx512f"), always_inline)) inline __m512 x16(const float* a, const float* b, int i, __mmask16 m) {
    const __m512 v = _mm512_maskz_loadu_ps(m, a + i);
    return RESIDUAL ? _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, b + i)) : v;
}

template <int R, bool RESIDUAL, bool POW2>
__attribute__((target("avx512f"), always_inline)) inline void rows_avx512(float* out, const float* in,
                                                                          const float* residual, const float* weight,
                                                                          const float* bias, int C) {
    // out (R, C), in (R, C), residual (R, C) if RESIDUAL, weight (C), bias (C)
    const int full = C / 16 * 16, vectors_end = C - full >= 8 ? full + 8 : full;
    const __mmask16 half = 0x00FF, last = static_cast<__mmask16>((1u << (C - full)) - 1);
    const float* a[R];
    const float* b[R];
    MSF_EACH_ROW a[j] = in + static_cast<size_t>(j) * C, b[j] = RESIDUAL ? residual + static_cast<size_t>(j) * C : nullptr;
    auto x1 = [&](int j, int i) { return RESIDUAL ? a[j][i] + b[j][i] : a[j][i]; };
    __m512 acc[R], mean16[R], inv_std16[R];
    float total[R], mean[R];
    MSF_EACH_ROW acc[j] = _mm512_setzero_ps();
    for (int i = 0; i < full; i += 16) MSF_EACH_ROW acc[j] = _mm512_add_ps(acc[j], x16<RESIDUAL>(a[j], b[j], i, 0xFFFF));
    if (vectors_end > full) MSF_EACH_ROW acc[j] = _mm512_mask_add_ps(acc[j], half, acc[j], x16<RESIDUAL>(a[j], b[j], full, half));
    MSF_EACH_ROW total[j] = combine16(acc[j]);
    for (int i = vectors_end; i < C; ++i) MSF_EACH_ROW total[j] += x1(j, i);
    MSF_EACH_ROW mean[j] = per_element<POW2>(total[j], C), mean16[j] = _mm512_set1_ps(mean[j]), acc[j] = _mm512_setzero_ps();
    for (int i = 0; i < full; i += 16)
        MSF_EACH_ROW {
            const __m512 d = _mm512_sub_ps(x16<RESIDUAL>(a[j], b[j], i, 0xFFFF), mean16[j]);
            acc[j] = _mm512_add_ps(acc[j], _mm512_mul_ps(d, d));
        }
    if (vectors_end > full)
        MSF_EACH_ROW {
            const __m512 d = _mm512_sub_ps(x16<RESIDUAL>(a[j], b[j], full, half), mean16[j]);
            acc[j] = _mm512_mask_add_ps(acc[j], half, acc[j], _mm512_mul_ps(d, d));
        }
    MSF_EACH_ROW total[j] = combine16(acc[j]);
    for (int i = vectors_end; i < C; ++i) MSF_EACH_ROW total[j] += (x1(j, i) - mean[j]) * (x1(j, i) - mean[j]);
    MSF_EACH_ROW inv_std16[j] = _mm512_set1_ps(1.0f / std::sqrt(per_element<POW2>(total[j], C) + 1e-5f));
    for (int i = 0; i < C; i += 16) {
        const __mmask16 m = i < full ? __mmask16(0xFFFF) : last;
        const __m512 w = _mm512_maskz_loadu_ps(m, weight + i), bi = _mm512_maskz_loadu_ps(m, bias + i);
        MSF_EACH_ROW {
            const __m512 y = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(x16<RESIDUAL>(a[j], b[j], i, m), mean16[j]),
                                                         inv_std16[j]), w);
            _mm512_mask_storeu_ps(out + static_cast<size_t>(j) * C + i, m, _mm512_add_ps(y, bi));
        }
    }
}

template <bool RESIDUAL, bool POW2>
__attribute__((target("avx512f"))) void layer_norm_avx512(float* out, const float* in, const float* residual,
                                                          const float* weight, const float* bias, int rows, int C) {
    int r = 0;
    for (; r + kRows <= rows; r += kRows) {
        const size_t at = static_cast<size_t>(r) * C;
        rows_avx512<kRows, RESIDUAL, POW2>(out + at, in + at, RESIDUAL ? residual + at : nullptr, weight, bias, C);
    }
    for (; r < rows; ++r) {
        const size_t at = static_cast<size_t>(r) * C;
        rows_avx512<1, RESIDUAL, POW2>(out + at, in + at, RESIDUAL ? residual + at : nullptr, weight, bias, C);
    }
}

// The same on AVX2: vmath::sum's 16 lanes are two ymm registers, lanes 0-7 (lo) and 8-15 (hi).
__attribute__((target("avx2,fma"), always_inline)) inline float combine8x2(__m256 lo, __m256 hi) {
    const __m256 s8 = _mm256_add_ps(lo, hi);
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

template <bool RESIDUAL>
__attribute__((target("avx2,fma"), always_inline)) inline __m256 x8(const float* a, const float* b, int i) {
    const __m256 v = _mm256_loadu_ps(a + i);
    return RESIDUAL ? _mm256_add_ps(v, _mm256_loadu_ps(b + i)) : v;
}

template <int R, bool RESIDUAL, bool POW2>
__attribute__((target("avx2,fma"), always_inline)) inline void rows_avx2(float* out, const float* in,
                                                                        const float* residual, const float* weight,
                                                                        const float* bias, int C) {
    // out (R, C), in (R, C), residual (R, C) if RESIDUAL, weight (C), bias (C)
    const int full = C / 16 * 16, vectors_end = C / 8 * 8;
    const float* a[R];
    const float* b[R];
    MSF_EACH_ROW a[j] = in + static_cast<size_t>(j) * C, b[j] = RESIDUAL ? residual + static_cast<size_t>(j) * C : nullptr;
    auto x1 = [&](int j, int i) { return RESIDUAL ? a[j][i] + b[j][i] : a[j][i]; };
    __m256 lo[R], hi[R], mean8[R], inv_std8[R];
    float total[R], mean[R], inv_std[R];
    MSF_EACH_ROW lo[j] = hi[j] = _mm256_setzero_ps();
    for (int i = 0; i < full; i += 16)
        MSF_EACH_ROW {
            lo[j] = _mm256_add_ps(lo[j], x8<RESIDUAL>(a[j], b[j], i));
            hi[j] = _mm256_add_ps(hi[j], x8<RESIDUAL>(a[j], b[j], i + 8));
        }
    if (vectors_end > full) MSF_EACH_ROW lo[j] = _mm256_add_ps(lo[j], x8<RESIDUAL>(a[j], b[j], full));
    MSF_EACH_ROW total[j] = combine8x2(lo[j], hi[j]);
    for (int i = vectors_end; i < C; ++i) MSF_EACH_ROW total[j] += x1(j, i);
    MSF_EACH_ROW mean[j] = per_element<POW2>(total[j], C), mean8[j] = _mm256_set1_ps(mean[j]), lo[j] = hi[j] = _mm256_setzero_ps();
    for (int i = 0; i < full; i += 16)
        MSF_EACH_ROW {
            const __m256 d0 = _mm256_sub_ps(x8<RESIDUAL>(a[j], b[j], i), mean8[j]);
            const __m256 d1 = _mm256_sub_ps(x8<RESIDUAL>(a[j], b[j], i + 8), mean8[j]);
            lo[j] = _mm256_add_ps(lo[j], _mm256_mul_ps(d0, d0));
            hi[j] = _mm256_add_ps(hi[j], _mm256_mul_ps(d1, d1));
        }
    if (vectors_end > full)
        MSF_EACH_ROW {
            const __m256 d = _mm256_sub_ps(x8<RESIDUAL>(a[j], b[j], full), mean8[j]);
            lo[j] = _mm256_add_ps(lo[j], _mm256_mul_ps(d, d));
        }
    MSF_EACH_ROW total[j] = combine8x2(lo[j], hi[j]);
    for (int i = vectors_end; i < C; ++i) MSF_EACH_ROW total[j] += (x1(j, i) - mean[j]) * (x1(j, i) - mean[j]);
    MSF_EACH_ROW inv_std[j] = 1.0f / std::sqrt(per_element<POW2>(total[j], C) + 1e-5f), inv_std8[j] = _mm256_set1_ps(inv_std[j]);
    for (int i = 0; i < vectors_end; i += 8) {
        const __m256 w = _mm256_loadu_ps(weight + i), bi = _mm256_loadu_ps(bias + i);
        MSF_EACH_ROW {
            const __m256 y = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(x8<RESIDUAL>(a[j], b[j], i), mean8[j]),
                                                         inv_std8[j]), w);
            _mm256_storeu_ps(out + static_cast<size_t>(j) * C + i, _mm256_add_ps(y, bi));
        }
    }
    for (int i = vectors_end; i < C; ++i)
        MSF_EACH_ROW out[static_cast<size_t>(j) * C + i] = (x1(j, i) - mean[j]) * inv_std[j] * weight[i] + bias[i];
}

template <bool RESIDUAL, bool POW2>
__attribute__((target("avx2,fma"))) void layer_norm_avx2(float* out, const float* in, const float* residual,
                                                        const float* weight, const float* bias, int rows, int C) {
    int r = 0;
    for (; r + kRows <= rows; r += kRows) {
        const size_t at = static_cast<size_t>(r) * C;
        rows_avx2<kRows, RESIDUAL, POW2>(out + at, in + at, RESIDUAL ? residual + at : nullptr, weight, bias, C);
    }
    for (; r < rows; ++r) {
        const size_t at = static_cast<size_t>(r) * C;
        rows_avx2<1, RESIDUAL, POW2>(out + at, in + at, RESIDUAL ? residual + at : nullptr, weight, bias, C);
    }
}

#undef MSF_EACH_ROW

}  // namespace
MSF_INTRINSICS_END

// [residual given][C a power of two]
using LayerNorm = void (*)(float*, const float*, const float*, const float*, const float*, int, int);
constexpr LayerNorm kAvx512[2][2] = {{layer_norm_avx512<false, false>, layer_norm_avx512<false, true>},
                                     {layer_norm_avx512<true, false>, layer_norm_avx512<true, true>}};
constexpr LayerNorm kAvx2[2][2] = {{layer_norm_avx2<false, false>, layer_norm_avx2<false, true>},
                                   {layer_norm_avx2<true, false>, layer_norm_avx2<true, true>}};

void layer_norm_forward(float* out, const float* in, const float* residual, const float* weight, const float* bias,
                        int rows, int C) {
    // out (rows, C) = LN(in + residual); residual may be null; out may alias in or residual
    switch (isa::active()) {
        case isa::Isa::avx512:
            return kAvx512[residual != nullptr][power_of_two(C)](out, in, residual, weight, bias, rows, C);
        case isa::Isa::avx2: return kAvx2[residual != nullptr][power_of_two(C)](out, in, residual, weight, bias, rows, C);
        default: return layer_norm_generic_body(out, in, residual, weight, bias, rows, C);
    }
}
#else
void layer_norm_forward(float* out, const float* in, const float* residual, const float* weight, const float* bias,
                        int rows, int C) {
    layer_norm_generic_body(out, in, residual, weight, bias, rows, C);
}
#endif

}  // namespace msf::kernels
