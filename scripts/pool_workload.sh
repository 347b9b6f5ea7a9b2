#!/usr/bin/env bash
# The pool's workload figure: `verify` of a real model with builds of the
# pool side by side, runs interleaved so that whatever else the machine does
# slows them alike (in a new random order each round); prints the median
# wall time of each build at each thread count and its ratio to the first
# build.
#
#   bash scripts/pool_workload.sh MODEL ROUNDS BIN_A BIN_B [BIN_C...]
#
# Each BIN is a `ggufmap` binary built with one pool design (see the README:
# the builds compared were this tree, the tree before the pool was
# simplified, and this tree with one queue per class).
set -euo pipefail
MODEL=$1
ROUNDS=$2
shift 2
BINS=("$@")
THREADS=(${POOL_THREADS:-1 2 8})
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
cat "$MODEL" >/dev/null
for _ in $(seq "$ROUNDS"); do
    for t in "${THREADS[@]}"; do
        for b in $(printf '%s\n' "${BINS[@]}" | shuf); do
            wall=$("$b" verify --json --threads "$t" "$MODEL" | python3 -c 'import json,sys; print(json.load(sys.stdin)["wall_seconds"])')
            echo "$b $t $wall" >>"$OUT"
        done
    done
done
python3 - "$OUT" "${BINS[@]}" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
bins = sys.argv[2:]
for t in sorted({int(r[1]) for r in rows}):
    med = {b: statistics.median(float(r[2]) for r in rows if r[0] == b and int(r[1]) == t) for b in bins}
    base = med[bins[0]]
    print(f"threads {t}: " + "; ".join(f"{b.rsplit('/', 1)[-1]} {med[b] * 1e3:.1f} ms ({med[b] / base:.3f}x)" for b in bins))
PY
