// The GEMM's versions, one file per ISA family (gemm_x86.cpp, gemm_arm.cpp; the portable one in linear.cpp).
// Each computes out (M, N) = a (M, K) @ b (K, N) + col_bias (N, or null) + row_bias (M, or null), every output
// summed over k in order, so an output never depends on M (the batch) or on where its tile falls. With
// a_transposed, a is given as a^T (K, M): the synthesisers' attention is computed transposed (synth_attention.cpp).
#pragma once
#include "isa.hpp"

namespace msf::kernels::gemm {

using Fn = void (*)(float* out, const float* a, const float* b, const float* col_bias, const float* row_bias, int M,
                    int K, int N, bool a_transposed);

void portable(float* out, const float* a, const float* b, const float* col_bias, const float* row_bias, int M, int K,
              int N, bool a_transposed);
#ifdef MSF_X86
void avx2(float* out, const float* a, const float* b, const float* col_bias, const float* row_bias, int M, int K,
          int N, bool a_transposed);
void avx512(float* out, const float* a, const float* b, const float* col_bias, const float* row_bias, int M, int K,
            int N, bool a_transposed);
#endif
#ifdef MSF_ARM64
void neon(float* out, const float* a, const float* b, const float* col_bias, const float* row_bias, int M, int K,
          int N, bool a_transposed);
#endif

}  // namespace msf::kernels::gemm
