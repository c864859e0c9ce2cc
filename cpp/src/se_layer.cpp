// SELayer (paper eq. 2): E * sigmoid(W2 relu(W1 mean_rows(E))), gates one per row, no biases

#include "kernels.hpp"
#include "vmath.hpp"

namespace msf::kernels {

static MSF_INLINE void se_layer_forward_body(float* e, const float* w1, const float* w2, int N, int d, int H, float* scratch) {
    // e (N, d) in place, w1 (H, N), w2 (N, H); scratch: s (N), hidden (H)
    float* s = scratch;
    float* hidden = scratch + N;
    for (int n = 0; n < N; ++n) s[n] = vmath::sum(e + static_cast<size_t>(n) * d, d) / static_cast<float>(d);
    for (int h = 0; h < H; ++h) {
        const float acc = vmath::dot(w1 + static_cast<size_t>(h) * N, s, N);
        hidden[h] = acc > 0.0f ? acc : 0.0f;
    }
    float* gate = s;  // s is read: the N gates take its place
    for (int n = 0; n < N; ++n) gate[n] = -vmath::dot(w2 + static_cast<size_t>(n) * H, hidden, H);
    // the sigmoids as one loop over vmath::exp, which vectorises (libm's expf is a call per gate)
    for (int n = 0; n < N; ++n) gate[n] = 1.0f / (1.0f + vmath::exp(gate[n]));
    for (int n = 0; n < N; ++n)
        for (int j = 0; j < d; ++j) e[static_cast<size_t>(n) * d + j] *= gate[n];
}

MSF_ISA_DISPATCH(void, se_layer_forward, (float* e, const float* w1, const float* w2, int N, int d, int H, float* scratch), (e, w1, w2, N, d, H, scratch))

}  // namespace msf::kernels
