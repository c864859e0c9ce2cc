// The instruction sets msf has kernels for, in one table (isa.cpp), best first. One is chosen per process:
// the best this CPU and build have, or the one the environment variable MSF_ISA names (to measure or test a
// lesser path, e.g. MSF_ISA=avx2 on an AVX-512 CPU). The GEMM has hand-written versions per ISA (gemm_*.cpp);
// the element-wise kernels are compiled once per ISA from one body (MSF_ISA_DISPATCH) and vectorised by the
// compiler, except GELU, the column softmax and LayerNorm (AVX-512 and AVX2: gelu.cpp, softmax.cpp,
// layer_norm.cpp), written by hand. Every version sums in the same order, so results never depend on the batch.
#pragma once
#include <string>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#define MSF_X86 1
#endif
#if defined(__aarch64__)
#define MSF_ARM64 1  // Advanced SIMD (NEON) is part of the AArch64 baseline: no run-time check needed
#endif

namespace msf::isa {

enum class Isa { avx512, avx2, neon, portable };

struct Entry {
    Isa isa;
    const char* name;
    bool available;  // on this CPU, in this build
};

// Every ISA msf knows, best first, with whether this CPU and build have it.
const std::vector<Entry>& table();
// The ISA kernels use: the best available, or MSF_ISA's; throws InputError when MSF_ISA names an unknown or
// unavailable one (the message lists what this CPU has).
Isa active();
const char* name(Isa isa);
// The entry called `name`, or null.
const Entry* find(const std::string& name);

}  // namespace msf::isa

// Body functions cloned per ISA must be inlined into each clone to be compiled for its instruction set.
#define MSF_INLINE inline __attribute__((always_inline))

// Defines `ret name params` running `name##_body args` (an MSF_INLINE function) compiled for the active ISA.
#ifdef MSF_X86
#define MSF_ISA_DISPATCH(ret, name, params, args)                                       \
    __attribute__((target("avx512f"))) static ret name##_avx512 params { return name##_body args; } \
    __attribute__((target("avx2"))) static ret name##_avx2 params { return name##_body args; }      \
    static ret name##_baseline params { return name##_body args; }                      \
    ret name params {                                                                   \
        switch (::msf::isa::active()) {                                                 \
            case ::msf::isa::Isa::avx512: return name##_avx512 args;                    \
            case ::msf::isa::Isa::avx2: return name##_avx2 args;                        \
            default: return name##_baseline args;                                       \
        }                                                                               \
    }
#else
#define MSF_ISA_DISPATCH(ret, name, params, args) \
    ret name params { return name##_body args; }
#endif
