// Standalone tests for the safetensors reader: valid files, every rejection path, and a mutation fuzz
// loop that must only ever produce msf::WeightsError. The non-empty tensors must tile the data section
// exactly (no hole at the start, between tensors or after the last one; no overlap), so every valid file
// built here does.
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "msf/errors.hpp"
#include "safetensors.hpp"

namespace {

int g_failures = 0;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            ++g_failures;                                                    \
        }                                                                    \
    } while (0)

using Bytes = std::vector<uint8_t>;

void put_le(Bytes& out, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

Bytes make_file(const std::string& header, const Bytes& data) {
    Bytes out;
    put_le(out, header.size(), 8);
    out.insert(out.end(), header.begin(), header.end());
    out.insert(out.end(), data.begin(), data.end());
    return out;
}

uint32_t f32_bits(float f) { uint32_t b; std::memcpy(&b, &f, 4); return b; }
uint64_t f64_bits(double d) { uint64_t b; std::memcpy(&b, &d, 8); return b; }

msf::StFile parse(const Bytes& b) { return msf::parse_safetensors(b.data(), b.size()); }

// Expects a WeightsError whose message contains `needle`.
void expect_error(const Bytes& b, const std::string& needle, int line) {
    try {
        parse(b);
        std::fprintf(stderr, "line %d: expected WeightsError containing \"%s\", parse succeeded\n", line, needle.c_str());
        ++g_failures;
    } catch (const msf::WeightsError& e) {
        if (std::string(e.what()).find(needle) == std::string::npos) {
            std::fprintf(stderr, "line %d: message \"%s\" lacks \"%s\"\n", line, e.what(), needle.c_str());
            ++g_failures;
        }
    }
}
#define EXPECT_ERROR(bytes, needle) expect_error(bytes, needle, __LINE__)

// A header whose only tensor "t" has the given entry text, backed by `data_len` zero bytes (by default
// exactly what an F32 tensor of shape [2] at [0, 8] needs).
Bytes one_tensor(const std::string& entry, size_t data_len = 8) {
    return make_file("{\"t\":" + entry + "}", Bytes(data_len, 0));
}

// For headers that fail before the data section is looked at.
Bytes header_only(const std::string& header) { return make_file(header, Bytes(16, 0)); }

// A tensor entry as header text: "name": {"dtype": ..., "shape": [...], "data_offsets": [begin, end]}.
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape, uint64_t begin,
                  uint64_t end) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
           std::to_string(begin) + "," + std::to_string(end) + "]}";
}

// A file with the given entries (comma-joined into one header) and `data_len` zero bytes of data.
Bytes entries(const std::vector<std::string>& items, size_t data_len) {
    std::string header = "{";
    for (const std::string& e : items) header += (header.size() > 1 ? "," : "") + e;
    return make_file(header + "}", Bytes(data_len, 0));
}

// Offset of the data section: the 8-byte length field plus the header.
size_t data_start(const Bytes& b) { return 8 + static_cast<size_t>(b[0] | (b[1] << 8) | (b[2] << 16)); }

Bytes valid_file() {
    Bytes data;
    const float f32[6] = {1.5f, -2.0f, 0.0f, 3.25f, -0.0f, 1e-40f};
    for (float f : f32) put_le(data, f32_bits(f), 4);          // [0, 24)
    put_le(data, f64_bits(0.1), 8);                             // [24, 40)
    put_le(data, f64_bits(-1e300), 8);                          //   overflows to -inf
    const uint16_t f16[4] = {0x3C00, 0x0001, 0x7C00, 0xFE01};   // 1, smallest subnormal, inf, nan
    for (uint16_t h : f16) put_le(data, h, 2);                  // [40, 48)
    const uint16_t bf16[3] = {0x3F80, 0xC040, 0x0001};          // 1, -3, smallest subnormal
    for (uint16_t h : bf16) put_le(data, h, 2);                 // [48, 54)
    put_le(data, f32_bits(7.0f), 4);                            // [54, 58) scalar, the last byte of the file
    std::string header =
        "{ \"__metadata__\": {\"format\": \"pt\", \"esc\": \"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"},\n"
        "  \"w.f32\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 24]},\n"
        "  \"w.f64\": {\"data_offsets\": [24, 40], \"dtype\": \"F64\", \"shape\": [2]},\n"
        "  \"w.f16\": {\"dtype\": \"F16\", \"shape\": [4], \"data_offsets\": [40, 48]},\n"
        "  \"w.bf16\": {\"dtype\": \"BF16\", \"shape\": [1, 3], \"data_offsets\": [48, 54]},\n"
        "  \"scalar\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [54, 58]},\n"
        "  \"empty\": {\"dtype\": \"F32\", \"shape\": [0, 5], \"data_offsets\": [58, 58]},\n"
        "  \"empty2\": {\"dtype\": \"F16\", \"shape\": [4, 0], \"data_offsets\": [30, 30]},\n"
        "  \"\\u00fcnicode\": {\"dtype\": \"BF16\", \"shape\": [0], \"data_offsets\": [0, 0]}\n"
        "}        ";
    // An odd header length puts the data section, and so every tensor, at an odd address: the reader must
    // not assume any alignment.
    if (header.size() % 2 == 0) header += ' ';
    return make_file(header, data);
}

void test_valid() {
    const Bytes file = valid_file();
    CHECK(data_start(file) % 2 == 1 && reinterpret_cast<uintptr_t>(file.data() + data_start(file)) % 4 != 0);
    CHECK(file.size() == data_start(file) + 58);  // the scalar ends the file
    const msf::StFile f = parse(file);
    CHECK(f.metadata.size() == 2);
    CHECK(f.metadata.at("format") == "pt");
    CHECK(f.metadata.at("esc") == "a\"b\\c/d\b\f\n\r\t\xC3\xA9\xF0\x9F\x98\x80");
    CHECK(f.tensors.size() == 8);

    const msf::StTensor& a = f.tensors.at("w.f32");
    CHECK(a.dtype == "F32");
    CHECK((a.shape == std::vector<int64_t>{2, 3}));
    CHECK((a.data == std::vector<float>{1.5f, -2.0f, 0.0f, 3.25f, -0.0f, 1e-40f}));
    CHECK(std::signbit(a.data[4]));

    const msf::StTensor& b = f.tensors.at("w.f64");
    CHECK(b.data.size() == 2 && b.data[0] == 0.1f && std::isinf(b.data[1]) && b.data[1] < 0);

    const msf::StTensor& c = f.tensors.at("w.f16");
    CHECK(c.data.size() == 4 && c.data[0] == 1.0f && c.data[1] == std::ldexp(1.0f, -24));
    CHECK(std::isinf(c.data[2]) && c.data[2] > 0 && std::isnan(c.data[3]));

    const msf::StTensor& d = f.tensors.at("w.bf16");
    CHECK((d.shape == std::vector<int64_t>{1, 3}));
    CHECK(d.data.size() == 3 && d.data[0] == 1.0f && d.data[1] == -3.0f && d.data[2] == std::ldexp(1.0f, -133));

    CHECK(f.tensors.at("scalar").shape.empty() && f.tensors.at("scalar").data == std::vector<float>{7.0f});
    CHECK(f.tensors.at("empty").data.empty() && f.tensors.at("empty2").data.empty());
    CHECK(f.tensors.count("\xC3\xBCnicode") == 1);

    // Smallest possible files.
    CHECK(parse(make_file("{}", {})).tensors.empty());
    CHECK(parse(make_file(" {\"__metadata__\":{}} ", {})).metadata.empty());
    CHECK(parse(make_file("{\"e\":{\"dtype\":\"F64\",\"shape\":[0],\"data_offsets\":[0,0]}}", {})).tensors.size() == 1);

    // One F64 tensor filling the data section, at every offset modulo 8 (the header's padding sets it).
    unsigned residues = 0;
    for (size_t pad = 0; pad < 8; ++pad) {
        Bytes data;
        put_le(data, f64_bits(-0.75), 8);
        const Bytes b = make_file("{\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}" +
                                  std::string(pad, ' '), data);
        residues |= 1u << (data_start(b) % 8);
        CHECK(parse(b).tensors.at("d").data == std::vector<float>{-0.75f});
    }
    CHECK(residues == 0xFF);
}

void test_conversions() {
    // F16 and BF16 against an arithmetic reference, every bit pattern.
    for (uint32_t h = 0; h < 0x10000; ++h) {
        Bytes data;
        put_le(data, h, 2);
        const msf::StFile f = parse(make_file(
            "{\"h\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]},"
            "\"b\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[2,4]}}",
            {data[0], data[1], data[0], data[1]}));
        const float got_h = f.tensors.at("h").data[0], got_b = f.tensors.at("b").data[0];
        const double sign = (h & 0x8000) ? -1.0 : 1.0;
        const int he = (h >> 10) & 0x1F, hm = h & 0x3FF;
        if (he == 0x1F) {
            CHECK(hm == 0 ? (std::isinf(got_h) && std::signbit(got_h) == (sign < 0)) : std::isnan(got_h));
        } else {
            const double want = sign * (he == 0 ? std::ldexp(hm, -24) : std::ldexp(1024 + hm, he - 25));
            CHECK(static_cast<double>(got_h) == want && std::signbit(got_h) == (sign < 0));
        }
        const int be = (h >> 7) & 0xFF, bm = h & 0x7F;
        if (be == 0xFF) {
            CHECK(bm == 0 ? std::isinf(got_b) : std::isnan(got_b));
        } else {
            const double want = sign * (be == 0 ? std::ldexp(bm, -133) : std::ldexp(128 + bm, be - 134));
            CHECK(static_cast<double>(got_b) == want && std::signbit(got_b) == (sign < 0));
        }
    }

    // F64 narrowing, including values just around float's largest finite value.
    const double in[] = {1.0, -2.5, 1e-50, FLT_MAX, 0x1.fffffefp127, 0x1.ffffffp127, -1e300,
                         std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()};
    Bytes data;
    for (double d : in) put_le(data, f64_bits(d), 8);
    const msf::StFile f = parse(make_file("{\"d\":{\"dtype\":\"F64\",\"shape\":[9],\"data_offsets\":[0,72]}}", data));
    const std::vector<float>& v = f.tensors.at("d").data;
    const float inf = std::numeric_limits<float>::infinity();
    CHECK(v[0] == 1.0f && v[1] == -2.5f && v[2] == 0.0f && v[3] == FLT_MAX && v[4] == FLT_MAX);
    CHECK(v[5] == inf && v[6] == -inf && v[7] == inf && std::isnan(v[8]));
}

void test_framing() {
    EXPECT_ERROR(Bytes{}, "shorter than");
    EXPECT_ERROR(Bytes(7, 0), "shorter than");
    Bytes b;
    put_le(b, 3, 8);
    b.push_back('{');
    b.push_back('}');
    EXPECT_ERROR(b, "exceeds");                             // one byte short
    b.clear();
    put_le(b, 150000000, 8);
    EXPECT_ERROR(b, "limit");
    b.clear();
    put_le(b, ~0ull, 8);
    EXPECT_ERROR(b, "limit");
    b.clear();
    put_le(b, 0, 8);
    EXPECT_ERROR(b, "syntax");                              // empty header
}

void test_utf8() {
    const char* bad[] = {"\xC0\x80", "\xED\xA0\x80", "\xF5\x80\x80\x80", "\xE2\x82", "\x80", "\xF4\x90\x80\x80",
                         "\xE0\x80\xAF", "\xFF"};
    for (const char* s : bad)
        EXPECT_ERROR(header_only(std::string("{\"__metadata__\":{\"k\":\"") + s + "\"}}"), "UTF-8");
    CHECK(parse(make_file("{\"__metadata__\":{\"k\":\"\xF4\x8F\xBF\xBF \xEF\xBF\xBF\"}}", {})).metadata.at("k") ==
          "\xF4\x8F\xBF\xBF \xEF\xBF\xBF");
}

void test_json_syntax() {
    const char* bad[] = {
        "", "{", "}", "{\"a\":}", "{\"a\"}", "{\"a\" 1}", "{\"a\":1,}", "{,}", "{'a':1}", "{a:1}",
        "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":-}", "{\"a\":+1}", "{\"a\":1e}", "{\"a\":1e+}",
        "{\"a\":[1,]}", "{\"a\":[,1]}", "{\"a\":[1 2]}", "{\"a\":\"x\ty\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}",
        "{\"a\":\"\\u12g4\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\"}", "{\"a\":\"\\ud800\\u0041\"}",
        "{\"a\":\"\\ud800x\"}", "{\"a\":\"abc", "{\"a\":\"abc\\", "{\"a\":tru}", "{\"a\":nul}", "{\"a\":True}",
        "{\"a\":NaN}", "{\"a\":Infinity}", "{} x", "{}{}", "{}\x01", "{/*c*/}", "\xEF\xBB\xBF{}",
    };
    for (const char* s : bad) EXPECT_ERROR(header_only(s), "syntax");
    EXPECT_ERROR(header_only(std::string("{\"a\":1}\0", 8)), "syntax");

    // Depth: 64 nested arrays and objects parse (then fail the schema), 65 do not, whatever the innermost
    // holds, and deep input never recurses further.
    const std::string ok = std::string(64, '[') + std::string(64, ']');
    EXPECT_ERROR(header_only(ok), "must be a JSON object");
    EXPECT_ERROR(header_only(std::string(64, '[') + "1" + std::string(64, ']')), "must be a JSON object");
    EXPECT_ERROR(header_only(std::string(65, '[') + std::string(65, ']')), "nesting");
    EXPECT_ERROR(header_only(std::string(65, '[') + "1" + std::string(65, ']')), "nesting deeper than 64");
    EXPECT_ERROR(header_only(std::string(1000000, '[')), "nesting");
    EXPECT_ERROR(header_only(std::string(500000, '{')), "syntax");
    std::string deep_obj;
    for (int i = 0; i < 100000; ++i) deep_obj += "{\"a\":";
    EXPECT_ERROR(header_only(deep_obj), "nesting");

    // Integer literals have at most 4300 digits (Python's json refuses more); floats any number.
    const std::string digits4300(4300, '7');
    EXPECT_ERROR(header_only("{\"__metadata__\":{\"k\":" + digits4300 + "}}"), "must be a string");
    EXPECT_ERROR(header_only("{\"__metadata__\":{\"k\":-" + digits4300 + "}}"), "must be a string");
    EXPECT_ERROR(header_only("{\"__metadata__\":{\"k\":" + digits4300 + "1}}"), "an integer of 4301 digits");
    EXPECT_ERROR(header_only("{\"__metadata__\":{\"k\":-" + digits4300 + "1}}"), "an integer of 4301 digits");
    EXPECT_ERROR(header_only("{\"__metadata__\":{\"k\":" + digits4300 + "1.5}}"), "must be a string");
    EXPECT_ERROR(header_only("{\"__metadata__\":{\"k\":" + digits4300 + "1e5}}"), "must be a string");

    // All value kinds are accepted by the syntax pass; these fail only on the schema.
    EXPECT_ERROR(header_only("{\"__metadata__\":{\"k\":[true,false,null,-0.5e-3,1E+2,{\"x\":\"\\u0000\"}]}}"),
                 "must be a string");
}

// The metadata JSON reader (config, pose): repeated keys are refused at every depth.
void test_metadata_json() {
    CHECK(msf::json_object_members("{\"a\":{\"b\":1,\"c\":[{\"b\":2}]},\"b\":3}").size() == 2);
    auto expect = [](const std::string& text, const std::string& needle, int line) {
        try {
            msf::json_object_members(text);
            std::fprintf(stderr, "line %d: expected WeightsError containing \"%s\"\n", line, needle.c_str());
            ++g_failures;
        } catch (const msf::WeightsError& e) {
            if (std::string(e.what()).find(needle) == std::string::npos) {
                std::fprintf(stderr, "line %d: message \"%s\" lacks \"%s\"\n", line, e.what(), needle.c_str());
                ++g_failures;
            }
        }
    };
    expect("{\"a\":1,\"a\":2}", "duplicate key 'a'", __LINE__);
    expect("{\"x\":{\"a\":1,\"a\":2}}", "duplicate key 'a'", __LINE__);
    expect("{\"x\":[0,{\"b\":1,\"\\u0062\":2}]}", "duplicate key 'b'", __LINE__);  // escapes decoded first
    expect("{\"x\":NaN}", "syntax", __LINE__);
    expect("{\"x\":\"\\ud800\"}", "unpaired high surrogate", __LINE__);
    CHECK(msf::json_object_members("{\"x\":" + std::string(63, '[') + "1" + std::string(63, ']') + "}").size() == 1);
    expect("{\"x\":" + std::string(64, '[') + std::string(64, ']') + "}", "nesting deeper than 64", __LINE__);
    expect("{\"x\":" + std::string(4301, '9') + "}", "an integer of 4301 digits", __LINE__);
    CHECK(msf::json_object_members("{\"x\":" + std::string(4300, '9') + "}").at("x").size() == 4300);
}

void test_schema() {
    for (const char* s : {"[]", "\"x\"", "1", "null", "true"}) EXPECT_ERROR(header_only(s), "must be a JSON object");

    const std::string t = "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
    CHECK(parse(one_tensor(t)).tensors.at("t").data.size() == 2);
    EXPECT_ERROR(header_only("{\"t\":" + t + ",\"t\":" + t + "}"), "duplicate tensor name 't'");
    EXPECT_ERROR(header_only("{\"__metadata__\":{},\"__metadata__\":{}}"), "duplicate key '__metadata__'");
    EXPECT_ERROR(header_only("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}"), "duplicate __metadata__ key 'k'");
    EXPECT_ERROR(one_tensor("{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"),
                 "duplicate key 'dtype'");

    // Entry structure.
    EXPECT_ERROR(one_tensor("[]"), "tensor 't': entry must be an object");
    EXPECT_ERROR(one_tensor("\"F32\""), "entry must be an object");
    EXPECT_ERROR(one_tensor("{\"dtype\":\"F32\",\"shape\":[2]}"), "missing key 'data_offsets'");
    EXPECT_ERROR(one_tensor("{\"shape\":[2],\"data_offsets\":[0,8]}"), "missing key 'dtype'");
    EXPECT_ERROR(one_tensor("{\"dtype\":\"F32\",\"data_offsets\":[0,8]}"), "missing key 'shape'");
    EXPECT_ERROR(one_tensor("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}"), "unexpected key 'x'");

    // Dtypes.
    for (const char* d : {"I64", "U8", "BOOL", "I32", "F8_E4M3", "f32", ""})
        EXPECT_ERROR(one_tensor(std::string("{\"dtype\":\"") + d + "\",\"shape\":[2],\"data_offsets\":[0,8]}"),
                     "unsupported dtype");
    EXPECT_ERROR(one_tensor("{\"dtype\":5,\"shape\":[2],\"data_offsets\":[0,8]}"), "dtype must be a string");

    // Shapes.
    auto shape = [](const std::string& s) {
        return one_tensor("{\"dtype\":\"F32\",\"shape\":" + s + ",\"data_offsets\":[0,8]}");
    };
    EXPECT_ERROR(shape("2"), "shape must be an array");
    EXPECT_ERROR(shape("{}"), "shape must be an array");
    EXPECT_ERROR(shape("[2.5]"), "must be an integer");
    EXPECT_ERROR(shape("[2.0]"), "must be an integer");
    EXPECT_ERROR(shape("[1e2]"), "must be an integer");
    EXPECT_ERROR(shape("[-1]"), "non-negative");
    EXPECT_ERROR(shape("[-0]"), "non-negative");
    EXPECT_ERROR(shape("[\"2\"]"), "non-negative integer");
    EXPECT_ERROR(shape("[true]"), "non-negative integer");
    EXPECT_ERROR(shape("[[2]]"), "non-negative integer");
    EXPECT_ERROR(shape("[9223372036854775808]"), "too large");
    EXPECT_ERROR(shape("[99999999999999999999999]"), "too large");
    EXPECT_ERROR(shape("[4294967296,4294967296]"), "too many elements");
    EXPECT_ERROR(shape("[9223372036854775807,3]"), "too many elements");
    EXPECT_ERROR(shape("[3]"), "span 8 bytes");
    EXPECT_ERROR(shape("[1]"), "span 8 bytes");
    EXPECT_ERROR(shape("[4611686018427387904]"), "too many elements");  // numel * 4 would wrap to 0
    EXPECT_ERROR(shape("[2305843009213693951]"), "span 8 bytes");  // the largest count: numel * 4 fits
    // Empty tensors: a zero dimension, and nonzero ones whose product is at most kMaxShapeElements = 2^61 - 1
    // (as float32 at most INT64_MAX bytes: NumPy's limit, and so msf.weights').
    auto empty = [](const std::string& s) {
        return one_tensor("{\"dtype\":\"F32\",\"shape\":" + s + ",\"data_offsets\":[0,0]}", 0);
    };
    CHECK(parse(empty("[0,2305843009213693951]")).tensors.at("t").data.empty());
    CHECK(parse(empty("[1073741824,0,2147483647]")).tensors.at("t").shape.size() == 3);
    EXPECT_ERROR(empty("[0,2305843009213693952]"), "too many elements");
    EXPECT_ERROR(empty("[0,9223372036854775807,9223372036854775807]"), "too many elements");
    EXPECT_ERROR(empty("[4294967296,0,4294967296]"), "too many elements");

    // At most kMaxShapeDims = 64 dimensions, empty or not.
    std::string dims64 = "[1", dims65;
    for (int i = 1; i < 64; ++i) dims64 += ",1";
    dims65 = dims64 + ",1]";
    dims64 += "]";
    CHECK(parse(one_tensor("{\"dtype\":\"F32\",\"shape\":" + dims64 + ",\"data_offsets\":[0,4]}", 4))
              .tensors.at("t").shape.size() == 64);
    EXPECT_ERROR(one_tensor("{\"dtype\":\"F32\",\"shape\":" + dims65 + ",\"data_offsets\":[0,4]}", 4),
                 "shape has more than 64 dimensions");
    std::string zeros65 = "[0";
    for (int i = 1; i < 65; ++i) zeros65 += ",0";
    EXPECT_ERROR(empty(zeros65 + "]"), "more than 64 dimensions");

    // Offsets.
    auto offsets = [](const std::string& s) {
        return one_tensor("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":" + s + "}");
    };
    EXPECT_ERROR(offsets("[0]"), "exactly two");
    EXPECT_ERROR(offsets("[]"), "exactly two");
    EXPECT_ERROR(offsets("[0,8,16]"), "exactly two");
    EXPECT_ERROR(offsets("{\"0\":8}"), "data_offsets must be an array");
    EXPECT_ERROR(offsets("[-1,8]"), "non-negative");
    EXPECT_ERROR(offsets("[0,8.0]"), "must be an integer");
    EXPECT_ERROR(offsets("[\"0\",8]"), "non-negative integer");
    EXPECT_ERROR(offsets("[8,0]"), "is after end");
    CHECK(parse(offsets("[0,8]")).tensors.at("t").data.size() == 2);  // ends exactly at the data end
    EXPECT_ERROR(offsets("[4,12]"), "data_offsets end 12 is beyond the data section (8 bytes)");
    EXPECT_ERROR(offsets("[12,20]"), "beyond the data section");
    EXPECT_ERROR(offsets("[0,18446744073709551615]"), "beyond the data section");
    EXPECT_ERROR(offsets("[0,18446744073709551616]"), "too large");
    EXPECT_ERROR(offsets("[0,4]"), "span 4 bytes");

    // Overlaps: partial, nested, and identical ranges, in either file order, each in a data section the
    // ranges would otherwise cover exactly (so the overlap is the only fault); touching ranges are fine.
    const std::string a08 = entry("a", "F32", "[2]", 0, 8);
    EXPECT_ERROR(entries({a08, entry("b", "F16", "[2]", 6, 10)}, 10), "tensor 'b': data overlaps tensor 'a'");
    EXPECT_ERROR(entries({entry("b", "F16", "[2]", 6, 10), a08}, 10), "tensor 'b': data overlaps tensor 'a'");
    EXPECT_ERROR(entries({a08, entry("b", "F16", "[2]", 2, 6)}, 8), "tensor 'b': data overlaps tensor 'a'");
    EXPECT_ERROR(entries({entry("c", "F16", "[2]", 0, 4), entry("a", "F32", "[2]", 4, 12),
                          entry("b", "F16", "[2]", 6, 10)}, 12),
                 "tensor 'b': data overlaps tensor 'a'");                    // nested, not at the start
    EXPECT_ERROR(entries({a08, entry("b", "F16", "[4]", 0, 8)}, 8), "overlaps");  // identical
    EXPECT_ERROR(entries({entry("c", "F32", "[1]", 0, 4), entry("a", "F32", "[2]", 8, 16),
                          entry("b", "F16", "[3]", 4, 10)}, 16),
                 "tensor 'a': data overlaps tensor 'b'");                    // b runs into a
    CHECK(parse(entries({a08, entry("b", "F16", "[2]", 8, 12)}, 12)).tensors.size() == 2);
    CHECK(parse(entries({entry("a", "F32", "[2]", 4, 12), entry("b", "F16", "[2]", 0, 4)}, 12)).tensors.size() == 2);
    EXPECT_ERROR(header_only("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                             "\"b\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                             "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}"),
                 "tensor 'c': data overlaps tensor 'a'");

    // Metadata.
    EXPECT_ERROR(header_only("{\"__metadata__\":[]}"), "__metadata__ must be an object");
    EXPECT_ERROR(header_only("{\"__metadata__\":\"x\"}"), "__metadata__ must be an object");
    EXPECT_ERROR(header_only("{\"__metadata__\":{\"k\":1}}"), "value for 'k' must be a string");
    EXPECT_ERROR(header_only("{\"__metadata__\":{\"k\":null}}"), "must be a string");
    EXPECT_ERROR(header_only("{\"__metadata__\":{\"k\":{}}}"), "must be a string");

    // Untrusted names are shortened and escaped in messages.
    try {
        parse(header_only("{\"" + std::string(1000, 'n') + "\\n\":1}"));
        CHECK(false);
    } catch (const msf::WeightsError& e) {
        CHECK(std::strlen(e.what()) < 200);
    }
    try {
        parse(header_only("{\"a\\nb\":1}"));
        CHECK(false);
    } catch (const msf::WeightsError& e) {
        CHECK(std::string(e.what()).find("'a\\x0ab'") != std::string::npos);
    }
}

// The non-empty tensors must cover the data section exactly: bytes that belong to no tensor (a hole at the
// start, between tensors, or after the last one) are refused, whatever the tensors' order in the header.
// Zero-size tensors may sit at any offset within the data section and fill no hole.
void test_tiling() {
    const std::string a = entry("a", "F32", "[2]", 0, 8), b = entry("b", "F16", "[2]", 8, 12);
    CHECK(parse(entries({a, b}, 12)).tensors.size() == 2);
    CHECK(parse(entries({b, a}, 12)).tensors.size() == 2);

    // Holes between tensors.
    EXPECT_ERROR(entries({a, entry("b", "F16", "[2]", 9, 13)}, 13),
                 "tensor 'b': data starts at 9 but the previous tensor ends at 8: bytes between tensors belong to none");
    EXPECT_ERROR(entries({entry("b", "F16", "[2]", 12, 16), a}, 16),
                 "tensor 'b': data starts at 12 but the previous tensor ends at 8: bytes between tensors belong to none");
    EXPECT_ERROR(entries({a, entry("e", "F32", "[0]", 8, 8), entry("b", "F16", "[2]", 12, 16)}, 16),
                 "bytes between tensors belong to none");   // an empty tensor fills nothing
    EXPECT_ERROR(entries({a, b, entry("c", "F32", "[1]", 16, 20)}, 20),
                 "tensor 'c': data starts at 16 but the previous tensor ends at 12");

    // A hole at the start of the data section.
    EXPECT_ERROR(entries({entry("a", "F32", "[2]", 1, 9)}, 9),
                 "tensor 'a': data starts at 1 but the previous tensor ends at 0: bytes between tensors belong to none");
    EXPECT_ERROR(entries({entry("a", "F32", "[2]", 4, 12), entry("e", "F32", "[0]", 0, 0)}, 12),
                 "data starts at 4 but the previous tensor ends at 0");

    // Bytes after the last tensor, with tensors, with empty tensors only, and with none at all.
    EXPECT_ERROR(entries({a, b}, 13), "1 bytes after the last tensor belong to none");
    EXPECT_ERROR(entries({b, a}, 20), "8 bytes after the last tensor belong to none");
    EXPECT_ERROR(entries({entry("e", "F32", "[0]", 0, 0)}, 3), "3 bytes after the last tensor belong to none");
    EXPECT_ERROR(make_file("{}", {0}), "1 bytes after the last tensor belong to none");
    EXPECT_ERROR(make_file("{\"__metadata__\":{\"format\":\"pt\"}}", Bytes(16, 0)),
                 "16 bytes after the last tensor belong to none");
    Bytes longer = valid_file();
    longer.push_back(0x55);
    EXPECT_ERROR(longer, "1 bytes after the last tensor belong to none");

    // Zero-size tensors at the start, inside another tensor, between two, and at the very end are fine;
    // beyond the end they are not.
    const msf::StFile f = parse(entries({a, b, entry("e0", "F32", "[0]", 0, 0), entry("e1", "F64", "[3,0]", 5, 5),
                                         entry("e2", "BF16", "[0]", 8, 8), entry("e3", "F16", "[0,2]", 12, 12)},
                                        12));
    CHECK(f.tensors.size() == 6 && f.tensors.at("e1").data.empty() && f.tensors.at("e3").data.empty());
    EXPECT_ERROR(entries({a, b, entry("e", "F32", "[0]", 13, 13)}, 12),
                 "tensor 'e': data_offsets end 13 is beyond the data section (12 bytes)");
    CHECK(parse(entries({entry("e", "F32", "[0]", 0, 0)}, 0)).tensors.at("e").data.empty());
    EXPECT_ERROR(entries({entry("e", "F32", "[0]", 1, 1)}, 0), "beyond the data section (0 bytes)");
}

void test_file_io() {
    try {
        msf::read_safetensors_file("/nonexistent/dir/x.safetensors");
        CHECK(false);
    } catch (const msf::WeightsError& e) {
        CHECK(std::string(e.what()).find("cannot open /nonexistent/dir/x.safetensors") != std::string::npos);
    }
    try {
        msf::read_safetensors_file("/tmp");
        CHECK(false);
    } catch (const msf::WeightsError& e) {
        CHECK(std::string(e.what()).find("cannot open") != std::string::npos);
    }
    const char* path = "/tmp/msf_st_standalone_test.safetensors";
    const Bytes b = valid_file();
    FILE* f = std::fopen(path, "wb");
    CHECK(f != nullptr);
    if (!f) return;
    std::fwrite(b.data(), 1, b.size(), f);
    std::fclose(f);
    CHECK(msf::read_safetensors_file(path).tensors.size() == 8);
    f = std::fopen(path, "wb");
    std::fwrite(b.data(), 1, 20, f);
    std::fclose(f);
    try {
        msf::read_safetensors_file(path);
        CHECK(false);
    } catch (const msf::WeightsError& e) {
        CHECK(std::string(e.what()).rfind(path, 0) == 0);
    }
    std::remove(path);
}

// Random mutations of a valid file: anything but a WeightsError (or a sanitizer report) is a bug.
void fuzz(int iterations) {
    const Bytes base = valid_file();
    const size_t header_end = 8 + static_cast<size_t>(base[0] | (base[1] << 8));
    const char json_chars[] = "{}[]\",:0123456789-+.eE\\u \tabcdfnrtlsF";
    std::mt19937 rng(12345);
    int accepted = 0, rejected = 0;
    for (int it = 0; it < iterations; ++it) {
        Bytes b = base;
        const int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits && !b.empty(); ++e) {
            const size_t pos = rng() % b.size();
            const size_t hpos = 8 + rng() % (header_end - 8);
            switch (rng() % 8) {
                case 0: b[pos] = static_cast<uint8_t>(rng()); break;
                case 1: b[pos] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
                case 2: b.resize(pos); break;
                case 3: b.erase(b.begin() + static_cast<std::ptrdiff_t>(pos)); break;
                case 4: b.insert(b.begin() + static_cast<std::ptrdiff_t>(pos), static_cast<uint8_t>(rng())); break;
                case 5: if (hpos < b.size()) b[hpos] = static_cast<uint8_t>(json_chars[rng() % (sizeof json_chars - 1)]); break;
                case 6: if (hpos < b.size()) b[hpos] = static_cast<uint8_t>('0' + rng() % 10); break;
                default: b[rng() % 8] = static_cast<uint8_t>(rng()); break;  // header length
            }
        }
        try {
            const msf::StFile f = parse(b);
            for (const auto& kv : f.tensors) {
                size_t numel = 1;
                for (int64_t d : kv.second.shape) numel *= static_cast<size_t>(d);
                if (kv.second.data.size() != numel) {
                    std::fprintf(stderr, "fuzz %d: data size mismatch for accepted file\n", it);
                    ++g_failures;
                }
            }
            ++accepted;
        } catch (const msf::WeightsError&) {
            ++rejected;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "fuzz %d: unexpected exception: %s\n", it, e.what());
            std::abort();
        }
    }
    std::printf("fuzz: %d iterations, %d accepted, %d rejected\n", iterations, accepted, rejected);
}

}  // namespace

int main() {
    test_valid();
    test_conversions();
    test_framing();
    test_utf8();
    test_json_syntax();
    test_metadata_json();
    test_schema();
    test_tiling();
    test_file_io();
    fuzz(200000);
    if (g_failures) {
        std::printf("FAILED: %d check(s)\n", g_failures);
        return 1;
    }
    std::printf("all safetensors tests passed\n");
    return 0;
}
