/* Refines keyframe windows read from a text file with msf's C API and prints every frame.
 *
 *     msf_example_c MODEL.safetensors KEYFRAMES.txt
 *
 * KEYFRAMES.txt: a line "B Q1 P" (windows, keyframes per window = Q+1, values per pose), then B*Q1*P
 * numbers, window by window and keyframe by keyframe (examples/make_inputs.py writes one pose per line).
 * Output in the same format: "B T P", then B*T lines of P values, T = K*Q + 1 frames per window.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "msf/msf.h"

/* Reads the keyframes file; returns NULL (with a message on stderr) if it does not fit the model. */
static float* read_keyframes(const char* path, const msf_model* model, size_t* batch) {
    FILE* f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
    size_t q1, p, n = 0;
    float* keyframes = NULL;
    if (fscanf(f, "%zu %zu %zu", batch, &q1, &p) != 3) {
        fprintf(stderr, "%s: expected a first line \"B Q1 P\"\n", path);
    } else if (q1 != msf_n_keyframes(model) || p != msf_pose_size(model)) {
        fprintf(stderr, "%s holds windows of %zu keyframes of %zu values; the model takes %zu of %zu\n", path, q1, p,
                msf_n_keyframes(model), msf_pose_size(model));
    } else if (*batch == 0 || *batch > SIZE_MAX / sizeof(float) / msf_window_frames(model) / p ||
               !(keyframes = malloc(*batch * q1 * p * sizeof(float)))) {
        fprintf(stderr, "%s: no windows, or too many for memory\n", path);
    } else {
        while (n < *batch * q1 * p && fscanf(f, "%f", &keyframes[n]) == 1) ++n;
        if (n < *batch * q1 * p || fscanf(f, " %*s") != EOF) {
            fprintf(stderr, "%s: expected exactly %zu numbers after the first line\n", path, *batch * q1 * p);
            free(keyframes);
            keyframes = NULL;
        }
    }
    fclose(f);
    return keyframes;
}

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.safetensors KEYFRAMES.txt\n", argv[0]);
        return 2;
    }
    msf_model* model = msf_load_file(argv[1]);
    if (!model) {
        fprintf(stderr, "cannot load %s: %s\n", argv[1], msf_last_error());
        return 1;
    }
    const char* pose = msf_metadata(model, "pose");
    fprintf(stderr, "msf %s: K=%zu, Q+1=%zu keyframes -> T=%zu frames of P=%zu values; pose: %s\n", msf_version(),
            msf_keyframe_interval(model), msf_n_keyframes(model), msf_window_frames(model), msf_pose_size(model),
            pose ? pose : "(not stated)");

    int status = MSF_ERR_ARGUMENT;
    size_t batch = 0;
    const size_t T = msf_window_frames(model), P = msf_pose_size(model);
    float* keyframes = read_keyframes(argv[2], model, &batch);
    float* frames = keyframes ? malloc(batch * T * P * sizeof(float)) : NULL;
    if (frames) {
        status = msf_refine(model, keyframes, batch * msf_n_keyframes(model) * P, frames, batch * T * P, batch);
        if (status != MSF_OK) fprintf(stderr, "refine failed: %s\n", msf_last_error());
    }
    if (status == MSF_OK) {
        printf("%zu %zu %zu\n", batch, T, P);
        for (size_t row = 0; row < batch * T; ++row)
            for (size_t j = 0; j < P; ++j) printf("%.9g%c", frames[row * P + j], j + 1 < P ? ' ' : '\n');
    }
    free(frames);
    free(keyframes);
    msf_free(model);
    return status == MSF_OK ? 0 : 1;
}
