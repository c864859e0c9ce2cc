// The model's operators as float32 kernels: op_forward(out, in, weights..., dims...), row-major.
#pragma once
#include <cstddef>
#include <string>

namespace msf::kernels {

// Buffers start on 64-byte cache lines: the model's storage is aligned (model.cpp), and each sub-buffer of a
// workspace or scratch starts at a multiple of kAlignFloats, so that AVX-512 rows of 16k floats never straddle
// two lines. aligned_floats(n) is n rounded up to that multiple.
constexpr size_t kAlignFloats = 16;
constexpr size_t aligned_floats(size_t n) { return (n + kAlignFloats - 1) / kAlignFloats * kAlignFloats; }

// out (M, N) = a (M, K) @ b (K, N)
void matmul_forward(float* out, const float* a, const float* b, int M, int K, int N);
// out (M, N) = a_t (K, M)^T @ b (K, N) + row_bias (M, or null) broadcast along rows
void matmul_at_forward(float* out, const float* a_t, const float* b, const float* row_bias, int M, int K, int N);
// The GEMM version this CPU runs: "avx512", "avx2" or "portable".
const char* gemm_isa();
// out (M, N) = a @ b + col_bias (N, or null) + row_bias (M, or null) with one named version, for tests; a is
// (K, M) and read transposed when a_transposed. False when this CPU or build lacks the version.
bool gemm_forward_isa(const std::string& isa, float* out, const float* a, const float* b, const float* col_bias,
                      const float* row_bias, int M, int K, int N, bool a_transposed = false);
// out (M, N) = in (M, K) @ weight (N, K)^T + bias (N); nn.Linear as stored, one dot product per output
void linear_forward_naive(float* out, const float* in, const float* weight, const float* bias, int M, int K,
                          int N);
// out (M, N) = in (M, K) @ weight_t (K, N) + bias (N); weight pre-transposed so the inner loop is contiguous
void linear_forward(float* out, const float* in, const float* weight_t, const float* bias, int M, int K, int N);
// out (M, N) = weight (M, K) @ in (K, N) + bias (M) broadcast along rows; a Linear applied along axis 0
void linear_left_forward(float* out, const float* weight, const float* bias, const float* in, int M, int K,
                         int N);
// x (n) in place: x * Phi(x), exact erf form; the naive version calls libm's erfc
void gelu_forward(float* x, size_t n);
void gelu_forward_naive(float* x, size_t n);
// x (rows, cols) in place: softmax over each row
void softmax_forward(float* x, int rows, int cols);
// x (rows, cols) in place: softmax down each column
void softmax_columns_forward(float* x, int rows, int cols);
// out (rows, C) = layer norm of in + residual (rows, C; residual may be null) over C, eps 1e-5, affine; out may
// alias in or residual
void layer_norm_forward(float* out, const float* in, const float* residual, const float* weight, const float* bias,
                        int rows, int C);
// e_t (d, N) = E^T in place: E's rows (e_t's columns) rescaled by sigmoid(w2 (N, H) @ relu(w1 (H, N) @
// mean_rows(E))), the weights given transposed: w1_t (N, H), w2_t (H, N); scratch >= N + H
void se_layer_forward(float* e_t, const float* w1_t, const float* w2_t, int N, int d, int H, float* scratch);

// Tensors of one SynthAttention(in=D, out=N, r): sizes and pre-transposed dense weight.
struct SynthAttentionWeights {
    int N, D, d, se_hidden;
    const float* dense_t;  // (D, d)
    const float* dense_b;  // (d)
    const float* se1_t;    // (N, se_hidden), SELayer's first weight transposed
    const float* se2_t;    // (se_hidden, N)
    const float* value_w;  // (d, N), used only when d < N
    const float* value_b;  // (d)
};
// Floats of scratch synth_attention_forward needs.
size_t synth_attention_scratch(const SynthAttentionWeights& w);
// out (N, D) = softmax(SE(s @ dense^T + b)) (N, d) @ V, V = value_reduce along N (d, D) or s itself; s (N, D)
// and s_t = s^T (D, N) both given
void synth_attention_forward(float* out, const float* s, const float* s_t, const SynthAttentionWeights& w,
                             float* scratch);
// out_t (D, N) = the same out, transposed
void synth_attention_t_forward(float* out_t, const float* s, const float* s_t, const SynthAttentionWeights& w,
                               float* scratch);

struct MixSynthAttentionWeights {
    int T, C, reweight_hidden;
    SynthAttentionWeights token, channel;  // token: N = T, D = C; channel: N = C, D = T
    const float* fc1_t;   // (T, H)
    const float* fc1_b;   // (H)
    const float* fc2_t;   // (H, 2T)
    const float* fc2_b;   // (2T)
    const float* proj_t;  // (C, C)
    const float* proj_b;  // (C)
};
size_t mix_synth_attention_scratch(const MixSynthAttentionWeights& w);
// out (T, C) = proj(a0 * SynthToken(z) + a1 * SynthChannel(z^T)^T), a per frame from the mixing MLP
void mix_synth_attention_forward(float* out, const float* z, const MixSynthAttentionWeights& w, float* scratch);

}  // namespace msf::kernels
