#!/usr/bin/env bash
# Benchmarks `moodb serve` against `redis-server --appendonly yes` with the matching
# appendfsync, with redis-benchmark: SET and GET at -c 50, with -P 1 and -P 16, and SET from one
# client (-c 1 -P 1, N1 requests). Both servers run for the whole script and take turns: each
# test runs ROUNDS times on each server, the order alternating from round to round, so that a
# change in the machine's speed (this machine's speed changes by 2x within minutes) falls on
# both. Prints, per test, the median requests/s of each server, the median of the rounds'
# ratios moodb/redis (and each round's ratio), and the median CPU time per request of each
# server (user + system from /proc/<pid>/stat, in microseconds).
#
# With BASE set to another moodb binary (the tree before a change), it runs in the same rounds
# as a third server, and a column moodb/base is added: an A/B comparison on a noisy machine.
#
# Usage: bench/redis-bench.sh [sync]    sync: always (default) | every:1000 | never
# Environment: N (requests per test, default 200000), N1 (requests of the one-client test,
#              20000), R (key space, 100000), D (value bytes, 64), ROUNDS (3),
#              TESTS (default "set:1 get:1 set:16 get:16 set:c1"; c1 is the one-client test),
#              MOODB (path of the moodb binary; default: cargo build --release), BASE,
#              MOODB_ARGS (more flags for moodb serve, e.g. --event-loop-cpu off),
#              REDIS_ARGS (more flags for redis-server), REDIS_CPUS (run redis-server under
#              `taskset -c REDIS_CPUS`, e.g. 1: Debian's redis 7.0 has no server-cpulist).
# This is a benchmark, not a test: it asserts nothing and its figures depend on the machine.
set -euo pipefail

SYNC=${1:-always}
N=${N:-200000}
N1=${N1:-20000}
R=${R:-100000}
D=${D:-64}
ROUNDS=${ROUNDS:-3}
TESTS=${TESTS:-"set:1 get:1 set:16 get:16 set:c1"}
. "$(dirname "$0")/common.sh"
moodb_binary
require redis-benchmark python3

case "$SYNC" in
    always) FSYNC=always ;;
    never) FSYNC=no ;;
    every*) FSYNC=everysec ;;
    *) echo "unknown sync policy $SYNC" >&2; exit 2 ;;
esac

TICKS=$(getconf CLK_TCK)
# cpu_ticks PID -> utime + stime of the process so far, in clock ticks
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# bench PID PORT PIPELINE TEST CLIENTS REQUESTS -> "requests/s cpu-us-per-request"
bench() {
    local before after rps
    before=$(cpu_ticks "$1")
    rps=$(redis-benchmark -h 127.0.0.1 -p "$2" -c "$5" -n "$6" -r "$R" -d "$D" -P "$3" -t "$4" --csv 2>/dev/null \
        | awk -F, 'NR==2 { gsub(/"/, "", $2); print $2 }')
    after=$(cpu_ticks "$1")
    echo "${rps:-0} $(awk -v t=$((after - before)) -v hz="$TICKS" -v n="$6" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')"
}

# The servers, by name: their pid and port.
declare -A SPID SPORT
SERVERS=()
start_moodb() { # NAME BINARY
    local port dir="$WORK/$1"
    port=$(free_port)
    # shellcheck disable=SC2086 # MOODB_ARGS is a list of flags
    "$2" serve --addr "127.0.0.1:$port" --data-dir "$dir" --sync "$SYNC" \
        --ready-file "$dir.ready" ${MOODB_ARGS:-} 2> "$dir.log" &
    PIDS+=($!)
    SPID[$1]=$!; SPORT[$1]=$port; SERVERS+=("$1")
    for _ in $(seq 100); do [[ -e "$dir.ready" ]] && break; sleep 0.1; done
    [[ -e "$dir.ready" ]] || { echo "$1 did not become ready:" >&2; cat "$dir.log" >&2; exit 1; }
}
start_moodb moodb "$MOODB"
if [[ -n "${BASE:-}" ]]; then start_moodb base "$BASE"; fi
if command -v redis-server >/dev/null; then
    port=$(free_port)
    mkdir -p "$WORK/redis"
    # shellcheck disable=SC2086 # REDIS_ARGS is a list of flags
    ${REDIS_CPUS:+taskset -c "$REDIS_CPUS"} redis-server --port "$port" --bind 127.0.0.1 --dir "$WORK/redis" --save "" \
        --appendonly yes --appendfsync "$FSYNC" --daemonize no ${REDIS_ARGS:-} > "$WORK/redis.log" 2>&1 &
    PIDS+=($!)
    SPID[redis]=$!; SPORT[redis]=$port; SERVERS+=(redis)
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    redis-cli -p "$port" ping >/dev/null 2>&1 || { echo "redis-server did not start:" >&2; cat "$WORK/redis.log" >&2; exit 1; }
fi

# Each test, ROUNDS times, every server in turn, the first one changing from round to round.
: > "$WORK/results.txt"
for test in $TESTS; do
    t=${test%%:*} p=${test##*:}
    for round in $(seq "$ROUNDS"); do
        n=${#SERVERS[@]}
        for i in $(seq 0 $((n - 1))); do
            s=${SERVERS[$(((i + round) % n))]}
            if [[ $p == c1 ]]; then
                result=$(bench "${SPID[$s]}" "${SPORT[$s]}" 1 "$t" 1 "$N1")
            else
                result=$(bench "${SPID[$s]}" "${SPORT[$s]}" "$p" "$t" 50 "$N")
            fi
            echo "$t $p $round $s $result" >> "$WORK/results.txt"
        done
    done
done

echo "redis-benchmark -c 50 -n $N (-c 1: -n $N1) -r $R -d $D; moodb --sync $SYNC vs redis" \
    "appendfsync $FSYNC; $ROUNDS rounds, the servers taking turns; medians"
python3 - "$WORK/results.txt" <<'EOF'
import sys
from statistics import median

rows = [line.split() for line in open(sys.argv[1])]
servers = [s for s in ("moodb", "base", "redis") if any(r[3] == s for r in rows)]
tests = list(dict.fromkeys((r[0], r[1]) for r in rows))
# (test, round, server) -> (requests/s, cpu us per request)
got = {((r[0], r[1]), r[2], r[3]): (float(r[4]), float(r[5])) for r in rows}
rounds = sorted({r[2] for r in rows}, key=int)

def ratios(test, a, b):
    out = []
    for rd in rounds:
        x, y = got.get((test, rd, a)), got.get((test, rd, b))
        if x and y and y[0] > 0:
            out.append(x[0] / y[0])
    return out

pairs = [(a, "redis") for a in ("moodb",) if "redis" in servers]
if "base" in servers:
    pairs.append(("moodb", "base"))
head = f"{'test':<9}" + "".join(f"{s + ' req/s':>14}" for s in servers)
width = 8 + 5 * len(rounds)
head += "".join(f"  {a + '/' + b:<{width}}" for a, b in pairs)
head += "".join(f"{s + ' cpu/req':>15}" for s in servers)
print(head)
for test in tests:
    t, p = test
    label = f"{t.upper()} -{p}" if p != "c1" else f"{t.upper()} -c1"
    line = f"{label:<9}"
    for s in servers:
        line += f"{median(got[(test, rd, s)][0] for rd in rounds):>14,.0f}"
    for a, b in pairs:
        rs = ratios(test, a, b)
        each = " ".join(f"{x:.2f}" for x in rs)
        line += f"  {median(rs):.2f} ({each})".ljust(width + 2)
    for s in servers:
        line += f"{median(got[(test, rd, s)][1] for rd in rounds):>13.2f}us"
    print(line)
EOF
