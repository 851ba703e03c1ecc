//! Pub/Sub and keyspace notifications over the wire: the same steps against `moodb serve` and
//! a real redis-server 7 over raw TCP, in RESP2 and in RESP3, byte for byte (confirmations,
//! messages, PUBSUB, subscribed-mode errors, the keyspace events of every string and key
//! command that writes, and `expired`); and
//! a subscriber that never reads is disconnected at its output limit with bounded memory.
//! The differential test is skipped (with a message) when redis-server is not installed.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::thread::sleep;
use std::time::{Duration, Instant};

use moodb_tests::raw::{request, resident_bytes, Raw};
use moodb_tests::redis_server::RedisServer;
use moodb_tests::{ServerOptions, TestServer};

use crate::resp3::Wire;
use moodb_core::resp::Frame;

/// Which connection of a pair sends a step.
#[derive(Clone, Copy)]
enum Who {
    Sub,
    Pub,
}

/// One step: `who` sends `words` and reads `own` replies, then the subscriber reads `pushed`
/// messages ([`DRAIN`]: every message up to the reply of a PING it sends then).
struct Step {
    who: Who,
    words: &'static [&'static str],
    own: usize,
    pushed: usize,
}

/// Read the subscriber's messages up to a PING's reply (however many there are).
const DRAIN: usize = usize::MAX;

const fn s(who: Who, words: &'static [&'static str], own: usize, pushed: usize) -> Step {
    Step {
        who,
        words,
        own,
        pushed,
    }
}

use Who::{Pub as P, Sub as S};

struct Pair {
    sub: Wire,
    publ: Wire,
}

impl Pair {
    fn connect(addr: std::net::SocketAddr, proto3: bool) -> Pair {
        let mut pair = Pair {
            sub: Wire::connect(addr),
            publ: Wire::connect(addr),
        };
        if proto3 {
            pair.sub.ask(&["HELLO", "3"]);
            pair.publ.ask(&["HELLO", "3"]);
        }
        pair
    }

    /// Runs `step`, returning every reply's bytes in order.
    fn run(&mut self, step: &Step) -> Vec<String> {
        let wire = match step.who {
            Who::Sub => &mut self.sub,
            Who::Pub => &mut self.publ,
        };
        wire.send(step.words);
        let mut out: Vec<String> = (0..step.own)
            .map(|_| String::from_utf8_lossy(&wire.reply().0).into_owned())
            .collect();
        if step.pushed == DRAIN {
            self.sub.send(&["PING"]);
            loop {
                let (bytes, frame) = self.sub.reply();
                out.push(String::from_utf8_lossy(&bytes).into_owned());
                let pong = match &frame {
                    Frame::Simple(s) => s == "PONG",
                    Frame::Array(items) => items.first() == Some(&Frame::bulk("pong")),
                    _ => false,
                };
                if pong {
                    break;
                }
            }
            return out;
        }
        for _ in 0..step.pushed {
            out.push(String::from_utf8_lossy(&self.sub.reply().0).into_owned());
        }
        out
    }
}

fn steps(proto3: bool) -> Vec<Step> {
    let mut steps = vec![
        s(P, &["CONFIG", "SET", "notify-keyspace-events", "KEA"], 1, 0),
        s(P, &["CONFIG", "GET", "notify-keyspace-events"], 1, 0),
        s(P, &["CONFIG", "SET", "notify-keyspace-events", "KEQ"], 1, 0),
        s(P, &["CONFIG", "SET", "nosuch", "1"], 1, 0),
        s(S, &["SUBSCRIBE", "ch1", "ch2"], 2, 0),
        s(S, &["SUBSCRIBE", "ch1"], 1, 0),
        s(S, &["PSUBSCRIBE", "p*"], 1, 0),
        s(P, &["PUBLISH", "ch1", "hello"], 1, 1),
        s(P, &["PUBLISH", "pa", "x y"], 1, 1),
        s(P, &["PUBLISH", "nobody", "x"], 1, 0),
        s(P, &["PUBSUB", "CHANNELS", "ch1*"], 1, 0),
        s(P, &["PUBSUB", "NUMSUB", "ch1", "ch2", "nosuch"], 1, 0),
        s(P, &["PUBSUB", "NUMPAT"], 1, 0),
        s(P, &["PUBSUB", "CHANNELS", "a", "b"], 1, 0),
        s(P, &["PUBSUB", "foo"], 1, 0),
        s(S, &["PING"], 1, 0),
        s(S, &["PING", "hi"], 1, 0),
        s(S, &["GET", "k"], 1, 0),
        s(S, &["CONFIG", "GET", "x"], 1, 0),
        s(S, &["FROB"], 1, 0),
        // Keyspace notifications.
        s(S, &["PSUBSCRIBE", "__key*__:*"], 1, 0),
        s(P, &["SET", "k", "v"], 1, 2),
        s(P, &["SET", "k", "v", "EX", "100"], 1, 4),
        s(P, &["EXPIRE", "k", "200"], 1, 2),
        s(P, &["INCRBY", "n", "3"], 1, 2),
        s(P, &["APPEND", "k", "!"], 1, 2),
        s(P, &["RENAME", "k", "k2"], 1, 4),
        s(P, &["DEL", "k2", "n", "nosuch"], 1, 4),
        // Each command's events, however many Redis sends.
        s(P, &["SETEX", "a", "100", "1"], 1, DRAIN),
        s(P, &["PSETEX", "a", "100000", "1"], 1, DRAIN),
        s(P, &["SETNX", "a", "2"], 1, DRAIN),
        s(P, &["SETNX", "b", "2"], 1, DRAIN),
        s(P, &["GETSET", "a", "3"], 1, DRAIN),
        s(P, &["SET", "a", "4", "KEEPTTL", "GET"], 1, DRAIN),
        s(P, &["SET", "a", "5", "NX"], 1, DRAIN),
        s(P, &["MSET", "a", "1", "b", "2"], 1, DRAIN),
        s(P, &["MSETNX", "c", "1", "d", "2"], 1, DRAIN),
        s(P, &["MSETNX", "c", "1", "e", "2"], 1, DRAIN),
        s(P, &["GETEX", "a", "EX", "100"], 1, DRAIN),
        s(P, &["GETEX", "a", "PERSIST"], 1, DRAIN),
        s(P, &["GETEX", "a"], 1, DRAIN),
        s(P, &["PERSIST", "a"], 1, DRAIN),
        s(P, &["EXPIRE", "a", "100"], 1, DRAIN),
        s(P, &["PERSIST", "a"], 1, DRAIN),
        s(P, &["PEXPIREAT", "a", "1"], 1, DRAIN),
        s(P, &["INCR", "i"], 1, DRAIN),
        s(P, &["DECR", "i"], 1, DRAIN),
        s(P, &["DECRBY", "i", "5"], 1, DRAIN),
        s(P, &["INCRBYFLOAT", "i", "1.5"], 1, DRAIN),
        s(P, &["SETRANGE", "b", "3", "xyz"], 1, DRAIN),
        s(P, &["APPEND", "b", "!"], 1, DRAIN),
        s(P, &["GETDEL", "b"], 1, DRAIN),
        s(P, &["GETDEL", "b"], 1, DRAIN),
        s(P, &["COPY", "c", "c2"], 1, DRAIN),
        s(P, &["COPY", "c", "c2", "REPLACE"], 1, DRAIN),
        s(P, &["RENAME", "c", "c"], 1, DRAIN),
        s(P, &["RENAMENX", "c", "c3"], 1, DRAIN),
        s(P, &["UNLINK", "c2", "c3", "d"], 1, DRAIN),
        s(P, &["FLUSHDB"], 1, DRAIN),
        s(P, &["SET", "t", "v", "PX", "50"], 1, 4),
        // The active expiry cycle (hz 10 in both) deletes it: `expired`.
        s(P, &["PING"], 1, 2),
    ];
    if proto3 {
        // RESP3: any command while subscribed; the client's own messages come before the
        // reply of the command that published them.
        steps.extend([
            s(S, &["SET", "own", "v"], 3, 0),
            s(S, &["SUBSCRIBE", "me"], 1, 0),
            s(S, &["PUBLISH", "me", "hi"], 2, 0),
            s(S, &["GET", "own"], 1, 0),
        ]);
    }
    steps.extend([
        s(S, &["UNSUBSCRIBE", "ch1"], 1, 0),
        s(S, &["PUNSUBSCRIBE", "p*"], 1, 0),
        s(S, &["PUNSUBSCRIBE", "__key*__:*"], 1, 0),
        s(S, &["PUNSUBSCRIBE"], 1, 0),
    ]);
    if proto3 {
        steps.push(s(S, &["UNSUBSCRIBE", "me"], 1, 0));
    }
    steps.extend([
        s(S, &["UNSUBSCRIBE"], 1, 0),
        s(S, &["UNSUBSCRIBE"], 1, 0),
        s(S, &["GET", "nosuch"], 1, 0),
        s(S, &["PING"], 1, 0),
    ]);
    steps
}

#[test]
fn pubsub_and_keyspace_events_are_redis_7s_bytes_in_both_protocols() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let moodb = TestServer::start(ServerOptions::default()).unwrap();
    for proto3 in [false, true] {
        let mut ours = Pair::connect(moodb.addr, proto3);
        let mut theirs = Pair::connect(redis.addr(), proto3);
        for step in steps(proto3) {
            if step.words == ["PING"] && matches!(step.who, Who::Pub) {
                // Give the 50 ms key time to expire and the active cycles time to run.
                sleep(Duration::from_millis(400));
            }
            let what = format!(
                "RESP{} {}",
                if proto3 { 3 } else { 2 },
                step.words.join(" ")
            );
            assert_eq!(
                ours.run(&step),
                theirs.run(&step),
                "{what}: MooDB's bytes (left) differ from redis-server's (right)"
            );
        }
        // Leave the servers as they were for the next protocol.
        ours.publ.ask(&["FLUSHDB"]);
        theirs.publ.ask(&["FLUSHDB"]);
    }
}

fn with_config(ron: &str) -> TestServer {
    TestServer::start(ServerOptions {
        config: Some(ron.to_string()),
        ..ServerOptions::default()
    })
    .unwrap()
}

/// A subscriber that never reads, and a publisher sending 1 MB messages: returns the
/// publisher's number of messages sent and the server's largest resident size seen.
fn flood(s: &TestServer, messages: usize) -> (Raw, u64) {
    let mut sub = Raw::connect(s.addr).unwrap();
    sub.send(&request(&[b"SUBSCRIBE", b"ch"])).unwrap();
    sleep(Duration::from_millis(100));
    let mut con = s.connect().unwrap();
    let message = "m".repeat(1 << 20);
    let mut max_rss = 0;
    for _ in 0..messages {
        let _: i64 = redis::cmd("PUBLISH")
            .arg("ch")
            .arg(&message)
            .query(&mut con)
            .unwrap();
        max_rss = max_rss.max(s.pid().and_then(resident_bytes).unwrap_or(0));
    }
    (sub, max_rss)
}

#[test]
fn a_subscriber_that_never_reads_is_disconnected_at_the_hard_limit() {
    // Redis's defaults: 32 MB hard.
    let s = TestServer::start(ServerOptions::default()).unwrap();
    let (mut sub, max_rss) = flood(&s, 200);
    let got = sub.drain_to_close(Duration::from_secs(20)).unwrap();
    assert!(got < 200 << 20, "all {got} bytes were sent");
    assert!(s.stderr().contains("pubsub.hard_bytes"), "{}", s.stderr());
    assert!(
        max_rss < 150 << 20,
        "resident memory reached {max_rss} bytes"
    );
    // The publisher's messages now reach nobody; the server goes on.
    let mut con = s.connect().unwrap();
    let n: i64 = redis::cmd("PUBLISH")
        .arg("ch")
        .arg("x")
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn a_subscriber_above_the_soft_limit_for_its_seconds_is_disconnected() {
    let s = with_config("(pubsub: (hard_bytes: 0, soft_bytes: 1048576, soft_seconds: 1))");
    let (mut sub, _) = flood(&s, 8);
    let start = Instant::now();
    let mut con = s.connect().unwrap();
    while !s.stderr().contains("pubsub.soft_bytes") {
        assert!(start.elapsed() < Duration::from_secs(10), "{}", s.stderr());
        // The limit is checked when output is added, as in Redis.
        let _: i64 = redis::cmd("PUBLISH")
            .arg("ch")
            .arg("x")
            .query(&mut con)
            .unwrap();
        sleep(Duration::from_millis(200));
    }
    assert!(start.elapsed() >= Duration::from_millis(600));
    sub.drain_to_close(Duration::from_secs(20)).unwrap();
}
