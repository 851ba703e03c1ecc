#!/usr/bin/env bash
# Memory, recovery and checkpoint stalls of `moodb serve` against redis-server, in one run:
#  1. resident bytes per key after loading K keys (16-byte keys, 100-byte values) with
#     `redis-cli --pipe` (RSS growth over the empty server; redis's used_memory too);
#  2. recovery after kill -9: from a checkpoint (moodb SAVE; redis RDB SAVE) and from the log
#     alone (moodb with checkpoints off; redis AOF, appendfsync always): seconds from the start
#     of the process to its first answer (moodb: the ready file; redis: PING answered);
#  3. SET latency under load (redis-benchmark -c 50 -P 1 over the loaded keys): p50/p99/max
#     quiet, then with a checkpoint forced every 0.5 s (moodb BGSAVE, redis BGREWRITEAOF).
#
# Usage: bench/footprint.sh        Environment: K (keys, default 1000000), N (SETs per latency
# run, default 200000), MOODB (path of the moodb binary; default: cargo build --release).
# A benchmark, not a test: it asserts nothing and its figures depend on the machine.
set -euo pipefail

K=${K:-1000000}
N=${N:-200000}
. "$(dirname "$0")/common.sh"
moodb_binary
require redis-server redis-cli redis-benchmark python3

now() { date +%s.%N; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# The load: K SETs of key:%012d (16 bytes) to 100-byte values, as RESP.
python3 - "$K" > "$WORK/load.resp" <<'EOF'
import sys
k = int(sys.argv[1])
out = sys.stdout.buffer
value = b"v" * 100
for i in range(k):
    key = b"key:%012d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$16\r\n" + key + b"\r\n$100\r\n" + value + b"\r\n")
EOF

# --- moodb ---
start_moodb() { # data-dir extra-args... -> sets PID and TOOK (seconds to ready)
    local dir=$1; shift
    rm -f "$WORK/ready"
    local t0; t0=$(now)
    "$MOODB" serve --addr "127.0.0.1:$PORT" --data-dir "$dir" --sync always \
        --ready-file "$WORK/ready" "$@" 2>> "$WORK/moodb.log" &
    PID=$!
    for _ in $(seq 600); do [[ -e "$WORK/ready" ]] && break; sleep 0.01; done
    [[ -e "$WORK/ready" ]] || { echo "moodb did not become ready:" >&2; cat "$WORK/moodb.log" >&2; exit 1; }
    TOOK=$(elapsed "$t0" "$(now)")
}
start_redis() { # dir extra-args... -> sets PID and TOOK (seconds to the first PONG)
    local dir=$1; shift
    local t0; t0=$(now)
    redis-server --port "$PORT" --bind 127.0.0.1 --dir "$dir" --daemonize no "$@" \
        >> "$WORK/redis.log" 2>&1 &
    PID=$!
    for _ in $(seq 6000); do
        [[ "$(redis-cli -p "$PORT" ping 2>/dev/null)" == PONG ]] && break
        sleep 0.01
    done
    TOOK=$(elapsed "$t0" "$(now)")
}
kill9() { kill -9 "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }
load() { redis-cli -p "$PORT" --pipe < "$WORK/load.resp" > /dev/null; }
# settled_kb: RSS once no checkpoint runs (moodb's log-size trigger fires during a bulk load,
# and the snapshot it writes from keeps the table segments written since: a transient copy),
# then 0.5 s more.
settled_kb() {
    for _ in $(seq 200); do
        redis-cli -p "$PORT" info persistence | grep -q '^rdb_bgsave_in_progress:0' && break
        sleep 0.05
    done
    sleep 0.5
    rss_kb "$PID"
}
per_key() { awk -v a="$1" -v b="$2" -v k="$K" 'BEGIN { printf "%.0f", (b - a) * 1024 / k }'; }

# latency PREFIX CHECKPOINT-COMMAND -> "p50 p99 max" in ms (CSV of redis-benchmark 7)
latency() {
    local during=$1 ticker=""
    if [[ -n "$during" ]]; then
        ( while true; do redis-cli -p "$PORT" $during > /dev/null 2>&1 || true; sleep 0.5; done ) &
        ticker=$!
    fi
    redis-benchmark -h 127.0.0.1 -p "$PORT" -c 50 -n "$N" -r "$K" -d 100 -t set --csv 2>/dev/null \
        | awk -F, 'NR==2 { gsub(/"/, ""); print $5, $7, $8 }'
    if [[ -n "$ticker" ]]; then kill "$ticker"; wait "$ticker" 2>/dev/null || true; fi
}

PORT=$(free_port)
mkdir -p "$WORK/m1" "$WORK/m2" "$WORK/r1" "$WORK/r2"
start_moodb "$WORK/m1"
before=$(rss_kb "$PID"); load; after=$(rss_kb "$PID")
M_BPK=$(per_key "$before" "$after")
M_SETTLED=$(per_key "$before" "$(settled_kb)")
M_Q=$(latency "")
M_C=$(latency "BGSAVE")
redis-cli -p "$PORT" SAVE > /dev/null
kill9
start_moodb "$WORK/m1"; M_REC_CP=$TOOK
kill9
start_moodb "$WORK/m2" --checkpoint-log-bytes 0 --checkpoint-interval-ms 0
load
kill9
start_moodb "$WORK/m2" --checkpoint-log-bytes 0 --checkpoint-interval-ms 0; M_REC_LOG=$TOOK
kill9

# --- redis: RDB for the checkpoint figures, AOF (always) for the log ---
start_redis "$WORK/r1" --save "" --appendonly no
before=$(rss_kb "$PID"); load; after=$(rss_kb "$PID")
R_BPK=$(per_key "$before" "$after")
R_SETTLED=$(per_key "$before" "$(settled_kb)")
R_USED=$(redis-cli -p "$PORT" info memory | awk -F: '/^used_memory:/ { printf "%.0f", $2 / '"$K"' }')
redis-cli -p "$PORT" SAVE > /dev/null
kill9
start_redis "$WORK/r1" --save "" --appendonly no; R_REC_CP=$TOOK
kill9
start_redis "$WORK/r2" --save "" --appendonly yes --appendfsync always
load
R_Q=$(latency "")
R_C=$(latency "BGREWRITEAOF")
kill9
start_redis "$WORK/r2" --save "" --appendonly yes --appendfsync always; R_REC_LOG=$TOOK
kill9

ratio() { awk -v m="$1" -v r="$2" 'BEGIN { if (r > 0) printf "%.2f", m / r; else print "-" }'; }
echo "K=$K keys (16 B keys, 100 B values), loaded with redis-cli --pipe; N=$N SETs -c 50 per latency run"
printf "%-34s %10s %10s %7s\n" "" moodb redis ratio
printf "%-34s %10s %10s %7s\n" "resident B/key (RSS growth)" "$M_BPK" "$R_BPK" "$(ratio "$M_BPK" "$R_BPK")"
printf "%-34s %10s %10s %7s\n" "  the same, no checkpoint running" "$M_SETTLED" "$R_SETTLED" "$(ratio "$M_SETTLED" "$R_SETTLED")"
printf "%-34s %10s %10s\n" "redis used_memory B/key" "" "$R_USED"
printf "%-34s %10s %10s %7s\n" "recovery from checkpoint/RDB (s)" "$M_REC_CP" "$R_REC_CP" "$(ratio "$M_REC_CP" "$R_REC_CP")"
printf "%-34s %10s %10s %7s\n" "recovery from the log/AOF (s)" "$M_REC_LOG" "$R_REC_LOG" "$(ratio "$M_REC_LOG" "$R_REC_LOG")"
read -r mq50 mq99 mqmax <<< "$M_Q"; read -r mc50 mc99 mcmax <<< "$M_C"
read -r rq50 rq99 rqmax <<< "$R_Q"; read -r rc50 rc99 rcmax <<< "$R_C"
printf "%-34s %10s %10s\n" "SET p50 ms quiet / checkpointing" "$mq50/$mc50" "$rq50/$rc50"
printf "%-34s %10s %10s\n" "SET p99 ms quiet / checkpointing" "$mq99/$mc99" "$rq99/$rc99"
printf "%-34s %10s %10s\n" "SET max ms quiet / checkpointing" "$mqmax/$mcmax" "$rqmax/$rcmax"
printf "%-34s %10s %10s\n" "p99 checkpointing / quiet" "$(ratio "$mc99" "$mq99")" "$(ratio "$rc99" "$rq99")"
