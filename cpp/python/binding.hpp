// What both extension modules (msf._core, msf._kernels) share: the float32 arrays they take and return, and
// one translation of msf's C++ errors to msf.errors.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "msf/errors.hpp"

namespace py = pybind11;
using Array = py::array_t<float, py::array::c_style | py::array::forcecast>;

inline Array new_array(std::vector<py::ssize_t> shape) { return Array(shape); }

inline void require(bool ok, const std::string& what) {
    if (!ok) throw msf::InputError(what);
}

// The rule of src/msf/errors.py: msf::WeightsError -> msf.WeightsError, msf::InputError and
// msf::NumericError -> msf.InputError, std::bad_alloc -> MemoryError (pybind11's own translation).
// Module-local: each module, imported alone or with the other, translates what its own functions throw.
inline void translate_msf_errors() {
    py::register_local_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const msf::WeightsError& e) {
            PyErr_SetString(py::module_::import("msf.errors").attr("WeightsError").ptr(), e.what());
        } catch (const msf::InputError& e) {
            PyErr_SetString(py::module_::import("msf.errors").attr("InputError").ptr(), e.what());
        } catch (const msf::NumericError& e) {  // in Python an InputError: the keyframes do not suit the model
            PyErr_SetString(py::module_::import("msf.errors").attr("InputError").ptr(), e.what());
        } catch (const msf::Error& e) {
            PyErr_SetString(py::module_::import("msf.errors").attr("Error").ptr(), e.what());
        }
    });
}
