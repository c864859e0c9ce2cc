// Every kernel, and the whole model through the C++ API, against vectors the NumPy reference wrote
// (make_vectors.py). Usage: test_kernels DATA_DIR
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "isa.hpp"
#include "kernels.hpp"
#include "msf/msf.hpp"
#include "test_support.hpp"

namespace {

namespace k = msf::kernels;
using test::Array;

std::map<std::string, Array> vectors;

const Array& get(const std::string& name) {
    auto it = vectors.find(name);
    if (it == vectors.end()) throw std::runtime_error("vectors.txt has no array " + name);
    return it->second;
}

bool kernel_close(const std::string& what, const std::vector<float>& got, const std::string& ref) {
    const Array& want = get(ref);
    CHECK(got.size() == want.values.size());
    return got.size() == want.values.size() &&
           test::close(what, got.data(), want.values, test::kKernelRtol, test::kKernelAtolOfMax);
}

// An nn.Linear weight (N, K) as kernels::linear_forward reads it: (K, N).
std::vector<float> transposed(const std::vector<float>& x, size_t rows, size_t cols) {
    // (rows, cols) -> (cols, rows)
    std::vector<float> t(rows * cols);
    for (size_t r = 0; r < rows; ++r)
        for (size_t c = 0; c < cols; ++c) t[c * rows + r] = x[r * cols + c];
    return t;
}

std::vector<float> transposed(const Array& w) { return transposed(w.f32(), w.shape.at(0), w.shape.at(1)); }

void test_linear() {
    for (const std::string p : {"linear", "linear_row", "linear_nobias"}) {
        const Array &x = get(p + ".x"), &w = get(p + ".weight");
        const int M = x.dim(0), K = x.dim(1), N = w.dim(0);
        const std::vector<float> xf = x.f32(), wf = w.f32(), wt = transposed(w);
        const std::vector<float> b = vectors.count(p + ".bias") ? get(p + ".bias").f32() : std::vector<float>{};
        const float* bias = b.empty() ? nullptr : b.data();
        std::vector<float> out(static_cast<size_t>(M) * N, NAN);
        k::linear_forward(out.data(), xf.data(), wt.data(), bias, M, K, N);
        kernel_close(p + ": linear_forward", out, p + ".out");
        std::fill(out.begin(), out.end(), NAN);
        k::linear_forward_naive(out.data(), xf.data(), wf.data(), bias, M, K, N);
        kernel_close(p + ": linear_forward_naive", out, p + ".out");
    }
}

void test_matmul() {
    const Array &a = get("matmul.a"), &b = get("matmul.b");
    std::vector<float> out(static_cast<size_t>(a.dim(0)) * b.dim(1), NAN);
    k::matmul_forward(out.data(), a.f32().data(), b.f32().data(), a.dim(0), a.dim(1), b.dim(1));
    kernel_close("matmul_forward", out, "matmul.out");

    const Array &w = get("linear_left.weight"), &x = get("linear_left.x");
    out.assign(static_cast<size_t>(w.dim(0)) * x.dim(1), NAN);
    k::linear_left_forward(out.data(), w.f32().data(), get("linear_left.bias").f32().data(), x.f32().data(), w.dim(0),
                           w.dim(1), x.dim(1));
    kernel_close("linear_left_forward", out, "linear_left.out");
}

// Every GEMM version this CPU has, with each combination of biases, and with a given transposed.
void test_gemm() {
    const Array &a = get("gemm.a"), &b = get("gemm.b");
    const int M = a.dim(0), K = a.dim(1), N = b.dim(1);
    const std::vector<float> af = a.f32(), bf = b.f32(), af_t = transposed(a);
    const std::vector<float> col = get("gemm.col_bias").f32(), row = get("gemm.row_bias").f32();
    const std::vector<double>& plain = get("gemm.plain").values;
    std::vector<double> with_col(plain), with_row(plain);
    for (size_t m = 0; m < static_cast<size_t>(M); ++m)
        for (size_t n = 0; n < static_cast<size_t>(N); ++n) {
            with_col[m * N + n] += col[n];
            with_row[m * N + n] += row[m];
        }
    const std::vector<double>& both = get("gemm.out").values;
    std::printf("gemm versions (this CPU dispatches to %s):", k::gemm_isa());
    for (const msf::isa::Entry& entry : msf::isa::table()) {
        const std::string isa = entry.name;
        std::vector<float> out(static_cast<size_t>(M) * N);
        auto run = [&](const float* col_bias, const float* row_bias, const std::vector<double>& want,
                       const char* what) {
            std::fill(out.begin(), out.end(), NAN);
            if (!k::gemm_forward_isa(isa, out.data(), af.data(), bf.data(), col_bias, row_bias, M, K, N)) return false;
            test::close("gemm " + isa + what, out.data(), want, test::kKernelRtol, test::kKernelAtolOfMax);
            return true;
        };
        if (!run(col.data(), row.data(), both, " with both biases")) {
            CHECK(!entry.available);
            std::printf(" %s (not on this CPU: skipped)", isa.c_str());
            continue;
        }
        std::printf(" %s", isa.c_str());
        run(nullptr, nullptr, plain, "");
        run(col.data(), nullptr, with_col, " with col_bias");
        run(nullptr, row.data(), with_row, " with row_bias");
        std::fill(out.begin(), out.end(), NAN);
        CHECK(k::gemm_forward_isa(isa, out.data(), af_t.data(), bf.data(), col.data(), row.data(), M, K, N, true));
        test::close("gemm " + isa + " with a transposed", out.data(), both, test::kKernelRtol, test::kKernelAtolOfMax);
    }
    std::printf("\n");
    CHECK(!k::gemm_forward_isa("sse9", nullptr, nullptr, nullptr, nullptr, nullptr, 1, 1, 1));
}

void test_pointwise() {
    std::vector<float> x = get("gelu.x").f32();
    k::gelu_forward(x.data(), x.size());
    kernel_close("gelu_forward", x, "gelu.out");
    x = get("gelu.x").f32();
    k::gelu_forward_naive(x.data(), x.size());
    kernel_close("gelu_forward_naive", x, "gelu.out");
    for (auto gelu : {k::gelu_forward, k::gelu_forward_naive}) {
        x = get("gelu_edges.x").f32();
        gelu(x.data(), x.size());  // atol: outputs below float's smallest subnormal flush to zero
        test::close("gelu edges", x.data(), get("gelu_edges.out").values, test::kKernelRtol, 0.0, 1.5e-45);
    }

    const Array& s = get("softmax.x");
    x = s.f32();
    k::softmax_forward(x.data(), s.dim(0), s.dim(1));
    kernel_close("softmax_forward", x, "softmax.out");
    x = transposed(s);  // the same rows as the columns of x^T
    k::softmax_columns_forward(x.data(), s.dim(1), s.dim(0));
    kernel_close("softmax_columns_forward", transposed(x, s.dim(1), s.dim(0)), "softmax.out");

    const Array& ln = get("layer_norm.x");
    const std::vector<float> in = ln.f32(), w = get("layer_norm.weight").f32(), b = get("layer_norm.bias").f32();
    std::vector<float> out(in.size(), NAN);
    k::layer_norm_forward(out.data(), in.data(), nullptr, w.data(), b.data(), ln.dim(0), ln.dim(1));
    kernel_close("layer_norm_forward", out, "layer_norm.out");
    x = in;  // documented: out may alias in
    k::layer_norm_forward(x.data(), x.data(), nullptr, w.data(), b.data(), ln.dim(0), ln.dim(1));
    CHECK(x == out);
    // in + residual, out aliasing the residual as the model calls it: a residual of zeros changes nothing
    x.assign(in.size(), 0.0f);
    k::layer_norm_forward(x.data(), in.data(), x.data(), w.data(), b.data(), ln.dim(0), ln.dim(1));
    CHECK(x == out);

    const Array &e = get("se_layer.e"), &w1 = get("se_layer.w1");
    const int N = e.dim(0), d = e.dim(1), H = w1.dim(0);
    x = transposed(e);  // the kernel's layouts: e^T (d, N), both weights transposed
    std::vector<float> scratch(static_cast<size_t>(N + H), NAN);
    k::se_layer_forward(x.data(), transposed(w1).data(), transposed(get("se_layer.w2")).data(), N, d, H,
                        scratch.data());
    kernel_close("se_layer_forward", transposed(x, d, N), "se_layer.out");
}

// One SynthAttention's tensors under `prefix`, in kernel layout, and the view the kernels take.
struct Synth {
    std::vector<float> dense_t, dense_b, se1, se2, value_w, value_b;
    k::SynthAttentionWeights w{};

    Synth(const std::string& prefix, int N, int D) {
        const Array& dense = get(prefix + "dense.weight");
        const int d = dense.dim(0);
        CHECK(dense.dim(1) == D);
        dense_t = transposed(dense);
        dense_b = get(prefix + "dense.bias").f32();
        se1 = transposed(get(prefix + "se.fc.0.weight"));
        se2 = transposed(get(prefix + "se.fc.2.weight"));
        if (d < N) {
            value_w = get(prefix + "value_reduce.weight").f32();
            value_b = get(prefix + "value_reduce.bias").f32();
        }
        w = {N, D, d, get(prefix + "se.fc.0.weight").dim(0), dense_t.data(), dense_b.data(), se1.data(), se2.data(),
             value_w.empty() ? nullptr : value_w.data(), value_b.empty() ? nullptr : value_b.data()};
    }
};

void test_attention() {
    for (const std::string p : {"synth_reduced", "synth_full"}) {
        const Array& s = get(p + ".s");
        const Synth synth(p + ".", s.dim(0), s.dim(1));
        CHECK((synth.w.d < synth.w.N) == (p == "synth_reduced"));
        std::vector<float> out(s.values.size(), NAN), scratch(k::synth_attention_scratch(synth.w), NAN);
        const std::vector<float> s_t = transposed(s);
        k::synth_attention_forward(out.data(), s.f32().data(), s_t.data(), synth.w, scratch.data());
        kernel_close(p + ": synth_attention_forward", out, p + ".out");
        k::synth_attention_t_forward(out.data(), s.f32().data(), s_t.data(), synth.w, scratch.data());
        kernel_close(p + ": synth_attention_t_forward", transposed(out, s.dim(1), s.dim(0)), p + ".out");
    }

    const Array& z = get("mix.z");
    const int T = z.dim(0), C = z.dim(1);
    const Synth token("mix.synth_token.", T, C), channel("mix.synth_channel.", C, T);
    const std::vector<float> fc1_t = transposed(get("mix.reweight.fc1.weight")), fc2_t = transposed(get("mix.reweight.fc2.weight"));
    const std::vector<float> fc1_b = get("mix.reweight.fc1.bias").f32(), fc2_b = get("mix.reweight.fc2.bias").f32();
    const std::vector<float> proj_t = transposed(get("mix.proj.weight")), proj_b = get("mix.proj.bias").f32();
    const k::MixSynthAttentionWeights w{T, C, get("mix.reweight.fc1.weight").dim(0), token.w, channel.w, fc1_t.data(),
                                        fc1_b.data(), fc2_t.data(), fc2_b.data(), proj_t.data(), proj_b.data()};
    std::vector<float> out(z.values.size(), NAN), scratch(k::mix_synth_attention_scratch(w), NAN);
    k::mix_synth_attention_forward(out.data(), z.f32().data(), w, scratch.data());
    kernel_close("mix_synth_attention_forward", out, "mix.out");
}

template <class E, class F>
void expect_throw(F&& f, const std::string& needle, int line) {
    try {
        f();
        std::fprintf(stderr, "line %d: no exception, expected one containing \"%s\"\n", line, needle.c_str());
        ++test::failures;
    } catch (const E& e) {
        if (std::string(e.what()).find(needle) == std::string::npos) {
            std::fprintf(stderr, "line %d: message \"%s\" lacks \"%s\"\n", line, e.what(), needle.c_str());
            ++test::failures;
        }
    }
}
#define EXPECT_THROW(E, expr, needle) expect_throw<E>([&] { expr; }, needle, __LINE__)

void test_model(const std::string& dir) {
    const msf::Model model = msf::Model::load_file(dir + "/model.safetensors");
    const msf::Config& c = model.config();
    CHECK(c.K == 3 && c.Q == 4 && c.T() == 13 && c.n_keyframes() == 5 && c.P == 6 && c.C == 16 && c.L == 2);
    CHECK(c.ffn_hidden == 32 && c.d_t == 3 && c.d_c == 16 && c.se_t == 3 && c.se_c == 4 && c.reweight_hidden == 3);
    CHECK(model.metadata().at("format") == "msf");
    CHECK(model.metadata().at("pose").find("\"dims\": 2") != std::string::npos);

    const Array& kf = get("model.keyframes");
    const size_t batch = kf.shape.at(0);
    const std::vector<float> in = kf.f32();
    const std::vector<float> out = model.refine(in);
    CHECK(out.size() == get("model.out").values.size());
    test::close("model refine", out.data(), get("model.out").values, 0.0, test::kModelAtolOfMax);

    // Every form gives the same bits, and a window's result does not depend on its batch.
    std::vector<float> raw(out.size(), NAN), checked(out.size(), NAN), single(out.size(), NAN);
    model.refine(in.data(), raw.data(), batch);
    model.refine(in.data(), in.size(), checked.data(), checked.size(), batch);
    const size_t in_window = in.size() / batch, out_window = out.size() / batch;
    for (size_t b = 0; b < batch; ++b) model.refine(in.data() + b * in_window, single.data() + b * out_window, 1);
    CHECK(raw == out && checked == out && single == out);

    // The checked forms reject buffers that do not hold whole windows; nothing is written then.
    std::vector<float> untouched(out.size(), 7.0f);
    float* u = untouched.data();
    const size_t n = untouched.size();
    EXPECT_THROW(msf::InputError, model.refine(in.data(), in.size() - 1, u, n, batch), "do not hold");
    EXPECT_THROW(msf::InputError, model.refine(in.data(), in.size(), u, n + 1, batch), "do not hold");
    EXPECT_THROW(msf::InputError, model.refine(in.data(), in.size(), u, n, batch + 1), "do not hold");
    EXPECT_THROW(msf::InputError, model.refine(std::vector<float>(in.begin(), in.end() - 1)), "not whole windows");
    std::vector<float> bad = in;
    bad[in_window + 3] = NAN;
    EXPECT_THROW(msf::InputError, model.refine(bad.data(), bad.size(), u, n, batch), "window 1");
    bad[in_window + 3] = -INFINITY;
    EXPECT_THROW(msf::InputError, model.refine(bad), "NaN or infinite");
    CHECK(untouched == std::vector<float>(out.size(), 7.0f));
    CHECK(model.refine(std::vector<float>{}).empty());
    model.refine(nullptr, 0, nullptr, 0, 0);

    // Tensors handed over directly are checked like a file's, and also against their own shape.
    auto [tensors, metadata] = test::read_model(dir + "/model.safetensors");
    CHECK(msf::Model(tensors, metadata).refine(in) == out);
    tensors["fc.bias"].data.pop_back();
    EXPECT_THROW(msf::WeightsError, (void)msf::Model(tensors), "tensor 'fc.bias' holds 5 values for shape [6]");

    // Moving a model keeps it usable.
    msf::Model moved = msf::Model::load_file(dir + "/model.safetensors");
    msf::Model target = std::move(moved);
    CHECK(target.refine(in) == out);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DATA_DIR\n", argv[0]);
        return 2;
    }
    try {
        vectors = test::read_vectors(std::string(argv[1]) + "/vectors.txt");
        test_linear();
        test_matmul();
        test_gemm();
        test_pointwise();
        test_attention();
        test_model(argv[1]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "unexpected exception: %s\n", e.what());
        ++test::failures;
    }
    return test::finish("test_kernels");
}
