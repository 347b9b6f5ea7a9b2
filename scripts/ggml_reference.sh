#!/usr/bin/env bash
# ggufmap's single-thread decode rate on a real model's tensors against
# ggml's own dequantizers (`to_float`, built from llama.cpp's sources as
# llama.cpp builds them: ggml-base, -O3), on the same tensors and machine,
# ROUNDS rounds interleaved; medians per type and their ratio.
#
#   bash scripts/ggml_reference.sh [MODEL.gguf]
#   bash scripts/ggml_reference.sh --requantize TYPE
#   bash scripts/ggml_reference.sh --blocks
#
# MODEL defaults to Gemma 3 270M (scripts/fetch_gemma.sh). With --blocks,
# every type instead: the blocks `cargo bench --features candle --bench
# dequant` decodes (8 MiB of f32 output per type, cache-resident), written
# out for ggml to decode the same (GGUFMAP_DUMP_BLOCKS), its summary table
# giving ggufmap's side. With --requantize TYPE, Gemma requantized by
# llama.cpp's own llama-quantize (`--allow-requantize --pure`, built from
# the same sdist) to TYPE (Q5_K, BF16, IQ4_XS, Q4_0, Q3_K, TQ2_0, ...):
# real tensors of types Gemma's file lacks (tensors whose rows do not fit
# the type's blocks fall back to another type, as llama.cpp decides). llama.cpp comes
# from the llama-cpp-python sdist on PyPI (vendor/llama.cpp), built with
# cmake and ninja from PyPI, into ~/.cache/ggufmap/ggml-reference.
# ggufmap's side is `cargo bench --features cli --bench scaling` at one
# thread: both decode every tensor of a type into one buffer of f32,
# median of 5 passes after one that reads the pages in.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
LLAMA_CPP_PYTHON=${LLAMA_CPP_PYTHON:-0.3.36}
WORK=${GGML_REFERENCE_DIR:-$HOME/.cache/ggufmap/ggml-reference}
mkdir -p "$WORK"
case "${1:-}" in
    --blocks) MODEL=--blocks ;;
    --requantize) MODEL=--requantize; TYPE=${2:?--requantize needs a type} ;;
    *) MODEL=${1:-$(bash scripts/fetch_gemma.sh)} ;;
esac

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

# One round of ggufmap's side: "TYPE GBPS" lines.
BLOCKS="$WORK/blocks"
ours() {
    if [ "$MODEL" = --blocks ]; then
        mkdir -p "$BLOCKS"
        GGUFMAP_DUMP_BLOCKS="$BLOCKS" cargo bench --features candle --bench dequant --quiet 2>/dev/null \
            | awk 'go && NF > 2 {print $1, $2} $1 == "type" {go = 1}'
    else
        GGUFMAP_GEMMA="$MODEL" GGUFMAP_THREADS=1 cargo bench --features cli --bench scaling --quiet 2>/dev/null \
            | awk '$1 == "1" && $2 != "verify" {print $2, $3}'
    fi
}
ggml() {
    if [ "$MODEL" = --blocks ]; then "$WORK/to_float" --blocks "$BLOCKS"; else "$WORK/to_float" "$MODEL"; fi
}
if [ "$MODEL" = --requantize ]; then
    LLAMA="$WORK/llama_cpp_python-$LLAMA_CPP_PYTHON/vendor/llama.cpp"
    QUANTIZE="$WORK/build-full/bin/llama-quantize"
    if [ ! -x "$QUANTIZE" ]; then
        cmake -S "$LLAMA" -B "$WORK/build-full" -G Ninja -DCMAKE_BUILD_TYPE=Release \
            -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DGGML_NATIVE=OFF \
            -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
        ninja -C "$WORK/build-full" llama-quantize >/dev/null
    fi
    MODEL="$HOME/.cache/ggufmap/requant/gemma-$TYPE.gguf"
    mkdir -p "$(dirname "$MODEL")"
    [ -f "$MODEL" ] || "$QUANTIZE" --allow-requantize --pure "$(bash scripts/fetch_gemma.sh)" \
        "$MODEL" "$TYPE" >/dev/null 2>&1
fi
cargo bench --features candle,cli --bench scaling --bench dequant --no-run --quiet 2>/dev/null

echo "model: $MODEL; $ROUNDS rounds, single thread, GB/s of f32 output"
: > "$WORK/ggml.txt"
: > "$WORK/ours.txt"
for _ in $(seq "$ROUNDS"); do
    # ggufmap first: in --blocks mode it writes the blocks ggml reads.
    ours >> "$WORK/ours.txt"
    ggml >> "$WORK/ggml.txt"
done
python3 - "$WORK/ggml.txt" "$WORK/ours.txt" "$MODEL" "$ROUNDS" <<'PY'
import datetime, os, platform, statistics, sys
ggml, ours = {}, {}
for line in open(sys.argv[1]):
    name, _, _, rate = line.split()
    ggml.setdefault(name.upper(), []).append(float(rate))
for line in open(sys.argv[2]):
    name, rate = line.split()
    ours.setdefault(name.upper(), []).append(float(rate))
print(f"{'type':<7} {'ggufmap':>8} {'ggml':>8} {'ratio':>7}")
for name in sorted(set(ggml) & set(ours)):
    o, g = statistics.median(ours[name]), statistics.median(ggml[name])
    print(f"{name:<7} {o:>8.2f} {g:>8.2f} {o / g:>6.2f}x")
if sys.argv[3] == "--blocks":
    # The committed reference the dequant bench reads.
    with open("benches/ggml_reference.txt", "w") as f:
        f.write("# ggml's to_float (ggml-base from the llama-cpp-python 0.3.36 sdist, -O3 for\n")
        f.write("# baseline x86-64), single thread, on the blocks of `cargo bench --features\n")
        f.write("# candle --bench dequant` (8 MiB of f32 output per type), median of\n")
        f.write(f"# {sys.argv[4]} rounds, GB/s of output. Made by\n")
        f.write(f"# `ROUNDS={sys.argv[4]} bash scripts/ggml_reference.sh --blocks` on\n")
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
        f.write(f"# {cpu}, {os.cpu_count()} cores, {datetime.date.today()}.\n")
        for name in sorted(ggml):
            f.write(f"{name} {statistics.median(ggml[name]):.2f}\n")
    print("wrote benches/ggml_reference.txt")
PY
