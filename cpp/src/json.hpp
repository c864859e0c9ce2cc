// Strict RFC 8259 JSON over untrusted text: the safetensors header and the metadata values the model reads
// (config, pose). Every JSON msf reads sits in a weights file, so its errors are WeightsErrors.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace msf {

// Limits on untrusted JSON, shared with msf.weights (see safetensors.hpp).
constexpr int kMaxJsonDepth = 64;           // nested arrays and objects in the header and the metadata JSON
constexpr size_t kMaxIntegerDigits = 4300;  // digits of an integer literal (Python's int-from-string limit)

// The members of a JSON object held in a metadata string, each as its raw JSON text (the value alone, without
// the whitespace around it). Throws WeightsError when the text is not a JSON object.
std::map<std::string, std::string> json_object_members(const std::string& text);

// What a raw JSON value (as json_object_members gives it) is, as Python's json reads it: a number without
// fraction or exponent is an int, any other a float.
enum class JsonKind { Null, Bool, Integer, Float, String, Array, Object };
JsonKind json_kind(const std::string& raw);
// value = the integer a raw JSON text spells; false when it is not an integer literal of at most 18 digits.
bool json_integer(const std::string& raw, long long& value);
// value = the double nearest to a raw JSON number; false when it is not a number or is beyond double range.
bool json_number(const std::string& raw, double& value);
// The string a raw JSON string spells, escapes decoded.
std::string json_string(const std::string& raw);
// The elements of a raw JSON array, each as its raw text; WeightsError when it is not an array.
std::vector<std::string> json_array_elements(const std::string& raw);

namespace json {

// Throws WeightsError("safetensors: " + msg), the one error of the reader and of the format around it.
[[noreturn]] void fail(const std::string& msg);

// Names and tokens come from the file: keep them short and free of control bytes in messages.
std::string printable(const std::string& s);

// validate() checks the whole document's syntax so that syntax errors are reported as such; a schema
// pass then walks it again with the same primitives, building only what it keeps (no generic tree, whose
// size could dwarf the text).
class Reader {
public:
    // unique_keys: validate() also refuses an object that repeats a key, at any depth (the metadata JSON;
    // the header's schema pass names its own duplicates).
    Reader(const char* p, size_t n, bool unique_keys = false) : p_(p), n_(n), unique_keys_(unique_keys) {}

    [[noreturn]] void syntax(const std::string& what) const;

    void validate();

    // Skips one value (already validated) and gives its text, without the whitespace around it.
    std::string raw() {
        peek();
        const size_t start = pos_;
        skip_value(0);
        return std::string(p_ + start, pos_ - start);
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

    std::string string();

    // Returns the number's text; callers that need a value interpret it. An integer literal (no fraction,
    // no exponent) has at most kMaxIntegerDigits digits, as Python's json reads it.
    std::string number();

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
    void skip_value(int depth);
    void skip_object(int depth);
    void literal(const char* word);
    bool digits();
    uint32_t hex4();
    uint32_t code_point();

    const char* p_;
    size_t n_;
    bool unique_keys_;
    size_t pos_ = 0;
};

}  // namespace json
}  // namespace msf
