//! Records a real concurrent history from several clients against a `redis-server` on
//! 127.0.0.1 and checks it is linearizable. Skipped (with a message) when redis-server is not
//! installed.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use moodb_tests::linearizability::client::{Conn, Dialect, RecordingClient};
use moodb_tests::linearizability::{check, Op, Recorder};
use rand::{Rng, SeedableRng};

struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis(dir: &std::path::Path) -> Option<(Redis, SocketAddr)> {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = match Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(err) => {
            eprintln!("skipping: redis-server is not installed or would not start ({err})");
            return None;
        }
    };
    let redis = Redis(child);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(mut c) = Conn::connect(addr, Duration::from_secs(1)) {
            if c.command(&[b"PING"]).is_ok() {
                return Some((redis, addr));
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!("redis-server did not answer PING within 10 s");
}

#[test]
fn concurrent_history_against_redis_is_linearizable() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_redis, addr)) = start_redis(dir.path()) else {
        return;
    };
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
    let dir = tempfile::tempdir().unwrap();
    let Some((_redis, addr)) = start_redis(dir.path()) else {
        return;
    };
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
