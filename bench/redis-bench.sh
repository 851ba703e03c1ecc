#!/usr/bin/env bash
# Benchmarks `moodb serve` against `redis-server --appendonly yes` with the matching
# appendfsync, one after the other in the same run, with redis-benchmark: SET and GET at
# -c 50, with -P 1 and -P 16, and SET from one client (-c 1 -P 1, N1 requests). Prints
# requests/s for each and the ratio moodb/redis, and the server's CPU time per request (user +
# system, from /proc/<pid>/stat, in microseconds).
#
# Usage: bench/redis-bench.sh [sync]    sync: always (default) | every:1000 | never
# Environment: N (requests per test, default 200000), N1 (requests of the one-client test,
#              20000), R (key space, 100000), D (value bytes, 64),
#              MOODB (path of the moodb binary; default: cargo build --release).
# This is a benchmark, not a test: it asserts nothing and its figures depend on the machine.
set -euo pipefail

SYNC=${1:-always}
N=${N:-200000}
N1=${N1:-20000}
R=${R:-100000}
D=${D:-64}
. "$(dirname "$0")/common.sh"
moodb_binary
require redis-benchmark

case "$SYNC" in
    always) FSYNC=always ;;
    never) FSYNC=no ;;
    every*) FSYNC=everysec ;;
    *) echo "unknown sync policy $SYNC" >&2; exit 2 ;;
esac

TICKS=$(getconf CLK_TCK)
# cpu_ticks PID -> utime + stime of the process so far, in clock ticks
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# bench PID PORT PIPELINE TEST [CLIENTS REQUESTS] -> "requests/s cpu-us-per-request"
bench() {
    local before after rps c=${5:-50} n=${6:-$N}
    before=$(cpu_ticks "$1")
    rps=$(redis-benchmark -h 127.0.0.1 -p "$2" -c "$c" -n "$n" -r "$R" -d "$D" -P "$3" -t "$4" --csv 2>/dev/null \
        | awk -F, 'NR==2 { gsub(/"/, "", $2); print $2 }')
    after=$(cpu_ticks "$1")
    echo "$rps $(awk -v t=$((after - before)) -v hz="$TICKS" -v n="$n" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')"
}

run_all() {
    local pid=$1 port=$2 out=$3
    for p in 1 16; do
        for t in set get; do
            echo "$t P$p $(bench "$pid" "$port" "$p" "$t")" >> "$out"
        done
    done
    echo "set c1 $(bench "$pid" "$port" 1 set 1 "$N1")" >> "$out"
}

# moodb
MPORT=$(free_port)
"$MOODB" serve --addr "127.0.0.1:$MPORT" --data-dir "$WORK/moodb" --sync "$SYNC" \
    --ready-file "$WORK/moodb.ready" 2> "$WORK/moodb.log" &
PIDS+=($!)
for _ in $(seq 100); do [[ -e "$WORK/moodb.ready" ]] && break; sleep 0.1; done
[[ -e "$WORK/moodb.ready" ]] || { echo "moodb did not become ready:" >&2; cat "$WORK/moodb.log" >&2; exit 1; }
run_all "${PIDS[0]}" "$MPORT" "$WORK/moodb.txt"
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true

# redis, when installed
HAVE_REDIS=0
if command -v redis-server >/dev/null; then
    HAVE_REDIS=1
    RPORT=$(free_port)
    mkdir -p "$WORK/redis"
    redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$WORK/redis" --save "" \
        --appendonly yes --appendfsync "$FSYNC" --daemonize no > "$WORK/redis.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
    run_all "${PIDS[1]}" "$RPORT" "$WORK/redis.txt"
fi

echo "redis-benchmark -c 50 -n $N (-c 1: -n $N1) -r $R -d $D; moodb --sync $SYNC vs redis appendfsync $FSYNC"
printf "%-8s %14s %14s %8s %12s %12s\n" test "moodb req/s" "redis req/s" ratio "moodb cpu/req" "redis cpu/req"
while read -r t p m mc; do
    if [[ $HAVE_REDIS == 1 ]]; then
        r=$(awk -v t="$t" -v p="$p" '$1==t && $2==p { print $3 }' "$WORK/redis.txt")
        rc=$(awk -v t="$t" -v p="$p" '$1==t && $2==p { print $4 }' "$WORK/redis.txt")
        ratio=$(awk -v m="$m" -v r="$r" 'BEGIN { if (r > 0) printf "%.2f", m / r; else print "-" }')
    else
        r="-"; rc="-"; ratio="-"
    fi
    case "$p" in c1) label="${t^^} -c1" ;; *) label="${t^^} -$p" ;; esac
    printf "%-8s %14s %14s %8s %10sus %10sus\n" "$label" "$m" "$r" "$ratio" "$mc" "$rc"
done < "$WORK/moodb.txt"
