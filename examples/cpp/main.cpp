// Refines keyframe windows read from a text file with msf's C++ API and prints every frame.
//
//     msf_example_cpp MODEL.safetensors KEYFRAMES.txt
//
// Same files as the C example (examples/c/main.c): input "B Q1 P" then B*Q1*P numbers; output "B T P"
// then B*T lines of P values, T = K*Q + 1 frames per window.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "msf/msf.hpp"

namespace {

std::vector<float> read_keyframes(const std::string& path, const msf::Config& c) {
    std::ifstream in(path);
    std::size_t batch = 0, q1 = 0, p = 0;
    if (!(in >> batch >> q1 >> p)) throw std::runtime_error(path + ": expected a first line \"B Q1 P\"");
    if (q1 != static_cast<std::size_t>(c.n_keyframes()) || p != static_cast<std::size_t>(c.P))
        throw std::runtime_error(path + " holds windows of " + std::to_string(q1) + " keyframes of " +
                                 std::to_string(p) + " values; the model takes " + std::to_string(c.n_keyframes()) +
                                 " of " + std::to_string(c.P));
    std::vector<float> keyframes(batch * q1 * p);
    for (float& v : keyframes) in >> v;
    std::string extra;
    if (!in || in >> extra)
        throw std::runtime_error(path + ": expected exactly " + std::to_string(keyframes.size()) +
                                 " numbers after the first line");
    return keyframes;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: " << argv[0] << " MODEL.safetensors KEYFRAMES.txt\n";
        return 2;
    }
    try {
        const msf::Model model = msf::Model::load_file(argv[1]);
        const msf::Config& c = model.config();
        const auto pose = model.metadata().find("pose");
        std::cerr << "K=" << c.K << ", Q+1=" << c.n_keyframes() << " keyframes -> T=" << c.T() << " frames of P=" << c.P
                  << " values; pose: " << (pose != model.metadata().end() ? pose->second : "(not stated)") << "\n";

        const std::vector<float> frames = model.refine(read_keyframes(argv[2], c));
        const std::size_t T = static_cast<std::size_t>(c.T()), P = static_cast<std::size_t>(c.P);
        const std::size_t batch = frames.size() / (T * P);
        std::printf("%zu %zu %zu\n", batch, T, P);
        for (std::size_t row = 0; row < batch * T; ++row)
            for (std::size_t j = 0; j < P; ++j) std::printf("%.9g%c", frames[row * P + j], j + 1 < P ? ' ' : '\n');
    } catch (const std::exception& e) {  // msf::WeightsError, msf::InputError, a bad file, out of memory
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
