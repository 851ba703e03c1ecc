//! The random differential test: seeded random command sequences over a small key space (so
//! commands collide) go to a real redis-server 7 and to `moodb serve`, and every reply must be
//! the same bytes, in RESP2 and in RESP3. Families: strings (every command and SET option,
//! integer and float edge values, GETRANGE/SETRANGE offsets, LCS), keys (the EXPIRE family with
//! NX/XX/GT/LT, TTL, PERSIST, TYPE, RENAME, COPY, DEL/UNLINK/EXISTS/TOUCH, KEYS/SCAN with
//! patterns, OBJECT), transactions (MULTI/EXEC/DISCARD/WATCH, errors inside MULTI, a second
//! connection's writes to watched keys), databases (SELECT/MOVE/SWAPDB/FLUSHDB/DBSIZE), Pub/Sub
//! (a subscriber connection on each side) and wrong-arity/syntax/unknown-command inputs.
//!
//! Each seed runs three times on fresh servers: in RESP2, in RESP3, and in RESP3 with
//! `notify-keyspace-events KEA` on both servers (the subscriber's patterns include
//! `__key*__:*`). Each side has three connections: `main` (most commands), `other` (writes
//! that race with `main`'s WATCH) and `sub` (the subscriber). After every subscriber command,
//! after every PUBLISH or EXEC on `main`, and with notifications after every command, the
//! subscriber is sent `PING <marker>` and read up to the marker's reply, so what it received
//! in between is compared too.
//!
//! **Normalisation** (everything else is compared byte for byte):
//! - TTL/PTTL/EXPIRETIME/PEXPIRETIME: two non-negative integers are equal within 2 s / 2000 ms
//!   (relative expiries are computed from each server's clock). Relative expiries are long
//!   (≥ 100 s) so no key expires during a run; GT/LT are generated only with absolute times
//!   (EXPIREAT/PEXPIREAT around 2100-01-01, or in the past), so their outcome is deterministic.
//! - KEYS, PUBSUB CHANNELS: the array's elements are sorted (hash-table order in Redis).
//! - SCAN: iterated to cursor 0 on each side; the sorted set of keys is compared (cursors are
//!   hash positions).
//! - RANDOMKEY: only nil versus a key.
//! - The messages a subscriber receives between two markers are sorted (Redis delivers
//!   pattern matches in hash-table order); UNSUBSCRIBE / PUNSUBSCRIBE without arguments: the
//!   names are compared sorted, the rest of each confirmation in order (ARCHITECTURE.md, Pub/Sub
//!   "Differences from Redis").
//! - Inside MULTI only commands compared byte for byte are queued (EXEC's array would hold the
//!   others' replies).
//!
//! Not generated: SUBSCRIBE on `main` inside MULTI (ARCHITECTURE.md, Pub/Sub "Differences from
//! Redis"), OBJECT ENCODING/REFCOUNT ("Deliberately absent": from the value, not its history),
//! OBJECT IDLETIME (the clock), PUBSUB HELP ("Deliberately absent": no sharded pub/sub),
//! non-UTF-8 arguments ("Deliberately absent": error texts are UTF-8), SET EXAT/PXAT with a
//! valid time in the past ("Deliberately absent": DBSIZE counts live keys only), and the
//! commands other branches own (CLIENT, INFO, CONFIG, SLOWLOG, ...).
//!
//! Environment: `MOODB_DIFF_SEED` replays one seed (else a random one, printed),
//! `MOODB_DIFF_COMMANDS` sets the commands per run (default 2000), `MOODB_DIFF_SEEDS`
//! runs that many seeds from the first (default 1). A long local run:
//! `MOODB_DIFF_SEEDS=20 MOODB_DIFF_COMMANDS=20000 cargo test -p moodb-tests --test it
//! differential_random -- --nocapture`.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::net::SocketAddr;

use moodb_core::resp::{decode_frame, Frame};
use moodb_tests::redis_server::RedisServer;
use moodb_tests::{ServerOptions, TestServer};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::resp3::Wire;

/// Which connection a step is sent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum On {
    Main,
    Other,
    Sub,
}

/// How a step's replies are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Exact,
    /// Two non-negative integers within this much are equal.
    Ttl(i64),
    /// A flat array whose element order legitimately differs.
    Sorted,
    /// SCAN iterated to the end; the sorted keys.
    Scan,
    /// Nil or not.
    RandomKey,
    /// (P)UNSUBSCRIBE without arguments on the subscriber: names sorted.
    UnsubscribeAll,
}

struct Step {
    on: On,
    args: Vec<String>,
    cmp: Cmp,
}

impl Step {
    fn new(on: On, args: Vec<String>, cmp: Cmp) -> Step {
        Step { on, args, cmp }
    }
}

/// One server's three connections.
struct Side {
    main: Wire,
    other: Wire,
    sub: Wire,
    /// Keyspace notifications are on: the subscriber is drained after every command.
    notify: bool,
}

impl Side {
    fn open(addr: SocketAddr, proto: u8, notify: bool) -> Side {
        let mut side = Side {
            main: Wire::connect(addr),
            other: Wire::connect(addr),
            sub: Wire::connect(addr),
            notify,
        };
        if proto == 3 {
            // HELLO's reply differs (id, version): resp3.rs compares it.
            for wire in [&mut side.main, &mut side.other, &mut side.sub] {
                wire.ask(&["HELLO", "3"]);
            }
        }
        side
    }

    /// Sends `PING marker` to the subscriber and returns every frame it received before the
    /// marker's reply, and that reply.
    fn drain_sub(&mut self, marker: &str) -> (Vec<Vec<u8>>, Vec<u8>) {
        self.sub.send(&["PING", marker]);
        let mut frames = Vec::new();
        loop {
            let (bytes, frame) = self.sub.reply();
            let is_marker = match &frame {
                Frame::Bulk(b) => &b[..] == marker.as_bytes(),
                Frame::Array(items) | Frame::Push(items) => {
                    items.len() == 2 && items[1] == Frame::bulk(marker)
                }
                _ => false,
            };
            if is_marker {
                return (frames, bytes);
            }
            frames.push(bytes);
            assert!(frames.len() < 10_000, "the subscriber never answered PING");
        }
    }

    /// Runs one step; returns the raw bytes seen and what is compared.
    fn run(&mut self, step: &Step, marker: &str) -> (Vec<u8>, Vec<u8>) {
        let words: Vec<&str> = step.args.iter().map(String::as_str).collect();
        match step.on {
            On::Other => {
                let raw = self.other.ask(&words).0;
                if self.notify {
                    self.with_messages(raw.clone(), raw, marker)
                } else {
                    (raw.clone(), raw)
                }
            }
            On::Sub => {
                self.sub.send(&words);
                let (frames, pong) = self.drain_sub(marker);
                let mut raw: Vec<u8> = frames.concat();
                raw.extend_from_slice(&pong);
                let norm = if step.cmp == Cmp::UnsubscribeAll {
                    unsubscribe_all(&frames, &pong)
                } else {
                    raw.clone()
                };
                (raw, norm)
            }
            On::Main => {
                let (raw, norm) = match step.cmp {
                    Cmp::Scan => self.scan(&words),
                    _ => {
                        let (raw, frame) = self.main.ask(&words);
                        let norm = normalize(step.cmp, &raw, &frame);
                        (raw, norm)
                    }
                };
                let name = step.args[0].to_ascii_uppercase();
                if self.notify || name == "PUBLISH" || name == "EXEC" {
                    self.with_messages(raw, norm, marker)
                } else {
                    (raw, norm)
                }
            }
        }
    }

    /// `raw` and `norm` followed by the messages the subscriber received meanwhile (sorted:
    /// Redis delivers pattern matches in hash-table order).
    fn with_messages(
        &mut self,
        mut raw: Vec<u8>,
        mut norm: Vec<u8>,
        marker: &str,
    ) -> (Vec<u8>, Vec<u8>) {
        let (mut frames, _) = self.drain_sub(marker);
        frames.sort();
        raw.extend_from_slice(b" || subscriber got: ");
        norm.extend_from_slice(b" || subscriber got: ");
        for f in frames {
            raw.extend_from_slice(&f);
            norm.extend_from_slice(&f);
        }
        (raw, norm)
    }

    /// SCAN from `words` (whose cursor is 0) to the end: every key, sorted and deduplicated.
    fn scan(&mut self, words: &[&str]) -> (Vec<u8>, Vec<u8>) {
        let mut args: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let mut raw = Vec::new();
        for _ in 0..100_000 {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let (bytes, frame) = self.main.ask(&refs);
            raw.extend_from_slice(&bytes);
            let Frame::Array(items) = &frame else {
                return (raw.clone(), raw);
            };
            let [Frame::Bulk(cursor), Frame::Array(batch)] = &items[..] else {
                return (raw.clone(), raw);
            };
            for k in batch {
                if let Frame::Bulk(k) = k {
                    keys.push(k.to_vec());
                }
            }
            if &cursor[..] == b"0" {
                keys.sort();
                keys.dedup();
                let mut norm = b"SCAN keys:".to_vec();
                for k in keys {
                    norm.push(b' ');
                    norm.extend_from_slice(&k);
                }
                return (raw, norm);
            }
            args[1] = String::from_utf8_lossy(cursor).into_owned();
        }
        panic!(
            "{words:?} did not reach cursor 0 in 100000 calls; the last: {}",
            shown(&raw[raw.len().saturating_sub(300)..])
        );
    }
}

/// What is compared of a reply under `cmp` (the raw bytes when the reply has another shape).
fn normalize(cmp: Cmp, raw: &[u8], frame: &Frame) -> Vec<u8> {
    match (cmp, frame) {
        (Cmp::Ttl(_), Frame::Integer(n)) if *n >= 0 => format!("ttl {n}").into_bytes(),
        (Cmp::Sorted, Frame::Array(_) | Frame::Set(_)) => {
            let (header, mut items) = split_aggregate(raw);
            items.sort();
            let mut out = header;
            out.extend(items.concat());
            out
        }
        (Cmp::RandomKey, Frame::Bulk(_)) => b"a key".to_vec(),
        _ => raw.to_vec(),
    }
}

/// A top-level aggregate's header line and the raw bytes of each element.
fn split_aggregate(raw: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let header_end = raw.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let mut at = header_end;
    let mut items = Vec::new();
    while at < raw.len() {
        let (_, used) = decode_frame(&raw[at..]).unwrap().unwrap();
        items.push(raw[at..at + used].to_vec());
        at += used;
    }
    (raw[..header_end].to_vec(), items)
}

/// The confirmations of an UNSUBSCRIBE without arguments: the names sorted, then each
/// confirmation without its name, in order.
fn unsubscribe_all(frames: &[Vec<u8>], pong: &[u8]) -> Vec<u8> {
    let mut names = Vec::new();
    let mut rest = Vec::new();
    for bytes in frames {
        let (frame, _) = decode_frame(bytes).unwrap().unwrap();
        match frame {
            Frame::Array(items) | Frame::Push(items) if items.len() == 3 => {
                names.push(format!("{:?}", items[1]));
                rest.push(format!("{:?} {:?} {:?}", bytes[0], items[0], items[2]));
            }
            other => rest.push(format!("{other:?}")),
        }
    }
    names.sort();
    format!("{names:?} {rest:?} {}", String::from_utf8_lossy(pong)).into_bytes()
}

/// Whether two compared forms agree under `cmp`.
fn agree(cmp: Cmp, ours: &[u8], theirs: &[u8]) -> bool {
    if let Cmp::Ttl(tolerance) = cmp {
        // "ttl N", then what the subscriber got (compared exactly).
        let split = |b: &[u8]| -> Option<(i64, Vec<u8>)> {
            let s = std::str::from_utf8(b).ok()?.strip_prefix("ttl ")?;
            let end = s.find(' ').unwrap_or(s.len());
            Some((s[..end].parse().ok()?, s.as_bytes()[end..].to_vec()))
        };
        if let (Some((a, rest_a)), Some((b, rest_b))) = (split(ours), split(theirs)) {
            return (a - b).abs() <= tolerance && rest_a == rest_b;
        }
    }
    ours == theirs
}

// ---------------------------------------------------------------------------------------------
// The generator.

const KEYS: &[&str] = &["k0", "k1", "k2", "k3", "k4"];
const RARE_KEYS: &[&str] = &["", "K0", "k0\u{0}x", "{k}1", "*", "a\r\nb"];
const VALUES: &[&str] = &[
    "",
    "0",
    "1",
    "-1",
    "10",
    "007",
    "+1",
    " 1",
    "1 ",
    "3.5",
    "-0",
    "1e3",
    "0x10",
    "inf",
    "abc",
    "hello world",
    "ohmytext",
    "mynewtext",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "12345678901234567890",
    "1.7976931348623157e308",
    "0.1",
    "caf\u{e9}",
    "a\u{0}b",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];
const INCR_BY: &[&str] = &[
    "1",
    "-1",
    "0",
    "100",
    "-100",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "abc",
    "",
    "1.5",
    " 1",
    "+5",
    "007",
];
const FLOATS: &[&str] = &[
    "0.1",
    "-0.1",
    "1",
    "-1.5",
    "1e308",
    "-1e308",
    "5e-324",
    "1e-20",
    "3.0e3",
    "1.7976931348623157e308",
    "0x10",
    "nan",
    "inf",
    "-inf",
    "abc",
    "",
    " 1",
    "1e400",
    "1e5000",
    ".5",
    "5.",
    "-0",
    "12345678901234567890123",
];
const OFFSETS: &[&str] = &[
    "0",
    "1",
    "2",
    "5",
    "10",
    "-1",
    "-2",
    "-5",
    "-100",
    "100",
    "abc",
    "",
    "9223372036854775807",
    "-9223372036854775808",
];
/// SETRANGE offsets: small ones (the value stays small), and the refused ones.
const SET_OFFSETS: &[&str] = &["0", "1", "3", "10", "50", "-1", "536870912", "abc", ""];
const SECONDS: &[&str] = &[
    "100",
    "1000",
    "5000",
    "100000",
    "0",
    "-1",
    "abc",
    "",
    "1.5",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775",
];
const MILLIS: &[&str] = &[
    "100000",
    "1000000",
    "5000000",
    "0",
    "-5",
    "abc",
    "9223372036854775807",
];
/// Absolute times: the past, or around 2100-01-01 (so GT/LT compare deterministically).
const AT_SECONDS: &[&str] = &[
    "1",
    "0",
    "-1",
    "4102444700",
    "4102444800",
    "4102444900",
    "abc",
    "9223372036854775807",
];
const AT_MILLIS: &[&str] = &[
    "1",
    "0",
    "4102444799999",
    "4102444800000",
    "4102444800500",
    "4102444900000",
    "abc",
];
/// SET's EXAT/PXAT: no time in the past that is valid (ARCHITECTURE.md, "Deliberately absent",
/// DBSIZE counts live keys only: Redis 7.0 counts such a key until its active expiry cycle).
const SET_AT_SECONDS: &[&str] = &[
    "0",
    "-1",
    "4102444700",
    "4102444800",
    "abc",
    "9223372036854775807",
];
const SET_AT_MILLIS: &[&str] = &["0", "4102444799999", "4102444800000", "abc"];
const PATTERNS: &[&str] = &[
    "*", "k*", "k?", "k[0-2]", "k[^1]", "*1", "K*", "\\*", "[", "k[a-", "{*", "x*", "",
];
const CHANNELS: &[&str] = &["c0", "c1", "c2", "news.a", "news.b"];
const CHANNEL_PATTERNS: &[&str] = &[
    "c*",
    "news.*",
    "*",
    "c[01]",
    "c?",
    "x*",
    "__key*__:*",
    "__keyevent@0__:*",
    "__keyspace@1__:k?",
];
const DBS: &[&str] = &[
    "0",
    "1",
    "2",
    "0",
    "1",
    "16",
    "-1",
    "abc",
    "",
    "99999999999",
];

struct Gen {
    rng: StdRng,
    in_multi: bool,
}

impl Gen {
    fn pick(&mut self, from: &[&str]) -> String {
        from.choose(&mut self.rng).unwrap().to_string()
    }

    fn key(&mut self) -> String {
        if self.rng.gen_bool(0.03) {
            self.pick(RARE_KEYS)
        } else {
            self.pick(KEYS)
        }
    }

    fn keys(&mut self, min: usize) -> Vec<String> {
        let n = self.rng.gen_range(min..=4);
        (0..n).map(|_| self.key()).collect()
    }

    fn value(&mut self) -> String {
        self.pick(VALUES)
    }

    /// The command name as typed: mostly upper case, sometimes lower or mixed.
    fn name(&mut self, name: &str) -> String {
        match self.rng.gen_range(0..10) {
            0 => name.to_ascii_lowercase(),
            1 => name
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if i % 2 == 0 {
                        c.to_ascii_lowercase()
                    } else {
                        c
                    }
                })
                .collect(),
            _ => name.to_string(),
        }
    }

    fn cmd(&mut self, name: &str, rest: Vec<String>) -> Vec<String> {
        let mut v = vec![self.name(name)];
        v.extend(rest);
        v
    }

    fn step(&mut self) -> Step {
        let roll = self.rng.gen_range(0..100);
        if roll < 8 && !self.in_multi {
            return Step::new(On::Sub, self.subscriber(), Cmp::Exact).with_sub_cmp();
        }
        if roll < 16 {
            let args = self.string_command().0;
            return Step::new(On::Other, args, Cmp::Exact);
        }
        loop {
            let (mut args, cmp) = match self.rng.gen_range(0..100) {
                0..=39 => self.string_command(),
                40..=69 => self.key_command(),
                70..=81 => self.txn_command(),
                82..=89 => self.db_command(),
                90..=95 => self.pubsub_command(),
                _ => self.odd_command(),
            };
            if self.in_multi && cmp != Cmp::Exact {
                continue;
            }
            if cmp != Cmp::Scan && self.rng.gen_bool(0.03) {
                // Wrong arity or a stray argument (the comparison falls back to the bytes
                // when the reply no longer has the shape it normalizes).
                if self.rng.gen_bool(0.5) && args.len() > 1 {
                    let keep = self.rng.gen_range(1..args.len());
                    args.truncate(keep);
                } else {
                    args.push(self.pick(&["extra", "NX", "0", "EX", "GET"]));
                }
            }
            let upper = args[0].to_ascii_uppercase();
            match upper.as_str() {
                "MULTI" if args.len() == 1 => self.in_multi = true,
                // EXEC with arguments is refused and discards the transaction too.
                "EXEC" => self.in_multi = false,
                "DISCARD" if args.len() == 1 => self.in_multi = false,
                _ => {}
            }
            return Step::new(On::Main, args, cmp);
        }
    }

    fn string_command(&mut self) -> (Vec<String>, Cmp) {
        let k = self.key();
        let e = Cmp::Exact;
        let args = match self.rng.gen_range(0..26) {
            0 | 1 => {
                let v = self.value();
                let mut rest = vec![k, v];
                rest.extend(self.set_options());
                self.cmd("SET", rest)
            }
            2 | 3 => self.cmd("GET", vec![k]),
            4 => {
                let v = self.value();
                self.cmd("APPEND", vec![k, v])
            }
            5 => self.cmd("STRLEN", vec![k]),
            6 => {
                let name = if self.rng.gen_bool(0.5) {
                    "INCR"
                } else {
                    "DECR"
                };
                self.cmd(name, vec![k])
            }
            7 => {
                let by = self.pick(INCR_BY);
                let name = if self.rng.gen_bool(0.5) {
                    "INCRBY"
                } else {
                    "DECRBY"
                };
                self.cmd(name, vec![k, by])
            }
            8 => {
                let by = self.pick(FLOATS);
                self.cmd("INCRBYFLOAT", vec![k, by])
            }
            9 => {
                let ks = self.keys(1);
                self.cmd("MGET", ks)
            }
            10 | 11 => {
                let n = self.rng.gen_range(1..=3);
                let mut rest = Vec::new();
                for _ in 0..n {
                    rest.push(self.key());
                    rest.push(self.value());
                }
                let name = if self.rng.gen_bool(0.5) {
                    "MSET"
                } else {
                    "MSETNX"
                };
                self.cmd(name, rest)
            }
            12 => {
                let v = self.value();
                self.cmd("GETSET", vec![k, v])
            }
            13 => {
                let v = self.value();
                self.cmd("SETNX", vec![k, v])
            }
            14 => {
                let (name, t) = if self.rng.gen_bool(0.5) {
                    ("SETEX", self.pick(SECONDS))
                } else {
                    ("PSETEX", self.pick(MILLIS))
                };
                let v = self.value();
                self.cmd(name, vec![k, t, v])
            }
            15 => self.cmd("GETDEL", vec![k]),
            16 | 17 => {
                let mut rest = vec![k];
                rest.extend(self.getex_options());
                self.cmd("GETEX", rest)
            }
            18 | 19 => {
                let (a, b) = (self.pick(OFFSETS), self.pick(OFFSETS));
                let name = if self.rng.gen_bool(0.8) {
                    "GETRANGE"
                } else {
                    "SUBSTR"
                };
                self.cmd(name, vec![k, a, b])
            }
            20 | 21 => {
                let (o, v) = (self.pick(SET_OFFSETS), self.value());
                self.cmd("SETRANGE", vec![k, o, v])
            }
            22 | 23 => {
                let k2 = self.key();
                let mut rest = vec![k, k2];
                let opts: &[&[&str]] = &[
                    &[],
                    &["LEN"],
                    &["IDX"],
                    &["IDX", "WITHMATCHLEN"],
                    &["IDX", "MINMATCHLEN", "2"],
                    &["IDX", "MINMATCHLEN", "2", "WITHMATCHLEN"],
                    &["LEN", "IDX"],
                    &["MINMATCHLEN", "-1"],
                    &["IDX", "MINMATCHLEN", "abc"],
                    &["BOGUS"],
                    &["WITHMATCHLEN"],
                ];
                let opt = opts.choose(&mut self.rng).unwrap();
                rest.extend(opt.iter().map(|s| s.to_string()));
                self.cmd("LCS", rest)
            }
            _ => {
                let v = self.value();
                self.cmd("SET", vec![k, v])
            }
        };
        (args, e)
    }

    fn set_options(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let n = self.rng.gen_range(0..=3);
        for _ in 0..n {
            match self.rng.gen_range(0..11) {
                0 => out.push("NX".into()),
                1 => out.push("XX".into()),
                2 => out.push("GET".into()),
                3 => out.push("KEEPTTL".into()),
                4 => out.extend(["EX".into(), self.pick(SECONDS)]),
                5 => out.extend(["PX".into(), self.pick(MILLIS)]),
                6 => out.extend(["EXAT".into(), self.pick(SET_AT_SECONDS)]),
                7 => out.extend(["PXAT".into(), self.pick(SET_AT_MILLIS)]),
                8 => out.push(self.pick(&["ex", "px", "nx", "get", "keepttl"])),
                9 => out.push("BOGUS".into()),
                _ => out.push("EX".into()),
            }
        }
        out
    }

    fn getex_options(&mut self) -> Vec<String> {
        match self.rng.gen_range(0..9) {
            0 => vec![],
            1 => vec!["EX".into(), self.pick(SECONDS)],
            2 => vec!["PX".into(), self.pick(MILLIS)],
            3 => vec!["EXAT".into(), self.pick(AT_SECONDS)],
            4 => vec!["PXAT".into(), self.pick(AT_MILLIS)],
            5 => vec!["PERSIST".into()],
            6 => vec!["PERSIST".into(), "EX".into(), "100".into()],
            7 => vec!["KEEPTTL".into()],
            _ => vec!["EX".into()],
        }
    }

    fn key_command(&mut self) -> (Vec<String>, Cmp) {
        let k = self.key();
        let e = Cmp::Exact;
        match self.rng.gen_range(0..24) {
            0 | 1 => {
                let ks = self.keys(1);
                let name = self.pick(&["DEL", "UNLINK", "EXISTS", "TOUCH"]);
                (self.cmd(&name, ks), e)
            }
            2 | 3 => {
                // Relative expiries: long, and never GT/LT (their outcome would depend on
                // which millisecond each server ran the commands in).
                let (name, t) = if self.rng.gen_bool(0.5) {
                    ("EXPIRE", self.pick(SECONDS))
                } else {
                    ("PEXPIRE", self.pick(MILLIS))
                };
                let mut rest = vec![k, t];
                if self.rng.gen_bool(0.4) {
                    rest.push(self.pick(&["NX", "XX", "nx"]));
                }
                (self.cmd(name, rest), e)
            }
            4..=6 => {
                let (name, t) = if self.rng.gen_bool(0.5) {
                    ("EXPIREAT", self.pick(AT_SECONDS))
                } else {
                    ("PEXPIREAT", self.pick(AT_MILLIS))
                };
                let mut rest = vec![k, t];
                let flags: &[&[&str]] = &[
                    &[],
                    &["NX"],
                    &["XX"],
                    &["GT"],
                    &["LT"],
                    &["gt"],
                    &["NX", "GT"],
                    &["GT", "LT"],
                    &["XX", "GT"],
                    &["XX", "LT"],
                    &["BOGUS"],
                ];
                rest.extend(
                    flags
                        .choose(&mut self.rng)
                        .unwrap()
                        .iter()
                        .map(|s| s.to_string()),
                );
                (self.cmd(name, rest), e)
            }
            7 | 8 => {
                let (name, tolerance) = [
                    ("TTL", 2),
                    ("PTTL", 2000),
                    ("EXPIRETIME", 2),
                    ("PEXPIRETIME", 2000),
                ][self.rng.gen_range(0..4)];
                (self.cmd(name, vec![k]), Cmp::Ttl(tolerance))
            }
            9 => (self.cmd("PERSIST", vec![k]), e),
            10 => (self.cmd("TYPE", vec![k]), e),
            11 | 12 => {
                let dst = self.key();
                let name = if self.rng.gen_bool(0.5) {
                    "RENAME"
                } else {
                    "RENAMENX"
                };
                (self.cmd(name, vec![k, dst]), e)
            }
            13 | 14 => {
                let dst = self.key();
                let mut rest = vec![k, dst];
                match self.rng.gen_range(0..6) {
                    0 => rest.push("REPLACE".into()),
                    1 => rest.extend(["DB".into(), self.pick(DBS)]),
                    2 => rest.extend(["DB".into(), self.pick(DBS), "REPLACE".into()]),
                    3 => rest.push("BOGUS".into()),
                    _ => {}
                }
                (self.cmd("COPY", rest), e)
            }
            15 => (self.cmd("RANDOMKEY", vec![]), Cmp::RandomKey),
            16 => {
                // Not ENCODING / REFCOUNT: ARCHITECTURE.md, "Deliberately absent", OBJECT
                // ENCODING answers from the value, not its history. Not IDLETIME: the clock.
                let sub = self.pick(&["FREQ", "freq", "NOSUCH"]);
                (self.cmd("OBJECT", vec![sub, k]), e)
            }
            17 | 18 => {
                let p = self.pick(PATTERNS);
                (self.cmd("KEYS", vec![p]), Cmp::Sorted)
            }
            19 | 20 => {
                let mut rest = vec!["0".to_string()];
                if self.rng.gen_bool(0.5) {
                    rest.extend(["MATCH".into(), self.pick(PATTERNS)]);
                }
                if self.rng.gen_bool(0.4) {
                    rest.extend(["COUNT".into(), self.pick(&["1", "2", "10", "1000"])]);
                }
                if self.rng.gen_bool(0.2) {
                    rest.extend(["TYPE".into(), self.pick(&["string", "list", "STRING"])]);
                }
                (self.cmd("SCAN", rest), Cmp::Scan)
            }
            21 => {
                // SCAN's refused arguments (`""` is cursor 0 to Redis's strtoul).
                let bad: &[&[&str]] = &[
                    &["abc"],
                    &["1.5"],
                    &[" 0"],
                    &["0x"],
                    &["0", "COUNT", "0"],
                    &["0", "COUNT", "abc"],
                    &["0", "MATCH"],
                    &["0", "BOGUS", "x"],
                    &["0", "COUNT", "-1"],
                ];
                let rest = bad.choose(&mut self.rng).unwrap();
                let rest = rest.iter().map(|s| s.to_string()).collect();
                // Compared as a SCAN: their errors byte for byte (and were one to succeed,
                // its keys).
                (self.cmd("SCAN", rest), Cmp::Scan)
            }
            _ => (self.cmd("DBSIZE", vec![]), e),
        }
    }

    fn txn_command(&mut self) -> (Vec<String>, Cmp) {
        let e = Cmp::Exact;
        let args = match self.rng.gen_range(0..10) {
            0 | 1 => self.cmd("MULTI", vec![]),
            2 | 3 => self.cmd("EXEC", vec![]),
            4 => self.cmd("DISCARD", vec![]),
            5..=7 => {
                let ks = self.keys(1);
                self.cmd("WATCH", ks)
            }
            8 => self.cmd("UNWATCH", vec![]),
            _ => {
                let rest = vec![self.value()];
                self.cmd("EXEC", rest)
            }
        };
        (args, e)
    }

    fn db_command(&mut self) -> (Vec<String>, Cmp) {
        let e = Cmp::Exact;
        let args = match self.rng.gen_range(0..12) {
            0..=3 => {
                let db = self.pick(DBS);
                self.cmd("SELECT", vec![db])
            }
            4 | 5 => {
                let (k, db) = (self.key(), self.pick(DBS));
                self.cmd("MOVE", vec![k, db])
            }
            6 => {
                let (a, b) = (self.pick(DBS), self.pick(DBS));
                self.cmd("SWAPDB", vec![a, b])
            }
            7 => {
                let mut rest = vec![];
                if self.rng.gen_bool(0.4) {
                    rest.push(self.pick(&["ASYNC", "SYNC", "async", "BOGUS"]));
                }
                self.cmd("FLUSHDB", rest)
            }
            8 if self.rng.gen_bool(0.3) => {
                let mut rest = vec![];
                if self.rng.gen_bool(0.4) {
                    rest.push(self.pick(&["ASYNC", "SYNC", "BOGUS"]));
                }
                self.cmd("FLUSHALL", rest)
            }
            _ => self.cmd("DBSIZE", vec![]),
        };
        (args, e)
    }

    fn pubsub_command(&mut self) -> (Vec<String>, Cmp) {
        match self.rng.gen_range(0..8) {
            0..=3 => {
                let (c, m) = (self.pick(CHANNELS), self.value());
                (self.cmd("PUBLISH", vec![c, m]), Cmp::Exact)
            }
            4 => {
                let mut rest = vec!["CHANNELS".to_string()];
                if self.rng.gen_bool(0.5) {
                    rest.push(self.pick(CHANNEL_PATTERNS));
                }
                (self.cmd("PUBSUB", rest), Cmp::Sorted)
            }
            5 => {
                let mut rest = vec!["NUMSUB".to_string()];
                let n = self.rng.gen_range(0..=3);
                for _ in 0..n {
                    rest.push(self.pick(CHANNELS));
                }
                (self.cmd("PUBSUB", rest), Cmp::Exact)
            }
            6 => (self.cmd("PUBSUB", vec!["NUMPAT".into()]), Cmp::Exact),
            _ => {
                // Not HELP alone: "Deliberately absent", no sharded pub/sub.
                let sub = self.pick(&["NOSUCH", "numpat", "NUMPAT", "HELP"]);
                let rest = vec![sub, "x".into()];
                (self.cmd("PUBSUB", rest), Cmp::Exact)
            }
        }
    }

    /// Unknown commands, PING/ECHO and their errors.
    fn odd_command(&mut self) -> (Vec<String>, Cmp) {
        let args = match self.rng.gen_range(0..6) {
            0 => vec!["FOOBAR".into(), self.key(), "x y".into()],
            1 => vec!["".into()],
            2 => self.cmd("PING", vec![]),
            3 => {
                let v = self.value();
                self.cmd("PING", vec![v])
            }
            4 => {
                let v = self.value();
                self.cmd("ECHO", vec![v])
            }
            _ => self.cmd("ECHO", vec![]),
        };
        (args, Cmp::Exact)
    }

    /// A subscriber's command.
    fn subscriber(&mut self) -> Vec<String> {
        let n = self.rng.gen_range(0..=2);
        match self.rng.gen_range(0..10) {
            0..=2 => {
                let chans = (0..n.max(1)).map(|_| self.pick(CHANNELS)).collect();
                self.cmd("SUBSCRIBE", chans)
            }
            3 | 4 => {
                let pats = (0..n.max(1)).map(|_| self.pick(CHANNEL_PATTERNS)).collect();
                self.cmd("PSUBSCRIBE", pats)
            }
            5 | 6 => {
                let chans = (0..n).map(|_| self.pick(CHANNELS)).collect();
                self.cmd("UNSUBSCRIBE", chans)
            }
            7 => {
                let pats = (0..n).map(|_| self.pick(CHANNEL_PATTERNS)).collect();
                self.cmd("PUNSUBSCRIBE", pats)
            }
            8 => {
                let k = self.key();
                self.cmd("GET", vec![k])
            }
            _ => {
                let v = self.value();
                self.cmd("PING", vec![v])
            }
        }
    }
}

impl Step {
    /// A subscriber step compares names sorted only for an unsubscribe from everything.
    fn with_sub_cmp(mut self) -> Step {
        let upper = self.args[0].to_ascii_uppercase();
        let all = self.args.len() == 1 && (upper == "UNSUBSCRIBE" || upper == "PUNSUBSCRIBE");
        self.cmp = if all { Cmp::UnsubscribeAll } else { Cmp::Exact };
        self
    }
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value}: not a number")),
    )
}

fn shown(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// Runs `commands` steps of `seed` in `proto` against fresh servers; panics at the first
/// mismatch with everything needed to replay it.
fn run_seed(seed: u64, commands: usize, proto: u8, notify: bool) -> bool {
    let (redis, moodb) = if notify {
        let Some(redis) = RedisServer::start_with(&["--notify-keyspace-events", "KEA"]) else {
            return false;
        };
        let moodb = TestServer::start(ServerOptions {
            config: Some("(notify_keyspace_events: \"KEA\")".into()),
            ..ServerOptions::default()
        });
        (redis, moodb.unwrap())
    } else {
        let Some(redis) = RedisServer::start() else {
            return false;
        };
        (redis, TestServer::start(ServerOptions::default()).unwrap())
    };
    let mut ours = Side::open(moodb.addr, proto, notify);
    let mut theirs = Side::open(redis.addr(), proto, notify);
    // The same seed makes the same sequence in both protocols.
    let mut gen = Gen {
        rng: StdRng::seed_from_u64(seed),
        in_multi: false,
    };
    let mut recent: Vec<String> = Vec::new();
    for index in 0..commands {
        let step = gen.step();
        let marker = format!("sync-{index}");
        let (our_raw, our_norm) = ours.run(&step, &marker);
        let (their_raw, their_norm) = theirs.run(&step, &marker);
        let shown_step = format!("{:?} {:?}", step.on, step.args);
        if !agree(step.cmp, &our_norm, &their_norm) {
            // What each side holds now, to help read the failure (not inside MULTI, where
            // KEYS would be queued).
            let held = |side: &mut Side| {
                if gen.in_multi {
                    return "(in MULTI)".to_string();
                }
                let (raw, frame) = side.main.ask(&["KEYS", "*"]);
                shown(&normalize(Cmp::Sorted, &raw, &frame))
            };
            let (our_keys, their_keys) = (held(&mut ours), held(&mut theirs));
            panic!(
                "differential_random: seed {seed}, RESP{proto}, notifications {}, command \
                 #{index} on {:?}: {:?} \
                 (compared as {:?})\n  moodb: {}\n  redis: {}\n  compared: {} vs {}\n\
                 KEYS * (sorted) in the selected database now:\n  moodb: {our_keys}\n  redis: {their_keys}\n\
                 the {} commands before it:\n    {}\n\
                 rerun: MOODB_DIFF_SEED={seed} MOODB_DIFF_COMMANDS={} cargo test -p moodb-tests \
                 --test it differential_random -- --nocapture",
                if notify { "KEA" } else { "off" },
                step.on,
                step.args,
                step.cmp,
                shown(&our_raw),
                shown(&their_raw),
                shown(&our_norm),
                shown(&their_norm),
                recent.len(),
                recent.join("\n    "),
                index + 1,
            );
        }
        recent.push(shown_step);
        if recent.len() > 30 {
            recent.remove(0);
        }
    }
    true
}

#[test]
fn random_command_sequences_get_redis_7s_bytes() {
    let first = env_number("MOODB_DIFF_SEED").unwrap_or_else(rand::random);
    let commands = env_number("MOODB_DIFF_COMMANDS").unwrap_or(2000) as usize;
    let seeds = env_number("MOODB_DIFF_SEEDS").unwrap_or(1);
    for seed in first..first.saturating_add(seeds) {
        eprintln!("differential_random: seed {seed}, {commands} commands per run");
        // RESP2, RESP3, and RESP3 with keyspace notifications (`KEA` on both servers: the
        // subscriber is compared after every command).
        for (proto, notify) in [(2, false), (3, false), (3, true)] {
            if !run_seed(seed, commands, proto, notify) {
                return;
            }
            eprintln!(
                "differential_random: seed {seed}, RESP{proto}, notifications {notify}: same"
            );
        }
    }
}
