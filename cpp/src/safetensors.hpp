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

// The members of a JSON object held in a metadata string, each as its raw JSON text. Throws WeightsError
// when the text is not a JSON object.
std::map<std::string, std::string> json_object_members(const std::string& text);
// value = the integer a raw JSON text spells; false when it is not an integer literal.
bool json_integer(const std::string& text, long long& value);
// Elements of a raw JSON array text, or -1 when it is not an array.
long long json_array_length(const std::string& text);

// Reads a file then parses it. Throws msf::WeightsError (including "cannot open <path>").
StFile read_safetensors_file(const std::string& path);

}  // namespace msf
