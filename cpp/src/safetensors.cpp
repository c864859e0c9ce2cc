// Safetensors reader. Every length, offset and count comes from the file and is checked before use;
// memory allocated is bounded by a small multiple of the file size.
#include "safetensors.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <system_error>

#include "msf/errors.hpp"

namespace msf {
namespace {

using Json = json::Reader;
using json::fail;
using json::printable;

std::string tensor_ctx(const std::string& name) { return "tensor " + printable(name) + ": "; }

// Byte-wise assembly makes the result independent of the host byte order.
uint64_t load_le(const uint8_t* p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

// Returns the offset of the first byte that breaks strict UTF-8 (overlong forms, surrogates and
// code points above U+10FFFF included), or n if there is none.
size_t utf8_error(const uint8_t* p, size_t n) {
    size_t i = 0;
    while (i < n) {
        const uint8_t c = p[i];
        if (c < 0x80) { ++i; continue; }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1Fu; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0Fu; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07u; min = 0x10000; }
        else return i;
        if (n - i < len) return i;
        for (size_t k = 1; k < len; ++k) {
            if ((p[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (p[i + k] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += len;
    }
    return n;
}

// Shape entries and offsets must be plain non-negative JSON integers: no sign, fraction or exponent.
uint64_t read_uint(Json& json, uint64_t max, const std::string& what) {
    const char c = json.peek();
    if (c != '-' && (c < '0' || c > '9')) fail(what + " must be a non-negative integer");
    const std::string text = json.number();
    if (text[0] == '-') fail(what + " must be non-negative, got " + printable(text));
    uint64_t v = 0;
    for (char d : text) {
        if (d < '0' || d > '9') fail(what + " must be an integer, got " + printable(text));
        const uint64_t digit = static_cast<uint64_t>(d - '0');
        if (v > (max - digit) / 10) fail(what + " is too large: " + printable(text));
        v = v * 10 + digit;
    }
    return v;
}

float from_bits(uint32_t bits) {
    float f;
    std::memcpy(&f, &bits, sizeof f);  // float and integer byte order agree on supported hosts
    return f;
}

float load_f32(const uint8_t* p) { return from_bits(static_cast<uint32_t>(load_le(p, 4))); }

float load_bf16(const uint8_t* p) { return from_bits(static_cast<uint32_t>(load_le(p, 2)) << 16); }

// Every half value is exactly representable as a float, subnormals included.
float load_f16(const uint8_t* p) {
    const uint32_t h = static_cast<uint32_t>(load_le(p, 2));
    const uint32_t sign = (h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t man = h & 0x3FFu;
    if (exp == 0x1F) return from_bits(sign | 0x7F800000u | (man << 13));  // inf, or nan keeping its payload
    if (exp != 0) return from_bits(sign | ((exp + 112) << 23) | (man << 13));
    if (man == 0) return from_bits(sign);
    uint32_t e = 113;  // subnormal: shift the leading one into the implicit bit position
    while ((man & 0x400u) == 0) { man <<= 1; --e; }
    return from_bits(sign | (e << 23) | ((man & 0x3FFu) << 13));
}

// static_cast is undefined for finite doubles beyond float's range; IEEE round-to-nearest gives
// +-FLT_MAX below FLT_MAX + half an ulp (0x1.ffffffp127) and +-inf from there on.
float load_f64(const uint8_t* p) {
    const uint64_t bits = load_le(p, 8);
    double d;
    std::memcpy(&d, &bits, sizeof d);
    if (!std::isfinite(d) || std::fabs(d) <= FLT_MAX) return static_cast<float>(d);
    const float big = std::fabs(d) < 0x1.ffffffp127 ? FLT_MAX : std::numeric_limits<float>::infinity();
    return std::signbit(d) ? -big : big;
}

template <size_t Size, float (*Load)(const uint8_t*)>
void convert(const uint8_t* src, size_t count, float* dst) {
    for (size_t i = 0; i < count; ++i) dst[i] = Load(src + i * Size);
}

struct Dtype {
    const char* name;
    uint64_t size;
    void (*convert)(const uint8_t*, size_t, float*);
};

constexpr Dtype kDtypes[] = {
    {"F32", 4, convert<4, load_f32>},
    {"F64", 8, convert<8, load_f64>},
    {"F16", 2, convert<2, load_f16>},
    {"BF16", 2, convert<2, load_bf16>},
};

struct Range {
    uint64_t begin, end;
    const std::string* name;
    StTensor* tensor;
    const Dtype* dtype;
};

Range read_entry(Json& json, const std::string& name, StTensor& t, uint64_t data_size) {
    const std::string ctx = tensor_ctx(name);
    if (json.peek() != '{') fail(ctx + "entry must be an object with dtype, shape and data_offsets");
    bool has_dtype = false, has_shape = false, has_offsets = false;
    uint64_t offsets[2] = {0, 0};
    json.members([&](const std::string& key) {
        bool* seen = key == "dtype" ? &has_dtype : key == "shape" ? &has_shape
                   : key == "data_offsets" ? &has_offsets : nullptr;
        if (!seen) fail(ctx + "unexpected key " + printable(key));
        if (*seen) fail(ctx + "duplicate key " + printable(key));
        *seen = true;
        if (key == "dtype") {
            if (json.peek() != '"') fail(ctx + "dtype must be a string");
            t.dtype = json.string();
        } else if (key == "shape") {
            if (json.peek() != '[') fail(ctx + "shape must be an array");
            json.elements([&] {
                if (t.shape.size() == kMaxShapeDims)
                    fail(ctx + "shape has more than " + std::to_string(kMaxShapeDims) + " dimensions");
                const uint64_t dim = read_uint(json, std::numeric_limits<int64_t>::max(), ctx + "shape entry");
                t.shape.push_back(static_cast<int64_t>(dim));
            });
        } else {
            if (json.peek() != '[') fail(ctx + "data_offsets must be an array of two integers");
            size_t count = 0;
            json.elements([&] {
                if (count == 2) fail(ctx + "data_offsets must have exactly two entries");
                offsets[count++] = read_uint(json, std::numeric_limits<uint64_t>::max(), ctx + "data_offsets entry");
            });
            if (count != 2) fail(ctx + "data_offsets must have exactly two entries");
        }
    });
    if (!has_dtype) fail(ctx + "missing key 'dtype'");
    if (!has_shape) fail(ctx + "missing key 'shape'");
    if (!has_offsets) fail(ctx + "missing key 'data_offsets'");

    const Dtype* dtype = nullptr;
    for (const Dtype& d : kDtypes)
        if (t.dtype == d.name) dtype = &d;
    if (!dtype) fail(ctx + "unsupported dtype " + printable(t.dtype) + " (supported: F32, F64, F16, BF16)");

    // A zero dimension makes the tensor empty, but the nonzero ones must still multiply to at most
    // kMaxShapeElements (as in NumPy, and so in msf.weights: no array of shape [0, 2**61] exists there).
    uint64_t numel = 1;
    bool empty = false;
    for (int64_t dim : t.shape) {
        const uint64_t d = static_cast<uint64_t>(dim);
        if (d == 0) empty = true;
        else if (numel > kMaxShapeElements / d) fail(ctx + "shape has too many elements (over 2^61 - 1 without its zeros)");
        else numel *= d;
    }
    if (empty) numel = 0;

    const uint64_t begin = offsets[0], end = offsets[1];
    if (begin > end) fail(ctx + "data_offsets begin " + std::to_string(begin) + " is after end " + std::to_string(end));
    if (end > data_size)
        fail(ctx + "data_offsets end " + std::to_string(end) + " is beyond the data section (" +
             std::to_string(data_size) + " bytes)");
    const uint64_t span = end - begin;
    if (numel > span / dtype->size || numel * dtype->size != span) {
        const bool fits = numel <= std::numeric_limits<uint64_t>::max() / dtype->size;
        fail(ctx + "data_offsets span " + std::to_string(span) + " bytes but " + std::to_string(numel) + " " +
             dtype->name + " elements need " + (fits ? std::to_string(numel * dtype->size) : "over 2^64"));
    }
    return Range{begin, end, &name, &t, dtype};
}

}  // namespace

StFile parse_safetensors(const uint8_t* bytes, size_t size) {
    if (size < 8) fail("file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
    const uint64_t header_len = load_le(bytes, 8);
    if (header_len > kMaxHeaderBytes)
        fail("header length " + std::to_string(header_len) + " exceeds the " + std::to_string(kMaxHeaderBytes) +
             "-byte limit");
    if (header_len > size - 8)
        fail("header length " + std::to_string(header_len) + " exceeds the " + std::to_string(size - 8) +
             " bytes after the length field");
    const uint8_t* header = bytes + 8;
    const size_t bad = utf8_error(header, header_len);
    if (bad != header_len) fail("header is not valid UTF-8 (byte " + std::to_string(bad) + ")");

    Json json(reinterpret_cast<const char*>(header), header_len);
    json.validate();

    const uint8_t* data = header + header_len;
    const uint64_t data_size = size - 8 - header_len;
    StFile file;
    std::vector<Range> ranges;
    bool has_metadata = false;
    if (json.peek() != '{') fail("header must be a JSON object");
    json.members([&](std::string name) {
        if (name == "__metadata__") {
            if (has_metadata) fail("duplicate key '__metadata__'");
            has_metadata = true;
            if (json.peek() != '{') fail("__metadata__ must be an object of strings");
            json.members([&](std::string key) {
                if (json.peek() != '"') fail("__metadata__ value for " + printable(key) + " must be a string");
                std::string value = json.string();
                if (!file.metadata.emplace(key, std::move(value)).second)
                    fail("duplicate __metadata__ key " + printable(key));
            });
            return;
        }
        auto [it, inserted] = file.tensors.emplace(std::move(name), StTensor{});
        if (!inserted) fail("duplicate tensor name " + printable(it->first));
        ranges.push_back(read_entry(json, it->first, it->second, data_size));
    });

    // The non-empty ranges must tile the data section exactly, as the format requires: shared bytes could
    // alias tensors, and bytes that belong to no tensor mean a corrupted or tampered file.
    std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
    const Range* previous = nullptr;  // the last non-empty range, in file order
    uint64_t covered = 0;
    for (const Range& r : ranges) {
        if (r.begin == r.end) continue;
        if (r.begin < covered)
            fail(tensor_ctx(*r.name) + "data overlaps tensor " + printable(*previous->name));
        if (r.begin > covered)
            fail(tensor_ctx(*r.name) + "data starts at " + std::to_string(r.begin) + " but the previous tensor ends at " +
                 std::to_string(covered) + ": bytes between tensors belong to none");
        covered = r.end;
        previous = &r;
    }
    if (covered != data_size)
        fail(std::to_string(data_size - covered) + " bytes after the last tensor belong to none (truncated header or "
             "corrupted file)");

    for (const Range& r : ranges) {
        const size_t count = static_cast<size_t>((r.end - r.begin) / r.dtype->size);
        r.tensor->data.resize(count);
        r.dtype->convert(data + r.begin, count, r.tensor->data.data());
    }
    return file;
}

StFile read_safetensors_file(const std::string& path) {
    // Only regular files are read, and that is checked before opening: opening a FIFO waits for a writer, a
    // device such as /dev/zero has no size and no end, and opening some devices acts. Should the path change
    // in between, file_size refuses anything but a regular file, so at worst the open waits (std::ifstream
    // cannot open without blocking).
    std::error_code ec;
    const std::filesystem::file_status status = std::filesystem::status(path, ec);
    if (!std::filesystem::exists(status)) fail("cannot open " + path + (ec ? ": " + ec.message() : ""));
    if (!std::filesystem::is_regular_file(status)) fail("cannot open " + path + ": not a regular file");
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("cannot open " + path);
    const uintmax_t len = std::filesystem::file_size(path, ec);
    if (ec || len > std::numeric_limits<size_t>::max()) fail("cannot read " + path);
    std::vector<uint8_t> buf(static_cast<size_t>(len));
    if (!buf.empty() && !in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(buf.size())))
        fail("cannot read " + path);
    try {
        return parse_safetensors(buf.data(), buf.size());
    } catch (const WeightsError& e) {
        throw WeightsError(path + ": " + e.what());
    }
}

}  // namespace msf
