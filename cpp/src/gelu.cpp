// GELU(x) = x Phi(x) = x erfc(-x / sqrt 2) / 2, the exact form of nn.GELU() (the MLPs of eq. 9)
//
// The portable (and NEON) version is vmath::erfc in a loop the compiler vectorises. On x86 hand-written
// AVX-512 and AVX2+FMA versions use a form with fewer operations and no selects (gelu_avx512 below),
// within ~2 ulp of the float64 result for every x whose GELU is a normal float (and NaN in, NaN out).
#include <cmath>

#include "kernels.hpp"
#include "vmath.hpp"

#ifdef MSF_X86
#include <immintrin.h>

#include "exp_x86.hpp"
#endif

namespace msf::kernels {

void gelu_forward_naive(float* x, size_t n) {
    // x (n) in place, with libm's erfc
    for (size_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * std::erfc(x[i] * -0.70710678118654752f);
}

static MSF_INLINE void gelu_forward_body(float* x, size_t n) {
    // x (n) in place; erfc rather than 1 + erf, which loses all precision for x << 0 in float32
    for (size_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * vmath::erfc(x[i] * -0.70710678118654752f);
}

#ifdef MSF_X86
MSF_INTRINSICS_BEGIN
namespace {

// With a = min(|x|, 14.5), s = -a/2 / (1 + a/2) in (-0.88, 0] and
//   erfc(a / sqrt 2) / 2 = (1 + s) e^(-a^2/2 + F(s)) = -(s / a) e^(-a^2/2 + F(s)),
// where F (log erfcx rescaled) is smooth on that range; kF is its degree-10 minimax fit for a in [0, 13.3]
// (|error| < 1.6e-8, fitted for this code in float64 with float32 coefficients). Then
//   GELU(x) = max(x, 0) - a erfc(a / sqrt 2) / 2 = max(x, 0) + s e^(-a^2/2 + F(s))
// for either sign of x: one formula, no select, and an exact 0 where erfc underflows.
// - -a^2/2 is carried as hh + ll (FMA residual): e^-a^2/2 would otherwise err by a^2/2 ulps (80 at x = -13).
// - e^y = 2^k e^r, k = round(y / ln 2), r = hh - k ln2 + F + ll with ln2 split in two (k ln2 exact to 2^-33).
// - the clamp at 14.5, where GELU(-a) < 2^-150 rounds to 0, keeps +-inf and huge |x| finite inside;
//   max(x, 0) then gives GELU(+inf) = +inf and GELU(-inf) = 0.
// - NaN propagates through min/max (their second operand is x) and every later operation.
constexpr float kF[] = {0.19480396807193756f,  0.5735555291175842f,  0.5585289001464844f, 0.2644866704940796f,
                        0.11578624695539474f,  -0.08020017296075821f, 0.033121757209300995f,
                        0.09840279072523117f,  -0.3691104054450989f, 0.595766007900238f,
                        -1.531198634552311e-08f};  // highest degree first
constexpr int kDegree = sizeof kF / sizeof kF[0] - 1;
static_assert(kDegree % 2 == 0, "F is evaluated as even + s odd below");
// e^r's polynomial and the constants of the reduction, shared with softmax.cpp's exp
using exp_x86::kE;
using exp_x86::kLn2Hi;
using exp_x86::kLn2Lo;
using exp_x86::kLog2e;
using exp_x86::kRound;
constexpr float kClamp = 14.5f;

// Independent vectors per step: the formula is one chain of ~30 dependent operations, too long for the
// out-of-order window to overlap enough iterations of a one-vector loop. Measured on Zen 4 (ns per element,
// unroll 2/4/6/8): AVX-512 0.58/0.57/0.53/0.53, AVX2 0.92/0.79/0.72/0.67. AVX2, with half the lanes, goes
// further in two stages (gelu_avx2 below); AVX-512 measured no faster so (0.54-0.55).
constexpr int kUnroll512 = 6;
#define MSF_EACH for (int j = 0; j < U; ++j)

template <int U>
__attribute__((target("avx512f"), always_inline)) inline void gelu16(__m512* v) {
    // v (U, 16) in place
    __m512 a[U], pos[U], h[U], s[U], f[U], hh[U], k[U], r[U], e[U];
    MSF_EACH a[j] = _mm512_min_ps(_mm512_set1_ps(kClamp), _mm512_abs_ps(v[j]));
    MSF_EACH pos[j] = _mm512_max_ps(_mm512_setzero_ps(), v[j]);
    MSF_EACH h[j] = _mm512_mul_ps(a[j], _mm512_set1_ps(-0.5f));  // exact
    // the division is 3 uops and an 18-cycle latency, rcp14 + one Newton step 4 uops with the error of s
    // ~1 ulp; they measure the same, and the division is correctly rounded
    MSF_EACH s[j] = _mm512_div_ps(h[j], _mm512_sub_ps(_mm512_set1_ps(1.0f), h[j]));
    MSF_EACH {  // F = E(s^2) + s O(s^2): two chains of half the length
        const __m512 s2 = _mm512_mul_ps(s[j], s[j]);
        __m512 even = _mm512_set1_ps(kF[0]), odd = _mm512_set1_ps(kF[1]);
        for (int i = 2; i + 1 <= kDegree; i += 2) {
            even = _mm512_fmadd_ps(even, s2, _mm512_set1_ps(kF[i]));
            odd = _mm512_fmadd_ps(odd, s2, _mm512_set1_ps(kF[i + 1]));
        }
        even = _mm512_fmadd_ps(even, s2, _mm512_set1_ps(kF[kDegree]));
        f[j] = _mm512_fmadd_ps(odd, s[j], even);
    }
    MSF_EACH {
        hh[j] = _mm512_mul_ps(h[j], a[j]);
        const __m512 ll = _mm512_fmsub_ps(h[j], a[j], hh[j]);
        const __m512 y = _mm512_fmadd_ps(_mm512_add_ps(hh[j], f[j]), _mm512_set1_ps(kLog2e), _mm512_set1_ps(kRound));
        k[j] = _mm512_sub_ps(y, _mm512_set1_ps(kRound));
        r[j] = _mm512_fnmadd_ps(k[j], _mm512_set1_ps(kLn2Hi), hh[j]);  // exact product, |result| small
        r[j] = _mm512_add_ps(r[j], _mm512_add_ps(f[j], ll));
        r[j] = _mm512_fnmadd_ps(k[j], _mm512_set1_ps(kLn2Lo), r[j]);
    }
    MSF_EACH e[j] = _mm512_set1_ps(kE[0]);
    for (int i = 1; i < 5; ++i) MSF_EACH e[j] = _mm512_fmadd_ps(e[j], r[j], _mm512_set1_ps(kE[i]));
    MSF_EACH e[j] = _mm512_fmadd_ps(e[j], r[j], _mm512_set1_ps(1.0f));
    MSF_EACH e[j] = _mm512_fmadd_ps(e[j], r[j], _mm512_set1_ps(1.0f));  // e^r
    // scalef rounds s e^r 2^k once, into the subnormals too; its result is <= 0 and pos is 0 for x < 0
    MSF_EACH v[j] = _mm512_add_ps(pos[j], _mm512_scalef_ps(_mm512_mul_ps(e[j], s[j]), k[j]));
}

__attribute__((target("avx512f"))) void gelu_avx512(float* x, size_t n) {
    // x (n) in place
    size_t i = 0;
    for (; i + 16 * kUnroll512 <= n; i += 16 * kUnroll512) {
        __m512 v[kUnroll512];
        for (int j = 0; j < kUnroll512; ++j) v[j] = _mm512_loadu_ps(x + i + 16 * j);
        gelu16<kUnroll512>(v);
        for (int j = 0; j < kUnroll512; ++j) _mm512_storeu_ps(x + i + 16 * j, v[j]);
    }
    for (; i < n; i += 16) {  // the last < 16 * kUnroll512, by masked loads and stores
        const __mmask16 m = n - i >= 16 ? 0xffff : static_cast<__mmask16>((1u << (n - i)) - 1);
        __m512 v[1] = {_mm512_maskz_loadu_ps(m, x + i)};
        gelu16<1>(v);
        _mm512_mask_storeu_ps(x + i, m, v[0]);
    }
}

// The same formula in 8 lanes, in two stages over a block of vectors through stack buffers: the first ends
// with s, -a^2/2 = hh + ll and F, the second starts at e^y's reduction. Each stage's chain is half the
// formula's, so its unrolled vectors overlap where the whole chain's did not (Zen 4, 3264 floats, the pw3d
// feed-forward's: 0.677 -> 0.63 ns per element). Without scalef, 2^k is built in the exponent bits as
// 2^(k + 64) (a normal float for every k here, k >= -160) and the final FMA multiplies by 2^-64 and adds
// max(x, 0), rounding once.
constexpr int kBlock256 = 32;  // vectors per block
constexpr int kUnrollHead256 = 4, kUnrollTail256 = 8;

template <int U>
__attribute__((target("avx2,fma"), always_inline)) inline void gelu8_head(const float* x, float* s_out, float* hh_out,
                                                                         float* y_out, float* fl_out) {
    // x (U, 8) -> s, hh, y = hh + F (e^y's argument) and fl = F + ll, each (U, 8)
    __m256 a[U], h[U], s[U], f[U];
    MSF_EACH a[j] = _mm256_min_ps(_mm256_set1_ps(kClamp), _mm256_and_ps(_mm256_loadu_ps(x + 8 * j),
                                                                      _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff))));
    MSF_EACH h[j] = _mm256_mul_ps(a[j], _mm256_set1_ps(-0.5f));
    MSF_EACH s[j] = _mm256_div_ps(h[j], _mm256_sub_ps(_mm256_set1_ps(1.0f), h[j]));
    MSF_EACH {  // F = E(s^2) + s O(s^2): two chains of half the length
        const __m256 s2 = _mm256_mul_ps(s[j], s[j]);
        __m256 even = _mm256_set1_ps(kF[0]), odd = _mm256_set1_ps(kF[1]);
        for (int i = 2; i + 1 <= kDegree; i += 2) {
            even = _mm256_fmadd_ps(even, s2, _mm256_set1_ps(kF[i]));
            odd = _mm256_fmadd_ps(odd, s2, _mm256_set1_ps(kF[i + 1]));
        }
        even = _mm256_fmadd_ps(even, s2, _mm256_set1_ps(kF[kDegree]));
        f[j] = _mm256_fmadd_ps(odd, s[j], even);
    }
    MSF_EACH {
        const __m256 hh = _mm256_mul_ps(h[j], a[j]);
        const __m256 ll = _mm256_fmsub_ps(h[j], a[j], hh);
        _mm256_store_ps(s_out + 8 * j, s[j]);
        _mm256_store_ps(hh_out + 8 * j, hh);
        _mm256_store_ps(y_out + 8 * j, _mm256_add_ps(hh, f[j]));
        _mm256_store_ps(fl_out + 8 * j, _mm256_add_ps(f[j], ll));
    }
}

template <int U>
__attribute__((target("avx2,fma"), always_inline)) inline void gelu8_tail(float* x, const float* s_in,
                                                                         const float* hh_in, const float* y_in,
                                                                         const float* fl_in) {
    // x (U, 8) in place, from gelu8_head's s, hh, y, fl
    __m256 k[U], r[U], e[U];
    __m256i bits[U];
    MSF_EACH {
        const __m256 y = _mm256_fmadd_ps(_mm256_load_ps(y_in + 8 * j), _mm256_set1_ps(kLog2e), _mm256_set1_ps(kRound));
        k[j] = _mm256_sub_ps(y, _mm256_set1_ps(kRound));
        // y's low mantissa bits hold k + 2^22; shifted into the exponent field, the rest falls off the top
        bits[j] = _mm256_add_epi32(_mm256_slli_epi32(_mm256_castps_si256(y), 23), _mm256_set1_epi32((127 + 64) << 23));
        r[j] = _mm256_fnmadd_ps(k[j], _mm256_set1_ps(kLn2Hi), _mm256_load_ps(hh_in + 8 * j));
        r[j] = _mm256_add_ps(r[j], _mm256_load_ps(fl_in + 8 * j));
        r[j] = _mm256_fnmadd_ps(k[j], _mm256_set1_ps(kLn2Lo), r[j]);
    }
    MSF_EACH e[j] = _mm256_set1_ps(kE[0]);
    for (int i = 1; i < 5; ++i) MSF_EACH e[j] = _mm256_fmadd_ps(e[j], r[j], _mm256_set1_ps(kE[i]));
    MSF_EACH e[j] = _mm256_fmadd_ps(e[j], r[j], _mm256_set1_ps(1.0f));
    MSF_EACH e[j] = _mm256_fmadd_ps(e[j], r[j], _mm256_set1_ps(1.0f));
    MSF_EACH {
        const __m256 scaled = _mm256_mul_ps(_mm256_mul_ps(e[j], _mm256_load_ps(s_in + 8 * j)),
                                            _mm256_castsi256_ps(bits[j]));  // exact
        const __m256 pos = _mm256_max_ps(_mm256_setzero_ps(), _mm256_loadu_ps(x + 8 * j));
        _mm256_storeu_ps(x + 8 * j, _mm256_fmadd_ps(scaled, _mm256_set1_ps(0x1p-64f), pos));
    }
}

__attribute__((target("avx2,fma"))) void gelu_avx2(float* x, size_t n) {
    // x (n) in place
    alignas(32) float s[8 * kBlock256], hh[8 * kBlock256], y[8 * kBlock256], fl[8 * kBlock256];
#define MSF_AT(v) s + 8 * (v), hh + 8 * (v), y + 8 * (v), fl + 8 * (v)
    size_t i = 0;
    for (; i + 8 * kBlock256 <= n; i += 8 * kBlock256) {
        for (int v = 0; v < kBlock256; v += kUnrollHead256) gelu8_head<kUnrollHead256>(x + i + 8 * v, MSF_AT(v));
        for (int v = 0; v < kBlock256; v += kUnrollTail256) gelu8_tail<kUnrollTail256>(x + i + 8 * v, MSF_AT(v));
    }
    const int vectors = static_cast<int>((n - i) / 8);  // the last < kBlock256 vectors, one by one
    for (int v = 0; v < vectors; ++v) gelu8_head<1>(x + i + 8 * v, MSF_AT(v));
    for (int v = 0; v < vectors; ++v) gelu8_tail<1>(x + i + 8 * v, MSF_AT(v));
    i += 8 * static_cast<size_t>(vectors);
    if (i < n) {  // the last < 8 floats, through a zero-padded copy
        float part[8] = {};
        for (size_t l = 0; l < n - i; ++l) part[l] = x[i + l];
        gelu8_head<1>(part, MSF_AT(0));
        gelu8_tail<1>(part, MSF_AT(0));
        for (size_t l = 0; l < n - i; ++l) x[i + l] = part[l];
    }
#undef MSF_AT
}

#undef MSF_EACH

void gelu_baseline(float* x, size_t n) { gelu_forward_body(x, n); }

}  // namespace
MSF_INTRINSICS_END

void gelu_forward(float* x, size_t n) {
    switch (isa::active()) {
        case isa::Isa::avx512: return gelu_avx512(x, n);
        case isa::Isa::avx2: return gelu_avx2(x, n);
        default: return gelu_baseline(x, n);
    }
}
#else
void gelu_forward(float* x, size_t n) { gelu_forward_body(x, n); }
#endif

}  // namespace msf::kernels
