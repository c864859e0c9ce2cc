// The GEMM on AArch64 with Advanced SIMD (NEON): 6-row x 16-column register tiles (24 of the 32 q registers
// accumulate), 4-column and single-column tiles for the last columns. Every output is one chain of fused
// multiply-adds over k in order (std::fma in the single columns is the same operation), whatever its tile.
#include "gemm.hpp"

#ifdef MSF_ARM64
#include <arm_neon.h>

#include <cmath>
#include <cstddef>

namespace msf::kernels::gemm {
namespace {

constexpr int kRows = 6;

// out[rows <= 6, 4 V columns] = a (rows, K) @ b (K, N)[:, :4V] + biases, row r's k-th element of a at
// a[r * row_stride + k * k_stride]. Rows beyond `rows` re-read row 0 and are never stored, so one kernel serves
// the last, partial row block.
template <int V>
void tile(float* out, const float* a, size_t row_stride, size_t k_stride, const float* b, const float* col_bias,
          const float* row_bias, int rows, int K, int N) {
    const float* ar[kRows];
    float32x4_t acc[kRows][V];
    for (int r = 0; r < kRows; ++r) {
        ar[r] = a + static_cast<size_t>(rows > r ? r : 0) * row_stride;
        const float32x4_t rb = vdupq_n_f32(row_bias && rows > r ? row_bias[r] : 0.0f);
        for (int v = 0; v < V; ++v) acc[r][v] = vaddq_f32(col_bias ? vld1q_f32(col_bias + 4 * v) : vdupq_n_f32(0.0f), rb);
    }
    for (int k = 0; k < K; ++k) {
        float32x4_t bk[V];
        for (int v = 0; v < V; ++v) bk[v] = vld1q_f32(b + static_cast<size_t>(k) * N + 4 * v);
        for (int r = 0; r < kRows; ++r) {
            const float s = ar[r][static_cast<size_t>(k) * k_stride];
            for (int v = 0; v < V; ++v) acc[r][v] = vfmaq_n_f32(acc[r][v], bk[v], s);
        }
    }
    for (int r = 0; r < rows; ++r)
        for (int v = 0; v < V; ++v) vst1q_f32(out + static_cast<size_t>(r) * N + 4 * v, acc[r][v]);
}

// One output column n of rows [0, rows), the same fused chain as the vector lanes.
void column(float* out, const float* a, size_t row_stride, size_t k_stride, const float* b, const float* col_bias,
            const float* row_bias, int rows, int K, int N, int n) {
    for (int r = 0; r < rows; ++r) {
        const float* ar = a + static_cast<size_t>(r) * row_stride;
        float acc = (col_bias ? col_bias[n] : 0.0f) + (row_bias ? row_bias[r] : 0.0f);
        for (int k = 0; k < K; ++k)
            acc = std::fma(ar[static_cast<size_t>(k) * k_stride], b[static_cast<size_t>(k) * N + n], acc);
        out[static_cast<size_t>(r) * N + n] = acc;
    }
}

}  // namespace

void neon(float* out, const float* a, const float* b, const float* col_bias, const float* row_bias, int M, int K,
          int N, bool a_transposed) {
    // a^T (K, M) when a_transposed: row r's elements are M apart
    const size_t rs = a_transposed ? 1 : static_cast<size_t>(K), ks = a_transposed ? static_cast<size_t>(M) : 1;
    for (int m = 0; m < M; m += kRows) {
        const int rows = M - m < kRows ? M - m : kRows;
        float* o = out + static_cast<size_t>(m) * N;
        const float* am = a + static_cast<size_t>(m) * rs;
        const float* rb = row_bias ? row_bias + m : nullptr;
        int n = 0;
        for (; n + 16 <= N; n += 16) tile<4>(o + n, am, rs, ks, b + n, col_bias ? col_bias + n : nullptr, rb, rows, K, N);
        for (; n + 4 <= N; n += 4) tile<1>(o + n, am, rs, ks, b + n, col_bias ? col_bias + n : nullptr, rb, rows, K, N);
        for (; n < N; ++n) column(o, am, rs, ks, b, col_bias, rb, rows, K, N, n);
    }
}

}  // namespace msf::kernels::gemm

#endif  // MSF_ARM64
