// softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x) over each row (paper eq. 3)
#include "kernels.hpp"
#include "vmath.hpp"

namespace msf::kernels {

static MSF_INLINE void softmax_forward_body(float* x, int rows, int cols) {
    // x (rows, cols) in place. The rows are short (d = N/r, often 12-32), so the exponentials run as one
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

MSF_ISA_DISPATCH(void, softmax_forward, (float* x, int rows, int cols), (x, rows, cols))

}  // namespace msf::kernels
