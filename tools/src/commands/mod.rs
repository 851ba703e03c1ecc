//! The list of subcommands and the dispatch to their modules (one module per subcommand).

use std::error::Error;
use std::ffi::OsString;
use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand};

mod bench;
mod cli;
mod cluster;
mod delete;
mod get;
mod segment;
mod serve;
mod set;
mod snapshot;
mod update;
mod wal;

/// MooDB: an in-memory key-value database server with a write-ahead log and checkpoints,
/// speaking the Redis protocol.
#[derive(Debug, Parser)]
#[command(name = "moodb", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Runs the server.
    Serve(Box<serve::Args>),
    /// Prints the value of a key.
    Get(get::Args),
    /// Sets a key.
    Set(set::Args),
    /// Sets a key only if it exists.
    Update(update::Args),
    /// Deletes a key.
    Delete(delete::Args),
    /// Interactive client.
    Cli(cli::Args),
    /// Benchmarks a backend in-process, or a running server over RESP.
    Bench(bench::BenchArgs),
    /// Reads write-ahead log segments (`wal dump`).
    Wal(wal::WalArgs),
    /// Reads checkpoints (`snapshot inspect`).
    Snapshot(snapshot::SnapshotArgs),
    /// Reads value segments (`segment inspect`).
    Segment(segment::SegmentArgs),
    /// Administers a cluster (`cluster status`, `add-node`, `remove-node`).
    Cluster(cluster::ClusterArgs),
    /// Runs `moodb-<name>` from PATH with the remaining arguments.
    #[command(external_subcommand)]
    External(Vec<OsString>),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode, Box<dyn Error>> {
    match cli.command {
        Commands::Serve(args) => serve::run(*args),
        Commands::Get(args) => get::run(args),
        Commands::Set(args) => set::run(args),
        Commands::Update(args) => update::run(args),
        Commands::Delete(args) => delete::run(args),
        Commands::Cluster(args) => cluster::run(args),
        Commands::Cli(args) => cli::run(args),
        Commands::Bench(args) => bench::run(args),
        Commands::Wal(args) => wal::run(args),
        Commands::Snapshot(args) => snapshot::run(args),
        Commands::Segment(args) => segment::run(args),
        Commands::External(args) => run_external(args),
    }
}

fn run_external(args: Vec<OsString>) -> Result<ExitCode, Box<dyn Error>> {
    let Some((name, rest)) = args.split_first() else {
        return Err("no subcommand given; see `moodb --help`".into());
    };
    let program = format!("moodb-{}", name.to_string_lossy());
    let status = Command::new(&program).args(rest).status().map_err(|err| {
        format!(
            "unknown subcommand {:?} (and running {program} failed: {err}); see `moodb --help`",
            name.to_string_lossy()
        )
    })?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}
