#!/usr/bin/env bash
# Instructions per call of each variant of the `per_call` bench (described in
# benches/support/calls.rs), counted by valgrind's callgrind: deterministic, so a regression
# shows on a noisy machine too.
#
#   benches/instructions.sh [VARIANT ...]      (default: every variant)
#
# Each variant runs once under callgrind, counting only the instructions executed inside the
# bench's `measured_calls` (`--toggle-collect`): start-up, set-up and warm-up are left out, so
# the count divided by the calls is what one call costs. Needs `valgrind`
# (Debian: `apt-get install valgrind`).
set -euo pipefail
cd "$(dirname "$0")/.."

CALLS=${CALLS:-2000}
VARIANTS=("$@")
if [ ${#VARIANTS[@]} -eq 0 ]; then
    VARIANTS=(bare shared retry ratelimit layers tower tower-full client client-send client-info client-debug)
fi

command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }

# The bench binary, built as `cargo bench` builds it (optimized, with debug info off).
binary=$(cargo bench -p calm --bench per_call --no-run --message-format=json |
    sed -n 's/.*"executable":"\([^"]*per_call[^"]*\)".*/\1/p' | tail -n 1)
[ -x "$binary" ] || { echo "could not build the per_call bench" >&2; exit 1; }

# Instructions executed inside `measured_calls` for CALLS calls of `variant`.
measured() {
    local variant=$1
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        --toggle-collect='per_call::measured_calls' \
        "$binary" --bench --variants "$variant" --calls "$CALLS" --warmup 100 2>&1 >/dev/null |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

printf '%-12s %12s\n' variant instr/call
for variant in "${VARIANTS[@]}"; do
    total=$(measured "$variant")
    printf '%-12s %12d\n' "$variant" $(( total / CALLS ))
done
