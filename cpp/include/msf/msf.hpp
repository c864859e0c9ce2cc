// msf: MixSynthFormer pose refinement on the CPU, float32, standard library only.
//
// Thread safety: a Model is immutable after construction; refine() may be called from any number of
// threads at once (each call borrows its own workspace from a pool owned by the model).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "msf/errors.hpp"

namespace msf {

// Hyper-parameters, all inferred from tensor shapes (DESIGN §1).
struct Config {
    int K = 0;                // keyframe interval, frames
    int Q = 0;                // steps per window: Q + 1 keyframes
    int P = 0;                // values per pose, J * D
    int C = 0;                // embedding width
    int L = 0;                // encoder blocks
    int ffn_hidden = 0;       // feed-forward width
    int d_t = 0, d_c = 0;     // reduced attention sizes: temporal (over T frames), spatial (over C channels)
    int se_t = 0, se_c = 0;   // SELayer hidden sizes of the two branches
    int reweight_hidden = 0;  // width of the per-frame mixing MLP
    int T() const { return K * Q + 1; }
    int n_keyframes() const { return Q + 1; }
};

struct Tensor {
    std::vector<int64_t> shape;
    std::vector<float> data;  // C order
};
using TensorMap = std::map<std::string, Tensor>;
using Metadata = std::map<std::string, std::string>;

class Model {
public:
    // Loads a safetensors weight file (untrusted input: every byte is bounds-checked). Throws WeightsError.
    static Model load_file(const std::string& path);
    static Model load_buffer(const void* data, std::size_t size);
    // Official state-dict names without `module.`; checks names, shapes and finiteness. Throws WeightsError.
    explicit Model(const TensorMap& tensors, Metadata metadata = {});
    Model(Model&&) noexcept;
    Model& operator=(Model&&) noexcept;
    ~Model();

    const Config& config() const noexcept;
    const Metadata& metadata() const noexcept;
    // keyframes (batch, Q+1, P) -> out (batch, T, P), both C order. Throws InputError on non-finite input.
    void refine(const float* keyframes, float* out, std::size_t batch) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace msf
