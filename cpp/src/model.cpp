// The whole PoseRefinementModel forward (docs/model.md §1, steps 1-4) and its loading from tensors.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "isa.hpp"
#include "kernels.hpp"
#include "msf/msf.hpp"
#include "safetensors.hpp"
#include "schema.inc"

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

// 64-byte aligned storage for weights and workspaces (kernels::kAlignFloats floats).
constexpr size_t kAlign = 64;
static_assert(kAlign == kernels::kAlignFloats * sizeof(float), "one cache line");

template <class T>
struct CacheLineAllocator {
    using value_type = T;
    CacheLineAllocator() = default;
    template <class U>
    CacheLineAllocator(const CacheLineAllocator<U>&) noexcept {}
    T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{kAlign})); }
    void deallocate(T* p, size_t) noexcept { ::operator delete(p, std::align_val_t{kAlign}); }
    template <class U>
    bool operator==(const CacheLineAllocator<U>&) const noexcept { return true; }
    template <class U>
    bool operator!=(const CacheLineAllocator<U>&) const noexcept { return false; }
};
using Floats = std::vector<float, CacheLineAllocator<float>>;

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

// Tensors by name, each used at most once, checked against the expected shape; taking one copies its data into
// aligned storage and frees the source.
class TensorSource {
public:
    explicit TensorSource(TensorMap& tensors) : tensors_(tensors) {}

    bool has_prefix(const std::string& prefix) const {
        auto it = tensors_.lower_bound(prefix);
        return it != tensors_.end() && it->first.compare(0, prefix.size(), prefix) == 0;
    }
    Tensor& find(const std::string& name) {
        auto it = tensors_.find(name);
        if (it == tensors_.end()) throw WeightsError("missing tensor '" + name + "': not a MixSynthFormer state dict");
        return it->second;
    }
    int dim(const std::string& name, int axis) {
        const Tensor& t = find(name);
        if (t.shape.size() != 2) throw WeightsError("tensor '" + name + "' has shape " + shape_str(t.shape) + ", expected a 2-D weight");
        if (t.shape[axis] > (1 << 24)) throw WeightsError("tensor '" + name + "' is implausibly large: " + shape_str(t.shape));
        return static_cast<int>(t.shape[axis]);
    }
    Floats take(const std::string& name, std::vector<int64_t> shape) {
        Tensor& t = find(name);
        if (t.shape != shape)
            throw WeightsError("tensor '" + name + "' has shape " + shape_str(t.shape) + ", the inferred config needs " + shape_str(shape));
        size_t count = 1;
        for (int64_t s : shape) count *= static_cast<size_t>(s);
        if (t.data.size() != count) throw WeightsError("tensor '" + name + "' holds " + std::to_string(t.data.size()) + " values for shape " + shape_str(shape));
        Floats data(t.data.begin(), t.data.end());
        std::vector<float>().swap(t.data);  // the source's copy is freed as each tensor is taken
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
    Floats take_transposed(const std::string& name, int N, int K) {
        Floats w = take(name, {N, K}), t(w.size());
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
    TensorMap& tensors_;
    std::set<std::string> used_;
    size_t taken_floats_ = 0;
    float max_abs_ = 0.0f;
};

constexpr size_t kWorkspacePerWeight = 16, kWorkspaceAllowance = size_t{1} << 22;

// The state-dict schema, generated from src/msf/schema.py (its one source): dimension symbols, and the
// global and per-block tensors as enumerators (Global::fc_weight) indexing the specs and the stored data.
enum class Dim : int {
#define MSF_DIM(symbol) symbol,
    MSF_SCHEMA_DIMENSIONS(MSF_DIM) None
#undef MSF_DIM
};
constexpr size_t kDims = static_cast<size_t>(Dim::None);
using Sizes = std::array<int64_t, kDims>;  // the value of each symbol; -1 while not yet read
enum class Layout { AsIs, Transposed };
struct TensorSpec {
    const char* name;
    Dim rows, cols;  // cols None: 1-D
    Layout layout;
    Dim less, than;  // read only where less < than; None: always
};

#define MSF_ID(id, ...) id,
#define MSF_SPEC(id, name, rows, cols, layout, less, than) \
    {name, Dim::rows, Dim::cols, Layout::layout, Dim::less, Dim::than},
struct Global {
    enum Id : size_t { MSF_SCHEMA_GLOBAL_TENSORS(MSF_ID) kCount };
};
struct Block {
    enum Id : size_t { MSF_SCHEMA_BLOCK_TENSORS(MSF_ID) kCount };
};
constexpr TensorSpec kGlobalSpecs[] = {MSF_SCHEMA_GLOBAL_TENSORS(MSF_SPEC)};
constexpr TensorSpec kBlockSpecs[] = {MSF_SCHEMA_BLOCK_TENSORS(MSF_SPEC)};
#undef MSF_SPEC
#undef MSF_ID

template <size_t N>
using Stored = std::array<Floats, N>;  // per tensor id, as Layout says; empty when not read

struct LayerStore {
    Stored<Block::kCount> t;
    kernels::MixSynthAttentionWeights mix{};
};

}  // namespace

// Windows go through the layers kChunk at a time: a layer's weights then serve kChunk windows while they are in
// cache (aist-size models exceed a 2 MB L2 in all), and each window's arithmetic is what it is alone.
constexpr size_t kChunk = 8;

struct Model::Impl {
    Config config;
    Metadata metadata;
    Stored<Global::kCount> global;
    std::vector<LayerStore> layers;
    size_t workspace_floats = 0;        // one window's: the plausibility rule below reads this
    size_t chunk_workspace_floats = 0;  // kChunk windows', what a worker allocates
    float max_abs_weight = 0.0f;
    std::mutex pool_mutex;
    std::vector<std::unique_ptr<Floats>> pool;  // idle workspaces, one per concurrent caller

    void forward_chunk(const float* kf, float* out, size_t n, float* ws) const;
    std::unique_ptr<Floats> acquire_workspace();
    void release_workspace(std::unique_ptr<Floats> ws);
};

namespace {

bool is_derived(Dim d) {
#define MSF_DERIVED(symbol, base, factor) if (d == Dim::symbol) return true;
    MSF_SCHEMA_DERIVED(MSF_DERIVED)
#undef MSF_DERIVED
    return false;
}

// Reads each still-unknown size off the 2-D, always-read tensors of specs (the rule of schema.inc).
template <size_t N>
void read_sizes(TensorSource& src, const TensorSpec (&specs)[N], const std::string& prefix, Sizes& n) {
    for (const TensorSpec& spec : specs) {
        if (spec.cols == Dim::None || spec.less != Dim::None) continue;
        const Dim axes[2] = {spec.rows, spec.cols};
        for (int axis = 0; axis < 2; ++axis) {
            const size_t d = static_cast<size_t>(axes[axis]);
            if (!is_derived(axes[axis]) && n[d] < 0) n[d] = src.dim(prefix + spec.name, axis);
        }
    }
}

int64_t size_of(const Sizes& n, Dim d) { return n[static_cast<size_t>(d)]; }

std::string block_prefix(int i) { return "encoder.layers." + std::to_string(i) + "."; }

Config infer_config(TensorSource& src, Sizes& n) {
    n.fill(-1);
    read_sizes(src, kGlobalSpecs, "", n);
    const int64_t T = size_of(n, Dim::T), Q1 = size_of(n, Dim::Q1);
    Config c;
    c.Q = static_cast<int>(Q1 - 1);
    if (c.Q < 1 || T < 2 || (T - 1) % c.Q)
        throw WeightsError("l_interp.weight has shape [" + std::to_string(T) + ", " + std::to_string(Q1) +
                           "]: T - 1 must be a positive multiple of Q (T = K*Q + 1 with Q >= 1)");
    c.K = static_cast<int>((T - 1) / c.Q);
    // blocks are numbered 0..L-1; keys of any later block are reported as unexpected
    while (src.has_prefix(block_prefix(c.L))) ++c.L;
    if (c.L == 0) throw WeightsError("no encoder blocks (encoder.layers.0.*): not a MixSynthFormer state dict");
    read_sizes(src, kBlockSpecs, block_prefix(0), n);
#define MSF_DERIVED(symbol, base, factor) n[static_cast<size_t>(Dim::symbol)] = factor * size_of(n, Dim::base);
    MSF_SCHEMA_DERIVED(MSF_DERIVED)
#undef MSF_DERIVED
    auto size = [&](Dim d) { return static_cast<int>(size_of(n, d)); };  // each at most 2^24 (TensorSource::dim)
    c.P = size(Dim::P);
    c.C = size(Dim::C);
    c.ffn_hidden = size(Dim::F);
    c.d_t = size(Dim::d_t);
    c.d_c = size(Dim::d_c);
    c.se_t = size(Dim::se_t);
    c.se_c = size(Dim::se_c);
    c.reweight_hidden = size(Dim::H);
    for (int v : {c.P, c.C, c.ffn_hidden, c.d_t, c.d_c, c.se_t, c.se_c, c.reweight_hidden})
        if (v < 1) throw WeightsError("every size of the model must be >= 1 (a tensor has a zero dimension)");
    if (c.d_t > T || c.d_c > c.C) throw WeightsError("reduced attention sizes d_t, d_c exceed T, C");
    return c;
}

// Every tensor of specs under prefix, checked against its shape in sizes n; the unread ones only checked.
template <size_t N>
Stored<N> take_all(TensorSource& src, const TensorSpec (&specs)[N], const std::string& prefix, const Sizes& n) {
    Stored<N> out;
    for (size_t i = 0; i < N; ++i) {
        const TensorSpec& spec = specs[i];
        const std::string name = prefix + spec.name;
        std::vector<int64_t> shape{size_of(n, spec.rows)};
        if (spec.cols != Dim::None) shape.push_back(size_of(n, spec.cols));
        if (spec.less != Dim::None && !(size_of(n, spec.less) < size_of(n, spec.than)))
            src.allow_unused(name, shape);  // the official model keeps value_reduce when r = 1 but never uses it
        else if (spec.layout == Layout::Transposed)
            out[i] = src.take_transposed(name, static_cast<int>(shape[0]), static_cast<int>(shape[1]));
        else
            out[i] = src.take(name, shape);
    }
    return out;
}

const float* data_or_null(const Floats& v) { return v.empty() ? nullptr : v.data(); }

// token: N = T, D = C; channel: N = C, D = T (the Block ids of one synthesiser, in schema order)
kernels::SynthAttentionWeights synth_view(const Stored<Block::kCount>& t, size_t first, int N, int D, int d, int H) {
    return {N, D, d, H, t[first].data(), t[first + 1].data(), t[first + 2].data(), t[first + 3].data(),
            data_or_null(t[first + 4]), data_or_null(t[first + 5])};
}
static_assert(Block::token_value_reduce_bias == Block::token_dense_weight + 5 &&
              Block::channel_value_reduce_bias == Block::channel_dense_weight + 5,
              "synth_view reads dense.weight, dense.bias, se.fc.0, se.fc.2, value_reduce.weight/bias in this order");

bool is_string(const std::string& raw) { return json_kind(raw) == JsonKind::String; }
bool is_integer(const std::string& raw) { return json_kind(raw) == JsonKind::Integer; }
bool is_bool(const std::string& raw) { return json_kind(raw) == JsonKind::Bool; }
template <JsonKind... Kinds>
bool is_list_of(const std::string& raw) {
    if (json_kind(raw) != JsonKind::Array) return false;
    for (const std::string& e : json_array_elements(raw))
        if (((json_kind(e) != Kinds) && ...)) return false;
    return true;
}

// The type of each pose field: msf.pose._FIELD_TYPES, which the Python loader checks (null: not stated).
struct PoseField {
    const char* key;
    bool (*ok)(const std::string&);
    const char* expected;
};
constexpr PoseField kPoseFields[] = {
    {"skeleton", is_string, "a string"},
    {"units", is_string, "a string"},
    {"joints", is_list_of<JsonKind::String>, "a list of joint names"},
    {"dims", is_integer, "an integer"},
    {"parents", is_list_of<JsonKind::Integer>, "a list of parent indices (-1: root)"},
    {"root_joints", is_list_of<JsonKind::Integer, JsonKind::String>, "a list of joint indices or names"},
    {"root_relative", is_bool, "true or false"},
    {"image_normalised", is_bool, "true or false"},
};

// A root-relative file's stated root_joints must be one or more distinct joints: names resolved by its joints
// (when it names them, the last of a repeated name, as Python's dict keeps it), indices within its J, or
// >= 0 when it names no joints (msf.pose._stated_roots).
void check_root_joints(const std::string& roots, const std::string* joints) {
    std::map<std::string, size_t> named;
    const std::vector<std::string> names = joints ? json_array_elements(*joints) : std::vector<std::string>{};
    for (size_t j = 0; j < names.size(); ++j) named[json_string(names[j])] = j;
    const std::vector<std::string> stated = json_array_elements(roots);
    std::set<std::string> seen;  // as canonical decimal text: JSON integers have no leading zeros
    bool ok = !stated.empty();
    for (const std::string& r : stated) {
        std::string index = r == "-0" ? "0" : r;  // Python reads -0 as the integer 0
        if (json_kind(r) == JsonKind::String) {
            auto it = named.find(json_string(r));
            index = it == named.end() ? "-1" : std::to_string(it->second);
        }
        long long v = 0;
        ok = ok && index[0] != '-' && (!joints || (json_integer(index, v) && v < static_cast<long long>(names.size()))) &&
             seen.insert(index).second;
    }
    if (!ok)
        throw WeightsError("metadata pose root_joints " + json::printable(roots) + ": expected one or more distinct " +
                           (joints ? "of the file's " + std::to_string(names.size()) + " joints" : "joint indices >= 0"));
}

// The pose convention: fields of their types, joints and dims describing P values, and the root joints.
void check_pose(const std::string& text, const Config& c) {
    const std::map<std::string, std::string> p = json_object_members(text);
    auto stated = [&](const char* key) -> const std::string* {  // null: not stated
        auto it = p.find(key);
        return it == p.end() || json_kind(it->second) == JsonKind::Null ? nullptr : &it->second;
    };
    for (const PoseField& f : kPoseFields)
        if (const std::string* v = stated(f.key); v && !f.ok(*v))
            throw WeightsError(std::string("metadata pose '") + f.key + "' is " + json::printable(*v) + ": expected " +
                               f.expected);
    auto joints = p.find("joints"), dims = p.find("dims");
    if (joints != p.end() || dims != p.end()) {  // present, even as null, they must describe P
        long long d = 0;
        const long long j = stated("joints") ? static_cast<long long>(json_array_elements(joints->second).size()) : -1;
        // d <= P first: j * d must not overflow (j is at most the text's length)
        if (j < 0 || !stated("dims") || !json_integer(dims->second, d) || d < 1 || d > c.P || j * d != c.P)
            throw WeightsError("metadata pose must give a list of J joint names and D dims with J*D = P = " +
                               std::to_string(c.P));
    }
    const std::string* roots = stated("root_joints");
    const std::string* relative = stated("root_relative");
    if (roots && relative && *relative == "true") check_root_joints(*roots, stated("joints"));
}

// A motion-prediction file's "prediction": {"history_frames": H, "future_frames": F, "fps": f}, H and F integers,
// f a positive normal number, fitting a model of K = 1 with H >= 2, F >= 1 and H + F = T (msf.predict).
void check_prediction(const std::string& text, const Config& c) {
    const std::map<std::string, std::string> p = json_object_members(text);
    auto h = p.find("history_frames"), f = p.find("future_frames"), fps = p.find("fps");
    long long history = 0, future = 0;
    double rate = 0;
    if (h == p.end() || f == p.end() || fps == p.end() || !json_integer(h->second, history) ||
        !json_integer(f->second, future) || !json_number(fps->second, rate) || !(std::isnormal(rate) && rate > 0) ||
        c.K != 1 || history < 2 || future < 1 || history + future != c.T())
        throw WeightsError("metadata prediction must be {\"history_frames\": H, \"future_frames\": F, \"fps\": f} "
                           "with integers H >= 2, F >= 1, H + F = T = " + std::to_string(c.T()) +
                           ", f a positive normal number, for a model of K = 1 (here " + std::to_string(c.K) + ")");
}

// The file's stated config must agree with the shapes, and its pose convention and prediction setting must fit.
void check_metadata(const Metadata& metadata, const Config& c) {
    auto config = metadata.find("config");
    if (config != metadata.end()) {
        const std::map<std::string, std::string> stated = json_object_members(config->second);
#define MSF_FIELD(field) {#field, c.field},
        const std::pair<const char*, int> inferred[] = {MSF_SCHEMA_CONFIG_FIELDS(MSF_FIELD)};
#undef MSF_FIELD
        for (const auto& [key, value] : inferred) {
            auto it = stated.find(key);
            long long v = 0;
            if (it != stated.end() && (!json_integer(it->second, v) || v != value))
                throw WeightsError(std::string("metadata config disagrees with the tensor shapes: ") + key + " stated " +
                                   json::printable(it->second) + ", shapes give " + std::to_string(value));
        }
    }
    if (auto pose = metadata.find("pose"); pose != metadata.end()) check_pose(pose->second, c);
    if (auto prediction = metadata.find("prediction"); prediction != metadata.end())
        check_prediction(prediction->second, c);
}

}  // namespace

Model::Model(TensorMap tensors, Metadata metadata) : impl_(std::make_unique<Impl>()) {
    isa::active();  // a bad MSF_ISA is an error at load, not at the first refine
    auto fmt = metadata.find("format");
    if (fmt != metadata.end() && fmt->second != "msf")
        throw WeightsError("metadata format is '" + fmt->second + "', expected 'msf'");
    auto ver = metadata.find("format_version");
    if (ver != metadata.end() && ver->second != "1")
        throw WeightsError("format_version '" + ver->second + "' is not supported (this msf reads version 1)");
    TensorSource src(tensors);
    Sizes n;
    const Config c = infer_config(src, n);
    check_metadata(metadata, c);
    const int T = c.T(), C = c.C, H = c.reweight_hidden;
    Impl& m = *impl_;
    m.config = c;
    m.metadata = std::move(metadata);
    m.global = take_all(src, kGlobalSpecs, "", n);
    m.layers.resize(static_cast<size_t>(c.L));
    for (int i = 0; i < c.L; ++i) {
        LayerStore& l = m.layers[static_cast<size_t>(i)];
        l.t = take_all(src, kBlockSpecs, block_prefix(i), n);
        const auto& t = l.t;
        l.mix = {T, C, H, synth_view(t, Block::token_dense_weight, T, C, c.d_t, c.se_t),
                 synth_view(t, Block::channel_dense_weight, C, T, c.d_c, c.se_c),
                 t[Block::reweight_fc1_weight].data(), t[Block::reweight_fc1_bias].data(),
                 t[Block::reweight_fc2_weight].data(), t[Block::reweight_fc2_bias].data(),
                 t[Block::proj_weight].data(), t[Block::proj_bias].data()};
    }
    src.check_all_used();
    const size_t TC = static_cast<size_t>(T) * C;
    // X (T, P), Z (T, C), tmp (T, C), hidden (T, F), then the mixing scratch
    m.workspace_floats = static_cast<size_t>(T) * c.P + 2 * TC + static_cast<size_t>(T) * c.ffn_hidden +
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
    // x (T, P) and z (T, C) for each window of a chunk; tmp, hidden and the scratch are shared; each buffer
    // starts on a cache line (forward_chunk's layout)
    m.chunk_workspace_floats = kChunk * (kernels::aligned_floats(static_cast<size_t>(T) * c.P) + kernels::aligned_floats(TC)) +
                               kernels::aligned_floats(TC) + kernels::aligned_floats(static_cast<size_t>(T) * c.ffn_hidden) +
                               kernels::mix_synth_attention_scratch(m.layers[0].mix);
}

void Model::Impl::forward_chunk(const float* kf, float* out, size_t n, float* ws) const {
    // kf (n, Q+1, P) -> out (n, T, P), n <= kChunk: each layer for every window, then the next layer
    const Config& c = config;
    const int T = c.T(), C = c.C, P = c.P, F = c.ffn_hidden;
    const size_t TC = static_cast<size_t>(T) * C, TP = static_cast<size_t>(T) * P;
    const size_t in_size = static_cast<size_t>(c.n_keyframes()) * P;
    // buffers and windows on cache lines: ws is aligned, and each stride a multiple of kernels::kAlignFloats
    const size_t x_stride = kernels::aligned_floats(TP), z_stride = kernels::aligned_floats(TC);
    float* xs = ws;                                                      // (n, T, P), windows x_stride apart
    float* zs = xs + kChunk * x_stride;                                  // (n, T, C), windows z_stride apart
    float* tmp = zs + kChunk * z_stride;                                 // (T, C)
    float* hidden = tmp + z_stride;                                      // (T, F)
    float* scratch = hidden + kernels::aligned_floats(static_cast<size_t>(T) * F);  // mix_synth_attention_scratch
    const Stored<Global::kCount>& g = global;
    for (size_t w = 0; w < n; ++w) {
        kernels::linear_left_forward(xs + w * x_stride, g[Global::l_interp_weight].data(), g[Global::l_interp_bias].data(),
                                     kf + w * in_size, T, c.n_keyframes(), P);
        kernels::linear_forward(zs + w * z_stride, xs + w * x_stride, g[Global::encoder_emb_weight].data(),
                                g[Global::encoder_emb_bias].data(), T, P, C);
    }
    for (const LayerStore& l : layers) {
        const Stored<Block::kCount>& t = l.t;
        for (size_t w = 0; w < n; ++w) {
            float* z = zs + w * z_stride;
            kernels::mix_synth_attention_forward(tmp, z, l.mix, scratch);
            kernels::layer_norm_forward(z, tmp, z, t[Block::norm1_weight].data(), t[Block::norm1_bias].data(), T, C);
            kernels::linear_forward(hidden, z, t[Block::ff_fc1_weight].data(), t[Block::ff_fc1_bias].data(), T, C, F);
            kernels::gelu_forward(hidden, static_cast<size_t>(T) * F);
            kernels::linear_forward(tmp, hidden, t[Block::ff_fc2_weight].data(), t[Block::ff_fc2_bias].data(), T, F, C);
            kernels::layer_norm_forward(z, tmp, z, t[Block::norm2_weight].data(), t[Block::norm2_bias].data(), T, C);
        }
    }
    for (size_t w = 0; w < n; ++w) {
        const float* x = xs + w * x_stride;
        float* o = out + w * TP;
        kernels::layer_norm_forward(tmp, zs + w * z_stride, nullptr, g[Global::norm_weight].data(),
                                    g[Global::norm_bias].data(), T, C);
        kernels::linear_forward(o, tmp, g[Global::fc_weight].data(), g[Global::fc_bias].data(), T, C, P);
        for (size_t i = 0; i < TP; ++i) o[i] += x[i];
    }
}

std::unique_ptr<Floats> Model::Impl::acquire_workspace() {
    {
        std::lock_guard<std::mutex> lock(pool_mutex);
        if (!pool.empty()) {
            std::unique_ptr<Floats> ws = std::move(pool.back());
            pool.pop_back();
            return ws;
        }
    }
    return std::make_unique<Floats>(chunk_workspace_floats);
}

void Model::Impl::release_workspace(std::unique_ptr<Floats> ws) {
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
    // At most one worker per hardware thread: more only wait for a core, and each takes a thread and a
    // workspace (INT_MAX threads for 40,000 windows ran out of threads midway).
    const size_t cores = std::max(1u, std::thread::hardware_concurrency());
    const size_t workers = std::min({threads <= 0 ? cores : std::min(static_cast<size_t>(threads), cores), batch});
    // every worker's workspace is taken before any thread starts, so a failed allocation leaves nothing running
    std::vector<std::unique_ptr<Floats>> spaces;
    for (size_t w = 0; w < workers; ++w) spaces.push_back(m.acquire_workspace());
    // per worker, its first window whose output is not finite (its later chunks are skipped)
    std::vector<size_t> overflowed(workers, batch);
    auto run = [&](size_t w) {  // windows [w*batch/workers, (w+1)*batch/workers): contiguous, balanced
        const FlushSubnormals flush;
        const size_t end = (w + 1) * batch / workers;
        for (size_t b = w * batch / workers; b < end && overflowed[w] == batch; b += kChunk) {
            const size_t n = std::min(kChunk, end - b);
            m.forward_chunk(keyframes + b * in_size, out + b * out_size, n, spaces[w]->data());
            for (size_t i = b; i < b + n; ++i)
                if (!all_finite(out + i * out_size, out_size)) {
                    overflowed[w] = i;
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
    return Model(std::move(tensors), std::move(file.metadata));
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
