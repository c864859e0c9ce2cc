// The whole PoseRefinementModel forward (docs/model.md §1, steps 1-4) and its loading from tensors.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "isa.hpp"
#include "kernels.hpp"
#include "msf/msf.hpp"
#include "safetensors.hpp"

#if defined(__SSE__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 1)
#include <xmmintrin.h>
#define MSF_FLUSH_MXCSR 1
#elif defined(__aarch64__) && defined(__GNUC__)
#define MSF_FLUSH_FPCR 1
#endif

namespace msf {
namespace {

// Arithmetic on subnormal floats takes a slow path on x86 (a forward whose activations are subnormal runs
// ~30-100x slower). For the duration of a forward the thread flushes them to zero (x86: FTZ for results,
// DAZ for operands; AArch64: FPCR.FZ, both) and then restores the caller's mode, so the application's own
// arithmetic is unaffected. Each thread has its own FP control register: every worker makes its own guard.
class FlushSubnormals {
public:
    FlushSubnormals() {
#if defined(MSF_FLUSH_MXCSR)
        saved_ = _mm_getcsr();
        _mm_setcsr(saved_ | 0x8040u);  // FTZ (bit 15) | DAZ (bit 6)
#elif defined(MSF_FLUSH_FPCR)
        uint64_t fpcr;
        __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
        saved_ = fpcr;
        __asm__ __volatile__("msr fpcr, %0" : : "r"(fpcr | (uint64_t{1} << 24)));  // FZ
#endif
    }
    ~FlushSubnormals() {
#if defined(MSF_FLUSH_MXCSR)
        _mm_setcsr(static_cast<unsigned>(saved_));
#elif defined(MSF_FLUSH_FPCR)
        __asm__ __volatile__("msr fpcr, %0" : : "r"(saved_));
#endif
    }
    FlushSubnormals(const FlushSubnormals&) = delete;
    FlushSubnormals& operator=(const FlushSubnormals&) = delete;

private:
    [[maybe_unused]] uint64_t saved_ = 0;
};

// Whether all n floats are finite: exponent bits not all ones, tested on the bits so that it vectorises.
bool all_finite(const float* x, size_t n) {
    uint32_t bad = 0;
    for (size_t i = 0; i < n; ++i) {
        uint32_t bits;
        std::memcpy(&bits, x + i, sizeof bits);
        bad |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
    }
    return bad == 0;
}

std::string magnitude(float v) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3g", static_cast<double>(v));
    return text;
}

std::string shape_str(const std::vector<int64_t>& shape) {
    std::ostringstream s;
    s << '[';
    for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
    s << ']';
    return s.str();
}

// Tensors by name, each used at most once, checked against the expected shape.
class TensorSource {
public:
    explicit TensorSource(const TensorMap& tensors) : tensors_(tensors) {}

    bool has_prefix(const std::string& prefix) const {
        auto it = tensors_.lower_bound(prefix);
        return it != tensors_.end() && it->first.compare(0, prefix.size(), prefix) == 0;
    }
    const Tensor& find(const std::string& name) const {
        auto it = tensors_.find(name);
        if (it == tensors_.end()) throw WeightsError("missing tensor '" + name + "': not a MixSynthFormer state dict");
        return it->second;
    }
    int dim(const std::string& name, int axis) const {
        const Tensor& t = find(name);
        if (t.shape.size() != 2) throw WeightsError("tensor '" + name + "' has shape " + shape_str(t.shape) + ", expected a 2-D weight");
        if (t.shape[axis] > (1 << 24)) throw WeightsError("tensor '" + name + "' is implausibly large: " + shape_str(t.shape));
        return static_cast<int>(t.shape[axis]);
    }
    std::vector<float> take(const std::string& name, std::vector<int64_t> shape) {
        const Tensor& t = find(name);
        if (t.shape != shape)
            throw WeightsError("tensor '" + name + "' has shape " + shape_str(t.shape) + ", the inferred config needs " + shape_str(shape));
        size_t count = 1;
        for (int64_t s : shape) count *= static_cast<size_t>(s);
        if (t.data.size() != count) throw WeightsError("tensor '" + name + "' holds " + std::to_string(t.data.size()) + " values for shape " + shape_str(shape));
        std::vector<float> data = t.data;
        for (float& v : data) {
            if (!std::isfinite(v)) throw WeightsError("tensor '" + name + "' contains NaN or infinite values");
            if (std::fpclassify(v) == FP_SUBNORMAL) v = 0.0f;  // as the forward would flush it; NumPy loads alike
            max_abs_ = std::max(max_abs_, std::fabs(v));
        }
        used_.insert(name);
        taken_floats_ += count;
        return data;
    }
    // The (N, K) weight of an nn.Linear, transposed to (K, N) for kernels::linear_forward.
    std::vector<float> take_transposed(const std::string& name, int N, int K) {
        std::vector<float> w = take(name, {N, K}), t(w.size());
        for (int n = 0; n < N; ++n)
            for (int k = 0; k < K; ++k) t[static_cast<size_t>(k) * N + n] = w[static_cast<size_t>(n) * K + k];
        return t;
    }
    void allow_unused(const std::string& name, std::vector<int64_t> shape) {  // checked, not counted
        if (!tensors_.count(name)) return;
        const size_t taken = taken_floats_;
        const float max_abs = max_abs_;
        take(name, std::move(shape));
        taken_floats_ = taken;
        max_abs_ = max_abs;
    }
    // Floats of the tensors the forward reads, and their largest magnitude.
    size_t taken_floats() const { return taken_floats_; }
    float max_abs() const { return max_abs_; }
    void check_all_used() const {
        std::string extra;
        for (const auto& kv : tensors_)
            if (!used_.count(kv.first)) extra += (extra.empty() ? "" : ", ") + kv.first;
        if (!extra.empty()) throw WeightsError("unexpected tensors: " + extra);
    }

private:
    const TensorMap& tensors_;
    std::set<std::string> used_;
    size_t taken_floats_ = 0;
    float max_abs_ = 0.0f;
};

constexpr size_t kWorkspacePerWeight = 16, kWorkspaceAllowance = size_t{1} << 22;

struct SynthStore {
    std::vector<float> dense_t, dense_b, se1, se2, value_w, value_b;
};

struct LayerStore {
    SynthStore token, channel;
    std::vector<float> fc1_t, fc1_b, fc2_t, fc2_b, proj_t, proj_b;
    std::vector<float> ff1_t, ff1_b, ff2_t, ff2_b, norm1_w, norm1_b, norm2_w, norm2_b;
    kernels::MixSynthAttentionWeights mix{};
};

}  // namespace

struct Model::Impl {
    Config config;
    Metadata metadata;
    std::vector<float> interp_w, interp_b, emb_t, emb_b, norm_w, norm_b, fc_t, fc_b;
    std::vector<LayerStore> layers;
    size_t workspace_floats = 0;
    float max_abs_weight = 0.0f;
    std::mutex pool_mutex;
    std::vector<std::unique_ptr<std::vector<float>>> pool;  // idle workspaces, one per concurrent caller

    void forward_window(const float* kf, float* out, float* ws) const;
    std::unique_ptr<std::vector<float>> acquire_workspace();
    void release_workspace(std::unique_ptr<std::vector<float>> ws);
};

namespace {

Config infer_config(const TensorSource& src) {
    Config c;
    const int T = src.dim("l_interp.weight", 0), Q1 = src.dim("l_interp.weight", 1);
    c.Q = Q1 - 1;
    if (c.Q < 1 || T < 2 || (T - 1) % c.Q)
        throw WeightsError("l_interp.weight has shape [" + std::to_string(T) + ", " + std::to_string(Q1) +
                           "]: T - 1 must be a positive multiple of Q (T = K*Q + 1 with Q >= 1)");
    c.K = (T - 1) / c.Q;
    c.C = src.dim("encoder_emb.weight", 0);
    c.P = src.dim("encoder_emb.weight", 1);
    const std::string b0 = "encoder.layers.0.";
    c.ffn_hidden = src.dim(b0 + "ff.fc1.weight", 0);
    c.d_t = src.dim(b0 + "synth_att.synth_token.dense.weight", 0);
    c.d_c = src.dim(b0 + "synth_att.synth_channel.dense.weight", 0);
    c.se_t = src.dim(b0 + "synth_att.synth_token.se.fc.0.weight", 0);
    c.se_c = src.dim(b0 + "synth_att.synth_channel.se.fc.0.weight", 0);
    c.reweight_hidden = src.dim(b0 + "synth_att.reweight.fc1.weight", 0);
    // blocks are numbered 0..L-1; keys of any later block are reported as unexpected
    while (src.has_prefix("encoder.layers." + std::to_string(c.L) + ".")) ++c.L;
    for (int v : {c.P, c.C, c.ffn_hidden, c.d_t, c.d_c, c.se_t, c.se_c, c.reweight_hidden})
        if (v < 1) throw WeightsError("every size of the model must be >= 1 (a tensor has a zero dimension)");
    if (c.d_t > T || c.d_c > c.C) throw WeightsError("reduced attention sizes d_t, d_c exceed T, C");
    return c;
}

SynthStore take_synth(TensorSource& src, const std::string& p, int N, int D, int d, int H) {
    SynthStore s;
    s.dense_t = src.take_transposed(p + "dense.weight", d, D);
    s.dense_b = src.take(p + "dense.bias", {d});
    s.se1 = src.take(p + "se.fc.0.weight", {H, N});
    s.se2 = src.take(p + "se.fc.2.weight", {N, H});
    if (d < N) {
        s.value_w = src.take(p + "value_reduce.weight", {d, N});
        s.value_b = src.take(p + "value_reduce.bias", {d});
    } else {  // the official model keeps value_reduce when r = 1 but never uses it
        src.allow_unused(p + "value_reduce.weight", {d, N});
        src.allow_unused(p + "value_reduce.bias", {d});
    }
    return s;
}

kernels::SynthAttentionWeights view(const SynthStore& s, int N, int D, int d, int H) {
    return {N, D, d, H, s.dense_t.data(), s.dense_b.data(), s.se1.data(), s.se2.data(),
            s.value_w.empty() ? nullptr : s.value_w.data(), s.value_b.empty() ? nullptr : s.value_b.data()};
}

// The file's stated config must agree with the shapes, and its pose convention must describe P values.
void check_metadata(const Metadata& metadata, const Config& c) {
    auto config = metadata.find("config");
    if (config != metadata.end()) {
        const std::map<std::string, std::string> stated = json_object_members(config->second);
        const std::pair<const char*, int> inferred[] = {
            {"K", c.K}, {"Q", c.Q}, {"P", c.P}, {"C", c.C}, {"L", c.L}, {"ffn_hidden", c.ffn_hidden}, {"d_t", c.d_t},
            {"d_c", c.d_c}, {"se_t", c.se_t}, {"se_c", c.se_c}, {"reweight_hidden", c.reweight_hidden}};
        for (const auto& [key, value] : inferred) {
            auto it = stated.find(key);
            long long v = 0;
            if (it != stated.end() && (!json_integer(it->second, v) || v != value))
                throw WeightsError(std::string("metadata config disagrees with the tensor shapes: ") + key + " stated " +
                                   it->second.substr(0, 40) + ", shapes give " + std::to_string(value));
        }
    }
    auto pose = metadata.find("pose");
    if (pose == metadata.end()) return;
    const std::map<std::string, std::string> p = json_object_members(pose->second);
    auto joints = p.find("joints"), dims = p.find("dims");
    if (joints == p.end() && dims == p.end()) return;
    long long d = 0;
    const long long j = joints == p.end() ? -1 : json_array_length(joints->second);
    // d <= P first: j * d must not overflow (j is at most the text's length)
    if (j < 0 || dims == p.end() || !json_integer(dims->second, d) || d < 1 || d > c.P || j * d != c.P)
        throw WeightsError("metadata pose must give a list of J joint names and D dims with J*D = P = " +
                           std::to_string(c.P));
}

}  // namespace

Model::Model(const TensorMap& tensors, Metadata metadata) : impl_(std::make_unique<Impl>()) {
    isa::active();  // a bad MSF_ISA is an error at load, not at the first refine
    auto fmt = metadata.find("format");
    if (fmt != metadata.end() && fmt->second != "msf")
        throw WeightsError("metadata format is '" + fmt->second + "', expected 'msf'");
    auto ver = metadata.find("format_version");
    if (ver != metadata.end() && ver->second != "1")
        throw WeightsError("format_version '" + ver->second + "' is not supported (this msf reads version 1)");
    TensorSource src(tensors);
    const Config c = infer_config(src);
    check_metadata(metadata, c);
    const int T = c.T(), C = c.C, P = c.P, F = c.ffn_hidden, H = c.reweight_hidden;
    Impl& m = *impl_;
    m.config = c;
    m.metadata = std::move(metadata);
    m.interp_w = src.take("l_interp.weight", {T, c.n_keyframes()});
    m.interp_b = src.take("l_interp.bias", {T});
    m.emb_t = src.take_transposed("encoder_emb.weight", C, P);
    m.emb_b = src.take("encoder_emb.bias", {C});
    m.norm_w = src.take("norm.weight", {C});
    m.norm_b = src.take("norm.bias", {C});
    m.fc_t = src.take_transposed("fc.weight", P, C);
    m.fc_b = src.take("fc.bias", {P});
    m.layers.resize(static_cast<size_t>(c.L));
    for (int i = 0; i < c.L; ++i) {
        const std::string b = "encoder.layers." + std::to_string(i) + ".";
        LayerStore& l = m.layers[static_cast<size_t>(i)];
        l.token = take_synth(src, b + "synth_att.synth_token.", T, C, c.d_t, c.se_t);
        l.channel = take_synth(src, b + "synth_att.synth_channel.", C, T, c.d_c, c.se_c);
        l.fc1_t = src.take_transposed(b + "synth_att.reweight.fc1.weight", H, T);
        l.fc1_b = src.take(b + "synth_att.reweight.fc1.bias", {H});
        l.fc2_t = src.take_transposed(b + "synth_att.reweight.fc2.weight", 2 * T, H);
        l.fc2_b = src.take(b + "synth_att.reweight.fc2.bias", {2 * T});
        l.proj_t = src.take_transposed(b + "synth_att.proj.weight", C, C);
        l.proj_b = src.take(b + "synth_att.proj.bias", {C});
        l.ff1_t = src.take_transposed(b + "ff.fc1.weight", F, C);
        l.ff1_b = src.take(b + "ff.fc1.bias", {F});
        l.ff2_t = src.take_transposed(b + "ff.fc2.weight", C, F);
        l.ff2_b = src.take(b + "ff.fc2.bias", {C});
        l.norm1_w = src.take(b + "norm1.weight", {C});
        l.norm1_b = src.take(b + "norm1.bias", {C});
        l.norm2_w = src.take(b + "norm2.weight", {C});
        l.norm2_b = src.take(b + "norm2.bias", {C});
        l.mix = {T, C, H, view(l.token, T, C, c.d_t, c.se_t), view(l.channel, C, T, c.d_c, c.se_c),
                 l.fc1_t.data(), l.fc1_b.data(), l.fc2_t.data(), l.fc2_b.data(), l.proj_t.data(), l.proj_b.data()};
    }
    src.check_all_used();
    const size_t TC = static_cast<size_t>(T) * C;
    // X (T, P), Z (T, C), tmp (T, C), hidden (T, F), then the mixing scratch
    m.workspace_floats = static_cast<size_t>(T) * P + 2 * TC + static_cast<size_t>(T) * F +
                         kernels::mix_synth_attention_scratch(m.layers[0].mix);
    m.max_abs_weight = src.max_abs();
    // Sizes come from an untrusted file: a few MB of weights must not make refine() allocate gigabytes.
    // Real models need less workspace than their weights; allow 16 floats per weight plus 2^22. The NumPy
    // backend applies the same rule with the same numbers (msf.config.Config.workspace_floats).
    const size_t weight_floats = src.taken_floats();
    if (m.workspace_floats > kWorkspacePerWeight * weight_floats + kWorkspaceAllowance)
        throw WeightsError("implausible model sizes: a window would need " + std::to_string(m.workspace_floats) +
                           " floats of workspace for " + std::to_string(weight_floats) + " weights (at most " +
                           std::to_string(kWorkspacePerWeight) + " per weight + " +
                           std::to_string(kWorkspaceAllowance) + ")");
}

void Model::Impl::forward_window(const float* kf, float* out, float* ws) const {
    // kf (Q+1, P) -> out (T, P)
    const Config& c = config;
    const int T = c.T(), C = c.C, P = c.P, F = c.ffn_hidden;
    const size_t TC = static_cast<size_t>(T) * C;
    float* x = ws;                                     // (T, P)
    float* z = x + static_cast<size_t>(T) * P;         // (T, C)
    float* tmp = z + TC;                               // (T, C)
    float* hidden = tmp + TC;                          // (T, F)
    float* scratch = hidden + static_cast<size_t>(T) * F;
    kernels::linear_left_forward(x, interp_w.data(), interp_b.data(), kf, T, c.n_keyframes(), P);
    kernels::linear_forward(z, x, emb_t.data(), emb_b.data(), T, P, C);
    for (const LayerStore& l : layers) {
        kernels::mix_synth_attention_forward(tmp, z, l.mix, scratch);
        for (size_t i = 0; i < TC; ++i) tmp[i] += z[i];
        kernels::layer_norm_forward(z, tmp, l.norm1_w.data(), l.norm1_b.data(), T, C);
        kernels::linear_forward(hidden, z, l.ff1_t.data(), l.ff1_b.data(), T, C, F);
        kernels::gelu_forward(hidden, static_cast<size_t>(T) * F);
        kernels::linear_forward(tmp, hidden, l.ff2_t.data(), l.ff2_b.data(), T, F, C);
        for (size_t i = 0; i < TC; ++i) tmp[i] += z[i];
        kernels::layer_norm_forward(z, tmp, l.norm2_w.data(), l.norm2_b.data(), T, C);
    }
    kernels::layer_norm_forward(tmp, z, norm_w.data(), norm_b.data(), T, C);
    kernels::linear_forward(out, tmp, fc_t.data(), fc_b.data(), T, C, P);
    for (size_t i = 0; i < static_cast<size_t>(T) * P; ++i) out[i] += x[i];
}

std::unique_ptr<std::vector<float>> Model::Impl::acquire_workspace() {
    {
        std::lock_guard<std::mutex> lock(pool_mutex);
        if (!pool.empty()) {
            std::unique_ptr<std::vector<float>> ws = std::move(pool.back());
            pool.pop_back();
            return ws;
        }
    }
    return std::make_unique<std::vector<float>>(workspace_floats);
}

void Model::Impl::release_workspace(std::unique_ptr<std::vector<float>> ws) {
    std::lock_guard<std::mutex> lock(pool_mutex);
    pool.push_back(std::move(ws));
}

void Model::refine(const float* keyframes, float* out, std::size_t batch, int threads) const {
    if (batch == 0) return;
    if (!keyframes || !out) throw InputError("refine: null keyframes or output buffer");
    Impl& m = *impl_;
    const Config& c = m.config;
    const size_t in_size = static_cast<size_t>(c.n_keyframes()) * c.P;
    const size_t out_size = static_cast<size_t>(c.T()) * c.P;
    for (size_t i = 0; i < batch * in_size; ++i)
        if (!std::isfinite(keyframes[i]))
            throw InputError("keyframes contain NaN or infinite values (window " + std::to_string(i / in_size) + ")");
    if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const size_t workers = std::min(static_cast<size_t>(threads), batch);
    // every worker's workspace is taken before any thread starts, so a failed allocation leaves nothing running
    std::vector<std::unique_ptr<std::vector<float>>> spaces;
    for (size_t w = 0; w < workers; ++w) spaces.push_back(m.acquire_workspace());
    // per worker, its first window whose output is not finite (its later windows are skipped)
    std::vector<size_t> overflowed(workers, batch);
    auto run = [&](size_t w) {  // windows [w*batch/workers, (w+1)*batch/workers): contiguous, balanced
        const FlushSubnormals flush;
        for (size_t b = w * batch / workers; b < (w + 1) * batch / workers; ++b) {
            m.forward_window(keyframes + b * in_size, out + b * out_size, spaces[w]->data());
            if (!all_finite(out + b * out_size, out_size)) {
                overflowed[w] = b;
                break;
            }
        }
    };
    std::vector<std::thread> pool;
    try {
        for (size_t w = 1; w < workers; ++w) pool.emplace_back(run, w);
    } catch (...) {
        for (std::thread& t : pool) t.join();
        for (auto& ws : spaces) m.release_workspace(std::move(ws));
        throw;
    }
    run(0);
    for (std::thread& t : pool) t.join();
    for (auto& ws : spaces) m.release_workspace(std::move(ws));
    const size_t bad = *std::min_element(overflowed.begin(), overflowed.end());
    if (bad < batch) {
        float largest = 0.0f;
        for (size_t i = 0; i < in_size; ++i) largest = std::max(largest, std::fabs(keyframes[bad * in_size + i]));
        throw NumericError("the model's output is NaN or infinite for window " + std::to_string(bad) +
                           ": the forward overflowed float32 (largest |keyframe| there " + magnitude(largest) +
                           ", largest |weight| " + magnitude(m.max_abs_weight) +
                           "); give keyframes in the units and normalisation the model was trained with, and "
                           "weights of a trained model");
    }
}

namespace {
Model from_file_contents(StFile file) {
    TensorMap tensors;
    for (auto& kv : file.tensors) tensors[kv.first] = Tensor{std::move(kv.second.shape), std::move(kv.second.data)};
    return Model(tensors, std::move(file.metadata));
}
}  // namespace

Model Model::load_buffer(const void* data, std::size_t size) {
    if (!data && size) throw InputError("null buffer");
    return from_file_contents(parse_safetensors(static_cast<const uint8_t*>(data), size));
}

Model Model::load_file(const std::string& path) { return from_file_contents(read_safetensors_file(path)); }

Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;
const Config& Model::config() const noexcept { return impl_->config; }
const Metadata& Model::metadata() const noexcept { return impl_->metadata; }

}  // namespace msf
