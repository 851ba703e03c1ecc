//! Faults on a cluster of three real `moodb serve` processes, with histories checked for
//! linearizability. The raft links run through in-test proxies ([`TestCluster::start_proxied`]):
//! under a load of several recording clients spread over the nodes, the leader is cut off
//! from the others (a new leader is elected; the old one answers TRYAGAIN or nothing, never
//! stale data), healed, then a follower is cut off and healed; the whole history, closed by a
//! read of every key once the cluster is whole, must be linearizable (so no acknowledged
//! write is lost and nothing stale or phantom was read). A follower whose raft log tail was
//! torn (kill -9, its last `raftlog-*` segment cut by some bytes, restart) rejoins, catches
//! up, and serves every acknowledged write from its own store (read there with READONLY).

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use moodb_tests::cluster::TestCluster;
use moodb_tests::linearizability::client::{Conn, Dialect, RecordingClient, Reply};
use moodb_tests::linearizability::{check, Op, Output, Recorder};
use rand::{Rng, SeedableRng};

const KEYS: u64 = 10;
/// Clients per node.
const CLIENTS_PER_NODE: usize = 2;
/// The most operations one client runs (bounds the history the checker searches), and the
/// pause between two (the load has to last through every phase).
const MAX_OPS: u64 = 2000;
const PAUSE: Duration = Duration::from_millis(8);

/// A random single-key operation (no INCR: its error reply would read as "not an integer"
/// where a TRYAGAIN means "may or may not have been applied").
fn random_op(rng: &mut impl Rng, id: u64, seq: u64, last: &HashMap<u64, Vec<u8>>) -> (Vec<u8>, Op) {
    let k = rng.gen_range(0..KEYS);
    let v = format!("c{id}s{seq}").into_bytes();
    let expected = last.get(&k).cloned().unwrap_or_else(|| b"none".to_vec());
    let op = match rng.gen_range(0..9) {
        0..=2 => Op::Get,
        3 | 4 => Op::Set(v),
        5 => Op::Del,
        6 => Op::Update(v),
        7 => Op::Cas { expected, new: v },
        _ => Op::Txn(vec![Op::Get, Op::Set(v)]),
    };
    (format!("k{k}").into_bytes(), op)
}

/// What the clients saw, beyond the history.
#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    /// Error replies (TRYAGAIN) and connection failures: the operation stays pending.
    failed: AtomicU64,
}

/// Starts `CLIENTS_PER_NODE` recording clients on every node; each runs random operations
/// until `stop` (or `MAX_OPS`), reconnecting (as a new client id) after a failure, which leaves
/// the operation pending in the history.
fn start_load(
    cluster: &TestCluster,
    recorder: &Recorder,
    stop: &Arc<AtomicBool>,
    counts: &Arc<Counts>,
) -> Vec<thread::JoinHandle<()>> {
    let mut handles = Vec::new();
    let mut next_id = 0u64;
    for node in &cluster.nodes {
        for _ in 0..CLIENTS_PER_NODE {
            let base = next_id;
            next_id += 1000;
            let addr = node.addr;
            let (recorder, stop, counts) = (recorder.clone(), stop.clone(), counts.clone());
            handles.push(thread::spawn(move || {
                let mut rng = rand::rngs::StdRng::seed_from_u64(base);
                let mut last = HashMap::new();
                let mut id = base;
                let mut client: Option<RecordingClient> = None;
                for seq in 0..MAX_OPS {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let c = match client.as_mut() {
                        Some(c) => c,
                        None => match Conn::connect(addr, Duration::from_secs(3)) {
                            Ok(conn) => client.insert(RecordingClient::new(
                                conn,
                                id,
                                Dialect::Moodb,
                                recorder.clone(),
                            )),
                            Err(_) => {
                                thread::sleep(Duration::from_millis(50));
                                continue;
                            }
                        },
                    };
                    thread::sleep(PAUSE);
                    let (key, op) = random_op(&mut rng, id, seq, &last);
                    match c.run(&key, op.clone()) {
                        Ok(output) => {
                            counts.ok.fetch_add(1, Ordering::SeqCst);
                            if let (Op::Set(v), Output::Ok) | (Op::Get, Output::Value(Some(v))) =
                                (&op, &output)
                            {
                                last.insert(u64::from(key[1] - b'0'), v.clone());
                            }
                        }
                        Err(_) => {
                            counts.failed.fetch_add(1, Ordering::SeqCst);
                            // The connection may hold replies not read yet: a new one, as a
                            // new client (the pending operation stays pending).
                            client = None;
                            id += 1;
                            thread::sleep(Duration::from_millis(20));
                        }
                    }
                }
            }));
        }
    }
    handles
}

/// Reads every key once through node `at` (recorded), retrying TRYAGAIN for a bounded time.
fn read_all(cluster: &TestCluster, at: usize, recorder: &Recorder) {
    let deadline = Instant::now() + Duration::from_secs(15);
    for k in 0..KEYS {
        let key = format!("k{k}").into_bytes();
        loop {
            let conn = Conn::connect(cluster.nodes[at].addr, Duration::from_secs(3)).unwrap();
            let mut c = RecordingClient::new(conn, 1_000_000 + k, Dialect::Moodb, recorder.clone());
            if c.run(&key, Op::Get).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "key k{k} unreadable\n{}",
                cluster.outputs()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Waits until every node applied what the leader did (ROLE offsets equal).
fn converged(cluster: &TestCluster, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let offsets: Vec<Option<i64>> = cluster.nodes.iter().map(|n| n.offset()).collect();
        if offsets[0].is_some() && offsets.iter().all(|o| *o == offsets[0]) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "offsets never converged: {offsets:?}\n{}",
            cluster.outputs()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// SET `key` on node `at` on a connection of its own: the raw reply, or `None` when none came
/// within `timeout`.
fn try_set(
    cluster: &TestCluster,
    at: usize,
    key: &str,
    value: &str,
    timeout: Duration,
) -> Option<Reply> {
    let mut conn = Conn::connect(cluster.nodes[at].addr, timeout).ok()?;
    conn.command(&[b"SET", key.as_bytes(), value.as_bytes()])
        .ok()
}

#[test]
fn isolating_the_leader_then_a_follower_keeps_every_history_linearizable() {
    let cluster = TestCluster::start_proxied(3, &[]).unwrap();
    let leader = cluster
        .leader(None, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no leader\n{}", cluster.outputs()));
    let recorder = Recorder::new();
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let load = start_load(&cluster, &recorder, &stop, &counts);
    thread::sleep(Duration::from_millis(700));

    // The leader cut off: the others elect a new one; the old one acknowledges nothing.
    cluster.isolate(leader);
    let cut_at = Instant::now();
    let next = cluster
        .leader(Some(leader), Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no new leader\n{}", cluster.outputs()));
    eprintln!("new leader node {} after {:?}", next + 1, cut_at.elapsed());
    match try_set(
        &cluster,
        leader,
        "fault:isolated",
        "x",
        Duration::from_secs(8),
    ) {
        None => {}
        Some(Reply::Error(e)) => assert!(e.starts_with("TRYAGAIN"), "{e}"),
        Some(other) => panic!("the isolated leader acknowledged a write: {other:?}"),
    }
    thread::sleep(Duration::from_millis(500));
    cluster.heal();
    converged(&cluster, Duration::from_secs(20));
    thread::sleep(Duration::from_millis(500));

    // A follower cut off and healed: the others go on.
    let now_leader = cluster.leader(None, Duration::from_secs(10)).unwrap();
    let follower = (0..3).find(|i| *i != now_leader).unwrap();
    cluster.isolate(follower);
    thread::sleep(Duration::from_millis(1500));
    let ok_before = counts.ok.load(Ordering::SeqCst);
    thread::sleep(Duration::from_millis(500));
    assert!(
        counts.ok.load(Ordering::SeqCst) > ok_before,
        "nothing answered while a follower was cut off\n{}",
        cluster.outputs()
    );
    cluster.heal();
    converged(&cluster, Duration::from_secs(20));
    thread::sleep(Duration::from_millis(500));

    stop.store(true, Ordering::SeqCst);
    for h in load {
        h.join().unwrap();
    }
    converged(&cluster, Duration::from_secs(20));
    let end_leader = cluster.leader(None, Duration::from_secs(10)).unwrap();
    for at in 0..3 {
        read_all(&cluster, at, &recorder);
    }
    let history = recorder.history();
    eprintln!(
        "{} operations, {} answered, {} failed or unanswered; leader at the end: node {}",
        history.len(),
        counts.ok.load(Ordering::SeqCst),
        counts.failed.load(Ordering::SeqCst),
        end_leader + 1
    );
    assert!(
        counts.ok.load(Ordering::SeqCst) > 100,
        "too little load to mean anything"
    );
    let report = check(&history, &HashMap::new());
    report.assert_all_linearizable(KEYS as usize);
}

/// The newest `raftlog-*` segment of `dir`.
fn last_segment(dir: &std::path::Path) -> std::path::PathBuf {
    let mut segments: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("raftlog-"))
                .is_some_and(|index| index.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    segments.sort();
    segments
        .pop()
        .unwrap_or_else(|| panic!("no raft log in {}", dir.display()))
}

/// SET through any node, retrying a TRYAGAIN (a restarted node may call an election) or a lost
/// connection for a bounded time: the same value again, so a retry of a write that was applied
/// after all changes nothing.
fn set_retrying(cluster: &TestCluster, key: &str, value: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut at = 0;
    loop {
        if let Some(Reply::Simple(s)) = try_set(cluster, at % 3, key, value, Duration::from_secs(5))
        {
            if s == "OK" {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "SET {key} never acknowledged\n{}",
            cluster.outputs()
        );
        at += 1;
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_follower_with_a_torn_raft_log_tail_rejoins_and_catches_up() {
    let mut cluster = TestCluster::start(3, &[]).unwrap();
    let leader = cluster
        .leader(None, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no leader\n{}", cluster.outputs()));
    let follower = (0..3).find(|i| *i != leader).unwrap();
    let mut acknowledged: HashMap<String, String> = HashMap::new();
    for i in 0..200 {
        let (k, v) = (format!("t{}", i % 50), format!("a{i}"));
        set_retrying(&cluster, &k, &v);
        acknowledged.insert(k, v);
    }
    converged(&cluster, Duration::from_secs(10));

    cluster.nodes[follower].kill9().unwrap();
    let segment = last_segment(&cluster.nodes[follower].data_dir);
    // The records end where the zeros of a spare segment begin (or at the end of the file).
    let bytes = std::fs::read(&segment).unwrap();
    let len = bytes.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1) as u64;
    let cut = 13.min(len / 2);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(len - cut)
        .unwrap();
    // Writes go on meanwhile (a majority is up).
    for i in 200..300 {
        let (k, v) = (format!("t{}", i % 50), format!("b{i}"));
        set_retrying(&cluster, &k, &v);
        acknowledged.insert(k, v);
    }
    cluster.nodes[follower].start().unwrap();
    for i in 300..350 {
        let (k, v) = (format!("t{}", i % 50), format!("c{i}"));
        set_retrying(&cluster, &k, &v);
        acknowledged.insert(k, v);
    }
    converged(&cluster, Duration::from_secs(20));
    let out = cluster.nodes[follower].output();
    // `moodb: cluster: raft log recovered: RaftLogRecovery { entries: .., bytes_truncated: N }`
    let truncated = out
        .lines()
        .find(|l| l.contains("raft log recovered"))
        .and_then(|l| l.split("bytes_truncated: ").nth(1))
        .and_then(|rest| rest.trim_end_matches([' ', '}']).parse::<u64>().ok());
    assert!(
        truncated.is_some_and(|n| n > 0),
        "the torn tail was not cut and reported:\n{out}"
    );

    // Its own store holds every acknowledged write: read there with READONLY (the offsets
    // converged, so it applied everything the leader did).
    let mut con = cluster.nodes[follower].connect().unwrap();
    let ok: String = redis::cmd("READONLY").query(&mut con).unwrap();
    assert_eq!(ok, "OK");
    for (k, v) in &acknowledged {
        let got: Option<String> = redis::cmd("GET").arg(k).query(&mut con).unwrap();
        assert_eq!(
            got.as_deref(),
            Some(v.as_str()),
            "key {k} on the repaired node"
        );
    }
}

/// openraft 0.9 restarts a node that led with a committed vote as the leader of the same term
/// (no election, no new blank entry). Such a leader must not serve before it has re-applied
/// its whole log: found by `cargo xtask crash-test --cluster 3`, where it answered INCRs from
/// a store refilled only in part, so acknowledged increments were lost. Here clients INCR one
/// counter on the leader without pause while it is killed and restarted at once: no two
/// acknowledged INCRs may answer the same value, and none may answer less than one before it.
#[test]
fn a_leader_restarted_at_once_serves_only_once_it_reapplied_its_log() {
    let mut cluster = TestCluster::start(3, &[]).unwrap();
    for round in 0..3 {
        let leader = cluster
            .leader(None, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no leader\n{}", cluster.outputs()));
        let addr = cluster.nodes[leader].addr;
        let mut con = cluster.nodes[leader].connect().unwrap();
        // A log long enough that re-applying it takes a while.
        for i in 0..400 {
            let _: () = redis::cmd("SET")
                .arg(format!("r{i}"))
                .arg(format!("v{round}.{i}"))
                .query(&mut con)
                .unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let hammers: Vec<_> = (0..3)
            .map(|_| {
                let stop = stop.clone();
                thread::spawn(move || {
                    let mut acked: Vec<(Instant, Instant, i64)> = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        let Ok(mut conn) = Conn::connect(addr, Duration::from_secs(3)) else {
                            thread::sleep(Duration::from_millis(5));
                            continue;
                        };
                        loop {
                            if stop.load(Ordering::SeqCst) {
                                break;
                            }
                            let sent = Instant::now();
                            match conn.command(&[b"INCR", b"counter"]) {
                                Ok(Reply::Int(n)) => acked.push((sent, Instant::now(), n)),
                                Ok(_) => {}
                                Err(_) => break,
                            }
                        }
                    }
                    acked
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(300));
        // Back before its followers' lease runs out: it resumes its term.
        cluster.nodes[leader].kill9().unwrap();
        cluster.nodes[leader].start().unwrap();
        thread::sleep(Duration::from_secs(3));
        stop.store(true, Ordering::SeqCst);
        let mut acked: Vec<(Instant, Instant, i64)> = Vec::new();
        for h in hammers {
            acked.extend(h.join().unwrap());
        }
        let mut values: Vec<i64> = acked.iter().map(|a| a.2).collect();
        values.sort_unstable();
        let before = values.len();
        values.dedup();
        assert_eq!(
            before,
            values.len(),
            "round {round}: two acknowledged INCRs answered the same value (an increment lost)\n{}",
            cluster.outputs()
        );
        // Real time: an INCR sent after another was answered answers more.
        for a in &acked {
            for b in &acked {
                assert!(
                    !(b.0 > a.1 && b.2 <= a.2),
                    "round {round}: INCR answered {} after one that answered {}\n{}",
                    b.2,
                    a.2,
                    cluster.outputs()
                );
            }
        }
        let now = cluster.leader(None, Duration::from_secs(10)).unwrap();
        let mut con = cluster.nodes[now].connect().unwrap();
        for i in 0..400 {
            let got: Option<String> = redis::cmd("GET")
                .arg(format!("r{i}"))
                .query(&mut con)
                .unwrap();
            assert_eq!(
                got,
                Some(format!("v{round}.{i}")),
                "round {round}, key r{i}"
            );
        }
    }
}
