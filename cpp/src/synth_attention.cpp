// SynthAttention (paper eq. 1-4, reduced as in the official code): softmax(SE(dense(S))) @ V
//
// The attention A (N, d) is computed as A^T (d, N): the SE means and gates and the softmax then run along
// rows of N floats (d is short, 12-32 in the official configs, and rows of d vectorised badly), and the GEMM
// reads A^T as it is (matmul_at_forward). The output comes as (N, D) or as its transpose, whichever the
// caller needs, each one GEMM.
#include "kernels.hpp"

namespace msf::kernels {

size_t synth_attention_scratch(const SynthAttentionWeights& w) {
    // attention^T (d, N), then on a cache line values (d, D) + SE scratch (N + H)
    return aligned_floats(static_cast<size_t>(w.N) * w.d) + static_cast<size_t>(w.d) * w.D + w.N + w.se_hidden;
}

namespace {

// The attention^T (d, N) = softmax over d of SE(s @ dense^T + b), transposed, into scratch, and the values:
// V = value_reduce of s along N (d, D) into scratch when d < N, else s itself (then d = N). Returns V.
const float* attention_t_and_values(float* attention_t, const float* s, const float* s_t,
                                    const SynthAttentionWeights& w) {
    float* values = attention_t + aligned_floats(static_cast<size_t>(w.N) * w.d);  // (d, D)
    matmul_at_forward(attention_t, w.dense_t, s_t, w.dense_b, w.d, w.D, w.N);  // dense (d, D) @ s^T (D, N) + b
    se_layer_forward(attention_t, w.se1_t, w.se2_t, w.N, w.d, w.se_hidden, values + static_cast<size_t>(w.d) * w.D);
    softmax_columns_forward(attention_t, w.d, w.N);
    if (w.d == w.N) return s;
    linear_left_forward(values, w.value_w, w.value_b, s, w.d, w.N, w.D);
    return values;
}

}  // namespace

void synth_attention_forward(float* out, const float* s, const float* s_t, const SynthAttentionWeights& w,
                             float* scratch) {
    // out (N, D) = A (N, d) @ V (d, D), s (N, D), s_t (D, N) = s^T
    const float* values = attention_t_and_values(scratch, s, s_t, w);
    matmul_at_forward(out, scratch, values, nullptr, w.N, w.d, w.D);
}

void synth_attention_t_forward(float* out_t, const float* s, const float* s_t, const SynthAttentionWeights& w,
                               float* scratch) {
    // out_t (D, N) = out^T = V^T (D, d) @ A^T (d, N), s (N, D), s_t (D, N) = s^T
    const float* values = attention_t_and_values(scratch, s, s_t, w);
    matmul_at_forward(out_t, values, scratch, nullptr, w.D, w.d, w.N);
}

}  // namespace msf::kernels
