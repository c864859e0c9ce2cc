// msf._kernels: bindings for tests only (and cpp/fuzz/make_corpus.py); msf itself never imports it. Single
// operators, to check against msf.reference, and the safetensors reader with its limits, against msf.weights.
// A wheel may leave it out (MSF_KERNEL_BINDINGS=OFF); the tests of single kernels then skip.
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <string>

#include "../src/kernels.hpp"
#include "../src/safetensors.hpp"
#include "binding.hpp"

namespace {

// (rows, cols) -> (cols, rows)
std::vector<float> transposed(const float* x, py::ssize_t rows, py::ssize_t cols) {
    std::vector<float> t(static_cast<size_t>(rows * cols));
    for (py::ssize_t r = 0; r < rows; ++r)
        for (py::ssize_t c = 0; c < cols; ++c) t[static_cast<size_t>(c * rows + r)] = x[r * cols + c];
    return t;
}

// Transposed copy of an (N, K) nn.Linear weight, the layout kernels::linear_forward reads.
std::vector<float> transposed(const Array& w) {
    require(w.ndim() == 2, "weight must be 2-D");
    return transposed(w.data(), w.shape(0), w.shape(1));
}

struct SynthArgs {
    std::vector<float> dense_t, se1_t, se2_t;
    Array dense_b, se1, se2, value_w, value_b;
    msf::kernels::SynthAttentionWeights w{};
};

// The tensors of one SynthAttention, by its state-dict names under `prefix`.
void synth_args(SynthArgs& a, const py::dict& p, const std::string& prefix, int N, int D) {
    Array dense = py::cast<Array>(p[py::str(prefix + "dense.weight")]);
    a.dense_b = py::cast<Array>(p[py::str(prefix + "dense.bias")]);
    a.se1 = py::cast<Array>(p[py::str(prefix + "se.fc.0.weight")]);
    a.se2 = py::cast<Array>(p[py::str(prefix + "se.fc.2.weight")]);
    require(dense.ndim() == 2 && dense.shape(1) == D && a.se1.ndim() == 2 && a.se1.shape(1) == N &&
                a.se2.ndim() == 2 && a.se2.shape(0) == N && a.se2.shape(1) == a.se1.shape(0),
            "synth_attention: tensor shapes disagree with the input");
    const int d = static_cast<int>(dense.shape(0));
    require(a.dense_b.size() == d && d <= N, "synth_attention: dense.bias must have d <= N entries");
    a.dense_t = transposed(dense);
    a.se1_t = transposed(a.se1);
    a.se2_t = transposed(a.se2);
    a.w = {N, D, d, static_cast<int>(a.se1.shape(0)), a.dense_t.data(), a.dense_b.data(), a.se1_t.data(),
           a.se2_t.data(), nullptr, nullptr};
    if (d < N) {
        a.value_w = py::cast<Array>(p[py::str(prefix + "value_reduce.weight")]);
        a.value_b = py::cast<Array>(p[py::str(prefix + "value_reduce.bias")]);
        require(a.value_w.ndim() == 2 && a.value_w.shape(0) == d && a.value_w.shape(1) == N && a.value_b.size() == d,
                "synth_attention: value_reduce must be (d, N) and (d,)");
        a.w.value_w = a.value_w.data();
        a.w.value_b = a.value_b.data();
    }
}

void bind_kernels(py::module_& k) {
    k.def("linear", [](const Array& x, const Array& w, std::optional<Array> b) {
        require(x.ndim() == 2 && w.ndim() == 2 && x.shape(1) == w.shape(1) && (!b || b->size() == w.shape(0)),
                "linear: x (M, K), weight (N, K), bias (N)");
        Array out = new_array({x.shape(0), w.shape(0)});
        const std::vector<float> wt = transposed(w);
        msf::kernels::linear_forward(out.mutable_data(), x.data(), wt.data(), b ? b->data() : nullptr,
                                     static_cast<int>(x.shape(0)), static_cast<int>(x.shape(1)), static_cast<int>(w.shape(0)));
        return out;
    }, py::arg("x"), py::arg("weight"), py::arg("bias") = py::none());
    k.def("linear_naive", [](const Array& x, const Array& w, std::optional<Array> b) {
        require(x.ndim() == 2 && w.ndim() == 2 && x.shape(1) == w.shape(1) && (!b || b->size() == w.shape(0)),
                "linear: x (M, K), weight (N, K), bias (N)");
        Array out = new_array({x.shape(0), w.shape(0)});
        msf::kernels::linear_forward_naive(out.mutable_data(), x.data(), w.data(), b ? b->data() : nullptr,
                                           static_cast<int>(x.shape(0)), static_cast<int>(x.shape(1)), static_cast<int>(w.shape(0)));
        return out;
    }, py::arg("x"), py::arg("weight"), py::arg("bias") = py::none());
    k.def("gemm", [](const Array& a, const Array& b, std::optional<Array> col_bias, std::optional<Array> row_bias,
                     const std::string& isa, bool a_transposed) {
        require(a.ndim() == 2 && b.ndim() == 2 && a.shape(a_transposed ? 0 : 1) == b.shape(0),
                "gemm: a (M, K) or, with a_transposed, a^T (K, M); b (K, N)");
        const py::ssize_t M = a.shape(a_transposed ? 1 : 0);
        require((!col_bias || col_bias->size() == b.shape(1)) && (!row_bias || row_bias->size() == M),
                "gemm: col_bias (N), row_bias (M)");
        Array out = new_array({M, b.shape(1)});
        const bool ok = msf::kernels::gemm_forward_isa(
            isa, out.mutable_data(), a.data(), b.data(), col_bias ? col_bias->data() : nullptr,
            row_bias ? row_bias->data() : nullptr, static_cast<int>(M), static_cast<int>(b.shape(0)),
            static_cast<int>(b.shape(1)), a_transposed);
        require(ok, "gemm: version '" + isa + "' is not available on this CPU");
        return out;
    }, py::arg("a"), py::arg("b"), py::arg("col_bias") = py::none(), py::arg("row_bias") = py::none(),
       py::arg("isa") = "portable", py::arg("a_transposed") = false);
    k.def("gelu", [](const Array& x) {
        Array out = new_array({x.shape(), x.shape() + x.ndim()});
        std::copy(x.data(), x.data() + x.size(), out.mutable_data());
        msf::kernels::gelu_forward(out.mutable_data(), static_cast<size_t>(x.size()));
        return out;
    });
    k.def("gelu_naive", [](const Array& x) {
        Array out = new_array({x.shape(), x.shape() + x.ndim()});
        std::copy(x.data(), x.data() + x.size(), out.mutable_data());
        msf::kernels::gelu_forward_naive(out.mutable_data(), static_cast<size_t>(x.size()));
        return out;
    });
    k.def("softmax", [](const Array& x) {
        require(x.ndim() == 2 && x.shape(1) > 0, "softmax: x (rows, cols) with cols >= 1");
        Array out = new_array({x.shape(0), x.shape(1)});
        std::copy(x.data(), x.data() + x.size(), out.mutable_data());
        msf::kernels::softmax_forward(out.mutable_data(), static_cast<int>(x.shape(0)), static_cast<int>(x.shape(1)));
        return out;
    });
    k.def("softmax_columns", [](const Array& x) {
        require(x.ndim() == 2 && x.shape(0) > 0, "softmax_columns: x (rows, cols) with rows >= 1");
        Array out = new_array({x.shape(0), x.shape(1)});
        std::copy(x.data(), x.data() + x.size(), out.mutable_data());
        msf::kernels::softmax_columns_forward(out.mutable_data(), static_cast<int>(x.shape(0)),
                                              static_cast<int>(x.shape(1)));
        return out;
    });
    k.def("layer_norm", [](const Array& x, const Array& w, const Array& b, std::optional<Array> residual) {
        require(x.ndim() == 2 && w.size() == x.shape(1) && b.size() == x.shape(1) &&
                    (!residual || (residual->ndim() == 2 && residual->shape(0) == x.shape(0) &&
                                   residual->shape(1) == x.shape(1))),
                "layer_norm: x (rows, C), weight (C), bias (C), residual (rows, C)");
        Array out = new_array({x.shape(0), x.shape(1)});
        msf::kernels::layer_norm_forward(out.mutable_data(), x.data(), residual ? residual->data() : nullptr, w.data(),
                                         b.data(), static_cast<int>(x.shape(0)), static_cast<int>(x.shape(1)));
        return out;
    }, py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("residual") = py::none());
    k.def("se_layer", [](const Array& e, const Array& w1, const Array& w2) {
        require(e.ndim() == 2 && w1.ndim() == 2 && w2.ndim() == 2 && w1.shape(1) == e.shape(0) &&
                    w2.shape(0) == e.shape(0) && w2.shape(1) == w1.shape(0),
                "se_layer: e (N, d), w1 (H, N), w2 (N, H)");
        const int N = static_cast<int>(e.shape(0)), d = static_cast<int>(e.shape(1)), H = static_cast<int>(w1.shape(0));
        // the kernel's layouts: e^T (d, N) and both weights transposed
        std::vector<float> e_t = transposed(e.data(), N, d), scratch(static_cast<size_t>(N + H));
        const std::vector<float> w1_t = transposed(w1), w2_t = transposed(w2);
        msf::kernels::se_layer_forward(e_t.data(), w1_t.data(), w2_t.data(), N, d, H, scratch.data());
        Array out = new_array({N, d});
        const std::vector<float> back = transposed(e_t.data(), d, N);
        std::copy(back.begin(), back.end(), out.mutable_data());
        return out;
    }, "e (N, d), w1 (H, N), w2 (N, H) -> (N, d)");
    k.def("synth_attention", [](const Array& s, const py::dict& p, bool transposed_out) {
        require(s.ndim() == 2, "synth_attention: s (N, D)");
        const py::ssize_t N = s.shape(0), D = s.shape(1);
        SynthArgs a;
        synth_args(a, p, "", static_cast<int>(N), static_cast<int>(D));
        const std::vector<float> s_t = transposed(s.data(), N, D);
        Array out = transposed_out ? new_array({D, N}) : new_array({N, D});
        std::vector<float> scratch(msf::kernels::synth_attention_scratch(a.w));
        (transposed_out ? msf::kernels::synth_attention_t_forward : msf::kernels::synth_attention_forward)(
            out.mutable_data(), s.data(), s_t.data(), a.w, scratch.data());
        return out;
    }, py::arg("s"), py::arg("p"), py::arg("transposed_out") = false,
       "s (N, D), p: the module's tensors by state-dict name (dense.weight, ...) -> (N, D), or its transpose (D, N)");
    k.def("mix_synth_attention", [](const Array& z, const py::dict& p) {
        require(z.ndim() == 2, "mix_synth_attention: z (T, C)");
        const int T = static_cast<int>(z.shape(0)), C = static_cast<int>(z.shape(1));
        SynthArgs token, channel;
        synth_args(token, p, "synth_token.", T, C);
        synth_args(channel, p, "synth_channel.", C, T);
        Array fc1 = py::cast<Array>(p["reweight.fc1.weight"]), fc1_b = py::cast<Array>(p["reweight.fc1.bias"]);
        Array fc2 = py::cast<Array>(p["reweight.fc2.weight"]), fc2_b = py::cast<Array>(p["reweight.fc2.bias"]);
        Array proj = py::cast<Array>(p["proj.weight"]), proj_b = py::cast<Array>(p["proj.bias"]);
        require(fc1.ndim() == 2 && fc1.shape(1) == T && fc1_b.size() == fc1.shape(0) && fc2.ndim() == 2 &&
                    fc2.shape(0) == 2 * T && fc2.shape(1) == fc1.shape(0) && fc2_b.size() == 2 * T &&
                    proj.ndim() == 2 && proj.shape(0) == C && proj.shape(1) == C && proj_b.size() == C,
                "mix_synth_attention: reweight/proj shapes disagree with z (T, C)");
        const std::vector<float> fc1_t = transposed(fc1), fc2_t = transposed(fc2), proj_t = transposed(proj);
        msf::kernels::MixSynthAttentionWeights w{T, C, static_cast<int>(fc1.shape(0)), token.w, channel.w,
                                                 fc1_t.data(), fc1_b.data(), fc2_t.data(), fc2_b.data(),
                                                 proj_t.data(), proj_b.data()};
        Array out = new_array({T, C});
        std::vector<float> scratch(msf::kernels::mix_synth_attention_scratch(w));
        msf::kernels::mix_synth_attention_forward(out.mutable_data(), z.data(), w, scratch.data());
        return out;
    }, "z (T, C), p: synth_att's tensors by state-dict name (synth_token.dense.weight, ...) -> (T, C)");
}

}  // namespace

PYBIND11_MODULE(_kernels, m) {
    m.doc() = "Single operators and the safetensors reader, for tests against msf.reference and msf.weights";
    translate_msf_errors();
    bind_kernels(m);

    m.def("parse_safetensors", [](const py::bytes& data) {
        const std::string_view view(data);
        msf::StFile file = msf::parse_safetensors(reinterpret_cast<const uint8_t*>(view.data()), view.size());
        py::dict tensors;
        for (auto& kv : file.tensors) {
            std::vector<py::ssize_t> shape(kv.second.shape.begin(), kv.second.shape.end());
            Array a = new_array(shape);
            std::copy(kv.second.data.begin(), kv.second.data.end(), a.mutable_data());
            tensors[py::str(kv.first)] = a;
        }
        return py::make_tuple(tensors, file.metadata);
    }, "The C++ safetensors reader, exposed for tests: bytes -> (tensors, metadata)");

    // The reader's limits, which msf.weights must share (tests/test_weights.py compares them).
    m.attr("MAX_HEADER_BYTES") = msf::kMaxHeaderBytes;
    m.attr("MAX_JSON_DEPTH") = msf::kMaxJsonDepth;
    m.attr("MAX_INTEGER_DIGITS") = msf::kMaxIntegerDigits;
    m.attr("MAX_SHAPE_DIMS") = msf::kMaxShapeDims;
    m.attr("MAX_SHAPE_ELEMENTS") = msf::kMaxShapeElements;
}
