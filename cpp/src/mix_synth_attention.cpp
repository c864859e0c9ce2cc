// MixSynthAttention (paper eq. 5-8; mixed per frame with a GELU MLP, as the official code does)
#include <cmath>

#include "kernels.hpp"
#include "vmath.hpp"

namespace msf::kernels {

// Where the branch scratch starts: after z^T, y_token, y_channel, mixed (each T*C), g (T), hidden (H), m (2T),
// on a cache line
static size_t branch_scratch_offset(const MixSynthAttentionWeights& w) {
    return aligned_floats(4 * static_cast<size_t>(w.T) * w.C + w.T + w.reweight_hidden + 2 * static_cast<size_t>(w.T));
}

size_t mix_synth_attention_scratch(const MixSynthAttentionWeights& w) {
    const size_t branch = synth_attention_scratch(w.token) > synth_attention_scratch(w.channel)
                              ? synth_attention_scratch(w.token)
                              : synth_attention_scratch(w.channel);
    return branch_scratch_offset(w) + branch;
}

static MSF_INLINE void mix_synth_attention_forward_body(float* out, const float* z, const MixSynthAttentionWeights& w, float* scratch) {
    // out (T, C), z (T, C)
    const int T = w.T, C = w.C;
    const size_t TC = static_cast<size_t>(T) * C;
    float* z_t = scratch;              // (C, T)
    float* y_token = z_t + TC;         // (T, C)
    float* y_channel = y_token + TC;   // (T, C)
    float* mixed = y_channel + TC;     // (T, C)
    float* g = mixed + TC;             // (T)
    float* hidden = g + T;             // (H)
    float* m = hidden + w.reweight_hidden;  // (2T)
    float* branch_scratch = scratch + branch_scratch_offset(w);

    vmath::transpose(z_t, z, T, C);
    synth_attention_forward(y_token, z, z_t, w.token, branch_scratch);
    // the channel branch attends over channels of z^T; its output comes transposed back to (T, C)
    synth_attention_t_forward(y_channel, z_t, z, w.channel, branch_scratch);

    // g[t] = mean over channels of y_token + y_channel; the divisions in a loop of their own, which
    // vectorises (one per row, each ending its row's chain: pw3d batch 1, AVX2, Zen 4: 57.6 -> 57.3 us)
    for (int t = 0; t < T; ++t) {
        const size_t row = static_cast<size_t>(t) * C;
        g[t] = vmath::sum(y_token + row, C) + vmath::sum(y_channel + row, C);
    }
    for (int t = 0; t < T; ++t) g[t] /= static_cast<float>(C);
    linear_forward(hidden, g, w.fc1_t, w.fc1_b, 1, T, w.reweight_hidden);
    gelu_forward(hidden, static_cast<size_t>(w.reweight_hidden));
    linear_forward(m, hidden, w.fc2_t, w.fc2_b, 1, w.reweight_hidden, 2 * T);
    softmax_forward(m, T, 2);  // pairs (m[2t], m[2t+1]) are frame t's two branch weights
    for (int t = 0; t < T; ++t) {
        const float a_token = m[2 * t], a_channel = m[2 * t + 1];
        const size_t row = static_cast<size_t>(t) * C;
        for (int c = 0; c < C; ++c) mixed[row + c] = a_token * y_token[row + c] + a_channel * y_channel[row + c];
    }
    linear_forward(out, mixed, w.proj_t, w.proj_b, T, C, C);
}

MSF_ISA_DISPATCH(void, mix_synth_attention_forward, (float* out, const float* z, const MixSynthAttentionWeights& w, float* scratch), (out, z, w, scratch))

}  // namespace msf::kernels
