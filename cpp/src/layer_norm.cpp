// LN(x) = (x - mean) / sqrt(var + 1e-5) * weight + bias over the channels, biased variance (nn.LayerNorm);
// x = in + residual, the sum of a block's residual connection and its sub-layer, formed here in one pass
#include <cmath>

#include "kernels.hpp"
#include "vmath.hpp"

namespace msf::kernels {

static MSF_INLINE void layer_norm_forward_body(float* out, const float* in, const float* residual, const float* weight,
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

MSF_ISA_DISPATCH(void, layer_norm_forward, (float* out, const float* in, const float* residual, const float* weight, const float* bias, int rows, int C), (out, in, residual, weight, bias, rows, C))

}  // namespace msf::kernels
