// The ISA table and the process's choice (see isa.hpp).
#include "isa.hpp"

#include <cstdlib>

#include "msf/errors.hpp"

namespace msf::isa {
namespace {

bool cpu_has(Isa isa) {
    switch (isa) {
#ifdef MSF_X86
        case Isa::avx512:
            __builtin_cpu_init();
            return __builtin_cpu_supports("avx512f");
        case Isa::avx2:
            __builtin_cpu_init();
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
#ifdef MSF_ARM64
        case Isa::neon:
            return true;
#endif
        case Isa::portable:
            return true;
        default:
            return false;
    }
}

std::vector<Entry> make_table() {
    std::vector<Entry> t;
    for (auto [isa, name] : {std::pair{Isa::avx512, "avx512"}, std::pair{Isa::avx2, "avx2"},
                             std::pair{Isa::neon, "neon"}, std::pair{Isa::portable, "portable"}})
        t.push_back({isa, name, cpu_has(isa)});
    return t;
}

std::string available_names() {
    std::string s;
    for (const Entry& e : table())
        if (e.available) s += (s.empty() ? "" : ", ") + std::string(e.name);
    return s;
}

Isa choose() {
    const char* wanted = std::getenv("MSF_ISA");
    if (!wanted || !*wanted) {
        for (const Entry& e : table())
            if (e.available) return e.isa;
        return Isa::portable;
    }
    const Entry* e = find(wanted);
    if (!e) throw InputError(std::string("MSF_ISA=") + wanted + ": not an instruction set msf has kernels for; " +
                             "unset it, or choose one this CPU has: " + available_names());
    if (!e->available)
        throw InputError(std::string("MSF_ISA=") + wanted + ": this CPU or build lacks it; unset it, or choose one " +
                         "this CPU has: " + available_names());
    return e->isa;
}

}  // namespace

const std::vector<Entry>& table() {
    static const std::vector<Entry> entries = make_table();  // the CPU does not change while we run
    return entries;
}

Isa active() {
    static const Isa chosen = choose();  // an exception leaves it unset: the next call retries and throws again
    return chosen;
}

const char* name(Isa isa) {
    for (const Entry& e : table())
        if (e.isa == isa) return e.name;
    return "unknown";
}

const Entry* find(const std::string& wanted) {
    for (const Entry& e : table())
        if (wanted == e.name) return &e;
    return nullptr;
}

}  // namespace msf::isa
