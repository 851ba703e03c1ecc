//! `cargo xtask crash-test --cluster N`: the crash test with a raft cluster of N real
//! `moodb serve` processes (`moodb_tests::TestCluster`, `--sync always`) as the server. Each
//! iteration drives the cluster with the crash workload's recording clients spread over the
//! nodes (a client whose request is left in doubt by a lost connection or `-TRYAGAIN` goes on
//! at the next node), `kill -9`s one node at a random moment (the leader two times in three),
//! restarts it on its data a little later, stops the load, waits until every node applied
//! the same raft index, reads every key back and applies the single-node checks of
//! [`super::verify`]: nothing acknowledged lost, nothing phantom, transactions whole, the
//! history linearizable.
//!
//! In doubt, a write may still take effect after its client gave up (a new leader commits
//! what the old one replicated), so the history's pending operations are given the moment the
//! cluster converged after the load as their deadline, not the kill. The cluster lives across
//! iterations; each iteration's final state is the next one's initial state.

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use moodb_tests::linearizability::client::{Conn, RecordingClient};
use moodb_tests::linearizability::{Completion, Op, Output, Recorder};
use moodb_tests::TestCluster;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::verify::{self, Findings};
use super::workload::{self, Load};
use super::{Args, CrashError, VERIFIER};

/// How long the cluster may take to elect a leader or to converge.
const SETTLE: Duration = Duration::from_secs(20);

/// Runs the cluster campaign of `n` nodes with the moodb binary `moodb_bin`.
pub fn run(
    args: &Args,
    n: u64,
    seed: u64,
    moodb_bin: &std::path::Path,
) -> Result<ExitCode, CrashError> {
    if args.backend != "paper" {
        return Err(CrashError::Start(
            "--cluster runs on the paper backend (the raft log is the paper log)".into(),
        ));
    }
    // The harness starts the binary named here (tests/src/server.rs, `moodb_binary`).
    std::env::set_var("MOODB_BIN", moodb_bin);
    let iterations = args.iterations.unwrap_or(if args.short { 8 } else { 50 });
    let mut rng = StdRng::seed_from_u64(seed);
    let mut cluster = TestCluster::start(n, &["--sync", "always"])?;
    if cluster.leader(None, SETTLE).is_none() {
        return Err(CrashError::Start(format!(
            "the cluster elected no leader:\n{}",
            cluster.outputs()
        )));
    }
    let mut initial = HashMap::new();
    let mut sent = HashSet::new();
    let mut total = Findings::default();
    let (mut ops, mut acked, mut pending, mut leader_kills) = (0u64, 0u64, 0u64, 0u64);
    let mut done = 0;
    for i in 0..iterations {
        let iter_seed: u64 = rng.gen();
        let mut irng = StdRng::seed_from_u64(iter_seed);
        let it = iteration(args, &mut cluster, i, &mut irng, &mut initial, &mut sent)?;
        done += 1;
        ops += it.ops;
        acked += it.acked;
        pending += it.pending;
        leader_kills += u64::from(it.killed_leader);
        if it.findings.violations() > 0 {
            eprintln!("crash-test: cluster iteration {i} (iteration seed {iter_seed}) found:");
            for m in &it.findings.messages {
                eprintln!("  {m}");
            }
        }
        total.add(&it.findings);
        if it.findings.violations() > 0 {
            break;
        }
    }
    println!(
        "crash-test: {done} iterations, {} acknowledged writes lost, {} phantom writes, {} partial transactions (seed {seed})",
        total.lost_acked, total.phantoms, total.partial_txns
    );
    println!(
        "crash-test: also {} values read then lost, {} non-linearizable keys; {ops} client requests ({acked} key operations acknowledged, {pending} in doubt), {leader_kills} of {done} kills hit the leader (cluster of {n}, backend paper, sync always)",
        total.lost_read, total.nonlinearizable
    );
    if total.violations() > 0 {
        println!("crash-test: FAILED: rerun with --cluster {n} --seed {seed}");
        println!("{}", cluster.outputs());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// What one iteration found and did.
struct Iteration {
    findings: Findings,
    ops: u64,
    acked: u64,
    pending: u64,
    killed_leader: bool,
}

fn iteration(
    args: &Args,
    cluster: &mut TestCluster,
    index: u64,
    rng: &mut StdRng,
    initial: &mut HashMap<Vec<u8>, Option<Vec<u8>>>,
    sent: &mut HashSet<(Vec<u8>, Vec<u8>)>,
) -> Result<Iteration, CrashError> {
    let mut findings = Findings::default();
    let load = Load {
        clients: args.clients.max(cluster.nodes.len() as u64),
        keys: args.keys,
        counters: args.counters,
        transactions: args.txn != super::TxnMode::Off,
        dialect: moodb_tests::linearizability::client::Dialect::Moodb,
        iteration: index,
    };
    let (min_ms, max_ms) = if args.short { (200, 700) } else { (300, 2000) };
    let kill_after = Duration::from_millis(rng.gen_range(min_ms / 2..max_ms));
    let down_for = Duration::from_millis(rng.gen_range(100..800));
    let after_restart = Duration::from_millis(rng.gen_range(100..500));
    let addrs: Vec<_> = cluster.nodes.iter().map(|n| n.addr).collect();
    let recorder = Recorder::new();
    let stop = Arc::new(AtomicBool::new(false));
    let until = Instant::now() + kill_after + down_for + after_restart + Duration::from_secs(30);
    let handles: Vec<_> = (0..load.clients)
        .map(|c| {
            let (load, recorder, stop) = (load.clone(), recorder.clone(), stop.clone());
            // Client c starts on node c mod N and fails over to the next ones.
            let mut mine = addrs.clone();
            mine.rotate_left(c as usize % addrs.len());
            let seed: u64 = rng.gen();
            thread::spawn(move || {
                workload::run_client_on(&load, c, &mine, true, recorder, seed, stop, until)
            })
        })
        .collect();
    thread::sleep(kill_after);
    let leader = cluster.leader(None, Duration::from_secs(2));
    let aim_at_leader = rng.gen_ratio(2, 3);
    let victim = match leader {
        Some(l) if aim_at_leader => l,
        // A follower (or, with no leader known now, any node).
        Some(l) => (l + rng.gen_range(1..cluster.nodes.len())) % cluster.nodes.len(),
        None => rng.gen_range(0..cluster.nodes.len()),
    };
    let killed_leader = leader == Some(victim);
    cluster.nodes[victim].kill9()?;
    thread::sleep(down_for);
    cluster.nodes[victim].start()?;
    thread::sleep(after_restart);
    stop.store(true, Ordering::Relaxed);
    let mut ops = 0;
    for h in handles {
        match h.join() {
            Ok(out) => {
                ops += out.ops;
                if let Some(err) = out.protocol_error {
                    findings.messages.push(format!("protocol error: {err}"));
                    findings.phantoms += 1;
                }
            }
            Err(_) => findings.messages.push("a client thread panicked".into()),
        }
    }
    converge(cluster)?;
    // Whatever was in doubt has taken effect by now or never will.
    recorder.crash();
    let kill_at = recorder.now();
    let load_ops = recorder.history();
    let (mut acked, mut pending) = (0, 0);
    for op in &load_ops {
        if let Op::Set(v) | Op::Update(v) = &op.op {
            sent.insert((op.key.clone(), v.clone()));
        }
        match op.completion {
            Completion::Returned { .. } => acked += 1,
            Completion::Pending { .. } => pending += 1,
        }
    }

    // Read everything back, through a node picked at random (forwarded to the leader).
    let at = rng.gen_range(0..cluster.nodes.len());
    let mut final_state = HashMap::new();
    for key in load.all_keys() {
        let value = read_back(cluster, at, &key, &recorder)?;
        final_state.insert(key, value);
    }
    let all = recorder.history();
    let final_reads: Vec<_> = all
        .iter()
        .filter(|o| o.client == VERIFIER)
        .cloned()
        .collect();
    let input = verify::Input {
        load: &load_ops,
        final_reads: &final_reads,
        initial,
        final_state: &final_state,
        sent,
        kill_at,
        window_start: None,
        loss_allowed: false,
        linearizability: true,
    };
    let mut checked = verify::verify(&input);
    checked.messages.append(&mut findings.messages);
    checked.add(&findings);
    *initial = final_state;
    Ok(Iteration {
        findings: checked,
        ops,
        acked,
        pending,
        killed_leader,
    })
}

/// Waits until a leader is elected and every node applied the same raft index.
fn converge(cluster: &TestCluster) -> Result<(), CrashError> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let offsets: Vec<Option<i64>> = cluster.nodes.iter().map(|n| n.offset()).collect();
        let leader = cluster.leader(None, Duration::ZERO);
        if leader.is_some() && offsets[0].is_some() && offsets.iter().all(|o| *o == offsets[0]) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(CrashError::Start(format!(
                "the cluster did not converge within {SETTLE:?} (offsets {offsets:?}):\n{}",
                cluster.outputs()
            )));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// GET `key` through node `at` as the verifier (recorded), retrying `-TRYAGAIN` (recorded
/// as pending reads, which constrain nothing) for a bounded time.
fn read_back(
    cluster: &TestCluster,
    at: usize,
    key: &[u8],
    recorder: &Recorder,
) -> Result<Option<Vec<u8>>, CrashError> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let conn = Conn::connect(cluster.nodes[at].addr, Duration::from_secs(10))?;
        let mut reader = RecordingClient::new(
            conn,
            VERIFIER,
            moodb_tests::linearizability::client::Dialect::Moodb,
            recorder.clone(),
        );
        match reader.run(key, Op::Get) {
            Ok(Output::Value(v)) => return Ok(v),
            Ok(_) => return Ok(None),
            Err(e) if Instant::now() >= deadline => return Err(e.into()),
            Err(_) => thread::sleep(Duration::from_millis(100)),
        }
    }
}
