//! `cargo xtask crash-test`: the crash-injection and recovery-verification harness.
//!
//! Each iteration starts a real `moodb serve` on 127.0.0.1 (fresh or inherited data directory),
//! drives it with concurrent recording clients, `kill -9`s it at a random moment (checkpoints
//! are made frequent, and a third of the paper iterations wait for a checkpoint's temporary file
//! and kill while it is written), optionally damages the newest log (torn tail or flipped bit),
//! restarts it on the same directory, reads its recovery figures from `--ready-file`, reads every key back
//! and verifies the result against the recorded history (see [`verify`]). Without
//! `--moodb-bin` it builds `target/release/moodb` first.
//!
//! Damage policy: after a bit flip or cut, recovery must either report a truncation or refuse to
//! start with an error naming the file and a byte offset at or before the damage; a flipped bit
//! in a paper log that recovery neither cuts, refuses nor salvages is a violation (every byte is
//! under a checksum). After a refusal the harness restarts the way an operator would: moodb with
//! `--salvage` (and, if the segment's header itself is damaged, with the segment set aside),
//! sled on a fresh database (it cannot salvage), redis after cutting its AOF at the damage.
//! Losses are accepted only after such a report; phantoms and partial transactions never are.
//!
//! Self-test (`--self-test`): the same short campaign against deliberately broken builds
//! (`MOODB_FAILPOINTS=server::ack_before_write=on`, `recovery::skip_checksum=on` with bit flips);
//! it fails unless every one is caught, so the harness cannot pass by checking nothing.
//!
//! Cluster (`--cluster N`, [`cluster`]): the same workload and checks against N real nodes of
//! a raft cluster, killing one node (the leader more often) per iteration and restarting it.
//!
//! Reproducibility: every random choice (operations, keys, kill moment, damage offset) comes
//! from `--seed`; the timing of real processes does not, so a seed reproduces the same plan,
//! not the same interleaving.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use indicatif::{ProgressBar, ProgressStyle};
use moodb_tests::linearizability::client::{ClientError, Conn, RecordingClient};
use moodb_tests::linearizability::{Bytes, Completion, Op, Output, Recorder};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

mod cluster;
mod damage;
mod server;
mod verify;
mod workload;

use damage::Damage;
use server::{ServerConfig, Started, Target};
use verify::Findings;
use workload::Load;

/// Errors that stop the harness itself (not violations of the server under test).
#[derive(Debug, thiserror::Error)]
pub enum CrashError {
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        source: std::io::Error,
    },
    #[error("starting the server failed: {0}")]
    Start(String),
    #[error("building moodb failed: {0}")]
    Build(String),
    #[error("talking to the server failed: {0}")]
    Client(#[from] ClientError),
    #[error(transparent)]
    Harness(#[from] moodb_tests::HarnessError),
}

impl CrashError {
    fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> CrashError {
        move |source| CrashError::Io { context, source }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncMode {
    Always,
    Every,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TxnMode {
    Auto,
    On,
    Off,
}

/// Options of `cargo xtask crash-test`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Number of kill/restart iterations (default 100, or 8 with --short).
    #[arg(long)]
    iterations: Option<u64>,
    /// Seed of every random choice; printed on failure (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// Storage backend of moodb.
    #[arg(long, default_value = "paper")]
    backend: String,
    /// Sync policy; under every/never only the documented loss window may be lost.
    #[arg(long, value_enum, default_value = "always")]
    sync: SyncMode,
    /// The interval of --sync every, in milliseconds.
    #[arg(long, default_value_t = 50)]
    every_ms: u64,
    /// Damage the newest log between kill and restart.
    #[arg(long, value_enum, default_value = "none")]
    damage: Damage,
    /// Short mode for CI: few iterations, 0.1–0.6 s of load each.
    #[arg(long)]
    short: bool,
    /// Check the harness itself: run deliberately broken servers and expect violations.
    #[arg(long)]
    self_test: bool,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    clients: u64,
    /// Value keys (k0…) and counter keys (n0…).
    #[arg(long, default_value_t = 24)]
    keys: usize,
    #[arg(long, default_value_t = 4)]
    counters: usize,
    /// MULTI/EXEC transactions: auto-detected by default.
    #[arg(long, value_enum, default_value = "auto")]
    txn: TxnMode,
    /// Keep the data directory even when the run passes.
    #[arg(long)]
    keep_data: bool,
    /// Pass `--maxmemory` to moodb (e.g. `1kb`): values spill to value segments, so kills land
    /// between spills, checkpoints with pointers and their recovery.
    #[arg(long)]
    maxmemory: Option<String>,
    /// The moodb binary (default: build it with `cargo build --release` and use
    /// target/release/moodb).
    #[arg(long)]
    moodb_bin: Option<PathBuf>,
    /// Run against a raft cluster of this many moodb nodes (paper, sync always) instead of one
    /// server: kill -9 one node per iteration, the leader more often, and restart it.
    #[arg(long)]
    cluster: Option<u64>,
    /// Drive redis-server instead of moodb (a known-good baseline for the harness).
    #[arg(long, value_enum, default_value = "moodb", hide = true)]
    target: Target,
}

/// Runs the crash test (or its self-test).
pub fn run(args: Args) -> Result<ExitCode, CrashError> {
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() ^ u64::from(d.subsec_nanos()))
    });
    let moodb_bin = match (args.target, &args.moodb_bin) {
        (Target::Redis, _) => PathBuf::new(),
        (Target::Moodb, Some(p)) => p.clone(),
        (Target::Moodb, None) => build_moodb()?,
    };
    if args.self_test {
        return self_test(&args, seed, &moodb_bin);
    }
    if let Some(n) = args.cluster {
        return cluster::run(&args, n, seed, &moodb_bin);
    }
    let outcome = campaign(&args, seed, &moodb_bin, Vec::new(), args.damage, false)?;
    Ok(if outcome.findings.violations() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn build_moodb() -> Result<PathBuf, CrashError> {
    eprintln!("crash-test: building moodb (cargo build --release --package moodb)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "--package",
            "moodb",
            "--bin",
            "moodb",
        ])
        .status()
        .map_err(|e| CrashError::Build(format!("could not run {cargo}: {e}")))?;
    if !status.success() {
        return Err(CrashError::Build(format!(
            "cargo build exited with {status}"
        )));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("release").join("moodb"))
}

/// The environment variable that switches on moodb's failpoints (engine/core/src/failpoint.rs).
const FAILPOINTS_ENV: &str = "MOODB_FAILPOINTS";

/// A deliberately broken build: its name, the server's environment, the damage to inject, and
/// the backend it must run on (`None`: the one asked for).
type Fault = (
    &'static str,
    Vec<(String, String)>,
    Damage,
    Option<&'static str>,
);

/// Runs deliberately broken servers and fails unless every one is caught.
fn self_test(args: &Args, seed: u64, moodb_bin: &Path) -> Result<ExitCode, CrashError> {
    let mut args = args.clone();
    args.short = true;
    args.sync = SyncMode::Always;
    args.iterations = Some(args.iterations.unwrap_or(60));
    // (name, environment, damage): each must produce at least one violation.
    let faults: Vec<Fault> = match args.target {
        Target::Moodb => vec![
            (
                "server::ack_before_write",
                vec![(FAILPOINTS_ENV.into(), "server::ack_before_write=on".into())],
                Damage::None,
                None,
            ),
            (
                "recovery::skip_checksum",
                vec![(FAILPOINTS_ENV.into(), "recovery::skip_checksum=on".into())],
                Damage::Bitflip,
                // The checksums skipped are the paper engine's own.
                Some("paper"),
            ),
        ],
        // redis stands in: a log tail cut behind the checker's back is what an
        // ack-before-write server loses; redis' AOF has no checksum, like skip-checksum.
        Target::Redis => vec![
            (
                "lost-tail (as ack-before-write)",
                Vec::new(),
                Damage::SilentTruncate,
                None,
            ),
            (
                "no-checksum (as skip-checksum)",
                Vec::new(),
                Damage::Bitflip,
                None,
            ),
        ],
    };
    let mut all_caught = true;
    for (name, env, damage, backend) in faults {
        let mut args = args.clone();
        if let Some(backend) = backend {
            args.backend = backend.into();
        }
        let outcome = campaign(&args, seed, moodb_bin, env, damage, true)?;
        let caught = outcome.findings.violations() > 0;
        println!(
            "crash-test self-test: broken build {name} (backend {}, damage {damage:?}): {} after {} iterations",
            args.backend,
            if caught { "caught" } else { "NOT CAUGHT" },
            outcome.iterations
        );
        if let Some(first) = outcome.findings.messages.first() {
            println!(
                "  first finding: {}",
                first.lines().next().unwrap_or_default()
            );
        }
        all_caught &= caught;
    }
    if all_caught {
        println!("crash-test self-test: every deliberately broken build was caught (seed {seed})");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("crash-test self-test: FAILED, the harness missed a broken build (seed {seed})");
        Ok(ExitCode::FAILURE)
    }
}

struct Outcome {
    findings: Findings,
    iterations: u64,
}

/// Per-run state carried from one iteration to the next.
struct RunState {
    dir: PathBuf,
    initial: HashMap<Bytes, Option<Bytes>>,
    sent: HashSet<(Bytes, Bytes)>,
}

/// What one iteration reports besides the findings.
#[derive(Default)]
struct IterationInfo {
    ops: u64,
    acked: u64,
    pending: u64,
    checkpoint_in_progress: bool,
    truncated: bool,
    refused: bool,
    /// MULTI/EXEC was part of the load.
    transactions: bool,
    /// The restart loaded a checkpoint, and how many log records it replayed.
    from_checkpoint: bool,
    replayed: u64,
}

fn campaign(
    args: &Args,
    seed: u64,
    moodb_bin: &Path,
    env: Vec<(String, String)>,
    damage: Damage,
    stop_at_first: bool,
) -> Result<Outcome, CrashError> {
    let iterations = args.iterations.unwrap_or(if args.short { 8 } else { 100 });
    let mut rng = StdRng::seed_from_u64(seed);
    let tmp = tempfile::Builder::new()
        .prefix("moodb-crash-")
        .tempdir()
        .map_err(CrashError::io("create the data directory"))?;
    let mut state = RunState {
        dir: tmp.path().join("data"),
        initial: HashMap::new(),
        sent: HashSet::new(),
    };
    let sync = match (args.sync, args.target) {
        (SyncMode::Always, _) => "always".to_string(),
        (SyncMode::Every, _) => format!("every:{}", args.every_ms),
        (SyncMode::Never, _) => "never".to_string(),
    };
    let cfg = ServerConfig {
        target: args.target,
        moodb_bin: moodb_bin.to_path_buf(),
        backend: args.backend.clone(),
        sync,
        checkpoint_log_bytes: rng.gen_range(16 * 1024..256 * 1024),
        checkpoint_interval_ms: rng.gen_range(20..200),
        env,
        maxmemory: args.maxmemory.clone(),
    };
    let bar = ProgressBar::new(iterations);
    bar.set_style(
        ProgressStyle::with_template("crash-test {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut total = Findings::default();
    let mut info_total = IterationInfo::default();
    let (mut truncations, mut refusals, mut ckpt_kills, mut txn_iterations) = (0u64, 0, 0, 0);
    let mut ckpt_loads = 0u64;
    let mut done = 0;
    let mut first_messages = Vec::new();
    let mut server: Option<server::Server> = None;
    for i in 0..iterations {
        let iter_seed: u64 = rng.gen();
        let mut irng = StdRng::seed_from_u64(iter_seed);
        let fresh = i == 0 || irng.gen_ratio(1, 5);
        if fresh {
            if let Some(s) = server.take() {
                s.kill9()?;
            }
            if state.dir.exists() {
                fs::remove_dir_all(&state.dir).map_err(CrashError::io("wipe the data dir"))?;
            }
            fs::create_dir_all(&state.dir).map_err(CrashError::io("create the data dir"))?;
            state.initial.clear();
        }
        let result = iteration(args, &cfg, i, &mut irng, &mut state, server.take(), damage);
        let (findings, info, next) = match result {
            Ok(r) => r,
            Err(e) => {
                bar.abandon();
                eprintln!(
                    "crash-test: iteration {i} could not run: {e}\n  seed {seed}, data directory kept at {}",
                    keep(tmp)
                );
                return Err(e);
            }
        };
        server = next;
        done += 1;
        total.add(&findings);
        if first_messages.is_empty() && findings.violations() > 0 {
            first_messages.clone_from(&findings.messages);
        }
        info_total.ops += info.ops;
        info_total.acked += info.acked;
        info_total.pending += info.pending;
        truncations += u64::from(info.truncated);
        refusals += u64::from(info.refused);
        ckpt_kills += u64::from(info.checkpoint_in_progress);
        txn_iterations += u64::from(info.transactions);
        info_total.replayed += info.replayed;
        ckpt_loads += u64::from(info.from_checkpoint);
        bar.set_message(format!(
            "{} ops, {} violations",
            info_total.ops,
            total.violations()
        ));
        bar.inc(1);
        if findings.violations() > 0 {
            if !stop_at_first {
                bar.suspend(|| {
                    eprintln!("crash-test: iteration {i} (iteration seed {iter_seed}) found:");
                    for m in &findings.messages {
                        eprintln!("  {m}");
                    }
                });
            }
            // Without a running server the directory is left as the failure made it: stop.
            if stop_at_first || server.is_none() {
                break;
            }
        }
    }
    if let Some(s) = server.take() {
        s.kill9()?;
    }
    bar.finish_and_clear();
    let txns = format!(", MULTI/EXEC in {txn_iterations} of {done} iterations");
    println!(
        "crash-test: {done} iterations, {} acknowledged writes lost, {} phantom writes, {} partial transactions (seed {seed})",
        total.lost_acked, total.phantoms, total.partial_txns
    );
    println!(
        "crash-test: also {} values read then lost, {} non-linearizable keys, {} damaged logs served without a report; {} client requests ({} key operations acknowledged, {} in doubt at the kill), {ckpt_kills} kills during a checkpoint, {ckpt_loads} recoveries from a checkpoint replaying {} log records, {truncations} reported a truncation, {refusals} refused damaged logs; allowed losses: {} within the sync loss window ({}), {} after reported damage (target {:?}, backend {}, sync {}, damage {:?}{txns})",
        total.lost_read,
        total.nonlinearizable,
        total.unreported_damage,
        info_total.ops,
        info_total.acked,
        info_total.pending,
        info_total.replayed,
        total.lost_in_window,
        match loss_window(args, &cfg) {
            None => "none under kill -9".to_string(),
            Some(ms) if ms > 1_000_000 => "unbounded".to_string(),
            Some(ms) => format!("{ms} ms"),
        },
        total.lost_to_damage,
        args.target,
        cfg.backend,
        cfg.sync,
        damage
    );
    if total.violations() > 0 && !stop_at_first {
        println!(
            "crash-test: FAILED: rerun with --seed {seed}; data directory kept at {}",
            keep(tmp)
        );
    } else if args.keep_data {
        println!("crash-test: data directory kept at {}", keep(tmp));
    }
    total.messages = first_messages;
    Ok(Outcome {
        findings: total,
        iterations: done,
    })
}

fn keep(tmp: tempfile::TempDir) -> String {
    tmp.keep().display().to_string()
}

/// The client id of the reads made after a restart.
const VERIFIER: u64 = 1_000_000;

#[allow(clippy::too_many_arguments)]
fn iteration(
    args: &Args,
    cfg: &ServerConfig,
    index: u64,
    rng: &mut StdRng,
    state: &mut RunState,
    running: Option<server::Server>,
    damage: Damage,
) -> Result<(Findings, IterationInfo, Option<server::Server>), CrashError> {
    let mut info = IterationInfo::default();
    let mut findings = Findings::default();
    let server = match running {
        Some(s) => s,
        None => match server::start(cfg, &state.dir, false)? {
            Started::Ready(s) => s,
            Started::Refused { code, output } => {
                return Err(CrashError::Start(format!(
                    "the server exited ({code:?}) on an undamaged directory:\n{output}"
                )))
            }
        },
    };
    let transactions = match args.txn {
        TxnMode::On => true,
        TxnMode::Off => false,
        TxnMode::Auto => workload::probe_transactions(server.addr),
    };
    info.transactions = transactions;
    let load = Load {
        clients: args.clients,
        keys: args.keys,
        counters: args.counters,
        transactions,
        dialect: cfg.target.dialect(),
        iteration: index,
    };
    let (min_ms, max_ms) = if args.short { (100, 600) } else { (200, 2000) };
    let load_ms = rng.gen_range(min_ms..max_ms);
    let kill_after = Duration::from_millis(rng.gen_range(min_ms / 2..load_ms));
    let recorder = Recorder::new();
    let stop = Arc::new(AtomicBool::new(false));
    let until = Instant::now() + Duration::from_millis(load_ms) + Duration::from_secs(2);
    let handles: Vec<_> = (0..load.clients)
        .map(|c| {
            let (load, recorder, stop) = (load.clone(), recorder.clone(), stop.clone());
            let addr = server.addr;
            let seed: u64 = rng.gen();
            thread::spawn(move || workload::run_client(&load, c, addr, recorder, seed, stop, until))
        })
        .collect();
    // A third of the paper iterations hunt a checkpoint: watch for its temporary file from
    // the planned kill moment on and kill while it is written (the others kill at a random
    // moment, which lands in a checkpoint only by chance).
    let hunt = cfg.target == Target::Moodb && cfg.backend == "paper" && rng.gen_ratio(1, 3);
    let into_checkpoint = Duration::from_micros(rng.gen_range(0..800));
    thread::sleep(kill_after);
    if hunt {
        let give_up = Instant::now() + Duration::from_millis(load_ms);
        while !checkpoint_in_progress(&state.dir) && Instant::now() < give_up {
            thread::sleep(Duration::from_micros(200));
        }
        thread::sleep(into_checkpoint);
    }
    info.checkpoint_in_progress = checkpoint_in_progress(&state.dir);
    server.kill9()?;
    recorder.crash();
    let kill_at = recorder.now();
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        match h.join() {
            Ok(out) => {
                info.ops += out.ops;
                if let Some(err) = out.protocol_error {
                    findings.messages.push(format!("protocol error: {err}"));
                    findings.phantoms += 1;
                }
            }
            Err(_) => findings.messages.push("a client thread panicked".into()),
        }
    }
    let load_ops = recorder.history();
    for op in &load_ops {
        if let Op::Set(v) | Op::Update(v) = &op.op {
            state.sent.insert((op.key.clone(), v.clone()));
        }
        match op.completion {
            Completion::Returned { .. } => info.acked += 1,
            Completion::Pending { .. } => info.pending += 1,
        }
    }

    let damaged = damage::inject(damage, cfg.target, &cfg.backend, &state.dir, rng)?;
    let reported_damage = damage != Damage::SilentTruncate;

    // Restart and check recovery.
    let mut loss_allowed = false;
    let restarted = match server::start(cfg, &state.dir, false)? {
        Started::Ready(s) => s,
        Started::Refused { code, output } => {
            info.refused = true;
            let Some(d) = &damaged else {
                findings.lost_acked += 1;
                findings.messages.push(format!(
                    "the server refused to restart after a plain kill -9 (exit {code:?}), so every write it acknowledged is out of reach:\n{output}"
                ));
                return Ok((findings, info, None));
            };
            // What the refusal must name: the damaged segment (paper), or the sled database
            // directory (moodb's sled backend reports sled's errors against it).
            let named = if cfg.backend == "sled" {
                d.file
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            } else {
                d.file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            if cfg.target == Target::Moodb {
                if let Some(problem) = refusal_problem(&output, &named, d) {
                    findings.unreported_damage += 1;
                    findings.messages.push(format!(
                        "recovery refused a damaged log ({}) but {problem}:\n{output}",
                        d.description
                    ));
                }
            }
            loss_allowed = reported_damage;
            restart_after_refusal(cfg, &state.dir, d, &named)?
        }
    };
    info.truncated = restarted.recovery.truncated_bytes > 0;
    info.replayed = restarted.recovery.records_replayed;
    info.from_checkpoint = restarted.recovery.from_checkpoint;
    if let Some(d) = &damaged {
        // Every byte of a paper log up to its last non-zero byte is covered by a checksum,
        // so a flipped bit must be reported: cut as a torn tail, refused, or salvaged.
        let reported = info.refused || info.truncated || restarted.recovery.salvaged;
        if damage == Damage::Bitflip
            && cfg.target == Target::Moodb
            && cfg.backend == "paper"
            && !reported
        {
            findings.unreported_damage += 1;
            findings.messages.push(format!(
                "damage served silently: recovery neither truncated, refused nor salvaged after it {}; its report: {}",
                d.description, restarted.recovery.report
            ));
        }
    }
    if cfg.target == Target::Moodb && restarted.recovery.report.is_empty() {
        findings.phantoms += 1;
        findings
            .messages
            .push("the restarted server printed no `moodb: recovery:` report".into());
    }
    if damaged.is_some() && reported_damage && (info.truncated || damage == Damage::Truncate) {
        // A cut on a record boundary leaves a valid shorter log: nothing to report.
        loss_allowed = true;
    }

    // Read everything back.
    let conn = Conn::connect(restarted.addr, Duration::from_secs(10))?;
    let mut reader = RecordingClient::new(conn, VERIFIER, cfg.target.dialect(), recorder.clone());
    let mut final_state = HashMap::new();
    for key in load.all_keys() {
        let value = match reader.run(&key, Op::Get)? {
            Output::Value(v) => v,
            _ => None,
        };
        final_state.insert(key, value);
    }
    let all = recorder.history();
    let final_reads: Vec<_> = all
        .iter()
        .filter(|o| o.client == VERIFIER)
        .cloned()
        .collect();
    let window_start = loss_window(args, cfg).map(|ms| kill_at.saturating_sub(ms * 1_000_000));
    let input = verify::Input {
        load: &load_ops,
        final_reads: &final_reads,
        initial: &state.initial,
        final_state: &final_state,
        sent: &state.sent,
        kill_at,
        window_start,
        loss_allowed,
        linearizability: window_start.is_none() && !loss_allowed,
    };
    let mut checked = verify::verify(&input);
    checked.messages.append(&mut findings.messages);
    checked.add(&findings);
    if checked.violations() > 0 {
        checked.messages.push(format!(
            "recovery: {} ; damage: {}",
            restarted.recovery.report,
            damaged.as_ref().map_or("none", |d| d.description.as_str())
        ));
    }
    state.initial = final_state;
    Ok((checked, info, Some(restarted)))
}

/// True if the data directory holds a temporary file (a checkpoint being written).
fn checkpoint_in_progress(dir: &Path) -> bool {
    let scan = |d: &Path| {
        fs::read_dir(d).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                let name = e.file_name().to_string_lossy().to_lowercase();
                name.contains("tmp") || name.contains("temp")
            })
        })
    };
    scan(dir) || scan(&dir.join("appendonlydir"))
}

/// What is wrong with moodb's refusal to start on a damaged log (`None`: its error line names
/// `named` (the damaged file) and a byte offset at or before the damage, as it must).
fn refusal_problem(output: &str, named: &str, damage: &damage::Done) -> Option<String> {
    let names = |l: &str| {
        l.split(|c: char| c.is_whitespace() || c == ':' || c == '"' || c == '/')
            .any(|w| w == named)
            || (named.contains('/') && l.contains(named))
    };
    let Some(line) = output
        .lines()
        .find(|l| l.starts_with("moodb: error:") && names(l))
    else {
        return Some(format!(
            "no `moodb: error:` line names the damaged file {named}"
        ));
    };
    let words: Vec<&str> = line.split_whitespace().collect();
    let offset = words
        .windows(2)
        .find(|w| w[0] == "offset")
        .and_then(|w| w[1].trim_end_matches([':', ',', ';']).parse::<u64>().ok());
    match offset {
        None => Some("its error line gives no byte offset".into()),
        Some(at) if at > damage.offset => Some(format!(
            "it names byte offset {at}, after the damage at {}",
            damage.offset
        )),
        Some(_) => None,
    }
}

/// Restarts after the server refused a damaged log, the way an operator would: moodb with
/// `--salvage` (keeps the valid prefix); if even that refuses (a log whose header is damaged
/// has no valid prefix) the damaged segment set aside; for sled, which cannot salvage, a fresh
/// database; redis after cutting its AOF at the damage. What this loses, the reported damage
/// allows; the checks for phantoms and partial transactions still apply.
fn restart_after_refusal(
    cfg: &ServerConfig,
    dir: &Path,
    d: &damage::Done,
    named: &str,
) -> Result<server::Server, CrashError> {
    let gave_up = |what: &str, code: Option<i32>, output: String| {
        CrashError::Start(format!(
            "the server refused to start even {what} (exit {code:?}):\n{output}"
        ))
    };
    if cfg.target == Target::Redis {
        let f = fs::OpenOptions::new()
            .write(true)
            .open(&d.file)
            .map_err(CrashError::io("open the damaged AOF"))?;
        f.set_len(d.offset)
            .map_err(CrashError::io("cut the damaged AOF"))?;
        return match server::start(cfg, dir, false)? {
            Started::Ready(s) => Ok(s),
            Started::Refused { code, output } => Err(gave_up("after the cut", code, output)),
        };
    }
    if cfg.backend == "sled" {
        fs::remove_dir_all(dir).map_err(CrashError::io("wipe the damaged sled database"))?;
        fs::create_dir_all(dir).map_err(CrashError::io("create the data dir"))?;
        return match server::start(cfg, dir, false)? {
            Started::Ready(s) => Ok(s),
            Started::Refused { code, output } => Err(gave_up("when fresh", code, output)),
        };
    }
    match server::start(cfg, dir, true)? {
        Started::Ready(s) => Ok(s),
        Started::Refused { output, .. } if refusal_problem(&output, named, d).is_none() => {
            let aside = d.file.with_extension("unreadable");
            fs::rename(&d.file, &aside).map_err(CrashError::io("set an unreadable log aside"))?;
            match server::start(cfg, dir, true)? {
                Started::Ready(s) => Ok(s),
                Started::Refused { code, output } => {
                    Err(gave_up("with the damaged log set aside", code, output))
                }
            }
        }
        Started::Refused { code, output } => Err(gave_up("when salvaging", code, output)),
    }
}

/// How many milliseconds of acknowledged writes before a `kill -9` the documentation lets the
/// server lose (`None`: nothing may be lost; `Some(u64::MAX)`: anything).
fn loss_window(args: &Args, cfg: &ServerConfig) -> Option<u64> {
    match (args.sync, cfg.target, cfg.backend.as_str()) {
        (SyncMode::Always, _, _) => None,
        // paper hands every append to the OS before it replies: a process crash loses nothing
        // under any policy (README, "Durability modes").
        (_, Target::Moodb, "paper") => None,
        // sled keeps writes in its own buffers until its flusher runs (backends/src/sled.rs):
        // every <ms> under every:<ms>, every 500 ms under never; twice that, plus scheduling.
        (SyncMode::Every, Target::Moodb, _) => Some(2 * args.every_ms + 200),
        (SyncMode::Never, Target::Moodb, _) => Some(2 * 500 + 200),
        // redis' everysec may lose up to two seconds; appendfsync no is not bounded.
        (SyncMode::Every, Target::Redis, _) => Some(2_500),
        (SyncMode::Never, Target::Redis, _) => Some(u64::MAX / 2_000_000),
    }
}
