#!/usr/bin/env bash
# Replicated writes, in one run: SET throughput of a 3-node moodb cluster on loopback
# (redis-benchmark against the leader, -c 50 and -c 1, -P 1), of a single moodb node with the
# same binary and sync policy, and of a 3-member etcd cluster on loopback (`etcdctl check perf`,
# which reports writes/s); then failover: kill -9 of the leader under a write load, to the
# first write acknowledged by the new one.
#
# Usage: bench/cluster-bench.sh    Environment: N (SETs at -c 50, default 50000), N1 (at -c 1,
# 5000), MOODB (the moodb binary; default: cargo build --release), ETCD_LOAD (check perf --load:
# s | m | l, default l). Needs redis-benchmark and, for the etcd line, etcd and etcdctl 3.4
# (Debian: etcd-server etcd-client); without them that line is skipped.
# A benchmark, not a test: it asserts nothing and its figures depend on the machine.
set -euo pipefail

N=${N:-50000}
N1=${N1:-5000}
ETCD_LOAD=${ETCD_LOAD:-l}
. "$(dirname "$0")/common.sh"
moodb_binary
require redis-benchmark

rps() { # redis-benchmark CSV -> requests/s of its one test
    awk -F'"' '/^"SET"/ { printf "%.0f", $4 }'
}
bench_set() { # port clients requests
    redis-benchmark -p "$1" -t set -n "$3" -c "$2" -P 1 -r 100000 -d 64 --csv 2>/dev/null | rps
}
now() { date +%s.%N; }

# --- a single node ---
SP=$(free_port)
"$MOODB" serve --addr "127.0.0.1:$SP" --data-dir "$WORK/single" --sync always \
    --ready-file "$WORK/single.ready" 2> "$WORK/single.log" &
PIDS+=($!)
for _ in $(seq 500); do [[ -e "$WORK/single.ready" ]] && break; sleep 0.01; done
S50=$(bench_set "$SP" 50 "$N")
S1=$(bench_set "$SP" 1 "$N1")
kill -9 "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'

# --- three nodes ---
declare -A CPORT RPORT PID
PEERS=""
for i in 1 2 3; do
    CPORT[$i]=$(free_port); RPORT[$i]=$(free_port)
    PEERS+="${PEERS:+,}$i=127.0.0.1:${RPORT[$i]}/127.0.0.1:${CPORT[$i]}"
done
start_node() { # id
    "$MOODB" serve --node-id "$1" --addr "127.0.0.1:${CPORT[$1]}" --peers "$PEERS" \
        --cluster-secret bench-secret --data-dir "$WORK/n$1" --sync always \
        2>> "$WORK/n$1.log" &
    PID[$1]=$!
    PIDS+=($!)
}
role_of() { redis-cli -p "${CPORT[$1]}" role 2>/dev/null | head -1; }
leader() { # -> id of the node that says master, or nothing
    for i in 1 2 3; do
        [[ -n "${PID[$i]:-}" ]] && [[ "$(role_of "$i")" == master ]] && { echo "$i"; return; }
    done
    return 0 # no leader yet: not a failure (set -e)
}
for i in 1 2 3; do start_node "$i"; done
L=""
for _ in $(seq 300); do L=$(leader); [[ -n "$L" ]] && break; sleep 0.05; done
[[ -n "$L" ]] || { echo "no leader elected:" >&2; cat "$WORK"/n*.log >&2; exit 1; }
# The first writes wait for the leader's first entry; warm up.
for _ in $(seq 100); do redis-cli -p "${CPORT[$L]}" set warm up 2>/dev/null | grep -q OK && break; sleep 0.05; done
C50=$(bench_set "${CPORT[$L]}" 50 "$N")
C1=$(bench_set "${CPORT[$L]}" 1 "$N1")

# Failover: writes from a background loop, kill -9 the leader, time to the first OK elsewhere.
OLD=$L
kill -9 "${PID[$OLD]}"; wait "${PID[$OLD]}" 2>/dev/null || true; PID[$OLD]=""
T0=$(now)
FAILOVER=""
OTHER=$(( OLD % 3 + 1 ))
for _ in $(seq 2000); do
    if [[ "$(redis-cli -p "${CPORT[$OTHER]}" set failover probe 2>/dev/null)" == OK ]]; then
        FAILOVER=$(awk -v a="$T0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
        break
    fi
    sleep 0.005
done

# The surviving nodes would hold CPU while etcd is measured.
for i in 1 2 3; do
    if [[ -n "${PID[$i]:-}" ]]; then kill -9 "${PID[$i]}" 2>/dev/null || true; wait "${PID[$i]}" 2>/dev/null || true; fi
done

# --- etcd, three members ---
E50=""
if command -v etcd >/dev/null && command -v etcdctl >/dev/null; then
    declare -A EC EP
    INITIAL=""
    for i in 1 2 3; do
        EC[$i]=$(free_port); EP[$i]=$(free_port)
        INITIAL+="${INITIAL:+,}e$i=http://127.0.0.1:${EP[$i]}"
    done
    for i in 1 2 3; do
        etcd --name "e$i" --data-dir "$WORK/e$i" \
            --listen-client-urls "http://127.0.0.1:${EC[$i]}" \
            --advertise-client-urls "http://127.0.0.1:${EC[$i]}" \
            --listen-peer-urls "http://127.0.0.1:${EP[$i]}" \
            --initial-advertise-peer-urls "http://127.0.0.1:${EP[$i]}" \
            --initial-cluster "$INITIAL" --initial-cluster-state new \
            > "$WORK/e$i.log" 2>&1 &
        PIDS+=($!)
    done
    ENDPOINTS="127.0.0.1:${EC[1]},127.0.0.1:${EC[2]},127.0.0.1:${EC[3]}"
    for _ in $(seq 200); do
        ETCDCTL_API=3 etcdctl --endpoints "$ENDPOINTS" endpoint health >/dev/null 2>&1 && break
        sleep 0.1
    done
    # check perf exits non-zero when its own thresholds fail; its throughput line is there.
    E50=$({ ETCDCTL_API=3 etcdctl --endpoints "$ENDPOINTS" check perf --load="$ETCD_LOAD" 2>&1 || true; } \
        | tee "$WORK/etcd-perf.txt" | awk '/Throughput/ { for (i = 1; i < NF; i++) if ($i ~ /^[0-9.]+$/ && $(i + 1) ~ /^writes/) { printf "%.0f", $i; exit } }')
    if [[ -z "$E50" ]]; then
        echo "etcd: no throughput line; check perf said:" >&2
        tr '\r' '\n' < "$WORK/etcd-perf.txt" | tail -5 >&2
        tail -3 "$WORK"/e1.log >&2
    fi
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }
printf "%-38s %12s\n" "durable SET/s, redis-benchmark -P 1" "requests/s"
printf "%-38s %12s\n" "moodb single node, -c 50" "$S50"
printf "%-38s %12s\n" "moodb 3-node cluster, -c 50" "$C50"
printf "%-38s %12s\n" "moodb single node, -c 1" "$S1"
printf "%-38s %12s\n" "moodb 3-node cluster, -c 1" "$C1"
printf "%-38s %12s\n" "etcd 3 members, check perf --load=$ETCD_LOAD" "${E50:--}"
printf "%-38s %12s\n" "cluster / single node (-c 50)" "$(ratio "$C50" "$S50")"
printf "%-38s %12s\n" "cluster / etcd" "$(ratio "$C50" "$E50")"
printf "%-38s %12s\n" "failover: kill -9 to first OK (s)" "${FAILOVER:-none}"
