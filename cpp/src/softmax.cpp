// softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x) over each row, or down each column (paper eq. 3)
#include "kernels.hpp"
#include "vmath.hpp"

namespace msf::kernels {

static MSF_INLINE void softmax_forward_body(float* x, int rows, int cols) {
    // x (rows, cols) in place. The rows are short (the mixing MLP's pairs), so the exponentials run as one
    // loop over the whole matrix, where vectorisation pays, between the per-row max and sum passes.
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

static MSF_INLINE void softmax_columns_forward_body(float* x, int rows, int cols) {
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
MSF_ISA_DISPATCH(void, softmax_columns_forward, (float* x, int rows, int cols), (x, rows, cols))

}  // namespace msf::kernels
