// Bounds-checked reader for safetensors weight files, which are untrusted input.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "json.hpp"  // the metadata JSON readers model.cpp uses

namespace msf {

// Limits on untrusted files. msf.weights (the Python reader) uses the same numbers; the test-only binding
// exposes them (msf._kernels.MAX_HEADER_BYTES, ...) and tests/test_weights.py checks that they agree.
constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;  // header length field, in bytes
// kMaxJsonDepth and kMaxIntegerDigits, the limits on its JSON, are in json.hpp.
constexpr size_t kMaxShapeDims = 64;      // entries of a shape (NumPy's limit)
// The product of a shape's nonzero dimensions: at most this many elements, so that the tensor as float32
// spans at most INT64_MAX bytes (NumPy's limit: an empty tensor of shape [0, 2**61] cannot exist there).
constexpr uint64_t kMaxShapeElements = static_cast<uint64_t>(INT64_MAX) / 4;

struct StTensor {
    std::string dtype;               // as in the file: "F32", "F64", "F16", "BF16"
    std::vector<int64_t> shape;
    std::vector<float> data;         // converted to float32, C order, size == product(shape)
};

struct StFile {
    std::map<std::string, std::string> metadata;   // "__metadata__" (string values only)
    std::map<std::string, StTensor> tensors;
};

// Parses a whole file held in memory. Throws msf::WeightsError with a message that names the problem
// (and the tensor, where there is one) on any malformed input.
StFile parse_safetensors(const uint8_t* bytes, size_t size);

// Reads a file then parses it. Throws msf::WeightsError (including "cannot open <path>").
StFile read_safetensors_file(const std::string& path);

}  // namespace msf
