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

    pubsub(r, other)
    info = r.info("keyspace")
    assert "db0" in info, info
    print("ok")


def next_message(ps, timeout: float = 5.0):
    """The next message (not a confirmation) on `ps`, or fails after `timeout` seconds."""
    msg = ps.get_message(ignore_subscribe_messages=True, timeout=timeout)
    assert msg is not None, "no message arrived"
    return msg


def pubsub(r, other) -> None:
    """Pub/Sub in RESP3 (push frames): channels, patterns, PUBSUB, keyspace events."""
    ps = r.pubsub()
    ps.subscribe("py:ch")
    confirm = ps.get_message(timeout=5.0)
    assert confirm == {"type": "subscribe", "pattern": None, "channel": b"py:ch", "data": 1}, confirm
    ps.psubscribe("py:p*")
    confirm = ps.get_message(timeout=5.0)
    assert confirm["type"] == "psubscribe" and confirm["data"] == 2, confirm
    assert other.publish("py:ch", "hello") == 1
    msg = next_message(ps)
    assert msg["type"] == "message" and msg["channel"] == b"py:ch", msg
    assert msg["data"] == b"hello", msg
    assert other.publish("py:pa", "x") == 1
    msg = next_message(ps)
    assert msg["type"] == "pmessage" and msg["pattern"] == b"py:p*", msg
    assert msg["channel"] == b"py:pa" and msg["data"] == b"x", msg
    assert other.pubsub_channels("py:*") == [b"py:ch"]
    assert other.pubsub_numsub("py:ch", "py:none") == [(b"py:ch", 1), (b"py:none", 0)]
    assert other.pubsub_numpat() == 1

    # Keyspace notifications, set by CONFIG SET.
    assert other.config_set("notify-keyspace-events", "KEA") is True
    assert other.config_get("notify-keyspace-events") == {"notify-keyspace-events": "AKE"}
    ps.subscribe("__keyevent@0__:set", "__keyspace@0__:py:ks")
    for _ in range(2):
        assert ps.get_message(timeout=5.0)["type"] == "subscribe"
    other.set("py:ks", "v")
    msg = next_message(ps)
    assert msg["channel"] == b"__keyspace@0__:py:ks" and msg["data"] == b"set", msg
    msg = next_message(ps)
    assert msg["channel"] == b"__keyevent@0__:set" and msg["data"] == b"py:ks", msg
    other.set("py:ks", "v", px=50)
    for want in (b"set", b"expire", b"expired"):
        msg = next_message(ps)
        while msg["channel"] != b"__keyspace@0__:py:ks":
            msg = next_message(ps)
        assert msg["data"] == want, (want, msg)
    assert other.config_set("notify-keyspace-events", "") is True

    ps.unsubscribe()
    ps.punsubscribe()
    ps.close()
    assert other.pubsub_numsub("py:ch") == [(b"py:ch", 0)]


if __name__ == "__main__":
    main()
