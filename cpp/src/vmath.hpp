// exp and erfc in float32 as straight-line arithmetic (no calls, no branches), so loops over them vectorise.
// libm's expf/erfcf are scalar calls and dominated the model's time; these stay within a few ulp
// (checked against the float64 reference by tests/test_kernels.py).
#pragma once
#include <cstdint>
#include <cstring>

#include "isa.hpp"

namespace msf::vmath {

// e^x: x = n ln2 + r with |r| <= ln2/2, e^r by its degree-7 Taylor polynomial (error < 6e-9 relative),
// 2^n assembled in the exponent bits. Results below float32's normal range are 0; x > 88.3 gives e^88.3.
MSF_INLINE float exp(float x) {
    const bool underflow = x < -87.3f;
    x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);  // 88.3: 2^n stays finite
    const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest
    const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;  // ln2 split hi + lo
    float p = 1.98412698e-4f;
    p = p * r + 1.38888889e-3f;
    p = p * r + 8.33333333e-3f;
    p = p * r + 4.16666667e-2f;
    p = p * r + 1.66666667e-1f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    // NaN in, NaN out (through p); n is NaN then, and converting NaN to an integer is undefined behaviour.
    const int32_t bits = (static_cast<int32_t>(n == n ? n : 0.0f) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return underflow ? 0.0f : p * scale;
}

// erfc(x) by Numerical Recipes' Chebyshev fit erfc(z) = t exp(-z^2 + poly(t)), t = 1/(1 + z/2), for z = |x|,
// |relative error| < 1.2e-7, and erfc(-z) = 2 - erfc(z). Near 0 erfc is near 1, so there is no
// cancellation to guard against (unlike erf = 1 - erfc, which the NumPy reference needs).
MSF_INLINE float erfc(float x) {
    const float z = x < 0.0f ? -x : x;
    const float t = 1.0f / (1.0f + 0.5f * z);
    float poly = 0.17087277f;
    poly = poly * t - 0.82215223f;
    poly = poly * t + 1.48851587f;
    poly = poly * t - 1.13520398f;
    poly = poly * t + 0.27886807f;
    poly = poly * t - 0.18628806f;
    poly = poly * t + 0.09678418f;
    poly = poly * t + 0.37409196f;
    poly = poly * t + 1.00002368f;
    poly = poly * t - 1.26551223f;
    const float tail = t * exp(-z * z + poly);  // erfc(|x|)
    return x < 0.0f ? 2.0f - tail : tail;  // a select, not a branch, so that loops over erfc vectorise
}

// Sums in 16 interleaved partial sums (one zmm, two ymm or four xmm registers: the compiler vectorises
// them; it may not reorder one running sum without -ffast-math), then at most one step of 8 (short rows,
// e.g. d = 12 or 25, would otherwise be mostly scalar tail), combined by a fixed tree. The order depends
// only on n, so a window's result never depends on its batch.
constexpr int kLanes = 16;

// The tree as vector adds (GCC/Clang vector extensions, lowered to what the target has): written as loops
// over acc, it ran as 15 scalar adds behind stores and reloads. Same adds, same order: lanes l += l + 8,
// l += l + 4, l += l + 2, l += l + 1.
typedef float Lanes8 __attribute__((vector_size(32)));
typedef float Lanes4 __attribute__((vector_size(16)));

MSF_INLINE float combine_lanes(const float* acc) {
    Lanes8 lo, hi;
    std::memcpy(&lo, acc, sizeof lo);
    std::memcpy(&hi, acc + 8, sizeof hi);
    const Lanes8 s8 = lo + hi;
    const Lanes4 s4 = __builtin_shufflevector(s8, s8, 0, 1, 2, 3) + __builtin_shufflevector(s8, s8, 4, 5, 6, 7);
    return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

MSF_INLINE float dot(const float* a, const float* b, int n) {
    float acc[kLanes] = {};
    int i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int l = 0; l < kLanes; ++l) acc[l] += a[i + l] * b[i + l];
    if (i + kLanes / 2 <= n) {
        for (int l = 0; l < kLanes / 2; ++l) acc[l] += a[i + l] * b[i + l];
        i += kLanes / 2;
    }
    float total = combine_lanes(acc);
    for (; i < n; ++i) total += a[i] * b[i];
    return total;
}

MSF_INLINE float sum(const float* a, int n) {
    float acc[kLanes] = {};
    int i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int l = 0; l < kLanes; ++l) acc[l] += a[i + l];
    if (i + kLanes / 2 <= n) {
        for (int l = 0; l < kLanes / 2; ++l) acc[l] += a[i + l];
        i += kLanes / 2;
    }
    float total = combine_lanes(acc);
    for (; i < n; ++i) total += a[i];
    return total;
}

// max of a[0..n), n >= 1, in 8 interleaved running maxima (one running max is a serial chain the compiler
// may not split); the maximum of finite values does not depend on the order.
MSF_INLINE float max(const float* a, int n) {
    float acc[8];
    for (int l = 0; l < 8; ++l) acc[l] = a[0];
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) acc[l] = a[i + l] > acc[l] ? a[i + l] : acc[l];
    float m = acc[0];
    for (int l = 1; l < 8; ++l) m = acc[l] > m ? acc[l] : m;
    for (; i < n; ++i) m = a[i] > m ? a[i] : m;
    return m;
}

// sum of (a[i] - mean)^2
MSF_INLINE float sum_squared_deviation(const float* a, int n, float mean) {
    float acc[kLanes] = {};
    int i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int l = 0; l < kLanes; ++l) acc[l] += (a[i + l] - mean) * (a[i + l] - mean);
    if (i + kLanes / 2 <= n) {
        for (int l = 0; l < kLanes / 2; ++l) acc[l] += (a[i + l] - mean) * (a[i + l] - mean);
        i += kLanes / 2;
    }
    float total = combine_lanes(acc);
    for (; i < n; ++i) total += (a[i] - mean) * (a[i] - mean);
    return total;
}

// out (cols, rows) = in (rows, cols)^T, by 8 x 8 blocks transposed in registers (the element-by-element loop
// was a strided scalar store per float). Named values, not arrays: GCC kept arrays of vectors in memory,
// each round a store and a reload (~90 cycles per block instead of ~25).
MSF_INLINE void transpose_block8(float* out, size_t out_stride, const float* in, size_t in_stride) {
    // the rounds of the x86 8 x 8 transpose, each pattern one instruction there (unpcklps/unpckhps, shufps,
    // vperm2f128): elements of row pairs interleaved, then pairs of them, then halves
#define MSF_INTERLEAVE(lo, hi, x, y)                                                        \
    const Lanes8 lo = __builtin_shufflevector(x, y, 0, 8, 1, 9, 4, 12, 5, 13);              \
    const Lanes8 hi = __builtin_shufflevector(x, y, 2, 10, 3, 11, 6, 14, 7, 15);
#define MSF_PAIRS(lo, hi, x, y)                                                             \
    const Lanes8 lo = __builtin_shufflevector(x, y, 0, 1, 8, 9, 4, 5, 12, 13);              \
    const Lanes8 hi = __builtin_shufflevector(x, y, 2, 3, 10, 11, 6, 7, 14, 15);
#define MSF_HALVES(c, x, y)                                                                 \
    {                                                                                       \
        const Lanes8 lo = __builtin_shufflevector(x, y, 0, 1, 2, 3, 8, 9, 10, 11);          \
        const Lanes8 hi = __builtin_shufflevector(x, y, 4, 5, 6, 7, 12, 13, 14, 15);        \
        std::memcpy(out + (c) * out_stride, &lo, sizeof lo);                                \
        std::memcpy(out + ((c) + 4) * out_stride, &hi, sizeof hi);                          \
    }
#define MSF_LOAD(i) \
    Lanes8 r##i;    \
    std::memcpy(&r##i, in + (i) * in_stride, sizeof r##i);
    MSF_LOAD(0) MSF_LOAD(1) MSF_LOAD(2) MSF_LOAD(3) MSF_LOAD(4) MSF_LOAD(5) MSF_LOAD(6) MSF_LOAD(7)
    MSF_INTERLEAVE(t0, t1, r0, r1) MSF_INTERLEAVE(t2, t3, r2, r3)
    MSF_INTERLEAVE(t4, t5, r4, r5) MSF_INTERLEAVE(t6, t7, r6, r7)
    // u<columns>: rows 0-3 (u) or 4-7 (v), columns c and c + 4
    MSF_PAIRS(u04, u15, t0, t2) MSF_PAIRS(u26, u37, t1, t3)
    MSF_PAIRS(v04, v15, t4, t6) MSF_PAIRS(v26, v37, t5, t7)
    MSF_HALVES(0, u04, v04) MSF_HALVES(1, u15, v15) MSF_HALVES(2, u26, v26) MSF_HALVES(3, u37, v37)
#undef MSF_LOAD
#undef MSF_INTERLEAVE
#undef MSF_PAIRS
#undef MSF_HALVES
}

MSF_INLINE void transpose(float* out, const float* in, int rows, int cols) {
    if (rows >= 8 && cols >= 8) {  // the last block of each axis ends at its edge, overlapping the one before
        for (int r0 = 0; r0 < rows; r0 += 8) {
            const int r = r0 + 8 <= rows ? r0 : rows - 8;
            for (int c0 = 0; c0 < cols; c0 += 8) {
                const int c = c0 + 8 <= cols ? c0 : cols - 8;
                transpose_block8(out + static_cast<size_t>(c) * rows + r, rows,
                                 in + static_cast<size_t>(r) * cols + c, cols);
            }
        }
        return;
    }
    for (int c = 0; c < cols; ++c)
        for (int r = 0; r < rows; ++r) out[static_cast<size_t>(c) * rows + r] = in[static_cast<size_t>(r) * cols + c];
}

}  // namespace msf::vmath
