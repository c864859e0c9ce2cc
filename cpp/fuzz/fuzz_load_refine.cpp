// libFuzzer harness for load-then-refine (issue 7): msf::Model::load_buffer on the input bytes; when they
// load, refine a batch of two windows (fixed keyframes, then keyframes derived from the input) and check
// the result. Only msf::Error may be thrown; anything else escapes and libFuzzer reports it as a crash,
// as it does sanitizer reports, timeouts and allocations beyond -malloc_limit_mb / -rss_limit_mb.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "msf/errors.hpp"
#include "msf/msf.hpp"
#include "safetensors.hpp"

namespace {

// Weights up to this magnitude keep every activation of these small models far from float32 overflow;
// beyond it a non-finite output is the arithmetic's honest answer, not a bug.
constexpr float kModestWeight = 16.0f;

bool modest_weights(const uint8_t* data, size_t size) {
    const msf::StFile file = msf::parse_safetensors(data, size);  // it parsed once already
    for (const auto& kv : file.tensors)
        for (float v : kv.second.data)
            if (!(std::fabs(v) <= kModestWeight)) return false;
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const msf::Model model = msf::Model::load_buffer(data, size);
        const msf::Config& c = model.config();
        const size_t in_window = static_cast<size_t>(c.n_keyframes()) * c.P;
        const size_t out_window = static_cast<size_t>(c.T()) * c.P;
        std::vector<float> keyframes(2 * in_window, 0.5f);
        for (size_t i = 0; i < in_window; ++i)  // second window: the input's bytes mapped to [-4, 4)
            keyframes[in_window + i] = (static_cast<float>(data[i % size]) - 128.0f) / 32.0f;
        const std::vector<float> frames = model.refine(keyframes);
        if (frames.size() != 2 * out_window) std::abort();

        // Windows are independent: the first window alone gives the same bits as within the batch.
        std::vector<float> first(out_window);
        model.refine(keyframes.data(), in_window, first.data(), first.size(), 1);
        if (std::memcmp(first.data(), frames.data(), out_window * sizeof(float)) != 0) std::abort();

    } catch (const msf::NumericError&) {  // refine refuses non-finite output; with modest weights it is a bug
        if (modest_weights(data, size)) std::abort();
    } catch (const msf::Error&) {
    }
    return 0;
}
