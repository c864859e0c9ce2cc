// Bounds-checked reader for safetensors weight files, which are untrusted input.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace msf {

// Limits on untrusted files. msf.weights (the Python reader) uses the same numbers; the binding exposes
// them (msf._core.MAX_HEADER_BYTES, ...) and tests/test_weights.py checks that they agree.
constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;  // header length field, in bytes
constexpr int kMaxJsonDepth = 64;         // nested arrays and objects in the header and the metadata JSON
constexpr size_t kMaxIntegerDigits = 4300;  // digits of an integer literal (Python's int-from-string limit)
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
