// Linear layers and the matrix products of the synthesiser (paper eq. 1, 4, 5).
//
// One GEMM, out (M, N) = a (M, K) @ b (K, N) + col_bias (N) + row_bias (M), serves every product of the
// model. A portable version (row axpys, which compilers vectorise) runs everywhere; on x86-64 the CPU is
// asked once at run time and register-blocked AVX2+FMA or AVX-512 versions run where it has them, so
// one build runs on any x86-64 and still builds elsewhere. Every version sums each output over k in
// order, so a window's result does not depend on the batch it is in.
#include <cstddef>
#include <string>

#include "kernels.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#define MSF_X86_DISPATCH 1
#include <immintrin.h>
#endif

namespace msf::kernels {
namespace {

void gemm_portable(float* out, const float* a, const float* b, const float* col_bias, const float* row_bias,
                   int M, int K, int N) {
    // out (M, N) = a (M, K) @ b (K, N) + biases
    for (int m = 0; m < M; ++m) {
        float* o = out + static_cast<size_t>(m) * N;
        const float rb = row_bias ? row_bias[m] : 0.0f;
        for (int n = 0; n < N; ++n) o[n] = (col_bias ? col_bias[n] : 0.0f) + rb;
        const float* am = a + static_cast<size_t>(m) * K;
        for (int k = 0; k < K; ++k) {
            const float s = am[k];
            const float* bk = b + static_cast<size_t>(k) * N;
            for (int n = 0; n < N; ++n) o[n] += s * bk[n];
        }
    }
}

#ifdef MSF_X86_DISPATCH

template <bool FULL>
__attribute__((target("avx2,fma"))) inline __m256 load_avx2(const float* p, __m256i mask) {
    return FULL ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask);
}

// A tile of R rows x 16 columns held in 2R ymm accumulators; `width` < 16 columns use masked loads/stores.
template <int R, bool FULL>
__attribute__((target("avx2,fma"))) inline void tile_avx2(float* out, const float* a, const float* b,
                                                           const float* col_bias, const float* row_bias,
                                                           int K, int N, int width) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(width), lane);
    const __m256i mask1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(width - 8), lane);
    __m256 acc[R][2];
    const __m256 cb0 = col_bias ? load_avx2<FULL>(col_bias, mask0) : _mm256_setzero_ps();
    const __m256 cb1 = col_bias ? load_avx2<FULL>(col_bias + 8, mask1) : _mm256_setzero_ps();
    for (int r = 0; r < R; ++r) {
        const __m256 rb = _mm256_set1_ps(row_bias ? row_bias[r] : 0.0f);
        acc[r][0] = _mm256_add_ps(cb0, rb);
        acc[r][1] = _mm256_add_ps(cb1, rb);
    }
    for (int k = 0; k < K; ++k) {
        const float* bk = b + static_cast<size_t>(k) * N;
        const __m256 b0 = load_avx2<FULL>(bk, mask0), b1 = load_avx2<FULL>(bk + 8, mask1);
        for (int r = 0; r < R; ++r) {
            const __m256 s = _mm256_broadcast_ss(a + static_cast<size_t>(r) * K + k);
            acc[r][0] = _mm256_fmadd_ps(s, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(s, b1, acc[r][1]);
        }
    }
    for (int r = 0; r < R; ++r) {
        float* o = out + static_cast<size_t>(r) * N;
        if (FULL) {
            _mm256_storeu_ps(o, acc[r][0]);
            _mm256_storeu_ps(o + 8, acc[r][1]);
        } else {
            _mm256_maskstore_ps(o, mask0, acc[r][0]);
            _mm256_maskstore_ps(o + 8, mask1, acc[r][1]);
        }
    }
}

template <int R>
__attribute__((target("avx2,fma"))) void rows_avx2(float* out, const float* a, const float* b, const float* col_bias,
                                                   const float* row_bias, int K, int N) {
    int n = 0;
    for (; n + 16 <= N; n += 16)
        tile_avx2<R, true>(out + n, a, b + n, col_bias ? col_bias + n : nullptr, row_bias, K, N, 16);
    if (n < N) tile_avx2<R, false>(out + n, a, b + n, col_bias ? col_bias + n : nullptr, row_bias, K, N, N - n);
}

__attribute__((target("avx2,fma"))) void gemm_avx2(float* out, const float* a, const float* b, const float* col_bias,
                                                   const float* row_bias, int M, int K, int N) {
    constexpr int R = 6;  // 12 accumulators + 2 rows of b + 1 broadcast fit the 16 ymm registers
    int m = 0;
    for (; m + R <= M; m += R)
        rows_avx2<R>(out + static_cast<size_t>(m) * N, a + static_cast<size_t>(m) * K, b, col_bias,
                     row_bias ? row_bias + m : nullptr, K, N);
    float* o = out + static_cast<size_t>(m) * N;
    const float* am = a + static_cast<size_t>(m) * K;
    const float* rb = row_bias ? row_bias + m : nullptr;
    switch (M - m) {
        case 5: rows_avx2<5>(o, am, b, col_bias, rb, K, N); break;
        case 4: rows_avx2<4>(o, am, b, col_bias, rb, K, N); break;
        case 3: rows_avx2<3>(o, am, b, col_bias, rb, K, N); break;
        case 2: rows_avx2<2>(o, am, b, col_bias, rb, K, N); break;
        case 1: rows_avx2<1>(o, am, b, col_bias, rb, K, N); break;
        default: break;
    }
}

// A tile of R rows x 32 columns in 2R zmm accumulators; partial tiles use AVX-512 lane masks.
template <int R>
__attribute__((target("avx512f"))) inline void tile_avx512(float* out, const float* a, const float* b,
                                                           const float* col_bias, const float* row_bias,
                                                           int K, int N, int width) {
    const __mmask16 mask0 = width >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << width) - 1);
    const __mmask16 mask1 = width >= 32 ? __mmask16(0xFFFF) : width <= 16 ? __mmask16(0) : __mmask16((1u << (width - 16)) - 1);
    __m512 acc[R][2];
    const __m512 cb0 = col_bias ? _mm512_maskz_loadu_ps(mask0, col_bias) : _mm512_setzero_ps();
    const __m512 cb1 = col_bias ? _mm512_maskz_loadu_ps(mask1, col_bias + 16) : _mm512_setzero_ps();
    for (int r = 0; r < R; ++r) {
        const __m512 rb = _mm512_set1_ps(row_bias ? row_bias[r] : 0.0f);
        acc[r][0] = _mm512_add_ps(cb0, rb);
        acc[r][1] = _mm512_add_ps(cb1, rb);
    }
    for (int k = 0; k < K; ++k) {
        const float* bk = b + static_cast<size_t>(k) * N;
        const __m512 b0 = _mm512_maskz_loadu_ps(mask0, bk), b1 = _mm512_maskz_loadu_ps(mask1, bk + 16);
        for (int r = 0; r < R; ++r) {
            const __m512 s = _mm512_set1_ps(a[static_cast<size_t>(r) * K + k]);
            acc[r][0] = _mm512_fmadd_ps(s, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(s, b1, acc[r][1]);
        }
    }
    for (int r = 0; r < R; ++r) {
        float* o = out + static_cast<size_t>(r) * N;
        _mm512_mask_storeu_ps(o, mask0, acc[r][0]);
        _mm512_mask_storeu_ps(o + 16, mask1, acc[r][1]);
    }
}

template <int R>
__attribute__((target("avx512f"))) void rows_avx512(float* out, const float* a, const float* b, const float* col_bias,
                                                    const float* row_bias, int K, int N) {
    for (int n = 0; n < N; n += 32)
        tile_avx512<R>(out + n, a, b + n, col_bias ? col_bias + n : nullptr, row_bias, K, N, N - n);
}

__attribute__((target("avx512f"))) void gemm_avx512(float* out, const float* a, const float* b, const float* col_bias,
                                                    const float* row_bias, int M, int K, int N) {
    constexpr int R = 8;  // 16 accumulators of the 32 zmm registers
    int m = 0;
    for (; m + R <= M; m += R)
        rows_avx512<R>(out + static_cast<size_t>(m) * N, a + static_cast<size_t>(m) * K, b, col_bias,
                       row_bias ? row_bias + m : nullptr, K, N);
    float* o = out + static_cast<size_t>(m) * N;
    const float* am = a + static_cast<size_t>(m) * K;
    const float* rb = row_bias ? row_bias + m : nullptr;
    switch (M - m) {
        case 7: rows_avx512<7>(o, am, b, col_bias, rb, K, N); break;
        case 6: rows_avx512<6>(o, am, b, col_bias, rb, K, N); break;
        case 5: rows_avx512<5>(o, am, b, col_bias, rb, K, N); break;
        case 4: rows_avx512<4>(o, am, b, col_bias, rb, K, N); break;
        case 3: rows_avx512<3>(o, am, b, col_bias, rb, K, N); break;
        case 2: rows_avx512<2>(o, am, b, col_bias, rb, K, N); break;
        case 1: rows_avx512<1>(o, am, b, col_bias, rb, K, N); break;
        default: break;
    }
}

#endif  // MSF_X86_DISPATCH

using GemmFn = void (*)(float*, const float*, const float*, const float*, const float*, int, int, int);

GemmFn select_gemm() {
#ifdef MSF_X86_DISPATCH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return gemm_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return gemm_avx2;
#endif
    return gemm_portable;
}

void gemm(float* out, const float* a, const float* b, const float* col_bias, const float* row_bias, int M, int K,
          int N) {
    static const GemmFn chosen = select_gemm();  // the CPU does not change while we run
    if (M > 0 && N > 0) chosen(out, a, b, col_bias, row_bias, M, K, N);
}

}  // namespace

const char* gemm_isa() {
    const GemmFn chosen = select_gemm();
#ifdef MSF_X86_DISPATCH
    if (chosen == gemm_avx512) return "avx512";
    if (chosen == gemm_avx2) return "avx2";
#endif
    return chosen == gemm_portable ? "portable" : "unknown";
}

bool gemm_forward_isa(const std::string& isa, float* out, const float* a, const float* b, const float* col_bias,
                      const float* row_bias, int M, int K, int N) {
    GemmFn fn = isa == "portable" ? gemm_portable : nullptr;
#ifdef MSF_X86_DISPATCH
    __builtin_cpu_init();
    if (isa == "avx512" && __builtin_cpu_supports("avx512f")) fn = gemm_avx512;
    if (isa == "avx2" && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) fn = gemm_avx2;
#endif
    if (!fn) return false;
    if (M > 0 && N > 0) fn(out, a, b, col_bias, row_bias, M, K, N);
    return true;
}

void matmul_forward(float* out, const float* a, const float* b, int M, int K, int N) {
    // out (M, N) = a (M, K) @ b (K, N)
    gemm(out, a, b, nullptr, nullptr, M, K, N);
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
    gemm(out, in, weight_t, bias, nullptr, M, K, N);
}

void linear_left_forward(float* out, const float* weight, const float* bias, const float* in, int M, int K,
                         int N) {
    // out (M, N) = weight (M, K) @ in (K, N) + bias (M)[:, None]
    gemm(out, weight, in, nullptr, bias, M, K, N);
}

}  // namespace msf::kernels
