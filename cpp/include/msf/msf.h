/* msf.h: C API of msf, MixSynthFormer keyframe pose refinement on the CPU in float32.
 *
 * Thread safety: a loaded msf_model is immutable. Any number of threads may call msf_refine and the
 * query functions on the same model at once. msf_refine runs on the calling thread; msf_refine_threads
 * splits one batch over several threads. msf_free must not overlap any other call on that model.
 * Errors are per thread: msf_last_status() and msf_last_error() describe the calling thread's most recent
 * load or refine call. No function exits or aborts the process.
 *
 * Usage, complete (it is compiled and run by the tests; link with msf::msf, see "Use from C/C++" in README.md):
 *
 *     #include <stdio.h>
 *     #include <stdlib.h>
 *
 *     #include "msf/msf.h"
 *
 *     int main(void) {
 *         msf_model* model = msf_load_file("model.safetensors");
 *         if (!model) {
 *             fprintf(stderr, "cannot load the model: %s\n", msf_last_error());
 *             return 1;
 *         }
 *         // A window is T = K*Q + 1 frames; its Q+1 keyframes are frames 0, K, ..., K*Q.
 *         size_t batch = 2, P = msf_pose_size(model);
 *         size_t in_len = batch * msf_n_keyframes(model) * P;     // keyframes (batch, Q+1, P)
 *         size_t out_len = batch * msf_window_frames(model) * P;  // frames (batch, T, P)
 *         float* keyframes = calloc(in_len, sizeof(float));       // poses in the units and layout
 *         float* frames = calloc(out_len, sizeof(float));         // of msf_metadata(model, "pose")
 *         int status = MSF_ERR_MEMORY;
 *         if (keyframes && frames) status = msf_refine(model, keyframes, in_len, frames, out_len, batch);
 *         if (status == MSF_OK)
 *             printf("window 0, frame 1: %g %g ...\n", frames[P], frames[P + 1]);
 *         else
 *             fprintf(stderr, "refine failed (status %d) %s\n", status, msf_last_error());
 *         free(keyframes);
 *         free(frames);
 *         msf_free(model);
 *         return status == MSF_OK ? 0 : 1;
 *     }
 */
#ifndef MSF_H
#define MSF_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A loaded model: weights and hyper-parameters (all inferred from the weight file). */
typedef struct msf_model msf_model;

/* Status codes returned by msf_refine (and by msf_last_status after any call that can fail).
 *
 * One rule, the same as the C++ exceptions (msf/errors.hpp) and Python's (msf.errors): the code says what
 * is wrong. MSF_ERR_WEIGHTS: the model is bad. MSF_ERR_ARGUMENT and MSF_ERR_INPUT: the caller passed
 * something bad; ARGUMENT when the call itself is malformed (checked by the C layer before any data is
 * read), INPUT when well-formed buffers hold bad values. C++ throws msf::InputError and Python raises
 * msf.InputError for both. There is no bad thread count: n_threads <= 0 means one per hardware thread.
 * The numeric values are part of the ABI and never change; a new code gets a new number. */
enum msf_status {
    MSF_OK = 0,
    MSF_ERR_WEIGHTS = 1,   /* weights missing, unreadable, malformed, or not a MixSynthFormer
                              (C++ msf::WeightsError, Python msf.WeightsError) */
    MSF_ERR_INPUT = 2,     /* bad values in well-formed arguments: keyframes contain NaN or infinite values;
                              or MSF_ISA names an instruction set msf or this CPU lacks (at load)
                              (C++ msf::InputError, Python msf.InputError) */
    MSF_ERR_ARGUMENT = 3,  /* a malformed call: a null pointer, a buffer length that does not match the batch,
                              overlapping buffers (C++ msf::InputError, Python msf.InputError, where they check
                              the same) */
    MSF_ERR_MEMORY = 4,    /* an allocation failed (C++ std::bad_alloc, Python MemoryError) */
    MSF_ERR_INTERNAL = 5,  /* a bug in msf; please report it with msf_last_error() */
    MSF_ERR_NUMERIC = 6    /* the forward overflowed float32: finite keyframes gave NaN or infinite frames
                              (keyframes far outside the model's units, or weights no training produces)
                              (C++ msf::NumericError, Python msf.InputError) */
};

/* The library version, "MAJOR.MINOR.PATCH". */
const char* msf_version(void);

/* Loads a safetensors weight file (untrusted input: every byte is bounds-checked). Returns NULL on
 * failure; msf_last_status() then tells why (MSF_ERR_WEIGHTS, MSF_ERR_ARGUMENT, MSF_ERR_MEMORY, or
 * MSF_ERR_INPUT when the environment variable MSF_ISA names an instruction set this CPU lacks). */
msf_model* msf_load_file(const char* path);
/* Same, from the file's bytes in memory; the buffer is not referenced after the call returns. */
msf_model* msf_load_buffer(const void* data, size_t size);
/* Frees a model; NULL is ignored. */
void msf_free(msf_model* model);

/* Hyper-parameters. For a NULL model they return 0. */
size_t msf_keyframe_interval(const msf_model* model);  /* K: frames between keyframes */
size_t msf_n_keyframes(const msf_model* model);        /* Q + 1: keyframes per window */
size_t msf_window_frames(const msf_model* model);      /* T = K*Q + 1: frames per window */
size_t msf_pose_size(const msf_model* model);          /* P = J*D: floats per pose */

/* A metadata string of the weight file, or NULL if absent (or model or key is NULL). "pose" holds the
 * pose convention as JSON: joint names, dims, units, normalisation; "config" and "source" also exist
 * in msf files. The string lives as long as the model. */
const char* msf_metadata(const msf_model* model, const char* key);

/* Refines `batch` windows: keyframes (batch, Q+1, P) -> out (batch, T, P), float32, C order.
 * keyframes_len and out_len are the buffers' lengths in floats and must be exactly batch*(Q+1)*P and
 * batch*T*P; the buffers must not overlap. Every frame is refined, keyframes included: out's frames 0,
 * K, ..., K*Q are the model's estimates, not copies of the input. Returns MSF_OK, or an error code and
 * then out is not written (after MSF_ERR_NUMERIC it holds partial results: discard them).
 * Subnormal values are flushed to zero inside the forward (x86 MXCSR FTZ/DAZ, AArch64 FPCR.FZ, set on
 * each thread that runs it and restored before returning), so tiny activations never slow it down. */
int msf_refine(const msf_model* model, const float* keyframes, size_t keyframes_len, float* out, size_t out_len,
               size_t batch);
/* The same with the windows split over n_threads threads (<= 0, or more than the hardware threads: one
 * per hardware thread); the results
 * are identical to msf_refine's. */
int msf_refine_threads(const msf_model* model, const float* keyframes, size_t keyframes_len, float* out,
                       size_t out_len, size_t batch, int n_threads);

/* Status of the calling thread's most recent call to msf_load_file, msf_load_buffer or msf_refine. */
int msf_last_status(void);
/* Its message: "" after a success. The string is owned by msf and valid until that thread's next call. */
const char* msf_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* MSF_H */
