#!/usr/bin/env bash
# ggufmap's single-thread decode rate on a real model's tensors against
# ggml's own dequantizers (`to_float`, built from llama.cpp's sources as
# llama.cpp builds them: ggml-base, -O3), on the same tensors and machine,
# ROUNDS rounds interleaved; medians per type and their ratio.
#
#   bash scripts/ggml_reference.sh [MODEL.gguf]
#
# MODEL defaults to Gemma 3 270M (scripts/fetch_gemma.sh). llama.cpp comes
# from the llama-cpp-python sdist on PyPI (vendor/llama.cpp), built with
# cmake and ninja from PyPI, into ~/.cache/ggufmap/ggml-reference.
# ggufmap's side is `cargo bench --features cli --bench scaling` at one
# thread: both decode every tensor of a type into one buffer of f32,
# median of 5 passes after one that reads the pages in.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-$(bash scripts/fetch_gemma.sh)}
ROUNDS=${ROUNDS:-3}
LLAMA_CPP_PYTHON=${LLAMA_CPP_PYTHON:-0.3.36}
WORK=${GGML_REFERENCE_DIR:-$HOME/.cache/ggufmap/ggml-reference}
mkdir -p "$WORK"

if [ ! -x "$WORK/to_float" ]; then
    python3 -m pip install -q cmake ninja scikit-build-core
    python3 -m pip download -q --no-deps --no-binary :all: --no-build-isolation \
        "llama-cpp-python==$LLAMA_CPP_PYTHON" -d "$WORK"
    tar xzf "$WORK/llama_cpp_python-$LLAMA_CPP_PYTHON.tar.gz" -C "$WORK"
    GGML="$WORK/llama_cpp_python-$LLAMA_CPP_PYTHON/vendor/llama.cpp/ggml"
    # The sdist leaves out what the library build does not need.
    touch "$GGML/ggml.pc.in"
    cmake -S "$GGML" -B "$WORK/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_SHARED_LIBS=OFF -DGGML_BUILD_TESTS=OFF -DGGML_BUILD_EXAMPLES=OFF >/dev/null
    ninja -C "$WORK/build" ggml-base >/dev/null
    cc -O2 -I"$GGML/include" scripts/ggml_reference/to_float.c \
        "$WORK/build/src/libggml-base.a" -lstdc++ -lm -fopenmp -lpthread -o "$WORK/to_float"
fi
cargo bench --features cli --bench scaling --no-run --quiet 2>/dev/null

echo "model: $MODEL; $ROUNDS rounds, single thread, GB/s of f32 output"
: > "$WORK/ggml.txt"
: > "$WORK/ours.txt"
for _ in $(seq "$ROUNDS"); do
    "$WORK/to_float" "$MODEL" >> "$WORK/ggml.txt"
    GGUFMAP_GEMMA="$MODEL" GGUFMAP_THREADS=1 cargo bench --features cli --bench scaling --quiet 2>/dev/null \
        | awk '$1 == "1" && $2 != "verify" {print $2, $3}' >> "$WORK/ours.txt"
done
python3 - "$WORK/ggml.txt" "$WORK/ours.txt" <<'PY'
import statistics, sys
ggml, ours = {}, {}
for line in open(sys.argv[1]):
    name, _, _, rate = line.split()
    ggml.setdefault(name.upper(), []).append(float(rate))
for line in open(sys.argv[2]):
    name, rate = line.split()
    ours.setdefault(name.upper(), []).append(float(rate))
print(f"{'type':<6} {'ggufmap':>8} {'ggml':>8} {'ratio':>7}")
for name in sorted(set(ggml) & set(ours)):
    o, g = statistics.median(ours[name]), statistics.median(ggml[name])
    print(f"{name:<6} {o:>8.2f} {g:>8.2f} {o / g:>6.2f}x")
PY
