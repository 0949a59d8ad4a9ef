#!/usr/bin/env bash
# Instructions per request of the loopback bench's client side, counted by valgrind's
# callgrind: a figure for the real path (hyper, the connection, calm's whole stack) that is
# the same on every run, where requests/s on a shared machine move by several percent.
#
#   benches/loopback_instructions.sh [VARIANT ...]   (default: raw tower tower-full layers calm-over-raw calm)
#
# Each variant runs once under callgrind (`--separate-threads=yes`): one round of REQUESTS
# requests one at a time and REQUESTS 32 at a time, each after WARMUP warm-up requests, against
# a calm-mock server in the same process. The count is that of the client runtime's thread
# (the one that drives the requests and their connections; the server's thread is left out),
# divided by every request it sent, warm-ups included. Needs `valgrind`.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-2000}
WARMUP=${WARMUP:-200}
VARIANTS=("$@")
if [ ${#VARIANTS[@]} -eq 0 ]; then
    VARIANTS=(raw tower tower-full layers calm-over-raw calm)
fi

command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }

binary=$(cargo bench -p calm --bench loopback --no-run --message-format=json |
    sed -n 's/.*"executable":"\([^"]*loopback[^"]*\)".*/\1/p' | tail -n 1)
[ -x "$binary" ] || { echo "could not build the loopback bench" >&2; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
sent=$(( 2 * (WARMUP + REQUESTS) ))

printf '%-14s %12s\n' variant instr/req
for variant in "${VARIANTS[@]}"; do
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out/$variant" \
        "$binary" --bench --variants "$variant" --rounds 1 \
        --sequential "$REQUESTS" --concurrent "$REQUESTS" --warmup "$WARMUP" >/dev/null 2>&1
    # NOTE: the client thread is the one whose profile holds the bench's sending loop.
    total=0
    for file in "$out/$variant"-*; do
        if grep -q 'loopback::drive' "$file"; then
            count=$(sed -n 's/^summary: \([0-9]*\)/\1/p' "$file")
            total=$(( total + count ))
        fi
    done
    [ "$total" -gt 0 ] || { echo "no client thread found for $variant" >&2; exit 1; }
    printf '%-14s %12d\n' "$variant" $(( total / sent ))
    rm -f "$out/$variant"*
done
