#!/usr/bin/env bash
# Instructions per call of each variant of the `per_call` bench (described in
# benches/support/calls.rs), counted by valgrind's callgrind: deterministic, so a regression
# shows on a noisy machine too.
#
#   benches/instructions.sh [VARIANT ...]      (default: every variant)
#
# Each variant runs twice under callgrind, with CALLS_LOW and CALLS_HIGH measured calls after
# the same warm-up; the difference of the two totals divided by the difference of the calls is
# what one call costs, with start-up, set-up and warm-up cancelled out. Needs `valgrind`
# (Debian: `apt-get install valgrind`).
set -euo pipefail
cd "$(dirname "$0")/.."

CALLS_LOW=${CALLS_LOW:-200}
CALLS_HIGH=${CALLS_HIGH:-1200}
VARIANTS=("$@")
if [ ${#VARIANTS[@]} -eq 0 ]; then
    VARIANTS=(bare shared retry ratelimit layers tower tower-full client client-send)
fi

command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }

# The bench binary, built as `cargo bench` builds it (optimized, with debug info off).
binary=$(cargo bench -p calm --bench per_call --no-run --message-format=json |
    sed -n 's/.*"executable":"\([^"]*per_call[^"]*\)".*/\1/p' | tail -n 1)
[ -x "$binary" ] || { echo "could not build the per_call bench" >&2; exit 1; }

# Instructions executed by the whole process for `calls` measured calls of `variant`.
total() {
    local variant=$1 calls=$2
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$binary" --bench --variants "$variant" --calls "$calls" --warmup 100 2>&1 >/dev/null |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

printf '%-12s %12s\n' variant instr/call
for variant in "${VARIANTS[@]}"; do
    low=$(total "$variant" "$CALLS_LOW")
    high=$(total "$variant" "$CALLS_HIGH")
    printf '%-12s %12d\n' "$variant" $(( (high - low) / (CALLS_HIGH - CALLS_LOW) ))
done
