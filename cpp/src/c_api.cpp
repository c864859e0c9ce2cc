// The C API (msf.h) over msf::Model: arguments checked here, every exception turned into a status code.
// The rule (msf.h, msf/errors.hpp): a malformed call (NULL pointers, lengths that do not match the batch,
// overlapping buffers) is MSF_ERR_ARGUMENT, found here before the core is called; the core's exceptions
// map one to one: WeightsError -> MSF_ERR_WEIGHTS, InputError -> MSF_ERR_INPUT, NumericError ->
// MSF_ERR_NUMERIC, allocation failures -> MSF_ERR_MEMORY, anything else -> MSF_ERR_INTERNAL.
#include "msf/msf.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <stdexcept>

#include "msf/msf.hpp"

struct msf_model {
    msf::Model model;
};

namespace {

// The calling thread's last outcome. A fixed buffer, so that recording an out-of-memory error cannot
// itself fail.
thread_local int t_status = MSF_OK;
thread_local char t_message[1024] = "";

int set_status(int status, const char* message) {
    t_status = status;
    size_t n = std::strlen(message);
    if (n >= sizeof t_message) {
        n = sizeof t_message - 1;
        while (n > 0 && (static_cast<unsigned char>(message[n]) & 0xC0) == 0x80) --n;  // keep UTF-8 whole
    }
    std::memcpy(t_message, message, n);
    t_message[n] = '\0';
    return status;
}

int ok() { return set_status(MSF_OK, ""); }

// Status of the exception being handled; call only from a catch block.
int from_current_exception() {
    try {
        throw;
    } catch (const msf::WeightsError& e) {
        return set_status(MSF_ERR_WEIGHTS, e.what());
    } catch (const msf::InputError& e) {
        return set_status(MSF_ERR_INPUT, e.what());
    } catch (const msf::NumericError& e) {
        return set_status(MSF_ERR_NUMERIC, e.what());
    } catch (const std::bad_alloc&) {
        return set_status(MSF_ERR_MEMORY, "out of memory");
    } catch (const std::length_error&) {  // a container asked for more than it can ever hold
        return set_status(MSF_ERR_MEMORY, "out of memory: allocation too large");
    } catch (const std::exception& e) {
        return set_status(MSF_ERR_INTERNAL, e.what());
    } catch (...) {
        return set_status(MSF_ERR_INTERNAL, "unknown exception");
    }
}

template <class Load>
msf_model* load(Load&& load_model) {
    try {
        msf_model* model = new msf_model{load_model()};
        ok();
        return model;
    } catch (...) {
        from_current_exception();
        return nullptr;
    }
}

bool overlap(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
    const uintptr_t pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
    return pa < pb + b_bytes && pb < pa + a_bytes;
}

}  // namespace

extern "C" {

const char* msf_version(void) { return MSF_VERSION_STRING; }

msf_model* msf_load_file(const char* path) {
    if (!path) {
        set_status(MSF_ERR_ARGUMENT, "msf_load_file: path is NULL");
        return nullptr;
    }
    return load([path] { return msf::Model::load_file(path); });
}

msf_model* msf_load_buffer(const void* data, size_t size) {
    if (!data) {
        set_status(MSF_ERR_ARGUMENT, "msf_load_buffer: data is NULL");
        return nullptr;
    }
    return load([data, size] { return msf::Model::load_buffer(data, size); });
}

void msf_free(msf_model* model) { delete model; }

size_t msf_keyframe_interval(const msf_model* model) {
    return model ? static_cast<size_t>(model->model.config().K) : 0;
}

size_t msf_n_keyframes(const msf_model* model) {
    return model ? static_cast<size_t>(model->model.config().n_keyframes()) : 0;
}

size_t msf_window_frames(const msf_model* model) {
    return model ? static_cast<size_t>(model->model.config().T()) : 0;
}

size_t msf_pose_size(const msf_model* model) { return model ? static_cast<size_t>(model->model.config().P) : 0; }

const char* msf_metadata(const msf_model* model, const char* key) {
    if (!model || !key) return nullptr;
    for (const auto& kv : model->model.metadata())  // a handful of entries; find() would copy the key
        if (kv.first == key) return kv.second.c_str();
    return nullptr;
}

int msf_refine(const msf_model* model, const float* keyframes, size_t keyframes_len, float* out, size_t out_len,
               size_t batch) {
    return msf_refine_threads(model, keyframes, keyframes_len, out, out_len, batch, 1);
}

int msf_refine_threads(const msf_model* model, const float* keyframes, size_t keyframes_len, float* out,
                       size_t out_len, size_t batch, int n_threads) {
    if (!model) return set_status(MSF_ERR_ARGUMENT, "msf_refine: model is NULL");
    if ((!keyframes && keyframes_len) || (!out && out_len))
        return set_status(MSF_ERR_ARGUMENT, "msf_refine: keyframes or out is NULL");
    const msf::Config& c = model->model.config();
    const size_t in_window = static_cast<size_t>(c.n_keyframes()) * c.P;
    const size_t out_window = static_cast<size_t>(c.T()) * c.P;  // T >= Q+1: the larger of the two
    char message[512];
    if (batch > SIZE_MAX / sizeof(float) / out_window) {
        std::snprintf(message, sizeof message, "msf_refine: batch %zu is too large", batch);
        return set_status(MSF_ERR_ARGUMENT, message);
    }
    if (keyframes_len != batch * in_window || out_len != batch * out_window) {
        std::snprintf(message, sizeof message,
                      "msf_refine: buffers hold %zu keyframe and %zu output floats; batch %zu needs "
                      "%zu * %d * %d = %zu and %zu * %d * %d = %zu (batch * Q+1 * P and batch * T * P)",
                      keyframes_len, out_len, batch, batch, c.n_keyframes(), c.P, batch * in_window, batch, c.T(),
                      c.P, batch * out_window);
        return set_status(MSF_ERR_ARGUMENT, message);
    }
    if (batch == 0) return ok();
    if (overlap(keyframes, keyframes_len * sizeof(float), out, out_len * sizeof(float)))
        return set_status(MSF_ERR_ARGUMENT, "msf_refine: keyframes and out overlap");
    try {
        model->model.refine(keyframes, out, batch, n_threads);
        return ok();
    } catch (...) {
        return from_current_exception();
    }
}

int msf_last_status(void) { return t_status; }

const char* msf_last_error(void) { return t_message; }

}  // extern "C"
