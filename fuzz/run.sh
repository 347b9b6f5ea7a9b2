#!/usr/bin/env bash
# Runs every fuzz target of ggufmap for a bounded time, on the stable
# toolchain.
#
#   bash fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 60; the targets default to all of them
# (open dequantize roundtrip split candle). For each target it first replays the
# committed regressions (fuzz/regressions/<target>/), then fuzzes, seeded
# from fuzz/corpus-seed/<target>/, into the scratch corpus
# fuzz/corpus/<target>/ (gitignored; kept between runs, so long runs add
# up). Crashes land in fuzz/artifacts/<target>/. Exits non-zero if any
# target crashed, leaked past the limits or timed out.
#
# Environment:
#   FUZZ_SANITIZER  none (default: works on stable) or address (ASan; needs
#                   nightly, or RUSTC_BOOTSTRAP=1 on stable, which this script
#                   sets for it)
#   FUZZ_JOBS       parallel libFuzzer jobs per target (default 1)
#   FUZZ_CORPUS     scratch corpus root (default fuzz/corpus)
#
# Limits: -rss_limit_mb=512 (2048 under ASan), -malloc_limit_mb=128, -timeout=10 per input and
# a -max_len per target. Without a sanitizer libFuzzer sees no mallocs, so
# the targets also run under an allocator that aborts on any single
# allocation of 64 MiB or more (fuzz/src/lib.rs): with inputs of at most
# 64 KiB, only an allocation sized by an untrusted count gets there.
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.2
SECONDS_PER_TARGET=${1:-60}
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(open dequantize roundtrip split candle)
fi
SANITIZER=${FUZZ_SANITIZER:-none}
JOBS=${FUZZ_JOBS:-1}

cd "$(dirname "$0")"
FUZZ_DIR=$(pwd)
CORPUS_ROOT=${FUZZ_CORPUS:-$FUZZ_DIR/corpus}

# cargo-fuzz, pinned; nothing is installed when it is already there.
if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
    echo "installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --force
fi

build_flags=(--sanitizer "$SANITIZER" --debug-assertions --release)
RSS_LIMIT_MB=512
if [ "$SANITIZER" != none ]; then
    # Sanitizers are a -Z flag: let the stable compiler accept it.
    export RUSTC_BOOTSTRAP=1
    # ASan's shadow memory and quarantine count towards the RSS.
    RSS_LIMIT_MB=2048
fi

max_len() {
    case "$1" in
        open) echo 65536 ;;
        dequantize) echo 16384 ;;
        roundtrip) echo 8192 ;;
        split) echo 2048 ;;
        candle) echo 16384 ;;
        *) echo 4096 ;;
    esac
}

echo "building fuzz targets (sanitizer: $SANITIZER)"
cargo fuzz build "${build_flags[@]}"

failed=()
summary=()
for target in "${TARGETS[@]}"; do
    corpus="$CORPUS_ROOT/$target"
    seeds="$FUZZ_DIR/corpus-seed/$target"
    regressions="$FUZZ_DIR/regressions/$target"
    log="$CORPUS_ROOT/$target.log"
    mkdir -p "$corpus" "$seeds"
    limits=("-rss_limit_mb=$RSS_LIMIT_MB" -malloc_limit_mb=128 -timeout=10 "-max_len=$(max_len "$target")")

    if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
        echo "== $target: replaying regressions"
        if ! cargo fuzz run "${build_flags[@]}" "$target" "$regressions" -- -runs=0 "${limits[@]}"; then
            failed+=("$target (regression)")
            continue
        fi
    fi

    echo "== $target: fuzzing for ${SECONDS_PER_TARGET}s"
    jobs=()
    if [ "$JOBS" -gt 1 ]; then
        jobs=("-jobs=$JOBS" "-workers=$JOBS")
    fi
    status=0
    cargo fuzz run "${build_flags[@]}" "$target" "$corpus" "$seeds" -- \
        "-max_total_time=$SECONDS_PER_TARGET" "${limits[@]}" \
        -print_final_stats=1 "${jobs[@]}" >"$log" 2>&1 || status=$?
    # With -jobs libFuzzer writes one fuzz-N.log per job; fold them in.
    for job_log in "$FUZZ_DIR"/fuzz-*.log; do
        if [ -f "$job_log" ]; then
            cat "$job_log" >>"$log"
            rm -f "$job_log"
        fi
    done
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
    execs=$(grep -E 'stat::number_of_executed_units' "$log" | awk '{s += $2} END {print s + 0}')
    cov=$(sed -nE 's/.*cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+).*/cov \1, ft \2, corpus \3/p' <<<"$done_line")
    summary+=("$target: $execs executions, ${cov:-no coverage line}, exit $status")
    if [ "$status" -ne 0 ]; then
        failed+=("$target")
        tail -60 "$log"
    fi
done

echo
echo "== fuzz summary (${SECONDS_PER_TARGET}s per target, sanitizer $SANITIZER)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
    echo "FAILED: ${failed[*]} (inputs under fuzz/artifacts/)"
    exit 1
fi
echo "no crashes"
