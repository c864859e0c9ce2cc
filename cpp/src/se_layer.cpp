// SELayer (paper eq. 2): E * sigmoid(W2 relu(W1 mean_rows(E))), gates one per row, no biases. E arrives
// transposed (synth_attention.cpp), so the means and the gating run along its rows, and the two small
// products are GEMMs of one row on the transposed weights.

#include "kernels.hpp"
#include "vmath.hpp"

namespace msf::kernels {

static MSF_INLINE void se_layer_forward_body(float* e_t, const float* w1_t, const float* w2_t, int N, int d, int H,
                                             float* scratch) {
    // e_t (d, N) = E^T in place, w1_t (N, H), w2_t (H, N); scratch: s (N), hidden (H)
    float* s = scratch;
    float* hidden = scratch + N;
    for (int n = 0; n < N; ++n) s[n] = e_t[n];
    for (int j = 1; j < d; ++j) {
        const float* row = e_t + static_cast<size_t>(j) * N;
        for (int n = 0; n < N; ++n) s[n] += row[n];
    }
    for (int n = 0; n < N; ++n) s[n] /= static_cast<float>(d);
    linear_forward(hidden, s, w1_t, nullptr, 1, N, H);
    for (int h = 0; h < H; ++h) hidden[h] = hidden[h] > 0.0f ? hidden[h] : 0.0f;
    float* gate = s;  // s is read: the N gates take its place
    linear_forward(gate, hidden, w2_t, nullptr, 1, H, N);
    // the sigmoids as one loop over vmath::exp, which vectorises (libm's expf is a call per gate)
    for (int n = 0; n < N; ++n) gate[n] = 1.0f / (1.0f + vmath::exp(-gate[n]));
    for (int j = 0; j < d; ++j) {
        float* row = e_t + static_cast<size_t>(j) * N;
        for (int n = 0; n < N; ++n) row[n] *= gate[n];
    }
}

MSF_ISA_DISPATCH(void, se_layer_forward, (float* e_t, const float* w1_t, const float* w2_t, int N, int d, int H, float* scratch), (e_t, w1_t, w2_t, N, d, H, scratch))

}  // namespace msf::kernels
