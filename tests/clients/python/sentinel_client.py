"""redis-py 8's `Sentinel` against a three-node MooDB cluster whose nodes act as its sentinels.
Run by tests/tests/it/cluster_sentinel.rs:

    python3 tests/clients/python/sentinel_client.py PORT1,PORT2,PORT3

It discovers the master (`SENTINEL MASTERS` on a sentinel), writes and reads through
`master_for("mymaster")`, lists the replicas, and prints `master HOST:PORT`. Then it waits
for a line on stdin (the test has killed that master with SIGKILL), keeps asking the
sentinels until they name another master (at most 15 s), writes and reads there, checks the
first value survived, prints `master HOST:PORT` again and `ok`. A failed check raises (exit 1).
"""

import sys
import time

import redis
from redis.sentinel import MasterNotFoundError, Sentinel


def main() -> None:
    ports = [int(p) for p in sys.argv[1].split(",")]
    sentinel = Sentinel(
        [("127.0.0.1", p) for p in ports], socket_timeout=2.0, socket_connect_timeout=2.0
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            first = sentinel.discover_master("mymaster")
            break
        except MasterNotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    replicas = sentinel.discover_slaves("mymaster")
    assert len(replicas) == 2 and first not in replicas, (first, replicas)
    master = sentinel.master_for("mymaster", socket_timeout=2.0)
    assert master.set("sentinel:k", "before") is True
    assert master.get("sentinel:k") == b"before"
    print(f"master {first[0]}:{first[1]}", flush=True)

    sys.stdin.readline()  # the test killed that master
    deadline = time.monotonic() + 15
    second = None
    while time.monotonic() < deadline:
        try:
            found = sentinel.discover_master("mymaster")
            if found != first:
                second = found
                break
        except MasterNotFoundError:
            pass
        time.sleep(0.1)
    assert second is not None, "the sentinels never named a new master"
    # master_for's pool follows the sentinels: the same object now reaches the new master.
    deadline = time.monotonic() + 15
    while True:
        try:
            assert master.set("sentinel:k2", "after") is True
            break
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            # TRYAGAIN while the new leader settles, or the old connection gone.
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert master.get("sentinel:k2") == b"after"
    assert master.get("sentinel:k") == b"before", "an acknowledged write was lost"
    print(f"master {second[0]}:{second[1]}", flush=True)
    print("ok", flush=True)


if __name__ == "__main__":
    main()
