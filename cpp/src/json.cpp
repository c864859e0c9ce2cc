// The strict JSON reader: depth, integer-digit, surrogate and duplicate-key rules on top of RFC 8259.
#include "json.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <locale>
#include <sstream>
#include <vector>

#include "msf/errors.hpp"

namespace msf {
namespace {

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) { out += static_cast<char>(cp); return; }
    static constexpr uint32_t kLead[] = {0, 0xC0, 0xE0, 0xF0};
    const int tail = cp < 0x800 ? 1 : cp < 0x10000 ? 2 : 3;
    out += static_cast<char>(kLead[tail] | (cp >> (6 * tail)));
    for (int k = tail - 1; k >= 0; --k) out += static_cast<char>(0x80 | ((cp >> (6 * k)) & 0x3F));
}

}  // namespace

namespace json {

void fail(const std::string& msg) { throw WeightsError("safetensors: " + msg); }

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

void Reader::syntax(const std::string& what) const {
    fail("header JSON syntax error at byte " + std::to_string(pos_) + (pos_ < n_ ? "" : " (end of header)") +
         ": " + what);
}

void Reader::validate() {
    skip_value(0);
    peek();
    if (pos_ != n_) syntax("trailing characters after the top-level value");
    pos_ = 0;
}

std::string Reader::string() {
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

std::string Reader::number() {
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

// depth: the arrays and objects around the value. At most kMaxJsonDepth of them nest, so recursion is
// bounded whatever the input.
void Reader::skip_value(int depth) {
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

void Reader::skip_object(int depth) {
    std::vector<std::string> keys;
    members([&](std::string key) {
        skip_value(depth);
        if (unique_keys_) keys.push_back(std::move(key));
    });
    std::sort(keys.begin(), keys.end());
    const auto dup = std::adjacent_find(keys.begin(), keys.end());
    if (dup != keys.end()) fail("duplicate key " + printable(*dup) + " in a JSON object");
}

void Reader::literal(const char* word) {
    const size_t len = std::strlen(word);
    if (n_ - pos_ < len || std::memcmp(p_ + pos_, word, len) != 0) syntax("invalid literal");
    pos_ += len;
}

bool Reader::digits() {
    const size_t start = pos_;
    while (pos_ < n_ && p_[pos_] >= '0' && p_[pos_] <= '9') ++pos_;
    return pos_ > start;
}

uint32_t Reader::hex4() {
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
uint32_t Reader::code_point() {
    const uint32_t cp = hex4();
    if (cp >= 0xDC00 && cp <= 0xDFFF) syntax("unpaired low surrogate in \\u escape");
    if (cp < 0xD800 || cp > 0xDBFF) return cp;
    if (n_ - pos_ < 2 || p_[pos_] != '\\' || p_[pos_ + 1] != 'u') syntax("unpaired high surrogate in \\u escape");
    pos_ += 2;
    const uint32_t lo = hex4();
    if (lo < 0xDC00 || lo > 0xDFFF) syntax("unpaired high surrogate in \\u escape");
    return 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
}

}  // namespace json

std::map<std::string, std::string> json_object_members(const std::string& text) {
    json::Reader reader(text.data(), text.size(), /*unique_keys=*/true);
    reader.validate();
    if (reader.peek() != '{') json::fail("metadata value is not a JSON object");
    std::map<std::string, std::string> out;
    reader.members([&](std::string key) {
        if (!out.emplace(key, reader.raw()).second)
            json::fail("duplicate key " + json::printable(key) + " in a metadata object");
    });
    return out;
}

JsonKind json_kind(const std::string& raw) {
    switch (raw.empty() ? '\0' : raw[0]) {
        case 'n': return JsonKind::Null;
        case 't': case 'f': return JsonKind::Bool;
        case '"': return JsonKind::String;
        case '[': return JsonKind::Array;
        case '{': return JsonKind::Object;
        default: return raw.find_first_of(".eE") == std::string::npos ? JsonKind::Integer : JsonKind::Float;
    }
}

bool json_integer(const std::string& raw, long long& value) {
    const size_t i = !raw.empty() && raw[0] == '-' ? 1 : 0;
    if (raw.size() == i || raw.size() - i > 18) return false;  // 18 digits cannot overflow long long
    for (size_t k = i; k < raw.size(); ++k)
        if (raw[k] < '0' || raw[k] > '9') return false;
    value = std::stoll(raw);
    return true;
}

bool json_number(const std::string& raw, double& value) {
    const JsonKind kind = json_kind(raw);
    if (kind != JsonKind::Integer && kind != JsonKind::Float) return false;
    // correctly rounded, as Python's float(); the classic locale, whatever the application set
    std::istringstream in(raw);
    in.imbue(std::locale::classic());
    in >> value;
    return !in.fail();  // fails beyond double range (Python: inf, or OverflowError for an int)
}

std::string json_string(const std::string& raw) {
    json::Reader reader(raw.data(), raw.size());
    return reader.string();
}

std::vector<std::string> json_array_elements(const std::string& raw) {
    json::Reader reader(raw.data(), raw.size());
    if (reader.peek() != '[') json::fail("metadata value is not a JSON array");
    std::vector<std::string> out;
    reader.elements([&] { out.push_back(reader.raw()); });
    return out;
}

}  // namespace msf
