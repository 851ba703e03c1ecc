//! CONFIG SET takes effect, not just echoes back: each parameter changed on a running server
//! changes what the server does (a refused connection, a password asked for, an idle client
//! closed, a smaller bulk limit, a subscriber cut off, a sync policy with or without fsyncs,
//! a checkpoint on a smaller log, the slow log, the latency monitor seeing a slow fsync);
//! CONFIG REWRITE writes a file the server restarts from; WAITAOF tells the truth per sync
//! policy. Compared with redis-server in `info_config_redis.rs`.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::thread::sleep;
use std::time::{Duration, Instant};

use moodb_tests::raw::{request, Raw, Reply};
use moodb_tests::{query as q, ServerOptions, TestServer};
use redis::Value;

fn info_field(con: &mut redis::Connection, section: &str, name: &str) -> String {
    let info: String = q(con, &["INFO", section]).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in INFO:\n{info}"))
        .trim()
        .to_string()
}

fn set(con: &mut redis::Connection, words: &[&str]) {
    let mut args = vec!["CONFIG", "SET"];
    args.extend_from_slice(words);
    assert_eq!(q::<String>(con, &args).unwrap(), "OK", "{words:?}");
}

fn get(con: &mut redis::Connection, name: &str) -> String {
    let pair: Vec<String> = q(con, &["CONFIG", "GET", name]).unwrap();
    pair[1].clone()
}

#[test]
fn maxclients_refuses_the_next_connection() {
    let s = TestServer::start(ServerOptions::default()).unwrap();
    let mut con = s.connect().unwrap();
    set(&mut con, &["maxclients", "2"]);
    let mut second = Raw::connect(s.addr).unwrap();
    assert_eq!(
        second.ask(&request(&[b"PING"])).unwrap(),
        Reply::Line("+PONG".into())
    );
    let mut third = Raw::connect(s.addr).unwrap();
    assert_eq!(
        third.line().unwrap(),
        Reply::Line("-ERR max number of clients reached".into())
    );
    set(&mut con, &["maxclients", "10000"]);
    let mut fourth = Raw::connect(s.addr).unwrap();
    assert_eq!(
        fourth.ask(&request(&[b"PING"])).unwrap(),
        Reply::Line("+PONG".into())
    );
    assert_eq!(info_field(&mut con, "clients", "maxclients"), "10000");
}

#[test]
fn requirepass_asks_new_connections_for_auth() {
    let s = TestServer::start(ServerOptions::default()).unwrap();
    let mut con = s.connect().unwrap();
    set(&mut con, &["requirepass", "sesame"]);
    // The connection that set it stays authenticated, as in Redis.
    assert_eq!(q::<String>(&mut con, &["PING"]).unwrap(), "PONG");
    let mut other = Raw::connect(s.addr).unwrap();
    assert_eq!(
        other.ask(&request(&[b"GET", b"k"])).unwrap(),
        Reply::Line("-NOAUTH Authentication required.".into())
    );
    assert_eq!(
        other.ask(&request(&[b"AUTH", b"wrong"])).unwrap(),
        Reply::Line("-WRONGPASS invalid username-password pair or user is disabled.".into())
    );
    assert_eq!(
        other.ask(&request(&[b"AUTH", b"sesame"])).unwrap(),
        Reply::Line("+OK".into())
    );
    assert_eq!(get(&mut con, "requirepass"), "sesame");
    set(&mut con, &["requirepass", ""]);
    let mut open = Raw::connect(s.addr).unwrap();
    assert_eq!(
        open.ask(&request(&[b"PING"])).unwrap(),
        Reply::Line("+PONG".into())
    );
}

#[test]
fn timeout_closes_idle_clients_already_connected() {
    let s = TestServer::start(ServerOptions::default()).unwrap();
    let mut idle = Raw::connect(s.addr).unwrap();
    assert_eq!(
        idle.ask(&request(&[b"PING"])).unwrap(),
        Reply::Line("+PONG".into())
    );
    let mut con = s.connect().unwrap();
    set(&mut con, &["timeout", "1"]);
    let start = Instant::now();
    assert_eq!(idle.line().unwrap(), Reply::Closed);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn proto_max_bulk_len_bounds_new_requests() {
    let s = TestServer::start(ServerOptions::default()).unwrap();
    let mut con = s.connect().unwrap();
    set(&mut con, &["proto-max-bulk-len", "1mb"]);
    let mut raw = Raw::connect(s.addr).unwrap();
    assert_eq!(
        raw.ask(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n")
            .unwrap(),
        Reply::Line("-ERR Protocol error: invalid bulk length".into())
    );
    // The store's own checks follow it too.
    let err = q::<i64>(&mut con, &["SETRANGE", "k", "2000000", "x"]).unwrap_err();
    assert!(err.to_string().contains("proto-max-bulk-len"), "{err}");
}

#[test]
fn the_pubsub_output_limit_cuts_off_a_subscriber_that_does_not_read() {
    let s = TestServer::start(ServerOptions::default()).unwrap();
    let mut con = s.connect().unwrap();
    set(&mut con, &["client-output-buffer-limit", "pubsub 1mb 0 0"]);
    let mut sub = Raw::connect(s.addr).unwrap();
    sub.send(&request(&[b"SUBSCRIBE", b"ch"])).unwrap();
    sleep(Duration::from_millis(100));
    let message = "m".repeat(256 << 10);
    for _ in 0..40 {
        let _: i64 = q(&mut con, &["PUBLISH", "ch", &message]).unwrap();
    }
    sub.drain_to_close(Duration::from_secs(20)).unwrap();
    assert!(
        s.stderr().contains("pubsub.hard_bytes (1048576)"),
        "{}",
        s.stderr()
    );
}

#[test]
fn appendfsync_switches_the_sync_policy_of_a_running_server() {
    let s = TestServer::start(ServerOptions::default()).unwrap();
    let mut con = s.connect().unwrap();
    let fsyncs = |con: &mut redis::Connection| -> u64 {
        info_field(con, "persistence", "moodb_fsync_count")
            .parse()
            .unwrap()
    };
    set(&mut con, &["appendfsync", "no"]);
    assert_eq!(info_field(&mut con, "persistence", "moodb_sync"), "never");
    assert_eq!(get(&mut con, "appendonly"), "no");
    let before = fsyncs(&mut con);
    for i in 0..20 {
        let _: () = q(&mut con, &["SET", &format!("k{i}"), "v"]).unwrap();
    }
    assert_eq!(fsyncs(&mut con), before, "no fsync under appendfsync no");
    set(&mut con, &["appendfsync", "always"]);
    let before = fsyncs(&mut con);
    for i in 0..5 {
        let _: () = q(&mut con, &["SET", &format!("k{i}"), "w"]).unwrap();
    }
    assert!(
        fsyncs(&mut con) >= before + 5,
        "one fsync per acknowledged write"
    );
    set(&mut con, &["moodb-sync", "every:50"]);
    assert_eq!(get(&mut con, "appendfsync"), "everysec");
    assert_eq!(get(&mut con, "moodb-sync"), "every:50");
}

#[test]
fn the_checkpoint_trigger_follows_config_set() {
    let s = TestServer::start(ServerOptions::default()).unwrap();
    let mut con = s.connect().unwrap();
    set(&mut con, &["moodb-checkpoint-log-bytes", "4096"]);
    let value = "v".repeat(100);
    for i in 0..100 {
        let _: () = q(&mut con, &["SET", &format!("k{i}"), &value]).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(&mut con, "persistence", "rdb_saves") == "0" {
        assert!(
            Instant::now() < deadline,
            "no checkpoint after 10 KB of log"
        );
        sleep(Duration::from_millis(50));
    }
}

fn slowlog(con: &mut redis::Connection) -> Vec<Value> {
    match q::<Value>(con, &["SLOWLOG", "GET", "-1"]).unwrap() {
        Value::Array(entries) => entries,
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_slow_log_follows_its_threshold_and_length() {
    let s = TestServer::start(ServerOptions::default()).unwrap();
    let mut con = s.connect().unwrap();
    let _: () = q(&mut con, &["CLIENT", "SETNAME", "logger"]).unwrap();
    let _: () = q(&mut con, &["SET", "a", "1"]).unwrap();
    assert!(slowlog(&mut con).is_empty(), "nothing takes 10 ms");
    set(
        &mut con,
        &["slowlog-log-slower-than", "0", "slowlog-max-len", "3"],
    );
    for _ in 0..5 {
        let _: Option<String> = q(&mut con, &["GET", "a"]).unwrap();
    }
    let entries = slowlog(&mut con);
    assert_eq!(entries.len(), 3);
    let Value::Array(newest) = &entries[0] else {
        panic!()
    };
    assert_eq!(
        newest[3],
        Value::Array(vec![
            Value::BulkString(b"GET".to_vec()),
            Value::BulkString(b"a".to_vec()),
        ])
    );
    let Value::BulkString(addr) = &newest[4] else {
        panic!()
    };
    assert!(
        String::from_utf8_lossy(addr).starts_with("127.0.0.1:"),
        "{addr:?}"
    );
    assert_eq!(newest[5], Value::BulkString(b"logger".to_vec()));
    // The password never reaches the log.
    set(&mut con, &["requirepass", "secret"]);
    let entries = format!("{:?}", slowlog(&mut con));
    assert!(
        !entries.contains("secret") && entries.contains("redacted"),
        "{entries}"
    );
    assert_eq!(q::<String>(&mut con, &["SLOWLOG", "RESET"]).unwrap(), "OK");
    set(&mut con, &["slowlog-log-slower-than", "-1"]);
    let _: Option<String> = q(&mut con, &["GET", "a"]).unwrap();
    // Only the RESET itself, logged after it ran (as Redis does); nothing after -1.
    let entries = slowlog(&mut con);
    assert_eq!(entries.len(), 1);
    let Value::Array(only) = &entries[0] else {
        panic!()
    };
    assert_eq!(
        only[3],
        Value::Array(vec![
            Value::BulkString(b"SLOWLOG".to_vec()),
            Value::BulkString(b"RESET".to_vec()),
        ])
    );
}

#[test]
fn latency_sees_a_slow_fsync_as_aof_fsync_always() {
    let s = TestServer::start(ServerOptions {
        env: vec![("MOODB_FAILPOINTS".into(), "wal::fsync_slow=on".into())],
        ..ServerOptions::default()
    })
    .unwrap();
    let mut con = s.connect().unwrap();
    let _: () = q(&mut con, &["SET", "k", "v"]).unwrap();
    assert_eq!(
        q::<Value>(&mut con, &["LATENCY", "LATEST"]).unwrap(),
        Value::Array(vec![])
    );
    set(&mut con, &["latency-monitor-threshold", "5"]);
    let _: () = q(&mut con, &["SET", "k", "w"]).unwrap();
    let Value::Array(latest) = q::<Value>(&mut con, &["LATENCY", "LATEST"]).unwrap() else {
        panic!()
    };
    let Some(Value::Array(event)) = latest.first() else {
        panic!("no event: {latest:?}")
    };
    assert_eq!(event[0], Value::BulkString(b"aof-fsync-always".to_vec()));
    let Value::Int(ms) = event[2] else { panic!() };
    assert!(ms >= 20, "the sync took {ms} ms");
    let Value::Array(history) =
        q::<Value>(&mut con, &["LATENCY", "HISTORY", "aof-fsync-always"]).unwrap()
    else {
        panic!()
    };
    assert_eq!(history.len(), 1);
    let doctor: String = q(&mut con, &["LATENCY", "DOCTOR"]).unwrap();
    assert!(doctor.contains("aof-fsync-always"), "{doctor}");
    assert_eq!(q::<i64>(&mut con, &["LATENCY", "RESET"]).unwrap(), 1);
}

#[test]
fn config_rewrite_writes_a_file_the_server_restarts_from() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moodb.ron");
    std::fs::write(&path, "(databases: 4)\n").unwrap();
    let mut s = TestServer::start(ServerOptions {
        args: vec!["--config".into(), path.display().to_string()],
        ..ServerOptions::default()
    })
    .unwrap();
    let mut con = s.connect().unwrap();
    set(
        &mut con,
        &[
            "maxclients",
            "77",
            "slowlog-max-len",
            "5",
            "notify-keyspace-events",
            "KEA",
            "client-output-buffer-limit",
            "pubsub 2mb 1mb 7",
            "appendfsync",
            "everysec",
        ],
    );
    assert_eq!(q::<String>(&mut con, &["CONFIG", "REWRITE"]).unwrap(), "OK");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("max_clients: 77"), "{text}");
    drop(con);
    s.restart().unwrap();
    let mut con = s.connect().unwrap();
    assert_eq!(get(&mut con, "maxclients"), "77");
    assert_eq!(get(&mut con, "slowlog-max-len"), "5");
    assert_eq!(get(&mut con, "databases"), "4");
    assert_eq!(get(&mut con, "appendfsync"), "everysec");
    assert_eq!(get(&mut con, "notify-keyspace-events"), "AKE");
    assert!(get(&mut con, "client-output-buffer-limit").ends_with("pubsub 2097152 1048576 7"));
    // A server started without a file says so, as Redis does.
    let plain = TestServer::start(ServerOptions::default()).unwrap();
    let err = q::<String>(&mut plain.connect().unwrap(), &["CONFIG", "REWRITE"]).unwrap_err();
    assert!(
        err.to_string()
            .contains("The server is running without a config file"),
        "{err}"
    );
}

#[test]
fn waitaof_is_truthful_per_sync_policy() {
    let s = TestServer::start(ServerOptions::default()).unwrap();
    let mut con = s.connect().unwrap();
    let _: () = q(&mut con, &["SET", "k", "v"]).unwrap();
    assert_eq!(
        q::<Vec<i64>>(&mut con, &["WAITAOF", "1", "0", "0"]).unwrap(),
        [1, 0]
    );
    let never = TestServer::start(ServerOptions {
        sync: Some("never".into()),
        ..ServerOptions::default()
    })
    .unwrap();
    let mut con = never.connect().unwrap();
    let err = q::<Vec<i64>>(&mut con, &["WAITAOF", "1", "0", "0"]).unwrap_err();
    assert!(err.to_string().contains("appendonly is disabled"), "{err}");
    assert_eq!(
        q::<Vec<i64>>(&mut con, &["WAITAOF", "0", "0", "0"]).unwrap(),
        [0, 0]
    );
}

#[test]
fn info_counts_commands_errors_and_cpu_with_real_figures() {
    let s = TestServer::start(ServerOptions::default()).unwrap();
    let mut con = s.connect().unwrap();
    for i in 0..50 {
        let _: () = q(&mut con, &["SET", &format!("k{i}"), &"v".repeat(100)]).unwrap();
    }
    let _: Option<String> = q(&mut con, &["GET", "k1"]).unwrap();
    let _: Option<String> = q(&mut con, &["GET", "nope"]).unwrap();
    let _ = q::<i64>(&mut con, &["INCR", "k1"]);
    let stats: String = q(&mut con, &["INFO", "commandstats"]).unwrap();
    assert!(stats.contains("cmdstat_set:calls=50,"), "{stats}");
    assert!(
        stats.contains("cmdstat_incr:calls=1,") && stats.contains("failed_calls=1"),
        "{stats}"
    );
    assert_eq!(info_field(&mut con, "stats", "keyspace_hits"), "1");
    assert_eq!(info_field(&mut con, "stats", "keyspace_misses"), "1");
    assert_eq!(
        info_field(&mut con, "errorstats", "errorstat_ERR"),
        "count=1"
    );
    let used: u64 = info_field(&mut con, "memory", "used_memory")
        .parse()
        .unwrap();
    // 50 keys of about 102 bytes of payload each.
    assert!((50 * 102..50 * 1024).contains(&used), "used_memory {used}");
    let rss: u64 = info_field(&mut con, "memory", "used_memory_rss")
        .parse()
        .unwrap();
    let real = moodb_tests::raw::resident_bytes(s.pid().unwrap()).unwrap();
    assert!(rss.abs_diff(real) < real / 2, "rss {rss} vs /proc {real}");
    let cpu: f64 = info_field(&mut con, "cpu", "used_cpu_user")
        .parse()
        .unwrap();
    assert!(cpu >= 0.0);
    // The ops sampler runs every 100 ms.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        for _ in 0..20 {
            let _: String = q(&mut con, &["PING"]).unwrap();
        }
        if info_field(&mut con, "stats", "instantaneous_ops_per_sec") != "0" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "instantaneous_ops_per_sec stays 0"
        );
    }
    assert_eq!(
        q::<String>(&mut con, &["CONFIG", "RESETSTAT"]).unwrap(),
        "OK"
    );
    assert_eq!(info_field(&mut con, "stats", "total_error_replies"), "0");
    let stats: String = q(&mut con, &["INFO", "commandstats"]).unwrap();
    assert!(!stats.contains("cmdstat_set"), "{stats}");
}
