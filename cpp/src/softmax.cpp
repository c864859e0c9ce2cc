// softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x) over each row (paper eq. 3)
#include "kernels.hpp"
#include "vmath.hpp"

namespace msf::kernels {

MSF_VECTOR_CLONES void softmax_forward(float* x, int rows, int cols) {
    // x (rows, cols) in place
    for (int r = 0; r < rows; ++r) {
        float* row = x + static_cast<size_t>(r) * cols;
        float max = row[0];
        for (int c = 1; c < cols; ++c) max = row[c] > max ? row[c] : max;
        for (int c = 0; c < cols; ++c) row[c] = vmath::exp(row[c] - max);
        float sum = 0.0f;
        for (int c = 0; c < cols; ++c) sum += row[c];
        const float inv = 1.0f / sum;
        for (int c = 0; c < cols; ++c) row[c] *= inv;
    }
}

}  // namespace msf::kernels
