//! Records a real concurrent history from several clients against a `redis-server` on
//! 127.0.0.1 and checks it is linearizable. Skipped (with a message) when redis-server is not
//! installed.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::collections::HashMap;
use std::thread;
use std::time::Duration;

use moodb_tests::linearizability::client::{Conn, Dialect, RecordingClient};
use moodb_tests::linearizability::{check, Op, Recorder};
use moodb_tests::redis_server::RedisServer;
use rand::{Rng, SeedableRng};

#[test]
fn concurrent_history_against_redis_is_linearizable() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let addr = redis.addr();
    let recorder = Recorder::new();
    let handles: Vec<_> = (0..4u64)
        .map(|id| {
            let recorder = recorder.clone();
            thread::spawn(move || {
                let conn = Conn::connect(addr, Duration::from_secs(5)).unwrap();
                let mut c = RecordingClient::new(conn, id, Dialect::Redis, recorder);
                let mut rng = rand::rngs::StdRng::seed_from_u64(id);
                for seq in 0..300u64 {
                    let key = format!("k{}", rng.gen_range(0..3));
                    let v = format!("c{id}s{seq}").into_bytes();
                    let op = match rng.gen_range(0..5) {
                        0 => Op::Get,
                        1 => Op::Set(v),
                        2 => Op::Del,
                        3 => Op::Update(v),
                        _ => {
                            c.run(format!("n{}", seq % 2).as_bytes(), Op::Incr).unwrap();
                            continue;
                        }
                    };
                    c.run(key.as_bytes(), op).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let history = recorder.history();
    assert_eq!(history.len(), 1200);
    check(&history, &HashMap::new()).assert_all_linearizable(5);
}

#[test]
fn tampered_history_from_redis_is_rejected() {
    // The same kind of real history, then one read answer is replaced by an older value: the
    // checker must notice.
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let addr = redis.addr();
    let recorder = Recorder::new();
    let conn = Conn::connect(addr, Duration::from_secs(5)).unwrap();
    let mut c = RecordingClient::new(conn, 0, Dialect::Redis, recorder.clone());
    c.run(b"k", Op::Set(b"first".to_vec())).unwrap();
    c.run(b"k", Op::Set(b"second".to_vec())).unwrap();
    c.run(b"k", Op::Get).unwrap();
    let mut history = recorder.history();
    assert!(check(&history, &HashMap::new()).ok());
    if let moodb_tests::linearizability::Completion::Returned { output, .. } =
        &mut history[2].completion
    {
        *output = moodb_tests::linearizability::Output::Value(Some(b"first".to_vec()));
    }
    assert!(!check(&history, &HashMap::new()).ok());
}
