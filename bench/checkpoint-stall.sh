#!/usr/bin/env bash
# SET latency while checkpoints run, moodb against redis in one run: K keys (16-byte keys,
# 100-byte values) loaded with `redis-cli --pipe`, then `redis-benchmark -c 50 -n N -r K -d 100
# -t set` quiet, and again with a checkpoint asked for every 0.5 s (moodb BGSAVE with its own
# triggers off; redis BGREWRITEAOF, appendfsync always). Prints p50/p99/max, SETs/s and how
# many checkpoints ran, ROUNDS times, alternating the two servers.
#
# Usage: bench/checkpoint-stall.sh   Environment: K (default 1000000), N (default 200000),
# ROUNDS (default 2), MOODB (the moodb binary; default: cargo build --release), MOODB_ARGS
# (more flags for moodb serve, e.g. --checkpoint-write-rate 16777216), BASE (another moodb
# binary, e.g. the tree before a change: run in the same rounds, as the line `base`).
# A benchmark, not a test: it asserts nothing and its figures depend on the machine.
set -euo pipefail

K=${K:-1000000}
N=${N:-200000}
ROUNDS=${ROUNDS:-2}
. "$(dirname "$0")/common.sh"
moodb_binary
require redis-server redis-cli redis-benchmark python3

PORT=$(free_port)

python3 - "$K" > "$WORK/load.resp" <<'PY'
import sys
out = sys.stdout.buffer
for i in range(int(sys.argv[1])):
    out.write(b"*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$100\r\n" % i + b"v" * 100 + b"\r\n")
PY

wait_ready() {
    for _ in $(seq 3000); do
        [[ "$(redis-cli -p "$PORT" ping 2>/dev/null)" == PONG ]] && return
        sleep 0.01
    done
    echo "server did not answer PING" >&2; exit 1
}
stop() { kill -9 "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }
# run CHECKPOINT-COMMAND ("" for quiet) -> "p50 p99 max rps"
run() {
    local during=$1 ticker=""
    if [[ -n "$during" ]]; then
        ( while true; do redis-cli -p "$PORT" "$during" > /dev/null 2>&1 || true; sleep 0.5; done ) &
        ticker=$!
    fi
    redis-benchmark -h 127.0.0.1 -p "$PORT" -c 50 -n "$N" -r "$K" -d 100 -t set --csv 2>/dev/null \
        | awk -F, 'NR==2 { gsub(/"/, ""); print $5, $7, $8, $2 }'
    if [[ -n "$ticker" ]]; then kill "$ticker"; wait "$ticker" 2>/dev/null || true; fi
}
line() { # name quiet checkpointing count
    read -r qp50 qp99 qmax qrps <<< "$2"
    read -r cp50 cp99 cmax crps <<< "$3"
    printf "%-6s %9s %9s %9s %9s %12s %6s %7s\n" "$1" "$qp99" "$qmax" "$cp99" "$cmax" \
        "$qrps/$crps" "$4" "$(awk -v a="$cp99" -v b="$qp99" 'BEGIN { printf "%.2f", a / b }')"
}

echo "K=$K keys, N=$N SETs -c 50 per run; a checkpoint asked for every 0.5 s; ms"
printf "%-6s %9s %9s %9s %9s %12s %6s %7s\n" server "quiet p99" "quiet max" "ckpt p99" "ckpt max" \
    "SETs/s q/c" ckpts "p99 c/q"
moodb_round() { # name binary
    rm -rf "$WORK/m"; mkdir -p "$WORK/m"
    "$2" serve --addr "127.0.0.1:$PORT" --data-dir "$WORK/m" --sync always \
        --checkpoint-log-bytes 0 --checkpoint-interval-ms 0 ${MOODB_ARGS:-} 2>> "$WORK/moodb.log" &
    PID=$!
    wait_ready
    redis-cli -p "$PORT" --pipe < "$WORK/load.resp" > /dev/null
    redis-cli -p "$PORT" SAVE > /dev/null
    before=$(redis-cli -p "$PORT" info persistence | awk -F: '/^rdb_saves:/ { print $2+0 }')
    quiet=$(run ""); busy=$(run BGSAVE)
    after=$(redis-cli -p "$PORT" info persistence | awk -F: '/^rdb_saves:/ { print $2+0 }')
    line "$1" "$quiet" "$busy" "$((after - before))"
    stop
}
for round in $(seq "$ROUNDS"); do
    moodb_round moodb "$MOODB"
    if [[ -n "${BASE:-}" ]]; then moodb_round base "$BASE"; fi

    rm -rf "$WORK/r"; mkdir -p "$WORK/r"
    redis-server --port "$PORT" --bind 127.0.0.1 --dir "$WORK/r" --appendonly yes \
        --appendfsync always --save "" --daemonize no >> "$WORK/redis.log" 2>&1 &
    PID=$!
    wait_ready
    redis-cli -p "$PORT" --pipe < "$WORK/load.resp" > /dev/null
    before=$(redis-cli -p "$PORT" info persistence | awk -F: '/^aof_rewrites:/ { print $2+0 }')
    quiet=$(run ""); busy=$(run BGREWRITEAOF)
    after=$(redis-cli -p "$PORT" info persistence | awk -F: '/^aof_rewrites:/ { print $2+0 }')
    line redis "$quiet" "$busy" "$((after - before))"
    stop
done
