// softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x) over each row, or down each column (paper eq. 3)
#include "exp_x86.hpp"
#include "kernels.hpp"
#include "vmath.hpp"

namespace msf::kernels {

static MSF_INLINE void softmax_forward_body(float* x, int rows, int cols) {
    // x (rows, cols) in place. The rows are short (the mixing MLP's pairs), so the exponentials run as one
    // loop over the whole matrix, where vectorisation pays, between the per-row max and sum passes.
    if (cols == 2) {  // the pairs: the same operations as below, in one loop the compiler vectorises
        for (int r = 0; r < rows; ++r) {
            float* row = x + 2 * static_cast<size_t>(r);
            const float max = row[1] > row[0] ? row[1] : row[0];
            const float e0 = vmath::exp(row[0] - max), e1 = vmath::exp(row[1] - max);
            const float inv = 1.0f / (e0 + e1);
            row[0] = e0 * inv;
            row[1] = e1 * inv;
        }
        return;
    }
    for (int r = 0; r < rows; ++r) {
        float* row = x + static_cast<size_t>(r) * cols;
        const float max = vmath::max(row, cols);
        for (int c = 0; c < cols; ++c) row[c] -= max;
    }
    const size_t n = static_cast<size_t>(rows) * cols;
    for (size_t i = 0; i < n; ++i) x[i] = vmath::exp(x[i]);
    for (int r = 0; r < rows; ++r) {
        float* row = x + static_cast<size_t>(r) * cols;
        const float inv = 1.0f / vmath::sum(row, cols);
        for (int c = 0; c < cols; ++c) row[c] *= inv;
    }
}

static MSF_INLINE void softmax_columns_generic_body(float* x, int rows, int cols) {
    // x (rows, cols) in place, each column normalised. Every pass runs along rows, over a block of columns whose
    // maxima and sums stay in the stack (and the block in L1): no horizontal reductions, whatever `rows` is.
    constexpr int kBlock = 64;
    for (int c0 = 0; c0 < cols; c0 += kBlock) {
        const int width = cols - c0 < kBlock ? cols - c0 : kBlock;
        float* block = x + c0;
        float max[kBlock], sum[kBlock];
        for (int c = 0; c < width; ++c) max[c] = block[c];
        for (int r = 1; r < rows; ++r) {
            const float* row = block + static_cast<size_t>(r) * cols;
            for (int c = 0; c < width; ++c) max[c] = row[c] > max[c] ? row[c] : max[c];
        }
        for (int c = 0; c < width; ++c) sum[c] = 0.0f;
        for (int r = 0; r < rows; ++r) {
            float* row = block + static_cast<size_t>(r) * cols;
            for (int c = 0; c < width; ++c) {
                row[c] = vmath::exp(row[c] - max[c]);
                sum[c] += row[c];
            }
        }
        for (int c = 0; c < width; ++c) sum[c] = 1.0f / sum[c];
        for (int r = 0; r < rows; ++r) {
            float* row = block + static_cast<size_t>(r) * cols;
            for (int c = 0; c < width; ++c) row[c] *= sum[c];
        }
    }
}

MSF_ISA_DISPATCH(void, softmax_forward, (float* x, int rows, int cols), (x, rows, cols))

#ifdef MSF_X86
MSF_INTRINSICS_BEGIN
namespace {

// The same passes by hand on AVX-512: exp_x86::exp_nonpositive16 (no clamps or selects; the arguments x - max
// are <= 0) and masked loads and stores for the last columns, which the generic loop does one by one
// (N = 101 leaves 5). Blocks of 4 vectors of columns, for independent chains in the max and sum passes; the
// last block has only the vectors it needs (32 columns in a 64-wide block ran at half speed).
template <int V>
__attribute__((target("avx512f"))) void softmax_column_block_avx512(float* block, int rows, int cols, int width) {
    // block (rows, cols) in place, its first width <= 16 V columns
    __mmask16 mask[V];
    for (int v = 0; v < V; ++v) {
        const int left = width - 16 * v;
        mask[v] = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
    }
    __m512 max[V], sum[V];
    for (int v = 0; v < V; ++v) max[v] = _mm512_maskz_loadu_ps(mask[v], block + 16 * v);
    for (int r = 1; r < rows; ++r) {
        const float* row = block + static_cast<size_t>(r) * cols;
        for (int v = 0; v < V; ++v)  // max(row, max): a NaN in row is passed over, as in the loop above
            max[v] = _mm512_max_ps(_mm512_maskz_loadu_ps(mask[v], row + 16 * v), max[v]);
    }
    for (int v = 0; v < V; ++v) sum[v] = _mm512_setzero_ps();
    for (int r = 0; r < rows; ++r) {
        float* row = block + static_cast<size_t>(r) * cols;
        for (int v = 0; v < V; ++v) {
            const __m512 e = exp_x86::exp_nonpositive16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask[v], row + 16 * v), max[v]));
            _mm512_mask_storeu_ps(row + 16 * v, mask[v], e);
            sum[v] = _mm512_add_ps(sum[v], e);
        }
    }
    for (int v = 0; v < V; ++v) sum[v] = _mm512_div_ps(_mm512_set1_ps(1.0f), sum[v]);
    for (int r = 0; r < rows; ++r) {
        float* row = block + static_cast<size_t>(r) * cols;
        for (int v = 0; v < V; ++v)
            _mm512_mask_storeu_ps(row + 16 * v, mask[v], _mm512_mul_ps(_mm512_maskz_loadu_ps(mask[v], row + 16 * v), sum[v]));
    }
}

__attribute__((target("avx512f"))) void softmax_columns_avx512(float* x, int rows, int cols) {
    // x (rows, cols) in place
    int c0 = 0;
    for (; c0 + 64 <= cols; c0 += 64) softmax_column_block_avx512<4>(x + c0, rows, cols, 64);
    switch ((cols - c0 + 15) / 16) {
        case 1: return softmax_column_block_avx512<1>(x + c0, rows, cols, cols - c0);
        case 2: return softmax_column_block_avx512<2>(x + c0, rows, cols, cols - c0);
        case 3: return softmax_column_block_avx512<3>(x + c0, rows, cols, cols - c0);
        case 4: return softmax_column_block_avx512<4>(x + c0, rows, cols, cols - c0);
        default: return;  // c0 == cols
    }
}

// The same on AVX2: blocks of up to 4 vectors of 8 columns. Whole vectors are loaded and stored plainly;
// only a last partial vector (TAIL, `left` < 8 columns) is masked: vmaskmovps to memory costs ~12 cycles on
// AMD cores (Zen 4, measured) against ~1 for a plain store, so its stores go through a copy.
template <int V, bool TAIL>
__attribute__((target("avx2,fma"))) void softmax_column_block_avx2(float* block, int rows, int cols, int left) {
    // block (rows, cols) in place, its first 8 V columns (8 (V - 1) + left when TAIL)
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
#define MSF_LOAD(p, v) (TAIL && v == V - 1 ? _mm256_maskload_ps(p + 8 * v, mask) : _mm256_loadu_ps(p + 8 * v))
#define MSF_STORE(p, v, x)                                                  \
    if (TAIL && v == V - 1) {                                               \
        alignas(32) float part[8];                                          \
        _mm256_store_ps(part, x);                                           \
        for (int j = 0; j < left; ++j) p[8 * v + j] = part[j];              \
    } else {                                                                \
        _mm256_storeu_ps(p + 8 * v, x);                                     \
    }
    __m256 max[V], sum[V];
    for (int v = 0; v < V; ++v) max[v] = MSF_LOAD(block, v);
    for (int r = 1; r < rows; ++r) {
        const float* row = block + static_cast<size_t>(r) * cols;
        for (int v = 0; v < V; ++v)  // max(row, max): a NaN in row is passed over, as above
            max[v] = _mm256_max_ps(MSF_LOAD(row, v), max[v]);
    }
    for (int v = 0; v < V; ++v) sum[v] = _mm256_setzero_ps();
    for (int r = 0; r < rows; ++r) {
        float* row = block + static_cast<size_t>(r) * cols;
        for (int v = 0; v < V; ++v) {
            const __m256 e = exp_x86::exp_nonpositive8(_mm256_sub_ps(MSF_LOAD(row, v), max[v]));
            MSF_STORE(row, v, e)
            sum[v] = _mm256_add_ps(sum[v], e);
        }
    }
    for (int v = 0; v < V; ++v) sum[v] = _mm256_div_ps(_mm256_set1_ps(1.0f), sum[v]);
    for (int r = 0; r < rows; ++r) {
        float* row = block + static_cast<size_t>(r) * cols;
        for (int v = 0; v < V; ++v) {
            const __m256 y = _mm256_mul_ps(MSF_LOAD(row, v), sum[v]);
            MSF_STORE(row, v, y)
        }
    }
#undef MSF_LOAD
#undef MSF_STORE
}

using ColumnBlock = void (*)(float* block, int rows, int cols, int left);
// the last block's version, by its vectors - 1 and whether the last one is partial
constexpr ColumnBlock kColumnTails[4][2] = {
    {softmax_column_block_avx2<1, false>, softmax_column_block_avx2<1, true>},
    {softmax_column_block_avx2<2, false>, softmax_column_block_avx2<2, true>},
    {softmax_column_block_avx2<3, false>, softmax_column_block_avx2<3, true>},
    {softmax_column_block_avx2<4, false>, softmax_column_block_avx2<4, true>}};

__attribute__((target("avx2,fma"))) void softmax_columns_avx2(float* x, int rows, int cols) {
    // x (rows, cols) in place
    int c0 = 0;
    for (; c0 + 32 <= cols; c0 += 32) softmax_column_block_avx2<4, false>(x + c0, rows, cols, 8);
    if (c0 == cols) return;
    const int rest = cols - c0;
    kColumnTails[(rest - 1) / 8][rest % 8 != 0](x + c0, rows, cols, rest % 8 == 0 ? 8 : rest % 8);
}

}  // namespace
MSF_INTRINSICS_END

void softmax_columns_forward(float* x, int rows, int cols) {
    switch (isa::active()) {
        case isa::Isa::avx512: return softmax_columns_avx512(x, rows, cols);
        case isa::Isa::avx2: return softmax_columns_avx2(x, rows, cols);
        default: return softmax_columns_generic_body(x, rows, cols);
    }
}
#else
void softmax_columns_forward(float* x, int rows, int cols) { softmax_columns_generic_body(x, rows, cols); }
#endif

}  // namespace msf::kernels
