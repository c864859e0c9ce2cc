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

MSF_INLINE float combine_lanes(float* acc) {
    for (int width = kLanes / 2; width >= 1; width /= 2)
        for (int l = 0; l < width; ++l) acc[l] += acc[l + width];
    return acc[0];
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

}  // namespace msf::vmath
