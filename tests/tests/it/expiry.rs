//! Real expiry over the wire: the server's active cycle deletes expired keys nobody reads
//! (INFO's key count falls, `expired_keys` rises), its DELETE records are logged, so a
//! restart replays them; and a key whose expiry passed while the server was down is not
//! visible after recovery (GET, EXISTS, DBSIZE, KEYS, SCAN, RANDOMKEY).

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use moodb_tests::{query as q, ServerOptions, TestServer};

/// The value of `field` in INFO's text.
fn info_field(con: &mut redis::Connection, field: &str) -> String {
    let info: String = q(con, &["INFO"]).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO:\n{info}"))
        .trim()
        .to_string()
}

#[test]
fn the_active_cycle_deletes_expired_keys_and_logs_it() {
    let mut server = TestServer::start(ServerOptions::default()).unwrap();
    let mut con = server.connect().unwrap();
    for i in 0..300 {
        let _: () = q(&mut con, &["SET", &format!("t{i}"), "v", "PX", "1500"]).unwrap();
    }
    let _: () = q(&mut con, &["SET", "keep", "v"]).unwrap();
    assert_eq!(
        info_field(&mut con, "db0"),
        "keys=301,expires=300,avg_ttl=0"
    );
    // Nobody reads them: only the active cycle (every 100 ms) can delete them.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !info_field(&mut con, "db0").starts_with("keys=1,") {
        assert!(Instant::now() < deadline, "expired keys were not deleted");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(info_field(&mut con, "expired_keys"), "300");
    assert_eq!(q::<i64>(&mut con, &["DBSIZE"]).unwrap(), 1);
    // The deletions are in the log: after a restart the key space holds one key.
    drop(con);
    server.restart().unwrap();
    let mut con = server.connect().unwrap();
    assert_eq!(info_field(&mut con, "db0"), "keys=1,expires=0,avg_ttl=0");
}

#[test]
fn a_key_that_expired_while_the_server_was_down_stays_gone() {
    let mut server = TestServer::start(ServerOptions::default()).unwrap();
    let mut con = server.connect().unwrap();
    let _: () = q(&mut con, &["SET", "brief", "v", "PX", "300"]).unwrap();
    let _: () = q(&mut con, &["SET", "keep", "v"]).unwrap();
    drop(con);
    server.kill9().unwrap();
    std::thread::sleep(Duration::from_millis(400));
    server.restart().unwrap();
    let mut con = server.connect().unwrap();
    assert_eq!(q::<i64>(&mut con, &["DBSIZE"]).unwrap(), 1);
    assert_eq!(
        q::<Vec<String>>(&mut con, &["KEYS", "*"]).unwrap(),
        ["keep"]
    );
    let (_, scanned): (String, Vec<String>) = q(&mut con, &["SCAN", "0"]).unwrap();
    assert_eq!(scanned, ["keep"]);
    for _ in 0..10 {
        assert_eq!(q::<String>(&mut con, &["RANDOMKEY"]).unwrap(), "keep");
    }
    assert_eq!(
        q::<Option<String>>(&mut con, &["GET", "brief"]).unwrap(),
        None
    );
    assert_eq!(q::<i64>(&mut con, &["EXISTS", "brief"]).unwrap(), 0);
    assert_eq!(q::<i64>(&mut con, &["TTL", "brief"]).unwrap(), -2);
}
