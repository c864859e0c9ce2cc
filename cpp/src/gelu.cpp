// GELU(x) = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2, the exact form of nn.GELU() (paper eq. 9's MLPs)
#include <cmath>

#include "kernels.hpp"

namespace msf::kernels {

void gelu_forward(float* x, size_t n) {
    // x (n) in place
    for (size_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
}

}  // namespace msf::kernels
