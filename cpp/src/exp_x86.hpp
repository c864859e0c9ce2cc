// e^x for x86 kernels written with intrinsics (gelu.cpp, softmax.cpp): the constants of one exp, and e^x on
// 16 lanes for x <= 0, the softmax's arguments. x = k ln2 + r, |r| <= ln2/2, e^r by a polynomial, 2^k by
// vscalefps, which rounds once, into the subnormals too, so no clamps or selects are needed.
#pragma once
#include "isa.hpp"

#ifdef MSF_X86
#include <immintrin.h>

// Around code written with AVX-512 intrinsics: GCC 12's pass a self-initialised placeholder
// (_mm512_undefined_ps) that -Wextra flags once inlined (Clang does not know the warning).
#if defined(__GNUC__) && !defined(__clang__)
#define MSF_INTRINSICS_BEGIN _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")
#define MSF_INTRINSICS_END _Pragma("GCC diagnostic pop")
#else
#define MSF_INTRINSICS_BEGIN
#define MSF_INTRINSICS_END
#endif

namespace msf::exp_x86 {

// e^r = 1 + r (1 + r (kE[4] + r (kE[3] + ... + r kE[0]))) on |r| <= 0.348: minimax, relative error < 3.3e-9 in
// float32 coefficients (our own fit)
constexpr float kE[] = {0.0013818735023960471f, 0.0083687212318182f, 0.04166829213500023f, 0.1666652113199234f,
                        0.4999999403953552f};
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693147182464599609375f;   // float(ln 2)
constexpr float kLn2Lo = -1.904654323148236e-09f;    // ln 2 - kLn2Hi
constexpr float kRound = 12582912.0f;                // 1.5 * 2^23: adding it rounds to an integer

// e^x for x <= 0 (or NaN: NaN out), within ~2 ulp; below -104 the result is 0 (e^-104 < 2^-150).
__attribute__((target("avx512f"), always_inline)) inline __m512 exp_nonpositive16(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);  // NaN stays: max returns its second operand then
    const __m512 k = _mm512_sub_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(kLog2e), _mm512_set1_ps(kRound)),
                                   _mm512_set1_ps(kRound));
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(kLn2Hi), x);  // one rounding of a small result (FMA)
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(kLn2Lo), r);
    __m512 e = _mm512_set1_ps(kE[0]);
    for (int i = 1; i < 5; ++i) e = _mm512_fmadd_ps(e, r, _mm512_set1_ps(kE[i]));
    e = _mm512_fmadd_ps(e, r, _mm512_set1_ps(1.0f));
    e = _mm512_fmadd_ps(e, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(e, k);
}

// The same on 8 lanes (AVX2+FMA). Without scalef, 2^k is built in the exponent bits as 2^(k + 64), a normal
// float for every k here (k >= -151), and the product with e is multiplied by 2^-64 last, rounding once.
__attribute__((target("avx2,fma"), always_inline)) inline __m256 exp_nonpositive8(__m256 x) {
    x = _mm256_max_ps(_mm256_set1_ps(-104.0f), x);  // NaN stays, as above
    const __m256 y = _mm256_fmadd_ps(x, _mm256_set1_ps(kLog2e), _mm256_set1_ps(kRound));
    const __m256 k = _mm256_sub_ps(y, _mm256_set1_ps(kRound));
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(kLn2Hi), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(kLn2Lo), r);
    __m256 e = _mm256_set1_ps(kE[0]);
    for (int i = 1; i < 5; ++i) e = _mm256_fmadd_ps(e, r, _mm256_set1_ps(kE[i]));
    e = _mm256_fmadd_ps(e, r, _mm256_set1_ps(1.0f));
    e = _mm256_fmadd_ps(e, r, _mm256_set1_ps(1.0f));
    // y's low mantissa bits hold k + 2^22; shifted into the exponent field, the rest falls off the top
    const __m256i bits = _mm256_add_epi32(_mm256_slli_epi32(_mm256_castps_si256(y), 23),
                                          _mm256_set1_epi32((127 + 64) << 23));
    return _mm256_mul_ps(_mm256_mul_ps(e, _mm256_castsi256_ps(bits)), _mm256_set1_ps(0x1p-64f));  // exact, then rounded
}

}  // namespace msf::exp_x86

#endif  // MSF_X86
