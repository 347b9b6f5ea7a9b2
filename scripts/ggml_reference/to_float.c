// ggml's own dequantizers (`to_float` of each type's traits, as llama.cpp
// builds them in ggml-base) over every tensor of a GGUF model, single
// thread: for each type, the median of PASSES passes over all its tensors,
// in GB/s of f32 output. The reference scripts/ggml_reference.sh compares
// ggufmap's rates with, on the same tensors and the same machine.
//
//   to_float MODEL.gguf
//   to_float --blocks DIR
//
// The second form decodes the raw blocks in each `DIR/<TYPE>.blocks` (as
// `cargo bench --bench dequant` writes them with GGUFMAP_DUMP_BLOCKS=DIR)
// instead of a model's tensors, types ggml does not know skipped.
//
// Prints one line per type: `TYPE TENSORS VALUES GBPS` (TENSORS is 1 for a
// blocks file).
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ggml.h"
#include "gguf.h"

#define PASSES 5

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// The median of PASSES timed decodes of `values` values of `t` from
// `data` into `out`, after one untimed pass, in GB/s of f32 output.
static double rate(const struct ggml_type_traits *traits, const void *data, float *out,
                   int64_t values) {
    double times[PASSES + 1];
    for (int pass = 0; pass <= PASSES; pass++) {
        double start = now();
        traits->to_float(data, out, values);
        times[pass] = now() - start;
    }
    qsort(times + 1, PASSES, sizeof(double), cmp_double);
    return values * 4.0 / times[1 + PASSES / 2] / 1e9;
}

// Every `<TYPE>.blocks` file in `dir` whose TYPE ggml knows, decoded whole.
static int blocks_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return 1;
    }
    struct dirent *entry;
    while ((entry = readdir(d))) {
        char name[64];
        size_t len = strlen(entry->d_name);
        if (len < 8 || len - 7 >= sizeof name || strcmp(entry->d_name + len - 7, ".blocks")) continue;
        memcpy(name, entry->d_name, len - 7);
        name[len - 7] = 0;
        int t = 0;
        while (t < GGML_TYPE_COUNT &&
               !(ggml_type_name(t) && strcasecmp(ggml_type_name(t), name) == 0))
            t++;
        const struct ggml_type_traits *traits = t < GGML_TYPE_COUNT ? ggml_get_type_traits(t) : NULL;
        if (!traits || !traits->to_float || ggml_type_size(t) == 0) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
        FILE *f = fopen(path, "rb");
        struct stat st;
        if (!f || stat(path, &st) != 0) {
            perror(path);
            return 1;
        }
        uint8_t *data = malloc(st.st_size);
        if (fread(data, 1, st.st_size, f) != (size_t)st.st_size) {
            perror(path);
            return 1;
        }
        fclose(f);
        int64_t values = st.st_size / ggml_type_size(t) * ggml_blck_size(t);
        float *out = malloc(values * sizeof(float));
        memset(out, 0, values * sizeof(float));
        printf("%s 1 %lld %.3f\n", ggml_type_name(t), (long long)values,
               rate(traits, data, out, values));
        free(out);
        free(data);
    }
    closedir(d);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--blocks") == 0) return blocks_dir(argv[2]);
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.gguf | --blocks DIR\n", argv[0]);
        return 2;
    }
    struct gguf_init_params params = {.no_alloc = true, .ctx = NULL};
    struct gguf_context *ctx = gguf_init_from_file(argv[1], params);
    if (!ctx) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror(argv[1]);
        return 1;
    }
    const uint8_t *file = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (file == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    const uint8_t *data = file + gguf_get_data_offset(ctx);
    int64_t n = gguf_get_n_tensors(ctx);
    int64_t largest = 0;
    for (int64_t i = 0; i < n; i++) {
        enum ggml_type t = gguf_get_tensor_type(ctx, i);
        int64_t values = gguf_get_tensor_size(ctx, i) / ggml_type_size(t) * ggml_blck_size(t);
        if (values > largest) largest = values;
    }
    float *out = malloc(largest * sizeof(float));
    memset(out, 0, largest * sizeof(float));
    for (int t = 0; t < GGML_TYPE_COUNT; t++) {
        const struct ggml_type_traits *traits = ggml_get_type_traits(t);
        if (!traits->to_float) continue;
        int tensors = 0;
        int64_t total = 0;
        double times[PASSES + 1];
        // Pass 0 reads the pages in and is not counted.
        for (int pass = 0; pass <= PASSES; pass++) {
            double start = now();
            for (int64_t i = 0; i < n; i++) {
                if ((int)gguf_get_tensor_type(ctx, i) != t) continue;
                int64_t values = gguf_get_tensor_size(ctx, i) / ggml_type_size(t) * ggml_blck_size(t);
                traits->to_float(data + gguf_get_tensor_offset(ctx, i), out, values);
                if (pass == 0) {
                    tensors++;
                    total += values;
                }
            }
            times[pass] = now() - start;
        }
        if (tensors == 0) continue;
        qsort(times + 1, PASSES, sizeof(double), cmp_double);
        double median = times[1 + PASSES / 2];
        printf("%s %d %lld %.3f\n", ggml_type_name(t), tensors, (long long)total,
               total * 4.0 / median / 1e9);
    }
    free(out);
    gguf_free(ctx);
    return 0;
}
