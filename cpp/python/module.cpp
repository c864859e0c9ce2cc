// msf._core: thin pybind11 bindings of what msf itself uses (the model, and the ISA its kernels run on).
// Arrays in, arrays out; the GIL is released around the forward. Test-only bindings: kernels_module.cpp.
#include <pybind11/stl.h>

#include <string>

#include "../src/isa.hpp"
#include "../src/kernels.hpp"
#include "../src/schema.inc"
#include "binding.hpp"
#include "msf/msf.hpp"

namespace {

std::vector<int64_t> shape_of(const Array& a) { return {a.shape(), a.shape() + a.ndim()}; }

msf::TensorMap to_tensor_map(const py::dict& tensors) {
    msf::TensorMap map;
    for (auto item : tensors) {
        Array a = py::cast<Array>(item.second);
        map[py::cast<std::string>(item.first)] = msf::Tensor{shape_of(a), {a.data(), a.data() + a.size()}};
    }
    return map;
}

py::dict config_dict(const msf::Config& c) {
    py::dict d;  // the fields of msf.config.Config, by name (the list schema.inc carries)
#define MSF_FIELD(field) d[#field] = c.field;
    MSF_SCHEMA_CONFIG_FIELDS(MSF_FIELD)
#undef MSF_FIELD
    return d;
}

Array refine(const msf::Model& model, const Array& keyframes, int threads) {
    const msf::Config& c = model.config();
    require(keyframes.ndim() == 3 && keyframes.shape(1) == c.n_keyframes() && keyframes.shape(2) == c.P,
            "keyframes must have shape (B, " + std::to_string(c.n_keyframes()) + ", " + std::to_string(c.P) + ")");
    const auto batch = static_cast<size_t>(keyframes.shape(0));
    Array out = new_array({keyframes.shape(0), c.T(), c.P});
    const float* in = keyframes.data();
    float* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        model.refine(in, o, batch, threads);
    }
    return out;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "msf C++ core: the MixSynthFormer forward in float32";
    translate_msf_errors();

    py::class_<msf::Model>(m, "Model")
        .def(py::init([](const py::dict& tensors) { return msf::Model(to_tensor_map(tensors)); }),
             "tensors: state-dict name -> float32 array")
        .def_static("from_file", &msf::Model::load_file)
        .def_static("from_buffer", [](const py::bytes& data) {
            const std::string_view view(data);
            return msf::Model::load_buffer(view.data(), view.size());
        })
        .def_property_readonly("config", [](const msf::Model& model) { return config_dict(model.config()); })
        .def_property_readonly("metadata", &msf::Model::metadata)
        .def("refine", &refine, py::arg("keyframes"), py::arg("threads") = 1,
             "keyframes (B, Q+1, P) float32 -> (B, T, P) float32; GIL released; threads <= 0: all cores");

    // What the forward runs on, for users choosing MSF_ISA and for benchmark reports (README, speed.py).
    m.def("isa", [] { return std::string(msf::kernels::gemm_isa()); },
          "The instruction set the kernels run on this CPU (MSF_ISA may name a lesser one).");
    m.def("isas", [] {
        py::list out;
        for (const msf::isa::Entry& e : msf::isa::table()) out.append(py::make_tuple(e.name, e.available));
        return out;
    }, "Every instruction set msf has kernels for, best first, as (name, available on this CPU and build).");
}
