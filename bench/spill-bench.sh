#!/usr/bin/env bash
# Data bigger than memory (issue 15): GET and SET throughput and p99 with a data set 4x
# maxmemory and a hot set, against the same workload all in memory and against sled, and the
# resident memory per key; in one run, same machine, same client (`moodb bench --server`, over
# RESP, 50 clients, keys key:%012d, --hot 20:80: 80% of operations on 20% of the keys).
#
#  1. paper, --maxmemory M (default 50mb): K keys (default 200000) of V-byte values (default
#     1024), so about 4x M of values, most of them in value segments;
#  2. paper, no maxmemory: everything in memory;
#  3. sled (--backend sled), no maxmemory.
# For each: the GET run first (`moodb bench` fills the K keys before it), then the SET run
# (overwrites, spilled again past M), each D seconds (default 20); resident memory (VmRSS)
# after the GET run, less the empty server's, per key. Prints one table and the ratios
# spill/in-memory and spill/sled.
#
# Usage: bench/spill-bench.sh     Environment: K, V, M, D, C (clients, default 50), HOT
# (default 20:80), MOODB (the moodb binary; default: cargo build --release).
# Quick check that it runs end to end: K=2000 V=1024 M=512kb D=1 bench/spill-bench.sh
# A benchmark, not a test: it asserts nothing and its figures depend on the machine.
set -euo pipefail

K=${K:-200000}
V=${V:-1024}
M=${M:-50mb}
D=${D:-20}
C=${C:-50}
HOT=${HOT:-20:80}
. "$(dirname "$0")/common.sh"
moodb_binary
require python3

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

start() { # name extra-args... -> sets PID, PORT, BASE_KB
    local name=$1; shift
    PORT=$(free_port)
    rm -f "$WORK/ready"
    "$MOODB" serve --addr "127.0.0.1:$PORT" --data-dir "$WORK/$name" --sync always \
        --ready-file "$WORK/ready" "$@" 2>> "$WORK/moodb.log" &
    PID=$!
    for _ in $(seq 600); do [[ -e "$WORK/ready" ]] && break; sleep 0.01; done
    [[ -e "$WORK/ready" ]] || { echo "moodb did not become ready:" >&2; cat "$WORK/moodb.log" >&2; exit 1; }
    BASE_KB=$(rss_kb "$PID")
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }

# bench WORKLOAD -> "ops/s p99" from the row of `moodb bench`'s table
bench() {
    "$MOODB" bench --server "127.0.0.1:$PORT" --workload "$1" --keys "$K" --value-size "$V" \
        --clients "$C" --duration "$D" --hot "$HOT" > "$WORK/bench.out"
    awk -F'|' '/^\| server / { gsub(/ /, "", $8); gsub(/ /, "", $10); print $8, $10 }' "$WORK/bench.out"
}

declare -A GET SET GETP99 SETP99 PERKEY SPILLED
run() { # name extra-args...
    local name=$1; shift
    start "$name" "$@"
    read -r GET[$name] GETP99[$name] < <(bench read)
    local rss; rss=$(rss_kb "$PID")
    PERKEY[$name]=$(awk -v a="$BASE_KB" -v b="$rss" -v k="$K" 'BEGIN { printf "%.0f", (b - a) * 1024 / k }')
    SPILLED[$name]=$(redis_info moodb_spilled_keys)
    read -r SET[$name] SETP99[$name] < <(bench write)
    stop
}
redis_info() { # field -> value from INFO memory, over a raw socket
    python3 - "$PORT" "$1" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"*2\r\n$4\r\nINFO\r\n$6\r\nmemory\r\n")
data = b""
while b"\r\n" not in data or len(data) < int(data.split(b"\r\n")[0][1:]) + len(data.split(b"\r\n")[0]) + 4:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
for line in data.decode().splitlines():
    if line.startswith(sys.argv[2] + ":"):
        print(line.split(":", 1)[1])
        break
else:
    print("-")
EOF
}

echo "spill-bench: $K keys x $V B (about $(( K * V / 1048576 )) MiB of values), maxmemory $M, hot set $HOT, $C clients, ${D}s per run"
run spill --maxmemory "$M"
run memory
run sled --backend sled

printf '\n| target | GET/s | GET p99 | SET/s | SET p99 | resident B/key | spilled keys |\n|---|---|---|---|---|---|---|\n'
for name in spill memory sled; do
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$name" "${GET[$name]}" "${GETP99[$name]}" \
        "${SET[$name]}" "${SETP99[$name]}" "${PERKEY[$name]}" "${SPILLED[$name]}"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo
echo "spill / in memory: GET $(ratio "${GET[spill]}" "${GET[memory]}"), SET $(ratio "${SET[spill]}" "${SET[memory]}") (aim: GET >= 0.5, SET about 1)"
echo "spill / sled:      GET $(ratio "${GET[spill]}" "${GET[sled]}"), SET $(ratio "${SET[spill]}" "${SET[sled]}")"
echo "resident per key:  spill ${PERKEY[spill]} B, in memory ${PERKEY[memory]} B, sled ${PERKEY[sled]} B"
