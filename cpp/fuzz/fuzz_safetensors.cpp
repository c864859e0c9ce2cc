// libFuzzer harness for the safetensors reader (issue 7). Any byte string must either parse or throw
// msf::WeightsError; any other exception escapes and libFuzzer reports it as a crash, as it does sanitizer
// reports, timeouts and allocations beyond -malloc_limit_mb / -rss_limit_mb.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "msf/errors.hpp"
#include "safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const msf::StFile file = msf::parse_safetensors(data, size);
        // An accepted file holds exactly the elements its shapes promise, and at most one float per two
        // bytes of input (F16/BF16, the narrowest dtypes), so memory stays proportional to the file.
        size_t floats = 0;
        for (const auto& kv : file.tensors) {
            size_t numel = 1;
            for (int64_t d : kv.second.shape) numel *= static_cast<size_t>(d);
            if (kv.second.data.size() != numel) std::abort();
            floats += numel;
        }
        if (floats > size / 2) std::abort();
    } catch (const msf::WeightsError&) {
    }
    return 0;
}
