//! Records real concurrent histories from several clients against a real `moodb serve`
//! (paper backend, sync always) and checks they are linearizable per key: GET, SET, DEL,
//! UPDATE, INCR, CAS and single-key MULTI/EXEC transactions; then the same across a `kill -9`
//! and restart, where operations without an answer took effect before the crash or never.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::collections::HashMap;
use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use moodb_tests::linearizability::client::{Conn, Dialect, RecordingClient};
use moodb_tests::linearizability::{check, Op, Output, Recorder};
use moodb_tests::{ServerOptions, TestServer};
use rand::{Rng, SeedableRng};

const CLIENTS: u64 = 4;
const KEYS: u64 = 3;

/// One random operation for client `id`. CAS expects the last value this client saw on the key,
/// so that swaps succeed often enough to matter.
fn random_op(
    rng: &mut impl Rng,
    id: u64,
    seq: u64,
    last_seen: &HashMap<String, Vec<u8>>,
) -> (String, Op) {
    let key = format!("k{}", rng.gen_range(0..KEYS));
    let v = format!("c{id}s{seq}").into_bytes();
    let expected = last_seen
        .get(&key)
        .cloned()
        .unwrap_or_else(|| b"c0s0".to_vec());
    let op = match rng.gen_range(0..10) {
        0 | 1 => Op::Get,
        2 => Op::Set(v),
        3 => Op::Del,
        4 => Op::Update(v),
        5 | 6 => Op::Cas { expected, new: v },
        7 => Op::Txn(vec![Op::Get, Op::Set(v)]),
        8 => Op::Txn(vec![Op::Cas { expected, new: v }, Op::Get]),
        _ => {
            let counter = format!("n{}", seq % 2);
            let op = if rng.gen_bool(0.5) {
                Op::Incr
            } else {
                Op::Txn(vec![Op::Incr, Op::Get, Op::Incr])
            };
            return (counter, op);
        }
    };
    (key, op)
}

fn remember(last_seen: &mut HashMap<String, Vec<u8>>, key: &str, op: &Op, output: &Output) {
    let seen = match (op, output) {
        (Op::Get, Output::Value(Some(v))) | (Op::Set(v), _) => Some(v.clone()),
        (Op::Txn(ops), Output::Txn(outs)) => {
            ops.iter()
                .zip(outs)
                .rev()
                .find_map(|(op, out)| match (op, out) {
                    (Op::Get, Output::Value(Some(v))) | (Op::Set(v), _) => Some(v.clone()),
                    _ => None,
                })
        }
        _ => None,
    };
    if let Some(v) = seen {
        last_seen.insert(key.to_string(), v);
    }
}

/// Runs `ops` random operations from each of `CLIENTS` clients; a client stops at its first
/// connection error (the operation stays pending in the history).
fn run_clients(addr: SocketAddr, recorder: &Recorder, round: u64, ops: u64) {
    let handles: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let recorder = recorder.clone();
            let id = round * CLIENTS + c;
            thread::spawn(move || {
                let Ok(conn) = Conn::connect(addr, Duration::from_secs(10)) else {
                    return;
                };
                let mut client = RecordingClient::new(conn, id, Dialect::Moodb, recorder);
                let mut rng = rand::rngs::StdRng::seed_from_u64(id);
                let mut last_seen = HashMap::new();
                for seq in 0..ops {
                    let (key, op) = random_op(&mut rng, id, seq, &last_seen);
                    match client.run(key.as_bytes(), op.clone()) {
                        Ok(output) => remember(&mut last_seen, &key, &op, &output),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn concurrent_history_against_moodb_is_linearizable() {
    let s = TestServer::start(ServerOptions::default()).unwrap();
    let recorder = Recorder::new();
    run_clients(s.addr, &recorder, 0, 150);
    let history = recorder.history();
    assert_eq!(history.len(), (CLIENTS * 150) as usize);
    let swaps = history
        .iter()
        .filter(|o| {
            matches!(
                o.completion,
                moodb_tests::linearizability::Completion::Returned {
                    output: Output::Int(1),
                    ..
                }
            ) && matches!(o.op, Op::Cas { .. })
        })
        .count();
    eprintln!("{} operations, {swaps} successful CAS", history.len());
    check(&history, &HashMap::new()).assert_all_linearizable(KEYS as usize + 2);
}

#[test]
fn history_across_kill_9_and_restart_is_linearizable() {
    let mut s = TestServer::start(ServerOptions::default()).unwrap();
    let recorder = Recorder::new();
    let addr = s.addr;
    let load = {
        let recorder = recorder.clone();
        thread::spawn(move || run_clients(addr, &recorder, 0, 100_000))
    };
    // Kill the server once the clients are well into their history.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while recorder.history().len() < 300 {
        assert!(
            std::time::Instant::now() < deadline,
            "fewer than 300 operations in 60 s; server stderr:\n{}",
            s.stderr()
        );
        thread::sleep(Duration::from_millis(5));
    }
    s.kill9().unwrap();
    load.join().unwrap();
    recorder.crash();
    s.restart().unwrap();
    run_clients(s.addr, &recorder, 1, 60);
    let history = recorder.history();
    eprintln!("{} operations across the crash", history.len());
    check(&history, &HashMap::new()).assert_all_linearizable(KEYS as usize + 2);
}
