// Exceptions thrown by the msf C++ core. The C API maps them to status codes.
#pragma once
#include <stdexcept>
#include <string>

namespace msf {

struct Error : std::runtime_error {
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A weights file is malformed, truncated, or does not describe a MixSynthFormer.
struct WeightsError : Error {
    explicit WeightsError(const std::string& what) : Error(what) {}
};

// Keyframes or another argument have the wrong shape or values.
struct InputError : Error {
    explicit InputError(const std::string& what) : Error(what) {}
};

// The forward overflowed float32: finite keyframes and weights gave NaN or infinite frames (keyframes far
// outside the model's units and normalisation, or weights no training produces).
struct NumericError : Error {
    explicit NumericError(const std::string& what) : Error(what) {}
};

}  // namespace msf
