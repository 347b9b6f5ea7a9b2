#!/usr/bin/env bash
# The one-model figures of the README, on the real Gemma 3 270M model:
#
#   bash scripts/model_figures.sh
#
# - a split copy (3 parts, written by `Gguf::write_split` through
#   examples/split_model.rs) gives the single file's `inspect --json`
#   tensor table, `verify` counts, `dequant` bytes of every tensor and
#   `load --matmul` checksums;
# - `verify --stream`: peak anonymous and file-backed resident memory,
#   and wall time against the mapped path (warm cache), best of 3 each;
# - `load --as quantized --in-memory`: how many QTensors lend their blocks.
#
# Builds the release binary and example; fetches the model with
# scripts/fetch_gemma.sh. Uses a temporary directory for the parts.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --features cli,candle --bin ggufmap --example split_model
BIN=target/release/ggufmap
MODEL=$(bash scripts/fetch_gemma.sh)
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT

target/release/examples/split_model "$MODEL" "$DIR/gemma" >/dev/null
FIRST=$DIR/gemma-00001-of-00003.gguf
echo "split copy: $(ls "$DIR" | tr '\n' ' ')"

table() { "$BIN" inspect --json "$1" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps([[t[k] for k in ("name","dtype","dims","shape","bytes")] for t in d["tensors"]]))'; }
counts() { "$BIN" verify --json "$@" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps([d[k] for k in ("tensor_count","elements","tensor_bytes","nan","inf","tensors")]))'; }
[ "$(table "$MODEL")" = "$(table "$FIRST")" ] && echo "inspect --json tensor table: identical"
[ "$(counts "$MODEL")" = "$(counts "$FIRST")" ] && echo "verify counts: identical"
[ "$(counts "$MODEL")" = "$(counts "$FIRST" --stream)" ] && echo "verify --stream counts: identical"

names=$("$BIN" inspect --json "$MODEL" | python3 -c 'import json,sys; print("\n".join(t["name"] for t in json.load(sys.stdin)["tensors"]))')
differ=0
n=0
while read -r name; do
    a=$("$BIN" dequant "$MODEL" "$name" | sha256sum)
    b=$("$BIN" dequant "$FIRST" "$name" | sha256sum)
    c=$("$BIN" dequant "$FIRST" "$name" --stream | sha256sum)
    [ "$a" = "$b" ] && [ "$a" = "$c" ] || differ=$((differ + 1))
    n=$((n + 1))
done <<<"$names"
echo "dequant: $n tensors, $differ differ (split mapped and split streamed against the single file)"

checksum() { "$BIN" load --json --matmul "$@" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["after_matmul"]["checksum"], d["quantized"], d["mapped"])'; }
for as in quantized f16; do
    echo "load --as $as --matmul (checksum, quantized, lending their blocks): single $(checksum --as $as "$MODEL"); split $(checksum --as $as "$FIRST"); split streamed $(checksum --as $as "$FIRST" --stream)"
done
echo "load --as quantized --in-memory (checksum, quantized, lending their blocks): $(checksum --as quantized --in-memory "$MODEL")"

measure() {
    # Best wall time of 3, with the peak memory of that run.
    local best=""
    for _ in 1 2 3; do
        line=$("$BIN" verify --json "$@" | python3 -c 'import json,sys; d=json.load(sys.stdin); m=d["memory"]; print(d["wall_seconds"], m.get("peak_resident_bytes"), m.get("resident_anon_bytes"), m.get("resident_file_bytes"))')
        if [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if ${line%% *} < ${best%% *} else 1)"; then best=$line; fi
    done
    echo "$best"
}
cat "$MODEL" >/dev/null  # warm the page cache
for how in "" "--stream"; do
    for threads in 1 2; do
        # shellcheck disable=SC2086
        read -r wall peak anon file <<<"$(measure "$MODEL" --threads $threads $how)"
        printf 'verify %-8s --threads %d: %.3f s; peak resident %.1f MiB, at the end anonymous %.1f MiB, file-backed %.1f MiB\n' \
            "${how:-(mapped)}" "$threads" "$wall" "$(python3 -c "print($peak/2**20)")" "$(python3 -c "print($anon/2**20)")" "$(python3 -c "print($file/2**20)")"
    done
done
