# Sourced by the bench scripts (`. "$(dirname "$0")/common.sh"`): the moodb binary, the tools a
# script needs, a scratch directory removed at exit with every server the script started, and
# a free port.
#
#   moodb_binary          MOODB, or a release build of this tree (cargo build --release)
#   require TOOL...       exits with a message naming the first tool not installed
#   WORK                  the scratch directory
#   PID / PIDS            the server (or servers) to kill -9 at exit; a script clears PID
#                         after stopping its server itself
#   free_port             a free TCP port on 127.0.0.1

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

moodb_binary() {
    if [[ -z "${MOODB:-}" ]]; then
        cargo build --release --quiet -p moodb --manifest-path "$ROOT/Cargo.toml"
        MOODB="$ROOT/target/release/moodb"
    fi
}

require() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || {
            echo "$tool not installed (redis-server, redis-cli, redis-benchmark: apt-get install redis-server redis-tools)" >&2
            exit 1
        }
    done
}

WORK=$(mktemp -d)
PID=""
PIDS=()
cleanup() {
    local pid
    for pid in ${PID:+"$PID"} ${PIDS[@]+"${PIDS[@]}"}; do
        # A server's children first (redis's BGREWRITEAOF / BGSAVE child writes into WORK).
        pkill -9 -P "$pid" 2>/dev/null || true
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK" 2>/dev/null || { sleep 0.5; rm -rf "$WORK"; }
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
