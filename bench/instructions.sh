#!/usr/bin/env bash
# Instructions per request of `moodb serve` and of `redis-server`, counted by callgrind over
# the whole server process (start-up, and on the moodb side every thread, included), for the
# same redis-benchmark load: SET and GET at -P 1 and -P 16, -c 10. Unlike requests/s, the counts
# do not depend on what else the machine runs, so two builds can be compared on a busy
# machine; they say nothing of system calls, cache misses or waits for the disk.
#
# Usage: bench/instructions.sh [sync]    sync: always (default) | never
# Environment: N (requests per test, default 50000), R (key space, 100000), D (value bytes, 64),
#              MOODB (path of the moodb binary; default: cargo build --release),
#              TESTS (default "set:1 set:16 get:1 get:16").
# This is a benchmark, not a test: it asserts nothing.
set -euo pipefail

SYNC=${1:-always}
N=${N:-50000}
R=${R:-100000}
D=${D:-64}
TESTS=${TESTS:-"set:1 set:16 get:1 get:16"}
. "$(dirname "$0")/common.sh"
moodb_binary
require valgrind redis-server redis-benchmark redis-cli python3
case "$SYNC" in
    always) FSYNC=always ;;
    never) FSYNC=no ;;
    *) echo "unknown sync policy $SYNC (always | never)" >&2; exit 2 ;;
esac

# run NAME TEST PIPELINE -> instructions per request, on stdout
run() {
    local name=$1 test=$2 pipeline=$3 port dir out
    port=$(free_port)
    dir=$(mktemp -d -p "$WORK")
    out="$dir/callgrind.out"
    if [[ $name == moodb ]]; then
        valgrind --tool=callgrind --callgrind-out-file="$out" \
            "$MOODB" serve --addr "127.0.0.1:$port" --data-dir "$dir/data" --sync "$SYNC" \
            --ready-file "$dir/ready" > "$dir/log" 2>&1 &
    else
        valgrind --tool=callgrind --callgrind-out-file="$out" \
            redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' \
            --appendonly yes --appendfsync "$FSYNC" > "$dir/log" 2>&1 &
    fi
    PID=$!
    for _ in $(seq 1200); do
        [[ "$(redis-cli -p "$port" ping 2>/dev/null)" == PONG ]] && break
        sleep 0.05
    done
    redis-benchmark -p "$port" -t "$test" -n "$N" -P "$pipeline" -c 10 -r "$R" -d "$D" -q \
        > /dev/null 2>&1
    redis-cli -p "$port" shutdown nosave > /dev/null 2>&1 || true
    wait "$PID" 2>/dev/null || true
    PID=""
    awk -v n="$N" '/^(summary|totals):/ { printf "%d", $2 / n; exit }' "$out"
}

printf "%-10s %12s %12s %7s   (instructions per request, callgrind, N=%s, sync %s)\n" \
    test moodb redis ratio "$N" "$SYNC"
for t in $TESTS; do
    test=${t%%:*}
    pipeline=${t##*:}
    m=$(run moodb "$test" "$pipeline")
    r=$(run redis "$test" "$pipeline")
    printf "%-10s %12s %12s %7s\n" "$test -P$pipeline" "$m" "$r" \
        "$(awk -v a="$m" -v b="$r" 'BEGIN { printf "%.2f", a / b }')"
done
