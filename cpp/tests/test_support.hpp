// Shared by the C++ tests: failure counting, the reference vectors (data/vectors.txt), tolerance checks,
// and a safetensors writer for building bad weight files.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "msf/msf.hpp"
#include "safetensors.hpp"

namespace test {

inline int failures = 0;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            ++test::failures;                                                              \
        }                                                                                  \
    } while (0)

inline int finish(const char* name) {
    if (test::failures) {
        std::printf("%s: FAILED %d check(s)\n", name, test::failures);
        return 1;
    }
    std::printf("%s: all tests passed\n", name);
    return 0;
}

// Tolerances of tests/tolerances.py: kernels 1e-5 relative plus 1e-5 of the largest reference value,
// the whole model 1e-5 of its largest output.
constexpr double kKernelRtol = 1e-5, kKernelAtolOfMax = 1e-5, kModelAtolOfMax = 1e-5;

struct Array {
    std::vector<int64_t> shape;
    std::vector<double> values;
    std::vector<float> f32() const { return {values.begin(), values.end()}; }
    int dim(size_t axis) const { return static_cast<int>(shape.at(axis)); }
};

// vectors.txt: a comment line, then per array `name ndim dim...` and its values (see make_vectors.py).
inline std::map<std::string, Array> read_vectors(const std::string& path) {
    std::ifstream in(path);
    std::string line, name;
    if (!in || !std::getline(in, line)) throw std::runtime_error("cannot read " + path);
    std::map<std::string, Array> arrays;
    size_t ndim;
    while (in >> name >> ndim) {
        Array& a = arrays[name];
        size_t count = 1;
        a.shape.resize(ndim);
        for (int64_t& d : a.shape) {
            in >> d;
            count *= static_cast<size_t>(d);
        }
        a.values.resize(count);
        for (double& v : a.values) in >> v;
        if (!in) throw std::runtime_error(path + ": malformed array " + name);
    }
    if (!in.eof()) throw std::runtime_error(path + ": trailing garbage");
    return arrays;
}

// |got - want| <= atol + atol_of_max * max|want| + rtol * |want| for every element; reports the worst.
inline bool close(const std::string& what, const float* got, const std::vector<double>& want, double rtol,
                  double atol_of_max, double atol = 0.0) {
    double max_ref = 0.0;
    for (double w : want) max_ref = std::max(max_ref, std::fabs(w));
    size_t worst = 0;
    double worst_excess = -INFINITY;
    for (size_t i = 0; i < want.size(); ++i) {
        const double bound = atol + atol_of_max * max_ref + rtol * std::fabs(want[i]);
        const double excess = std::isfinite(got[i]) ? std::fabs(got[i] - want[i]) - bound : INFINITY;
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    if (worst_excess <= 0.0) return true;
    std::fprintf(stderr, "%s: element %zu is %.9g, reference %.17g (|diff| %.3g exceeds the bound by %.3g)\n",
                 what.c_str(), worst, got[worst], want[worst], std::fabs(got[worst] - want[worst]), worst_excess);
    ++failures;
    return false;
}

inline std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

// An F32 safetensors file (names and metadata in map order). Little-endian whatever the host.
inline std::vector<uint8_t> to_safetensors(const msf::TensorMap& tensors, const msf::Metadata& metadata) {
    std::string header = "{\"__metadata__\":{";
    for (const auto& kv : metadata)
        header += (header.back() == '{' ? "" : ",") + json_string(kv.first) + ":" + json_string(kv.second);
    header += "}";
    std::vector<uint8_t> data;
    for (const auto& kv : tensors) {
        header += "," + json_string(kv.first) + ":{\"dtype\":\"F32\",\"shape\":[";
        for (size_t i = 0; i < kv.second.shape.size(); ++i)
            header += (i ? "," : "") + std::to_string(kv.second.shape[i]);
        header += "],\"data_offsets\":[" + std::to_string(data.size()) + ",";
        for (float f : kv.second.data) {
            uint32_t bits;
            std::memcpy(&bits, &f, 4);
            for (int b = 0; b < 4; ++b) data.push_back(static_cast<uint8_t>(bits >> (8 * b)));
        }
        header += std::to_string(data.size()) + "]}";
    }
    header += "}";
    std::vector<uint8_t> out;
    for (int b = 0; b < 8; ++b) out.push_back(static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * b)));
    out.insert(out.end(), header.begin(), header.end());
    out.insert(out.end(), data.begin(), data.end());
    return out;
}

// A weight file's tensors and metadata, as Model's constructor takes them.
inline std::pair<msf::TensorMap, msf::Metadata> read_model(const std::string& path) {
    msf::StFile file = msf::read_safetensors_file(path);
    msf::TensorMap tensors;
    for (auto& [name, t] : file.tensors) tensors[name] = msf::Tensor{std::move(t.shape), std::move(t.data)};
    return {std::move(tensors), std::move(file.metadata)};
}

inline std::vector<uint8_t> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace test
