// Linear layers and the matrix products of the synthesiser (paper eq. 1, 4, 5).
#include "kernels.hpp"

namespace msf::kernels {

void matmul_forward(float* out, const float* a, const float* b, int M, int K, int N) {
    // out (M, N) = a (M, K) @ b (K, N); row of out accumulated as axpys over rows of b (vectorisable)
    for (int m = 0; m < M; ++m) {
        float* o = out + static_cast<size_t>(m) * N;
        for (int n = 0; n < N; ++n) o[n] = 0.0f;
        const float* am = a + static_cast<size_t>(m) * K;
        for (int k = 0; k < K; ++k) {
            const float s = am[k];
            const float* bk = b + static_cast<size_t>(k) * N;
            for (int n = 0; n < N; ++n) o[n] += s * bk[n];
        }
    }
}

void linear_forward_naive(float* out, const float* in, const float* weight, const float* bias, int M, int K,
                          int N) {
    // out (M, N) = in (M, K) @ weight (N, K)^T + bias (N)
    for (int m = 0; m < M; ++m) {
        for (int n = 0; n < N; ++n) {
            float acc = bias ? bias[n] : 0.0f;
            for (int k = 0; k < K; ++k) acc += in[static_cast<size_t>(m) * K + k] * weight[static_cast<size_t>(n) * K + k];
            out[static_cast<size_t>(m) * N + n] = acc;
        }
    }
}

void linear_forward(float* out, const float* in, const float* weight_t, const float* bias, int M, int K, int N) {
    // out (M, N) = in (M, K) @ weight_t (K, N) + bias (N)
    matmul_forward(out, in, weight_t, M, K, N);
    if (!bias) return;
    for (int m = 0; m < M; ++m) {
        float* o = out + static_cast<size_t>(m) * N;
        for (int n = 0; n < N; ++n) o[n] += bias[n];
    }
}

void linear_left_forward(float* out, const float* weight, const float* bias, const float* in, int M, int K,
                         int N) {
    // out (M, N) = weight (M, K) @ in (K, N) + bias (M)[:, None]
    matmul_forward(out, weight, in, M, K, N);
    if (!bias) return;
    for (int m = 0; m < M; ++m) {
        float* o = out + static_cast<size_t>(m) * N;
        for (int n = 0; n < N; ++n) o[n] += bias[m];
    }
}

}  // namespace msf::kernels
