//! Transactions and CAS against a real `moodb serve` (paper backend, sync always) through the
//! `redis` crate: MULTI/EXEC/DISCARD, WATCH conflicts from a second connection (a write, an
//! expiry, a FLUSHDB), EXECABORT, runtime errors inside EXEC, Redis' misuse errors, one log
//! record per transaction, CAS, and all-or-nothing transactions across `kill -9` + restart.

// Test helpers may panic on failure like the tests themselves.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moodb_tests::{query as q, ServerOptions, TestServer};
use redis::{cmd, Value};

fn server() -> TestServer {
    TestServer::start(ServerOptions::default()).unwrap()
}

fn get(con: &mut redis::Connection, key: &str) -> Option<String> {
    q(con, &["GET", key]).unwrap()
}

fn err_text(r: redis::RedisResult<Value>) -> String {
    let e = r.expect_err("an error reply");
    format!(
        "{} {}",
        e.code().unwrap_or_default(),
        e.detail().unwrap_or_default()
    )
}

fn queued(con: &mut redis::Connection, args: &[&str]) {
    assert_eq!(q::<String>(con, args).unwrap(), "QUEUED", "{args:?}");
}

fn last_lsn(con: &mut redis::Connection) -> u64 {
    let info: String = q(con, &["INFO", "persistence"]).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("moodb_last_lsn:"))
        .unwrap_or_else(|| panic!("no moodb_last_lsn in INFO:\n{info}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn multi_exec_runs_the_queue_as_one_record() {
    let s = server();
    let mut con = s.connect().unwrap();
    let before = last_lsn(&mut con);
    assert_eq!(q::<String>(&mut con, &["MULTI"]).unwrap(), "OK");
    queued(&mut con, &["SET", "a", "1"]);
    queued(&mut con, &["INCR", "a"]);
    queued(&mut con, &["MSET", "b", "x", "c", "y"]);
    queued(&mut con, &["GET", "a"]);
    queued(&mut con, &["PING"]);
    // Raw, since the redis crate turns an error inside an array into an error of the whole.
    let reply = redis::ConnectionLike::req_command(&mut con, &cmd("EXEC")).unwrap();
    let Value::Array(replies) = reply else {
        panic!("EXEC answered {reply:?}")
    };
    assert_eq!(
        replies,
        vec![
            Value::Okay,
            Value::Int(2),
            Value::Okay,
            Value::BulkString(b"2".to_vec()),
            Value::SimpleString("PONG".into()),
        ]
    );
    assert_eq!(last_lsn(&mut con), before + 1, "four writes, one record");

    // A transaction that writes nothing appends nothing.
    assert_eq!(q::<String>(&mut con, &["MULTI"]).unwrap(), "OK");
    queued(&mut con, &["GET", "a"]);
    queued(&mut con, &["DEL", "nothing-here"]);
    // Raw, since the redis crate turns an error inside an array into an error of the whole.
    let reply = redis::ConnectionLike::req_command(&mut con, &cmd("EXEC")).unwrap();
    let Value::Array(replies) = reply else {
        panic!("EXEC answered {reply:?}")
    };
    assert_eq!(
        replies,
        vec![Value::BulkString(b"2".to_vec()), Value::Int(0)]
    );
    assert_eq!(last_lsn(&mut con), before + 1);

    // redis::pipe().atomic() wraps the pipeline in MULTI/EXEC.
    let (x, n): (String, i64) = redis::pipe()
        .atomic()
        .set("x", "1")
        .ignore()
        .incr("x", 5)
        .get("x")
        .query(&mut con)
        .unwrap();
    assert_eq!((x.as_str(), n), ("6", 6));
    assert_eq!(last_lsn(&mut con), before + 2);

    // Survives a restart whole.
    let mut s = s;
    s.restart().unwrap();
    let mut con = s.connect().unwrap();
    assert_eq!(get(&mut con, "a").as_deref(), Some("2"));
    assert_eq!(get(&mut con, "c").as_deref(), Some("y"));
    assert_eq!(get(&mut con, "x").as_deref(), Some("6"));
}

#[test]
fn misuse_gets_redis_errors() {
    let s = server();
    let mut con = s.connect().unwrap();
    assert_eq!(err_text(q(&mut con, &["EXEC"])), "ERR EXEC without MULTI");
    assert_eq!(
        err_text(q(&mut con, &["DISCARD"])),
        "ERR DISCARD without MULTI"
    );
    assert_eq!(q::<String>(&mut con, &["MULTI"]).unwrap(), "OK");
    assert_eq!(
        err_text(q(&mut con, &["MULTI"])),
        "ERR MULTI calls can not be nested"
    );
    assert_eq!(
        err_text(q(&mut con, &["WATCH", "k"])),
        "ERR WATCH inside MULTI is not allowed"
    );
    queued(&mut con, &["SET", "k", "v"]);
    // Those errors do not abort the transaction.
    // Raw, since the redis crate turns an error inside an array into an error of the whole.
    let reply = redis::ConnectionLike::req_command(&mut con, &cmd("EXEC")).unwrap();
    let Value::Array(replies) = reply else {
        panic!("EXEC answered {reply:?}")
    };
    assert_eq!(replies, vec![Value::Okay]);

    // DISCARD drops the queue.
    assert_eq!(q::<String>(&mut con, &["MULTI"]).unwrap(), "OK");
    queued(&mut con, &["SET", "k", "discarded"]);
    assert_eq!(q::<String>(&mut con, &["DISCARD"]).unwrap(), "OK");
    assert_eq!(get(&mut con, "k").as_deref(), Some("v"));
    assert_eq!(err_text(q(&mut con, &["EXEC"])), "ERR EXEC without MULTI");
}

#[test]
fn a_queueing_error_aborts_the_whole_transaction() {
    let s = server();
    let mut con = s.connect().unwrap();
    let before = last_lsn(&mut con);
    assert_eq!(q::<String>(&mut con, &["MULTI"]).unwrap(), "OK");
    queued(&mut con, &["SET", "a", "1"]);
    let unknown = err_text(q(&mut con, &["FROBNICATE", "a"]));
    assert!(
        // As sent, as Redis 7 does (MooDB used to lower-case it).
        unknown.starts_with("ERR unknown command 'FROBNICATE'"),
        "{unknown}"
    );
    assert_eq!(
        err_text(q(&mut con, &["GET"])),
        "ERR wrong number of arguments for 'get' command"
    );
    queued(&mut con, &["SET", "b", "2"]);
    assert_eq!(
        err_text(q(&mut con, &["EXEC"])),
        "EXECABORT Transaction discarded because of previous errors."
    );
    assert_eq!(get(&mut con, "a"), None);
    assert_eq!(get(&mut con, "b"), None);
    assert_eq!(last_lsn(&mut con), before);
}

#[test]
fn a_runtime_error_is_reported_in_its_slot_and_the_rest_applies() {
    let s = server();
    let mut con = s.connect().unwrap();
    assert_eq!(q::<String>(&mut con, &["SET", "s", "abc"]).unwrap(), "OK");
    assert_eq!(q::<String>(&mut con, &["MULTI"]).unwrap(), "OK");
    queued(&mut con, &["SET", "a", "1"]);
    queued(&mut con, &["INCR", "s"]);
    queued(&mut con, &["SET", "b", "2"]);
    // Raw, since the redis crate turns an error inside an array into an error of the whole.
    let reply = redis::ConnectionLike::req_command(&mut con, &cmd("EXEC")).unwrap();
    let Value::Array(replies) = reply else {
        panic!("EXEC answered {reply:?}")
    };
    assert_eq!(replies.len(), 3);
    assert_eq!(replies[0], Value::Okay);
    assert!(
        matches!(&replies[1], Value::ServerError(e) if e.details() == Some("value is not an integer or out of range")),
        "{:?}",
        replies[1]
    );
    assert_eq!(replies[2], Value::Okay);
    assert_eq!(get(&mut con, "a").as_deref(), Some("1"));
    assert_eq!(get(&mut con, "b").as_deref(), Some("2"));
    assert_eq!(get(&mut con, "s").as_deref(), Some("abc"));
}

/// WATCH k, then `change` from a second connection, then MULTI SET k mine EXEC.
fn exec_after(s: &TestServer, setup: &[&[&str]], change: &[&str]) -> Value {
    let mut con = s.connect().unwrap();
    let mut other = s.connect().unwrap();
    for c in setup {
        q::<Value>(&mut con, c).unwrap();
    }
    assert_eq!(q::<String>(&mut con, &["WATCH", "k"]).unwrap(), "OK");
    if !change.is_empty() {
        q::<Value>(&mut other, change).unwrap();
    }
    assert_eq!(q::<String>(&mut con, &["MULTI"]).unwrap(), "OK");
    queued(&mut con, &["SET", "k", "mine"]);
    q(&mut con, &["EXEC"]).unwrap()
}

#[test]
fn watch_aborts_exec_when_another_client_changed_the_key() {
    let s = server();
    let mut con = s.connect().unwrap();

    // Untouched: EXEC runs.
    assert_eq!(exec_after(&s, &[], &[]), Value::Array(vec![Value::Okay]));
    assert_eq!(get(&mut con, "k").as_deref(), Some("mine"));

    // A write from another connection: EXEC answers nil and changes nothing.
    assert_eq!(exec_after(&s, &[], &["SET", "k", "theirs"]), Value::Nil);
    assert_eq!(get(&mut con, "k").as_deref(), Some("theirs"));

    // Even a write of the same value, or a delete.
    assert_eq!(exec_after(&s, &[], &["SET", "k", "theirs"]), Value::Nil);
    assert_eq!(exec_after(&s, &[], &["DEL", "k"]), Value::Nil);
    assert_eq!(get(&mut con, "k"), None);

    // A write to another key does not abort; a failed SET NX changes nothing and does not.
    assert_eq!(q::<String>(&mut con, &["SET", "k", "v"]).unwrap(), "OK");
    assert_eq!(
        exec_after(&s, &[], &["SET", "other", "x"]),
        Value::Array(vec![Value::Okay])
    );
    assert_eq!(
        exec_after(&s, &[], &["SET", "k", "x", "NX"]),
        Value::Array(vec![Value::Okay])
    );

    // FLUSHDB from another connection aborts.
    assert_eq!(exec_after(&s, &[], &["FLUSHDB"]), Value::Nil);
    assert_eq!(get(&mut con, "k"), None);

    // So does the key's expiry between WATCH and EXEC.
    let mut watcher = s.connect().unwrap();
    assert_eq!(
        q::<String>(&mut watcher, &["SET", "k", "short", "PX", "30"]).unwrap(),
        "OK"
    );
    assert_eq!(q::<String>(&mut watcher, &["WATCH", "k"]).unwrap(), "OK");
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(q::<String>(&mut watcher, &["MULTI"]).unwrap(), "OK");
    queued(&mut watcher, &["SET", "k", "mine"]);
    assert_eq!(q::<Value>(&mut watcher, &["EXEC"]).unwrap(), Value::Nil);
    assert_eq!(get(&mut con, "k"), None);

    // UNWATCH forgets the watch.
    assert_eq!(q::<String>(&mut watcher, &["WATCH", "k"]).unwrap(), "OK");
    assert_eq!(q::<String>(&mut con, &["SET", "k", "x"]).unwrap(), "OK");
    assert_eq!(q::<String>(&mut watcher, &["UNWATCH"]).unwrap(), "OK");
    assert_eq!(q::<String>(&mut watcher, &["MULTI"]).unwrap(), "OK");
    queued(&mut watcher, &["SET", "k", "mine"]);
    assert_eq!(
        q::<Value>(&mut watcher, &["EXEC"]).unwrap(),
        Value::Array(vec![Value::Okay])
    );
}

#[test]
fn watch_based_increments_from_many_clients_lose_nothing() {
    let s = server();
    let (clients, per_client) = (4, 25);
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let url = s.url();
            std::thread::spawn(move || {
                let mut con = redis::Client::open(url)
                    .and_then(|c| c.get_connection())
                    .unwrap();
                let mut retries = 0;
                for _ in 0..per_client {
                    loop {
                        q::<String>(&mut con, &["WATCH", "counter"]).unwrap();
                        let n: i64 = q::<Option<i64>>(&mut con, &["GET", "counter"])
                            .unwrap()
                            .unwrap_or(0);
                        let r: Option<Vec<String>> = redis::pipe()
                            .atomic()
                            .set("counter", n + 1)
                            .query(&mut con)
                            .unwrap();
                        if r.is_some() {
                            break;
                        }
                        retries += 1;
                    }
                }
                retries
            })
        })
        .collect();
    let retries: i32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let mut con = s.connect().unwrap();
    assert_eq!(
        get(&mut con, "counter"),
        Some((clients * per_client).to_string())
    );
    eprintln!("{retries} optimistic retries");
}

#[test]
fn cas_swaps_only_the_expected_value() {
    let s = server();
    let mut con = s.connect().unwrap();
    assert_eq!(q::<i64>(&mut con, &["CAS", "k", "a", "b"]).unwrap(), 0);
    assert_eq!(get(&mut con, "k"), None, "a missing key is not created");
    assert_eq!(
        q::<String>(&mut con, &["SET", "k", "a", "EX", "100"]).unwrap(),
        "OK"
    );
    assert_eq!(q::<i64>(&mut con, &["CAS", "k", "x", "b"]).unwrap(), 0);
    assert_eq!(get(&mut con, "k").as_deref(), Some("a"));
    assert_eq!(q::<i64>(&mut con, &["CAS", "k", "a", "b"]).unwrap(), 1);
    assert_eq!(get(&mut con, "k").as_deref(), Some("b"));
    assert_eq!(
        err_text(q(&mut con, &["CAS", "k", "b"])),
        "ERR wrong number of arguments for 'cas' command"
    );

    // CAS as the atomic step of concurrent increments: nothing is lost.
    q::<String>(&mut con, &["SET", "n", "0"]).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let url = s.url();
            std::thread::spawn(move || {
                let mut con = redis::Client::open(url)
                    .and_then(|c| c.get_connection())
                    .unwrap();
                for _ in 0..25 {
                    loop {
                        let n: i64 = q(&mut con, &["GET", "n"]).unwrap();
                        let (old, new) = (n.to_string(), (n + 1).to_string());
                        if q::<i64>(&mut con, &["CAS", "n", &old, &new]).unwrap() == 1 {
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(get(&mut con, "n").as_deref(), Some("100"));

    // Inside a transaction too, and it survives a restart.
    assert_eq!(q::<String>(&mut con, &["MULTI"]).unwrap(), "OK");
    queued(&mut con, &["CAS", "n", "100", "done"]);
    queued(&mut con, &["CAS", "n", "100", "again"]);
    let replies: Vec<i64> = q(&mut con, &["EXEC"]).unwrap();
    assert_eq!(replies, vec![1, 0]);
    let mut s = s;
    s.restart().unwrap();
    let mut con = s.connect().unwrap();
    assert_eq!(get(&mut con, "n").as_deref(), Some("done"));
}

/// Transactions of four writes each run from several clients while the server is killed with
/// SIGKILL: after the restart every transaction's keys are all there or all absent, and every
/// acknowledged one is all there.
#[test]
fn transactions_are_all_or_nothing_across_kill_9() {
    let mut s = server();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let attempted = Arc::new(Mutex::new(Vec::new()));
    let clients = 4;
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let url = s.url();
            let (stop, acked, attempted) = (
                Arc::clone(&stop),
                Arc::clone(&acked),
                Arc::clone(&attempted),
            );
            std::thread::spawn(move || {
                let Ok(mut con) = redis::Client::open(url).and_then(|c| c.get_connection()) else {
                    return;
                };
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let tag = format!("t{c}:{i}");
                    attempted.lock().unwrap().push(tag.clone());
                    let mut p = redis::pipe();
                    p.atomic();
                    for part in ["a", "b", "c", "d"] {
                        p.set(format!("{tag}:{part}"), &tag).ignore();
                    }
                    if p.query::<()>(&mut con).is_err() {
                        return;
                    }
                    acked.lock().unwrap().push(tag);
                    i += 1;
                }
            })
        })
        .collect();
    // Let a few hundred transactions through, then kill mid-stream.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 300 {
        assert!(
            std::time::Instant::now() < deadline,
            "fewer than 300 transactions in 60 s; server stderr:\n{}",
            s.stderr()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    s.kill9().unwrap();
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| t.join().unwrap());

    s.restart().unwrap();
    let mut con = s.connect().unwrap();
    let acked: std::collections::HashSet<String> = acked.lock().unwrap().iter().cloned().collect();
    let attempted = attempted.lock().unwrap().clone();
    let (mut whole, mut absent) = (0, 0);
    for tag in &attempted {
        let keys: Vec<String> = ["a", "b", "c", "d"]
            .iter()
            .map(|p| format!("{tag}:{p}"))
            .collect();
        let values: Vec<Option<String>> = cmd("MGET").arg(&keys).query(&mut con).unwrap();
        let present = values.iter().filter(|v| v.is_some()).count();
        assert!(
            present == 0 || present == 4,
            "transaction {tag} is half there after kill -9: {values:?}"
        );
        if present == 4 {
            assert!(values.iter().all(|v| v.as_deref() == Some(tag.as_str())));
            whole += 1;
        } else {
            assert!(!acked.contains(tag), "acknowledged transaction {tag} lost");
            absent += 1;
        }
    }
    assert!(whole >= acked.len());
    eprintln!(
        "{} transactions attempted, {} acknowledged, {whole} whole after restart, {absent} absent",
        attempted.len(),
        acked.len()
    );
}
