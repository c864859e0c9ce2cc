// Exceptions thrown by the msf C++ core. The C API maps them to status codes (msf.h).
//
// One rule, the same in C++, C and Python (src/msf/errors.py): the class says what is wrong.
// - WeightsError (C: MSF_ERR_WEIGHTS, Python: msf.WeightsError): the model is bad: its file or bytes are
//   unreadable, malformed, truncated, over a cap, inconsistent, non-finite, or not a MixSynthFormer.
// - InputError (C: MSF_ERR_INPUT, Python: msf.InputError): something the caller passed is bad: keyframes
//   with NaN or infinite values, buffer lengths that do not match the batch, null keyframe or output
//   buffers, MSF_ISA naming an instruction set msf has no kernels for or this CPU lacks. The C API checks
//   NULL pointers, lengths and overlap itself before calling the core and reports those as
//   MSF_ERR_ARGUMENT, the C code for "the call is malformed" (msf.h); both are the caller's to fix.
// - NumericError (C: MSF_ERR_NUMERIC, Python: msf.InputError): the forward overflowed float32 on finite
//   keyframes. Python has no separate class: the fix is the caller's, keyframes in the model's units.
// Python's msf.BackendError (the extension is not built) has no C++ counterpart; std::bad_alloc is
// MSF_ERR_MEMORY in C and MemoryError in Python; anything else is a bug (MSF_ERR_INTERNAL).
#pragma once
#include <stdexcept>
#include <string>

namespace msf {

struct Error : std::runtime_error {
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// The model is bad: a weights file or buffer is malformed, truncated, or does not describe a MixSynthFormer.
struct WeightsError : Error {
    explicit WeightsError(const std::string& what) : Error(what) {}
};

// Something the caller passed is bad: keyframes' values, buffer lengths, null buffers, an option.
struct InputError : Error {
    explicit InputError(const std::string& what) : Error(what) {}
};

// The forward overflowed float32: finite keyframes and weights gave NaN or infinite frames (keyframes far
// outside the model's units and normalisation, or weights no training produces).
struct NumericError : Error {
    explicit NumericError(const std::string& what) : Error(what) {}
};

}  // namespace msf
