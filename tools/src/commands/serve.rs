//! `moodb serve`: loads the configuration (file, then flags), opens and recovers the backend,
//! and runs the server until SIGINT/SIGTERM.

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;

use moodb_backends::BackendOptions;
use moodb_core::SyncPolicy;
use moodb_server::config::Config;
use moodb_server::server::Server;

/// Runs the MooDB server. With no arguments it listens on 127.0.0.1:6380, keeps its data in
/// ./moodb-data and syncs every write before acknowledging it.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Flags override the configuration file, which overrides the defaults.
Once ready it prints `moodb: ready to accept connections at ADDR ...` to stderr."
)]
pub struct Args {
    /// Configuration file (RON); every field is optional.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (port 0: any free port) [default: 127.0.0.1:6380].
    #[arg(long, value_name = "HOST:PORT")]
    addr: Option<String>,
    /// Directory of the log and checkpoints [default: ./moodb-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// When writes reach the disk: always (before each reply), every:<ms>, never [default: always].
    #[arg(long, value_name = "POLICY")]
    sync: Option<SyncPolicy>,
    /// Storage backend: paper or sled [default: paper].
    #[arg(long, value_name = "NAME")]
    backend: Option<String>,
    /// Checkpoint when the log reaches this many bytes (0: never on size).
    #[arg(long, value_name = "BYTES")]
    checkpoint_log_bytes: Option<u64>,
    /// Checkpoint this often, if there were writes (0: never on time).
    #[arg(long, value_name = "MS")]
    checkpoint_interval_ms: Option<u64>,
    /// Start even if the log is damaged in the middle, keeping its valid prefix.
    #[arg(long)]
    salvage: bool,
    /// Clients must AUTH with this password first (other users of the machine can see
    /// command lines: prefer `requirepass` in the configuration file).
    #[arg(long, value_name = "PASSWORD")]
    requirepass: Option<String>,
    /// Listen on a non-loopback address without a password (only on a trusted network).
    #[arg(long)]
    insecure: bool,
    /// Most clients connected at once [default: 10000].
    #[arg(long, value_name = "N")]
    max_clients: Option<usize>,
    /// Disconnect clients idle this many seconds (0: never) [default: 0].
    #[arg(long, value_name = "SECONDS")]
    idle_timeout: Option<u64>,
}

impl Args {
    /// The configuration: defaults, then the file, then the flags.
    fn config(&self) -> Result<Config, Box<dyn Error>> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(addr) = &self.addr {
            config.addr = addr.clone();
        }
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(sync) = self.sync {
            config.sync = sync;
        }
        if let Some(backend) = &self.backend {
            config.backend = backend.clone();
        }
        if let Some(bytes) = self.checkpoint_log_bytes {
            config.checkpoint.log_bytes = bytes;
        }
        if let Some(ms) = self.checkpoint_interval_ms {
            config.checkpoint.interval_ms = ms;
        }
        config.salvage |= self.salvage;
        if let Some(password) = &self.requirepass {
            config.requirepass = Some(password.clone());
        }
        config.insecure |= self.insecure;
        if let Some(n) = self.max_clients {
            config.limits.max_clients = n;
        }
        if let Some(s) = self.idle_timeout {
            config.limits.idle_timeout_s = s;
        }
        Ok(config)
    }
}

pub fn run(args: Args) -> Result<ExitCode, Box<dyn Error>> {
    let config = args.config()?;
    // Before touching the data: a server that must not start should leave no trace.
    config.validate()?;
    let options = BackendOptions {
        sync: config.sync,
        salvage: config.salvage,
    };
    let mut backend = moodb_backends::open(&config.backend, &config.data_dir, &options)?;
    let recovered = backend.recover()?;
    eprintln!("moodb: recovery: {}", recovered.report);
    let name = backend.name();
    let (sync, dir) = (config.sync, config.data_dir.clone());
    let server = Server::bind(config, backend, recovered)?;
    eprintln!(
        "moodb: ready to accept connections at {} (backend {name}, sync {sync}, data {})",
        server.local_addr(),
        dir.display()
    );
    server.run()?;
    Ok(ExitCode::SUCCESS)
}
