"""redis-py 8 against a MooDB server, with redis-py's default options (so it opens every
connection with HELLO 3). Run by tests/tests/it/real_clients.rs:

    python3 tests/clients/python/redis_py_client.py PORT [PASSWORD]

Prints `ok` and exits 0 when every check passed; a failed check raises (exit 1)."""

import sys

import redis


def main() -> None:
    port = int(sys.argv[1])
    password = sys.argv[2] if len(sys.argv) > 2 else None
    major = int(redis.__version__.split(".")[0])
    assert major >= 8, f"redis-py {redis.__version__}: this test is for redis-py 8"

    r = redis.Redis(host="127.0.0.1", port=port, password=password)
    assert r.ping() is True
    # The connection speaks RESP3: HELLO with no version answers in it, as a map.
    hello = r.execute_command("HELLO")
    assert hello[b"proto"] == 3, hello
    assert hello[b"server"] == b"redis" and hello[b"mode"] == b"standalone", hello

    assert r.set("py:k", "v") is True
    assert r.get("py:k") == b"v"
    assert r.get("py:missing") is None
    assert r.set("py:k", "w", nx=True) is None
    assert r.incr("py:n") == 1
    assert r.incr("py:n", 41) == 42
    assert r.mget("py:k", "py:missing", "py:n") == [b"v", None, b"42"]
    assert r.delete("py:k", "py:n", "py:missing") == 2
    assert r.exists("py:k") == 0

    pipe = r.pipeline(transaction=False)
    pipe.set("py:p", 1).incr("py:p").get("py:p").get("py:nope")
    assert pipe.execute() == [True, 2, b"2", None]

    tx = r.pipeline(transaction=True)
    tx.set("py:t", "a").get("py:t").incr("py:tn")
    assert tx.execute() == [True, b"a", 1]

    # WATCH, a change from another client, then EXEC: aborted (RESP3's `_` nil).
    other = redis.Redis(host="127.0.0.1", port=port, password=password)
    with r.pipeline() as watched:
        watched.watch("py:t")
        watched.multi()
        watched.set("py:t", "mine")
        other.set("py:t", "theirs")
        try:
            watched.execute()
            raise AssertionError("EXEC after a watched key changed must abort")
        except redis.WatchError:
            pass
    assert r.get("py:t") == b"theirs"

    config = r.config_get("save")
    assert config == {"save": ""}, config
    info = r.info("keyspace")
    assert "db0" in info, info
    print("ok")


if __name__ == "__main__":
    main()
