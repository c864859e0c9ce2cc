// Bounds-checked reader for safetensors weight files, which are untrusted input.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace msf {

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
