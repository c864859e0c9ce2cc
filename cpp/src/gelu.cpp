// GELU(x) = x Phi(x) = x erfc(-x / sqrt 2) / 2, the exact form of nn.GELU() (the MLPs of eq. 9)
#include <cmath>

#include "kernels.hpp"
#include "vmath.hpp"

namespace msf::kernels {

void gelu_forward_naive(float* x, size_t n) {
    // x (n) in place, with libm's erfc
    for (size_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * std::erfc(x[i] * -0.70710678118654752f);
}

static MSF_INLINE void gelu_forward_body(float* x, size_t n) {
    // x (n) in place; erfc rather than 1 + erf, which loses all precision for x << 0 in float32
    for (size_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * vmath::erfc(x[i] * -0.70710678118654752f);
}

MSF_ISA_DISPATCH(void, gelu_forward, (float* x, size_t n), (x, n))

}  // namespace msf::kernels
