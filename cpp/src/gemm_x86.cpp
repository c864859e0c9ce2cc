// The GEMM on x86-64: register-blocked AVX2+FMA and AVX-512 versions (paper eq. 1, 4, 5 and every Linear).
// Compiled with target attributes rather than -m flags, so one build runs on any x86-64 and isa.cpp picks.
#include "gemm.hpp"

#ifdef MSF_X86
#include <immintrin.h>

#include <cstddef>

namespace msf::kernels::gemm {
namespace {

// The micro-kernels keep their accumulators in named variables: with an array GCC stores every
// accumulator back to the stack on each k. ROWS, the rows a tile computes, is a template parameter, so the
// last, partial row block (and the M = 1 products of the mixing MLP) computes only its rows. With AT, a is
// given transposed (K, lda): row R's k-th element is a[R + k * lda], so the tile's rows are adjacent floats.
#define MSF_ROW_POINTERS(R) const float* a##R = a + static_cast<size_t>(ROWS > R ? R : 0) * (AT ? 1 : K);
#define MSF_A(R) a##R[AT ? static_cast<size_t>(k) * lda : static_cast<size_t>(k)]
#define MSF_ROW_BIAS(R) (row_bias && ROWS > R ? row_bias[R] : 0.0f)

using Tile = void (*)(float* out, const float* a, size_t lda, const float* b, const float* col_bias,
                      const float* row_bias, int K, int N, int width);

// Stores v's first count < 8 floats. vmaskmovps to memory costs ~12 cycles on AMD cores (Zen 4, measured)
// against ~1 for a plain store: twelve of them per tile cost ~40% of a K = 64 product. So a tile's whole
// vectors are stored plainly and a last partial one through this copy.
__attribute__((target("avx2,fma"), always_inline)) inline void store_part_avx2(float* out, __m256 v, int count) {
    alignas(32) float part[8];
    _mm256_store_ps(part, v);
    for (int j = 0; j < count; ++j) out[j] = part[j];
}

// Stores a tile row's first `width` of 16 floats.
template <bool FULL>
__attribute__((target("avx2,fma"), always_inline)) inline void store_row_avx2(float* out, __m256 c0, __m256 c1,
                                                                              int width) {
    if (FULL) {
        _mm256_storeu_ps(out, c0);
        _mm256_storeu_ps(out + 8, c1);
    } else if (width >= 8) {
        _mm256_storeu_ps(out, c0);
        store_part_avx2(out + 8, c1, width - 8);
    } else {
        store_part_avx2(out, c0, width);
    }
}

// out[ROWS <= 6, width <= 16] = a (ROWS, K) @ b (K, N)[:, :width] + biases, in 12 ymm accumulators. FULL
// (width == 16) tiles load b without masks: a masked load in the loop costs ~20% on Intel cores.
template <int ROWS, bool FULL, bool AT>
__attribute__((target("avx2,fma"))) void tile_avx2(float* out, const float* a, size_t lda, const float* b,
                                                   const float* col_bias, const float* row_bias, int K, int N,
                                                   int width) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(width), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(width - 8), lane);
    MSF_ROW_POINTERS(0) MSF_ROW_POINTERS(1) MSF_ROW_POINTERS(2) MSF_ROW_POINTERS(3) MSF_ROW_POINTERS(4)
    MSF_ROW_POINTERS(5)
    const __m256 cb0 = !col_bias ? _mm256_setzero_ps() : FULL ? _mm256_loadu_ps(col_bias) : _mm256_maskload_ps(col_bias, m0);
    const __m256 cb1 = !col_bias ? _mm256_setzero_ps()
                       : FULL    ? _mm256_loadu_ps(col_bias + 8)
                                 : _mm256_maskload_ps(col_bias + 8, m1);
#define MSF_INIT(R)                                                                             \
    const __m256 rb##R = _mm256_set1_ps(MSF_ROW_BIAS(R));                                       \
    __m256 c##R##0 = _mm256_add_ps(cb0, rb##R), c##R##1 = _mm256_add_ps(cb1, rb##R);
    MSF_INIT(0) MSF_INIT(1) MSF_INIT(2) MSF_INIT(3) MSF_INIT(4) MSF_INIT(5)
#undef MSF_INIT
    for (int k = 0; k < K; ++k) {
        const float* bk = b + static_cast<size_t>(k) * N;
        const __m256 b0 = FULL ? _mm256_loadu_ps(bk) : _mm256_maskload_ps(bk, m0);
        const __m256 b1 = FULL ? _mm256_loadu_ps(bk + 8) : _mm256_maskload_ps(bk + 8, m1);
#define MSF_FMA(R)                                                                              \
    if (ROWS > R) {                                                                             \
        const __m256 s = _mm256_broadcast_ss(&MSF_A(R));                                        \
        c##R##0 = _mm256_fmadd_ps(s, b0, c##R##0);                                              \
        c##R##1 = _mm256_fmadd_ps(s, b1, c##R##1);                                              \
    }
        MSF_FMA(0) MSF_FMA(1) MSF_FMA(2) MSF_FMA(3) MSF_FMA(4) MSF_FMA(5)
#undef MSF_FMA
    }
#define MSF_STORE(R) \
    if (ROWS > R) store_row_avx2<FULL>(out + static_cast<size_t>(R) * N, c##R##0, c##R##1, width);
    MSF_STORE(0) MSF_STORE(1) MSF_STORE(2) MSF_STORE(3) MSF_STORE(4) MSF_STORE(5)
#undef MSF_STORE
}

// A last column panel of width <= 8 (N = 51 leaves 3, N = 101 leaves 5): ROWS <= 12 x width, one ymm each.
// The 6 x 16 tile would spend two FMAs per row and k on it, one of them on no column at all.
template <int ROWS, bool AT>
__attribute__((target("avx2,fma"))) void tile_avx2_narrow(float* out, const float* a, size_t lda, const float* b,
                                                          const float* col_bias, const float* row_bias, int K, int N,
                                                          int width) {
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(width), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    MSF_ROW_POINTERS(0) MSF_ROW_POINTERS(1) MSF_ROW_POINTERS(2) MSF_ROW_POINTERS(3) MSF_ROW_POINTERS(4)
    MSF_ROW_POINTERS(5) MSF_ROW_POINTERS(6) MSF_ROW_POINTERS(7) MSF_ROW_POINTERS(8) MSF_ROW_POINTERS(9)
    MSF_ROW_POINTERS(10) MSF_ROW_POINTERS(11)
    const __m256 cb = col_bias ? _mm256_maskload_ps(col_bias, m0) : _mm256_setzero_ps();
#define MSF_INIT(R) __m256 c##R = _mm256_add_ps(cb, _mm256_set1_ps(MSF_ROW_BIAS(R)));
    MSF_INIT(0) MSF_INIT(1) MSF_INIT(2) MSF_INIT(3) MSF_INIT(4) MSF_INIT(5) MSF_INIT(6) MSF_INIT(7) MSF_INIT(8)
    MSF_INIT(9) MSF_INIT(10) MSF_INIT(11)
#undef MSF_INIT
    for (int k = 0; k < K; ++k) {
        const __m256 b0 = _mm256_maskload_ps(b + static_cast<size_t>(k) * N, m0);
#define MSF_FMA(R) \
    if (ROWS > R) c##R = _mm256_fmadd_ps(_mm256_broadcast_ss(&MSF_A(R)), b0, c##R);
        MSF_FMA(0) MSF_FMA(1) MSF_FMA(2) MSF_FMA(3) MSF_FMA(4) MSF_FMA(5) MSF_FMA(6) MSF_FMA(7) MSF_FMA(8)
        MSF_FMA(9) MSF_FMA(10) MSF_FMA(11)
#undef MSF_FMA
    }
#define MSF_STORE(R)                                                                \
    if (ROWS > R) {                                                                 \
        if (width == 8)                                                             \
            _mm256_storeu_ps(out + static_cast<size_t>(R) * N, c##R);               \
        else                                                                        \
            store_part_avx2(out + static_cast<size_t>(R) * N, c##R, width);          \
    }
    MSF_STORE(0) MSF_STORE(1) MSF_STORE(2) MSF_STORE(3) MSF_STORE(4) MSF_STORE(5) MSF_STORE(6) MSF_STORE(7)
    MSF_STORE(8) MSF_STORE(9) MSF_STORE(10) MSF_STORE(11)
#undef MSF_STORE
}

// out[ROWS <= 8, width <= 32] = a (ROWS, K) @ b (K, N)[:, :width] + biases, in 16 zmm accumulators; FULL
// (width == 32) tiles load b without masks, as in tile_avx2.
template <int ROWS, bool FULL, bool AT>
__attribute__((target("avx512f"))) void tile_avx512(float* out, const float* a, size_t lda, const float* b,
                                                    const float* col_bias, const float* row_bias, int K, int N,
                                                    int width) {
    const __mmask16 m0 = width >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << width) - 1);
    const __mmask16 m1 = width >= 32 ? __mmask16(0xFFFF) : width <= 16 ? __mmask16(0) : __mmask16((1u << (width - 16)) - 1);
    MSF_ROW_POINTERS(0) MSF_ROW_POINTERS(1) MSF_ROW_POINTERS(2) MSF_ROW_POINTERS(3) MSF_ROW_POINTERS(4)
    MSF_ROW_POINTERS(5) MSF_ROW_POINTERS(6) MSF_ROW_POINTERS(7)
    const __m512 cb0 = col_bias ? _mm512_maskz_loadu_ps(m0, col_bias) : _mm512_setzero_ps();
    const __m512 cb1 = col_bias ? _mm512_maskz_loadu_ps(m1, col_bias + 16) : _mm512_setzero_ps();
#define MSF_INIT(R)                                                                             \
    const __m512 rb##R = _mm512_set1_ps(MSF_ROW_BIAS(R));                                       \
    __m512 c##R##0 = _mm512_add_ps(cb0, rb##R), c##R##1 = _mm512_add_ps(cb1, rb##R);
    MSF_INIT(0) MSF_INIT(1) MSF_INIT(2) MSF_INIT(3) MSF_INIT(4) MSF_INIT(5) MSF_INIT(6) MSF_INIT(7)
#undef MSF_INIT
    for (int k = 0; k < K; ++k) {
        const float* bk = b + static_cast<size_t>(k) * N;
        const __m512 b0 = FULL ? _mm512_loadu_ps(bk) : _mm512_maskz_loadu_ps(m0, bk);
        const __m512 b1 = FULL ? _mm512_loadu_ps(bk + 16) : _mm512_maskz_loadu_ps(m1, bk + 16);
#define MSF_FMA(R)                                                                              \
    if (ROWS > R) {                                                                             \
        const __m512 s = _mm512_set1_ps(MSF_A(R));                                              \
        c##R##0 = _mm512_fmadd_ps(s, b0, c##R##0);                                              \
        c##R##1 = _mm512_fmadd_ps(s, b1, c##R##1);                                              \
    }
        MSF_FMA(0) MSF_FMA(1) MSF_FMA(2) MSF_FMA(3) MSF_FMA(4) MSF_FMA(5) MSF_FMA(6) MSF_FMA(7)
#undef MSF_FMA
    }
#define MSF_STORE(R)                                                                            \
    if (ROWS > R) {                                                                             \
        _mm512_mask_storeu_ps(out + static_cast<size_t>(R) * N, m0, c##R##0);                   \
        _mm512_mask_storeu_ps(out + static_cast<size_t>(R) * N + 16, m1, c##R##1);              \
    }
    MSF_STORE(0) MSF_STORE(1) MSF_STORE(2) MSF_STORE(3) MSF_STORE(4) MSF_STORE(5) MSF_STORE(6) MSF_STORE(7)
#undef MSF_STORE
}

// Narrow column blocks (width <= 16: the last columns of a product, or all of a narrow one such as the
// reduced attention d_t = T/4 of short windows): ROWS <= 16 x width <= 16, one zmm each, so that a 32-wide
// tile does not leave most of its lanes idle.
template <int ROWS, bool AT>
__attribute__((target("avx512f"))) void tile_avx512_narrow(float* out, const float* a, size_t lda, const float* b,
                                                           const float* col_bias, const float* row_bias, int K, int N,
                                                           int width) {
    const __mmask16 m0 = width >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << width) - 1);
    MSF_ROW_POINTERS(0) MSF_ROW_POINTERS(1) MSF_ROW_POINTERS(2) MSF_ROW_POINTERS(3) MSF_ROW_POINTERS(4)
    MSF_ROW_POINTERS(5) MSF_ROW_POINTERS(6) MSF_ROW_POINTERS(7) MSF_ROW_POINTERS(8) MSF_ROW_POINTERS(9)
    MSF_ROW_POINTERS(10) MSF_ROW_POINTERS(11) MSF_ROW_POINTERS(12) MSF_ROW_POINTERS(13) MSF_ROW_POINTERS(14)
    MSF_ROW_POINTERS(15)
    const __m512 cb = col_bias ? _mm512_maskz_loadu_ps(m0, col_bias) : _mm512_setzero_ps();
#define MSF_INIT(R) __m512 c##R = _mm512_add_ps(cb, _mm512_set1_ps(MSF_ROW_BIAS(R)));
    MSF_INIT(0) MSF_INIT(1) MSF_INIT(2) MSF_INIT(3) MSF_INIT(4) MSF_INIT(5) MSF_INIT(6) MSF_INIT(7)
    MSF_INIT(8) MSF_INIT(9) MSF_INIT(10) MSF_INIT(11) MSF_INIT(12) MSF_INIT(13) MSF_INIT(14) MSF_INIT(15)
#undef MSF_INIT
    for (int k = 0; k < K; ++k) {
        const __m512 b0 = _mm512_maskz_loadu_ps(m0, b + static_cast<size_t>(k) * N);
#define MSF_FMA(R) \
    if (ROWS > R) c##R = _mm512_fmadd_ps(_mm512_set1_ps(MSF_A(R)), b0, c##R);
        MSF_FMA(0) MSF_FMA(1) MSF_FMA(2) MSF_FMA(3) MSF_FMA(4) MSF_FMA(5) MSF_FMA(6) MSF_FMA(7)
        MSF_FMA(8) MSF_FMA(9) MSF_FMA(10) MSF_FMA(11) MSF_FMA(12) MSF_FMA(13) MSF_FMA(14) MSF_FMA(15)
#undef MSF_FMA
    }
#define MSF_STORE(R) \
    if (ROWS > R) _mm512_mask_storeu_ps(out + static_cast<size_t>(R) * N, m0, c##R);
    MSF_STORE(0) MSF_STORE(1) MSF_STORE(2) MSF_STORE(3) MSF_STORE(4) MSF_STORE(5) MSF_STORE(6) MSF_STORE(7)
    MSF_STORE(8) MSF_STORE(9) MSF_STORE(10) MSF_STORE(11) MSF_STORE(12) MSF_STORE(13) MSF_STORE(14) MSF_STORE(15)
#undef MSF_STORE
}

// One row (the M = 1 products of the SE layers and the mixing MLP): a (1, K) @ b (K, N)[:, :width] + biases
// with VECS <= 12 ymm accumulators side by side, width in (8 (VECS - 1), 8 VECS]. A 6 x 16 tile holding one
// row has two accumulators, each FMA waiting on the one before (4 cycles per k); twelve chains keep both FMA
// units busy. Each output is summed as in the tiles above, so its bits do not depend on M.
template <int VECS, bool FULL, bool AT>
__attribute__((target("avx2,fma"))) void row_avx2(float* out, const float* a, size_t lda, const float* b,
                                                  const float* col_bias, const float* row_bias, int K, int N, int width) {
    constexpr int ROWS = 1;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i last = _mm256_cmpgt_epi32(_mm256_set1_epi32(width - 8 * (VECS - 1)), lane);
    MSF_ROW_POINTERS(0)
    const __m256 rb = _mm256_set1_ps(MSF_ROW_BIAS(0));
#define MSF_LOAD(p, V) (FULL || V + 1 < VECS ? _mm256_loadu_ps((p) + 8 * V) : _mm256_maskload_ps((p) + 8 * V, last))
#define MSF_INIT(V) __m256 c##V = VECS > V ? _mm256_add_ps(col_bias ? MSF_LOAD(col_bias, V) : _mm256_setzero_ps(), rb) \
                                           : _mm256_setzero_ps();
    MSF_INIT(0) MSF_INIT(1) MSF_INIT(2) MSF_INIT(3) MSF_INIT(4) MSF_INIT(5) MSF_INIT(6) MSF_INIT(7) MSF_INIT(8)
    MSF_INIT(9) MSF_INIT(10) MSF_INIT(11)
#undef MSF_INIT
    for (int k = 0; k < K; ++k) {
        const float* bk = b + static_cast<size_t>(k) * N;
        const __m256 s = _mm256_broadcast_ss(&MSF_A(0));
#define MSF_FMA(V) if (VECS > V) c##V = _mm256_fmadd_ps(s, MSF_LOAD(bk, V), c##V);
        MSF_FMA(0) MSF_FMA(1) MSF_FMA(2) MSF_FMA(3) MSF_FMA(4) MSF_FMA(5) MSF_FMA(6) MSF_FMA(7) MSF_FMA(8)
        MSF_FMA(9) MSF_FMA(10) MSF_FMA(11)
#undef MSF_FMA
    }
#undef MSF_LOAD
#define MSF_STORE(V)                                                                    \
    if (VECS > V) {                                                                     \
        if (FULL || V + 1 < VECS)                                                       \
            _mm256_storeu_ps(out + 8 * V, c##V);                                        \
        else                                                                            \
            store_part_avx2(out + 8 * V, c##V, width - 8 * V);                          \
    }
    MSF_STORE(0) MSF_STORE(1) MSF_STORE(2) MSF_STORE(3) MSF_STORE(4) MSF_STORE(5) MSF_STORE(6) MSF_STORE(7)
    MSF_STORE(8) MSF_STORE(9) MSF_STORE(10) MSF_STORE(11)
#undef MSF_STORE
}

// The same in zmm: VECS <= 16 accumulators, width in (16 (VECS - 1), 16 VECS].
template <int VECS, bool AT>
__attribute__((target("avx512f"))) void row_avx512(float* out, const float* a, size_t lda, const float* b,
                                                   const float* col_bias, const float* row_bias, int K, int N, int width) {
    constexpr int ROWS = 1;
    const int rest = width - 16 * (VECS - 1);
    const __mmask16 last = rest >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << rest) - 1);
    MSF_ROW_POINTERS(0)
    const __m512 rb = _mm512_set1_ps(MSF_ROW_BIAS(0));
#define MSF_LOAD(p, V) (V + 1 < VECS ? _mm512_loadu_ps((p) + 16 * V) : _mm512_maskz_loadu_ps(last, (p) + 16 * V))
#define MSF_INIT(V) __m512 c##V = VECS > V ? _mm512_add_ps(col_bias ? MSF_LOAD(col_bias, V) : _mm512_setzero_ps(), rb) \
                                           : _mm512_setzero_ps();
    MSF_INIT(0) MSF_INIT(1) MSF_INIT(2) MSF_INIT(3) MSF_INIT(4) MSF_INIT(5) MSF_INIT(6) MSF_INIT(7) MSF_INIT(8)
    MSF_INIT(9) MSF_INIT(10) MSF_INIT(11) MSF_INIT(12) MSF_INIT(13) MSF_INIT(14) MSF_INIT(15)
#undef MSF_INIT
    for (int k = 0; k < K; ++k) {
        const float* bk = b + static_cast<size_t>(k) * N;
        const __m512 s = _mm512_set1_ps(MSF_A(0));
#define MSF_FMA(V) if (VECS > V) c##V = _mm512_fmadd_ps(s, MSF_LOAD(bk, V), c##V);
        MSF_FMA(0) MSF_FMA(1) MSF_FMA(2) MSF_FMA(3) MSF_FMA(4) MSF_FMA(5) MSF_FMA(6) MSF_FMA(7) MSF_FMA(8)
        MSF_FMA(9) MSF_FMA(10) MSF_FMA(11) MSF_FMA(12) MSF_FMA(13) MSF_FMA(14) MSF_FMA(15)
#undef MSF_FMA
    }
#undef MSF_LOAD
#define MSF_STORE(V) if (VECS > V) _mm512_mask_storeu_ps(out + 16 * V, V + 1 < VECS ? __mmask16(0xFFFF) : last, c##V);
    MSF_STORE(0) MSF_STORE(1) MSF_STORE(2) MSF_STORE(3) MSF_STORE(4) MSF_STORE(5) MSF_STORE(6) MSF_STORE(7)
    MSF_STORE(8) MSF_STORE(9) MSF_STORE(10) MSF_STORE(11) MSF_STORE(12) MSF_STORE(13) MSF_STORE(14) MSF_STORE(15)
#undef MSF_STORE
}
#undef MSF_ROW_POINTERS
#undef MSF_A
#undef MSF_ROW_BIAS

// The tiles of 1..ROWS rows, indexed by rows - 1.
template <bool FULL, bool AT>
constexpr Tile kAvx2Tiles[6] = {tile_avx2<1, FULL, AT>, tile_avx2<2, FULL, AT>, tile_avx2<3, FULL, AT>,
                                tile_avx2<4, FULL, AT>, tile_avx2<5, FULL, AT>, tile_avx2<6, FULL, AT>};
template <bool AT>
constexpr Tile kAvx2Narrow[12] = {tile_avx2_narrow<1, AT>,  tile_avx2_narrow<2, AT>,  tile_avx2_narrow<3, AT>,
                                  tile_avx2_narrow<4, AT>,  tile_avx2_narrow<5, AT>,  tile_avx2_narrow<6, AT>,
                                  tile_avx2_narrow<7, AT>,  tile_avx2_narrow<8, AT>,  tile_avx2_narrow<9, AT>,
                                  tile_avx2_narrow<10, AT>, tile_avx2_narrow<11, AT>, tile_avx2_narrow<12, AT>};
template <bool FULL, bool AT>
constexpr Tile kAvx512Tiles[8] = {tile_avx512<1, FULL, AT>, tile_avx512<2, FULL, AT>, tile_avx512<3, FULL, AT>,
                                  tile_avx512<4, FULL, AT>, tile_avx512<5, FULL, AT>, tile_avx512<6, FULL, AT>,
                                  tile_avx512<7, FULL, AT>, tile_avx512<8, FULL, AT>};
template <bool AT>
constexpr Tile kNarrowTiles[16] = {
    tile_avx512_narrow<1, AT>,  tile_avx512_narrow<2, AT>,  tile_avx512_narrow<3, AT>,  tile_avx512_narrow<4, AT>,
    tile_avx512_narrow<5, AT>,  tile_avx512_narrow<6, AT>,  tile_avx512_narrow<7, AT>,  tile_avx512_narrow<8, AT>,
    tile_avx512_narrow<9, AT>,  tile_avx512_narrow<10, AT>, tile_avx512_narrow<11, AT>, tile_avx512_narrow<12, AT>,
    tile_avx512_narrow<13, AT>, tile_avx512_narrow<14, AT>, tile_avx512_narrow<15, AT>, tile_avx512_narrow<16, AT>};

template <bool FULL, bool AT>
constexpr Tile kAvx2Rows[12] = {row_avx2<1, FULL, AT>,  row_avx2<2, FULL, AT>,  row_avx2<3, FULL, AT>,
                                row_avx2<4, FULL, AT>,  row_avx2<5, FULL, AT>,  row_avx2<6, FULL, AT>,
                                row_avx2<7, FULL, AT>,  row_avx2<8, FULL, AT>,  row_avx2<9, FULL, AT>,
                                row_avx2<10, FULL, AT>, row_avx2<11, FULL, AT>, row_avx2<12, FULL, AT>};
template <bool AT>
constexpr Tile kAvx512Rows[16] = {row_avx512<1, AT>,  row_avx512<2, AT>,  row_avx512<3, AT>,  row_avx512<4, AT>,
                                  row_avx512<5, AT>,  row_avx512<6, AT>,  row_avx512<7, AT>,  row_avx512<8, AT>,
                                  row_avx512<9, AT>,  row_avx512<10, AT>, row_avx512<11, AT>, row_avx512<12, AT>,
                                  row_avx512<13, AT>, row_avx512<14, AT>, row_avx512<15, AT>, row_avx512<16, AT>};

// A one-row product (M = 1) in chunks of `lanes` x `vectors` columns, each one call of a row tile.
// a (1, K) is its own transpose: either layout is read with a stride of 1.
void one_row(const Tile* full_tiles, const Tile* part_tiles, int lanes, int vectors, float* out, const float* a,
             const float* b, const float* col_bias, const float* row_bias, int K, int N) {
    for (int n = 0; n < N; n += lanes * vectors) {
        const int width = N - n < lanes * vectors ? N - n : lanes * vectors;
        const int count = (width + lanes - 1) / lanes;
        (width % lanes == 0 ? full_tiles : part_tiles)[count - 1](out + n, a, 1, b + n,
                                                                  col_bias ? col_bias + n : nullptr, row_bias, K, N,
                                                                  width);
    }
}

// One column panel [n, n + width) over every row block of `rows_per_tile` rows.
template <bool AT>
void panel(const Tile* tiles, int rows_per_tile, float* out, const float* a, const float* b, const float* col_bias,
           const float* row_bias, int M, int K, int N, int n, int width) {
    const size_t lda = static_cast<size_t>(AT ? M : K);
    // the fewest blocks, their rows as even as can be (51 = 6 x 6 + 3 x 5, not 8 x 6 + 3): a block of few
    // rows has too few accumulators to hide the FMA latency
    const int blocks = (M + rows_per_tile - 1) / rows_per_tile, base = M / blocks, larger = M % blocks;
    for (int block = 0, m = 0; block < blocks; ++block) {
        const int rows = base + (block < larger ? 1 : 0);
        tiles[rows - 1](out + static_cast<size_t>(m) * N + n, a + static_cast<size_t>(m) * (AT ? 1 : K), lda, b + n,
                        col_bias ? col_bias + n : nullptr, row_bias ? row_bias + m : nullptr, K, N, width);
        m += rows;
    }
}

// Column panels outside, row blocks inside: a panel of b (K x 16 or 32 floats) stays in L1 while every row
// block of a passes over it.
template <bool AT>
void run_avx2(float* out, const float* a, const float* b, const float* col_bias, const float* row_bias, int M, int K,
              int N) {
    if (M == 1)
        return one_row(kAvx2Rows<true, AT>, kAvx2Rows<false, AT>, 8, 12, out, a, b, col_bias, row_bias, K, N);
    for (int n = 0; n < N; n += 16) {
        const int width = N - n < 16 ? N - n : 16;
        if (width <= 8)
            panel<AT>(kAvx2Narrow<AT>, 12, out, a, b, col_bias, row_bias, M, K, N, n, width);
        else
            panel<AT>(width == 16 ? kAvx2Tiles<true, AT> : kAvx2Tiles<false, AT>, 6, out, a, b, col_bias, row_bias, M,
                      K, N, n, width);
    }
}

template <bool AT>
void run_avx512(float* out, const float* a, const float* b, const float* col_bias, const float* row_bias, int M,
                int K, int N) {
    if (M == 1)
        return one_row(kAvx512Rows<AT>, kAvx512Rows<AT>, 16, 16, out, a, b, col_bias, row_bias, K, N);
    for (int n = 0; n < N; n += 32) {
        const int width = N - n < 32 ? N - n : 32;
        if (width <= 16)  // the last columns: a 16-wide tile wastes fewer lanes than a 32-wide one
            panel<AT>(kNarrowTiles<AT>, 16, out, a, b, col_bias, row_bias, M, K, N, n, width);
        else
            panel<AT>(width == 32 ? kAvx512Tiles<true, AT> : kAvx512Tiles<false, AT>, 8, out, a, b, col_bias,
                      row_bias, M, K, N, n, width);
    }
}

}  // namespace

void avx2(float* out, const float* a, const float* b, const float* col_bias, const float* row_bias, int M, int K,
          int N, bool a_transposed) {
    (a_transposed ? run_avx2<true> : run_avx2<false>)(out, a, b, col_bias, row_bias, M, K, N);
}

void avx512(float* out, const float* a, const float* b, const float* col_bias, const float* row_bias, int M, int K,
            int N, bool a_transposed) {
    (a_transposed ? run_avx512<true> : run_avx512<false>)(out, a, b, col_bias, row_bias, M, K, N);
}

}  // namespace msf::kernels::gemm

#endif  // MSF_X86
