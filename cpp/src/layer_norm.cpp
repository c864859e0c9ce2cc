// LN(x) = (x - mean) / sqrt(var + 1e-5) * weight + bias over the channels, biased variance (nn.LayerNorm)
#include <cmath>

#include "kernels.hpp"
#include "vmath.hpp"

namespace msf::kernels {

static MSF_INLINE void layer_norm_forward_body(float* out, const float* in, const float* weight, const float* bias, int rows, int C) {
    // out (rows, C), in (rows, C), weight (C), bias (C)
    for (int r = 0; r < rows; ++r) {
        const float* x = in + static_cast<size_t>(r) * C;
        float* y = out + static_cast<size_t>(r) * C;
        const float mean = vmath::sum(x, C) / static_cast<float>(C);
        // two passes: the one-pass E[x^2] - mean^2 form cancels badly in float32
        const float var = vmath::sum_squared_deviation(x, C, mean) / static_cast<float>(C);
        const float inv_std = 1.0f / std::sqrt(var + 1e-5f);
        for (int c = 0; c < C; ++c) y[c] = (x[c] - mean) * inv_std * weight[c] + bias[c];
    }
}

MSF_ISA_DISPATCH(void, layer_norm_forward, (float* out, const float* in, const float* weight, const float* bias, int rows, int C), (out, in, weight, bias, rows, C))

}  // namespace msf::kernels
