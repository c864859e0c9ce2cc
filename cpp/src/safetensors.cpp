// Safetensors reader. Every length, offset and count comes from the file and is checked before use;
// memory allocated is bounded by a small multiple of the file size.
#include "safetensors.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <system_error>

#include "msf/errors.hpp"

namespace msf {
namespace {

[[noreturn]] void fail(const std::string& msg) { throw WeightsError("safetensors: " + msg); }

// Names and tokens come from the file: keep them short and free of control bytes in messages.
std::string printable(const std::string& s) {
    constexpr size_t kMax = 80;
    size_t cut = std::min(s.size(), kMax);
    while (cut < s.size() && cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    std::string out = "'";
    for (size_t i = 0; i < cut; ++i) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7f || c == '\\' || c == '\'') {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + (cut < s.size() ? "'..." : "'");
}

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

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) { out += static_cast<char>(cp); return; }
    static constexpr uint32_t kLead[] = {0, 0xC0, 0xE0, 0xF0};
    const int tail = cp < 0x800 ? 1 : cp < 0x10000 ? 2 : 3;
    out += static_cast<char>(kLead[tail] | (cp >> (6 * tail)));
    for (int k = tail - 1; k >= 0; --k) out += static_cast<char>(0x80 | ((cp >> (6 * k)) & 0x3F));
}

// Strict RFC 8259 reader over the header text. validate() checks the whole document's syntax so that
// syntax errors are reported as such; the schema pass then walks it again with the same primitives,
// building only what it keeps (no generic tree, whose size could dwarf the header).
class Json {
public:
    // unique_keys: validate() also refuses an object that repeats a key, at any depth (the metadata JSON;
    // the header's schema pass names its own duplicates).
    Json(const char* p, size_t n, bool unique_keys = false) : p_(p), n_(n), unique_keys_(unique_keys) {}

    [[noreturn]] void syntax(const std::string& what) const {
        fail("header JSON syntax error at byte " + std::to_string(pos_) + (pos_ < n_ ? "" : " (end of header)") +
             ": " + what);
    }

    void validate() {
        skip_value(0);
        peek();
        if (pos_ != n_) syntax("trailing characters after the top-level value");
        pos_ = 0;
    }

    // Skips one value (already validated) and tells where the reader stands.
    void skip() { skip_value(0); }
    size_t position() {
        peek();
        return pos_;
    }

    // Next significant character, or '\0' at the end (a literal NUL is never valid here either).
    char peek() {
        while (pos_ < n_ && (p_[pos_] == ' ' || p_[pos_] == '\t' || p_[pos_] == '\n' || p_[pos_] == '\r'))
            ++pos_;
        return pos_ < n_ ? p_[pos_] : '\0';
    }

    void expect(char c) {
        if (peek() != c) syntax(std::string("expected '") + c + "'");
        ++pos_;
    }

    std::string string() {
        expect('"');
        std::string out;
        for (;;) {
            if (pos_ >= n_) syntax("unterminated string");
            const unsigned char c = static_cast<unsigned char>(p_[pos_]);
            if (c < 0x20) syntax("unescaped control character in string");
            ++pos_;
            if (c == '"') return out;
            if (c != '\\') { out += static_cast<char>(c); continue; }
            if (pos_ >= n_) syntax("unterminated string");
            switch (p_[pos_++]) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': append_utf8(out, code_point()); break;
                default: --pos_; syntax("invalid escape in string");
            }
        }
    }

    // Returns the number's text; callers that need a value interpret it. An integer literal (no fraction,
    // no exponent) has at most kMaxIntegerDigits digits, as Python's json reads it.
    std::string number() {
        peek();
        const size_t start = pos_;
        if (pos_ < n_ && p_[pos_] == '-') ++pos_;
        const size_t first_digit = pos_;
        if (pos_ < n_ && p_[pos_] == '0') ++pos_;
        else if (!digits()) syntax("invalid value");
        const size_t integer_digits = pos_ - first_digit;
        bool integer = true;
        if (pos_ < n_ && p_[pos_] == '.') {
            ++pos_;
            integer = false;
            if (!digits()) syntax("missing digits after decimal point");
        }
        if (pos_ < n_ && (p_[pos_] == 'e' || p_[pos_] == 'E')) {
            ++pos_;
            integer = false;
            if (pos_ < n_ && (p_[pos_] == '+' || p_[pos_] == '-')) ++pos_;
            if (!digits()) syntax("missing digits in exponent");
        }
        if (integer && integer_digits > kMaxIntegerDigits) {
            pos_ = start;
            syntax("an integer of " + std::to_string(integer_digits) + " digits, over the limit of " +
                   std::to_string(kMaxIntegerDigits));
        }
        return std::string(p_ + start, pos_ - start);
    }

    // Calls on_member(key) with the reader positioned at each member's value, which it must consume.
    template <class F>
    void members(F&& on_member) {
        expect('{');
        if (peek() == '}') { ++pos_; return; }
        for (;;) {
            if (peek() != '"') syntax("expected a string key");
            std::string key = string();
            expect(':');
            on_member(std::move(key));
            if (peek() != ',') break;
            ++pos_;
        }
        expect('}');
    }

    template <class F>
    void elements(F&& on_element) {
        expect('[');
        if (peek() == ']') { ++pos_; return; }
        for (;;) {
            on_element();
            if (peek() != ',') break;
            ++pos_;
        }
        expect(']');
    }

private:
    // depth: the arrays and objects around the value. At most kMaxJsonDepth of them nest, so recursion is
    // bounded whatever the input.
    void skip_value(int depth) {
        const char c = peek();
        if ((c == '{' || c == '[') && depth >= kMaxJsonDepth)
            syntax("nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels of arrays and objects");
        switch (c) {
            case '{': skip_object(depth + 1); break;
            case '[': elements([&] { skip_value(depth + 1); }); break;
            case '"': string(); break;
            case 't': literal("true"); break;
            case 'f': literal("false"); break;
            case 'n': literal("null"); break;
            default: number();
        }
    }

    void skip_object(int depth) {
        std::vector<std::string> keys;
        members([&](std::string key) {
            skip_value(depth);
            if (unique_keys_) keys.push_back(std::move(key));
        });
        std::sort(keys.begin(), keys.end());
        const auto dup = std::adjacent_find(keys.begin(), keys.end());
        if (dup != keys.end()) fail("duplicate key " + printable(*dup) + " in a JSON object");
    }

    void literal(const char* word) {
        const size_t len = std::strlen(word);
        if (n_ - pos_ < len || std::memcmp(p_ + pos_, word, len) != 0) syntax("invalid literal");
        pos_ += len;
    }

    bool digits() {
        const size_t start = pos_;
        while (pos_ < n_ && p_[pos_] >= '0' && p_[pos_] <= '9') ++pos_;
        return pos_ > start;
    }

    uint32_t hex4() {
        if (n_ - pos_ < 4) syntax("truncated \\u escape");
        uint32_t v = 0;
        for (int i = 0; i < 4; ++i) {
            const char c = p_[pos_++];
            int d;
            if (c >= '0' && c <= '9') d = c - '0';
            else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
            else syntax("invalid hex digit in \\u escape");
            v = (v << 4) | static_cast<uint32_t>(d);
        }
        return v;
    }

    // Surrogates must come as a high/low pair, which is how JSON spells code points above U+FFFF.
    uint32_t code_point() {
        const uint32_t cp = hex4();
        if (cp >= 0xDC00 && cp <= 0xDFFF) syntax("unpaired low surrogate in \\u escape");
        if (cp < 0xD800 || cp > 0xDBFF) return cp;
        if (n_ - pos_ < 2 || p_[pos_] != '\\' || p_[pos_ + 1] != 'u') syntax("unpaired high surrogate in \\u escape");
        pos_ += 2;
        const uint32_t lo = hex4();
        if (lo < 0xDC00 || lo > 0xDFFF) syntax("unpaired high surrogate in \\u escape");
        return 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }

    const char* p_;
    size_t n_;
    bool unique_keys_;
    size_t pos_ = 0;
};

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

std::map<std::string, std::string> json_object_members(const std::string& text) {
    Json json(text.data(), text.size(), /*unique_keys=*/true);
    json.validate();
    if (json.peek() != '{') fail("metadata value is not a JSON object");
    std::map<std::string, std::string> out;
    json.members([&](std::string key) {
        const size_t start = json.position();
        json.skip();
        if (!out.emplace(key, text.substr(start, json.position() - start)).second)
            fail("duplicate key " + printable(key) + " in a metadata object");
    });
    return out;
}

bool json_integer(const std::string& text, long long& value) {
    size_t i = text[0] == '-' ? 1 : 0;
    if (text.size() == i || text.size() - i > 18) return false;  // 18 digits cannot overflow long long
    for (size_t k = i; k < text.size(); ++k)
        if (text[k] < '0' || text[k] > '9') return false;
    value = std::stoll(text);
    return true;
}

long long json_array_length(const std::string& text) {
    Json json(text.data(), text.size());
    json.validate();
    if (json.peek() != '[') return -1;
    long long n = 0;
    json.elements([&] {
        json.skip();
        ++n;
    });
    return n;
}

StFile read_safetensors_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("cannot open " + path);
    // A directory or device can open fine but has no meaningful size; only regular files are read.
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) fail("cannot open " + path + ": not a regular file");
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
