#!/usr/bin/env bash
# The figures of the edit / split / merge / export tools on Gemma 3 270M
# Q4_K_M (fetched by scripts/fetch_gemma.sh): peak resident memory
# (/usr/bin/time -v, "Maximum resident set size") and wall time.
#
#   1. edit one key (general.name) to a new file, beside `cp` of the same
#      file and gguf-py's gguf_new_metadata doing the same edit, same run;
#   2. split (--max-size 100M) then merge: cmp against the input, and the
#      parts accepted by `inspect` and `verify` as one model;
#   3. export --format safetensors --dtype f16.
#
# Usage: scripts/tool_figures.sh [MODEL]   (default: the fetched Gemma)
# Builds the release binary first; work files go to a temporary directory
# beside the model (same file system as the input, as `cp` would be) and
# are removed at the end. Peaks are whole resident sets: with the input
# mapped (the default) they include the file pages a copy touched, so the
# streamed (--stream) runs are given beside them. Each timed command runs RUNS times (default 3);
# the best wall time and the largest peak are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-$(bash scripts/fetch_gemma.sh)}
RUNS=${RUNS:-3}
cargo build --release --quiet --features cli
BIN=$PWD/target/release/ggufmap
WORK=$(mktemp -d "$(dirname "$MODEL")/tool-figures.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# measure LABEL CMD...: runs CMD $RUNS times under /usr/bin/time -v; prints
# the best wall time (s) and the largest peak RSS (MiB).
measure() {
    local label=$1 best="" peak=0 t rss
    shift
    for _ in $(seq "$RUNS"); do
        rm -f "$WORK"/out.* 2>/dev/null || true
        sync
        /usr/bin/time -v -o "$WORK/time.txt" "$@" >/dev/null
        t=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s}' "$WORK/time.txt")
        rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")
        if [ -z "$best" ] || awk "BEGIN {exit !($t < $best)}"; then best=$t; fi
        if [ "$rss" -gt "$peak" ]; then peak=$rss; fi
    done
    printf '%-44s %8.2f s %9.1f MiB\n' "$label" "$best" "$(awk "BEGIN {print $peak / 1024}")"
}

size=$(stat -c %s "$MODEL")
header=$("$BIN" inspect --json --no-tensors "$MODEL" | python3 -c 'import json, sys; print(json.load(sys.stdin)["data_start"])')
echo "model: $MODEL ($size bytes, header $header bytes = $(awk "BEGIN {printf \"%.1f\", $header / 1048576}") MiB)"
echo "runs: $RUNS (best wall time, largest peak RSS)"
echo
echo "== edit one key (general.name) =="
measure "cp" cp "$MODEL" "$WORK/out.cp"
# ggufmap syncs its output before the rename that commits it; cp does not.
measure "cp, then sync of the copy" sh -c 'cp "$1" "$2" && sync "$2"' sh "$MODEL" "$WORK/out.cp"
measure "ggufmap edit --set general.name=... -o OUT" \
    "$BIN" edit "$MODEL" -o "$WORK/out.gguf" --set "general.name=edited by ggufmap"
measure "ggufmap edit ... --no-sync (as cp: no sync)" \
    "$BIN" edit "$MODEL" -o "$WORK/out.gguf" --set "general.name=edited by ggufmap" --no-sync
measure "gguf_new_metadata --general-name ... (gguf-py)" \
    sh -c 'python3 -m gguf.scripts.gguf_new_metadata --general-name "edited by gguf-py" "$1" "$2" --force 2>/dev/null' sh "$MODEL" "$WORK/out.py.gguf"
"$BIN" edit "$MODEL" -o "$WORK/edited.gguf" --set "general.name=edited by ggufmap"
"$BIN" diff "$MODEL" "$WORK/edited.gguf"

echo
echo "== split (--max-size 100M) + merge =="
measure "ggufmap split --max-size 100M" "$BIN" split "$MODEL" --max-size 100M -o "$WORK/part"
first=$(ls "$WORK"/part-00001-of-*.gguf)
ls -l "$WORK"/part-*
"$BIN" inspect "$first" | grep -E "tensors|parts|file size"
"$BIN" verify "$first" | head -3
measure "ggufmap merge" "$BIN" merge "$first" -o "$WORK/out.merged.gguf"
# Mapped (the default), the input's pages the copy touched count in the
# resident set (file-backed, reclaimable); streamed they never do.
measure "ggufmap merge --stream" "$BIN" merge --stream "$first" -o "$WORK/out.merged.gguf"
measure "ggufmap split --stream --max-size 100M" "$BIN" split --stream "$MODEL" --max-size 100M -o "$WORK/out.part"
"$BIN" merge "$first" -o "$WORK/merged.gguf"
if cmp "$MODEL" "$WORK/merged.gguf"; then echo "split + merge: byte-identical (cmp)"; else echo "split + merge: DIFFERENT"; exit 1; fi
rm -f "$WORK"/part-* "$WORK/merged.gguf"

echo
echo "== export --format safetensors --dtype f16 =="
measure "ggufmap export safetensors f16" \
    "$BIN" export "$MODEL" --format safetensors --dtype f16 -o "$WORK/out.safetensors"
measure "ggufmap export safetensors f16 --stream" \
    "$BIN" export --stream "$MODEL" --format safetensors --dtype f16 -o "$WORK/out.safetensors"
"$BIN" export "$MODEL" --format safetensors --dtype f16 -o "$WORK/model.safetensors"
echo "safetensors: $(stat -c %s "$WORK/model.safetensors") bytes"
