//! `moodb bench`: the command line of the benchmark (arguments, validation, which target
//! runs); the workload, drivers and tables live in `crate::bench`.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use moodb_backends::{BackendOptions, BACKEND_NAMES};
use moodb_core::SyncPolicy;

use crate::bench::inprocess::Target;
use crate::bench::report::{self, RecoveryRow, Row};
use crate::bench::resp::RespClient;
use crate::bench::workload::{Limit, Workload, WorkloadKind};
use crate::bench::{recovery, runner, BenchError, Client};

/// Operations run when neither `--ops` nor `--duration` is given.
const DEFAULT_OPS: u64 = 20_000;

/// Measures a backend in-process (the server's data path without the network: a writer thread
/// owning the backend, group commit), or a running server over RESP, and prints ops/s and
/// latency percentiles.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  moodb bench --backend paper,sled --workload write --clients 4
  moodb bench --backend sled --workload mixed95 --sync never --duration 10
  moodb bench --workload recovery --keys 1000000 --backend paper,sled
  moodb bench --server 127.0.0.1:6380 --workload read --clients 50
  moodb bench --workload txn --txn-size 16 --clients 1")]
pub struct BenchArgs {
    /// Backends to run in-process, comma-separated; several run one after the other and their
    /// ops/s ratio is printed.
    #[arg(long, value_delimiter = ',', default_value = "paper")]
    backend: Vec<String>,

    /// Run against a running server at this address over RESP instead of in-process.
    #[arg(long, value_name = "ADDR")]
    server: Option<String>,

    /// What the clients do; `recovery` fills --keys keys, reopens and times recovery.
    #[arg(long, value_enum, default_value_t = WorkloadKind::Write)]
    workload: WorkloadKind,

    /// Size of the key space (keys are picked uniformly from it, or see --hot).
    #[arg(long, default_value_t = 10_000)]
    keys: u64,

    /// Bytes per value written.
    #[arg(long, default_value_t = 100)]
    value_size: usize,

    /// When writes reach the disk: always, never or every:<ms> (in-process only).
    #[arg(long, default_value = "always")]
    sync: SyncPolicy,

    /// Concurrent clients, each with one operation in flight (their writes share syncs).
    #[arg(long, default_value_t = 4)]
    clients: usize,

    /// Total operations, shared among the clients [default: 20000].
    #[arg(long, conflicts_with = "duration")]
    ops: Option<u64>,

    /// Run for this many seconds instead of a number of operations.
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,

    /// Directory in which to create the temporary data directories (removed afterwards)
    /// [default: the system temporary directory].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// For --workload recovery: do not checkpoint after the fill, so recovery replays the log.
    #[arg(long)]
    no_checkpoint: bool,

    /// For --workload txn: SETs per transaction.
    #[arg(long, default_value_t = 4, value_name = "N")]
    txn_size: usize,

    /// A hot set, KEYS%:OPS% (e.g. 20:80): that share of the operations goes to that share of
    /// the keys, the rest to any key.
    #[arg(long, value_name = "KEYS%:OPS%", value_parser = hot_set)]
    hot: Option<(u64, u64)>,

    /// Seed of the operation generator (the same seed gives every target the same operations).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Runs `moodb bench`.
pub fn run(args: BenchArgs) -> Result<ExitCode, Box<dyn Error>> {
    let workload = workload(&args)?;
    let sync = if args.server.is_some() {
        "as configured on the server".to_string()
    } else {
        args.sync.to_string()
    };
    if workload.kind == WorkloadKind::Recovery {
        println!(
            "moodb bench: recovery of {} keys, {}-byte values, sync {sync}, {}",
            workload.keys,
            workload.value_size,
            if args.no_checkpoint {
                "no checkpoint"
            } else {
                "checkpoint after the fill"
            }
        );
    } else {
        println!(
            "moodb bench: workload {}, {}, {} clients, {} keys, {}-byte values, sync {sync}",
            workload.kind,
            match workload.limit {
                Limit::Ops(n) => format!("{n} ops"),
                Limit::Duration(d) => format!("{:.1}s", d.as_secs_f64()),
            },
            workload.clients,
            workload.keys,
            workload.value_size,
        );
        if let Some((keys, ops)) = workload.hot {
            println!("hot set: {ops}% of operations on {keys}% of the keys");
        }
        if workload.kind == WorkloadKind::Txn {
            println!(
                "one op = one transaction of {} SETs (writes/s = ops/s x {})",
                workload.txn_size, workload.txn_size
            );
        }
    }
    let options = BackendOptions {
        sync: args.sync,
        ..BackendOptions::default()
    };
    let table = match (&args.server, workload.kind) {
        (Some(_), WorkloadKind::Recovery) => {
            return Err(BenchError::Usage(
                "--workload recovery runs in-process only: drop --server".into(),
            )
            .into())
        }
        (Some(addr), _) => report::workload_table(&[run_server(addr, &workload)?]),
        (None, WorkloadKind::Recovery) => {
            let mut rows = Vec::new();
            for name in &args.backend {
                rows.push(run_recovery(name, &args, &options)?);
            }
            report::recovery_table(&rows)
        }
        (None, _) => {
            let mut rows = Vec::new();
            for name in &args.backend {
                rows.push(run_in_process(name, &args, &options, &workload)?);
            }
            report::workload_table(&rows)
        }
    };
    print!("{table}");
    Ok(ExitCode::SUCCESS)
}

fn workload(args: &BenchArgs) -> Result<Workload, BenchError> {
    if args.clients == 0 || args.keys == 0 || args.txn_size == 0 {
        return Err(BenchError::Usage(
            "--clients, --keys and --txn-size must be at least 1".into(),
        ));
    }
    if let Some(unknown) = args
        .backend
        .iter()
        .find(|name| !BACKEND_NAMES.contains(&name.as_str()))
    {
        return Err(BenchError::Usage(format!(
            "unknown backend {unknown:?}: expected one of {}",
            BACKEND_NAMES.join(", ")
        )));
    }
    let limit = match (args.ops, args.duration) {
        (_, Some(secs)) => Limit::Duration(
            Duration::try_from_secs_f64(secs)
                .map_err(|err| BenchError::Usage(format!("--duration {secs}: {err}")))?,
        ),
        (Some(ops), None) => Limit::Ops(ops),
        (None, None) => Limit::Ops(DEFAULT_OPS),
    };
    Ok(Workload {
        kind: args.workload,
        keys: args.keys,
        value_size: args.value_size,
        clients: args.clients,
        limit,
        seed: args.seed,
        txn_size: args.txn_size,
        hot: args.hot,
    })
}

/// `--hot`'s value: two percentages, `20:80`.
fn hot_set(text: &str) -> Result<(u64, u64), String> {
    let (keys, ops) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not KEYS%:OPS% (e.g. 20:80)"))?;
    let pct = |t: &str| match t.trim_end_matches('%').parse::<u64>() {
        Ok(n) if (1..=100).contains(&n) => Ok(n),
        _ => Err(format!("{t:?} is not a percentage from 1 to 100")),
    };
    Ok((pct(keys)?, pct(ops)?))
}

/// A fresh, self-removing data directory for one backend.
fn data_dir(args: &BenchArgs, name: &str) -> Result<tempfile::TempDir, BenchError> {
    let parent = args.data_dir.clone().unwrap_or_else(std::env::temp_dir);
    make_dir(&parent)?;
    tempfile::Builder::new()
        .prefix(&format!("moodb-bench-{name}-"))
        .tempdir_in(&parent)
        .map_err(|source| BenchError::Io {
            context: format!("create a data directory in {parent:?}"),
            source,
        })
}

fn make_dir(dir: &Path) -> Result<(), BenchError> {
    std::fs::create_dir_all(dir).map_err(|source| BenchError::Io {
        context: format!("create {dir:?}"),
        source,
    })
}

fn run_in_process(
    name: &str,
    args: &BenchArgs,
    options: &BackendOptions,
    workload: &Workload,
) -> Result<Row, BenchError> {
    let dir = data_dir(args, name)?;
    let mut target = Target::open(name, dir.path(), options)?;
    if workload.kind.needs_prefill() {
        target.fill(workload.keys, workload.value_size)?;
    }
    let (target, result) = target.run(workload, name)?;
    drop(target);
    let mut row = Row::new(
        name,
        &workload.kind.to_string(),
        &options.sync.to_string(),
        workload.clients,
        &result.run,
    );
    row.fsyncs = Some(result.fsyncs);
    row.fsync_time = Some(result.fsync_time);
    row.records = Some(result.writer.records);
    Ok(row)
}

fn run_server(addr: &str, workload: &Workload) -> Result<Row, BenchError> {
    if workload.kind.needs_prefill() {
        RespClient::connect(addr)?.fill(workload.keys, workload.value_size)?;
    }
    let clients = (0..workload.clients)
        .map(|_| RespClient::connect(addr).map(|c| Box::new(c) as Box<dyn Client>))
        .collect::<Result<Vec<_>, _>>()?;
    let run = runner::run(clients, workload, addr)?;
    Ok(Row::new(
        &format!("server {addr}"),
        &workload.kind.to_string(),
        "server's",
        workload.clients,
        &run,
    ))
}

fn run_recovery(
    name: &str,
    args: &BenchArgs,
    options: &BackendOptions,
) -> Result<RecoveryRow, BenchError> {
    let dir = data_dir(args, name)?;
    let (row, report) = recovery::run(
        name,
        dir.path(),
        options,
        args.keys,
        args.value_size,
        !args.no_checkpoint,
    )?;
    println!("{name}: {report}");
    Ok(row)
}
