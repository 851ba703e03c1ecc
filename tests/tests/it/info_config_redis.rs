//! INFO, CONFIG, SLOWLOG and LATENCY against a real redis-server 7: INFO's sections come in
//! Redis's order for every way of asking, MooDB's fields (all but its own `moodb_*` ones) are
//! Redis's, in Redis's order, with values of the same form; the figures both servers must
//! agree on after the same commands (keyspace hits and misses, calls, rejected and failed
//! calls, error counts, keyspace lines) are equal; CONFIG GET / SET / REWRITE / RESETSTAT and
//! the SLOWLOG / LATENCY replies are byte for byte Redis's where the values can be equal.
//! WAITAOF is Redis 7.2's, so 7.0 cannot judge it (see `info_config.rs`). Skipped (with a
//! message) when redis-server is not installed.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use moodb_tests::redis_server::RedisServer;
use moodb_tests::{query as q, ServerOptions, TestServer};
use redis::Value;

use crate::commands_redis::{compare, Check, Conn};

use Check::{Exact as E, Kind as K};

/// INFO's text as sections of `(field, value)`.
fn sections(text: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("# ") {
            out.push((name.to_string(), Vec::new()));
        } else if let Some((k, v)) = line.split_once(':') {
            out.last_mut()
                .expect("a field before any section")
                .1
                .push((k.to_string(), v.to_string()));
        }
    }
    out
}

/// A value's form: every run of digits becomes `9`, every 40-digit hex id `<id>`.
fn form(v: &str) -> String {
    if v.len() == 40 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return "<id>".into();
    }
    let mut out = String::new();
    for c in v.chars() {
        if c.is_ascii_digit() {
            if !out.ends_with('9') {
                out.push('9');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Fields whose values legitimately differ in form: a time that is -1 until MooDB's first
/// checkpoint (Redis counts its start-up as a save), and the version (7.0.15 against 7.0.0)
/// compares fine as a form.
/// `used_memory` is the key space's estimate here, the whole heap in Redis (about 1 MB
/// before the first key), so its human form may have another unit.
const FORM_DIFFERS: &[&str] = &[
    "rdb_last_save_time",
    "used_memory_human",
    "used_memory_peak_human",
];

/// INFO's text over a raw connection (the `redis` crate would send CLIENT SETINFO first,
/// which redis-server 7.0 counts as errors).
fn info(con: &mut Conn, args: &[&str]) -> String {
    let mut words: Vec<&[u8]> = vec![b"INFO"];
    words.extend(args.iter().map(|a| a.as_bytes()));
    let reply = con.call(&words);
    let text = String::from_utf8_lossy(&reply).into_owned();
    let body = text.split_once("\r\n").map_or("", |(_, body)| body);
    body.strip_suffix("\r\n").unwrap_or(body).to_string()
}

/// The same commands on both servers: reads that hit and miss, a wrong arity, an unknown
/// command, a runtime error.
fn workload(con: &mut Conn) {
    for words in [
        &["SET", "a", "1"][..],
        &["SET", "s", "x"],
        &["GET", "a"],
        &["GET", "b"],
        &["MGET", "a", "b", "c"],
        &["EXISTS", "a", "b"],
        &["STRLEN", "a"],
        &["TTL", "nope"],
        &["GET"],
        &["FROBNICATE", "x"],
        &["INCR", "s"],
        &["CONFIG", "SET", "maxclients", "x"],
    ] {
        let args: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        con.call(&args);
    }
}

#[test]
fn info_has_redis_7s_sections_fields_and_figures() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let moodb = TestServer::start(ServerOptions::default()).unwrap();
    let mut theirs = Conn::open(redis.addr());
    let mut ours = Conn::open(moodb.addr);
    // From zero on both (the harness's own connections count in redis-server).
    for con in [&mut theirs, &mut ours] {
        con.call(&[b"CONFIG", b"RESETSTAT"]);
        workload(con);
    }
    let mut problems = Vec::new();
    for asked in [
        &[][..],
        &["all"],
        &["everything"],
        &["default"],
        &["cpu", "server"],
        &["Keyspace", "STATS"],
        &["commandstats"],
        &["nosuch"],
    ] {
        let t = sections(&info(&mut theirs, asked));
        let o = sections(&info(&mut ours, asked));
        // Latencystats (per-command percentiles) is deliberately absent.
        let t_names: Vec<&str> = t
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| *n != "Latencystats")
            .collect();
        let o_names: Vec<&str> = o.iter().map(|(n, _)| n.as_str()).collect();
        if t_names != o_names {
            problems.push(format!(
                "INFO {asked:?}: sections {o_names:?}, redis {t_names:?}"
            ));
            continue;
        }
        for ((name, ofields), (_, tfields)) in
            o.iter().zip(t.iter().filter(|(n, _)| n != "Latencystats"))
        {
            // Redis lists these in hash-table order: compare them as sets.
            if ["Commandstats", "Errorstats", "Keyspace"].contains(&name.as_str()) {
                for (k, _) in ofields {
                    if !tfields.iter().any(|(tk, _)| tk == k) {
                        problems.push(format!("{name}.{k}: not in redis's section"));
                    }
                }
                continue;
            }
            // Our fields, without MooDB's own, are a subsequence of Redis's.
            let mut at = 0;
            for (k, v) in ofields.iter().filter(|(k, _)| !k.starts_with("moodb_")) {
                match tfields[at..].iter().position(|(tk, _)| tk == k) {
                    Some(i) => {
                        let tv = &tfields[at + i].1;
                        if form(v) != form(tv) && !FORM_DIFFERS.contains(&k.as_str()) {
                            problems.push(format!("{name}.{k}: {v:?}, redis {tv:?}"));
                        }
                        at += i + 1;
                    }
                    None => problems.push(format!(
                        "{name}.{k}: not in redis's section (or out of its order)"
                    )),
                }
            }
            let moodb_last = ofields
                .iter()
                .skip_while(|(k, _)| !k.starts_with("moodb_"))
                .all(|(k, _)| k.starts_with("moodb_"));
            if !moodb_last {
                problems.push(format!("{name}: moodb_ fields are not last"));
            }
        }
    }
    // The figures both must agree on after the same commands.
    let field = |text: &str, name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(str::to_string)
    };
    let t = info(&mut theirs, &["everything"]);
    let o = info(&mut ours, &["everything"]);
    for name in [
        "keyspace_hits",
        "keyspace_misses",
        "expired_keys",
        "connected_clients",
        "db0",
        "errorstat_ERR",
        "cluster_enabled",
        "role",
        "connected_slaves",
    ] {
        if field(&o, name) != field(&t, name) {
            problems.push(format!(
                "{name}: {:?}, redis {:?}",
                field(&o, name),
                field(&t, name)
            ));
        }
    }
    let counts = |text: &str, name: &str| -> Option<String> {
        // calls, rejected_calls and failed_calls (the µs differ).
        let v = field(text, &format!("cmdstat_{name}"))?;
        Some(
            v.split(',')
                .filter(|p| !p.starts_with("usec"))
                .collect::<Vec<_>>()
                .join(","),
        )
    };
    for name in [
        "set",
        "get",
        "mget",
        "exists",
        "strlen",
        "ttl",
        "incr",
        "config|set",
    ] {
        if counts(&o, name) != counts(&t, name) {
            problems.push(format!(
                "cmdstat_{name}: {:?}, redis {:?}",
                counts(&o, name),
                counts(&t, name)
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn config_answers_as_redis_7_does() {
    compare(&[
        // One parameter: the same defaults.
        (E, &["CONFIG", "GET", "maxclients"]),
        (E, &["CONFIG", "GET", "timeout"]),
        (E, &["CONFIG", "GET", "databases"]),
        (E, &["CONFIG", "GET", "requirepass"]),
        (E, &["CONFIG", "GET", "notify-keyspace-events"]),
        (E, &["CONFIG", "GET", "proto-max-bulk-len"]),
        (E, &["CONFIG", "GET", "client-query-buffer-limit"]),
        (E, &["CONFIG", "GET", "slowlog-log-slower-than"]),
        (E, &["CONFIG", "GET", "slowlog-max-len"]),
        (E, &["CONFIG", "GET", "latency-monitor-threshold"]),
        (E, &["CONFIG", "GET", "save"]),
        (E, &["CONFIG", "GET", "maxmemory"]),
        (E, &["CONFIG", "GET", "nosuch*"]),
        (E, &["CONFIG", "GET", "SLOWLOG-MAX-LEN"]),
        (E, &["CONFIG", "GET"]),
        // Several at once, atomically; each error as Redis words it.
        (
            E,
            &[
                "CONFIG",
                "SET",
                "maxclients",
                "100",
                "timeout",
                "5",
                "slowlog-max-len",
                "7",
            ],
        ),
        (E, &["CONFIG", "GET", "maxclients"]),
        (E, &["CONFIG", "GET", "timeout"]),
        (E, &["CONFIG", "SET", "timeout", "9", "maxclients", "x"]),
        (E, &["CONFIG", "GET", "timeout"]),
        (E, &["CONFIG", "SET", "timeout", "1", "timeout", "2"]),
        (E, &["CONFIG", "SET", "databases", "3"]),
        (E, &["CONFIG", "SET", "nosuch", "1"]),
        (E, &["CONFIG", "SET", "maxclients"]),
        (E, &["CONFIG", "SET", "maxclients", "0"]),
        (E, &["CONFIG", "SET", "timeout", "-1"]),
        (E, &["CONFIG", "SET", "appendfsync", "sometimes"]),
        (E, &["CONFIG", "SET", "slowlog-max-len", "-1"]),
        (E, &["CONFIG", "SET", "slowlog-log-slower-than", "-5"]),
        (E, &["CONFIG", "SET", "latency-monitor-threshold", "-1"]),
        (E, &["CONFIG", "SET", "proto-max-bulk-len", "1"]),
        (E, &["CONFIG", "SET", "proto-max-bulk-len", "10mb"]),
        (E, &["CONFIG", "GET", "proto-max-bulk-len"]),
        (E, &["CONFIG", "SET", "client-query-buffer-limit", "1"]),
        (E, &["CONFIG", "SET", "notify-keyspace-events", "Q"]),
        (E, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]),
        (E, &["CONFIG", "GET", "notify-keyspace-events"]),
        (
            E,
            &[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "pubsub 32mb 8mb",
            ],
        ),
        (
            E,
            &[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "pubsub 32mb 8mb 61",
            ],
        ),
        (
            E,
            &[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "nosuch 1 1 1",
            ],
        ),
        (E, &["CONFIG", "SET", "requirepass", ""]),
        (E, &["CONFIG", "SET", "appendfsync", "always"]),
        (E, &["CONFIG", "GET", "appendfsync"]),
        (E, &["CONFIG", "REWRITE"]),
        (E, &["CONFIG", "REWRITE", "x"]),
        (E, &["CONFIG", "RESETSTAT"]),
        (E, &["CONFIG", "RESETSTAT", "x"]),
        (E, &["CONFIG", "NOSUCH"]),
        (E, &["CONFIG", "HELP"]),
        (E, &["CONFIG", "HELP", "x"]),
        // SLOWLOG and LATENCY with nothing recorded yet.
        (E, &["SLOWLOG", "LEN"]),
        (E, &["SLOWLOG", "GET"]),
        (E, &["SLOWLOG", "GET", "x"]),
        (E, &["SLOWLOG", "GET", "-2"]),
        (E, &["SLOWLOG", "GET", "5", "6"]),
        (E, &["SLOWLOG", "LEN", "x"]),
        (E, &["SLOWLOG", "RESET"]),
        (E, &["SLOWLOG", "HELP"]),
        (E, &["SLOWLOG", "FOO"]),
        (E, &["SLOWLOG"]),
        (E, &["LATENCY", "LATEST"]),
        (E, &["LATENCY", "HISTORY", "command"]),
        (E, &["LATENCY", "HISTORY"]),
        (E, &["LATENCY", "RESET"]),
        (E, &["LATENCY", "DOCTOR"]),
        (E, &["LATENCY", "FOO"]),
        (E, &["CONFIG", "SET", "latency-monitor-threshold", "100"]),
        (E, &["LATENCY", "DOCTOR"]),
        (K, &["INFO", "commandstats"]),
    ]);
}

/// SLOWLOG GET's entries with what must differ (id, time, µs, the client's port) zeroed.
fn slow_entries(con: &mut redis::Connection, n: &str) -> Vec<Value> {
    let Value::Array(entries) = q::<Value>(con, &["SLOWLOG", "GET", n]).unwrap() else {
        panic!()
    };
    entries
        .into_iter()
        .map(|e| {
            let Value::Array(mut e) = e else { panic!() };
            for v in &mut e[..3] {
                *v = Value::Int(0);
            }
            if let Value::BulkString(addr) = &mut e[4] {
                let text = String::from_utf8_lossy(addr).into_owned();
                *addr = text
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .as_bytes()
                    .to_vec();
            }
            Value::Array(e)
        })
        .collect()
}

#[test]
fn slowlog_entries_are_cut_as_redis_cuts_them() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let moodb = TestServer::start(ServerOptions::default()).unwrap();
    let mut theirs = redis.connect().unwrap();
    let mut ours = moodb.connect().unwrap();
    let long = "x".repeat(300);
    let mut many = vec!["MSET".to_string()];
    for i in 0..20 {
        many.push(format!("k{i}"));
        many.push(format!("v{i}"));
    }
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    for con in [&mut theirs, &mut ours] {
        let _: () = q(con, &["CLIENT", "SETNAME", "cutter"]).unwrap();
        let _: () = q(con, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]).unwrap();
        let _: () = q(con, &["SET", "k", &long]).unwrap();
        let _: () = q(con, &many).unwrap();
        let _: () = q(con, &["CONFIG", "SET", "slowlog-max-len", "2"]).unwrap();
    }
    assert_eq!(slow_entries(&mut ours, "5"), slow_entries(&mut theirs, "5"));
    assert_eq!(
        q::<i64>(&mut ours, &["SLOWLOG", "LEN"]).unwrap(),
        q::<i64>(&mut theirs, &["SLOWLOG", "LEN"]).unwrap()
    );
}
