//! The server's commands through the `redis` crate, against a real `moodb serve` (paper
//! backend, sync always): the wire, INFO of a real backend, pipelining and concurrent clients.

// Test helpers may panic on failure like the tests themselves.
#![allow(clippy::unwrap_used)]

use moodb_tests::{query as q, ServerOptions, TestServer};
use redis::{cmd, Value};

fn server() -> TestServer {
    TestServer::start(ServerOptions::default()).unwrap()
}

// What each command answers is specified by the golden scripts run against the store
// (engine/core/tests/scripts/*.txt); these tests check what needs a real server and socket.

#[test]
fn values_are_binary_safe_over_the_wire() {
    let s = server();
    let mut con = s.connect().unwrap();
    let blob: Vec<u8> = (0..=255u8).collect();
    let _: () = cmd("SET").arg("bin").arg(&blob).query(&mut con).unwrap();
    assert_eq!(
        cmd("GET").arg("bin").query::<Vec<u8>>(&mut con).unwrap(),
        blob
    );
    // Expiry follows the server's wall clock.
    let _: () = q(&mut con, &["SET", "ttl", "1", "PX", "100"]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    assert_eq!(
        q::<Option<String>>(&mut con, &["GET", "ttl"]).unwrap(),
        None
    );
}

#[test]
fn keyspace_commands() {
    let s = server();
    let mut con = s.connect().unwrap();
    for i in 0..50 {
        let _: () = q(&mut con, &["SET", &format!("user:{i}"), "x"]).unwrap();
        let _: () = q(&mut con, &["SET", &format!("item:{i}"), "y"]).unwrap();
    }
    assert_eq!(q::<i64>(&mut con, &["DBSIZE"]).unwrap(), 100);
    let mut users: Vec<String> = q(&mut con, &["KEYS", "user:*"]).unwrap();
    users.sort();
    assert_eq!(users.len(), 50);
    // SCAN with MATCH/COUNT visits each key once.
    let mut seen: Vec<String> = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, keys): (String, Vec<String>) = q(
            &mut con,
            &["SCAN", &cursor, "MATCH", "item:*", "COUNT", "7"],
        )
        .unwrap();
        seen.extend(keys);
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 50);
    assert!(seen.iter().all(|k| k.starts_with("item:")));
    assert_eq!(
        q::<i64>(&mut con, &["DEL", "user:1", "user:2", "nope"]).unwrap(),
        2
    );
    assert_eq!(q::<i64>(&mut con, &["DELETE", "user:3"]).unwrap(), 1);
    assert_eq!(
        q::<i64>(&mut con, &["EXISTS", "user:1", "user:4"]).unwrap(),
        1
    );
    assert_eq!(q::<String>(&mut con, &["FLUSHDB"]).unwrap(), "OK");
    assert_eq!(q::<i64>(&mut con, &["DBSIZE"]).unwrap(), 0);
}

#[test]
fn server_commands_and_errors() {
    let s = server();
    let mut con = s.connect().unwrap();
    assert_eq!(q::<String>(&mut con, &["PING"]).unwrap(), "PONG");
    assert_eq!(q::<String>(&mut con, &["ping", "hi"]).unwrap(), "hi");
    assert_eq!(q::<String>(&mut con, &["ECHO", "hello"]).unwrap(), "hello");
    assert_eq!(q::<String>(&mut con, &["SELECT", "0"]).unwrap(), "OK");
    assert_eq!(
        q::<String>(&mut con, &["CLIENT", "SETNAME", "t"]).unwrap(),
        "OK"
    );
    let _: () = q(&mut con, &["SET", "a", "1"]).unwrap();
    let info: String = q(&mut con, &["INFO"]).unwrap();
    for needle in [
        "# Server",
        "# Persistence",
        "# Stats",
        "moodb_backend:paper",
        "moodb_sync:always",
        "db0:keys=1,",
        "moodb_fsync_count:",
        "moodb_log_bytes:",
    ] {
        assert!(info.contains(needle), "INFO lacks {needle}:\n{info}");
    }
    let fsyncs: u64 = info_field(&info, "moodb_fsync_count").parse().unwrap();
    assert!(fsyncs >= 1, "a durable SET costs a sync");
    let persistence: String = q(&mut con, &["INFO", "persistence"]).unwrap();
    assert!(persistence.starts_with("# Persistence") && !persistence.contains("# Stats"));
    let cfg: Vec<String> = q(&mut con, &["CONFIG", "GET", "appendonly"]).unwrap();
    assert_eq!(cfg, vec!["appendonly", "yes"]);
    let cfg: Vec<String> = q(&mut con, &["CONFIG", "GET", "save"]).unwrap();
    assert_eq!(cfg, vec!["save", ""]);
    let commands: Vec<Value> = q(&mut con, &["COMMAND"]).unwrap();
    assert!(commands.len() > 20);
    assert!(q::<i64>(&mut con, &["COMMAND", "COUNT"]).unwrap() > 20);
    // Errors keep the connection open.
    let err = q::<String>(&mut con, &["FROB", "x"]).unwrap_err();
    // Redis 7 names the command as sent ('FROB'); MooDB used to lower-case it.
    assert!(err.to_string().contains("unknown command 'FROB'"), "{err}");
    let err = q::<String>(&mut con, &["GET"]).unwrap_err();
    assert!(
        err.to_string()
            .contains("wrong number of arguments for 'get'"),
        "{err}"
    );
    let err = q::<String>(&mut con, &["SET", "k", "v", "EX", "0"]).unwrap_err();
    assert!(err.to_string().contains("invalid expire time"), "{err}");
    assert_eq!(q::<String>(&mut con, &["PING"]).unwrap(), "PONG");
}

fn info_field(info: &str, name: &str) -> String {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in INFO:\n{info}"))
        .trim()
        .to_string()
}

#[test]
fn save_and_bgsave_checkpoint_now() {
    let s = server();
    let mut con = s.connect().unwrap();
    let _: () = q(&mut con, &["SET", "a", "1"]).unwrap();
    assert_eq!(q::<String>(&mut con, &["SAVE"]).unwrap(), "OK");
    let info: String = q(&mut con, &["INFO", "persistence"]).unwrap();
    assert_eq!(info_field(&info, "moodb_last_checkpoint_lsn"), "1");
    let _: () = q(&mut con, &["SET", "b", "2"]).unwrap();
    let reply: String = q(&mut con, &["BGSAVE"]).unwrap();
    assert!(reply.contains("Background saving"));
    // SAVE after BGSAVE waits for a checkpoint that covers both writes.
    assert_eq!(q::<String>(&mut con, &["SAVE"]).unwrap(), "OK");
    let info: String = q(&mut con, &["INFO", "persistence"]).unwrap();
    assert_eq!(info_field(&info, "moodb_last_checkpoint_lsn"), "2");
    assert!(q::<i64>(&mut con, &["LASTSAVE"]).unwrap() > 0);
}

#[test]
fn pipelined_requests_get_replies_in_order() {
    let s = server();
    let mut con = s.connect().unwrap();
    let mut pipe = redis::pipe();
    for i in 0..500 {
        pipe.cmd("SET").arg(format!("k{i}")).arg(i);
        pipe.cmd("GET").arg(format!("k{i}"));
        pipe.cmd("INCR").arg("counter");
    }
    let replies: Vec<Value> = pipe.query(&mut con).unwrap();
    assert_eq!(replies.len(), 1500);
    for i in 0..500 {
        assert_eq!(
            replies[3 * i + 1],
            Value::BulkString(i.to_string().into_bytes())
        );
        assert_eq!(replies[3 * i + 2], Value::Int(i as i64 + 1));
    }
}

#[test]
fn thirty_two_concurrent_clients() {
    let s = server();
    let url = s.url();
    let threads: Vec<_> = (0..32)
        .map(|t| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
                for i in 0..50 {
                    let key = format!("c{t}:{i}");
                    let _: () = q(&mut con, &["SET", &key, &i.to_string()]).unwrap();
                    assert_eq!(q::<i64>(&mut con, &["GET", &key]).unwrap(), i);
                    let _: i64 = q(&mut con, &["INCR", "shared"]).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut con = s.connect().unwrap();
    assert_eq!(q::<i64>(&mut con, &["GET", "shared"]).unwrap(), 32 * 50);
    assert_eq!(q::<i64>(&mut con, &["DBSIZE"]).unwrap(), 32 * 50 + 1);
}

#[test]
fn quit_and_protocol_errors_close_only_their_connection() {
    use std::io::{Read, Write};
    let s = server();
    let mut raw = std::net::TcpStream::connect(s.addr).unwrap();
    raw.write_all(b"PING\r\n*1\r\n$4\r\nPING\r\nQUIT\r\nPING\r\n")
        .unwrap();
    let mut out = Vec::new();
    raw.read_to_end(&mut out).unwrap();
    assert_eq!(out, b"+PONG\r\n+PONG\r\n+OK\r\n");

    let mut raw = std::net::TcpStream::connect(s.addr).unwrap();
    raw.write_all(b"*1\r\n$4\r\nPING\r\n*1\r\n$-7\r\n").unwrap();
    let mut out = Vec::new();
    raw.read_to_end(&mut out).unwrap();
    assert_eq!(
        out,
        b"+PONG\r\n-ERR Protocol error: invalid bulk length\r\n"
    );

    let mut con = s.connect().unwrap();
    assert_eq!(q::<String>(&mut con, &["PING"]).unwrap(), "PONG");
}

#[test]
fn decoder_limits_come_from_the_config_file() {
    use std::io::{Read, Write};
    let s = TestServer::start(ServerOptions {
        config: Some("(limits: (max_bulk_len: 16, max_args: 4))".into()),
        ..Default::default()
    })
    .unwrap();
    let mut con = s.connect().unwrap();
    let _: () = q(&mut con, &["SET", "k", "0123456789abcdef"]).unwrap();
    let mut raw = std::net::TcpStream::connect(s.addr).unwrap();
    raw.write_all(b"*2\r\n$3\r\nGET\r\n$17\r\n").unwrap();
    let mut out = Vec::new();
    raw.read_to_end(&mut out).unwrap();
    assert_eq!(out, b"-ERR Protocol error: invalid bulk length\r\n");
    let err = q::<()>(&mut con, &["MGET", "a", "b", "c", "d"]);
    assert!(err.is_err());
}
