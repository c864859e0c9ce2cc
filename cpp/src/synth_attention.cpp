// SynthAttention (paper eq. 1-4, reduced as in the official code): softmax(SE(dense(S))) @ V
#include "kernels.hpp"

namespace msf::kernels {

size_t synth_attention_scratch(const SynthAttentionWeights& w) {
    // attention (N, d) + values (d, D) + SE scratch (N + H)
    return static_cast<size_t>(w.N) * w.d + static_cast<size_t>(w.d) * w.D + w.N + w.se_hidden;
}

void synth_attention_forward(float* out, const float* s, const SynthAttentionWeights& w, float* scratch) {
    // out (N, D), s (N, D)
    float* attention = scratch;                                   // (N, d)
    float* values = attention + static_cast<size_t>(w.N) * w.d;   // (d, D)
    float* se_scratch = values + static_cast<size_t>(w.d) * w.D;
    linear_forward(attention, s, w.dense_t, w.dense_b, w.N, w.D, w.d);
    se_layer_forward(attention, w.se1, w.se2, w.N, w.d, w.se_hidden, se_scratch);
    softmax_forward(attention, w.N, w.d);
    if (w.d < w.N) {
        linear_left_forward(values, w.value_w, w.value_b, s, w.d, w.N, w.D);
        matmul_forward(out, attention, values, w.N, w.d, w.D);
    } else {
        matmul_forward(out, attention, s, w.N, w.d, w.D);
    }
}

}  // namespace msf::kernels
