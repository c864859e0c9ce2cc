// The GEMM's versions, one file per ISA family (gemm_x86.cpp, gemm_arm.cpp; the portable one in linear.cpp).
// Each computes out (M, N) = a (M, K) @ b (K, N) + col_bias (N, or null) + row_bias (M, or null), every output
// summed over k in order, so an output never depends on M (the batch) or on where its tile falls.
#pragma once
#include "isa.hpp"

namespace msf::kernels::gemm {

using Fn = void (*)(float* out, const float* a, const float* b, const float* col_bias, const float* row_bias, int M,
                    int K, int N);

void portable(float* out, const float* a, const float* b, const float* col_bias, const float* row_bias, int M, int K,
              int N);
#ifdef MSF_X86
void avx2(float* out, const float* a, const float* b, const float* col_bias, const float* row_bias, int M, int K,
          int N);
void avx512(float* out, const float* a, const float* b, const float* col_bias, const float* row_bias, int M, int K,
            int N);
#endif
#ifdef MSF_ARM64
void neon(float* out, const float* a, const float* b, const float* col_bias, const float* row_bias, int M, int K,
          int N);
#endif

}  // namespace msf::kernels::gemm
