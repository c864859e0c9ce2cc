// msf: MixSynthFormer pose refinement on the CPU, float32, standard library only. C++ API; the C API is msf.h.
//
// Thread safety: a Model is immutable after construction; refine() may be called from any number of
// threads at once (each call borrows its own workspace from a pool owned by the model). A moved-from
// Model may only be assigned to or destroyed.
//
// Usage (errors are exceptions derived from msf::Error, see errors.hpp):
//
//     msf::Model model = msf::Model::load_file("model.safetensors");  // WeightsError if unusable
//     const msf::Config& c = model.config();                           // K, Q, P, T() = K*Q + 1
//     std::vector<float> keyframes(2 * c.n_keyframes() * c.P);         // 2 windows (2, Q+1, P)
//     std::vector<float> frames = model.refine(keyframes);             // (2, T, P)
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "msf/errors.hpp"

namespace msf {

// Hyper-parameters, all inferred from tensor shapes (docs/model.md §1).
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
    // Official state-dict names without `module.`; checks names, shapes and finiteness, flushes subnormal
    // weights to zero, and refuses sizes whose per-window workspace exceeds 16 floats per weight plus 2^22.
    // Throws WeightsError.
    // The tensors are taken by value: pass an rvalue (std::move) to save a copy (each is then copied once, into
    // 64-byte aligned storage, its source freed as it is taken).
    explicit Model(TensorMap tensors, Metadata metadata = {});
    Model(Model&&) noexcept;
    Model& operator=(Model&&) noexcept;
    ~Model();

    const Config& config() const noexcept;
    const Metadata& metadata() const noexcept;
    // keyframes (batch, Q+1, P) -> out (batch, T, P), both C order. Throws InputError on non-finite input and
    // NumericError when the forward overflows float32 (out then holds partial results).
    // threads: windows are split over this many threads (<= 0, or more than the hardware threads: one per
    // hardware thread); results do not depend on it. Subnormals are flushed to zero during the call (the caller's FP mode is restored).
    void refine(const float* keyframes, float* out, std::size_t batch, int threads = 1) const;
    // The same with the buffers' lengths in floats, checked: they must be batch*(Q+1)*P and batch*T*P.
    void refine(const float* keyframes, std::size_t keyframes_len, float* out, std::size_t out_len,
                std::size_t batch) const;
    // Whole windows (batch, Q+1, P) -> (batch, T, P); the batch is keyframes.size() / ((Q+1)*P).
    std::vector<float> refine(const std::vector<float>& keyframes) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

inline void Model::refine(const float* keyframes, std::size_t keyframes_len, float* out, std::size_t out_len,
                          std::size_t batch) const {
    const Config& c = config();
    const std::size_t in_window = static_cast<std::size_t>(c.n_keyframes()) * c.P;
    const std::size_t out_window = static_cast<std::size_t>(c.T()) * c.P;
    if (batch > static_cast<std::size_t>(-1) / out_window || keyframes_len != batch * in_window ||
        out_len != batch * out_window)
        throw InputError("refine: buffers of " + std::to_string(keyframes_len) + " and " + std::to_string(out_len) +
                         " floats do not hold " + std::to_string(batch) + " windows of (Q+1, P) = (" +
                         std::to_string(c.n_keyframes()) + ", " + std::to_string(c.P) + ") keyframes and (T, P) = (" +
                         std::to_string(c.T()) + ", " + std::to_string(c.P) + ") frames");
    // in place, later windows would read keyframes that earlier ones had overwritten
    const std::uintptr_t in_at = reinterpret_cast<std::uintptr_t>(keyframes), out_at = reinterpret_cast<std::uintptr_t>(out);
    if (in_at < out_at + out_len * sizeof(float) && out_at < in_at + keyframes_len * sizeof(float))
        throw InputError("refine: keyframes and out overlap; give out a buffer of its own");
    refine(keyframes, out, batch);
}

inline std::vector<float> Model::refine(const std::vector<float>& keyframes) const {
    const Config& c = config();
    const std::size_t in_window = static_cast<std::size_t>(c.n_keyframes()) * c.P;
    if (keyframes.size() % in_window)
        throw InputError("refine: " + std::to_string(keyframes.size()) +
                         " keyframe floats are not whole windows of (Q+1) * P = " + std::to_string(c.n_keyframes()) +
                         " * " + std::to_string(c.P) + " floats");
    const std::size_t batch = keyframes.size() / in_window;
    std::vector<float> out(batch * static_cast<std::size_t>(c.T()) * c.P);
    refine(keyframes.data(), out.data(), batch);
    return out;
}

}  // namespace msf
