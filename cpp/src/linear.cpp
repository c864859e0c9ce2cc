// Linear layers and the matrix products of the synthesiser (paper eq. 1, 4, 5).
//
// One GEMM, out (M, N) = a (M, K) @ b (K, N) + col_bias (N) + row_bias (M), serves every product of the
// model. This file holds the portable version (row axpys, which compilers vectorise) and the dispatch to the
// version for the ISA isa::active() chose (gemm.hpp); each sums every output over k in order, so a window's
// result does not depend on the batch it is in.
#include <cstddef>
#include <string>

#include "gemm.hpp"
#include "kernels.hpp"

namespace msf::kernels {

void gemm::portable(float* out, const float* a, const float* b, const float* col_bias, const float* row_bias, int M,
                    int K, int N, bool a_transposed) {
    // out (M, N) = a (M, K) @ b (K, N) + biases; a read as a^T (K, M) when a_transposed
    const size_t row_stride = a_transposed ? 1 : static_cast<size_t>(K), k_stride = a_transposed ? M : 1;
    for (int m = 0; m < M; ++m) {
        float* o = out + static_cast<size_t>(m) * N;
        const float rb = row_bias ? row_bias[m] : 0.0f;
        for (int n = 0; n < N; ++n) o[n] = (col_bias ? col_bias[n] : 0.0f) + rb;
        const float* am = a + static_cast<size_t>(m) * row_stride;
        for (int k = 0; k < K; ++k) {
            const float s = am[static_cast<size_t>(k) * k_stride];
            const float* bk = b + static_cast<size_t>(k) * N;
            for (int n = 0; n < N; ++n) o[n] += s * bk[n];
        }
    }
}

namespace {

// The version of each ISA in isa::table(), or null where this build has none.
gemm::Fn gemm_for(isa::Isa isa) {
    switch (isa) {
#ifdef MSF_X86
        case isa::Isa::avx512: return gemm::avx512;
        case isa::Isa::avx2: return gemm::avx2;
#endif
#ifdef MSF_ARM64
        case isa::Isa::neon: return gemm::neon;
#endif
        case isa::Isa::portable: return gemm::portable;
        default: return nullptr;
    }
}

void gemm_run(float* out, const float* a, const float* b, const float* col_bias, const float* row_bias, int M, int K,
              int N, bool a_transposed = false) {
    if (M > 0 && N > 0) gemm_for(isa::active())(out, a, b, col_bias, row_bias, M, K, N, a_transposed);
}

}  // namespace

const char* gemm_isa() { return isa::name(isa::active()); }

bool gemm_forward_isa(const std::string& name, float* out, const float* a, const float* b, const float* col_bias,
                      const float* row_bias, int M, int K, int N, bool a_transposed) {
    const isa::Entry* e = isa::find(name);
    const gemm::Fn fn = e && e->available ? gemm_for(e->isa) : nullptr;
    if (!fn) return false;
    if (M > 0 && N > 0) fn(out, a, b, col_bias, row_bias, M, K, N, a_transposed);
    return true;
}

void matmul_forward(float* out, const float* a, const float* b, int M, int K, int N) {
    // out (M, N) = a (M, K) @ b (K, N)
    gemm_run(out, a, b, nullptr, nullptr, M, K, N);
}

void matmul_at_forward(float* out, const float* a_t, const float* b, const float* row_bias, int M, int K, int N) {
    // out (M, N) = a_t (K, M)^T @ b (K, N) + row_bias (M)[:, None]
    gemm_run(out, a_t, b, nullptr, row_bias, M, K, N, true);
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
    gemm_run(out, in, weight_t, bias, nullptr, M, K, N);
}

void linear_left_forward(float* out, const float* weight, const float* bias, const float* in, int M, int K,
                         int N) {
    // out (M, N) = weight (M, K) @ in (K, N) + bias (M)[:, None]
    gemm_run(out, weight, in, nullptr, bias, M, K, N);
}

}  // namespace msf::kernels
