// The C API (msf.h): every load error path and status code, refine's argument checks, per-thread error
// state, concurrent use, and allocation failure at every allocation of a load. Usage: test_c_api DATA_DIR
#include "msf/msf.h"

#include <atomic>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

#if defined(__SSE__) || defined(_M_X64)
#include <xmmintrin.h>
#define TEST_MXCSR 1
#endif

// Replaceable global allocation: the library is linked statically, so its allocations come here too.
// A thread's budget of successful allocations lets a test fail the n-th one; negative means unlimited.
namespace {
thread_local long t_allocation_budget = -1;
}

void* operator new(std::size_t size) {
    if (t_allocation_budget == 0) throw std::bad_alloc();
    if (t_allocation_budget > 0) --t_allocation_budget;
    if (void* p = std::malloc(size ? size : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

std::string data_dir, tmp_dir;
msf::TensorMap base_tensors;
msf::Metadata base_metadata;
std::vector<uint8_t> model_bytes;

bool error_contains(const std::string& needle) {
    return std::string(msf_last_error()).find(needle) != std::string::npos;
}

// Expects the last call to have failed with `status` and a message containing `needle`.
void expect_status(int status, const std::string& needle, int line) {
    if (msf_last_status() != status || !error_contains(needle)) {
        std::fprintf(stderr, "line %d: status %d, message \"%s\"; expected status %d with \"%s\"\n", line,
                     msf_last_status(), msf_last_error(), status, needle.c_str());
        ++test::failures;
    }
}
#define EXPECT_STATUS(status, needle) expect_status(status, needle, __LINE__)

void expect_load_fails(msf_model* model, int status, const std::string& needle, int line) {
    if (model) {
        std::fprintf(stderr, "line %d: load succeeded, expected status %d with \"%s\"\n", line, status, needle.c_str());
        ++test::failures;
        msf_free(model);
        return;
    }
    expect_status(status, needle, line);
}
#define EXPECT_LOAD_FAILS(expr, status, needle) expect_load_fails(expr, status, needle, __LINE__)

// Loads the test model altered by `edit` from memory and from a file; both must fail alike.
void expect_weights_error(const std::function<void(msf::TensorMap&, msf::Metadata&)>& edit, const std::string& needle,
                          int line) {
    msf::TensorMap tensors = base_tensors;
    msf::Metadata metadata = base_metadata;
    edit(tensors, metadata);
    const std::vector<uint8_t> bytes = test::to_safetensors(tensors, metadata);
    expect_load_fails(msf_load_buffer(bytes.data(), bytes.size()), MSF_ERR_WEIGHTS, needle, line);
    const std::string path = tmp_dir + "/edited.safetensors";
    test::write_file(path, bytes);
    expect_load_fails(msf_load_file(path.c_str()), MSF_ERR_WEIGHTS, needle, line);
}
#define EXPECT_WEIGHTS_ERROR(edit, needle) expect_weights_error(edit, needle, __LINE__)

// A tensor of the given shape, every value 0.1.
msf::Tensor filled(std::vector<int64_t> shape) {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    return msf::Tensor{std::move(shape), std::vector<float>(n, 0.1f)};
}

void test_version() {
    CHECK(std::string(msf_version()) == MSF_EXPECTED_VERSION);
}

void test_load_files() {
    msf_model* model = msf_load_file((data_dir + "/model.safetensors").c_str());
    CHECK(model && msf_last_status() == MSF_OK && std::string(msf_last_error()).empty());
    msf_free(model);
    msf_free(nullptr);

    EXPECT_LOAD_FAILS(msf_load_file(nullptr), MSF_ERR_ARGUMENT, "path is NULL");
    EXPECT_LOAD_FAILS(msf_load_file("/nonexistent/model.safetensors"), MSF_ERR_WEIGHTS,
                      "cannot open /nonexistent/model.safetensors");
    EXPECT_LOAD_FAILS(msf_load_file(tmp_dir.c_str()), MSF_ERR_WEIGHTS, "cannot open");
    EXPECT_LOAD_FAILS(msf_load_file(""), MSF_ERR_WEIGHTS, "cannot open");
    const std::string path = tmp_dir + "/bad.safetensors";
    test::write_file(path, {});
    EXPECT_LOAD_FAILS(msf_load_file(path.c_str()), MSF_ERR_WEIGHTS, "shorter than the 8-byte header length");
    test::write_file(path, std::vector<uint8_t>(model_bytes.begin(), model_bytes.end() - 100));
    EXPECT_LOAD_FAILS(msf_load_file(path.c_str()), MSF_ERR_WEIGHTS, path + ": safetensors: tensor");
    const std::string text = "not a weights file at all, but it is long enough";
    test::write_file(path, std::vector<uint8_t>(text.begin(), text.end()));
    EXPECT_LOAD_FAILS(msf_load_file(path.c_str()), MSF_ERR_WEIGHTS, "exceeds");

    model = msf_load_buffer(model_bytes.data(), model_bytes.size());
    CHECK(model && msf_last_status() == MSF_OK);
    msf_free(model);
    EXPECT_LOAD_FAILS(msf_load_buffer(nullptr, 0), MSF_ERR_ARGUMENT, "data is NULL");
    EXPECT_LOAD_FAILS(msf_load_buffer(nullptr, 100), MSF_ERR_ARGUMENT, "data is NULL");
    EXPECT_LOAD_FAILS(msf_load_buffer(model_bytes.data(), 0), MSF_ERR_WEIGHTS, "shorter than");
    EXPECT_LOAD_FAILS(msf_load_buffer(model_bytes.data(), model_bytes.size() - 1), MSF_ERR_WEIGHTS,
                      "beyond the data section");
    std::vector<uint8_t> bad = model_bytes;
    bad[8] = '[';
    EXPECT_LOAD_FAILS(msf_load_buffer(bad.data(), bad.size()), MSF_ERR_WEIGHTS, "syntax error");
}

// Each way a well-formed safetensors file can fail to be an msf model (model.cpp's checks, in order).
void test_model_errors() {
    using T = msf::TensorMap;
    using M = msf::Metadata;
    const std::string b0 = "encoder.layers.0.", b1 = "encoder.layers.1.";
    const std::string token = "synth_att.synth_token.", channel = "synth_att.synth_channel.";
    EXPECT_WEIGHTS_ERROR([](T&, M& m) { m["format"] = "gguf"; }, "metadata format is 'gguf', expected 'msf'");
    EXPECT_WEIGHTS_ERROR([](T&, M& m) { m["format_version"] = "2"; }, "format_version '2' is not supported");
    EXPECT_WEIGHTS_ERROR([](T& t, M&) { t.clear(); t["x"] = filled({2}); }, "missing tensor 'l_interp.weight'");
    EXPECT_WEIGHTS_ERROR([](T& t, M&) { t.erase("encoder_emb.weight"); }, "missing tensor 'encoder_emb.weight'");
    EXPECT_WEIGHTS_ERROR([&](T& t, M&) { t.erase(b0 + token + "se.fc.0.weight"); },
                         "missing tensor '" + b0 + token + "se.fc.0.weight'");
    EXPECT_WEIGHTS_ERROR([&](T& t, M&) { t.erase(b1 + "ff.fc2.bias"); }, "missing tensor '" + b1 + "ff.fc2.bias'");
    EXPECT_WEIGHTS_ERROR([&](T& t, M&) { t.erase(b1 + token + "value_reduce.bias"); }, "missing tensor");
    EXPECT_WEIGHTS_ERROR([](T& t, M&) { t["l_interp.weight"] = filled({65}); }, "expected a 2-D weight");
    EXPECT_WEIGHTS_ERROR([](T& t, M&) { t["l_interp.weight"] = filled({16777217, 0}); }, "implausibly large");
    EXPECT_WEIGHTS_ERROR([](T& t, M&) { t["l_interp.weight"] = filled({14, 5}); }, "positive multiple of Q");
    EXPECT_WEIGHTS_ERROR([](T& t, M&) { t["l_interp.weight"] = filled({13, 1}); }, "positive multiple of Q");
    EXPECT_WEIGHTS_ERROR([](T& t, M&) { t["l_interp.weight"] = filled({1, 5}); }, "positive multiple of Q");
    EXPECT_WEIGHTS_ERROR([](T& t, M&) { t["encoder_emb.weight"] = filled({0, 6}); }, "must be >= 1");
    EXPECT_WEIGHTS_ERROR([&](T& t, M&) { t[b0 + token + "dense.weight"] = filled({14, 16}); }, "exceed T, C");
    EXPECT_WEIGHTS_ERROR([&](T& t, M&) { t[b0 + channel + "dense.weight"] = filled({17, 13}); }, "exceed T, C");
    EXPECT_WEIGHTS_ERROR([](T& t, M&) { t["l_interp.bias"] = filled({12}); },
                         "tensor 'l_interp.bias' has shape [12], the inferred config needs [13]");
    EXPECT_WEIGHTS_ERROR([&](T& t, M&) { t[b1 + "ff.fc1.weight"] = filled({32, 15}); }, "needs [32, 16]");
    EXPECT_WEIGHTS_ERROR([&](T& t, M&) { t[b1 + "norm2.bias"] = filled({1, 16}); }, "needs [16]");
    EXPECT_WEIGHTS_ERROR([&](T& t, M&) { t[b0 + channel + "value_reduce.weight"] = filled({16, 15}); },
                         "needs [16, 16]");
    EXPECT_WEIGHTS_ERROR([](T& t, M&) { t["norm.weight"].data[3] = NAN; },
                         "tensor 'norm.weight' contains NaN or infinite values");
    EXPECT_WEIGHTS_ERROR([&](T& t, M&) { t[b1 + "synth_att.proj.weight"].data[0] = -INFINITY; }, "NaN or infinite");
    EXPECT_WEIGHTS_ERROR([](T& t, M&) { t["extra.weight"] = filled({2, 2}); }, "unexpected tensors: extra.weight");
    EXPECT_WEIGHTS_ERROR([](T& t, M&) { t["encoder.layers.3.norm1.weight"] = filled({16}); }, "unexpected tensors");
    EXPECT_WEIGHTS_ERROR([](T& t, M&) { t["module.fc.bias"] = t["fc.bias"]; }, "unexpected tensors: module.fc.bias");

    // Accepted variations: the unused value_reduce may be dropped; metadata is optional.
    msf::TensorMap tensors = base_tensors;
    for (const std::string& b : {b0, b1}) {
        tensors.erase(b + channel + "value_reduce.weight");
        tensors.erase(b + channel + "value_reduce.bias");
    }
    const std::vector<uint8_t> bytes = test::to_safetensors(tensors, {});
    msf_model* model = msf_load_buffer(bytes.data(), bytes.size());
    CHECK(model && msf_last_status() == MSF_OK && !msf_metadata(model, "pose"));
    msf_free(model);
}

void test_queries() {
    msf_model* model = msf_load_buffer(model_bytes.data(), model_bytes.size());
    CHECK(model);
    if (!model) return;
    CHECK(msf_keyframe_interval(model) == 3 && msf_n_keyframes(model) == 5 && msf_window_frames(model) == 13 &&
          msf_pose_size(model) == 6);
    CHECK(msf_keyframe_interval(nullptr) == 0 && msf_n_keyframes(nullptr) == 0 && msf_window_frames(nullptr) == 0 &&
          msf_pose_size(nullptr) == 0);
    const char* pose = msf_metadata(model, "pose");
    CHECK(pose && std::string(pose) == base_metadata.at("pose"));
    CHECK(msf_metadata(model, "format") && std::string(msf_metadata(model, "format")) == "msf");
    CHECK(!msf_metadata(model, "no such key") && !msf_metadata(model, nullptr) && !msf_metadata(nullptr, "pose"));
    msf_free(model);
}

void test_refine() {
    msf_model* model = msf_load_buffer(model_bytes.data(), model_bytes.size());
    CHECK(model);
    if (!model) return;
    const std::map<std::string, test::Array> vectors = test::read_vectors(data_dir + "/vectors.txt");
    const std::vector<float> in = vectors.at("model.keyframes").f32();
    const std::vector<double>& want = vectors.at("model.out").values;
    const size_t batch = 3;
    std::vector<float> out(want.size(), NAN);
    CHECK(in.size() == batch * 5 * 6 && out.size() == batch * 13 * 6);

    CHECK(msf_refine(nullptr, in.data(), in.size(), out.data(), out.size(), batch) == MSF_ERR_ARGUMENT);
    EXPECT_STATUS(MSF_ERR_ARGUMENT, "model is NULL");
    CHECK(msf_refine(model, in.data(), in.size(), out.data(), out.size(), batch) == MSF_OK);
    CHECK(msf_last_status() == MSF_OK && std::string(msf_last_error()).empty());
    test::close("msf_refine", out.data(), want, 0.0, test::kModelAtolOfMax);
    CHECK(msf_refine(model, nullptr, 0, nullptr, 0, 0) == MSF_OK);
    for (int threads : {0, 2, 3, 8, INT_MAX}) {  // split over threads (at most one per core): the same bits
        std::vector<float> split(out.size(), NAN);
        CHECK(msf_refine_threads(model, in.data(), in.size(), split.data(), split.size(), batch, threads) == MSF_OK);
        CHECK(split == out);
    }

    // Every rejected call leaves out untouched.
    const std::vector<float> expected = out;
    const size_t huge = SIZE_MAX / 2;
    struct Case {
        const float* in;
        size_t in_len;
        float* out;
        size_t out_len, batch;
        int status;
        const char* needle;
    } cases[] = {
        {nullptr, in.size(), out.data(), out.size(), batch, MSF_ERR_ARGUMENT, "keyframes or out is NULL"},
        {in.data(), in.size(), nullptr, out.size(), batch, MSF_ERR_ARGUMENT, "keyframes or out is NULL"},
        {in.data(), in.size() - 1, out.data(), out.size(), batch, MSF_ERR_ARGUMENT, "needs 3 * 5 * 6 = 90"},
        {in.data(), in.size(), out.data(), out.size() + 1, batch, MSF_ERR_ARGUMENT, "and 3 * 13 * 6 = 234"},
        {in.data(), in.size(), out.data(), out.size(), batch - 1, MSF_ERR_ARGUMENT, "batch 2 needs"},
        {in.data(), in.size(), out.data(), out.size(), 0, MSF_ERR_ARGUMENT, "batch 0 needs"},
        {in.data(), huge * 30, out.data(), huge * 78, huge, MSF_ERR_ARGUMENT, "too large"},
    };
    for (const Case& c : cases) {
        CHECK(msf_refine(model, c.in, c.in_len, c.out, c.out_len, c.batch) == c.status);
        EXPECT_STATUS(c.status, c.needle);
        CHECK(out == expected);
    }
    std::vector<float> bad = in;
    bad[35] = NAN;
    CHECK(msf_refine(model, bad.data(), bad.size(), out.data(), out.size(), batch) == MSF_ERR_INPUT);
    EXPECT_STATUS(MSF_ERR_INPUT, "keyframes contain NaN or infinite values (window 1)");
    bad[35] = INFINITY;
    CHECK(msf_refine(model, bad.data(), bad.size(), out.data(), out.size(), batch) == MSF_ERR_INPUT);
    CHECK(out == expected);

    // In-place or overlapping buffers are refused; adjacent ones are fine.
    std::vector<float> shared(in.size() + out.size());
    std::copy(in.begin(), in.end(), shared.begin());
    CHECK(msf_refine(model, shared.data(), in.size(), shared.data() + in.size() - 1, out.size(), batch) ==
          MSF_ERR_ARGUMENT);
    EXPECT_STATUS(MSF_ERR_ARGUMENT, "overlap");
    CHECK(msf_refine(model, shared.data() + 1, in.size(), shared.data(), out.size(), batch) == MSF_ERR_ARGUMENT);
    CHECK(msf_refine(model, shared.data(), in.size(), shared.data() + in.size(), out.size(), batch) == MSF_OK);
    CHECK(std::equal(expected.begin(), expected.end(), shared.begin() + static_cast<std::ptrdiff_t>(in.size())));
    // The C++ API's length-checked refine refuses them too: in place it gave wrong frames without a word.
    const msf::Model cpp_model = msf::Model::load_buffer(model_bytes.data(), model_bytes.size());
    bool refused = false;
    try {
        cpp_model.refine(shared.data(), in.size(), shared.data() + 1, out.size(), batch);
    } catch (const msf::InputError& e) {
        refused = std::string(e.what()).find("overlap") != std::string::npos;
    }
    CHECK(refused);

    // Many threads on one model: identical results, and each thread keeps its own error state.
    std::atomic<int> mismatches{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            std::vector<float> mine(out.size());
            for (int i = 0; i < 20; ++i) {
                if (msf_refine(model, in.data(), in.size(), mine.data(), mine.size(), batch) != MSF_OK ||
                    mine != expected)
                    ++mismatches;
                if (t == 0 && msf_refine(model, nullptr, 1, mine.data(), mine.size(), batch) != MSF_ERR_ARGUMENT)
                    ++mismatches;
            }
        });
    for (std::thread& th : threads) th.join();
    CHECK(mismatches == 0);
    CHECK(msf_refine(nullptr, nullptr, 0, nullptr, 0, 0) == MSF_ERR_ARGUMENT);
    std::thread([] { CHECK(msf_last_status() == MSF_OK && std::string(msf_last_error()).empty()); }).join();
    std::thread([] { CHECK(!msf_load_file(nullptr)); }).join();
    EXPECT_STATUS(MSF_ERR_ARGUMENT, "model is NULL");
    msf_free(model);
}

msf_model* load_edited(const std::function<void(msf::TensorMap&)>& edit) {
    msf::TensorMap tensors = base_tensors;
    edit(tensors);
    const std::vector<uint8_t> bytes = test::to_safetensors(tensors, base_metadata);
    msf_model* model = msf_load_buffer(bytes.data(), bytes.size());
    CHECK(model);
    return model;
}

// Finite weights and keyframes whose forward overflows float32 are refused with MSF_ERR_NUMERIC, on the
// calling thread and on workers, naming the window.
void test_overflow() {
    msf_model* model = load_edited([](msf::TensorMap& t) {
        for (auto& kv : t)
            for (float& v : kv.second.data) v *= 1e20f;
    });
    if (!model) return;
    std::vector<float> in(3 * 5 * 6, 0.5f), out(3 * 13 * 6);
    for (int threads : {1, 3}) {
        CHECK(msf_refine_threads(model, in.data(), in.size(), out.data(), out.size(), 3, threads) == MSF_ERR_NUMERIC);
        EXPECT_STATUS(MSF_ERR_NUMERIC, "output is NaN or infinite for window 0: the forward overflowed float32");
    }
    msf_free(model);
    model = msf_load_buffer(model_bytes.data(), model_bytes.size());  // modest weights, huge keyframes
    CHECK(model);
    std::fill(in.begin(), in.end(), 0.5f);
    std::fill(in.begin() + 60, in.end(), 1e38f);  // window 2
    CHECK(msf_refine(model, in.data(), in.size(), out.data(), out.size(), 3) == MSF_ERR_NUMERIC);
    EXPECT_STATUS(MSF_ERR_NUMERIC, "window 2: the forward overflowed float32 (largest |keyframe| there 1e+38");
    msf_free(model);
}

// Subnormals: weights are flushed to zero at load and activations inside the forward (FTZ/DAZ, on every
// thread), and the caller's floating-point mode is restored.
void test_subnormals() {
    const std::string fc = "fc.weight";
    msf_model* tiny = load_edited([&](msf::TensorMap& t) {
        for (float& v : t[fc].data) v = v > 0 ? 1e-40f : -1e-40f;
    });
    msf_model* zero = load_edited([&](msf::TensorMap& t) { std::fill(t[fc].data.begin(), t[fc].data.end(), 0.0f); });
    const std::vector<float> in = test::read_vectors(data_dir + "/vectors.txt").at("model.keyframes").f32();
    std::vector<float> a(3 * 13 * 6), b(a.size());
    CHECK(msf_refine(tiny, in.data(), in.size(), a.data(), a.size(), 3) == MSF_OK);
    CHECK(msf_refine(zero, in.data(), in.size(), b.data(), b.size(), 3) == MSF_OK);
    CHECK(a == b);
    msf_free(tiny);
    msf_free(zero);

    // With the head and the interpolation bias zeroed, out = l_interp.weight @ keyframes: subnormal
    // keyframes read as zero (DAZ) give exactly zero, not subnormal frames, whichever thread runs them.
    msf_model* model = load_edited([](msf::TensorMap& t) {
        for (const char* name : {"fc.weight", "fc.bias", "l_interp.bias"})
            std::fill(t[name].data.begin(), t[name].data.end(), 0.0f);
    });
    if (!model) return;
    std::vector<float> small(in.size());
    for (size_t i = 0; i < in.size(); ++i) small[i] = in[i] * 1e-39f;
#if defined(TEST_MXCSR)
    const unsigned initial = _mm_getcsr();
    for (unsigned mode : {initial & ~0x8040u, initial | 0x8040u}) {  // the caller's FTZ/DAZ off, then on
        _mm_setcsr(mode);
#endif
        for (int threads : {1, 3}) {
            std::fill(a.begin(), a.end(), 1.0f);
            CHECK(msf_refine_threads(model, small.data(), small.size(), a.data(), a.size(), 3, threads) == MSF_OK);
            CHECK(std::all_of(a.begin(), a.end(), [](float v) { return v == 0.0f; }));
#if defined(TEST_MXCSR)
            CHECK(_mm_getcsr() == mode);  // restored after the call, success or failure
            CHECK(msf_refine_threads(model, nullptr, 1, a.data(), a.size(), 3, threads) == MSF_ERR_ARGUMENT);
            CHECK(_mm_getcsr() == mode);
#endif
        }
#if defined(TEST_MXCSR)
    }
    _mm_setcsr(initial);
    volatile float x = 1e-39f;  // and this thread's own arithmetic keeps its subnormals
    CHECK(x * 2.0f != 0.0f);
#endif
    msf_free(model);
}

// Fails the first, second, ... allocation of a load until one succeeds: each must return NULL with
// MSF_ERR_MEMORY, never crash, abort or leak (the sanitizer build checks the last two).
void test_out_of_memory() {
    const std::string path = data_dir + "/model.safetensors";
    for (int from_file = 0; from_file < 2; ++from_file) {
        long n = 0;
        for (;; ++n) {
            t_allocation_budget = n;
            msf_model* model =
                from_file ? msf_load_file(path.c_str()) : msf_load_buffer(model_bytes.data(), model_bytes.size());
            t_allocation_budget = -1;
            if (model) {
                msf_free(model);
                break;
            }
            if (msf_last_status() != MSF_ERR_MEMORY) {
                std::fprintf(stderr, "allocation %ld of a load failed: status %d (%s), expected MSF_ERR_MEMORY\n", n,
                             msf_last_status(), msf_last_error());
                ++test::failures;
                break;
            }
        }
        std::printf("load %s: failed each of its %ld allocations in turn\n", from_file ? "file" : "buffer", n);
        CHECK(n > 100);
    }

    msf_model* model = msf_load_buffer(model_bytes.data(), model_bytes.size());
    CHECK(model);
    std::vector<float> in(3 * 5 * 6, 0.5f), out(3 * 13 * 6, 7.0f);
    t_allocation_budget = 0;  // the first refine allocates the workspace
    CHECK(msf_refine(model, in.data(), in.size(), out.data(), out.size(), 3) == MSF_ERR_MEMORY);
    t_allocation_budget = -1;
    EXPECT_STATUS(MSF_ERR_MEMORY, "out of memory");
    CHECK(out == std::vector<float>(out.size(), 7.0f));
    CHECK(msf_refine(model, in.data(), in.size(), out.data(), out.size(), 3) == MSF_OK);
    msf_free(model);
}

// The metadata JSON as msf.model and msf.pose read it: spaces around values, the type of every pose
// field, a root-relative file's root joints, and a prediction setting that fits (this model has K = 3).
void test_metadata_json() {
    auto load = [](const std::string& key, const std::string& value) {
        msf::Metadata metadata = base_metadata;
        metadata[key] = value;
        const std::vector<uint8_t> bytes = test::to_safetensors(base_tensors, metadata);
        return msf_load_buffer(bytes.data(), bytes.size());
    };
    // spaces only: test::to_safetensors does not escape the metadata (tests/test_weights.py has tabs and newlines)
    const std::string config = " {  \"C\": 16 , \"K\": 3  , \"L\": 2, \"P\": 6, \"Q\": 4 } ";
    const std::string pose = "{\"joints\": [ \"a\" , \"b\", \"c\" ] , \"dims\": 2 }";
    for (const auto& [key, value] : {std::pair{std::string("config"), config}, std::pair{std::string("pose"), pose}}) {
        msf_model* model = load(key, value);
        CHECK(model && msf_last_status() == MSF_OK);
        msf_free(model);
    }
    const std::string joints = "\"joints\": [\"a\", \"b\", \"c\"], \"dims\": 2";
    for (const char* field : {"\"joints\": [1, 2, 3], \"dims\": 2", "\"units\": 5", "\"skeleton\": [\"x\"]",
                              "\"root_relative\": \"yes\"", "\"parents\": [0.5]", "\"image_normalised\": 1",
                              "\"root_joints\": [true]", "\"root_joints\": [0.5]", "\"root_joints\": 0"})
        EXPECT_LOAD_FAILS(load("pose", std::string("{") + field + "}"), MSF_ERR_WEIGHTS, "metadata pose '");
    for (const char* roots : {"[]", "[3]", "[-1]", "[\"d\"]", "[0, \"a\"]", "[0, -0]"})
        EXPECT_LOAD_FAILS(load("pose", "{" + joints + ", \"root_relative\": true, \"root_joints\": " + roots + "}"),
                          MSF_ERR_WEIGHTS, "metadata pose root_joints");
    for (const char* roots : {"[2, \"a\"]", "[\"c\"]"}) {
        msf_model* model = load("pose", "{" + joints + ", \"root_relative\": true, \"root_joints\": " + roots + "}");
        CHECK(model && msf_last_status() == MSF_OK);
        msf_free(model);
    }
    EXPECT_LOAD_FAILS(load("prediction", "{\"history_frames\": 11, \"future_frames\": 2, \"fps\": 25}"),
                      MSF_ERR_WEIGHTS, "for a model of K = 1 (here 3)");
    EXPECT_LOAD_FAILS(load("prediction", std::string(100000, '[')), MSF_ERR_WEIGHTS, "nesting deeper than 64");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DATA_DIR\n", argv[0]);
        return 2;
    }
    data_dir = argv[1];
    const std::string unique = "msf_test_c_api_" + std::to_string(std::random_device{}());
    tmp_dir = (std::filesystem::temp_directory_path() / unique).string();
    std::filesystem::create_directories(tmp_dir);
    try {
        model_bytes = test::read_file(data_dir + "/model.safetensors");
        std::tie(base_tensors, base_metadata) = test::read_model(data_dir + "/model.safetensors");
        test_version();
        test_load_files();
        test_model_errors();
        test_metadata_json();
        test_queries();
        test_refine();
        test_overflow();
        test_subnormals();
        test_out_of_memory();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "unexpected exception: %s\n", e.what());
        ++test::failures;
    }
    std::filesystem::remove_all(tmp_dir);
    return test::finish("test_c_api");
}
